"""Charts for the console, drawn on the server as SVG: no script, no external asset.

``bar_chart(title, points)`` -> markup of an inline ``<svg role="img">`` whose ``<title>``
names the series and its total; each bar carries its own ``<title>`` (day and value), which
browsers show on hover and assistive technology reads. The figures are also in a table
beside the chart (the templates), so the chart adds nothing a keyboard user would miss.
"""
from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 36, 22, 10


def _nice_ceiling(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def bar_chart(title: str, points: list[tuple[str, int]], element_id: str) -> Markup:
    """``points``: (label, value) in order, e.g. one per day."""
    total = sum(v for _, v in points)
    top = _nice_ceiling(max((v for _, v in points), default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(1, len(points))
    parts = [f'<svg id="{escape(element_id)}" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'aria-labelledby="{escape(element_id)}-title" xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{escape(element_id)}-title">{escape(title)}: {total} in all</title>']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{int(top * fraction)}</text>')
    for index, (label, value) in enumerate(points):
        height = plot_h * value / top if top else 0
        x = LEFT + index * slot + slot * 0.15
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{height:.1f}" data-value="{value}"><title>{escape(label)}: {value}</title></rect>')
        if (len(points) - 1 - index) % 7 == 0:  # every seventh day, ending with the last
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
                         f'{escape(label[5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
