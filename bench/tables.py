"""Measured figures as Markdown tables, from the JSON the measuring commands write.

The docs site renders these at build time (devtools/docs_site.py), so a figure in the docs is
always the one in bench/results/, never a copy typed into prose.
"""

from __future__ import annotations

from insurance_charges.settings import MB


def bench(result: dict) -> str:
    """`make bench`'s figures against their targets (bench/results/latest.json)."""
    m, one, floor = result["machine"], result["one_record"], result["floor"]
    rows = [
        (
            "One record, requests/s (8 connections)",
            f"{one['requests_per_s']:,.0f} = {result['ratio']:.2f} × floor "
            f"({floor['requests_per_s']:,.0f}/s)",
            "≥ 0.6 × floor",
        ),
        (
            "One record, latency p50 / p90 / p99",
            f"{one['p50_ms']} / {one['p90_ms']} / {one['p99_ms']} ms",
            "p99 ≤ 10 ms",
        ),
        (
            "One record behind the image's nginx, requests/s",
            f"{result['behind_nginx']['requests_per_s']:,.0f} = "
            f"{result['behind_nginx']['ratio_to_direct']:.2f} × direct, p99 "
            f"{result['behind_nginx']['p99_ms']} ms",
            "≥ 0.9 × direct",
        ),
        (
            "Floor latency p50 / p90 / p99",
            f"{floor['p50_ms']} / {floor['p90_ms']} / {floor['p99_ms']} ms",
            "",
        ),
        (
            "Before: the same service through pipeline.predict",
            f"{result['pipeline_predict_path']['requests_per_s']:,.0f} requests/s, p99 "
            f"{result['pipeline_predict_path']['p99_ms']} ms",
            "",
        ),
        (
            "Service CPU per one-record request (predict / floor)",
            f"{one['cpu_ms_per_request']:.2f} / {floor['cpu_ms_per_request']:.2f} ms",
            "",
        ),
        (
            "10,000-record batch, rows/s end to end",
            f"{result['batch']['rows_per_s']:,.0f} ({result['batch']['p50_ms']:,.0f} ms "
            f"per batch, {result['batch']['cpu_ms_per_batch']:,.0f} ms CPU)",
            "≥ 250,000",
        ),
        (
            "One record with metrics on (scraped each second) vs off, requests/s",
            f"{result['metrics_cost']['with_metrics_rps']:,.0f} = "
            f"{result['metrics_cost']['throughput_kept']:.2f} × off "
            f"({result['metrics_cost']['without_rps']:,.0f}/s); CPU "
            f"{result['metrics_cost']['with_metrics_cpu_ms']:.2f} / "
            f"{result['metrics_cost']['without_cpu_ms']:.2f} ms; scrape "
            f"{result['metrics_cost']['scrape_ms_median']:.1f} ms",
            "≥ 0.95 × off",
        ),
        (
            "Cold start, process start to /health 200",
            f"{result['cold_start_s']['median']:.2f} s",
            "≤ 3 s",
        ),
        ("Memory per worker (RSS)", f"{max(result['memory']['worker_rss_mb']):.0f} MB", "≤ 300 MB"),
        (
            "Whole service, RSS sum / PSS",
            f"{result['memory']['total_rss_mb']:.0f} / {result['memory']['total_pss_mb']:.0f} MB",
            "",
        ),
    ]
    met = {t["name"]: t["met"] for t in result["targets"]}
    names = [
        "ratio",
        "p99",
        "nginx",
        None,
        None,
        None,
        "batch",
        "metrics",
        "cold_start",
        "worker_rss",
        None,
    ]
    lines = ["| Measure | Result | Target |", "|---|---|---|"]
    for (label, value, target), name in zip(rows, names, strict=True):
        mark = "" if name is None else (" ✓" if met[name] else " ✗ missed")
        lines.append(f"| {label} | {value} | {target}{mark} |")
    noise = result["noise"]
    lines.append("")
    lines.append(
        f"Measured {result['measured_at']} on {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}, {m['os']} (load average at start "
        f"{m['load_average_at_start'][0]}); gunicorn.conf.py with WEB_CONCURRENCY=2, "
        f"wrk 2 threads. Medians of {noise['rounds']} alternating rounds; spread across "
        f"rounds: requests/s ±{noise['one_record_rps_spread_pct']:.0f}%, floor "
        f"±{noise['floor_rps_spread_pct']:.0f}%, ratio {noise['ratio_min']:.2f}–"
        f"{noise['ratio_max']:.2f}, batch rows/s ±{noise['batch_rps_spread_pct']:.0f}%."
    )
    return "\n".join(lines)


