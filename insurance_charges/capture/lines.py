"""An answer's estimates as capture lines: ``core.captures.capture_line``'s bytes, a batch at once.

``capture_line`` makes a dict and formats the time for each record: about 15 ms for a
10,000-record batch (``python -m bench.micro``), half the request's own CPU. Here no Python
object is made per record. Each column of numbers is one orjson call over its numpy array
(the text orjson writes for each Python number: tests/test_capture.py checks it); fields of few
values (the categories, age, children) are each record's text taken by code from every
combination's text; Arrow's ``binary_join_element_wise`` then puts the columns side by side,
line by line, in C++. What every line of an answer shares (the id's head, the time, model
version and path, the keys) is written once. The bytes are ``capture_line``'s, one line after
the other (tests/test_capture.py compares them), in about a quarter of the time. A batch of
fewer than ``COLUMNS_FROM`` records is written by ``id_lines``, which costs less there.

``id_lines`` writes lines under ids of the caller's (the Kafka consumer's, the scorer's) with
one orjson call over a dict per record, whose separators between objects become newlines:
when the shared texts hold no ``}``, ``},{`` occurs only between records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..core.captures import KEYS, CaptureRecord, capture_line, utc_text
from ..core.estimates import MAX_BATCH_LIMIT
from ..core.schema import CATEGORY, FIELDS, INTEGER, Field
from ..core.validation import codes_of, column_of

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_COMMA = ord(",")
# 64-bit offsets: a column's text is never too long for them, however large a batch.
_TEXT = pa.large_binary()
_NO_SEPARATOR = pa.scalar(b"", _TEXT)
# Below this many records, ``id_lines`` (one orjson call, about 1.4 µs a record) costs less
# than the columns' fixed cost of about 0.3 ms: timeit over ``batch_lines`` both ways at load
# 3.8 put them level between 224 and 256 records (a record at a time through ``capture_line``
# had met the columns at about 48).
COLUMNS_FROM = 224
# An integer field of at most this many values is written as a category is, by code from its
# values' texts (age has 83, children 11): cheaper than writing each number.
FEW_VALUES = 256
# Consecutive such fields are written by one take while their combinations are at most this
# many (age and sex: 166; children, smoker and region: 88); each line is then fewer pieces.
MOST_COMBINATIONS = 4096
# The key after each key, in the line's order.
_FOLLOWING = dict(zip(KEYS, KEYS[1:], strict=False))


def one_line(
    inference_id: str,
    moment: datetime,
    model_version: str,
    path: str,
    record: dict,
    estimate: float,
    low: float | None,
    high: float | None,
) -> bytes:
    """The capture line of one estimate."""
    captured = {
        "inference_id": inference_id,
        "time": moment,
        "model_version": model_version,
        "path": path,
        **record,
        "estimate": estimate,
        "low": low,
        "high": high,
    }
    return capture_line(captured)  # type: ignore[arg-type]


def _key(name: str) -> bytes:
    """``,"name":``, what comes between a value and the next key's value."""
    return b',"' + name.encode() + b'":'


