"""Check a data set before retraining: its SHA-256, its columns, and every row against the schema.

Usage: ``python -m insurance_charges.training.data_checks SOURCE --out DIR [--sha256 HEX]
[--max-rejected N] [--holdout [FRACTION]] [--reference-card CARD | --no-reference-card WHY]``;
SOURCE is ``canonical``, an https URL, ``s3://bucket/key`` or a path (``data_fetch``), holding
CSV or Parquet (told by its content) in one of two shapes: the training CSV's columns, or the
joined records ``python -m insurance_charges.outcomes join`` writes (the inputs the service saw
and the bills that arrived for them), cut down to the training columns, each inference id at
most once; any other columns refuse the file. Rows the schema refuses are never dropped unseen:
each is written to ``DIR/rejected.csv`` with its line and problem, counted in
``DIR/report.json``, and more than ``--max-rejected`` of them (default 0) refuses the whole
file. ``DIR/accepted.csv`` holds the rows training may use, in the training CSV's shape, cells
exactly as given (a training CSV's own bytes when every row passes); ``--holdout`` also splits
them into ``train.csv`` and ``holdout.csv``, the records the promotion gate judges on
(``holdout``).
``--reference-card`` compares the accepted rows' inputs with a model card's training
distribution (``drift_report``): every input's PSI and status in ``DIR/drift.json`` and in brief
in the report, never a refusal. The report is printed on stdout as one JSON line; progress goes
to stderr, as JSON lines when stderr is not a terminal (a scheduler's task log).

Exit status: 0 usable, 1 refused (checksum, columns, too many refused rows), 2 usage error,
75 the source could not be read (network, S3): try again later.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow
import pyarrow.parquet as pq

from .. import cli_runner
from ..command_logs import log_to
from ..core.captures import INFERENCE_ID, JOINED_KEYS
from ..core.model_card import sha256_of
from ..core.schema import BY_NAME, FIELD_NAMES, typed_from_text, validate_record
from ..errors import UsageError
from .data import TARGET, DataError
from .data_fetch import fetch, parse_sha256
from .drift_report import DRIFT_REPORT, Baseline, compare, log_report, read_card, summary
from .holdout import split
from .train import HOLDOUT_FRACTION

log = logging.getLogger("insurance_charges.training.data_checks")

EXPECTED_COLUMNS = (*FIELD_NAMES, TARGET)
# The joined records `outcomes join` writes (inputs, estimate, bill): a source in this shape
# is cut down to EXPECTED_COLUMNS, each inference id once.
JOINED_COLUMNS, ID = JOINED_KEYS, "inference_id"
PARQUET_MAGIC = b"PAR1"  # the first (and last) four bytes of every Parquet file
# Rows converted to cells at a time: a batch of 65,536 rows of 14 columns is a few MiB.
PARQUET_BATCH = 65_536
# rejected.csv: one problem a line (its line, field and message), then the refused row.
PROBLEM_COLUMNS = ("line", "field", "message")
ACCEPTED, REJECTED, REPORT = "accepted.csv", "rejected.csv", "report.json"
REPORT_EXAMPLES = 20  # refused rows quoted in the report; rejected.csv has every one
# The statuses DataError, UsageError and FetchError carry; 75 is sysexits' EX_TEMPFAIL.
EXIT_REFUSED, EXIT_USAGE, EXIT_TRY_LATER = 1, 2, 75
_CHARGE_TEXT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")  # positive, plain decimal, as JSON


@dataclass
class Report:
    """What the check found: the source, its digest, and the fate of every row."""

    source: str
    sha256: str
    vouched_by: str
    bytes: int
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    blank_lines: int = 0
    max_rejected: int = 0
    accepted_sha256: str = ""
    rejected_examples: list[dict] = field(default_factory=list)
    holdout_fraction: float | None = None
    train_rows: int | None = None
    train_sha256: str | None = None
    holdout_rows: int | None = None
    holdout_sha256: str | None = None
    drift: dict | None = None  # drift_report.summary; None when no comparison was asked for
    format: str = "csv"  # csv or parquet, told by the content
    joined: bool = False  # the joined records `outcomes join` writes, cut to the training shape


def row_problems(cells: list[str]) -> list[tuple[str | None, str]]:
    """Each (field, message) wrong with one row whose cells follow EXPECTED_COLUMNS' order."""
    if len(cells) != len(EXPECTED_COLUMNS):
        return [
            (
                None,
                f"has {len(cells)} values, expected {len(EXPECTED_COLUMNS)}: "
                + ", ".join(EXPECTED_COLUMNS),
            )
        ]
    values = dict(zip(EXPECTED_COLUMNS, cells, strict=True))
    record = {name: typed_from_text(BY_NAME[name], values[name]) for name in FIELD_NAMES}
    _, errors = validate_record(record)
    problems = [(error.field, error.message) for error in errors]
    charge = values[TARGET]
    if not _CHARGE_TEXT.fullmatch(charge) or not math.isfinite(float(charge)) or float(charge) <= 0:
        problems.append((TARGET, f"{TARGET} must be a positive number; got {charge!r}"))
    return problems


