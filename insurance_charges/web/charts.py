"""Inline SVG line charts drawn on the server: no script, no inline style, not colour alone.

Each line has its own dash pattern and marker shape and is labelled at its end; the SVG
carries a title and a description, and the page also gives the figures as a table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

from markupsafe import Markup

from ..core.explain import Curve
from .formatting import money

# 340 × 240 user units: two charts side by side fit the desktop result column, and one fills a
# 375 px phone at 13 px text. The margins hold the "$50k" tick labels (left), the end labels
# "Non-smoker" (right) and the axis title (bottom).
WIDTH, HEIGHT = 340, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 100, 14, 44
HALO = Markup(' stroke="#fff" stroke-width="4" paint-order="stroke"')  # legible over lines
LABEL_GAP = 15  # px between the two end labels: a 13 px line of text and a little air
HEADROOM = 1.05  # the y axis runs 5% above the highest value, so no line touches the top
MARKERS = 6  # about this many markers per line: enough to tell the lines apart, not a clutter
Y_TICKS, X_TICKS = 5, 6  # at most this many labelled ticks: readable at 13 px on a phone
# Text sits this many px from what it labels: a tick (6), the baseline shift of 13 px text (4),
# the person's ring of radius 7 (12 above, 22 below: one line of text clear of the ring).
TICK_GAP, BASELINE, RING_ABOVE, RING_BELOW, RING_SIDE = 6, 4, 12, 22, 8


class Style(TypedDict):
    """How one line is drawn and named."""

    name: str
    stroke: str
    dash: str | None  # None: a solid line
    marker: str  # "circle" or "square"


# Both line colours have at least 4.5:1 contrast on white; dashes and markers tell them apart.
STYLES: dict[str, Style] = {
    "yes": {"name": "Smoker", "stroke": "#9e2a00", "dash": None, "marker": "circle"},
    "no": {"name": "Non-smoker", "stroke": "#0b4f9c", "dash": "7 4", "marker": "square"}}


def _step(span: float, most: int) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving at most ``most`` ticks."""
    raw = span / most
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _ticks(low: float, high: float, most: int) -> list[float]:
    step = _step(high - low, most)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _marker(kind: str, x: float, y: float, stroke: str, size: float = 3.5) -> Markup:
    # 3.5 px half-size: a 7 px dot or square, visible beside a 2.5 px line.
    if kind == "circle":
        return Markup('<circle cx="{:.1f}" cy="{:.1f}" r="{:.1f}" fill="{}"/>').format(
            x, y, size, stroke)
    return Markup('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"/>').format(
        x - size, y - size, 2 * size, 2 * size, stroke)


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
    parts = [f"As a {STYLES[s]['name'].lower()}, from {money(v[0])} at {first:g} to "
             f"{money(v[-1])} at {last:g}" for s, v in curve.series.items()]
    x, estimate, _ = _person(curve)
    return (f"Estimated yearly charges as {noun(curve)} goes from {first:g} to {last:g}. "
            + "; ".join(parts) + f". You: {x:g}, {money(estimate)}.")


@dataclass(frozen=True)
class _Frame:
    """Maps data to the plot area: x from the curve's range, y from $0 to a round top."""

    x_low: float
    x_high: float
    y_high: float
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(self, x: float) -> float:
        return LEFT + (x - self.x_low) / ((self.x_high - self.x_low) or 1) * self.width

    def py(self, y: float) -> float:
        return TOP + self.height - y / self.y_high * self.height


