"""Messages in, messages out: what the Kafka consumer hands the core and publishes of its answers.

No Kafka client here. ``answer_values`` takes the values of one ``consume()`` call, reads each
as the JSON API reads a body (strict JSON, one record or a batch), validates every record and
estimates all the valid ones through the core in **one** call, then splits the answers back:
each value gets the API's exact answer bytes or, when it can never be estimated, its
problem+json document, which ``reject_value`` wraps with the topic, partition and offset it
came from. An answer is the API's for the message's request id ``<prefix>:<partition>:<offset>``
(``request_id_of``), so its inference ids are the same however often the message is delivered;
``capture_lines`` makes the capture lines of the estimates under the same ids. The consumer
carries each message's key and headers to what it publishes.

Thousands of messages a second go through here, most of them one record each: values are
parsed in bulk (orjson, with parse_json's checks made once over all of them) and the answers
written from the estimate arrays (core/json_bytes.py), not one Python object at a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from ..capture.lines import id_lines
from ..core.captures import inference_ids, is_sampled
from ..core.estimates import (
    Estimates,
    Estimator,
    InvalidRecords,
    TooManyRecords,
    estimate_valid,
    items_of,
)
from ..core.json_bytes import answer_json, each_alone_json
from ..core.problems import problem_body, refusal_parts
from ..core.schema import FieldError
from ..core.strict_json import orjson_exact, parse_json, paused_gc
from ..core.validation import ValidRecords, alone, in_batch, validate_records

# What a value is answered with: the output's bytes, or the problem document of a reject.
Answer = bytes | dict
CAPTURE_PATH = "/kafka"  # the capture record's path for an estimate the consumer made


class Answered(NamedTuple):
    """What ``answer_values`` gives: one answer per value, in order; and for the capture, the
    valid records' estimates (None when there were none) and their inference ids."""

    answers: list[Answer]
    estimates: Estimates | None
    ids: list[str]


def request_id_of(id_prefix: str, partition: int, offset: int) -> str:
    """A message's request id, ``<prefix>:<partition>:<offset>``: where the message lies, so a
    message delivered again gets the same id (and its estimates the same inference ids)."""
    return f"{id_prefix}:{partition}:{offset}"


class Refused(ValueError):
    """A message value that can never be estimated; ``document`` is its problem+json body."""

    def __init__(self, document: dict):
        super().__init__(document["detail"])
        self.document = document


def read_value(value: bytes | None, max_bytes: int) -> Any:
    """A message value parsed as the API parses a body (strict JSON); or raise Refused."""
    if value is None:
        raise Refused(
            problem_body(
                400,
                "the message has no value (a tombstone); send a JSON object or an array of objects",
            )
        )
    if len(value) >= max_bytes:  # the API's own body limit: the same record costs the same
        raise Refused(
            problem_body(
                413,
                f"the value is over the {max_bytes // 1024} KiB "
                "limit; send fewer records per message",
            )
        )
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(
            problem_body(400, f"the value is not valid UTF-8 (byte {exc.start})")
        ) from None
    if not text.strip():
        raise Refused(
            problem_body(400, "the value is empty; send a JSON object or an array of objects")
        )
    try:
        return parse_json(value, text)
    except RecursionError:
        raise Refused(problem_body(400, "the JSON is nested too deeply")) from None
    except ValueError as exc:  # JSONDecodeError, bad constants, huge numbers
        raise Refused(problem_body(400, f"the value is not valid JSON: {exc}")) from None


def read_values(values: Sequence[bytes | None], max_bytes: int) -> list:
    """Each value as ``read_value`` reads it: its parsed JSON, or the Refused it raises.

    orjson reads them all in one pass at C speed; a value it refuses, and any over the size
    limit, goes through ``read_value`` itself, which says why (or reads it as json would); and
    should orjson's reading of the rest differ from parse_json's anywhere (a repeated key, a
    huge integer), every value does.
    """
    parsed: list = []
    failed: list[int] = []
    rest: Iterator[Any] = iter(values)  # a tombstone (None) too: orjson refuses it
    while True:
        try:
            parsed.extend(map(orjson.loads, rest))
            break
        except orjson.JSONDecodeError:  # the value at len(parsed): read_value says why
            failed.append(len(parsed))
            parsed.append(None)
    read: Sequence = values  # each one parsed: bytes
    kept = parsed
    if failed:
        refused = set(failed)
        read = [v for i, v in enumerate(values) if i not in refused]
        kept = [p for i, p in enumerate(parsed) if i not in refused]
    if read and (max(map(len, read)) >= max_bytes or not orjson_exact(read, kept)):
        failed = list(range(len(values)))  # rare: each value read alone
    for i in failed:
        try:
            parsed[i] = read_value(values[i], max_bytes)
        except Refused as exc:
            parsed[i] = exc
    return parsed


