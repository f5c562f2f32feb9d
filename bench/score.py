"""Measure ``python -m insurance_charges.scoring``: rows/s and peak memory on generated files.

Usage: ``.venv/bin/python -m bench.score [--rows 1000000] [--memory 100000,5000000]``.

Generates CSV files of an ``id`` column plus the six fields with valid random values (within
the model's training ranges, so rows carry no warnings unless ``--ranges schema``), runs the
command on each as a separate process (CSV to CSV, default settings) and polls the process
tree's resident memory with psutil every 100 ms (polling costs CPU the command would use).
Prints, per file: rows/s by the command's own clock (model loaded to output committed) and by
the wall clock (process start to exit), and the peak RSS of the whole tree (parent plus
workers; shared pages count once per process) and of the parent alone. Files go to a
temporary directory (``--dir``) and are deleted after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parent.parent
TRAINING = {"age": (18, 64), "bmi": (15.96, 53.13), "children": (0, 5)}
SCHEMA = {"age": (18, 100), "bmi": (10.0, 80.0), "children": (0, 10)}
CHOICES = {
    "sex": ("female", "male"),
    "smoker": ("yes", "no"),
    "region": ("northeast", "northwest", "southeast", "southwest"),
}


def generate(path: Path, rows: int, ranges: dict, seed: int = 0, block: int = 500_000) -> None:
    """Write ``rows`` valid records with an ``id`` column, a block at a time."""
    rng = np.random.default_rng(seed)
    with pa_csv.CSVWriter(
        str(path),
        pa.schema(
            [
                ("id", pa.string()),
                ("age", pa.int64()),
                ("sex", pa.string()),
                ("bmi", pa.float64()),
                ("children", pa.int64()),
                ("smoker", pa.string()),
                ("region", pa.string()),
            ]
        ),
        write_options=pa_csv.WriteOptions(quoting_style="none"),
    ) as writer:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            ids = np.char.add("P", np.arange(start, start + n).astype("U9"))
            columns = {"id": pa.array(ids)}
            for name in ("age", "sex", "bmi", "children", "smoker", "region"):
                if name in CHOICES:
                    choices = np.array(CHOICES[name], dtype=object)
                    columns[name] = pa.array(choices[rng.integers(0, len(choices), n)], pa.string())
                elif name == "bmi":
                    columns[name] = pa.array(np.round(rng.uniform(*ranges[name], n), 2))
                else:
                    low, high = ranges[name]
                    columns[name] = pa.array(rng.integers(low, high + 1, n))
            writer.write_table(pa.table(columns))


def run(command: list[str], env: dict) -> dict:
    """Run the command, polling its process tree's memory; its summary and the peaks."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    parent = psutil.Process(process.pid)
    peak_tree = peak_parent = 0
    while process.poll() is None:
        try:
            tree = [parent] + parent.children(recursive=True)
            rss = [p.memory_info().rss for p in tree]
        except psutil.Error:
            continue
        peak_tree = max(peak_tree, sum(rss))
        peak_parent = max(peak_parent, rss[0])
        time.sleep(0.1)
    wall = time.perf_counter() - started
    stderr = process.stderr.read()
    summary = next(
        (
            json.loads(line)
            for line in stderr.splitlines()
            if line.startswith("{") and '"summary"' in line
        ),
        None,
    )
    if process.returncode != 0 or summary is None:
        sys.exit(f"the command failed ({process.returncode}):\n{stderr}")
    return {
        "summary": summary,
        "wall_seconds": wall,
        "peak_tree_mb": peak_tree / 2**20,
        "peak_parent_mb": peak_parent / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the speed run")
    parser.add_argument(
        "--memory", default="100000,5000000", help="comma-separated row counts for the memory runs"
    )
    parser.add_argument("--ranges", choices=("training", "schema"), default="training")
    parser.add_argument("--dir", default=None, help="where the generated files go")
    parser.add_argument("extra", nargs="*", help="more arguments for the command (after --)")
    args = parser.parse_args()
    ranges = TRAINING if args.ranges == "training" else SCHEMA
    env = dict(os.environ)
    counts = [args.rows] + [int(c) for c in args.memory.split(",") if c]
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
        f"values within the {args.ranges} ranges",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for rows in dict.fromkeys(counts):
            source, target = Path(tmp) / f"in-{rows}.csv", Path(tmp) / f"out-{rows}.csv"
            generate(source, rows, ranges)
            command = [
                sys.executable,
                "-m",
                "insurance_charges.scoring",
                str(source),
                "-o",
                str(target),
                *args.extra,
            ]
            got = run(command, env)
            s = got["summary"]
            print(
                f"{rows:>10,} rows, {source.stat().st_size / 2**20:,.0f} MiB CSV -> CSV: "
                f"{s['rows_per_second']:>9,} rows/s ({s['seconds']:.2f} s scoring; wall "
                f"{got['wall_seconds']:.2f} s, {rows / got['wall_seconds']:,.0f} rows/s); "
                f"peak RSS tree {got['peak_tree_mb']:,.0f} MB, parent "
                f"{got['peak_parent_mb']:,.0f} MB; {s['rows_scored']:,} scored, "
                f"{s['rows_rejected']:,} rejected, {s['warnings']:,} warnings",
                flush=True,
            )
            source.unlink()
            target.unlink()


if __name__ == "__main__":
    main()
