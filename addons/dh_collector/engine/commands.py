"""Queued commands, executed by a :class:`.poller.ChannelPoller` between
meters. Each is reported 'sent' before it goes on the wire, then
'confirmed' or 'failed' (with a reason), and confirmation always comes
from the meter:

* ``trip`` / ``close``: the remote-control frame (0x1C), then status word
  3 (04000503) is read back; confirmed only when its relay bit (bit 4, 1 =
  open) shows the wanted state. A lost acknowledgement is harmless: the
  status read decides.
* ``valve_open`` / ``valve_close``: the CJ/T188 valve frame (A017); its
  reply's ST, or when it is lost a 901F read, shows the valve state.
* ``recharge``: the purchase frame with the purchase count the meter will
  have afterwards; an acknowledgement, or a duplicate (the meter already
  has that count: an earlier try was applied), is confirmed; a lost reply
  is settled by reading the purchase count (03330201).
* ``time_sync``: the 0x08 frame to the meter's address (no reply), then
  its clock is read back and compared.
* ``param_write``: a 0x14 (1997: 0x04) write, acknowledged, read back when
  the item is readable; or named 安全用电 parameters (``{'params': {name:
  value}}``), each written through the DI its vendor profile's safety map
  gives, then read back and compared.
* ``param_read``: named 安全用电 parameters read.
* ``event_read``: the meter's last load-protection records (trips and
  power steps) and its lockout flag.
* ``load_reset``: the lockout reset written; confirmed only when the
  lockout flag reads back cleared.
* ``read``: the meter's registers (or ``payload['registers']``) now, to
  the sink.
* ``clear`` (远程清零): the prepaid remaining energy (00900100) read,
  0.00 written (with the meter's password) to the DI its vendor profile
  names (``VendorProfile.remaining_write``), the remaining energy read
  back: confirmed only when it reads 0.00. The result carries
  ``remaining_before`` (what was cleared); when the write went out but
  neither its acknowledgement nor the read-back came, the failure's
  result says ``unknown: true`` with ``remaining_before`` so billing can
  credit that energy if a retry then finds the meter already at zero.

Reports that fail (the database is down) are kept and sent again, in
order, before the next ones.
"""

import asyncio
import datetime as dt
import logging
import time
from decimal import Decimal

from ..codec import AbnormalReply, CodecError, cjt188, dlt645, recharge
from ..codec import di as registry
from ..codec.vendors import get_vendor
from .model import CONFIRMED, FAILED, SENT
from .registers import CJT188, DLT645_1997, STATUS_WORD_3
from .transport import NotConnected, TransportError

log = logging.getLogger('dh.collector.commands')

_VERSIONS = {'dlt645_2007': dlt645.V2007, DLT645_1997: dlt645.V1997}
REMAINING_DI = '00900100'


class CommandFailed(Exception):
    def __init__(self, error: str, result: dict | None = None):
        super().__init__(error)
        self.error = error
        self.result = result


# --- 安全用电 (safety: alarm energy, load limits, trip records) ------------

def _safety(meter, what):
    """The meter's safety map (its vendor profile's), or CommandFailed."""
    if meter.protocol != 'dlt645_2007':
        raise CommandFailed(f'{what} is not possible on a {meter.protocol} '
            'meter')
    try:
        profile = get_vendor(_vendor(meter))
    except CodecError as exc:
        raise CommandFailed(exc.reason) from None
    if profile.safety_map is None:
        raise CommandFailed(f'{what}: vendor profile {profile.name} has no '
            '安全用电 parameters')
    return profile.safety_map


def _params(safety, names):
    """``[(name, DI, registry item)]`` of parameter ``names``; an unknown
    or unmapped name fails before anything is sent."""
    found = []
    for name in names:
        if not isinstance(name, str):
            raise CommandFailed(f'parameter names are text, got {name!r}')
        try:
            di = safety.di(name)
        except CodecError as exc:
            raise CommandFailed(exc.reason) from None
        found.append((name, di, registry.lookup(di)))
    return found


