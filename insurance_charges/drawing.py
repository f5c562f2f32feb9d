"""Inline SVG primitives shared by every chart the project draws (no Flask here).

The form's and the model page's charts (web/charts.py, web/model_charts.py) and the outcome
report (outcomes/html.py) draw with these: no script, no inline style, not colour alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup

# 340 × 240 user units: two charts side by side fit the desktop result column, and one fills a
# 375 px phone at 13 px text. The margins hold the "$50k" tick labels (left), the end labels
# "Non-smoker" (right) and the axis title (bottom).
WIDTH, HEIGHT = 340, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 100, 14, 44
HALO = Markup(' stroke="#fff" stroke-width="4" paint-order="stroke"')  # legible over lines
HEADROOM = 1.05  # the y axis runs 5% above the highest value, so no line touches the top
Y_TICKS, X_TICKS = 5, 6  # at most this many labelled ticks: readable at 13 px on a phone
# Text sits this many px from what it labels: a tick (6), the baseline shift of 13 px text (4).
TICK_GAP, BASELINE = 6, 4


def round_step(span: float, most: int) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving at most ``most`` ticks."""
    raw = span / most
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def ticks(low: float, high: float, most: int) -> list[float]:
    """Round tick values from ``low`` to ``high``, at most about ``most`` of them."""
    step = round_step(high - low, most)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def round_top(highest: float) -> float:
    """The y axis's top: a little above ``highest``, on a round tick."""
    top = highest * HEADROOM
    step = round_step(top, Y_TICKS)
    return math.ceil(top / step) * step


def marker(kind: str, x: float, y: float, stroke: str, size: float = 3.5) -> Markup:
    """A dot ("circle") or a square at ``(x, y)``: lines told apart by shape, not colour."""
    # 3.5 px half-size: a 7 px dot or square, visible beside a 2.5 px line.
    if kind == "circle":
        return Markup('<circle cx="{:.1f}" cy="{:.1f}" r="{:.1f}" fill="{}"/>').format(
            x, y, size, stroke
        )
    return Markup('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"/>').format(
        x - size, y - size, 2 * size, 2 * size, stroke
    )


def svg_open(
    width: int, height: int, chart_id: str, title: str, desc: str, size: int = 13
) -> Markup:
    """An SVG's opening tag with its title and description, for screen readers."""
    return Markup(
        '<svg class="chart" viewBox="0 0 {0} {1}" role="img" '
        'aria-labelledby="{2}-title" aria-describedby="{2}-desc" font-size="{5}">\n'
        '<title id="{2}-title">{3}</title>\n<desc id="{2}-desc">{4}</desc>'
    ).format(width, height, chart_id, title, desc, size)


@dataclass(frozen=True)
class Frame:
    """Maps data to the plot area: x from ``x_low`` to ``x_high``, y from 0 to ``y_high``."""

    x_low: float
    x_high: float
    y_high: float
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(self, x: float) -> float:
        """The horizontal position of ``x``."""
        return LEFT + (x - self.x_low) / ((self.x_high - self.x_low) or 1) * self.width

    def py(self, y: float) -> float:
        """The vertical position of ``y``."""
        return TOP + self.height - y / self.y_high * self.height
