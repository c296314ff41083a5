# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The portal's pages: mobile-first HTML in Chinese, one small stylesheet
and one small script served by the module (no framework, no CDN), charts
as inline SVG.  Functions of plain data returning HTML; every value is
escaped."""
import datetime as dt
import json
from decimal import Decimal
from html import escape

from . import charts
from .portal import (
    CHANNEL_ZH, RECHARGE_STATE_ZH, REFUND_KIND_ZH, local)
from .tenant import mask

NAV = [('meters', '表计'), ('recharge', '充值'), ('history', '记录'),
    ('alarms', '提醒'), ('account', '我的')]
ON = ' class="on"'


def e(value):
    return escape('' if value is None else str(value), quote=True)


def money(value):
    if value is None:
        return '-'
    return f'{Decimal(str(value)):,.2f}'


def number(value, digits=2):
    if value is None:
        return '-'
    return f'{Decimal(str(value)):,.{digits}f}'


def when(value, fmt='%Y-%m-%d %H:%M'):
    if not value:
        return '-'
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.strftime(fmt)


def layout(base, title, body, nav=None, tenant=None, extra_head=''):
    """A whole page; base: the portal's URL prefix (/<db>/dh/wx)"""
    tabs = ''
    if nav is not None:
        tabs = '<nav class="tabs">' + ''.join(
            f'<a href="{base}/{key}"'
            f'{ON if key == nav else ""}>{label}</a>'
            for key, label in NAV) + '</nav>'
    who = ''
    if tenant is not None:
        who = f'<span class="who">{e(tenant.display_name())}</span>'
    return ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1,'
        'viewport-fit=cover">'
        f'<title>{e(title)} - 水电缴费</title>'
        f'<link rel="stylesheet" href="{base}/static/portal.css">'
        f'{extra_head}</head><body>'
        f'<header><h1>{e(title)}</h1>{who}</header><main>{body}</main>'
        f'{tabs}<script src="{base}/static/portal.js" defer></script>'
        '</body></html>')


def message(base, title, text, link=None, label='返回'):
    body = f'<section class="card"><p>{e(text)}</p>'
    if link:
        body += f'<p><a class="button" href="{e(link)}">{e(label)}</a></p>'
    body += '</section>'
    return layout(base, title, body)


def login(base, csrf, error=None, login_value='', pending=False,
        oauth_link=None):
    parts = []
    if pending:
        parts.append('<p class="note">首次在微信中使用，请输入物业提供的账号和'
            '密码，登录后将绑定此微信，以后打开无需再输入密码。</p>')
    if error:
        parts.append(f'<p class="error" role="alert">{e(error)}</p>')
    parts.append(f'<form method="post" action="{base}/login" class="card">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label>账号<input name="login" autocomplete="username" '
        f'value="{e(login_value)}" required maxlength="64"></label>'
        '<label>密码<input name="password" type="password" '
        'autocomplete="current-password" required maxlength="128"></label>'
        '<button type="submit" class="primary">'
        + ('登录并绑定微信' if pending else '登录') + '</button></form>')
    if oauth_link:
        parts.append(f'<p class="center"><a href="{e(oauth_link)}">'
            '使用微信授权登录</a></p>')
    parts.append('<p class="hint">账号和密码由物业管理处设置，忘记请联系物业。</p>')
    return layout(base, '用户登录', ''.join(parts))


def _remaining(card):
    kind, value = card['remaining'] or (None, None)
    if kind == 'money':
        cls = ' low' if value is not None and value <= 0 else ''
        return (f'<div class="big{cls}">¥{money(value)}</div>'
            '<div class="label">钱包余额</div>')
    if kind == 'energy':
        return (f'<div class="big">{number(value)} <small>度</small></div>'
            '<div class="label">剩余电量</div>')
    if kind == 'postpaid':
        return '<div class="big small">后付费</div><div class="label">计费方式</div>'
    return ''


