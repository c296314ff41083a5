# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""WeChat template messages for the alarm notifications: the tenants bound
to a meter become ('wechat', openid) recipients (when they subscribed to
that kind of message), and the 'wechat' channel sends through the
official account of the meter's company (access_token from the
database, fetched again once when WeChat says it expired)."""
from sql import Null

from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from trytond.modules.dh_alarm.notification import TEMPLATES
from trytond.modules.dh_alarm.sms import SmsError

from .oa import OAError

# where the message's link leads on the portal
LINKS = {'low_balance': 'recharge', 'cutoff': 'recharge',
    'restored': 'meters', 'monthly_usage': 'meters', 'alarm': 'alarms'}


def _chunks(items, size=500):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Notification(metaclass=PoolMeta):
    __name__ = 'dh.notification'

    @classmethod
    def recipients(cls, meters, profiles):
        result = super().recipients(meters, profiles)
        openids = cls._wechat_openids(list(meters))
        for meter_id, found in openids.items():
            result.setdefault(meter_id, [])
            for openid in found:
                if ('wechat', openid) not in result[meter_id]:
                    result[meter_id].append(('wechat', openid))
        return result

    @classmethod
    def _wechat_openids(cls, meter_ids):
        """{meter id: [openid]}: the bound WeChat of every portal account
        speaking for the meter's tenant or the party its wallet belongs to"""
        pool = Pool()
        Meter = pool.get('dh.meter')
        Wallet = pool.get('dh.wallet')
        WebUser = pool.get('web.user')
        Secondary = pool.get('web.user-party.party.secondary')
        Binding = pool.get('dh.wechat.binding')
        meter, wallet = Meter.__table__(), Wallet.__table__()
        user, secondary = WebUser.__table__(), Secondary.__table__()
        binding = Binding.__table__()
        cursor = Transaction().connection.cursor()
        parties = {}
        for chunk in _chunks(meter_ids):
            cursor.execute(*meter.join(wallet, 'LEFT',
                    condition=meter.wallet == wallet.id).select(
                    meter.id, meter.tenant, wallet.party,
                    where=meter.id.in_(chunk)))
            for meter_id, tenant, payer in cursor:
                parties[meter_id] = {p for p in (tenant, payer) if p}
        wanted = sorted({p for ps in parties.values() for p in ps})
        if not wanted:
            return {}
        by_party = {}
        for chunk in _chunks(wanted):
            cursor.execute(*user.join(binding,
                    condition=binding.web_user == user.id).select(
                    user.party, binding.openid,
                    where=user.party.in_(chunk) & (user.active == True)))  # noqa
            for party, openid in cursor:
                by_party.setdefault(party, []).append(openid)
            cursor.execute(*secondary.join(user,
                    condition=secondary.user == user.id).join(binding,
                    condition=binding.web_user == user.id).select(
                    secondary.party, binding.openid,
                    where=secondary.party.in_(chunk)
                    & (user.active == True)  # noqa
                    & (binding.openid != Null)))
            for party, openid in cursor:
                by_party.setdefault(party, []).append(openid)
        return {m: list(dict.fromkeys(o for p in sorted(ps)
                    for o in by_party.get(p, [])))
            for m, ps in parties.items() if ps}

    @classmethod
    def notify_many(cls, items):
        "WeChat recipients only get the messages they subscribed to"
        Binding = Pool().get('dh.wechat.binding')
        filtered = []
        for template, params, recipients, key, meter, alarm in items:
            openids = {r for c, r in recipients if c == 'wechat'}
            if openids:
                keep = Binding.subscribed(openids, template)
                recipients = [(c, r) for c, r in recipients
                    if c != 'wechat' or r in keep]
            filtered.append((template, params, recipients, key, meter,
                    alarm))
        return super().notify_many(filtered)

    @classmethod
    def senders(cls):
        senders = super().senders()
        senders['wechat'] = cls._send_wechat
        return senders

    @classmethod
    def _send_wechat(cls, notification, config):
        pool = Pool()
        Binding = pool.get('dh.wechat.binding')
        bindings = Binding.search([('openid', '=', notification.recipient)],
            limit=1)
        if not bindings:
            raise SmsError('unbound', gettext('dh_wechat.msg_send_unbound'),
                False)
        wechat = bindings[0].config
        template_id = wechat.template_id(notification.template)
        if not template_id:
            raise SmsError('no-template', gettext(
                    'dh_wechat.msg_send_no_template',
                    template=notification.template), False)
        _, order = TEMPLATES[notification.template]
        params = dict(notification.params or {})
        data = {'first': notification.text or ''}
        for i, name in enumerate(order, 1):
            data[f'keyword{i}'] = str(params.get(name, ''))
        data['remark'] = '点击查看详情'
        database = Transaction().database.name
        url = (f'{wechat.portal_url.rstrip("/")}/{database}/dh/wx/'
            f'{LINKS.get(notification.template, "meters")}')
        client = wechat.oa_client()
        for attempt in (1, 2):
            try:
                token = wechat.get_access_token(force=attempt == 2)
                return client.send_template(token, notification.recipient,
                    template_id, data, url=url)
            except OAError as error:
                if error.token_invalid and attempt == 1:
                    continue
                raise SmsError(str(error.code), error.message,
                    error.retryable)