def items_in(body: Any, size: int, max_batch: int) -> list:
    """The records a parsed value holds, not yet validated; or raise Refused (empty, too many)."""
    try:
        return items_of(body, max_batch=max_batch)
    except TooManyRecords as exc:
        raise Refused(problem_body(413, str(exc))) from None
    except InvalidRecords as exc:
        raise Refused(_invalid(exc, size)) from None


def _invalid(exc: InvalidRecords, size: int) -> dict:
    detail, listed, extra = refusal_parts(exc, size)
    return problem_body(422, detail, listed, extra)


def reject_value(document: dict, topic: str, partition: int, offset: int) -> bytes:
    """The rejects topic's value for a message: its problem and where the message lies."""
    return orjson.dumps(
        {"topic": topic, "partition": partition, "offset": offset, "problem": document}
    )


class _Accepted:
    """The messages whose values parsed, as parallel lists in message order: each one's
    index among the values, its records (one after another in ``records``), where they start
    there, whether the value was a batch, and its size in bytes (for a 422's listing)."""

    __slots__ = ("batch", "counts", "index", "records", "sizes", "starts")

    def __init__(self) -> None:
        self.index: list[int] = []
        self.records: list = []
        self.starts: list[int] = []
        self.counts: list[int] = []
        self.batch: list[bool] = []
        self.sizes: list[int] = []

    def add(self, index: int, items: list, batch: bool, size: int) -> None:
        """One more message and its records."""
        self.index.append(index)
        self.starts.append(len(self.records))
        self.counts.append(len(items))
        self.batch.append(batch)
        self.sizes.append(size)
        self.records.extend(items)


def answer_values(
    model: Estimator,
    values: Sequence[bytes | None],
    request_ids: Sequence[str],
    *,
    max_batch: int,
    max_bytes: int,
) -> Answered:
    """One answer per value, in order: the API's answer bytes, or a reject's problem document;
    every valid record estimated in one call.

    Each output is the API's answer to the value sent with ``X-Request-ID`` set to its
    ``request_ids`` entry (``request_id_of``): ``inference_id`` R for one record,
    ``inference_ids`` R-0, R-1, ... for a batch.
    """
    answers: list = [None] * len(values)
    with paused_gc():  # parsing makes many containers and no cycles (core/strict_json.py)
        bodies = read_values(values, max_bytes)
    accepted, records = _validated(_accept(bodies, values, answers, max_batch), answers)
    if not records:
        return Answered(answers, None, [])
    estimates = estimate_valid(model, records, batch=True, locate=in_batch)
    mine = [request_ids[i] for i in accepted.index]
    for index, body in zip(accepted.index, _split(estimates, accepted, mine), strict=True):
        answers[index] = body
    if not any(accepted.batch):  # one record per message: its id is the request's
        return Answered(answers, estimates, mine)
    ids: list[str] = []
    for request_id, count, batch in zip(mine, accepted.counts, accepted.batch, strict=True):
        ids.extend(inference_ids(request_id, count, batch))
    return Answered(answers, estimates, ids)


def capture_lines(answered: Answered, percent: float, moment: datetime) -> tuple[bytes, int]:
    """The capture lines of ``answered``'s estimates (``percent`` of their ids, sampled as the
    service samples), made at ``moment``; and how many."""
    estimates = answered.estimates
    if estimates is None:
        return b"", 0
    ids = answered.ids
    positions = (
        list(range(len(ids)))
        if percent >= 100
        else [i for i, name in enumerate(ids) if is_sampled(name, percent)]
    )
    data = id_lines(
        [ids[i] for i in positions],
        moment,
        estimates.model_version,
        CAPTURE_PATH,
        estimates.records,
        estimates.amounts.tolist(),
        None if estimates.lower is None else estimates.lower.tolist(),
        None if estimates.upper is None else estimates.upper.tolist(),
        positions,
    )
    return data, len(positions)


