"""Inline SVG line charts drawn on the server: no script, no inline style, not colour alone.

Each line has its own dash pattern and marker shape and is labelled at its end; the SVG
carries a title and a description, and the page also gives the figures as a table.
"""

from __future__ import annotations

from typing import TypedDict

from markupsafe import Markup

from ..core.explain import Curve
from ..drawing import (
    BASELINE,
    HALO,
    HEIGHT,
    LEFT,
    TICK_GAP,
    TOP,
    WIDTH,
    X_TICKS,
    Y_TICKS,
    Frame,
    marker,
    round_top,
    svg_open,
    ticks,
)
from .formatting import money

MARKERS = 6  # about this many markers per line: enough to tell the lines apart, not a clutter
LABEL_GAP = 15  # px between the two end labels: a 13 px line of text and a little air
# The person's ring of radius 7: text 12 px above it, 22 below (one line of text clear of the
# ring), 8 to the side.
RING_ABOVE, RING_BELOW, RING_SIDE = 12, 22, 8


class Style(TypedDict):
    """How one line is drawn and named."""

    name: str
    stroke: str
    dash: str | None  # None: a solid line
    marker: str  # "circle" or "square"


# Both line colours have at least 4.5:1 contrast on white; dashes and markers tell them apart.
STYLES: dict[str, Style] = {
    "yes": {"name": "Smoker", "stroke": "#9e2a00", "dash": None, "marker": "circle"},
    "no": {"name": "Non-smoker", "stroke": "#0b4f9c", "dash": "7 4", "marker": "square"},
}


def _end_labels(ends: dict[str, float]) -> dict[str, float]:
    """Direct labels at the lines' right ends, nudged apart so they never overlap."""
    (a, ya), (b, yb) = sorted(ends.items(), key=lambda item: item[1])
    if yb - ya < LABEL_GAP:
        middle = (ya + yb) / 2
        ya, yb = middle - LABEL_GAP / 2, middle + LABEL_GAP / 2
    return {a: ya, b: yb}


def noun(curve: Curve) -> str:
    """The field's label as it reads mid-sentence: "body-mass index (BMI)", "age"."""
    return curve.label[0].lower() + curve.label[1:]


def caption(curve: Curve) -> str:
    """The chart's title."""
    return f"How {noun(curve)} changes the estimate"


def _person(curve: Curve) -> tuple[float, float, str]:
    """The person's point on the curve; the form's curves (explain) always have one."""
    if curve.you is None:  # a model-page curve: it has no line_chart, only axes and lines
        raise ValueError(f"the {curve.field} curve marks no person to describe or draw")
    return curve.you


def describe(curve: Curve) -> str:
    """One sentence per line: where the estimate starts and ends along the field."""
    first, last = curve.xs[0], curve.xs[-1]
    parts = [
        f"As a {STYLES[s]['name'].lower()}, from {money(v[0])} at {first:g} to "
        f"{money(v[-1])} at {last:g}"
        for s, v in curve.series.items()
    ]
    x, estimate, _ = _person(curve)
    return (
        f"Estimated yearly charges as {noun(curve)} goes from {first:g} to {last:g}. "
        + "; ".join(parts)
        + f". You: {x:g}, {money(estimate)}."
    )


def _axes(curve: Curve, frame: Frame) -> list[Markup]:
    grid = Markup('<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="1"/>')
    label = Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" fill="#1b1b1b">{}</text>')
    base = TOP + frame.height
    out = []
    for tick in ticks(0, frame.y_high, Y_TICKS):
        y = frame.py(tick)
        out.append(grid.format(LEFT, LEFT + frame.width, y, y, "#c8c8c8"))
        out.append(
            label.format(
                LEFT - TICK_GAP, y + BASELINE, "end", "$0" if not tick else f"${tick / 1000:,.0f}k"
            )
        )
    for tick in ticks(frame.x_low, frame.x_high, X_TICKS):
        x = frame.px(tick)
        out.append(
            Markup('<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}" stroke="#1b1b1b"/>').format(
                x, base, base + 5
            )
        )
        out.append(label.format(x, base + 18, "middle", f"{tick:g}"))
    out.append(grid.format(LEFT, LEFT + frame.width, base, base, "#1b1b1b"))
    out.append(label.format(LEFT + frame.width / 2, HEIGHT - 8, "middle", curve.label))
    return out


def _lines(curve: Curve, frame: Frame) -> list[Markup]:
    out, ends = [], {}
    every = max(1, len(curve.xs) // MARKERS)
    for smoker, series in curve.series.items():
        style = STYLES[smoker]
        dash = Markup(' stroke-dasharray="{}"').format(style["dash"]) if style["dash"] else ""
        spots = [(frame.px(x), frame.py(y)) for x, y in zip(curve.xs, series, strict=True)]
        out.append(
            Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"{}/>').format(
                " ".join(f"{x:.1f},{y:.1f}" for x, y in spots), style["stroke"], dash
            )
        )
        out.extend(marker(style["marker"], x, y, style["stroke"]) for x, y in spots[::every])
        ends[smoker] = spots[-1][1]
    for smoker, y in _end_labels(ends).items():
        out.append(
            Markup('<text x="{}" y="{:.1f}" fill="{}" font-weight="700"{}>{}</text>').format(
                LEFT + frame.width + TICK_GAP,
                y + BASELINE,
                STYLES[smoker]["stroke"],
                HALO,
                STYLES[smoker]["name"],
            )
        )
    return out


def _you(curve: Curve, frame: Frame) -> list[Markup]:
    x, estimate, _ = _person(curve)
    cx, cy = frame.px(x), frame.py(estimate)
    # Above the ring, or below it if the label would leave the plot at the top.
    label_y = cy - RING_ABOVE if cy - RING_ABOVE > TOP + 10 else cy + RING_BELOW
    anchor = "end" if cx > LEFT + frame.width / 2 else "start"  # towards the middle
    return [
        Markup(
            '<circle cx="{:.1f}" cy="{:.1f}" r="7" fill="none" stroke="#1b1b1b" '
            'stroke-width="2.5"/>'
        ).format(cx, cy),
        Markup(
            '<text x="{:.1f}" y="{:.1f}" text-anchor="{}" fill="#1b1b1b" '
            'font-weight="700"{}>You: {}</text>'
        ).format(
            cx - RING_SIDE if anchor == "end" else cx + RING_SIDE,
            label_y,
            anchor,
            HALO,
            money(estimate),
        ),
    ]


def line_chart(curve: Curve, chart_id: str) -> Markup:
    """The curve as an accessible inline SVG; every interpolated value is escaped."""
    frame = Frame(
        curve.xs[0],
        curve.xs[-1],
        round_top(max(v for series in curve.series.values() for v in series)),
    )
    head = svg_open(WIDTH, HEIGHT, chart_id, caption(curve), describe(curve))
    parts = [head, *_axes(curve, frame), *_lines(curve, frame), *_you(curve, frame)]
    return Markup("\n").join(parts) + Markup("\n</svg>")


def figures(curves: list[Curve]) -> list[dict]:
    """Per curve: the data, a caption and the drawn chart, for the result page."""
    return [
        {
            "curve": c,
            "caption": caption(c),
            "noun": noun(c),
            "svg": line_chart(c, f"chart-{c.field}"),
        }
        for c in curves
    ]
