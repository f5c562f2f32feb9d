"""``python -m insurance_charges.scoring INPUT -o OUTPUT``: score a whole file, as the API would.

Exit status: 0 when every row was scored (or no more were rejected than ``--max-rejects``
allows), 1 when more were rejected, 2 when the run could not be done (unreadable input, a
missing column, an unknown format, an unusable setting or model, an output that is not a
regular file: one ``Error:`` line on stderr), 128 + the signal's number when stopped by
SIGINT, SIGTERM or SIGHUP. The output and its rejects file appear together when the run is
complete, or neither does (a standard output stream excepted: it is written as it goes); the
one ``Error:`` line says what a run that did not finish left.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from .. import cli_runner
from ..aws.clients import lazy
from ..aws.uri import is_s3
from ..capture.destinations import DestinationError
from ..capture.writer import CaptureTally, CaptureWriter
from ..core.schema import CATEGORY, FIELD_NAMES, FIELDS, INTEGER
from ..errors import UsageError, UserError
from ..tables.json_lines import first_object
from .chunk_scorer import ChunkScorer
from .formats import (
    CSV,
    JSONL,
    LAST_LINE,
    LINE,
    OUTPUT_COLUMNS,
    PARQUET,
    PROBLEM_FIELDS,
    PROBLEM_MESSAGES,
    REJECT_COLUMNS,
    RUN_ID,
    RUN_ROWS,
    STDIO,
    format_of,
    input_format,
    output_format,
    rejects_location,
)
from .parallel import OrderedPool
from .publishing import Outcome, abort_all, publish_together
from .reading import csv_header, field_columns, first_line, parquet_chunks, text_chunks
from .reporting import Reporter
from .scored import Plan, Result
from .signals import Interrupted, StopSignals
from .storage import (
    Sink,
    Source,
    StreamSink,
    check_output_place,
    open_sink,
    parse_object_uri,
    same_place,
)
from .writing import ChunkWriter, refuse_unwritable_csv

CHUNK_ROWS = 50_000
# Rejected rows whose rejects lines carry the core's messages; later ones name their fields
# only. A file's mistakes are of few kinds, each shown many times in 1,000 rows, and their words
# stay small: the messages of 1,000 rows with all six fields wrong take 0.42 MB in CSV and
# 0.49 MB in JSON lines (the rejects of --worded-rejects 1000 less those of 0), where each
# later such row would add 420 to 490 bytes to the 19-byte row it rejects.
WORDED_REJECTS = 1_000
NOT_DONE = 2  # any failure but a stop signal (docs/scoring.md: the exit statuses)
STDERR = "stderr"


def _whole(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is below {low}")
        return value

    return parse


def _run_id(text: str) -> str:
    if not RUN_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text[:140]!r} is not a run id: give 1 to 128 letters, digits or ._:@/+=- , "
            "starting with a letter or a digit"
        )
    return text


def parser() -> cli_runner.Parser:
    """The command's arguments."""
    p = cli_runner.Parser(
        prog="python -m insurance_charges.scoring",
        description="Estimate yearly insurance charges for every row of a CSV, JSON-lines or "
        "Parquet file, through the same validation and model as the JSON API.",
        epilog="Locations are local paths, s3://bucket/key URIs or - (stdin, stdout). The model "
        "comes from MODEL_PATH or MODEL_URI, and MODEL_PUBLIC_KEY, as for the service. "
        "Exit status: 0 done, 1 more rows rejected than --max-rejects allows, 2 not "
        "done, 128 + N stopped by signal N (SIGHUP, SIGINT, SIGTERM).",
    )
    p.add_argument("input", metavar="INPUT", help="the file to score (- for stdin)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="where to write the scored rows (- for stdout)",
    )
    p.add_argument(
        "--input-format",
        metavar="FORMAT",
        help="csv, jsonl (ndjson) or parquet; default: INPUT's extension (stdin: csv)",
    )
    p.add_argument(
        "--format",
        metavar="FORMAT",
        help="the output's format; default: OUTPUT's extension, else the input's",
    )
    p.add_argument(
        "--rejects",
        metavar="PATH",
        help="where rows that cannot be scored go, one line per problem; default: "
        "OUTPUT's stem + .rejects + its extension, or stderr (JSON lines) when "
        "OUTPUT is -",
    )
    p.add_argument(
        "--max-rejects",
        type=_whole(0),
        default=0,
        metavar="N",
        help="exit 0 even if up to N rows were rejected (default 0)",
    )
    p.add_argument(
        "--worded-rejects",
        type=_whole(0),
        default=WORDED_REJECTS,
        metavar="N",
        help="give the problems' messages for the first N rejected rows only; the "
        f"rejects lines of later ones name their fields (default {WORDED_REJECTS:,})",
    )
    p.add_argument(
        "--chunk-rows",
        type=_whole(1),
        default=CHUNK_ROWS,
        metavar="N",
        help=f"rows per chunk (default {CHUNK_ROWS:,})",
    )
    p.add_argument(
        "--jobs",
        type=_whole(1),
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes (default: one per CPU; 1 scores in this process)",
    )
    p.add_argument(
        "--run-id",
        type=_run_id,
        metavar="R",
        help="each scored row's inference_id is R-<its line> (default: a new id for each "
        "run, 32 hexadecimal digits, given in the summary); pass the same R to score a "
        "file again under the same ids",
    )
    p.add_argument(
        "--raw-csv-cells",
        action="store_true",
        help="write CSV text cells exactly as read, even those a spreadsheet would "
        "run as a formula (by default a cell starting with = + - @, a tab or "
        "a carriage return, and not a number, gets a leading ')",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status."""
    signals, outcome = StopSignals(), Outcome()
    with signals.installed():
        # A second signal does not cut the closing line short (shield).
        return cli_runner.run(
            lambda: run(parser().parse_args(argv), signals, outcome),
            explain=lambda exc: _explained(exc, outcome),
            shield=signals.deferred,
        )


def _explained(exc: BaseException, outcome: Outcome) -> UserError | None:
    """The run's closing line, with what it left, and its status (2 unless stopped by a
    signal); None for SystemExit (--help) and the like."""
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):  # the latter: before our handler
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        joined = " after " if outcome.published else "; "
        return UserError(
            f"interrupted by {signal.Signals(signum).name}{joined}{outcome.said()}", 128 + signum
        )
    if not isinstance(exc, Exception):
        return None
    left = outcome.said()
    if isinstance(exc, UserError):  # an unusable input, option, setting or model
        return UserError(str(exc) if left == "no output written" else f"{exc}; {left}", NOT_DONE)
    if isinstance(exc, BrokenProcessPool):
        return UserError(f"a worker process died (out of memory, or killed); {left}", NOT_DONE)
    return UserError(f"{cli_runner.line_for(exc)}; {left}", NOT_DONE)


def _name(location: str) -> str:
    return "stdin" if location == STDIO else location


def run(args: argparse.Namespace, signals: StopSignals, outcome: Outcome) -> int:
    """Score ``args.input`` into ``args.output``; return the exit status.

    ``signals`` defers stop signals while the outputs are published or cleaned up;
    ``outcome`` records what the run has left, for the closing line whatever happens.
    """
    for location in (args.input, args.output, args.rejects):
        if location and is_s3(location):
            parse_object_uri(location)  # a malformed URI is refused before anything else
    in_fmt = input_format(args.input, args.input_format)
    out_fmt = output_format(args.output, args.format, in_fmt)
    if args.output == STDIO:
        rejects = args.rejects or STDERR
    else:
        rejects = args.rejects or rejects_location(args.output, out_fmt)
    rejects_fmt = JSONL if rejects == STDERR else (format_of(rejects) or out_fmt)
    for a, b, what in (
        (args.input, args.output, "the output would overwrite the input"),
        (args.input, rejects, "the rejects file would overwrite the input"),
        (args.output, rejects, "the rejects file would overwrite the output"),
    ):
        if same_place(a, b):
            raise UsageError(f"{what} ({b}); choose another location")
    if rejects == STDIO:
        raise UsageError(
            "--rejects - is not possible; give a file, or leave --rejects out to "
            "get them on stderr when the output is stdout"
        )
    check_output_place(args.output, "-o")
    if rejects != STDERR:
        check_output_place(rejects, "--rejects")

    s3 = lazy("s3")  # the run's one S3 client, made only if a location is on S3
    source = Source(args.input, s3)
    sinks: list[Sink] = []
    writers: list[ChunkWriter] = []
    pool = None
    captures: _Captures | None = None
    reporter = Reporter()
    try:
        name = _name(args.input)
        reserved = OUTPUT_COLUMNS + (REJECT_COLUMNS if rejects_fmt != JSONL else ())
        total_rows = None
        if in_fmt == CSV:
            header, rest = first_line(source.stream(), name)
            columns = csv_header(header, name)
            fields = field_columns(columns, name, reserved)
            stream: Iterator = text_chunks(
                source.stream(), args.chunk_rows, first_line=2, prefix=rest, name=name, quoted=True
            )
            input_schema = None
        elif in_fmt == PARQUET:
            parquet = _open_parquet(source, name)
            input_schema = parquet.schema_arrow
            columns = tuple(input_schema.names)
            fields = field_columns(columns, name, reserved)
            for fmt, what in ((out_fmt, "output"), (rejects_fmt, "rejects")):
                if fmt == CSV:
                    refuse_unwritable_csv(input_schema, name, what)
            total_rows = parquet.metadata.num_rows
            stream = parquet_chunks(parquet, args.chunk_rows)
        else:
            stream = text_chunks(source.stream(), args.chunk_rows, name=name)
            first = next(stream, None)
            columns = _json_columns(first)
            fields = {f: f for f in FIELD_NAMES}
            stream = itertools.chain([first] if first is not None else [], stream)
            input_schema = None

        run_id = args.run_id or uuid.uuid4().hex  # the service's own request ids' form
        plan = Plan(
            in_fmt,
            out_fmt,
            rejects_fmt,
            columns,
            fields,
            inert=not args.raw_csv_cells,
            run_id=run_id,
        )
        out_sink = open_sink(args.output, s3)
        sinks.append(out_sink)
        rejects_sink = (
            StreamSink(sys.stderr.buffer, STDERR) if rejects == STDERR else open_sink(rejects, s3)
        )
        sinks.append(rejects_sink)
        out_columns = columns + OUTPUT_COLUMNS
        reject_columns = REJECT_COLUMNS + (("record",) if in_fmt == JSONL else columns)
        out_writer = ChunkWriter(
            out_sink,
            out_fmt,
            out_columns,
            _output_schema(in_fmt, columns, input_schema),
            plan.inert,
        )
        rejects_writer = ChunkWriter(
            rejects_sink,
            rejects_fmt,
            reject_columns,
            _rejects_schema(in_fmt, columns, input_schema),
            plan.inert,
        )
        writers.extend([rejects_writer, out_writer])

        from ..serving.model import load_model
        from ..settings import from_environ

        settings = from_environ()
        if settings.model_uri:  # a version in the registry's store, as the service serves it
            from ..registry.loading import load_from_store

            model = load_from_store(settings.model_uri, settings.trusted_keys)
        else:
            model = load_model(settings.model_path, settings.trusted_keys)
        captures = _capture_writer(settings)
        if captures is not None:
            plan = dataclasses.replace(plan, capture_percent=captures.writer.percent)
        scorer = ChunkScorer(model, plan)
        # The model and the libraries loaded so far live until the end: keep the collector
        # off them (a full collection walks millions of objects) and off the pages the
        # workers share with this process.
        gc.freeze()
        reporter.event(
            "scoring",
            event="start",
            input=args.input,
            output=args.output,
            rejects=rejects,
            input_format=in_fmt,
            output_format=out_fmt,
            jobs=args.jobs,
            chunk_rows=args.chunk_rows,
            model_version=model.version,
            run_id=run_id,
        )
        pool = OrderedPool(args.jobs, scorer)
        reporter.start(total_rows)
        counts = dict(rows=0, scored=0, rejected=0, problems=0, warnings=0, unreadable=0)
        first_unreadable = None
        worded = _Worded(args.worded_rejects)
        done_bytes = 0
        budgeted = _budgeted(stream, counts, args.worded_rejects)
        for result in pool.map(_score, budgeted, inflight=2 * args.jobs):
            out_writer.write(result.output)
            rejects_writer.write(worded.finished(result, counts["rejected"]))
            if captures is not None and result.captured_at is not None:
                captures.writer.hold(result.captured_at, result.captured, result.captured_records)
                captures.writer.ship_if_due()  # a file a minute, or each 16 MiB: memory stays flat
            for key in counts:
                counts[key] += getattr(result, key)
            if first_unreadable is None:
                first_unreadable = result.first_unreadable
            done_bytes += result.size
            reporter.advance(result.rows, done_bytes, source.size, total_rows)
        pool.close()
        if captures is not None:  # every capture shipped (or counted) before the output is out
            captures.writer.close()
        # The rejects first, the output last (its presence means "finished"), both or neither.
        publish_together(writers, outcome, signals)
        reporter.summary(
            counts,
            args.output,
            rejects,
            first_unreadable,
            run_id,
            captures.said() if captures is not None else None,
            worded=(worded.rows if worded.rows is not None else counts["rejected"], worded.line),
        )
    except BaseException:
        with signals.deferred():  # cleaning up is not cut short by another signal
            if captures is not None:  # what was estimated is captured, as the service does
                captures.writer.close()
            reporter.detach()
            if pool is not None:
                pool.terminate()
            if not outcome.published:
                abort_all([*writers, *sinks[len(writers) :]], outcome, signals)
        raise
    finally:
        gc.unfreeze()  # for a caller that goes on (the tests run main() in their process)
        source.close()
    try:
        return _status(counts, args.max_rejects, rejects, reporter)
    finally:
        reporter.detach()


@dataclass(frozen=True)
class _Captures:
    """The run's capture writer (no thread: the command ships as it goes) and its counts."""

    writer: CaptureWriter
    tally: CaptureTally

    def said(self) -> dict:
        """The summary's capture counts."""
        return {
            "captures_shipped": self.tally.shipped,
            "captures_dropped": self.tally.dropped,
            "capture_failures": self.tally.failed,
        }