def numbers(values: np.ndarray, after: bytes) -> pa.Array:
    """Each number of a non-empty column as orjson writes it (``capture_line``'s text), then
    ``after``."""
    # One extra number last, so that every value is followed by a comma: "[a,b,c,a]". No
    # number's text holds a comma, and orjson takes only C-ordered arrays (np.append makes one).
    text = orjson.dumps(np.append(values, values[:1]), option=_NUMPY)
    commas = np.flatnonzero(np.frombuffer(text, np.uint8) == _COMMA)
    # Value i ends where its comma ends once every comma up to it has become ``after``; value
    # 0 starts after the "[".
    offsets = np.empty(len(commas) + 1, np.int64)
    offsets[0] = 0
    offsets[1:] = commas
    offsets += 1 + np.arange(len(offsets)) * (len(after) - 1)
    data = text.replace(b",", after)
    return pa.Array.from_buffers(
        _TEXT, len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _texts(field: Field) -> tuple[bytes, ...] | None:
    """Every text a field's value can have, if few: a category's choices, a small integer range."""
    if field.kind == CATEGORY:
        return tuple(orjson.dumps(choice) for choice in field.choices)
    low, high = int(field.minimum or 0), int(field.maximum or 0)
    if field.kind == INTEGER and high - low < FEW_VALUES:
        return tuple(orjson.dumps(value) for value in range(low, high + 1))
    return None


@dataclass(frozen=True)
class Taken:
    """Consecutive fields of few values written by one take: ``table`` holds the text of every
    combination of their values (keys between them, the next key after them)."""

    fields: tuple[Field, ...]
    sizes: tuple[int, ...]  # how many texts each field has
    table: pa.Array

    def column(self, records: list, picked: np.ndarray | None) -> pa.Array:
        """Each record's text."""
        codes = np.zeros(len(records) if picked is None else len(picked), np.intp)
        for field, size in zip(self.fields, self.sizes, strict=True):
            own = (
                codes_of(records, field.name)
                if field.kind == CATEGORY
                else column_of(records, field.name).astype(np.intp) - int(field.minimum or 0)
            )
            codes = codes * size + (own if picked is None else own[picked])
        return self.table.take(codes)


def _taken(run: list[Field], texts: Mapping[str, tuple[bytes, ...] | None], after: bytes) -> Taken:
    """One take of ``run``: every combination of its fields' texts, in code order."""
    combined = [b""]
    for i, field in enumerate(run):
        key = b"" if i == 0 else _key(field.name)
        combined = [text + key + value for text in combined for value in texts[field.name] or ()]
    return Taken(
        tuple(run),
        tuple(len(texts[field.name] or ()) for field in run),
        pa.array([text + after for text in combined], _TEXT),
    )


def plan(texts: Mapping[str, tuple[bytes, ...] | None], most: int) -> tuple[Field | Taken, ...]:
    """How a line's fields are written: a field of many values by ``numbers``, consecutive
    fields with ``texts`` by one take while they have at most ``most`` combinations."""
    steps: list[Field | Taken] = []
    run: list[Field] = []
    for field, then in zip(FIELDS, [*FIELDS[1:], None], strict=True):
        if texts[field.name] is None:
            steps.append(field)
            continue
        run.append(field)
        joined = [*run, then] if then is not None and texts[then.name] is not None else None
        if joined is None or math.prod(len(texts[f.name] or ()) for f in joined) > most:
            steps.append(_taken(run, texts, after=_key(_FOLLOWING[field.name])))
            run = []
    return tuple(steps)


# Made once: the same for every batch.
_PLAN = plan({field.name: _texts(field) for field in FIELDS}, MOST_COMBINATIONS)
# The positions of a whole batch as far as the API's largest, each closing its id's quote.
_POSITIONS = numbers(np.arange(MAX_BATCH_LIMIT), b'"')


def batch_lines(
    request_id: str,
    moment: datetime,
    model_version: str,
    path: str,
    records: list,
    amounts: np.ndarray,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
    positions: np.ndarray | list[int] | None = None,
) -> memoryview:
    """The capture lines of a batch's records at ``positions`` (all when None), whose ids are
    ``R-<position>``: one buffer, ``capture_line``'s bytes one after the other."""
    picked = None if positions is None else np.asarray(positions, np.intp)
    count = len(amounts) if picked is None else len(picked)
    if count < COLUMNS_FROM:
        chosen = list(range(count)) if picked is None else picked.tolist()
        return memoryview(
            id_lines(
                [f"{request_id}-{i}" for i in chosen],
                moment,
                model_version,
                path,
                records,
                amounts.tolist(),
                None if lower is None else lower.tolist(),
                None if upper is None else upper.tolist(),
                chosen,
            )
        )

    def at(column: np.ndarray) -> np.ndarray:
        return column if picked is None else column[picked]

    columns: list[pa.Array | pa.Scalar] = [  # side by side on each line; a scalar on every one
        pa.scalar(b'{"inference_id":' + orjson.dumps(request_id)[:-1] + b"-", _TEXT),  # '..."R-'
        _POSITIONS.slice(0, count)
        if picked is None and count <= len(_POSITIONS)
        else numbers(np.arange(count) if picked is None else picked, b'"'),
        pa.scalar(
            b',"time":'
            + orjson.dumps(utc_text(moment))
            + b',"model_version":'
            + orjson.dumps(model_version)
            + b',"path":'
            + orjson.dumps(path)
            + _key(_FOLLOWING["path"]),
            _TEXT,
        ),
    ]
    for step in _PLAN:
        if isinstance(step, Taken):
            columns.append(step.column(records, picked))
            continue
        values = at(column_of(records, step.name))
        # Integers are ints in the records (validation makes them so): no ".0".
        columns.append(
            numbers(
                values.astype(np.int64) if step.kind == INTEGER else values,
                _key(_FOLLOWING[step.name]),
            )
        )
    if lower is None or upper is None:
        columns.append(numbers(at(amounts), b',"low":null,"high":null}\n'))
    else:
        columns.append(numbers(at(amounts), _key("low")))
        columns.append(numbers(at(lower), _key("high")))
        columns.append(numbers(at(upper), b"}\n"))
    lines = pc.binary_join_element_wise(*columns, _NO_SEPARATOR)
    _, offsets, data = lines.buffers()
    first, last = np.frombuffer(offsets, np.int64)[[lines.offset, lines.offset + len(lines)]]
    return memoryview(data)[first:last]


def id_lines(
    ids: Sequence[str],
    moment: datetime,
    model_version: str,
    path: str,
    records: Sequence,
    estimates: list,
    lows: list | None,
    highs: list | None,
    positions: list[int],
) -> bytes:
    """The capture lines of the records at ``positions``, the k-th of them named ``ids[k]``
    (the Kafka consumer's and the scorer's ids, which are not a request's positions)."""
    if not positions:
        return b""
    lows = lows if lows is not None else [None] * len(estimates)
    highs = highs if highs is not None else [None] * len(estimates)
    when = utc_text(moment)
    if b"}" in orjson.dumps([model_version, path]):  # a brace could fake a record break
        return b"".join(
            one_line(
                name,
                moment,
                model_version,
                path,
                records[i],
                estimates[i],
                lows[i],
                highs[i],
            )
            for name, i in zip(ids, positions, strict=True)
        )
    objects: list[CaptureRecord] = [
        {
            "inference_id": name,
            "time": when,  # type: ignore[typeddict-item]
            "model_version": model_version,
            "path": path,
            "age": record["age"],
            "sex": record["sex"],
            "bmi": record["bmi"],
            "children": record["children"],
            "smoker": record["smoker"],
            "region": record["region"],
            "estimate": estimates[i],
            "low": lows[i],
            "high": highs[i],
        }
        for name, i, record in ((n, i, records[i]) for n, i in zip(ids, positions, strict=True))
    ]
    return orjson.dumps(objects)[1:-1].replace(b"},{", b"}\n{") + b"\n"