def invocations(result: dict) -> str:
    """SageMaker /invocations on the image (bench/results/invocations.json)."""
    t, lat = result["throughput"], result["latency_seconds"]
    return "\n".join(
        [
            f"| Measure (`bench/invocations.py`, the image with `serve` on {result['cpus']} cores; "
            f"load {result['load_average_at_start']:.1f} at start) | Result |",
            "|---|---|",
            f"| CSV rows/s per instance, {t['clients']} clients (`MaxConcurrentTransforms`) "
            "sending "
            f"{result['payload_bytes'] / MB:.0f} MB mini-batches for {t['seconds']:.0f} s | "
            f"{t['rows_per_second']:,} |",
            "| Rows per CPU-second of the container (comparable with the command's rows/s per "
            f"core) | {t['rows_per_cpu_second']:,} |",
            f"| One mini-batch ({result['payload_rows']:,} rows), seconds end to end, median / max "
            f"| {lat['median']} / {lat['max']} |",
        ]
        + (
            [
                "| A body of the same size refused whole (`,,,,,` rows, `0` or `{}` lines), its "
                "time "
                "over a valid one's of its type, worst median (`bench/refusals.py`; at most 2) | "
                f"{result['refusals']['worst_ratio']:.2f} |"
            ]
            if "refusals" in result
            else []
        )
    )


def metrics_soak(result: dict) -> str:
    """The metrics directory under worker recycling (bench/results/metrics-soak.json)."""
    f, s, w = result["files"], result["scrape_ms"], result["without_archive"]
    m = result["machine"]
    a = result["with_archive"]
    return "\n".join(
        [
            "| Measure | Result |",
            "|---|---|",
            f"| Load | {result['requests']:,} one-record requests in {result['seconds']:g} s, "
            f"{result['workers_recycled']} workers recycled "
            f"(max_requests {result['max_requests']}) |",
            f"| Metric files in the directory | {f['min']}–{f['max']} (last {f['last']}) |",
            f"| Disk used at most | {result['disk_kb_max']} KB |",
            f"| Scrape time under load | first {s['first']:.1f} ms, median {s['median']:.1f} ms, "
            f"max {s['max']:.1f} ms, last (load over) {s['last']:.1f} ms |",
            f"| Counter after the soak | {result['estimates_total']['last']:,.0f}, "
            "never backwards: "
            f"{result['estimates_total']['never_backwards']} |",
            f"| Reading the directory after the soak | {a['files']} files: {a['read_ms']:.1f} ms; "
            f"had dead workers' files been left: {w['files']:,} files, {w['read_ms']:,.1f} ms |",
            "",
            f"Measured {result['measured_at']} on {m['cpu']}, {m['cores']} cores, Python "
            f"{m['python']} (load average at start {m['load_average_at_start'][0]}), wrk and the "
            "service sharing the cores.",
        ]
    )