@dataclass(frozen=True)
class Shape:
    """Which of the two accepted layouts a source's header is, and where training's cells are."""

    joined: bool  # what `outcomes join` writes (its inputs and bills), not the training CSV
    order: list[int]  # the index of each of EXPECTED_COLUMNS in the source's rows
    inference_id: int = -1  # the index of inference_id in a joined source's rows


def check_rows(path: Path, out_dir: Path, report: Report) -> None:
    """Split the rows of ``path`` into accepted.csv and rejected.csv in ``out_dir``.

    accepted.csv is in the training CSV's shape; a joined source's rows are cut down to it.
    """
    parquet = _is_parquet(path)
    report.format = "parquet" if parquet else "csv"
    try:
        with contextlib.ExitStack() as stack:
            header, rows = (_parquet_rows if parquet else _csv_rows)(path, stack, report.source)
            shape = _shape(header, report.source)
            report.joined = shape.joined
            accepted = stack.enter_context(
                open(out_dir / ACCEPTED, "w", newline="", encoding="utf-8")
            )
            rejected = stack.enter_context(
                open(out_dir / REJECTED, "w", newline="", encoding="utf-8")
            )
            keep = csv.writer(accepted, lineterminator="\n")
            refuse = csv.writer(rejected, lineterminator="\n")
            _split(rows, header, shape, keep, refuse, report)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{report.source} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{report.source} is not readable CSV: {exc}") from None
    if not (parquet or shape.joined or report.rejected or report.blank_lines):
        shutil.copyfile(path, out_dir / ACCEPTED)  # byte for byte: the digest stays the source's
    report.accepted_sha256 = sha256_of(out_dir / ACCEPTED)


def _is_parquet(path: Path) -> bool:
    """Parquet by its content (a file fetched from S3 or a URL keeps no name to go by)."""
    with open(path, "rb") as fh:
        return fh.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC


Rows = Iterator[tuple[int, list[str]]]  # each row's line (a Parquet row from 1) and its cells


def _csv_rows(path: Path, stack: contextlib.ExitStack, source: str) -> tuple[list[str], Rows]:
    # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the first name
    opened = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - the stack closes it
    reader = csv.reader(stack.enter_context(opened))
    header = next(reader, None) or []  # an empty file has no columns: refused by _shape
    return header, ((reader.line_num, cells) for cells in reader)


def _parquet_rows(path: Path, stack: contextlib.ExitStack, source: str) -> tuple[list[str], Rows]:
    with _parquet_errors(source):
        table = stack.enter_context(pq.ParquetFile(path))
        header = list(table.schema_arrow.names)

    def rows() -> Rows:
        line = 0
        with _parquet_errors(source):
            for batch in table.iter_batches(batch_size=PARQUET_BATCH):
                columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                for values in zip(*columns, strict=True):
                    line += 1
                    yield line, [_cell_text(v) for v in values]

    return header, rows()