def _capture_writer(settings) -> _Captures | None:
    """With CAPTURE_URI set (and CAPTURE_PERCENT above 0), the run's capture writer."""
    if settings.capture is None or settings.capture_percent <= 0:
        return None
    try:
        settings.capture.prepare()
    except DestinationError as exc:
        raise UsageError(f"CAPTURE_URI={str(settings.capture)!r}: {exc}") from None
    tally = CaptureTally()
    writer = CaptureWriter(settings.capture, settings.capture_percent, tally, background=False)
    return _Captures(writer, tally)


def _status(counts: dict, max_rejects: int, rejects: str, reporter: Reporter) -> int:
    if counts["rejected"] > max_rejects:
        message = (
            f"{counts['rejected']:,} rows rejected, more than --max-rejects allows "
            f"({max_rejects:,}); see {rejects}"
        )
        if reporter.terminal:
            print(message, file=reporter.stream, flush=True)
        else:
            reporter.log.error(
                message,
                extra={
                    "fields": {
                        "event": "rejected",
                        "rows_rejected": counts["rejected"],
                        "max_rejects": max_rejects,
                    }
                },
            )
        return 1
    return 0


def _budgeted(stream: Iterator, counts: dict, words: int) -> Iterator[tuple]:
    """Each chunk with the rejected rows of it that may still be worded: ``words`` less the
    rejected rows counted when it is read. Chunks before it still being scored may reject
    more, so this is an upper bound, which ``_Worded.finished`` makes exact."""
    for chunk in stream:
        yield chunk, max(0, words - counts["rejected"])


