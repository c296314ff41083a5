# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Bar charts as inline SVG (no script, no CDN, a few kilobytes): daily
bars for a month, monthly bars for a year.  Pure functions."""
from decimal import Decimal
from html import escape


def nice_max(value):
    "The axis top: 1, 2 or 5 × a power of ten at or above value"
    value = Decimal(value)
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, 5, 10):
        top = Decimal(step).scaleb(exponent)
        if top >= value:
            return top
    return Decimal(10).scaleb(exponent)


def _fmt(value):
    value = Decimal(value)
    if value == value.to_integral_value():
        return f'{value:.0f}'
    return f'{value.normalize():f}'


def bar_chart(values, labels, unit='', title='', width=360, height=200,
        label_every=1):
    """values: [Decimal or None] (None = no data, drawn as nothing);
    labels: the x labels (every ``label_every``-th is written).  Each bar
    carries a <title> with its exact figure (tap / hover)."""
    left, right, top, bottom = 34, 6, 16, 22
    plot_w = width - left - right
    plot_h = height - top - bottom
    known = [Decimal(v) for v in values if v is not None]
    axis = nice_max(max(known) if known else 0)
    n = max(len(values), 1)
    slot = plot_w / n
    bar = max(slot * 0.7, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">']
    if title:
        parts.append(f'<title>{escape(title)}</title>')
    for i in range(5):
        y = top + plot_h * i / 4
        figure = axis * (4 - i) / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" '
            f'y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 3}" y="{y + 3:.1f}" '
            f'class="axis" text-anchor="end">{_fmt(figure)}</text>')
    for i, (value, label) in enumerate(zip(values, labels)):
        x = left + slot * i + (slot - bar) / 2
        if value is not None and Decimal(value) > 0:
            h = float(Decimal(value) / axis) * plot_h
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" class="bar">'
                f'<title>{escape(str(label))}: {_fmt(value)} '
                f'{escape(unit)}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 6}" '
                f'class="axis" text-anchor="middle">{escape(str(label))}'
                '</text>')
    if unit:
        parts.append(f'<text x="2" y="10" class="axis">{escape(unit)}</text>')
    if not known:
        parts.append(f'<text x="{left + plot_w / 2:.1f}" '
            f'y="{top + plot_h / 2:.1f}" class="empty" '
            'text-anchor="middle">暂无数据</text>')
    parts.append('</svg>')
    return ''.join(parts)