@contextlib.contextmanager
def _parquet_errors(source: str) -> Iterator[None]:
    """pyarrow's failures to read a damaged file (ArrowException, or an OSError) as one line."""
    try:
        yield
    except (pyarrow.ArrowException, OSError) as exc:
        said = str(exc).strip().splitlines()
        raise DataError(
            f"{source} is not a readable Parquet file ({said[-1] if said else type(exc).__name__})"
        ) from None


def _cell_text(value: object) -> str:
    """A Parquet value as the CSV cell the same check reads: a whole number without ".0", a
    fraction as Python writes it (as pandas writes a joined CSV), anything else as text (which
    the schema refuses if it is not a valid value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()  # never a number: the schema refuses "true" as one
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _split(rows: Rows, header: list[str], shape: Shape, keep, refuse, report: Report) -> None:
    keep.writerow(EXPECTED_COLUMNS if shape.joined else header)
    refuse.writerow([*PROBLEM_COLUMNS, *header])
    first_line: dict[str, int] = {}  # a joined source's inference ids: each must be there once
    for line, cells in rows:
        if not cells:
            report.blank_lines += 1
            continue
        report.rows += 1
        whole = len(cells) == len(header)
        ordered = [cells[i] for i in shape.order] if whole else cells
        if not shape.joined:
            problems = row_problems(ordered)
        elif not whole:
            problems = [(None, f"has {len(cells)} values, expected {len(header)}: the header's")]
        else:
            problems = row_problems(ordered)
            problems += _id_problems(cells[shape.inference_id], line, first_line)
        if not problems:
            keep.writerow(ordered if shape.joined else cells)
            report.accepted += 1
            continue
        report.rejected += 1
        for name, message in problems:
            refuse.writerow([line, name or "", message, *cells])
            if len(report.rejected_examples) < REPORT_EXAMPLES:
                report.rejected_examples.append({"line": line, "field": name, "message": message})


def _id_problems(inference_id: str, line: int, first_line: dict[str, int]) -> list:
    """A joined row's inference id: as the capture format has it, and on no earlier row."""
    if not INFERENCE_ID.fullmatch(inference_id):
        return [
            (
                ID,
                f"{ID} must be 1 to 200 of A-Z a-z 0-9 . _ : @ / + = -; got {inference_id[:40]!r}",
            )
        ]
    seen = first_line.setdefault(inference_id, line)
    if seen != line:
        return [
            (
                ID,
                f"{ID} {inference_id!r} is on line {seen} too; `outcomes join` writes each "
                "estimate once, so one of them is not its bill",
            )
        ]
    return []


def _shape(header: list[str], source: str) -> Shape:
    """The training CSV's columns or the joined records', each exactly; anything else refused."""
    if header and sorted(header) == sorted(JOINED_COLUMNS):
        return Shape(True, [header.index(n) for n in EXPECTED_COLUMNS], header.index(ID))
    if not header or sorted(header) != sorted(EXPECTED_COLUMNS):
        missing = [c for c in EXPECTED_COLUMNS if c not in (header or [])]
        extra = [c for c in header or [] if c not in EXPECTED_COLUMNS]
        raise DataError(
            f"{source}: columns {header or []} (missing {missing}, unexpected "
            f"{extra}); expected exactly {list(EXPECTED_COLUMNS)} (a training CSV) or "
            f"{list(JOINED_COLUMNS)} (the joined records `python -m "
            "insurance_charges.outcomes join` writes)"
        )
    return Shape(False, [header.index(name) for name in EXPECTED_COLUMNS])


