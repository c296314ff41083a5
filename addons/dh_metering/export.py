# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Excel exports of the reports, run as background jobs with progress.

The wizard records a dh.export.job (report, criteria, user) and queues it;
the job reads the report in pages as the requesting user (record rules
apply), streams rows into an xlsx file (xlsxwriter, constant memory) and
commits its progress after every page so the list shows it live."""
import datetime as dt
import io
import json
import logging

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import ExportError
from .reading import local_timezone
from .usage import REGISTER_NAMES
from .xlsx_export import Column, criteria_title, write_xlsx

logger = logging.getLogger(__name__)
PAGE = 2000

REPORTS = [
    ('current', "Current Data"),
    ('matrix', "Daily Usage Matrix"),
    ('usage', "Usage Report"),
    ('hourly', "Hourly Detail"),
    ('raw', "Raw Readings"),
    ('merge_log', "Merge Log"),
    ]
# Chinese sheet names and headers: the export is read by property staff
REPORT_TITLES = {
    'current': '当前数据', 'matrix': '日用量', 'usage': '用量报表',
    'hourly': '小时明细', 'raw': '原始读数', 'merge_log': '合并日志',
    }
STATE_NAMES = {'normal': '正常', 'alarm': '报警', 'cutoff': '断电',
    'fault': '故障', 'offline': '离线'}
REGISTER_ZH = {
    'energy_total': '正向有功总电能', 'energy_t1': '正向有功尖电能',
    'energy_t2': '正向有功峰电能', 'energy_t3': '正向有功平电能',
    'energy_t4': '正向有功谷电能', 'energy_reverse': '反向有功总电能',
    'water_flow': '累计流量', 'ac_runtime': '空调运行时间',
    'ac_capacity': '空调能力档位', 'voltage': '电压', 'current': '电流',
    'power': '有功功率', 'remaining_energy': '剩余电量',
    'remaining_money': '剩余金额',
    }
GRANULARITY_ZH = {'day': '按日', 'month': '按月', 'year': '按年'}
METER_COLUMNS = [Column('编号'), Column('level1'), Column('level2'),
    Column('level3'), Column('level4'), Column('用户名', width=16),
    Column('表计地址', width=15)]
METER_FIELDS = ['number', 'level1', 'level2', 'level3', 'level4', 'name',
    'address']
FILTER_FIELDS = ['level1', 'level2', 'level3', 'level4', 'name', 'address']
FILTER_LABELS = {'level1': 'level1', 'level2': 'level2', 'level3': 'level3',
    'level4': 'level4', 'name': '用户名', 'address': '表计地址'}


def _local(value):
    if not value:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone(
        local_timezone()).replace(tzinfo=None)


def filter_domain(criteria):
    """Domain from the exact (精确) / fuzzy (模糊) filters of the criteria"""
    domain = []
    fuzzy = criteria.get('match') == 'fuzzy'
    for name in FILTER_FIELDS:
        value = (criteria.get(name) or '').strip()
        if value:
            if fuzzy:
                domain.append((name, 'ilike', f'%{value}%'))
            else:
                domain.append((name, '=', value))
    return domain


def report_spec(report, criteria):
    """(model, context, domain, order, columns, row function, title pairs)"""
    register = criteria.get('register') or 'energy_total'
    context = {}
    domain = filter_domain(criteria)
    order = [('number', 'ASC'), ('id', 'ASC')]
    pairs = [(FILTER_LABELS[n] + ('~' if criteria.get('match') == 'fuzzy'
                else '='), criteria.get(n)) for n in FILTER_FIELDS]
    if report == 'current':
        columns = METER_COLUMNS + [Column('正向有功总电能', 'number'),
            Column('剩余', 'number3'), Column('电表状态'),
            Column('抄读时间', 'datetime')]
        fields_ = METER_FIELDS + ['last_value', 'remaining', 'state',
            'last_read_at']

        def row(r):
            return ([r[f] for f in METER_FIELDS] + [r['last_value'],
                    r['remaining'], STATE_NAMES.get(r['state'], r['state']),
                    _local(r['last_read_at'])])
        return ('dh.meter', context, domain, order, columns, fields_, row,
            pairs)
    if report == 'matrix':
        year = int(criteria.get('year') or dt.date.today().year)
        month = int(criteria.get('month') or dt.date.today().month)
        context = {'year': year, 'month': str(month), 'register': register}
        days = [f'd{d:02d}' for d in range(1, 32)]
        columns = METER_COLUMNS + [Column('抄表项', width=14)] + [
            Column(f'{d}日', 'number') for d in range(1, 32)] + [
            Column('合计', 'number')]
        fields_ = METER_FIELDS + days + ['total']

        def row(r):
            return ([r[f] for f in METER_FIELDS] + [REGISTER_ZH[register]]
                + [r[d] for d in days] + [r['total']])
        pairs = [('年月', f'{year}-{month:02d}'),
            ('抄表项', REGISTER_ZH[register])] + pairs
        return ('dh.report.daily_matrix', context, domain, order, columns,
            fields_, row, pairs)
    if report == 'usage':
        granularity = criteria.get('granularity') or 'day'
        context = {'granularity': granularity,
            'from_date': criteria.get('from_date'),
            'to_date': criteria.get('to_date'), 'register': register}
        columns = METER_COLUMNS + [Column('倍率', 'number'),
            Column('抄表项', width=14), Column('本次读数', 'number'),
            Column('本次时间', 'datetime'), Column('用量', 'number'),
            Column('上次读数', 'number'), Column('上次时间', 'datetime')]
        fields_ = METER_FIELDS + ['multiplier', 'current_value',
            'current_at', 'usage', 'previous_value', 'previous_at']

        def row(r):
            return ([r[f] for f in METER_FIELDS] + [r['multiplier'],
                    REGISTER_ZH[register], r['current_value'],
                    _local(r['current_at']), r['usage'] or 0,
                    r['previous_value'], _local(r['previous_at'])])
        pairs = [('方式', GRANULARITY_ZH.get(granularity)),
            ('日期', f"{criteria.get('from_date')} 至 "
                f"{criteria.get('to_date')}"),
            ('抄表项', REGISTER_ZH[register])] + pairs
        return ('dh.report.usage', context, domain, order, columns, fields_,
            row, pairs)
    if report in {'hourly', 'raw'}:
        meter_id = criteria.get('meter')
        if not meter_id:
            raise ExportError(gettext('dh_metering.msg_export_need_meter'))
        context = {'meter': meter_id}
        domain = [('meter', '=', meter_id)]
        if criteria.get('register'):
            domain.append(('register', '=', register))
        if report == 'hourly':
            model = 'dh.usage.hour'
            order = [('period', 'ASC'), ('id', 'ASC')]
            columns = [Column('小时', 'datetime'), Column('抄表项', width=14),
                Column('用量', 'number'), Column('读数', 'number'),
                Column('抄读时间', 'datetime')]
            fields_ = ['period', 'register', 'usage', 'last_value',
                'last_at']

            def row(r):
                return [_local(r['period']), REGISTER_ZH[r['register']],
                    r['usage'], r['last_value'], _local(r['last_at'])]
        else:
            model = 'dh.meter.reading'
            order = [('read_at', 'ASC'), ('id', 'ASC')]
            columns = [Column('抄读时间', 'datetime'),
                Column('抄表项', width=14), Column('读数', 'number4')]
            fields_ = ['read_at', 'register', 'value']

            def row(r):
                return [_local(r['read_at']), REGISTER_ZH[r['register']],
                    r['value']]
        pairs = [('表计', criteria.get('meter_name'))]
        return (model, context, domain, order, columns, fields_, row, pairs)
    if report == 'merge_log':
        columns = [Column('时间', 'datetime'), Column('表计', width=16),
            Column('主表', width=16), Column('操作'), Column('操作员'),
            Column('描述', width=40)]
        fields_ = ['date', 'meter.name', 'master.name', 'action',
            'operator.name', 'description']

        def row(r):
            return [_local(r['date']), r['meter.']['name'],
                r['master.']['name'],
                '合并' if r['action'] == 'merge' else '取消合并',
                (r['operator.'] or {}).get('name'), r['description']]
        return ('dh.meter.merge.log', {}, [], [('date', 'ASC'), ('id', 'ASC')],
            columns, fields_, row, [])
    raise ExportError(gettext('dh_metering.msg_export_unknown_report',
            report=report))


class ExportJob(ModelSQL, ModelView):
    "An Excel export running in the background"
    __name__ = 'dh.export.job'
    __string__ = "Excel Export"
    report = fields.Selection(REPORTS, "Report", required=True,
        readonly=True)
    title = fields.Char("Title", readonly=True)
    criteria = fields.Text("Criteria", readonly=True)
    user = fields.Many2One('res.user', "User", readonly=True,
        ondelete='CASCADE')
    state = fields.Selection([
            ('queued', "Queued"),
            ('running', "Running"),
            ('done', "Done"),
            ('failed', "Failed"),
            ], "State", readonly=True, required=True)
    progress = fields.Integer("Progress (%)", readonly=True)
    rows = fields.Integer("Rows", readonly=True)
    total = fields.Integer("Total", readonly=True)
    file = fields.Binary("File", filename='filename', file_id='file_id',
        readonly=True)
    file_id = fields.Char("File ID", readonly=True)
    filename = fields.Char("File Name", readonly=True)
    error = fields.Text("Error", readonly=True)
    finished_at = fields.DateTime("Finished At", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('create_date', 'DESC'))

    @staticmethod
    def default_state():
        return 'queued'

    @staticmethod
    def default_progress():
        return 0

    @classmethod
    def report_spec(cls, report, criteria):
        "Other modules add reports here (see report_spec())"
        return report_spec(report, criteria)

    @classmethod
    def report_title(cls, report):
        return REPORT_TITLES.get(report, report)

    @classmethod
    def create_job(cls, report, criteria):
        "Record and queue an export; returns the job"
        # fail early on bad criteria, in the request
        cls.report_spec(report, criteria)
        job = cls(report=report, criteria=json.dumps(criteria, default=str),
            user=Transaction().user or None,
            title=cls.report_title(report))
        job.save()
        with Transaction().set_context(queue_name='dh_export'):
            cls.__queue__.run([job])
        return job

    @classmethod
    def run(cls, jobs):
        for job in jobs:
            job._run()

    def _run(self):
        transaction = Transaction()
        user = self.user.id if self.user else 0
        criteria = json.loads(self.criteria or '{}')
        self.state = 'running'
        self.save()
        try:
            with transaction.set_user(user), transaction.set_context(
                    _check_access=bool(user), language='zh_CN'):
                data, count = self._build(criteria)
        except Exception as exception:
            transaction.rollback()
            logger.exception('export %s failed', self.id)
            job = self.__class__(self.id)
            job.state = 'failed'
            job.error = str(exception)
            job.finished_at = dt.datetime.now()
            job.save()
            return
        job = self.__class__(self.id)
        job.file = data
        job.filename = f'{job.title}-{dt.date.today():%Y%m%d}-{job.id}.xlsx'
        job.rows = count
        job.progress = 100
        job.state = 'done'
        job.finished_at = dt.datetime.now()
        job.save()

    def _build(self, criteria):
        pool = Pool()
        transaction = Transaction()
        (model, context, domain, order, columns, fields_, row,
            pairs) = self.report_spec(self.report, criteria)
        Model = pool.get(model)
        with transaction.set_context(**context):
            # ids straight from the query: browsing 100,000 records costs
            # minutes (each record checks the whole id list)
            cursor = transaction.connection.cursor()
            cursor.execute(*Model.search(domain, order=order, query=True))
            ids = [i for i, in cursor]
        total = len(ids)
        self._set_progress(0, total)
        title = criteria_title(self.report_title(self.report), pairs)

        read = self._reader(Model, fields_)

        def rows():
            for start in range(0, total, PAGE):
                page = ids[start:start + PAGE]
                with transaction.set_context(**context):
                    records = read(page)
                by_id = {r['id']: r for r in records}
                for id_ in page:
                    if id_ in by_id:
                        yield row(by_id[id_])

        def progress(count):
            self._set_progress(count, total)

        output = io.BytesIO()
        count = write_xlsx(output, self.report_title(self.report), title,
            columns, rows(), progress=progress, progress_every=PAGE)
        return output.getvalue(), count

    @staticmethod
    def _reader(Model, fields_):
        """read(ids) -> [dict]: plain columns straight from the table (the
        ids come from a search that applied the record rules; the ORM read
        costs more than the whole spreadsheet), related fields by the ORM"""
        from sql import Column
        if any('.' in f for f in fields_) or any(
                hasattr(Model._fields[f], 'get') for f in fields_):
            return lambda ids: Model.read(ids, fields_)
        numeric = {f for f in fields_
            if Model._fields[f]._type == 'numeric'}
        datetimes = {f for f in fields_
            if Model._fields[f]._type in {'datetime', 'timestamp'}}

        def read(ids):
            table = Model.__table__()
            cursor = Transaction().connection.cursor()
            cursor.execute(*table.select(table.id,
                    *[Column(table, f) for f in fields_],
                    where=table.id.in_(list(ids))))
            result = []
            for values in cursor:
                record = dict(zip(['id'] + list(fields_), values))
                for name in numeric | datetimes:
                    value = record[name]
                    if isinstance(value, (bytes, str)) and value:
                        value = value.decode() if isinstance(
                            value, bytes) else value
                        record[name] = (float(value) if name in numeric
                            else dt.datetime.fromisoformat(value))
                result.append(record)
            return result
        return read

    def _set_progress(self, count, total):
        "Commit the progress so that it shows while the job runs"
        transaction = Transaction()
        with transaction.set_user(0), transaction.set_context(
                _check_access=False):
            job = self.__class__(self.id)
            job.rows = count
            job.total = total
            job.progress = int(count * 100 / total) if total else 100
            job.save()
        # only a queued run commits as it goes (a direct call, as in the
        # tests, stays inside the caller's transaction)
        if transaction.context.get('queue_name') == 'dh_export':
            transaction.commit()

    @classmethod
    def cron_cleanup(cls, days=30):
        "Old export files are removed (the jobs' history stays)"
        limit = dt.datetime.now() - dt.timedelta(days=days)
        jobs = cls.search([('finished_at', '<', limit),
                ('file_id', '!=', None)])
        for job in jobs:
            job.file = None
        cls.save(jobs)


class ExportStart(ModelView):
    __name__ = 'dh.export.start'
    __string__ = "Export to Excel"
    report = fields.Selection(REPORTS, "Report", required=True)
    match = fields.Selection([
            ('exact', "Exact"),
            ('fuzzy', "Fuzzy"),
            ], "Match", required=True)
    level1 = fields.Char("Level 1")
    level2 = fields.Char("Level 2")
    level3 = fields.Char("Level 3")
    level4 = fields.Char("Level 4")
    name = fields.Char("User Name")
    address = fields.Char("Meter Address")
    year = fields.Integer("Year", states={
            'invisible': Eval('report') != 'matrix'})
    month = fields.Selection([(None, '')] + [(str(i), str(i))
            for i in range(1, 13)], "Month", sort=False, states={
            'invisible': Eval('report') != 'matrix'})
    granularity = fields.Selection([
            ('day', "Days"),
            ('month', "Months"),
            ('year', "Years"),
            ], "By", states={'invisible': Eval('report') != 'usage'})
    from_date = fields.Date("From", states={
            'invisible': Eval('report') != 'usage'})
    to_date = fields.Date("To", states={
            'invisible': Eval('report') != 'usage'})
    register = fields.Selection([(None, '')] + [
            (k, v) for k, v in REGISTER_NAMES.items()], "Register")
    meter = fields.Many2One('dh.meter', "Meter", states={
            'invisible': ~Eval('report').in_(['hourly', 'raw']),
            'required': Eval('report').in_(['hourly', 'raw'])})


class Export(Wizard):
    "Export a report to Excel (in the background)"
    __name__ = 'dh.export'
    __string__ = "Export to Excel"
    start = StateView('dh.export.start',
        'dh_metering.export_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Export", 'export', 'tryton-ok', default=True),
            ])
    export = StateTransition()
    MODEL_REPORTS = {
        'dh.meter': 'current',
        'dh.report.daily_matrix': 'matrix',
        'dh.report.usage': 'usage',
        'dh.usage.hour': 'hourly',
        'dh.meter.reading': 'raw',
        'dh.meter.merge.log': 'merge_log',
        }

    def default_start(self, fields):
        context = Transaction().context
        today = dt.date.today()
        yesterday = today - dt.timedelta(days=1)
        return {
            'report': self.MODEL_REPORTS.get(self.model.__name__
                if self.model else None, 'current'),
            'match': 'fuzzy',
            'year': context.get('year') or today.year,
            'month': str(context.get('month') or today.month),
            'granularity': context.get('granularity') or 'day',
            'from_date': context.get('from_date') or yesterday,
            'to_date': context.get('to_date') or yesterday,
            'register': context.get('register') or 'energy_total',
            'meter': context.get('meter'),
            }

    def transition_export(self):
        pool = Pool()
        Job = pool.get('dh.export.job')
        start = self.start
        criteria = {name: getattr(start, name) for name in [
                'match', 'level1', 'level2', 'level3', 'level4', 'name',
                'address', 'year', 'month', 'granularity', 'register']}
        for name in ['from_date', 'to_date']:
            value = getattr(start, name)
            criteria[name] = value.isoformat() if value else None
        if start.meter:
            criteria['meter'] = start.meter.id
            criteria['meter_name'] = start.meter.rec_name
        Job.create_job(start.report, criteria)
        return 'end'
