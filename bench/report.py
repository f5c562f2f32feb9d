"""Write the benchmark's JSON, its PNG chart and the README's table."""
from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")


def machine() -> dict:
    """Where the figures come from: CPU model, cores, Python, OS, load when starting."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    os_name = platform.system()
    release = Path("/etc/os-release")
    if release.is_file():
        found = re.search(r'^PRETTY_NAME="?([^"\n]*)', release.read_text(), re.M)
        os_name = found.group(1) if found else os_name
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "os": os_name, "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def table(result: dict) -> str:
    """The Markdown table of figures against targets."""
    m, one, floor = result["machine"], result["one_record"], result["floor"]
    rows = [("One record, requests/s (8 connections)",
             f"{one['requests_per_s']:,.0f} = {result['ratio']:.2f} × floor "
             f"({floor['requests_per_s']:,.0f}/s)", "≥ 0.6 × floor"),
            ("One record, latency p50 / p90 / p99",
             f"{one['p50_ms']} / {one['p90_ms']} / {one['p99_ms']} ms", "p99 ≤ 10 ms"),
            ("One record behind the image's nginx, requests/s",
             f"{result['behind_nginx']['requests_per_s']:,.0f} = "
             f"{result['behind_nginx']['ratio_to_direct']:.2f} × direct, p99 "
             f"{result['behind_nginx']['p99_ms']} ms", "≥ 0.9 × direct"),
            ("Floor latency p50 / p90 / p99",
             f"{floor['p50_ms']} / {floor['p90_ms']} / {floor['p99_ms']} ms", ""),
            ("Before: the same service through pipeline.predict",
             f"{result['pipeline_predict_path']['requests_per_s']:,.0f} requests/s, p99 "
             f"{result['pipeline_predict_path']['p99_ms']} ms", ""),
            ("Service CPU per one-record request (predict / floor)",
             f"{one['cpu_ms_per_request']:.2f} / {floor['cpu_ms_per_request']:.2f} ms", ""),
            ("10,000-record batch, rows/s end to end",
             f"{result['batch']['rows_per_s']:,.0f} ({result['batch']['p50_ms']:,.0f} ms "
             f"per batch, {result['batch']['cpu_ms_per_batch']:,.0f} ms CPU)", "≥ 250,000"),
            ("One record with metrics on (scraped each second) vs off, requests/s",
             f"{result['metrics_cost']['with_metrics_rps']:,.0f} = "
             f"{result['metrics_cost']['throughput_kept']:.2f} × off "
             f"({result['metrics_cost']['without_rps']:,.0f}/s); CPU "
             f"{result['metrics_cost']['with_metrics_cpu_ms']:.2f} / "
             f"{result['metrics_cost']['without_cpu_ms']:.2f} ms; scrape "
             f"{result['metrics_cost']['scrape_ms_median']:.1f} ms", "≥ 0.95 × off"),
            ("Cold start, process start to /health 200",
             f"{result['cold_start_s']['median']:.2f} s", "≤ 3 s"),
            ("Memory per worker (RSS)",
             f"{max(result['memory']['worker_rss_mb']):.0f} MB", "≤ 300 MB"),
            ("Whole service, RSS sum / PSS",
             f"{result['memory']['total_rss_mb']:.0f} / {result['memory']['total_pss_mb']:.0f} MB",
             "")]
    met = {t["name"]: t["met"] for t in result["targets"]}
    names = ["ratio", "p99", "nginx", None, None, None, "batch", "metrics", "cold_start",
             "worker_rss", None]
    lines = ["| Measure | Result | Target |", "|---|---|---|"]
    for (label, value, target), name in zip(rows, names):
        mark = "" if name is None else (" ✓" if met[name] else " ✗ missed")
        lines.append(f"| {label} | {value} | {target}{mark} |")
    noise = result["noise"]
    lines.append("")
    lines.append(f"Measured {result['measured_at']} on {m['cpu']}, {m['cores']} cores, "
                 f"Python {m['python']}, {m['os']} (load average at start "
                 f"{m['load_average_at_start'][0]}); gunicorn.conf.py with WEB_CONCURRENCY=2, "
                 f"wrk 2 threads. Medians of {noise['rounds']} alternating rounds; spread across "
                 f"rounds: requests/s ±{noise['one_record_rps_spread_pct']:.0f}%, floor "
                 f"±{noise['floor_rps_spread_pct']:.0f}%, ratio {noise['ratio_min']:.2f}–"
                 f"{noise['ratio_max']:.2f}.")
    return "\n".join(lines)


def chart(result: dict, path: Path) -> None:
    """Three panels: throughput against the floor, latency, and the other targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one, floor = result["one_record"], result["floor"]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4.2))
    bars = a.bar(["floor (constant)", "predict"],
                 [floor["requests_per_s"], one["requests_per_s"]], color=["#999999", "#1f77b4"])
    a.bar_label(bars, fmt="{:,.0f}")
    a.axhline(0.6 * floor["requests_per_s"], color="#d62728", ls="--", label="target: 0.6 × floor")
    a.set_title(f"One record, requests/s (ratio {result['ratio']:.2f})")
    a.legend(loc="lower right")
    quantiles = ["p50_ms", "p90_ms", "p99_ms"]
    x = range(len(quantiles))
    b.bar([i - 0.2 for i in x], [floor[q] for q in quantiles], 0.4, label="floor",
          color="#999999")
    b.bar([i + 0.2 for i in x], [one[q] for q in quantiles], 0.4, label="predict",
          color="#1f77b4")
    b.axhline(10, color="#d62728", ls="--", label="target p99 ≤ 10 ms")
    b.set_xticks(list(x), ["p50", "p90", "p99"])
    b.set_ylabel("ms")
    b.set_title("Latency at 8 connections")
    b.legend()
    others = [t for t in result["targets"] if t["name"] in ("batch", "cold_start", "worker_rss")]
    bars = c.barh([f"{t['label']}\n{_num(t['value'])} vs {t['limit']:,}" for t in others],
                  [t["share_of_target"] for t in others],
                  color=["#2ca02c" if t["met"] else "#d62728" for t in others])
    c.bar_label(bars, fmt="{:.2f}")
    c.axvline(1.0, color="black", ls="--")
    c.set_title("Against target (right of 1 = better)")
    m = result["machine"]
    fig.suptitle(f"insurance-charges benchmark, {result['measured_at']} — {m['cpu']}, "
                 f"{m['cores']} cores, Python {m['python']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(result: dict) -> list[Path]:
    """Write latest.json and latest.png, refresh the README table; return what was written."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, png_path = RESULTS / "latest.json", RESULTS / "latest.png"
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    chart(result, png_path)
    written = [json_path, png_path]
    text = README.read_text(encoding="utf-8")
    start, end = MARKERS
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        README.write_text(f"{head}{start}\n{table(result)}\n{end}{tail}", encoding="utf-8")
        written.append(README)
    return written
