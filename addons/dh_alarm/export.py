# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"The alarm list to Excel (a background export job like the other reports)"
import datetime as dt

from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.wizard import Button, StateTransition, StateView, Wizard

from trytond.modules.dh_metering.export import _local
from trytond.modules.dh_metering.xlsx_export import Column

from .alarm import KIND_NAMES_ZH

STATE_ZH = {'open': '未处理', 'acknowledged': '已确认', 'closed': '已结束'}


class ExportJob(metaclass=PoolMeta):
    __name__ = 'dh.export.job'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.report.selection += [('alarms', "Alarms")]

    @classmethod
    def report_title(cls, report):
        return {'alarms': '报警记录'}.get(report) \
            or super().report_title(report)

    @classmethod
    def report_spec(cls, report, criteria):
        if report != 'alarms':
            return super().report_spec(report, criteria)
        domain = []
        if criteria.get('open_only'):
            domain.append(('state', '!=', 'closed'))
        if criteria.get('from_date'):
            domain.append(('start', '>=', dt.datetime.fromisoformat(
                        criteria['from_date'])))
        if criteria.get('to_date'):
            domain.append(('start', '<', dt.datetime.fromisoformat(
                        criteria['to_date']) + dt.timedelta(days=1)))
        columns = [Column('开始时间', 'datetime'), Column('结束时间', 'datetime'),
            Column('一级'), Column('二级'), Column('用户名', width=16),
            Column('报警类型', width=14), Column('数值', 'number'),
            Column('阈值', 'number'), Column('时段'), Column('状态'),
            Column('说明', width=24), Column('处理备注', width=24)]
        fields_ = ['start', 'end', 'meter.level1', 'meter.level2',
            'meter.name', 'kind', 'value', 'threshold', 'period', 'state',
            'description', 'note']

        def row(r):
            meter = r.get('meter.') or {}
            return [_local(r['start']), _local(r['end']), meter.get('level1'),
                meter.get('level2'), meter.get('name'),
                KIND_NAMES_ZH.get(r['kind'], r['kind']), r['value'],
                r['threshold'], r['period'], STATE_ZH.get(r['state']),
                r['description'], r['note']]
        pairs = [('范围', '未结束' if criteria.get('open_only') else '全部'),
            ('日期', f"{criteria.get('from_date') or ''} 至 "
                f"{criteria.get('to_date') or ''}")]
        return ('dh.alarm', {}, domain, [('start', 'DESC'), ('id', 'DESC')],
            columns, fields_, row, pairs)


class AlarmExportStart(ModelView):
    __name__ = 'dh.alarm.export.start'
    __string__ = "Export Alarms"
    open_only = fields.Boolean("Open Only")
    from_date = fields.Date("From")
    to_date = fields.Date("To")


class AlarmExport(Wizard):
    "Export the alarm list to Excel"
    __name__ = 'dh.alarm.export'
    __string__ = "Export Alarms"
    start = StateView('dh.alarm.export.start',
        'dh_alarm.alarm_export_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Export", 'export', 'tryton-ok', default=True),
            ])
    export = StateTransition()

    def default_start(self, fields):
        return {'open_only': True}

    def transition_export(self):
        Job = Pool().get('dh.export.job')
        start = self.start
        Job.create_job('alarms', {'open_only': bool(start.open_only),
                'from_date': start.from_date.isoformat()
                if start.from_date else None,
                'to_date': start.to_date.isoformat()
                if start.to_date else None})
        return 'end'
