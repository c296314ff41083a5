# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Meter archive import (档案管理): areas, meters and tenants from Excel.
Every row is validated first (archive_import.py); any invalid row and
nothing is imported."""
from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .archive_import import ArchiveError, errors_text, parse_archive
from .exceptions import ImportError_


class ImportStart(ModelView):
    __name__ = 'dh.meter.import.start'
    __string__ = "Import Meter Archive"
    file = fields.Binary("Excel File", required=True, filename='filename')
    filename = fields.Char("File Name")
    create_areas = fields.Boolean("Create Missing Areas",
        help="Create the areas named in the file when they do not exist; "
        "otherwise an unknown area is an error.")

    @staticmethod
    def default_create_areas():
        return True


class ImportResult(ModelView):
    __name__ = 'dh.meter.import.result'
    __string__ = "Import Result"
    imported = fields.Boolean("Imported", readonly=True)
    summary = fields.Text("Result", readonly=True)


class Import(Wizard):
    "Import meters, areas and tenants from an Excel file"
    __name__ = 'dh.meter.import'
    __string__ = "Import Meter Archive"
    start = StateView('dh.meter.import.start',
        'dh_metering.import_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Import", 'do_import', 'tryton-ok', default=True),
            ])
    do_import = StateTransition()
    result = StateView('dh.meter.import.result',
        'dh_metering.import_result_view_form', [
            Button("Close", 'end', 'tryton-close', default=True),
            ])

    def transition_do_import(self):
        imported, summary = import_archive(
            self.start.file, create_areas=self.start.create_areas)
        self.result.imported = imported
        self.result.summary = summary
        return 'result'

    def default_result(self, fields):
        return {'imported': self.result.imported,
            'summary': self.result.summary}


def import_archive(data, create_areas=True):
    """Validate and import; returns (imported, summary text).  Nothing is
    written unless every row is valid."""
    pool = Pool()
    Meter = pool.get('dh.meter')
    Area = pool.get('dh.area')
    meters = Meter.search([('active', 'in', [True, False])])
    existing_addresses = {m.address for m in meters}
    existing_numbers = {m.number for m in meters}
    areas = {}
    for area in Area.search([]):
        areas[tuple(area.full_name.split('/'))] = area
    known = None if create_areas else {p for p in areas if len(p) == 4}
    try:
        rows, errors = parse_archive(bytes(data),
            existing_addresses=existing_addresses,
            existing_numbers=existing_numbers, known_area_paths=known)
    except ArchiveError as exception:
        return False, str(exception)
    if errors:
        return False, gettext('dh_metering.msg_import_errors',
            count=len(errors)) + '\n' + errors_text(errors)
    if not rows:
        raise ImportError_(gettext('dh_metering.msg_import_empty'))
    created_areas = _create_areas(areas, [r.area_path for r in rows])
    tenants = _tenants(rows)
    Meter.create([{
                'number': r.number, 'name': r.name, 'address': r.address,
                'utility': r.utility, 'protocol': r.protocol,
                'channel': r.channel, 'multiplier': r.multiplier,
                'role': r.role, 'area': areas[r.area_path].id,
                'tenant': tenants[r.tenant].id if r.tenant else None,
                } for r in rows])
    return True, gettext('dh_metering.msg_import_done', meters=len(rows),
        areas=created_areas, tenants=len(tenants))


def _create_areas(areas, paths):
    Area = Pool().get('dh.area')
    created = 0
    for level in range(1, 5):
        missing = sorted({tuple(p[:level]) for p in paths} - set(areas))
        if not missing:
            continue
        new = Area.create([{
                    'name': p[-1], 'level': str(level),
                    'parent': areas[p[:-1]].id if level > 1 else None,
                    } for p in missing])
        areas.update(zip(missing, new))
        created += len(new)
    return created


def _tenants(rows):
    pool = Pool()
    Party = pool.get('party.party')
    names = sorted({r.tenant for r in rows if r.tenant})
    tenants = {p.name: p for p in Party.search([('name', 'in', names)])}
    phones = {r.tenant: r.tenant_phone for r in rows if r.tenant_phone}
    to_create = [n for n in names if n not in tenants]
    if to_create:
        new = Party.create([{
                    'name': n,
                    'contact_mechanisms': [('create', [{
                                    'type': 'mobile', 'value': phones[n]}])]
                    if phones.get(n) else [],
                    } for n in to_create])
        tenants.update(zip(to_create, new))
    return tenants
