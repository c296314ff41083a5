# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""What the API tells about a meter that needs attention (devices/abnormal).

``dh.meter.api_abnormal_reasons(scope)`` is the hook: other modules extend
it (call ``super()`` and add their reasons to the dict it returns; the
alarm module adds its open alarms) and the API shows whatever it returns
for the meters in the token's scope."""
import datetime as dt

from sql.aggregate import Max
from sql.conditionals import Coalesce

from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

# failed commands older than this are history, not a current problem
COMMAND_WINDOW = dt.timedelta(days=7)
STATE_REASONS = ('fault', 'offline', 'alarm', 'cutoff')


def reason(code, message, since=None, detail=None):
    "One reason of devices/abnormal: a stable code and a readable message"
    return {'code': code, 'message': message,
        'since': (since.replace(microsecond=0).isoformat() + 'Z')
        if isinstance(since, dt.datetime) else since,
        'detail': detail}


class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'

    @classmethod
    def api_abnormal_reasons(cls, scope):
        """{meter id: [reason(code, message, since, detail), …]} for the
        meters that need attention among ``scope`` (a python-sql query of
        meter ids).  Here: the meter's state (fault, offline, alarm, cut
        off), a tripped relay, a wallet in arrears, and trip / close /
        recharge / read commands that failed in the last 7 days with no
        later success of the same kind."""
        pool = Pool()
        Wallet = pool.get('dh.wallet')
        Command = pool.get('dh.command')
        meter = cls.__table__()
        master = cls.__table__()
        wallet = Wallet.__table__()
        cursor = Transaction().connection.cursor()
        result = {}
        cursor.execute(*meter.join(master, 'LEFT',
                condition=meter.master == master.id
                ).join(wallet, 'LEFT',
                condition=wallet.id == Coalesce(master.wallet, meter.wallet)
                ).select(meter.id, meter.state, meter.relay,
                    meter.last_read_at, meter.billing_mode, wallet.balance,
                    wallet.emergency_credit,
                    where=meter.id.in_(scope)
                    & (meter.state.in_(list(STATE_REASONS))
                        | (meter.relay == 'open'))))
        for (meter_id, state, relay, last_read_at, mode, balance,
                credit) in cursor.fetchall():
            reasons = result.setdefault(meter_id, [])
            if state in STATE_REASONS:
                reasons.append(reason(state, gettext(
                            f'dh_api.msg_abnormal_{state}'),
                        since=_dt(last_read_at) if state == 'offline'
                        else None))
            if relay == 'open' and state != 'cutoff':
                reasons.append(reason('relay_open', gettext(
                            'dh_api.msg_abnormal_relay_open')))
            balance, credit = _dec(balance), _dec(credit)
            if (mode == 'cash' and balance is not None
                    and balance <= -(credit or 0)):
                reasons.append(reason('arrears', gettext(
                            'dh_api.msg_abnormal_arrears',
                            balance=balance), detail={
                            'balance': str(balance)}))
        command = Command.__table__()
        since = dt.datetime.now() - COMMAND_WINDOW
        kinds = ['trip', 'close', 'recharge', 'read', 'valve_open',
            'valve_close']
        last_ok = Command.__table__()
        ok = last_ok.select(last_ok.meter, last_ok.kind,
            Max(last_ok.id).as_('id'),
            # a success after a failure of the window is in the window too
            where=(last_ok.state == 'confirmed')
            & (last_ok.done_at >= since)
            & last_ok.meter.in_(scope),
            group_by=[last_ok.meter, last_ok.kind])
        cursor.execute(*command.join(ok, 'LEFT',
                condition=(ok.meter == command.meter)
                & (ok.kind == command.kind)
                ).select(command.meter, command.kind, command.state,
                    command.last_error, command.done_at, command.id,
                    where=command.meter.in_(scope)
                    & command.state.in_(['failed', 'expired'])
                    & command.kind.in_(kinds)
                    & (command.done_at >= since)
                    & ((ok.id == None) | (ok.id < command.id)),  # noqa: E711
                    order_by=[command.id.desc]))
        seen = set()
        for meter_id, kind, state, error, done_at, _ in cursor.fetchall():
            if (meter_id, kind) in seen:
                continue
            seen.add((meter_id, kind))
            result.setdefault(meter_id, []).append(reason(
                    'command_failed', gettext(
                        'dh_api.msg_abnormal_command_failed', kind=kind,
                        error=error or state), since=_dt(done_at),
                    detail={'kind': kind, 'state': state,
                        'error': error}))
        return result


def _dt(value):
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def _dec(value):
    from .api import dec
    return dec(value)