@dataclass
class _Worded:
    """Which rejects lines carry messages: those of the first ``words`` rejected rows in
    input order, whatever the chunks and workers; where the first line without them is."""

    words: int
    rows: int | None = None  # rejected rows before the first line without messages
    line: int | None = None  # and that line's number

    def finished(self, result: Result, rejected: int):
        """The chunk's rejects as the file holds them, given the ``rejected`` rows of the
        chunks before it."""
        if result.rejects is None:
            return None
        allowance = max(0, self.words - rejected)
        if self.line is None:
            first = result.rejects.first_unworded(allowance)
            if first is not None:
                self.rows = rejected + int(result.rejects.before[first])
                self.line = int(result.rejects.line[first])
        return result.rejects.finished(allowance)


def _score(scorer: ChunkScorer, item: tuple) -> Result:
    chunk, worded = item
    result = scorer.score(chunk, worded)
    result.size = chunk.size
    return result


def _open_parquet(source: Source, name: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(source.random_access())
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"cannot read {name} as Parquet: {exc}") from None


def _json_columns(first) -> tuple[str, ...]:
    """The columns a CSV or Parquet output gets from JSON lines: the first object's keys."""
    value = first_object(first.data) if first is not None else None
    keys = [k for k in value if k not in OUTPUT_COLUMNS] if value is not None else []
    return tuple(keys) + tuple(f for f in FIELD_NAMES if f not in keys)