def mutation(result: dict) -> str:
    """`make mutate`'s share of mutants killed per core module (bench/results/mutation.json)."""
    # A run stopped before its end leaves mutants not run: shown in a column of their own.
    unfinished = any(row.get("not_run", 0) for row in result["modules"])
    head = "| Module | Killed | Survived | Other |" + (" Not run |" if unfinished else "")
    lines = [
        head + " Share killed |",
        "|---|---|---|---|" + ("---|" if unfinished else "") + "---|",
    ]
    for row in result["modules"]:
        not_run = row.get("not_run", 0)
        other = row["total"] - row["killed"] - row["survived"] - not_run
        share = 100 * row["killed"] / row["total"]
        lines.append(
            f"| `{row['module']}` | {row['killed']:,} of {row['total']:,} | "
            f"{row['survived']:,} | {other:,} |"
            + (f" {not_run:,} |" if unfinished else "")
            + f" {share:.1f}% |"
        )
    killed, total = result["killed"], result["total"]
    lines.append(
        f"| **core** | **{killed:,} of {total:,}** | | |"
        + (" |" if unfinished else "")
        + f" **{100 * killed / total:.1f}%** |"
    )
    lines.append("")
    floor = "" if result["floor"] is None else f"; the run fails below {result['floor']:g}%"
    lines.append(
        f"Measured {result['measured_at']} with mutmut {result['mutmut']} on "
        f"{result['machine']['cores']} cores ({result['machine']['cpu']}){floor}."
    )
    return "\n".join(lines)


def model_card(card: dict) -> str:
    """The committed model's errors beside the tutorials' model (model/*.card.json)."""
    lines = [
        "| Model | CV MAE | CV RMSE | CV R² | Holdout MAE | Holdout RMSE | Holdout R² |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figures in (
        (f"{card['estimator']} (served)", card["metrics"]),
        ("Tutorials' linear regression", card["baseline"]),
    ):
        cv, holdout = figures["cv"], figures["holdout"]
        lines.append(
            f"| {name} | {cv['mae']:,.2f} | {cv['rmse']:,.2f} | {cv['r2']:.4f} | "
            f"{holdout['mae']:,.2f} | {holdout['rmse']:,.2f} | {holdout['r2']:.4f} |"
        )
    return "\n".join(lines)


def blas_spread(result: dict) -> str:
    """How far training's figures move across BLAS kernels (bench/results/blas-spread.json)."""
    lines = ["| Card part | Figures | Largest relative spread |", "|---|---|---|"]
    for part in result["parts"]:
        where = f" ({part['largest_at'].lstrip('/')})" if part["largest_at"] else ""
        lines.append(
            f"| `{part['part']}` | {part['figures']:,} | {part['largest_spread']:.2g}{where} |"
        )
    runs = "; ".join(
        f"{run['label']} ({', '.join(sorted({b['kernel'] for b in run['openblas']}))}"
        f", {max(b['threads'] for b in run['openblas'])} BLAS thread"
        f"{'s' if max(b['threads'] for b in run['openblas']) > 1 else ''})"
        for run in result["runs"]
    )
    pipelines = len(result["pipeline_sha256"])
    lines.append("")
    lines.append(
        f"Measured {result['measured_at']} on {result['machine']['cores']} cores "
        f"({result['machine']['cpu']}), {len(result['runs'])} trainings: {runs}. "
        f"Estimator: {' or '.join(result['estimator'])}"
        f"{' in every run' if len(result['estimator']) == 1 else ''}; "
        f"{'one pipeline file' if pipelines == 1 else f'{pipelines} pipeline files'} "
        "by SHA-256."
    )
    return "\n".join(lines)


def kafka(result: dict) -> str:
    """Records through one Kafka consumer process (bench/results/kafka.json)."""
    machine = result["machine"]
    rows = [
        f"| Records per message (`bench/kafka.py`, {result['measured_at']}, "
        f"{machine['cores']} cores, load {machine['load_average_at_start'][0]:.1f} at start) "
        "| Records | Records/s | Consumer CPU per record "
        "| Broker's ceiling, messages/s: read / the loop without the model |",
        "|---|---|---|---|---|",
    ]
    for s in result["scenarios"]:
        bare = s["broker_ceiling_messages_per_s"]
        rows.append(
            f"| {s['records_per_message']} | {s['records']:,} | "
            f"{s['records_per_s']:,} | {s['consumer_cpu_us_per_record']} µs | "
            f"{bare['read']:,} / {bare['loop']:,} |"
        )
    return "\n".join(rows)