def _accept(
    bodies: list, values: Sequence[bytes | None], answers: list, max_batch: int
) -> _Accepted:
    """The parsed values' records; a value refused (not JSON, empty, too many) answered."""
    accepted = _Accepted()
    if set(map(type, bodies)) == {dict}:  # the usual batch: one record per message
        n = len(bodies)
        accepted.index, accepted.starts = list(range(n)), list(range(n))
        accepted.records, accepted.counts = list(bodies), [1] * n
        accepted.batch = [False] * n
        accepted.sizes = list(map(len, values))  # type: ignore[arg-type]  # each parsed: bytes
        return accepted
    for i, body in enumerate(bodies):
        if isinstance(body, Refused):
            answers[i] = body.document
            continue
        size = len(values[i] or b"")
        try:
            accepted.add(i, items_in(body, size, max_batch), isinstance(body, list), size)
        except Refused as exc:
            answers[i] = exc.document
    return accepted


def _validated(accepted: _Accepted, answers: list) -> tuple[_Accepted, ValidRecords]:
    """The accepted messages whose records are all valid, and those records, validated at
    once; a message with an invalid value is answered with its problem."""
    records, errors = validate_records(accepted.records, in_batch)
    if not errors.total:
        return accepted, records  # type: ignore[return-value]  # None only with errors
    # Some value is invalid: each message is validated alone, for its own problems.
    kept, valid = _Accepted(), ValidRecords()
    for n, index in enumerate(accepted.index):
        start, batch = accepted.starts[n], accepted.batch[n]
        items = accepted.records[start : start + accepted.counts[n]]
        mine, found = validate_records(items, in_batch if batch else alone)
        if found.total:
            answers[index] = _invalid(
                InvalidRecords(found, total=found.total, complete=found.complete),
                accepted.sizes[n],
            )
            continue
        kept.add(index, items, batch, accepted.sizes[n])
        valid.extend(mine)  # type: ignore[arg-type]
    return kept, valid


def _split(estimates: Estimates, accepted: _Accepted, request_ids: list[str]) -> list[bytes]:
    """Each accepted message's answer, byte for byte the API's had it been estimated alone
    under its request id."""
    starts = accepted.starts
    warnings: dict[int, list[FieldError]] = {}  # by message; most have none
    for warning in estimates.warnings:  # "/<i>/<field>" in the whole batch
        _, index, rest = warning.pointer.split("/", 2)
        owner = bisect.bisect_right(starts, int(index)) - 1
        prefix = f"/{int(index) - starts[owner]}" if accepted.batch[owner] else ""
        warnings.setdefault(owner, []).append(
            FieldError(f"{prefix}/{rest}", warning.message, warning.field, warning.reason)
        )
    if not any(accepted.batch):  # one record per message: written from the arrays at once
        return each_alone_json(estimates, starts, warnings, request_ids)
    alone_at = [n for n, batch in enumerate(accepted.batch) if not batch]
    answers: list[bytes] = [b""] * len(starts)
    for n, body in zip(
        alone_at,
        each_alone_json(
            estimates,
            [starts[n] for n in alone_at],
            {k: warnings[n] for k, n in enumerate(alone_at) if n in warnings},
            [request_ids[n] for n in alone_at],
        ),
        strict=True,
    ):
        answers[n] = body
    for n, batch in enumerate(accepted.batch):
        if not batch:
            continue
        start, end = starts[n], starts[n] + accepted.counts[n]
        lower, upper = estimates.lower, estimates.upper
        answers[n] = answer_json(
            Estimates(
                batch=True,
                records=estimates.records[start:end],
                amounts=estimates.amounts[start:end],
                lower=None if lower is None else lower[start:end],
                upper=None if upper is None else upper[start:end],
                level=estimates.level,
                warnings=warnings.get(n, []),
                model_version=estimates.model_version,
            ),
            request_ids[n],
        )
    return answers
