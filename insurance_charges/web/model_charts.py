"""Inline SVG for the model page: what drives estimates overall, and served against training.

Drawn like the form's charts (charts.py, whose axes and lines are reused; drawing.py has the
primitives): no script, no inline style, not colour alone. Smokers are a solid line with dots,
non-smokers a dashed line with squares; training shares are outlined bars, served shares solid
bars. Each SVG has a title and a description, and the page gives every figure in a table too.
"""

from __future__ import annotations

from markupsafe import Markup

from ..core.explain import Curve
from ..drawing import HEIGHT, WIDTH, Frame, round_top, svg_open
from . import charts
from .formatting import money

# Bars: one row per bin (two 10-unit bars and a gap), bin names on the left, shares on the right.
# 114 units hold "$13,985–$16,993" at 12-unit text; 40 hold "100%".
BAR_LEFT, BAR_RIGHT, ROW, BAR, BAR_TOP = 120, 40, 28, 10, 8
BAR_TEXT = 12  # the bars' labels: 12 px on a 375 px phone, where the chart is ~340 px wide
SERVED = "#0b4f9c"  # 7.7:1 on white; the outline of the training bars is the text colour


def driver_chart(name: str, label: str, xs: list, by_smoker: dict, chart_id: str) -> Markup:
    """The average estimate along one number, for smokers and non-smokers of the training data."""
    curve = Curve(name, label, tuple(xs), by_smoker, you=None)
    frame = Frame(xs[0], xs[-1], round_top(max(v for s in by_smoker.values() for v in s)))
    desc = (
        f"Average estimate as {charts.noun(curve)} goes from {xs[0]:g} to {xs[-1]:g}: "
        + "; ".join(
            f"{charts.STYLES[s]['name'].lower()}s from {money(v[0])} to {money(v[-1])}"
            for s, v in by_smoker.items()
        )
        + "."
    )
    parts = [
        svg_open(WIDTH, HEIGHT, chart_id, driver_title(curve), desc, 13),
        *charts._axes(curve, frame),
        *charts._lines(curve, frame),
    ]
    return Markup("\n").join(parts) + Markup("\n</svg>")


def driver_title(curve: Curve) -> str:
    """The driver chart's title."""
    return f"How {charts.noun(curve)} moves the estimate, on average"


def share_chart(label: str, rows: list[dict], chart_id: str, served_name: str) -> Markup:
    """Horizontal bars per bin: the training share outlined, the served share solid."""
    width = WIDTH
    span = width - BAR_LEFT - BAR_RIGHT
    top = max(0.05, max(max(r["training"], r["served"]) for r in rows))  # widest bar fills
    height = BAR_TOP + ROW * len(rows) + 4
    desc = (
        f"Share of records in each {label} bin, in training and {served_name}: "
        + "; ".join(f"{r['name']}: {r['training']:.0%} and {r['served']:.0%}" for r in rows)
        + "."
    )
    parts = [
        svg_open(width, height, chart_id, f"{label}: training and {served_name}", desc, BAR_TEXT)
    ]
    bar = Markup('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{}" fill="{}"{}/>')
    text = Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" fill="#1b1b1b">{}</text>')
    for i, r in enumerate(rows):
        y = BAR_TOP + i * ROW
        parts.append(text.format(BAR_LEFT - 6, y + BAR + 5, "end", r["name"]))
        for j, (share, fill, outline) in enumerate(
            (
                (r["training"], "#fff", Markup(' stroke="#1b1b1b" stroke-width="1.5"')),
                (r["served"], SERVED, ""),
            )
        ):
            top_y = y + j * (BAR + 2)
            length = max(share / top * span, 1.5)  # a zero share still shows as a sliver
            parts.append(bar.format(BAR_LEFT, top_y, length, BAR, fill, outline))
            parts.append(
                text.format(BAR_LEFT + length + 4, top_y + BAR - 1, "start", f"{share:.0%}")
            )
    return Markup("\n").join(parts) + Markup("\n</svg>")
