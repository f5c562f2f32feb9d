"""A chunk of JSON lines checked, estimated and written: each line read as the API reads a body.

``tables.json_lines`` reads the chunk's lines in bulk, each value exactly what the API's strict
parser gives; identical lines are then judged once. Each object's six fields go to the core,
keys that are not columns (or that are repeated) are one problem each however many, a rejected
line (or a run of identical ones) is one rejects line, and a JSON-lines output is each line as
it was with the five values (the inference id last) spliced in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from ..core.schema import (
    BY_NAME,
    CATEGORY,
    FIELD_NAMES,
    FIELDS,
    INTEGER,
    FieldError,
    RepeatedKeys,
    _shown_key,
    check_value,
)
from ..core.validation import Refusal, validate_each, validate_records
from ..tables import columns as column_check
from ..tables.json_lines import read_json_lines
from .cells import ECHO_LIMIT, cut_text
from .chunk_output import encode_output
from .formats import (
    CSV,
    ESTIMATE,
    INFERENCE_ID,
    JSONL,
    LAST_LINE,
    LINE,
    LOWER,
    OUTPUT_COLUMNS,
    PROBLEMS,
    RUN_ROWS,
    UPPER,
    WARNINGS,
)
from .problems import (
    ChunkRejects,
    Rejected,
    counts,
    problem_objects,
    reject_columns,
    worded_lines,
)
from .reading import TextChunk
from .row_estimates import Estimated, capture, estimate, with_estimates
from .scored import Plan, Result
from .validating import ALL, locate, validate_all


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


@dataclass(slots=True)
class _JsonLine:
    """What a distinct line of a JSON-lines chunk holds; identical lines share one, so a
    line repeated a million times is parsed and judged once."""

    text: str  # the line as text (its bytes decoded, or replaced where they are not UTF-8)
    record: Any = None  # what the core judges: the fields of an object, or the value itself
    value: Any = None  # the parsed value (a tabular output carries its other keys)
    own: list = dc_field(default_factory=list)  # this command's problems (field, message)
    problems: list | None = None  # all of its problems once judged ([] when it is valid)
    is_row: bool = True  # False for text that is no JSON value (its problem is in problems)


def _judged_line(value, text: str, line: int, plan: Plan, allowed: set) -> _JsonLine:
    """One line's JSON value, with this command's own problems (keys it cannot take)."""
    own: list[FieldError] = []
    if isinstance(value, dict):
        record = {k: value[k] for k in FIELD_NAMES if k in value}
        if isinstance(value, RepeatedKeys):  # the core refuses a repeated field by name
            record = RepeatedKeys(record)
            record.repeated = tuple(k for k in value.repeated if k in BY_NAME)
            others = [k for k in value.repeated if k not in BY_NAME]
            if others:
                own.append(
                    _keys_problem(
                        line,
                        others,
                        "appears",
                        "appear",
                        "more than once in the object; give each key once",
                    )
                )
        for key in value:
            if key in OUTPUT_COLUMNS:
                own.append(
                    FieldError(
                        f"/{line}/{key}",
                        f"{key!r} is a column this command "
                        "adds to each row; rename it in the input",
                        key,
                    )
                )
        if plan.output_format != JSONL:
            strange = [k for k in value if k not in allowed and k not in OUTPUT_COLUMNS]
            if strange:
                own.append(
                    _keys_problem(
                        line,
                        strange,
                        "is not a column",
                        "are not columns",
                        f"of the {plan.output_format} output, whose columns are the first "
                        "record's keys; write JSON lines, or give every record the same keys",
                    )
                )
    else:
        record = value  # the core says what a record must be
    return _JsonLine(text, record, value, [(e.field, e.message) for e in own])


def score_json_lines(model, plan: Plan, chunk: TextChunk, worded: int) -> Result:
    """Score a chunk of JSON lines: each line one record, or one problem when it is no JSON;
    the rejects lines starting within its first ``worded`` rejected rows may get messages.

    Identical lines share one reading and one verdict: the distinct lines are read together by
    ``tables.json_lines`` (in bulk, each value exactly the API's strict parser's), so a line
    repeated a million times is parsed and judged once.
    """
    parts = chunk.data.split(b"\n")
    if chunk.data.endswith(b"\n"):
        parts.pop()
    distinct: dict[bytes, int] = {}  # a line's bytes -> its index among the distinct lines
    first_raw: list[bytes] = []  # each distinct line as it first came, without its line end
    first_lines: list[int] = []  # and the number of that line
    codes, code_lines = [], []  # each non-blank line's index in ``read``, and its number
    for offset, raw in enumerate(parts):
        body = raw.strip()
        if not body:
            continue  # a blank line is no row
        code = distinct.get(body)
        if code is None:
            code = distinct[body] = len(first_raw)
            first_raw.append(raw)
            first_lines.append(chunk.first_line + offset)
        codes.append(code)
        code_lines.append(chunk.first_line + offset)
    # The distinct lines, none blank, one to a line: the reader's i-th line is the i-th one.
    got = read_json_lines(b"\n".join(first_raw), 1)
    again = got.again().tolist()
    not_json = dict(got.problems)
    allowed = set(plan.columns)
    read: list[_JsonLine] = []
    for i in range(len(first_raw)):
        if i in not_json:
            read.append(_JsonLine(got.shown(i), is_row=False, problems=[(None, not_json[i])]))
        else:  # JSON: UTF-8 text already
            value = got.exact(i) if again[i] else got.values[i]
            read.append(
                _judged_line(
                    value, first_raw[i].strip().decode("utf-8"), first_lines[i], plan, allowed
                )
            )
    codes_at = np.array(codes, dtype=np.int64)
    all_lines = np.array(code_lines, dtype=np.int64)
    is_row = np.array([entry.is_row for entry in read], dtype=bool)
    row_at = np.flatnonzero(is_row[codes_at]) if len(codes) else np.empty(0, np.int64)
    items = [read[c].record for c in codes_at[row_at].tolist()]
    lines = all_lines[row_at]
    # The core's column-at-a-time check needs plain objects of the six fields; when some item
    # is not one, it would list every problem of the chunk only to refuse it: skip to ours.
    if plan.fast and not all(type(i) is dict and len(i) == len(FIELDS) for i in items):
        valid_records, refused = None, Refusal(total=1)
    else:
        valid_records, refused = validate_records(items, locate(lines))
    rows = [entry for entry in read if entry.is_row]  # each distinct record once
    if not refused.total:
        checked: list[list[tuple[str | None, str]]] = [[] for _ in rows]
    elif plan.fast:
        checked = _checked_items([entry.record for entry in rows])
    else:
        first_line = {
            code: int(line)
            for code, line in zip(
                codes_at[row_at][::-1].tolist(), lines[::-1].tolist(), strict=True
            )
        }
        codes_of_rows = [code for code, entry in enumerate(read) if entry.is_row]
        checked = [
            [(e.field, e.message) for e in errors]
            for _, errors in validate_all(
                [entry.record for entry in rows],
                np.array([first_line[c] for c in codes_of_rows], dtype=np.int64),
            )
        ]
    for entry, errors in zip(rows, checked, strict=True):
        entry.problems = errors + entry.own if entry.own else errors
    rejected = np.array([bool(entry.problems) for entry in read], dtype=bool)
    bad = rejected[codes_at] if len(codes) else np.zeros(0, dtype=bool)
    keep = np.flatnonzero(~bad[row_at]) if len(row_at) else np.empty(0, np.int64)
    if len(keep) < len(items):
        valid_records, _ = validate_records([items[j] for j in keep], locate(lines[keep]))
    chosen_lines = lines[keep]
    assert valid_records is not None, "validate_records refused records it had accepted"
    estimates = (
        estimate(model, {}, chosen_lines, valid_records)
        if len(keep)
        else estimate(model, {}, chosen_lines)
    )
    runs = _json_runs(read, codes_at, all_lines, bad)
    is_row = np.array([entry.is_row for entry in runs.entries], dtype=bool)
    sizes = np.array([len(entry.problems or ()) for entry in runs.entries], dtype=np.int64)
    unreadable = [
        Rejected(
            int(runs.line[i]),
            int(runs.last_line[i]),
            runs.entries[i].problems or [],
            text=runs.entries[i].text,
            rows=int(runs.rows[i]),
            repeats=int(runs.rows[i]),
        )
        for i in np.flatnonzero(~is_row).tolist()
    ]
    result = counts(
        len(items),
        int(runs.rows[is_row].sum()),
        int((runs.rows * sizes)[is_row].sum()),
        unreadable,
        estimates,
    )
    capture(model, plan, estimates, result)
    kept = codes_at[row_at][keep].tolist()
    result.output = _json_output(
        plan, [read[c].text for c in kept], [read[c].value for c in kept], valid_records, estimates
    )
    result.rejects = _json_rejects(plan, runs, worded) if len(runs.entries) else None
    return result


@dataclass
class _Runs:
    """A JSON-lines chunk's rejected lines, a run of identical ones one after the other as one:
    each one's first and last line, its rows, and what the (first) line holds."""

    line: np.ndarray
    last_line: np.ndarray
    rows: np.ndarray
    entries: list[_JsonLine]


