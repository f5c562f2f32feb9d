"""What rejected rows cost the file scorer against valid rows of the same input size.

Usage: ``.venv/bin/python -m bench.rejects [--megabytes 10] [--only NAME] [--dir DIR]
[--rounds 1] [--worded-rejects N]``.

For CSV and for JSON lines, writes a file of about ``--megabytes`` MB of each kind of row and
runs ``python -m insurance_charges.scoring`` on it (same format out, ``--max-rejects`` high so
every run exits 0): valid rows (``bench.score``'s generator, an id and the six fields within
the training ranges), the same rows with ``age`` 150 (each row distinct, one problem each),
rows with all six fields wrong and a distinct id each, and the lines issue 20 found costing
the most, each the same line repeated: all six fields wrong (``P1,abc,x,y,z,q,w``) and empty
rows (``,,,,,,`` and ``{}``). Prints per file: seconds by the command's own clock (model loaded
to output committed), the output's and the rejects file's size, and both as ratios to the
valid file of its format. With ``--rounds K`` each file is scored K times, each time right
after the valid file of its format again, and the time ratio is the median of those pairs (a
shared machine's load drifts between runs minutes apart; a pair seconds apart sees the same).
The issue's target (docs/scoring.md, "Rejects"): every bad file within the valid file's time,
and rejects a small constant times the input. Files go to a temporary directory and are
deleted after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.csv as pa_csv

from bench.score import TRAINING, generate

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
# An input line wrong in every field (issue 20's example), and its JSON-lines form.
ALL_WRONG_CSV = "{id},abc,x,y,z,q,w\n"
ALL_WRONG_JSON = (
    '{{"id":"{id}","age":"abc","sex":"x","bmi":"y","children":"z","smoker":"q","region":"w"}}\n'
)


def _valid_csv(path: Path, size: int) -> None:
    rows = size // 36  # bench.score's rows are about 36 bytes
    generate(path, rows, TRAINING)


def _valid_jsonl(path: Path, size: int, csv_path: Path) -> None:
    table = pa_csv.read_csv(csv_path)
    with open(path, "w") as out:
        written = 0
        for row in table.to_pylist():
            line = json.dumps(row, separators=(",", ":")) + "\n"
            if written + len(line) > size:
                break
            out.write(line)
            written += len(line)


def _age_wrong(valid: Path, path: Path, fmt: str) -> None:
    text = valid.read_text()
    if fmt == "csv":
        head, _, body = text.partition("\n")
        lines = [line.split(",") for line in body.splitlines()]
        body = "".join(",".join([c[0], "150", *c[2:]]) + "\n" for c in lines)
        path.write_text(head + "\n" + body)
    else:
        rows = [json.loads(line) for line in text.splitlines()]
        path.write_text(
            "".join(json.dumps({**r, "age": 150}, separators=(",", ":")) + "\n" for r in rows)
        )


def _repeated(path: Path, size: int, header: str, line: str) -> None:
    count = (size - len(header)) // len(line)
    path.write_text(header + line * count)


def _distinct(path: Path, size: int, header: str, template: str) -> None:
    lines, written = [header], len(header)
    i = 0
    while True:
        line = template.format(id=f"P{i}")
        if written + len(line) > size:
            break
        lines.append(line)
        written += len(line)
        i += 1
    path.write_text("".join(lines))


def files(tmp: Path, size: int) -> list[tuple[str, str, Path]]:
    """(format, what, path) of every file measured, the valid one of each format first."""
    header = "id,age,sex,bmi,children,smoker,region\n"
    made = []
    valid_csv, valid_jsonl = tmp / "valid.csv", tmp / "valid.jsonl"
    _valid_csv(valid_csv, size)
    _valid_jsonl(valid_jsonl, size, valid_csv)
    made.append(("csv", "valid rows", valid_csv))
    path = tmp / "age.csv"
    _age_wrong(valid_csv, path, "csv")
    made.append(("csv", "rows with age wrong (150), each distinct", path))
    path = tmp / "six-distinct.csv"
    _distinct(path, size, header, ALL_WRONG_CSV)
    made.append(("csv", "all six fields wrong, each row distinct (P<i>,abc,x,y,z,q,w)", path))
    path = tmp / "six-same.csv"
    _repeated(path, size, header, ALL_WRONG_CSV.format(id="P1"))
    made.append(("csv", "all six fields wrong, one line repeated (P1,abc,x,y,z,q,w)", path))
    path = tmp / "empty.csv"
    _repeated(path, size, header, ",,,,,,\n")
    made.append(("csv", "empty rows (,,,,,,)", path))
    made.append(("jsonl", "valid rows", valid_jsonl))
    path = tmp / "age.jsonl"
    _age_wrong(valid_jsonl, path, "jsonl")
    made.append(("jsonl", "rows with age wrong (150), each distinct", path))
    path = tmp / "six-distinct.jsonl"
    _distinct(path, size, "", ALL_WRONG_JSON)
    made.append(("jsonl", "all six fields wrong, each row distinct", path))
    path = tmp / "six-same.jsonl"
    _repeated(path, size, "", ALL_WRONG_JSON.format(id="P1"))
    made.append(("jsonl", "all six fields wrong, one line repeated", path))
    path = tmp / "empty.jsonl"
    _repeated(path, size, "", "{}\n")
    made.append(("jsonl", "empty objects ({})", path))
    return made


def run(source: Path, fmt: str, extra: list[str]) -> dict:
    """Score one file; its summary line, output and rejects sizes."""
    target = source.with_name(source.stem + ".out." + fmt)
    rejects = source.with_name(source.stem + ".out.rejects." + fmt)
    command = [
        sys.executable,
        "-m",
        "insurance_charges.scoring",
        str(source),
        "-o",
        str(target),
        "--max-rejects",
        str(10**12),
        *extra,
    ]
    done = subprocess.run(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    summary = next(
        (
            json.loads(line)
            for line in done.stderr.splitlines()
            if line.startswith("{") and '"summary"' in line
        ),
        None,
    )
    if done.returncode != 0 or summary is None:
        sys.exit(f"the command failed on {source.name} ({done.returncode}):\n{done.stderr}")
    got = {"summary": summary, "output": target.stat().st_size, "rejects": rejects.stat().st_size}
    target.unlink()
    rejects.unlink()
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10, help="size of each input")
    parser.add_argument("--only", default="", help="measure only files whose name has this")
    parser.add_argument("--dir", default=None, help="where the generated files go")
    parser.add_argument(
        "--rounds", type=int, default=1, help="pairs of (valid, this file) runs per file"
    )
    parser.add_argument(
        "--worded-rejects", default=None, help="passed to the command (default: its own)"
    )
    args = parser.parse_args()
    extra = ["--worded-rejects", args.worded_rejects] if args.worded_rejects is not None else []
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        valid: dict[str, Path] = {}
        for fmt, what, path in files(Path(tmp), int(args.megabytes * MB)):
            if args.only and args.only not in path.name and what != "valid rows":
                continue
            size = path.stat().st_size
            valid.setdefault(fmt, path)  # the first file of each format
            ratios, got = [], {}
            for _ in range(args.rounds):  # the valid file's own line shows the noise
                base = run(valid[fmt], fmt, extra)["summary"]["seconds"]
                got = run(path, fmt, extra)
                ratios.append(got["summary"]["seconds"] / base)
            s = got["summary"]
            print(
                f"{fmt:5} {what}: {size / MB:.1f} MB, {s['rows_read']:,} rows "
                f"({s['rows_rejected']:,} rejected, {s['problems']:,} problems): "
                f"{s['seconds']:.2f} s ({statistics.median(ratios):.2f}x valid, "
                f"{min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)}), output "
                f"{got['output'] / MB:.1f} MB, rejects {got['rejects'] / MB:.1f} MB "
                f"({got['rejects'] / size:.2f}x the input), load average "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