def worker(result: dict) -> str:
    """The EB worker route's messages/s per instance (bench/results/worker.json)."""
    m, setup = result["machine"], result["setup"]
    header = (
        f"| Measure (`python -m bench.worker`, {setup['connections']} sqsd connections, "
        f"WEB_CONCURRENCY={setup['WEB_CONCURRENCY']}) | One record per message | "
        f"{setup['batch_records']} records per message |"
    )
    lines = [header, "|---|---|---|"]
    one, batch = result["one_record"], result[f"records_{setup['batch_records']}"]
    lines.append(
        f"| Messages/s acknowledged (each result published first) | "
        f"{one['messages_per_s']:,.1f} | {batch['messages_per_s']:,.1f} |"
    )
    lines.append(
        f"| Service CPU per message | {one['cpu_ms_per_message']:.2f} ms | "
        f"{batch['cpu_ms_per_message']:.2f} ms |"
    )
    waits = " | ".join(_wait(figures["rounds"]) for figures in (one, batch))
    lines.append(f"| Time sqsd waits per message, p50 / p99 (median round) | {waits} |")
    lines.append("")
    lines.append(
        f"Measured {result['measured_at']} on {m['cpu']}, {m['cores']} cores, Python "
        f"{m['python']} (load average at start {m['load_average_at_start'][0]}), the "
        f"load and moto's server (results: {setup['destination']}; one SendMessage "
        f"{result['publish_ms_median']} ms) sharing the cores. Medians of "
        f"{setup['rounds']} rounds of {setup['round_s']:g} s."
    )
    return "\n".join(lines)


def _wait(rounds: list[dict]) -> str:
    middle = sorted(rounds, key=lambda r: r["messages_per_s"])[len(rounds) // 2]
    return f"{middle['p50_ms']:.0f} / {middle['p99_ms']:.0f} ms"


def capture(result: dict) -> str:
    """Capture at 100% against no capture (bench/results/capture.json)."""
    m, cost = result["machine"], result["capture_cost"]

    def mark(met: bool) -> str:
        return "✓" if met else "✗ missed"

    lines = [
        "| Load | Throughput, capture on ÷ off (median; rounds) | Service CPU per request, "
        "on / off | CPU, off ÷ on (median; rounds) | Target |",
        "|---|---|---|---|---|",
    ]
    for label, key in (
        ("One record, 8 connections", "one_record"),
        ("10,000-record batch, 1 connection", "batch"),
    ):
        f = cost[key]
        lines.append(
            f"| {label} | {f['throughput_kept']:.2f} ({f['ratio_min']:.2f} to "
            f"{f['ratio_max']:.2f}) | {f['with_capture_cpu_ms']:.2f} / "
            f"{f['without_cpu_ms']:.2f} ms | {f['cpu_kept']:.2f} ({f['cpu_ratio_min']:.2f} to "
            f"{f['cpu_ratio_max']:.2f}) | ≥ {f['target']:.2f}: throughput {mark(f['met'])}, "
            f"CPU {mark(f['cpu_met'])} |"
        )
    lines.append("")
    lines.append(
        f"Measured {result['measured_at']} on {m['cpu']}, {m['cores']} cores, Python "
        f"{m['python']} (load average at start {m['load_average_at_start'][0]}), wrk and both "
        f"services sharing the cores; {cost['rounds']} alternating rounds. After SIGTERM the "
        f"files held {cost['captured_records']:,} lines (wrk counted "
        f"{cost['answered_records_counted_by_wrk']:,} answered; the rest were answered as its "
        f"rounds ended), {cost['bytes_per_record']:g} bytes a record."
    )
    return "\n".join(lines)
