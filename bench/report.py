"""Write the benchmark's JSON and its PNG chart (the docs site renders the table from the JSON)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def chart(result: dict, path: Path) -> None:
    """Three panels: throughput against the floor, latency, and the other targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one, floor = result["one_record"], result["floor"]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4.2))
    bars = a.bar(
        ["floor (constant)", "predict"],
        [floor["requests_per_s"], one["requests_per_s"]],
        color=["#999999", "#1f77b4"],
    )
    a.bar_label(bars, fmt="{:,.0f}")
    a.axhline(0.6 * floor["requests_per_s"], color="#d62728", ls="--", label="target: 0.6 × floor")
    a.set_title(f"One record, requests/s (ratio {result['ratio']:.2f})")
    a.legend(loc="lower right")
    quantiles = ["p50_ms", "p90_ms", "p99_ms"]
    x = range(len(quantiles))
    b.bar([i - 0.2 for i in x], [floor[q] for q in quantiles], 0.4, label="floor", color="#999999")
    b.bar([i + 0.2 for i in x], [one[q] for q in quantiles], 0.4, label="predict", color="#1f77b4")
    b.axhline(10, color="#d62728", ls="--", label="target p99 ≤ 10 ms")
    b.set_xticks(list(x), ["p50", "p90", "p99"])
    b.set_ylabel("ms")
    b.set_title("Latency at 8 connections")
    b.legend()
    others = [t for t in result["targets"] if t["name"] in ("batch", "cold_start", "worker_rss")]
    bars = c.barh(
        [f"{t['label']}\n{_num(t['value'])} vs {t['limit']:,}" for t in others],
        [t["share_of_target"] for t in others],
        color=["#2ca02c" if t["met"] else "#d62728" for t in others],
    )
    c.bar_label(bars, fmt="{:.2f}")
    c.axvline(1.0, color="black", ls="--")
    c.set_title("Against target (right of 1 = better)")
    m = result["machine"]
    fig.suptitle(
        f"insurance-charges benchmark, {result['measured_at']} — {m['cpu']}, "
        f"{m['cores']} cores, Python {m['python']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(result: dict) -> list[Path]:
    """Write latest.json and latest.png; return what was written."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, png_path = RESULTS / "latest.json", RESULTS / "latest.png"
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    chart(result, png_path)
    return [json_path, png_path]