def meters(base, tenant, cards):
    if not cards:
        body = ('<section class="card"><p>您的账号下还没有表计，请联系物业。'
            '</p></section>')
        return layout(base, '我的表计', body, nav='meters', tenant=tenant)
    parts = []
    wallets = tenant.wallets()
    if len(wallets) == 1 and sum(1 for c in cards
            if c['remaining'] and c['remaining'][0] == 'money') > 1:
        wallet = wallets[0]
        parts.append('<section class="card wallet"><div class="label">'
            f'钱包 {e(wallet["code"])}（多间统一充值）</div>'
            f'<div class="big{" low" if wallet["balance"] <= 0 else ""}">'
            f'¥{money(wallet["balance"])}</div>'
            f'<a class="button primary" href="{base}/recharge">充值</a>'
            '</section>')
    for card in cards:
        meter = card['meter']
        room = ' / '.join(e(meter[f'level{i}']) for i in range(1, 5)
            if meter[f'level{i}'])
        parts.append(
            f'<section class="card meter" data-meter="{meter["id"]}">'
            f'<div class="head"><span class="name">{e(meter["name"])}</span>'
            f'<span class="state {e(card["state"])}">{e(card["state_zh"])}'
            '</span></div>'
            f'<div class="room">{room}</div>'
            f'{_remaining(card)}'
            '<dl>'
            f'<dt>类型</dt><dd>{e(card["utility"])}</dd>'
            f'<dt>表计地址</dt><dd>{e(meter["address"])}</dd>'
            f'<dt>最近读数</dt><dd>{number(card["last_value"])} '
            f'{e(card["unit"])}</dd>'
            f'<dt>抄读时间</dt><dd>{when(card["last_at"])}</dd>'
            '</dl><div class="actions">'
            f'<a href="{base}/usage/{meter["id"]}">用量</a>'
            + (f'<a class="primary" href="{base}/recharge?meter='
                f'{meter["id"]}">充值</a>'
                if card['remaining'] and card['remaining'][0] in {
                    'money', 'energy'} else '')
            + '</div></section>')
    return layout(base, '我的表计', ''.join(parts), nav='meters',
        tenant=tenant)


def usage(base, tenant, meter, view, period, labels, values, unit,
        meters_list):
    title = f'{meter["name"]} 用量'
    if view == 'year':
        caption = f'{period.year}年 每月用量'
        prev = f'?view=year&year={period.year - 1}'
        nxt = f'?view=year&year={period.year + 1}'
        every = 1
    else:
        caption = f'{period:%Y年%m月} 每日用量'
        before = (period.replace(day=1) - dt.timedelta(days=1))
        after = (period.replace(day=28) + dt.timedelta(days=4))
        prev = f'?view=month&month={before:%Y-%m}'
        nxt = f'?view=month&month={after:%Y-%m}'
        every = 5
    known = [v for v in values if v is not None]
    total = sum(known, Decimal(0))
    svg = charts.bar_chart(values, labels, unit=unit, title=caption,
        label_every=every)
    switch = (f'<div class="switch"><a href="{base}/usage/{meter["id"]}'
        f'?view=month"{ON if view != "year" else ""}>按日</a>'
        f'<a href="{base}/usage/{meter["id"]}?view=year"'
        f'{ON if view == "year" else ""}>按月</a></div>')
    others = ''
    if len(meters_list) > 1:
        others = '<div class="chips">' + ''.join(
            f'<a href="{base}/usage/{m["id"]}?view={view}"'
            f'{ON if m["id"] == meter["id"] else ""}>'
            f'{e(m["name"])}</a>' for m in meters_list) + '</div>'
    body = (others + switch + '<section class="card">'
        f'<div class="pager"><a href="{base}/usage/{meter["id"]}{prev}">‹</a>'
        f'<span>{e(caption)}</span>'
        f'<a href="{base}/usage/{meter["id"]}{nxt}">›</a></div>'
        f'{svg}<p class="total">合计 {number(total)} {e(unit)}</p>'
        '</section>')
    rows = ''.join(f'<tr><td>{e(label)}</td><td>{number(value)}</td></tr>'
        for label, value in zip(labels, values) if value is not None)
    if rows:
        body += ('<section class="card"><table><thead><tr><th>'
            + ('月份' if view == 'year' else '日期')
            + f'</th><th>用量({e(unit)})</th></tr></thead><tbody>{rows}'
            '</tbody></table></section>')
    return layout(base, title, body, nav='meters', tenant=tenant)


