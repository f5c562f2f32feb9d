"""The report as one self-contained HTML page: tables, and MAE and coverage per week as SVG.

No external asset, script or font: the file can be mailed or archived and still reads the same.
The charts are drawn with the project's SVG primitives (drawing.py); every figure is also in a
table, and every interpolated value is escaped.
"""

from __future__ import annotations

from markupsafe import Markup

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

INK, LINE_COLOUR, REFERENCE = "#1b1b1b", "#0b4f9c", "#9e2a00"  # each 4.5:1 or more on white
STYLE = """
body{font:16px/1.5 system-ui,sans-serif;color:#1b1b1b;margin:0;background:#fff}
main{max-width:60rem;margin:0 auto;padding:1rem}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}
th,td{padding:0.25rem 0.6rem;border-bottom:1px solid #c8c8c8;text-align:right}
th:first-child,td:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{width:100%;max-width:26rem;height:auto}
.failed{color:#9e2a00;font-weight:700}.passed{color:#1a5e20;font-weight:700}
"""


def _money(value: float | None) -> str:
    return "–" if value is None else f"${value:,.0f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _interval(figures: dict) -> str:
    span = figures["coverage_interval"]
    return "–" if span is None else f"{span[0]:.1%} to {span[1]:.1%}"


def week_chart(
    chart_id: str,
    title: str,
    weeks: list[str],
    values: list[float | None],
    reference: float | None,
    reference_name: str,
    shown,
    top: float | None = None,
    whiskers: list | None = None,
) -> Markup:
    """A line of one figure per week, a dashed reference line, and optional interval whiskers."""
    highest = max(
        [v for v in values if v is not None]
        + [reference or 0]
        + [w[1] for w in whiskers or () if w]
    )
    frame = Frame(0, max(len(weeks) - 1, 1), top or round_top(highest or 1))
    desc = "; ".join(
        f"{w}: {shown(v) if v is not None else 'no figure'}"
        for w, v in zip(weeks, values, strict=True)
    )
    if reference is not None:
        desc += f". {reference_name}: {shown(reference)}."
    label = Markup('<text x="{:.1f}" y="{:.1f}" text-anchor="{}" fill="{}">{}</text>')
    line = Markup(
        '<line x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="{}"{}/>'
    )
    parts = [svg_open(WIDTH, HEIGHT, chart_id, title, desc)]
    base = TOP + frame.height
    for tick in ticks(0, frame.y_high, Y_TICKS):
        y = frame.py(tick)
        parts.append(line.format(LEFT, LEFT + frame.width, y, y, "#c8c8c8", 1, ""))
        parts.append(label.format(LEFT - TICK_GAP, y + BASELINE, "end", INK, shown(tick)))
    every = max(1, -(-len(weeks) // X_TICKS))  # at most X_TICKS week labels
    for i in range(0, len(weeks), every):
        parts.append(label.format(frame.px(i), base + 18, "middle", INK, weeks[i][-3:]))
    parts.append(line.format(LEFT, LEFT + frame.width, base, base, INK, 1, ""))
    parts.append(label.format(LEFT + frame.width / 2, HEIGHT - 8, "middle", INK, "ISO week"))
    if reference is not None:
        y = frame.py(reference)
        parts.append(
            line.format(
                LEFT, LEFT + frame.width, y, y, REFERENCE, 2, Markup(' stroke-dasharray="7 4"')
            )
        )
        parts.append(
            Markup('<text x="{:.1f}" y="{:.1f}" fill="{}" font-weight="700"{}>{}</text>').format(
                LEFT + frame.width + TICK_GAP, y + BASELINE, REFERENCE, HALO, reference_name
            )
        )
    for i, span in enumerate(whiskers or ()):
        if span:
            parts.append(
                line.format(
                    frame.px(i),
                    frame.px(i),
                    frame.py(span[0]),
                    frame.py(span[1]),
                    LINE_COLOUR,
                    1.5,
                    "",
                )
            )
    spots = [(frame.px(i), frame.py(v)) for i, v in enumerate(values) if v is not None]
    if len(spots) > 1:
        parts.append(
            Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"/>').format(
                " ".join(f"{x:.1f},{y:.1f}" for x, y in spots), LINE_COLOUR
            )
        )
    parts.extend(marker("circle", x, y, LINE_COLOUR) for x, y in spots)
    return Markup("\n").join(parts) + Markup("\n</svg>")


def _row(name: str, f: dict) -> Markup:
    cells = (
        f"{f['records']:,}",
        _money(f["mae"]),
        _money(f["rmse"]),
        "–" if f["r2"] is None else f"{f['r2']:.3f}",
        _money(f["bias"]),
        _share(f["coverage"]),
        _interval(f),
    )
    return Markup('<tr><th scope="row">{}</th>{}</tr>').format(
        name, Markup("").join(Markup("<td>{}</td>").format(c) for c in cells)
    )


HEAD = Markup(
    '<tr><th scope="col">{}</th><th scope="col">Records</th><th scope="col">'
    'MAE</th><th scope="col">RMSE</th><th scope="col">R²</th><th scope="col">'
    'Mean error</th><th scope="col">Coverage</th><th scope="col">95% interval'
    "</th></tr>"
)


def _table(caption: str, first: str, rows: dict) -> Markup:
    body = Markup("").join(_row(name, f) for name, f in rows.items())
    return Markup("<table><caption>{}</caption>{}{}</table>").format(
        caption, HEAD.format(first), body
    )


def _version(index: int, version: str, f: dict) -> Markup:
    weeks = list(f["weeks"])
    card = f["card"] or {}
    level = card.get("level", 0.8)
    mae = week_chart(
        f"mae-{index}",
        f"MAE per week, {version}",
        weeks,
        [f["weeks"][w]["mae"] for w in weeks],
        card.get("holdout_mae"),
        "Holdout",
        lambda v: f"${v / 1000:,.1f}k",
    )
    coverage = week_chart(
        f"coverage-{index}",
        f"Likely range's coverage per week, {version}",
        weeks,
        [f["weeks"][w]["coverage"] for w in weeks],
        level,
        f"Target {level:.0%}",
        lambda v: f"{v:.0%}",
        top=1.0,
        whiskers=[f["weeks"][w]["coverage_interval"] for w in weeks],
    )
    if f["card"]:
        against = Markup(
            "<p>Its card's holdout figures: MAE {}, coverage {} (target {}).</p>"
        ).format(_money(card["holdout_mae"]), _share(card["holdout_coverage"]), f"{level:.0%}")
    else:
        against = Markup("<p>No card for this version was given: its MAE is not checked.</p>")
    verdict = Markup("").join(Markup('<p class="failed">{}</p>').format(x) for x in f["failures"])
    return Markup(
        '<section><h2>Model version {}</h2>{}{}<div class="charts">{}{}</div>{}{}</section>'
    ).format(
        version,
        against,
        verdict,
        mae,
        coverage,
        _table("Per ISO week of the estimate", "Week", f["weeks"]),
        _table("Per smoker group", "Smoker", f["smoker"]),
    )


def render(report: dict) -> str:
    """The whole page."""
    status = (
        Markup(
            '<p class="passed">Passed: every version\'s likely range held as promised '
            "and no MAE exceeded its limit.</p>"
        )
        if report["passed"]
        else Markup(
            '<p class="failed">Failed: {} check(s); see below, and docs/outcomes.md '
            "for what to do.</p>"
        ).format(len(report["failures"]))
    )
    versions = Markup("").join(
        _version(i, v, f) for i, (v, f) in enumerate(report["versions"].items())
    )
    checks = report["checks"]
    page = Markup(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Outcomes: were the estimates right?</title><style>{}</style></head><body><main>"
        "<h1>Outcomes: were the estimates right?</h1>{}"
        "<p>Mean error is estimate minus bill (above $0: estimates too high). Coverage is the "
        "share of bills inside the likely range, with its {} {:.0%} interval; the MAE limit is "
        "{:.0%} above the card's holdout MAE.</p>{}{}</main></body></html>\n"
    ).format(
        Markup(STYLE),  # nosec B704 - this module's own constant, no outside text
        status,
        checks["interval"],
        checks["coverage_confidence"],
        checks["mae_threshold"],
        _table("All records", "", {"All": report["overall"]}),
        versions,
    )
    return str(page)
