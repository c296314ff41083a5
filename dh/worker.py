"""Run queued Tryton tasks on SQLite.

trytond-worker cannot run on SQLite (it selects on the database connection);
this loop polls ir_queue instead, so exports leave the request on the
embedded default too.  PostgreSQL deployments use trytond-worker."""
import logging
import signal
import time

logger = logging.getLogger('dh.worker')


def pending_tasks(database):
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(database)
    with Transaction().start(database, 0, readonly=True):
        Queue = pool.get('ir.queue')
        queue = Queue.__table__()
        cursor = Transaction().connection.cursor()
        now = __import__('datetime').datetime.now()
        # a task scheduled later (a retry's back-off) waits for its time
        cursor.execute(*queue.select(queue.id,
                where=(queue.dequeued_at == None)  # noqa: E711
                & (queue.finished_at == None)  # noqa: E711
                & ((queue.scheduled_at == None)  # noqa: E711
                    | (queue.scheduled_at <= now)),
                order_by=[queue.id.asc]))
        return [i for i, in cursor]


def run_pending(database):
    from trytond.worker import run_task
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(database)
    done = 0
    for task_id in pending_tasks(database):
        # mark it taken, then run it as trytond-worker would
        with Transaction().start(database, 0) as transaction:
            Queue = pool.get('ir.queue')
            queue = Queue.__table__()
            cursor = transaction.connection.cursor()
            cursor.execute(*queue.update([queue.dequeued_at],
                    [Queue.dequeued_at.sql_format(
                            __import__('datetime').datetime.now())],
                    where=(queue.id == task_id)
                    & (queue.dequeued_at == None)))  # noqa: E711
            taken = cursor.rowcount == 1
        if not taken:
            # another `dh worker` took it first
            continue
        run_task(pool, task_id)
        done += 1
    return done


def run(options):
    from trytond import config
    config.update_etc(options.config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    Pool.start()
    pool = Pool(options.database)
    with Transaction().start(options.database, 0, readonly=True):
        pool.init()
    # the demo's log-only SMS gateway writes the messages here
    sms = logging.getLogger('trytond.modules.dh_alarm')
    if not logging.getLogger().handlers and not sms.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('%(asctime)s %(message)s'))
        sms.addHandler(handler)
        sms.setLevel(logging.INFO)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while not stop:
        try:
            run_pending(options.database)
        except KeyboardInterrupt:
            break
        except Exception:
            logger.exception('worker round failed')
        if options.once:
            break
        time.sleep(1)
    return 0