def _json_runs(
    read: list[_JsonLine], codes: np.ndarray, lines: np.ndarray, bad: np.ndarray
) -> _Runs:
    """A reject per rejected line, or per run of identical rejected lines one after the other
    (blank lines between them do not count), found with numpy rather than line by line."""
    if not bad.any():
        empty = np.empty(0, dtype=np.int64)
        return _Runs(empty, empty, empty, [])
    new = np.ones(len(codes), dtype=bool)
    new[1:] = codes[1:] != codes[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(codes)) - 1
    chosen = bad[starts]
    starts, ends = starts[chosen], ends[chosen]
    return _Runs(
        lines[starts].astype(np.int64),
        lines[ends].astype(np.int64),
        (ends - starts + 1).astype(np.int64),
        [read[c] for c in codes[starts].tolist()],  # judged by now, and rejected
    )


def _checked_items(items: list) -> list[list[tuple[str | None, str]]]:
    """Each item's problems (field, message), as the core's ``validate_each`` lists them.

    A plain record (an object with no repeated key, holding only field keys) has exactly the
    problems of its values, so each field is judged a column at a time, each distinct value
    once (``_judged_values``), and records with the same messages share one list of problems
    (never changed after): a file of rows wrong in the same way makes one list, not one per
    row for the garbage collector to walk. Anything else (not an object, a repeated field)
    goes through the core whole.
    """
    objects = [j for j, item in enumerate(items) if type(item) is dict]
    records = items if len(objects) == len(items) else [items[j] for j in objects]
    out: list[list[tuple[str | None, str]]] = [[]] * len(items)  # each set below
    if objects:
        codes, words = [], []
        for f in FIELDS:
            code, said = _judged_values(f, [r.get(f.name, _LEFT_OUT) for r in records])
            codes.append(code)
            words.append(said)
        # Each record's six codes as one number (digits of a mixed radix, renumbered densely
        # before the number could overflow), then its kind among the distinct ones.
        key, radix = np.zeros(len(records), dtype=np.int64), 1
        for code, said in zip(codes, words, strict=True):
            if radix * len(said) >= 2**62:
                distinct, key = np.unique(key, return_inverse=True)
                radix = len(distinct)
            key, radix = key * len(said) + code, radix * len(said)
        distinct, which = np.unique(key, return_inverse=True)
        first = np.zeros(len(distinct), dtype=np.int64)
        first[which] = np.arange(len(key))  # a record of each kind (any one: they agree)
        shared = [
            [(f.name, said[c[k]]) for f, said, c in zip(FIELDS, words, codes, strict=True) if c[k]]
            for k in first.tolist()
        ]
        for j, kind in zip(objects, which.tolist(), strict=True):
            out[j] = shared[kind]
    for j, item in enumerate(items):
        if type(item) is not dict:  # only the messages are kept: no pointer is needed
            _, refusal = validate_each([item], lambda i: "", listed=ALL)
            out[j] = [(e.field, e.message) for e in refusal]
    return out