def _axes(curve: Curve, frame: _Frame) -> list[Markup]:
    grid = Markup('<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="1"/>')
    label = Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" fill="#1b1b1b">{}</text>')
    base = TOP + frame.height
    out = []
    for tick in _ticks(0, frame.y_high, Y_TICKS):
        y = frame.py(tick)
        out.append(grid.format(LEFT, LEFT + frame.width, y, y, "#c8c8c8"))
        out.append(label.format(LEFT - TICK_GAP, y + BASELINE, "end",
                                "$0" if not tick else f"${tick / 1000:,.0f}k"))
    for tick in _ticks(frame.x_low, frame.x_high, X_TICKS):
        x = frame.px(tick)
        out.append(Markup('<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}" stroke="#1b1b1b"/>')
                   .format(x, base, base + 5))
        out.append(label.format(x, base + 18, "middle", f"{tick:g}"))
    out.append(grid.format(LEFT, LEFT + frame.width, base, base, "#1b1b1b"))
    out.append(label.format(LEFT + frame.width / 2, HEIGHT - 8, "middle", curve.label))
    return out


def _lines(curve: Curve, frame: _Frame) -> list[Markup]:
    out, ends = [], {}
    every = max(1, len(curve.xs) // MARKERS)
    for smoker, series in curve.series.items():
        style = STYLES[smoker]
        dash = Markup(' stroke-dasharray="{}"').format(style["dash"]) if style["dash"] else ""
        spots = [(frame.px(x), frame.py(y)) for x, y in zip(curve.xs, series)]
        out.append(Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"{}/>')
                   .format(" ".join(f"{x:.1f},{y:.1f}" for x, y in spots), style["stroke"], dash))
        out.extend(_marker(style["marker"], x, y, style["stroke"]) for x, y in spots[::every])
        ends[smoker] = spots[-1][1]
    for smoker, y in _end_labels(ends).items():
        out.append(Markup('<text x="{}" y="{:.1f}" fill="{}" font-weight="700"{}>{}</text>')
                   .format(LEFT + frame.width + TICK_GAP, y + BASELINE, STYLES[smoker]["stroke"],
                           HALO,
                           STYLES[smoker]["name"]))
    return out


def _you(curve: Curve, frame: _Frame) -> list[Markup]:
    x, estimate, _ = _person(curve)
    cx, cy = frame.px(x), frame.py(estimate)
    # Above the ring, or below it if the label would leave the plot at the top.
    label_y = cy - RING_ABOVE if cy - RING_ABOVE > TOP + 10 else cy + RING_BELOW
    anchor = "end" if cx > LEFT + frame.width / 2 else "start"  # towards the middle
    return [Markup('<circle cx="{:.1f}" cy="{:.1f}" r="7" fill="none" stroke="#1b1b1b" '
                   'stroke-width="2.5"/>').format(cx, cy),
            Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" fill="#1b1b1b" '
                   'font-weight="700"{}>You: {}</text>').format(
                cx - RING_SIDE if anchor == "end" else cx + RING_SIDE, label_y, anchor, HALO,
                money(estimate))]


def line_chart(curve: Curve, chart_id: str) -> Markup:
    """The curve as an accessible inline SVG; every interpolated value is escaped."""
    top = max(v for series in curve.series.values() for v in series) * HEADROOM
    step = _step(top, Y_TICKS)
    frame = _Frame(curve.xs[0], curve.xs[-1], math.ceil(top / step) * step)
    head = Markup('<svg class="chart" viewBox="0 0 {0} {1}" role="img" '
                  'aria-labelledby="{2}-title" aria-describedby="{2}-desc" font-size="13">\n'
                  '<title id="{2}-title">{3}</title>\n<desc id="{2}-desc">{4}</desc>').format(
        WIDTH, HEIGHT, chart_id, caption(curve), describe(curve))
    parts = [head, *_axes(curve, frame), *_lines(curve, frame), *_you(curve, frame)]
    return Markup("\n").join(parts) + Markup("\n</svg>")


def figures(curves: list[Curve]) -> list[dict]:
    """Per curve: the data, a caption and the drawn chart, for the result page."""
    return [{"curve": c, "caption": caption(c), "noun": noun(c),
             "svg": line_chart(c, f"chart-{c.field}")} for c in curves]
