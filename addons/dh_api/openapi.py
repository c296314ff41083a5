# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The hand-written OpenAPI 3.1 document (openapi.json beside this file)
and the readable page made from it, in Chinese and English."""
import copy
import functools
import html
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=1)
def _load():
    with open(os.path.join(HERE, 'openapi.json'), encoding='utf-8') as handle:
        return json.load(handle)


def document(base=None):
    "The document, its server URL set to ``base`` when given"
    doc = copy.deepcopy(_load())
    if base:
        doc['servers'] = [{'url': base}]
    return doc


def _resolve(doc, node):
    while isinstance(node, dict) and '$ref' in node:
        path = node['$ref'].lstrip('#/').split('/')
        node = doc
        for part in path:
            node = node[part]
    return node


def _code(value):
    return ('<pre><code>' + html.escape(json.dumps(value, ensure_ascii=False,
                indent=2)) + '</code></pre>')


def _text(value):
    "Plain text with `code` spans"
    parts = html.escape(value or '').split('`')
    return ''.join(f'<code>{p}</code>' if i % 2 else p
        for i, p in enumerate(parts))


def html_page(base):
    doc = document(base)
    info = doc['info']
    out = ['<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
        f'<title>{html.escape(info["x-title-zh"])} / '
        f'{html.escape(info["title"])}</title>',
        '<style>body{font-family:sans-serif;max-width:60em;margin:auto;'
        'padding:1em;line-height:1.5}pre{background:#f4f4f4;padding:.5em;'
        'overflow:auto}h2{border-top:1px solid #ccc;padding-top:1em}'
        '.en{color:#333}.zh{color:#000}table{border-collapse:collapse}'
        'td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}'
        '</style></head><body>',
        f'<h1>{html.escape(info["x-title-zh"])}<br>'
        f'<small>{html.escape(info["title"])} {html.escape(info["version"])}'
        '</small></h1>',
        f'<p class="zh">{_text(info["x-description-zh"])}</p>',
        f'<p class="en">{_text(info["description"])}</p>',
        f'<p>Base URL / 接口地址: <code>{html.escape(base)}/</code> · '
        f'<a href="{html.escape(base)}/openapi.json">openapi.json</a></p>',
        '<h2>目录 / Calls</h2><table><tr><th>POST</th><th>说明</th>'
        '<th>Summary</th></tr>']
    for path, item in doc['paths'].items():
        op = item['post']
        out.append(f'<tr><td><a href="#{op["operationId"]}"><code>'
            f'{html.escape(path.lstrip("/"))}</code></a></td>'
            f'<td>{html.escape(op["x-summary-zh"])}</td>'
            f'<td>{html.escape(op["summary"])}</td></tr>')
    out.append('</table>')
    for path, item in doc['paths'].items():
        op = item['post']
        url = base + path
        body = op['requestBody']['content']['application/json']
        out.append(f'<h2 id="{op["operationId"]}">{html.escape(op["x-summary-zh"])}'
            f' / {html.escape(op["summary"])}</h2>'
            f'<p><code>POST {html.escape(url)}</code></p>'
            f'<p class="zh">{_text(op["x-description-zh"])}</p>'
            f'<p class="en">{_text(op["description"])}</p>'
            '<h3>请求 / Request</h3>' + _code(body.get('example', {}))
            + '<pre><code>' + html.escape(
                f"curl -s -X POST '{url}' -H 'Authorization: Bearer $TOKEN' "
                f"-H 'Content-Type: application/json' -d '"
                + json.dumps(body.get('example', {}), ensure_ascii=False)
                + "'") + '</code></pre>')
        out.append('<h3>应答 / Responses</h3><table><tr><th>HTTP</th>'
            '<th>Meaning</th></tr>')
        for status, response in op['responses'].items():
            response = _resolve(doc, response)
            out.append(f'<tr><td>{status}</td><td>'
                f'{_text(response["description"])}</td></tr>')
        out.append('</table>')
        ok = _resolve(doc, op['responses']['200'])
        example = ok['content']['application/json'].get('example')
        if example is not None:
            out.append(_code(example))
    out.append('<h2>错误 / Errors</h2><p class="zh">所有错误的格式相同：'
        '<code>{"code": "…", "message": "…"}</code>（字段有误时另有 '
        '<code>field</code>）。code 固定不变，可用于程序判断；message 供人阅读。'
        '</p><p class="en">Every error has the same shape, <code>{"code": '
        '"…", "message": "…"}</code> (plus <code>field</code>); the code is '
        'stable, the message is for people.</p><table><tr><th>HTTP</th>'
        '<th>code</th></tr>')
    for name, response in doc['components']['responses'].items():
        out.append(f'<tr><td>{html.escape(name)}</td><td>'
            f'{_text(response["description"])}</td></tr>')
    out.append('</table></body></html>')
    return ''.join(out)