_LEFT_OUT = object()  # a field a record does not have


def _judged_values(f, values: list) -> tuple[np.ndarray, list]:
    """The core's verdict on each of a field's values, as a code into the list of messages it
    returns with them (code 0: the value is fine), each distinct value judged once: by type
    and exact value, since 1, 1.0 and True are equal keys in Python, 0.0 and -0.0 too, and
    each is worded differently; lists and objects are judged each time. ``_LEFT_OUT``: the
    field is missing."""
    said: list = [None]
    coded: dict[str | None, int] = {None: 0}
    texts: dict[str, int] = {}
    others: dict[tuple, int] = {}

    def code_of(message: str | None) -> int:
        if message not in coded:
            coded[message] = len(said)
            said.append(message)
        return coded[message]

    def judged(value) -> int:
        if type(value) is str:  # what a bad file holds most
            if value not in texts:
                texts[value] = code_of(check_value(f, value)[1])
            return texts[value]
        if value is _LEFT_OUT:
            return code_of(column_check.required_message(f))
        if isinstance(value, (list, dict)):
            return code_of(check_value(f, value)[1])
        key = (type(value), repr(value) if type(value) is float else value)
        if key not in others:
            others[key] = code_of(check_value(f, value)[1])
        return others[key]

    return np.array([judged(value) for value in values], dtype=np.int64), said