def history(base, tenant, tab, recharges, refunds, allocations, wallets,
        meters_list):
    tabs = [('recharges', '充值'), ('refunds', '退费'), ('allocations', '分摊'),
        ('statement', '对账单')]
    head = '<div class="switch">' + ''.join(
        f'<a href="{base}/history?tab={key}"'
        f'{ON if key == tab else ""}>{label}</a>'
        for key, label in tabs) + '</div>'
    parts = [head]
    if tab == 'refunds':
        if not refunds:
            parts.append('<section class="card"><p>暂无退费记录</p></section>')
        for r in refunds:
            parts.append('<section class="card row">'
                f'<div><b>{e(REFUND_KIND_ZH.get(r["kind"], r["kind"]))}</b>'
                f'<div class="label">{when(local(r["date"]))} · '
                f'{e(CHANNEL_ZH.get(r["channel"], r["channel"]))}</div></div>'
                f'<div class="amount">-¥{money(r["amount"])}</div>'
                '</section>')
    elif tab == 'allocations':
        if not allocations:
            parts.append('<section class="card"><p>暂无分摊记录</p></section>')
        for a in allocations:
            inputs = ''.join(f'<dt>{e(k)}</dt><dd>{e(v)}</dd>'
                for k, v in a['inputs'])
            parts.append('<section class="card">'
                f'<div class="head"><b>{e(a["kind"])}：{e(a["source"])}</b>'
                f'<span class="amount">-¥{money(a["amount"])}</span></div>'
                f'<div class="label">{e(a["start"])} ~ {e(a["end"])}</div>'
                '<dl>'
                f'<dt>分摊依据</dt><dd>{e(a["basis"])}</dd>'
                f'<dt>总用量</dt><dd>{number(a["total"])} 度</dd>'
                f'<dt>本户表计</dt><dd>{e(a["meter"])}</dd>'
                f'{inputs}'
                f'<dt>分摊用量</dt><dd>{number(a["energy"])} 度 × '
                f'{number(a["price"], 4)} 元</dd>'
                '</dl></section>')
    elif tab == 'statement':
        today = dt.date.today()
        wallet_options = ''.join(
            f'<option value="{w["id"]}">{e(w["code"])}</option>'
            for w in wallets)
        meter_options = '<option value="">全部房间</option>' + ''.join(
            f'<option value="{m["id"]}">{e(m["name"])}</option>'
            for m in meters_list)
        parts.append(f'<form method="get" action="{base}/statement.xlsx" '
            'class="card">'
            f'<label>钱包<select name="wallet">{wallet_options}</select>'
            '</label>'
            f'<label>房间/表计<select name="meter">{meter_options}</select>'
            '</label>'
            '<label>开始日期<input type="date" name="from" '
            f'value="{today.replace(day=1):%Y-%m-%d}" required></label>'
            '<label>结束日期<input type="date" name="to" '
            f'value="{today:%Y-%m-%d}" required></label>'
            '<button type="submit" class="primary">下载对账单（Excel）</button>'
            '</form>')
    else:
        if not recharges:
            parts.append('<section class="card"><p>暂无充值记录</p></section>')
        for r in recharges:
            meter = (r.get('meter.') or {}).get('name')
            detail = ''
            if r['mode'] == 'energy' and r['kwh']:
                detail = (f'<div class="label">购电 {r["kwh"]} 度 · 实缴 '
                    f'¥{money(r["paid"])} · {e(meter or "")}</div>')
            state = RECHARGE_STATE_ZH.get(r['state'], r['state'])
            if r['mode'] != 'energy':
                state = '已到账'
            parts.append('<section class="card row">'
                f'<div><b>充值 · {e(CHANNEL_ZH.get(r["channel"], ""))}</b>'
                f'<div class="label">{when(local(r["date"]))}</div>{detail}'
                f'<div class="label">{e(state)} · 余额 '
                f'¥{money(r["wallet_after"])}</div></div>'
                f'<div class="amount plus">+¥{money(r["amount"])}</div>'
                '</section>')
    return layout(base, '缴费记录', ''.join(parts), nav='history',
        tenant=tenant)