def _output_schema(in_fmt: str, columns, input_schema):
    import pyarrow as pa

    added = [
        pa.field("estimate", pa.float64()),
        pa.field("likely_lower", pa.float64()),
        pa.field("likely_upper", pa.float64()),
        pa.field("warnings", pa.string()),
        pa.field("inference_id", pa.string()),
    ]
    if input_schema is not None:
        return pa.schema(list(input_schema) + added)
    if in_fmt == CSV:
        return pa.schema([pa.field(c, pa.string()) for c in columns] + added)
    kinds = {
        f.name: pa.string()
        if f.kind == CATEGORY
        else pa.int64()
        if f.kind == INTEGER
        else pa.float64()
        for f in FIELDS
    }
    return pa.schema([pa.field(c, kinds.get(c, pa.string())) for c in columns] + added)


def _rejects_schema(in_fmt: str, columns, input_schema):
    import pyarrow as pa

    listed = pa.list_(pa.string())  # a Parquet rejects file keeps a row's problems as lists
    head = [
        pa.field(LINE, pa.int64()),
        pa.field(LAST_LINE, pa.int64()),
        pa.field(RUN_ROWS, pa.int64()),
        pa.field(PROBLEM_FIELDS, listed),
        pa.field(PROBLEM_MESSAGES, listed),
    ]
    if in_fmt == JSONL:
        return pa.schema(head + [pa.field("record", pa.string())])
    if input_schema is not None:
        return pa.schema(head + list(input_schema))
    return pa.schema(head + [pa.field(c, pa.string()) for c in columns])