def _keys_problem(line: int, keys: list[str], one: str, many: str, rest: str) -> FieldError:
    """One problem for any number of keys (a row's problems stay few however many keys it
    has), naming the first three as the core names keys: "<keys> <one|many> <rest>"."""
    shown = ", ".join(_shown_key(str(k)) for k in keys[:3])
    more = f" and {len(keys) - 3:,} more" if len(keys) > 3 else ""
    verb = one if len(keys) == 1 else many
    return FieldError(f"/{line}/{keys[0]}", f"{shown}{more} {verb} {rest}", cut_text(str(keys[0])))


def _number(value) -> str:
    return "null" if value is None else repr(float(value))


def _json_output(
    plan: Plan, texts: list[str], objects: list[dict], records: Sequence[dict], estimates: Estimated
):
    fmt = plan.output_format
    amounts = estimates.amounts.tolist()
    lower = estimates.lower.tolist() if estimates.lower is not None else [None] * len(texts)
    upper = estimates.upper.tolist() if estimates.upper is not None else [None] * len(texts)
    warnings = estimates.warnings.tolist()
    if fmt == JSONL:  # the line as it was, with the five values spliced in before its last }
        # The run id as JSON text, once (its characters need no escape, but it is written as
        # JSON writes it), then each row's line.
        opened = _json_text(plan.run_id)[:-1] + "-"
        lines = estimates.lines.tolist()
        return "".join(
            f'{text[:-1]},"{ESTIMATE}":{_number(a)},"{LOWER}":{_number(lo)},'
            f'"{UPPER}":{_number(hi)},"{WARNINGS}":{_json_text(w)},'
            f'"{INFERENCE_ID}":{opened}{line}"}}\n'
            for text, a, lo, hi, w, line in zip(
                texts, amounts, lower, upper, warnings, lines, strict=True
            )
        ).encode("utf-8")
    table = {}
    for name in plan.columns:
        if name in BY_NAME:  # the validated value, typed as the schema says
            values = [r[name] for r in records]
            kind = BY_NAME[name].kind
            typed = (
                pa.string() if kind == CATEGORY else pa.int64() if kind == INTEGER else pa.float64()
            )
            if fmt == CSV:
                table[name] = pa.array([_cell(v) for v in values], pa.string())
            else:
                table[name] = pa.array(values, typed)
        else:
            values = [o.get(name) for o in objects]
            table[name] = (
                pa.array([_cell(v) for v in values], pa.string())
                if fmt == CSV
                else _carried_array(values)
            )
    out = pa.table(table) if table else pa.table({})
    return encode_output(with_estimates(out, estimates, plan.run_id), fmt, plan.inert)