def alarms(base, tenant, open_alarms, messages, binding, kind_names,
        saved=False):
    parts = []
    parts.append('<h2>当前报警</h2>')
    if not open_alarms:
        parts.append('<section class="card"><p>没有未处理的报警</p></section>')
    for alarm in open_alarms:
        meter = (alarm.get('meter.') or {}).get('name', '')
        value = alarm['value']
        parts.append('<section class="card row">'
            f'<div><b>{e(kind_names.get(alarm["kind"], alarm["kind"]))}</b>'
            f'<div class="label">{e(meter)} · {when(local(alarm["start"]))}'
            '</div></div>'
            + (f'<div class="amount">{number(value)}</div>'
                if value is not None else '') + '</section>')
    parts.append('<h2>最近提醒</h2>')
    if not messages:
        parts.append('<section class="card"><p>暂无提醒</p></section>')
    for msg in messages:
        parts.append('<section class="card"><p>'
            f'{e(msg["text"])}</p><div class="label">'
            f'{when(local(msg["create_date"]))}</div></section>')
    parts.append('<h2>微信消息提醒</h2>')
    if binding is None:
        parts.append('<section class="card"><p>在微信中打开并绑定账号后，可订阅'
            '余额不足、断电等模板消息。</p>'
            f'<p><a class="button" href="{base}/oauth">绑定微信</a></p>'
            '</section>')
    else:
        options = [('notify_low_balance', '余额不足提醒'),
            ('notify_supply', '断电 / 恢复供电通知'),
            ('notify_monthly', '月度用量通知'), ('notify_alarm', '报警通知')]
        boxes = ''.join(f'<label class="check"><input type="checkbox" '
            f'name="{key}" value="1"'
            f'{" checked" if getattr(binding, key) else ""}>{label}</label>'
            for key, label in options)
        note = '<p class="ok" role="status">已保存</p>' if saved else ''
        parts.append(f'<form method="post" action="{base}/alarms/subscribe" '
            f'class="card">{note}'
            f'<input type="hidden" name="csrf" value="{e(tenant.csrf)}">'
            f'{boxes}<p class="hint">消息发送到微信号 {e(mask(binding.openid))}'
            '，需关注本公众号。</p>'
            '<button type="submit" class="primary">保存</button></form>')
    return layout(base, '提醒', ''.join(parts), nav='alarms', tenant=tenant)


def recharge(base, tenant, targets, presets, selected, amount_text,
        custom_text, error=None, need_wechat=False, oauth_link=None,
        minimum=None, maximum=None):
    parts = []
    if error:
        parts.append(f'<p class="error" role="alert">{e(error)}</p>')
    if not targets:
        parts.append('<section class="card"><p>没有可以充值的表计或钱包，'
            '请联系物业。</p></section>')
        return layout(base, '充值', ''.join(parts), nav='recharge',
            tenant=tenant)
    if need_wechat:
        parts.append('<section class="card note"><p>微信支付需要在微信中打开'
            '并绑定账号。</p>'
            + (f'<p><a class="button" href="{e(oauth_link)}">绑定微信</a></p>'
                if oauth_link else '') + '</section>')
    rows = []
    for value, label, wallet, meter in targets:
        current = ''
        if meter is not None:
            current = f'剩余 {number(meter["remaining"])} 度'
        else:
            current = f'余额 ¥{money(wallet["balance"])}'
        rows.append(f'<label class="choice"><input type="radio" '
            f'name="target" value="{e(value)}" required'
            f'{" checked" if value == selected else ""}>'
            f'<span>{e(label)}<small>{e(current)}</small></span></label>')
    chips = ''.join(f'<label class="chip"><input type="radio" name="amount" '
        f'value="{p:.2f}"{" checked" if amount_text == f"{p:.2f}" else ""}>'
        f'<span>{p:.0f}元</span></label>' for p in presets)
    limits = ''
    if minimum is not None:
        limits = (f'<p class="hint">单次 {minimum:.2f} ~ {maximum:.2f} 元'
            '，支付成功后自动到账。</p>')
    parts.append(f'<form method="post" action="{base}/recharge" '
        'class="card" id="recharge-form">'
        f'<input type="hidden" name="csrf" value="{e(tenant.csrf)}">'
        f'<fieldset><legend>充值到</legend>{"".join(rows)}</fieldset>'
        f'<fieldset><legend>金额</legend><div class="chips">{chips}</div>'
        '<label>其他金额（元）<input name="custom" inputmode="decimal" '
        f'maxlength="12" placeholder="输入金额" value="{e(custom_text)}">'
        f'</label></fieldset>{limits}'
        '<button type="submit" class="primary">微信支付</button></form>')
    return layout(base, '充值', ''.join(parts), nav='recharge',
        tenant=tenant)


