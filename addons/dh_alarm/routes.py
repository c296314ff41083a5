# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The wall status board's routes (状态报警界面), under ``/<database>/dh/board``:

* ``GET /<db>/dh/board`` — the page (Chinese, inline CSS and JS, no CDN);
* ``GET /<db>/dh/board/data[?area=<id>]`` — counts per state and the tiles;
* ``GET /<db>/dh/board/alarms/<meter id>`` — that meter's open alarms.

and ``GET /<db>/dh/metrics`` — Prometheus text (metrics.py; a bearer
token or loopback clients, not the sign-in below).

Sign-in is Tryton's own (``app.auth_required``): the ``tryton_session``
cookie that the web client (sao 8.0) receives at sign-in (path
``/<db>``, HttpOnly), an ``Authorization: Session …`` header, or HTTP Basic
with a Tryton login and password (the browser asks when there is no
session).  Every request runs as that user with ``_check_access``: the
record rules (a 片区经理's areas) apply."""
import json
import time

from trytond.protocols.wrappers import (
    HTTPStatus, Response, abort, with_pool, with_transaction)
from trytond.wsgi import app

from . import board, metrics

PREFIX = '/<database_name>/dh/board'
CONTEXT = {'_check_access': True, 'language': 'zh_CN'}


def _json(data, status=200, headers=None):
    return Response(json.dumps(data, ensure_ascii=False,
            separators=(',', ':')).encode('utf-8'), status=status,
        content_type='application/json; charset=utf-8',
        headers={'Cache-Control': 'no-store', **(headers or {})})


@app.route(PREFIX, methods=['GET'])
@app.auth_required
@with_pool
@with_transaction(user='request', context=CONTEXT)
def page(request, pool):
    interval = request.args.get('interval', type=int) or 10
    interval = min(max(interval, 2), 600)
    html = PAGE.replace('__INTERVAL__', str(interval))
    return Response(html.encode('utf-8'),
        content_type='text/html; charset=utf-8',
        headers={'Cache-Control': 'no-store',
            'Content-Security-Policy': "default-src 'self'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            'X-Frame-Options': 'DENY'})


@app.route(PREFIX + '/data', methods=['GET'])
@app.auth_required
@with_pool
@with_transaction(user='request', context=CONTEXT)
def data(request, pool):
    start = time.perf_counter()
    area = request.args.get('area', type=int)
    result = board.tiles(area)
    if request.args.get('areas'):
        result['areas'] = board.areas()
    # the time of the rules and the query (the sign-in check not included)
    return _json(result, headers={'Server-Timing':
            f'board;dur={(time.perf_counter() - start) * 1000:.1f}'})


@app.route(PREFIX + '/alarms/<int:meter_id>', methods=['GET'])
@app.auth_required
@with_pool
@with_transaction(user='request', context=CONTEXT)
def alarms(request, pool, meter_id):
    result = board.meter_alarms(meter_id)
    if result is None:
        abort(HTTPStatus.NOT_FOUND)
    return _json(result)


@app.route('/<database_name>/dh/metrics', methods=['GET'])
@with_pool
@with_transaction(readonly=True)
def prometheus(request, pool):
    """Prometheus text (metrics.py): a bearer token when [dh]
    metrics_token is set, else loopback clients only"""
    if not metrics.allowed(request):
        abort(HTTPStatus.FORBIDDEN)
    return Response(metrics.exposition(metrics.figures()),
        content_type=metrics.CONTENT_TYPE,
        headers={'Cache-Control': 'no-store'})


PAGE = r'''<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>状态报警界面</title>
<style>
*{box-sizing:border-box}
body{margin:0;font:13px/1.3 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;
background:#d9dde3;color:#222}
header{display:flex;flex-wrap:wrap;align-items:center;gap:8px 14px;
padding:6px 10px;background:#24415f;color:#fff;position:sticky;top:0;z-index:2}
header h1{font-size:16px;margin:0 8px 0 0}
header select,header button{font:inherit;padding:2px 4px}
.count{display:inline-flex;align-items:center;gap:4px;cursor:pointer;
padding:1px 6px;border-radius:3px}
.count.off{opacity:.45}
.sw{display:inline-block;width:14px;height:14px;border:1px solid #888}
#at{margin-left:auto;font-size:12px;opacity:.85}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(112px,1fr));
gap:2px;padding:4px}
.t{height:24px;padding:3px 3px;border:1px solid #999;overflow:hidden;
white-space:nowrap;text-overflow:ellipsis;cursor:pointer;font-size:12px}
.t:hover{outline:2px solid #1a73e8}
.normal{background:#fff;color:#222}
.alarm{background:#f7d51d;color:#222}
.cutoff{background:#111;color:#eee}
.fault{background:#d92b2b;color:#fff}
.offline{background:#9a9a9a;color:#222}
.t sup{font-size:10px;margin-left:2px}
#panel{position:fixed;right:0;top:0;bottom:0;width:420px;max-width:100%;
background:#fff;box-shadow:-2px 0 8px #0005;padding:10px 14px;overflow:auto;
display:none;z-index:3}
#panel h2{font-size:16px;margin:0 0 6px}
#panel table{border-collapse:collapse;width:100%;font-size:12px}
#panel td,#panel th{border:1px solid #ccc;padding:3px 4px;text-align:left}
#err{color:#ffb4b4}
</style></head><body>
<header><h1>状态报警界面</h1>
<label>区域 <select id="area"><option value="">全部</option></select></label>
<span id="counts"></span><span>合计 <b id="total">0</b></span>
<span id="err"></span><span id="at"></span></header>
<div id="grid" aria-live="polite"></div>
<aside id="panel"><button id="close" style="float:right">关闭</button>
<div id="detail"></div></aside>
<script>
(function(){
'use strict';
var INTERVAL=__INTERVAL__*1000,base=location.pathname.replace(/\/+$/,'');
var grid=document.getElementById('grid'),areaSel=document.getElementById('area');
var hidden={},first=true,timer=null,last=null;
function esc(s){return String(s==null?'':s).replace(/[&<>"']/g,function(c){
return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c];});}
function get(url){return fetch(url,{credentials:'same-origin',
headers:{'Accept':'application/json'}}).then(function(r){
if(!r.ok){throw new Error('HTTP '+r.status);}return r.json();});}
function render(d){
var names={},html=[],i,t,c=[];
d.states.forEach(function(s){names[s.state]=s.name;
c.push('<span class="count'+(hidden[s.state]?' off':'')+'" data-state="'+s.state+
'" title="点击显示/隐藏"><i class="sw '+s.state+'"></i>'+esc(s.name)+
' <b>'+s.count+'</b></span>');});
document.getElementById('counts').innerHTML=c.join(' ');
document.getElementById('total').textContent=d.total;
for(i=0;i<d.tiles.length;i++){t=d.tiles[i];if(hidden[t[2]]){continue;}
html.push('<div class="t '+t[2]+'" data-id="'+t[0]+'" title="'+esc(t[1])+' · '+
esc(names[t[2]])+(t[3]?' · 报警 '+t[3]:'')+'">'+esc(t[1])+
(t[3]?'<sup>'+t[3]+'</sup>':'')+'</div>');}
grid.innerHTML=html.join('');
document.getElementById('at').textContent='更新于 '+d.at+' · 每'+(INTERVAL/1000)+'秒刷新';
}
function load(){
var url=base+'/data?area='+encodeURIComponent(areaSel.value)+(first?'&areas=1':'');
return get(url).then(function(d){
if(d.areas){d.areas.forEach(function(a){var o=document.createElement('option');
o.value=a.id;o.textContent=(a.level==='2'?'\u3000':'')+a.name;areaSel.appendChild(o);});
first=false;}
last=d;render(d);document.getElementById('err').textContent='';
document.body.setAttribute('data-loaded','1');
}).catch(function(e){document.getElementById('err').textContent='刷新失败：'+e.message;});
}
function schedule(){clearTimeout(timer);timer=setTimeout(function(){
load().then(schedule);},INTERVAL);}
function show(id){
var panel=document.getElementById('panel'),det=document.getElementById('detail');
det.innerHTML='加载中…';panel.style.display='block';
get(base+'/alarms/'+id).then(function(d){
var m=d.meter,h=['<h2>'+esc(m.name)+'</h2><p>编号 '+esc(m.number)+' · '+
esc(m.area)+'<br>状态 '+esc(m.state_name)+(m.last_read_at?' · 最后抄表 '+esc(m.last_read_at):'')+'</p>'];
if(!d.alarms.length){h.push('<p>没有未关闭的报警。</p>');}
else{h.push('<table><tr><th>类型</th><th>状态</th><th>开始</th><th>数值</th><th>阈值</th><th>说明</th></tr>');
d.alarms.forEach(function(a){h.push('<tr class="alarm-row"><td>'+esc(a.kind_name)+'</td><td>'+
esc(a.state_name)+'</td><td>'+esc(a.start)+'</td><td>'+esc(a.value)+'</td><td>'+
esc(a.threshold)+'</td><td>'+esc(a.description||a.period)+'</td></tr>');});
h.push('</table>');}
det.innerHTML=h.join('');
}).catch(function(e){det.textContent='加载失败：'+e.message;});
}
grid.addEventListener('click',function(e){var t=e.target.closest('.t');
if(t){show(t.getAttribute('data-id'));}});
document.getElementById('counts').addEventListener('click',function(e){
var c=e.target.closest('.count');if(c){var s=c.getAttribute('data-state');
hidden[s]=!hidden[s];if(last){render(last);}}});
document.getElementById('close').addEventListener('click',function(){
document.getElementById('panel').style.display='none';});
areaSel.addEventListener('change',function(){load().then(schedule);});
load().then(schedule);
})();
</script></body></html>
'''
