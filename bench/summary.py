"""Turn the benchmark's raw rounds into its figures, noise and targets."""

from __future__ import annotations

import os
import statistics

# The issues' targets: (name, label, limit, higher is better). The core issue raised the
# ratio from 0.5 and the batch from 100,000 rows/s.
TARGETS = (
    ("ratio", "one record vs floor", 0.6, True),
    ("p99", "one-record p99 (ms)", 10, False),
    ("batch", "batch rows/s", 250_000, True),
    ("nginx", "one record behind the image's nginx vs direct", 0.9, True),
    ("cold_start", "cold start (s)", 3, False),
    ("metrics", "one-record throughput kept with metrics on", 0.95, True),
    ("worker_rss", "RSS per worker (MB)", 300, False),
)


def spread_pct(values: list[float]) -> float:
    """Half the range across rounds, as a percentage of the median."""
    return 50 * (max(values) - min(values)) / statistics.median(values)


def median_run(runs: list[dict]) -> dict:
    """Per figure, the median across rounds."""
    return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


def target(name: str, label: str, value: float, limit: float, higher_is_better: bool) -> dict:
    """One target, whether it was met, and how far from it (share > 1 is better)."""
    share = value / limit if higher_is_better else limit / value
    return {
        "name": name,
        "label": label,
        "value": value,
        "limit": limit,
        "met": share >= 1,
        "share_of_target": round(share, 2),
    }


def add(
    result: dict,
    *,
    ones: list,
    floors: list,
    batches: list,
    batch_rows: int,
    cold: list,
    behind_nginx: tuple[list, list],
) -> None:
    """Add the medians, the ratio, the noise and the targets to ``result``."""
    ratios = [o["requests_per_s"] / f["requests_per_s"] for o, f in zip(ones, floors, strict=True)]
    fronted, direct = behind_nginx
    result["behind_nginx"] = {
        **median_run(fronted),
        "ratio_to_direct": round(
            statistics.median(
                [
                    n["requests_per_s"] / d["requests_per_s"]
                    for n, d in zip(fronted, direct, strict=True)
                ]
            ),
            3,
        ),
    }
    result.update(
        one_record=median_run(ones),
        floor=median_run(floors),
        ratio=round(statistics.median(ratios), 3),
        batch={
            "rows": batch_rows,
            "requests": sum(b["requests"] for b in batches),
            "rows_per_s": round(
                batch_rows * statistics.median(b["requests_per_s"] for b in batches)
            ),
            "p50_ms": round(statistics.median(b["p50_ms"] for b in batches), 2),
            "max_ms": max(b["max_ms"] for b in batches),
            "cpu_ms_per_batch": round(
                statistics.median(b["cpu_ms_per_request"] for b in batches), 2
            ),
        },
        cold_start_s={
            "median": round(statistics.median(cold), 3),
            "runs": [round(c, 3) for c in cold],
        },
        rounds={"one_record": ones, "floor": floors, "batch": batches},
        noise={
            "rounds": len(ones),
            "one_record_rps_spread_pct": round(spread_pct([o["requests_per_s"] for o in ones]), 1),
            "floor_rps_spread_pct": round(spread_pct([f["requests_per_s"] for f in floors]), 1),
            "batch_rps_spread_pct": round(spread_pct([b["requests_per_s"] for b in batches]), 1),
            "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3),
        },
    )
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    values = {
        "ratio": result["ratio"],
        "p99": result["one_record"]["p99_ms"],
        "batch": result["batch"]["rows_per_s"],
        "cold_start": result["cold_start_s"]["median"],
        "nginx": result["behind_nginx"]["ratio_to_direct"],
        "worker_rss": max(result["memory"]["worker_rss_mb"]),
        "metrics": result["metrics_cost"]["throughput_kept"],
    }
    result["targets"] = [
        target(name, label, values[name], limit, higher) for name, label, limit, higher in TARGETS
    ]