def run(
    source: str,
    out_dir: Path,
    sha256: str | None,
    max_rejected: int,
    holdout: float | None = None,
    baseline: Baseline | None = None,
) -> Report:
    """Fetch, check and split the data; raise DataError when it must not be trained on."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fetched = fetch(source, Path(tmp), sha256)
        log.info(
            "fetched %s: %d bytes, SHA-256 %s matches %s (%.2f s)",
            fetched.source,
            fetched.size,
            fetched.sha256,
            fetched.vouched_by,
            time.perf_counter() - started,
            extra={"fields": {"step": "fetch", "sha256": fetched.sha256}},
        )
        report = Report(
            fetched.source,
            fetched.sha256,
            fetched.vouched_by,
            fetched.size,
            max_rejected=max_rejected,
        )
        started = time.perf_counter()
        check_rows(fetched.path, out_dir, report)
    if holdout is not None and report.rejected <= max_rejected:
        train, held = split(out_dir / ACCEPTED, out_dir, holdout)
        report.holdout_fraction = holdout
        report.train_rows, report.train_sha256 = train.rows, train.sha256
        report.holdout_rows, report.holdout_sha256 = held.rows, held.sha256
    drift = None
    if baseline is not None and report.rejected <= max_rejected:
        drift = compare(baseline, out_dir / ACCEPTED)
        (out_dir / DRIFT_REPORT).write_text(json.dumps(drift, indent=2) + "\n")
        report.drift = summary(drift)
    (out_dir / REPORT).write_text(json.dumps(asdict(report), indent=2) + "\n")
    log.info(
        "checked %d rows against the schema: %d accepted, %d refused (%.2f s)",
        report.rows,
        report.accepted,
        report.rejected,
        time.perf_counter() - started,
        extra={
            "fields": {
                "step": "check",
                "rows": report.rows,
                "accepted": report.accepted,
                "rejected": report.rejected,
            }
        },
    )
    for example in report.rejected_examples:
        log.warning("line %d refused: %s", example["line"], example["message"])
    if report.holdout_rows is not None:
        log.info(
            "held out %d rows for the promotion gate, %d left to train on",
            report.holdout_rows,
            report.train_rows,
            extra={
                "fields": {
                    "step": "holdout",
                    "holdout_rows": report.holdout_rows,
                    "train_rows": report.train_rows,
                }
            },
        )
    if drift is not None:
        log_report(log, drift)
    if report.rejected > max_rejected:
        (out_dir / ACCEPTED).unlink()  # nothing here may be trained on
        raise DataError(
            f"{report.rejected} rows refused by the schema, more than the "
            f"{max_rejected} allowed (--max-rejected); see {out_dir / REJECTED}"
        )
    return report


def configure_logging(stream=None) -> None:
    """Progress on stderr: plain lines on a terminal, JSON lines for a scheduler's task log."""
    log_to(log, stream)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="canonical, https://..., s3://bucket/key or a path")
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument("--sha256", help="the SHA-256 the source must have")
    parser.add_argument(
        "--max-rejected",
        type=int,
        default=0,
        metavar="N",
        help="most rows the schema may refuse before the file is (default 0)",
    )
    parser.add_argument(
        "--holdout",
        type=float,
        nargs="?",
        const=HOLDOUT_FRACTION,
        metavar="FRACTION",
        help="also split the rows into train.csv and "
        f"holdout.csv, this share held out (default {HOLDOUT_FRACTION})",
    )
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument(
        "--reference-card",
        type=Path,
        metavar="CARD",
        help="compare the inputs with this model card's training "
        "distribution (the champion's): drift.json, never a refusal",
    )
    reference.add_argument(
        "--no-reference-card",
        metavar="WHY",
        help="no card to compare with (no champion yet): the report says why",
    )
    args = parser.parse_args(argv)
    configure_logging()
    # Usage errors end 2, data refused 1 ("Refused: ..."), a source that cannot be read now 75
    # ("Try again later: ..."), each its class's own; an output directory that cannot be
    # written or a path that cannot be read is the caller's to fix: 2.
    return cli_runner.run(lambda: _check(args), say=log.error, statuses={OSError: EXIT_USAGE})


def _check(args: argparse.Namespace) -> int:
    if args.max_rejected < 0:
        raise UsageError(f"--max-rejected {args.max_rejected}: give 0 or more rows")
    if args.holdout is not None and not 0 < args.holdout < 1:
        raise UsageError(f"--holdout {args.holdout}: give a share between 0 and 1")
    sha256 = parse_sha256(args.sha256) if args.sha256 else None
    baseline = (
        read_card(args.reference_card)
        if args.reference_card
        else Baseline(note=args.no_reference_card)
        if args.no_reference_card
        else None
    )
    report = run(args.source, args.out, sha256, args.max_rejected, args.holdout, baseline)
    print(json.dumps(asdict(report)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