def order(base, tenant, order, params, status_url, cashier_url,
        target_label):
    energy = bool(order.meter and order.meter.billing_mode == 'energy')
    steps = [('pending', '待支付'), ('paid', '已支付')]
    if energy:
        steps.append(('delivered', '已下发到表'))
    step_html = ''.join(f'<li data-step="{key}">{label}</li>'
        for key, label in steps)
    payload = ''
    if params:
        payload = ('<script type="application/json" id="jsapi">'
            + json.dumps(params).replace('<', '\\u003c') + '</script>')
    body = (f'<section class="card order" id="order" '
        f'data-status-url="{e(status_url)}" data-state="{e(order.state)}" '
        f'data-energy="{1 if energy else 0}">'
        f'<div class="label">订单号 {e(order.number)}</div>'
        f'<div class="big">¥{money(order.amount)}</div>'
        f'<div class="label">{e(target_label)}</div>'
        f'<ol class="steps">{step_html}</ol>'
        '<p class="status" id="status" role="status">正在查询支付状态…</p>'
        '<p class="result" id="result"></p>'
        '<button type="button" class="primary" id="pay" hidden>'
        '微信支付</button>'
        + (f'<p class="sandbox"><a class="button" id="cashier" '
            f'href="{e(cashier_url)}" hidden>模拟支付（演示环境）</a></p>'
            if cashier_url else '')
        + f'<p><a href="{base}/meters">返回我的表计</a> · '
        f'<a href="{base}/history">查看记录</a></p>'
        f'</section>{payload}')
    return layout(base, '支付', body, nav='recharge', tenant=tenant)


def account(base, tenant, bindings, current_openid):
    user = tenant.web_user
    rows = []
    for binding in bindings:
        this = ' <span class="tag">当前</span>' if \
            binding.openid == current_openid else ''
        rows.append('<li><div>微信 '
            f'{e(mask(binding.openid))}{this}<div class="label">绑定于 '
            f'{when(binding.bound_at)}</div></div>'
            f'<form method="post" action="{base}/unbind">'
            f'<input type="hidden" name="csrf" value="{e(tenant.csrf)}">'
            f'<input type="hidden" name="binding" value="{binding.id}">'
            '<button type="submit" class="link">解除绑定</button></form></li>')
    bound = ('<ul class="list">' + ''.join(rows) + '</ul>') if rows else \
        '<p>尚未绑定微信。</p>'
    wallets = ''.join(f'<li>钱包 {e(w["code"])}：¥{money(w["balance"])}</li>'
        for w in tenant.wallets())
    body = ('<section class="card"><dl>'
        f'<dt>账号</dt><dd>{e(user.dh_login or user.email)}</dd>'
        f'<dt>住户</dt><dd>{e(tenant.display_name())}</dd></dl>'
        f'<ul class="list">{wallets}</ul></section>'
        f'<h2>微信绑定</h2><section class="card">{bound}'
        f'<p><a href="{base}/oauth">绑定当前微信</a></p></section>'
        f'<form method="post" action="{base}/logout" class="center">'
        f'<input type="hidden" name="csrf" value="{e(tenant.csrf)}">'
        '<button type="submit">退出登录</button></form>')
    return layout(base, '我的', body, nav='account', tenant=tenant)
