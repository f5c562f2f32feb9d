"""File formats, what each is called on the command line, and the columns a run adds."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..errors import UsageError

CSV, JSONL, PARQUET = "csv", "jsonl", "parquet"
FORMATS = (CSV, JSONL, PARQUET)
# Extension -> format; the first extension of each format is the one a default name gets.
EXTENSIONS = {".csv": CSV, ".jsonl": JSONL, ".ndjson": JSONL, ".parquet": PARQUET}
ALIASES = {"csv": CSV, "jsonl": JSONL, "ndjson": JSONL, "json-lines": JSONL, "parquet": PARQUET}
EXTENSION_OF = {CSV: ".csv", JSONL: ".jsonl", PARQUET: ".parquet"}

# Columns every output row gets, after the input's own: its inference id last, as the API's.
ESTIMATE, LOWER, UPPER, WARNINGS = "estimate", "likely_lower", "likely_upper", "warnings"
INFERENCE_ID = "inference_id"
OUTPUT_COLUMNS = (ESTIMATE, LOWER, UPPER, WARNINGS, INFERENCE_ID)
LINE, FIELD, MESSAGE = "line", "field", "message"
# Columns a tabular (CSV, Parquet) rejects file of the scorer puts before the rejected row's
# own: one line a rejected row (or a run of identical rows), with all of its problems.
LAST_LINE, RUN_ROWS, PROBLEM_FIELDS, PROBLEM_MESSAGES = "last_line", "rows", "fields", "messages"
REJECT_COLUMNS = (LINE, LAST_LINE, RUN_ROWS, PROBLEM_FIELDS, PROBLEM_MESSAGES)
# A JSON-lines rejects line lists its problems as {"field", "message"} objects under this key.
PROBLEMS = "problems"
# A CSV rejects line joins its fields, and its messages, with this: no message holds a line
# break (the core shows any text it quotes as JSON or repr), so the n-th field and the n-th
# message go together; a spreadsheet shows one problem a line within the cell.
PROBLEM_SEPARATOR = "\n"
# A row's warning messages are joined with this (the messages themselves contain "; ").
WARNING_SEPARATOR = " | "
STDIO = "-"
# A run id: the request id's characters and length (web/logs.py), starting with a letter or a
# digit so that no row's id is a cell a spreadsheet would run as a formula (cells.py).
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def inference_id(run_id: str, line: int) -> str:
    """A scored row's inference id: ``R-<line>``, the row's line as the rejects file numbers
    it (a CSV's header is line 1; JSON lines count every line; Parquet rows count from 1)."""
    return f"{run_id}-{line}"


def parse_format(text: str, option: str) -> str:
    """A format named on the command line."""
    name = ALIASES.get(text.strip().lower())
    if name is None:
        raise UsageError(
            f"{option} {text!r} is not a format this command reads or writes; "
            "use csv, jsonl (or ndjson) or parquet"
        )
    return name


def suffix_of(location: str) -> str:
    """The lower-case extension of a path or s3:// URI ('' if none)."""
    return PurePosixPath(location.split("?", 1)[0]).suffix.lower()


def format_of(location: str) -> str | None:
    """The format a file's extension names, or None."""
    return EXTENSIONS.get(suffix_of(location))


def input_format(location: str, given: str | None) -> str:
    """The input's format: --input-format, else the extension; stdin defaults to CSV."""
    if given:
        return parse_format(given, "--input-format")
    if location == STDIO:
        return CSV
    found = format_of(location)
    if found is None:
        raise UsageError(
            f"cannot tell the format of {location} from its extension; name it "
            ".csv, .jsonl, .ndjson or .parquet, or pass --input-format"
        )
    return found


def output_format(location: str, given: str | None, input_fmt: str) -> str:
    """The output's format: --format, else the output's extension, else the input's format."""
    if given:
        return parse_format(given, "--format")
    named = format_of(location) if location != STDIO else None
    return named or input_fmt


def rejects_location(output: str, output_fmt: str) -> str:
    """The default rejects file beside the output: ``<stem>.rejects.<ext>``."""
    parent, _, name = output.rpartition("/")
    stem = name[: -len(suffix_of(name))] if suffix_of(name) else name
    ext = suffix_of(name) if format_of(name) == output_fmt else EXTENSION_OF[output_fmt]
    return (parent + "/" if parent or output.startswith("/") else "") + f"{stem}.rejects{ext}"