def _jsonable(value):
    """A decoded value for a command result: Decimal as text, lists and
    dicts recursively, datetimes ISO, the rest as is."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class SafetyCommandsMixin:
    """param_write with named parameters, param_read, event_read and
    load_reset (mixed into :class:`CommandsMixin`)."""

    async def _read_needed(self, meter, di, stats, what, result=None):
        """The value of ``di``, or CommandFailed naming ``what``."""
        try:
            value, error = await self._try(self._read_item(meter, di, stats))
        except AbnormalReply as exc:
            raise CommandFailed(f'meter {meter.address} refused to read '
                f'{what}: {_refusal(exc)}', result) from None
        if value is None:
            raise CommandFailed(f'{what} unreadable: {error}', result)
        return value

    async def _write_params(self, meter, payload, stats):
        if 'di' in payload:
            raise CommandFailed('param_write takes di (a raw write) or '
                'params (named parameters), not both')
        params = payload['params']
        if not isinstance(params, dict) or not params:
            raise CommandFailed('param_write params must be a non-empty '
                '{name: value} object')
        safety = _safety(meter, 'parameter write')
        plan = []
        for name, di, entry in _params(safety, params):
            value = params[name]
            try:
                data = entry.encode(_write_value(entry, value))
            except CodecError as exc:
                reason = exc.reason
            except (ArithmeticError, ValueError, TypeError):
                reason = (f'{value!r} is not a number'
                    if entry.kind == registry.NUMBER
                    else f'{value!r} is not a {entry.fmt} value')
            else:
                plan.append((name, di, entry, data))
                continue
            raise CommandFailed(f'{name}: {value!r} cannot be written: '
                f'{reason}')
        done = {}
        for name, di, entry, data in plan:
            result = {'params': dict(done)}
            await self._write(meter, di, data, stats, f'{name} ({di})',
                result)
            back = await self._read_needed(meter, di, stats,
                f'{name} ({di}) after writing it', result)
            if entry.encode(back) != data:
                raise CommandFailed(f'{name} written as '
                    f'{_jsonable(entry.decode(data))} but the meter reads '
                    f'{_jsonable(back)}', result)
            done[name] = _jsonable(back)
        return {'params': done}

    async def _command_param_read(self, meter, payload, stats):
        safety = _safety(meter, 'parameter read')
        names = payload.get('params') or list(safety.names)
        if isinstance(names, str):
            names = [names]
        values, errors = {}, {}
        plan = _params(safety, names)
        for index, (name, di, _) in enumerate(plan):
            refused = False
            try:
                value, error = await self._try(
                    self._read_item(meter, di, stats))
            except AbnormalReply as exc:
                value, error = None, f'meter refused: {_refusal(exc)}'
                refused = True
            if value is not None:
                values[name] = _jsonable(value)
                continue
            errors[name] = error
            if not refused:
                # the meter is silent: do not ask it for the rest
                for other, _, _ in plan[index + 1:]:
                    errors[other] = 'not read (the meter did not answer)'
                break
        result = {'params': values}
        if errors:
            result['errors'] = errors
            raise CommandFailed('; '.join(f'{name}: {error}'
                for name, error in errors.items()), result)
        return result

    async def _command_event_read(self, meter, payload, stats):
        safety = _safety(meter, 'event read')
        scheme = safety.events
        try:
            last = int(payload.get('last', scheme.depth))
        except (TypeError, ValueError):
            raise CommandFailed(f'event_read last must be a number, got '
                f'{payload.get("last")!r}') from None
        if last < 0:
            raise CommandFailed('event_read last must not be negative')
        count_what = f'the event count ({scheme.count})'
        count = await self._read_needed(meter, scheme.count, stats,
            count_what)
        for _ in range(3):
            wanted = min(last, count, scheme.depth)
            records = []
            for n in range(wanted, 0, -1):      # oldest of them first
                di = scheme.record_di(n)
                record = await self._read_needed(meter, di, stats,
                    f'event record {n} ({di})')
                records.append(_jsonable(record))
            status = await self._read_needed(meter, safety.load_status,
                stats, f'the load status ({safety.load_status})')
            again = await self._read_needed(meter, scheme.count, stats,
                count_what)
            if again == count:
                break
            count = again       # a new record shifted them: read again
        else:
            raise CommandFailed('the meter kept recording events while '
                'they were read')
        return {'events': [{'at': r['at'], 'kind': r['kind'],
                'power': r['power'], 'step': r['step'],
                'lockout': r['lockout']} for r in records],
            'count': count, 'lockout': status['lockout'],
            'load_trip': status['load_trip'],
            'overload_trips': status['overload_trips'],
            'malignant_trips': status['malignant_trips']}

    async def _command_load_reset(self, meter, payload, stats):
        safety = _safety(meter, 'load reset')
        di = safety.load_reset
        data = registry.lookup(di).encode(safety.reset_value)
        version = _VERSIONS[meter.protocol]
        request = dlt645.write_request(meter.address, di, data,
            password=meter.password, version=version, vendor=_vendor(meter))
        try:
            _, ack_error = await self._try(
                self._transact(meter, request, stats))
        except AbnormalReply as exc:
            raise CommandFailed(f'meter {meter.address} refused the load '
                f'reset ({di}): {_refusal(exc)}') from None
        status, status_error = None, None
        for attempt in range(self.spec.retries + 1):
            if attempt:
                await asyncio.sleep(self.spec.backoff * 2 ** (attempt - 1))
            try:
                status, status_error = await self._try(self._read_item(
                    meter, safety.load_status, stats))
            except AbnormalReply as exc:
                status_error = f'meter refused: {_refusal(exc)}'
                break
            if status is None:
                if ack_error is not None:
                    break           # the meter is silent: do not insist
                continue
            if not status['lockout']:
                result = {'lockout': False, 'load_trip': status['load_trip'],
                    'acknowledged': ack_error is None}
                try:
                    word, _ = await self._try(self._read_item(meter,
                        STATUS_WORD_3, stats, retries=0))
                except AbnormalReply:
                    word = None
                if word is not None:
                    result.update(relay=word['relay'],
                        status_word_3=word['word'])
                return result
            break
        if status is not None:
            raise CommandFailed(f'load reset sent but the meter is still '
                f'locked out ({safety.load_status})', {'lockout': True})
        if ack_error is not None:
            raise CommandFailed(f'load reset not confirmed: {ack_error}; '
                f'load status unreadable: {status_error}')
        raise CommandFailed(f'load reset acknowledged but the load status '
            f'is unreadable: {status_error}')

    async def _load_note(self, meter, stats) -> str:
        """Why a closed-for relay stays open, when load protection holds
        it (a best-effort read; '' when unknown)."""
        safety = get_vendor(_vendor(meter)).safety_map \
            if meter.protocol == 'dlt645_2007' else None
        if safety is None:
            return ''
        try:
            status, _ = await self._try(self._read_item(meter,
                safety.load_status, stats, retries=0))
        except (AbnormalReply, CodecError):
            return ''
        if not status:
            return ''
        if status['lockout']:
            return '; load protection: locked out, a load_reset is needed'
        if status['load_trip']:
            return '; load protection: a timed load trip holds it open'
        return ''


class CommandsMixin(SafetyCommandsMixin):
    """The command side of :class:`.poller.ChannelPoller`."""

    def _init_commands(self):
        self._unreported: list[tuple] = []
        self._last_fetch = float('-inf')

    async def run_commands(self, stats, *, force: bool = False):
        """Fetch and execute this channel's pending commands (at most every
        ``command_interval`` seconds unless ``force``)."""
        if self.commands is None:
            return
        await self._flush_reports()
        now = time.monotonic()
        if not force and now - self._last_fetch < self.command_interval:
            return
        self._last_fetch = now
        try:
            commands = await self.commands.fetch(self.spec.id)
        except Exception as exc:
            log.warning('channel %s: fetching commands failed: %s',
                self.spec.id, exc)
            return
        for command in commands or ():
            await self.execute(command, stats)

    async def _report(self, command_id, state, error=None, result=None):
        self._unreported.append((command_id, state, error, result))
        await self._flush_reports()

    async def _flush_reports(self):
        while self._unreported:
            try:
                await self.commands.report(*self._unreported[0])
            except Exception as exc:
                log.warning('channel %s: reporting command %s failed '
                    '(kept): %s', self.spec.id, self._unreported[0][0], exc)
                return
            self._unreported.pop(0)

    async def execute(self, command, stats) -> tuple[str, str | None, dict]:
        """Run one command and report it; returns ``(state, error,
        result)``."""
        stats.commands += 1
        meter = self._by_id.get(command.meter_id)
        if meter is None:
            state, error, result = FAILED, (f'meter {command.meter_id} is '
                f'not on channel {self.spec.id}'), {}
            await self._report(command.id, state, error, result)
            return state, error, result
        handler = getattr(self, f'_command_{command.kind}', None)
        if handler is None:
            state, error, result = FAILED, (f'unknown command kind '
                f'{command.kind!r}'), {}
            await self._report(command.id, state, error, result)
            return state, error, result
        await self._report(command.id, SENT)
        payload = command.payload or {}
        try:
            result = await handler(meter, payload, stats)
            state, error = CONFIRMED, None
        except CommandFailed as exc:
            state, error, result = FAILED, exc.error, exc.result or {}
        except NotConnected as exc:
            state, error, result = FAILED, f'channel unreachable: {exc}', {}
        except (TransportError, CodecError, ValueError, KeyError,
                TypeError) as exc:
            state, error, result = FAILED, f'{type(exc).__name__}: {exc}', {}
        log.info('channel %s: command %s (%s, meter %s): %s%s',
            self.spec.id, command.id, command.kind, meter.address, state,
            f' ({error})' if error else '')
        await self._report(command.id, state, error, result)
        return state, error, result

    # helpers
    def _meter_now(self) -> dt.datetime:
        return self.clock() + self.meter_utc_offset

    def _need(self, meter, *protocols, what):
        if meter.protocol not in protocols:
            raise CommandFailed(f'{what} is not possible on a '
                f'{meter.protocol} meter')

    async def _try(self, coro):
        """``(reply, None)`` or ``(None, error text)`` for a lost reply;
        abnormal replies and an unreachable bus propagate."""
        from .poller import ReadFailed
        try:
            return await coro, None
        except ReadFailed as exc:
            return None, str(exc)

    async def _read_item(self, meter, di, stats, retries=None):
        """The decoded value of DL/T645 item ``di``."""
        version = _VERSIONS[meter.protocol]
        vendor = _vendor(meter)
        request = dlt645.read_request(meter.address, di, version=version,
            vendor=vendor)
        reply = await self._transact(meter, request, stats, retries=retries)
        return reply.value

    # kinds
    async def _command_read(self, meter, payload, stats):
        registers = payload.get('registers') or None
        readings, errors = await self.read_meter(meter, stats, registers)
        await self._deliver(readings, stats)
        result = {'values': {r.register: str(r.value) for r in readings}}
        if readings:
            result['read_at'] = readings[0].read_at.isoformat()
        if errors:
            result['errors'] = errors
            raise CommandFailed('; '.join(f'{k}: {v}'
                for k, v in errors.items()), result)
        return result

    async def _command_trip(self, meter, payload, stats):
        return await self._relay(meter, payload, stats, trip=True)

    async def _command_close(self, meter, payload, stats):
        return await self._relay(meter, payload, stats, trip=False)

    async def _relay(self, meter, payload, stats, *, trip):
        self._need(meter, 'dlt645_2007', what='remote control')
        action = 'trip' if trip else (
            'close-direct' if payload.get('direct') else 'close')
        ack_error = await self._remote_control(meter, action, payload,
            stats)
        want = 'open' if trip else 'closed'
        status, status_error = None, None
        for attempt in range(self.spec.retries + 1):
            if attempt:
                await asyncio.sleep(self.spec.backoff * 2 ** (attempt - 1))
            try:
                status, status_error = await self._try(self._read_item(
                    meter, STATUS_WORD_3, stats))
            except AbnormalReply as exc:
                status_error = f'meter refused: {_refusal(exc)}'
                break
            if status is None:
                if ack_error is not None:
                    break           # the meter is silent: do not insist
                continue
            if status['relay'] == want:
                return {'relay': status['relay'], 'status_word_3':
                    status['word'], 'acknowledged': ack_error is None}
        if status is not None:
            note = ''
            if not trip and status['relay'] == 'open':
                note = await self._load_note(meter, stats)
            raise CommandFailed(f'{action} sent but status word 3 = '
                f'{status["word"]} shows the relay {status["relay"]} '
                f'(relay command: {status["relay_command"]}){note}',
                {'relay': status['relay'], 'status_word_3': status['word']})
        if ack_error is not None:
            raise CommandFailed(f'{action} not confirmed: {ack_error}; '
                f'status word 3 unreadable: {status_error}')
        raise CommandFailed(f'{action} acknowledged but status word 3 '
            f'unreadable: {status_error}')

    async def _remote_control(self, meter, action, payload, stats):
        """Send a DL/T645-2007 remote-control (0x1C) action; returns the
        acknowledgement's error (None when acknowledged), raises
        CommandFailed when the meter refuses it"""
        until = self._meter_now() + dt.timedelta(
            minutes=float(payload.get('valid_minutes', 30)))
        request = dlt645.control_request(meter.address, action,
            valid_until=until, password=meter.password,
            vendor=_vendor(meter))
        try:
            _, ack_error = await self._try(
                self._transact(meter, request, stats))
        except AbnormalReply as exc:
            raise CommandFailed(f'meter {meter.address} refused {action}: '
                f'{_refusal(exc)}', {'error_word': f'{exc.code:02X}'}) \
                from None
        return ack_error

    async def _command_hold(self, meter, payload, stats):
        return await self._hold(meter, payload, stats, hold=True)

    async def _command_hold_release(self, meter, payload, stats):
        return await self._hold(meter, payload, stats, hold=False)

    async def _hold(self, meter, payload, stats, *, hold):
        """保电 / 保电解除 (DL/T645-2007 remote control 3A / 3B), confirmed
        by the power-hold bit of status word 3"""
        self._need(meter, 'dlt645_2007', what='power hold')
        action = 'hold' if hold else 'hold-release'
        ack_error = await self._remote_control(meter, action, payload,
            stats)
        try:
            status, status_error = await self._try(self._read_item(
                meter, STATUS_WORD_3, stats))
        except AbnormalReply as exc:
            status, status_error = None, f'meter refused: {_refusal(exc)}'
        if status is None:
            raise CommandFailed(f'{action} not confirmed: '
                f'{ack_error or "acknowledged"}; status word 3 '
                f'unreadable: {status_error}')
        if bool(status['power_hold']) != hold:
            raise CommandFailed(f'{action} sent but status word 3 = '
                f'{status["word"]} shows power hold '
                f'{"on" if status["power_hold"] else "off"}',
                {'power_hold': bool(status['power_hold']),
                    'status_word_3': status['word']})
        return {'power_hold': hold, 'relay': status['relay'],
            'status_word_3': status['word'],
            'acknowledged': ack_error is None}

    async def _command_valve_open(self, meter, payload, stats):
        return await self._valve(meter, stats, open_valve=True)

    async def _command_valve_close(self, meter, payload, stats):
        return await self._valve(meter, stats, open_valve=False)

    async def _valve(self, meter, stats, *, open_valve):
        self._need(meter, CJT188, what='valve control')
        want = 'open' if open_valve else 'closed'
        vendor = _vendor(meter)
        try:
            reply, error = await self._try(self._transact(meter,
                lambda ser: cjt188.valve_request(meter.address, open_valve,
                    meter_type=meter.meter_type, ser=ser, vendor=vendor),
                stats))
        except AbnormalReply as exc:
            raise CommandFailed(f'meter {meter.address} refused the valve '
                f'command: {_refusal(exc)}') from None
        if reply is None:   # the reply was lost: ask the meter
            try:
                reply, read_error = await self._try(self._transact(meter,
                    lambda ser: cjt188.read_request(meter.address,
                        meter_type=meter.meter_type, ser=ser, vendor=vendor),
                    stats))
            except AbnormalReply as exc:
                read_error = exc.reason
            if reply is None:
                raise CommandFailed(f'valve {want} not confirmed: {error}; '
                    f'state unreadable: {read_error}')
        status = reply.fields['status']
        if status['valve'] != want:
            raise CommandFailed(f'valve is {status["valve"]} (ST '
                f'{status["st"]}), wanted {want}', {'valve': status['valve'],
                'st': status['st']})
        return {'valve': status['valve'], 'st': status['st']}

    async def _command_recharge(self, meter, payload, stats):
        self._need(meter, 'dlt645_2007', what='recharge')
        if 'count' not in payload or 'amount' not in payload:
            raise CommandFailed('recharge needs amount and count (the '
                "meter's purchase count after this purchase)")
        count = int(payload['count'])
        amount = Decimal(str(payload['amount']))
        vendor = _vendor(meter)
        auth = {'password': meter.password}
        if payload.get('security_off'):
            try:
                reply, error = await self._try(self._transact(meter,
                    recharge.security_request(meter.address, False,
                        vendor=vendor, **auth), stats))
            except AbnormalReply as exc:
                raise CommandFailed(f'meter {meter.address} refused to '
                    f'switch its security check off: {_refusal(exc)}') \
                    from None
            if reply is None:
                raise CommandFailed(f'security switch not acknowledged: '
                    f'{error}')
        try:
            request = recharge.purchase_request(meter.address, amount, count,
                vendor=vendor, **auth)
        except CodecError as exc:
            raise CommandFailed(exc.reason) from None
        try:
            reply, error = await self._try(
                self._transact(meter, request, stats))
        except AbnormalReply as exc:
            if any('duplicate' in r for r in exc.reasons):
                return {'count': count, 'duplicate': True}
            meter_count = await self._purchase_count(meter, stats)
            if meter_count == count:
                return {'count': count, 'duplicate': True}
            raise CommandFailed(f'meter {meter.address} refused the '
                f'purchase: {_refusal(exc)} (meter purchase count '
                f'{meter_count}, command count {count})',
                {'meter_count': meter_count}) from None
        meter_count = await self._purchase_count(meter, stats)
        if reply is not None:
            return {'count': count, 'purchase_count': meter_count}
        if meter_count == count:    # applied, the acknowledgement was lost
            return {'count': count, 'purchase_count': meter_count}
        raise CommandFailed(f'purchase not confirmed: {error}; meter '
            f'purchase count {meter_count}, command count {count}',
            {'meter_count': meter_count})

    async def _command_clear(self, meter, payload, stats):
        self._need(meter, 'dlt645_2007', what='remote clear')
        try:
            profile = get_vendor(_vendor(meter))
        except CodecError as exc:
            raise CommandFailed(exc.reason) from None
        di = profile.remaining_write
        if di is None:
            raise CommandFailed(f'remote clear: vendor profile '
                f'{profile.name} has no remaining-energy write')
        before = await self._read_needed(meter, REMAINING_DI, stats,
            f'the remaining energy ({REMAINING_DI}) before the clear')
        data = registry.lookup(di).encode(Decimal('0.00'))
        request = dlt645.write_request(meter.address, di, data,
            password=meter.password, version=dlt645.V2007,
            vendor=_vendor(meter))
        result = {'remaining_before': str(before)}
        try:
            _, ack_error = await self._try(
                self._transact(meter, request, stats))
        except AbnormalReply as exc:
            raise CommandFailed(f'meter {meter.address} refused the clear '
                f'({di}): {_refusal(exc)}', result) from None
        try:
            after, read_error = await self._try(self._read_item(meter,
                REMAINING_DI, stats))
        except AbnormalReply as exc:
            after, read_error = None, f'meter refused: {_refusal(exc)}'
        if after is None:
            ack = ('acknowledged' if ack_error is None
                else f'not acknowledged: {ack_error}')
            raise CommandFailed(f'clear {ack}; remaining energy unreadable: '
                f'{read_error}', {**result, 'unknown': True})
        if after != 0:
            raise CommandFailed(f'clear sent but the meter still has '
                f'{after} kWh remaining', {**result,
                    'remaining_after': str(after)})
        return {**result, 'remaining_after': str(after),
            'acknowledged': ack_error is None}

    async def _purchase_count(self, meter, stats):
        try:
            value, _ = await self._try(self._read_item(meter,
                recharge.COUNT_DI, stats))
        except AbnormalReply:
            return None
        return None if value is None else int(value)

    async def _command_time_sync(self, meter, payload, stats):
        self._need(meter, 'dlt645_2007', DLT645_1997, what='time sync')
        tolerance = float(payload.get('tolerance', 10))
        vendor = _vendor(meter)
        error = None
        for attempt in range(self.spec.retries + 1):
            if attempt:
                await asyncio.sleep(self.spec.backoff * 2 ** (attempt - 1))
            when = self._meter_now()
            stats.attempts += 1
            await self.transport.send(dlt645.time_sync_request(when,
                address=meter.address, vendor=vendor), self.spec.timeout)
            await asyncio.sleep(0.05)
            try:
                meter_time, read_error = await self._try(
                    self._meter_clock(meter, stats))
            except AbnormalReply as exc:
                raise CommandFailed('meter clock unreadable: '
                    f'{_refusal(exc)}') from None
            if meter_time is None:
                error = f'meter clock unreadable: {read_error}'
                continue
            drift = (meter_time - self._meter_now()).total_seconds()
            if abs(drift) <= tolerance:
                return {'meter_time': meter_time.isoformat(),
                    'drift': drift}
            error = (f'meter clock {meter_time.isoformat()} is {drift:+.0f} '
                f's off after the time sync')
        raise CommandFailed(error)

    async def _meter_clock(self, meter, stats) -> dt.datetime:
        if meter.protocol == DLT645_1997:
            date = await self._read_item(meter, 'C010', stats)
            clock = await self._read_item(meter, 'C011', stats)
            return dt.datetime.fromisoformat(f'{date["date"]}T{clock}')
        try:
            value = await self._read_item(meter, '0400010C', stats)
            return dt.datetime.fromisoformat(value)
        except AbnormalReply:
            date = await self._read_item(meter, '04000101', stats)
            clock = await self._read_item(meter, '04000102', stats)
            return dt.datetime.fromisoformat(f'{date["date"]}T{clock}')

    async def _write(self, meter, di, value, stats, what, result=None):
        """A 0x14 (1997: 0x04) write of ``value`` (bytes, or encoded
        through the registry), acknowledged; ``what`` names it in errors,
        ``result`` goes with them."""
        version = _VERSIONS[meter.protocol]
        request = dlt645.write_request(meter.address, di, value,
            password=meter.password, version=version, vendor=_vendor(meter))
        try:
            reply, error = await self._try(
                self._transact(meter, request, stats))
        except AbnormalReply as exc:
            raise CommandFailed(f'meter {meter.address} refused the write of '
                f'{what}: {_refusal(exc)}', result) from None
        if reply is None:
            raise CommandFailed(f'write of {what} not acknowledged: {error}',
                result)

    async def _command_param_write(self, meter, payload, stats):
        self._need(meter, 'dlt645_2007', DLT645_1997, what='parameter write')
        if 'params' in payload:
            return await self._write_params(meter, payload, stats)
        version = _VERSIONS[meter.protocol]
        di = str(payload['di']).upper()
        if 'data' in payload:
            value = bytes.fromhex(payload['data'])
        else:
            value = _write_value(registry.lookup(di, version),
                payload['value'])
        await self._write(meter, di, value, stats, di)
        result = {'di': di}
        if registry.lookup(di, version) is not None:
            try:
                back, _ = await self._try(self._read_item(meter, di, stats,
                    retries=0))
            except AbnormalReply:
                back = None
            if back is not None:
                result['value'] = (str(back) if not isinstance(back, dict)
                    else back)
        return result


def _vendor(meter):
    return None if meter.vendor in (None, '', 'standard') else meter.vendor


def _refusal(exc) -> str:
    """What an abnormal reply (or codec error) says, without the
    'meter X refused Y:' prefix."""
    reasons = getattr(exc, 'reasons', None)
    return '; '.join(reasons) if reasons else exc.reason


def _write_value(entry, value):
    """A payload value (JSON: text or number) as the codec's registry
    encodes it."""
    kind = getattr(entry, 'kind', None)
    if kind == registry.NUMBER:
        return Decimal(str(value))
    if isinstance(value, str):
        parse = {registry.TIME: dt.time.fromisoformat,
            registry.DATE: dt.date.fromisoformat,
            registry.DATETIME: dt.datetime.fromisoformat}.get(kind)
        if parse is not None:
            return parse(value)
    return value