def _cell(value) -> str | None:
    """A JSON value as a CSV cell: strings as they are, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return _json_text(value)


def _carried_array(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types: their JSON text
        return pa.array([_cell(v) for v in values], pa.string())


def _json_rejects(plan: Plan, runs: _Runs, worded: int) -> ChunkRejects:
    """The rejects of a JSON-lines chunk, those starting within its first ``worded`` rejected
    rows with their messages; a line that is no JSON, or a value that is no object (no
    field named), always keeps its one message, the only thing that says what is wrong."""
    before, head = worded_lines(runs.rows, worded)
    plain_of: dict[int, bool] = {}  # by the list of problems, which identical rows share
    for entry in runs.entries:
        if id(entry.problems) not in plain_of:
            plain_of[id(entry.problems)] = all(f is not None for f, _ in entry.problems or ())
    plain = np.array([plain_of[id(entry.problems)] for entry in runs.entries], dtype=bool)
    words = ~plain
    words[:head] = True
    lines = JsonRejects(plan.rejects_format, plan.inert, runs, words)
    return ChunkRejects.split(runs.line, before, plain, worded, head, lines)


@dataclass
class JsonRejects:
    """Rejects lines of a JSON-lines chunk in line order, before they are encoded; ``words``
    says which lines keep their messages."""

    fmt: str
    inert: bool
    runs: _Runs
    words: np.ndarray

    def sliced(self, start: int, stop: int) -> JsonRejects:
        """Lines ``start`` to ``stop``."""
        runs = self.runs
        return JsonRejects(
            self.fmt,
            self.inert,
            _Runs(
                runs.line[start:stop],
                runs.last_line[start:stop],
                runs.rows[start:stop],
                runs.entries[start:stop],
            ),
            self.words[start:stop],
        )

    def without_words(self, late: np.ndarray) -> JsonRejects:
        """The lines, those where ``late`` is True without messages."""
        return JsonRejects(self.fmt, self.inert, self.runs, self.words & ~late)

    def encoded(self) -> Any:
        """The lines as the rejects file's format writes them: a record echoed exactly as sent
        (``"row"``) when it is within the echo limit, else cut, as ``"text"``, as is text that
        is no JSON."""
        runs = self.runs
        if self.fmt == JSONL:
            # Each list of problems written once (as orjson writes the whole object: no
            # spaces), each line then pieced together: rows wrong in the same way share one
            # list (``_checked_items``), known by its identity while ``runs`` holds it.
            said_as: dict[tuple, str] = {}
            out = []
            for line, last, rows, entry, said in zip(
                runs.line.tolist(),
                runs.last_line.tolist(),
                runs.rows.tolist(),
                runs.entries,
                self.words.tolist(),
                strict=True,
            ):
                key = (said, id(entry.problems))
                problems = said_as.get(key)
                if problems is None:
                    found = entry.problems or []
                    fields = [f for f, _ in found]
                    messages = [m for _, m in found] if said else None
                    problems = said_as[key] = orjson.dumps(
                        problem_objects(fields, messages)
                    ).decode()
                head = (
                    f'{{"{LINE}":{line},"{LAST_LINE}":{last},"{RUN_ROWS}":{rows},'
                    f'"{PROBLEMS}":{problems}'
                )
                # The record exactly as sent, when it is one (a row) and short enough.
                if entry.is_row and len(entry.text) <= ECHO_LIMIT:
                    out.append(f'{head},"row":{entry.text}}}\n')
                else:  # text that is no JSON, or a record too long to echo whole: cut, as text
                    out.append(f'{head},"text":{_json_text(cut_text(entry.text))}}}\n')
            return "".join(out).encode("utf-8")
        listed = pa.list_(pa.string())
        lists = [entry.problems or [] for entry in runs.entries]
        table = pa.table(
            reject_columns(
                self.fmt,
                runs.line,
                runs.last_line,
                runs.rows,
                pa.array([[f for f, _ in found] for found in lists], listed),
                pa.array(
                    [
                        [m for _, m in found] if said else None
                        for found, said in zip(lists, self.words.tolist(), strict=True)
                    ],
                    listed,
                ),
            )
        )
        table = table.append_column(
            "record", pa.array([cut_text(entry.text) for entry in runs.entries], pa.string())
        )
        return encode_output(table, self.fmt, self.inert)
