"""Messages in, messages out: what the Kafka consumer hands the core and publishes of its answers.

No Kafka client here. ``answer_batch`` takes the messages of one ``consume()`` call, reads
each value as the JSON API reads a body (strict JSON, one record or a batch), validates every
record and estimates all the valid ones through the core in **one** call, then splits the
answers back: each message gets an output (the API's exact answer bytes, for the request id
``<prefix>:<partition>:<offset>``, so its inference ids are the same however often the message
is delivered) or a reject (its problem+json document with the topic, partition and offset it
came from). Keys and headers travel unchanged, so a reply can be matched to its request.
``capture_lines`` makes the capture lines of the estimates under the same ids.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
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
from ..core.json_bytes import answer_json
from ..core.problems import problem_body, refusal_parts
from ..core.schema import FieldError
from ..core.strict_json import parse_json, paused_gc
from ..core.validation import ValidRecords, alone, in_batch, validate_records

OUTPUT, REJECT = "output", "reject"
CAPTURE_PATH = "/kafka"  # the capture record's path for an estimate the consumer made


class Incoming(NamedTuple):  # a tuple: thousands are made per batch, at a third of the cost
    """One consumed message: its value, key and headers as the broker gave them, and where
    it was read from."""

    value: bytes | None
    key: bytes | None
    headers: list | None  # (name, bytes) pairs, or None when the message has none
    topic: str
    partition: int
    offset: int


class Outgoing(NamedTuple):
    """What to publish for one incoming message: ``kind`` says to the output or rejects topic."""

    kind: str
    value: bytes
    key: bytes | None
    headers: list | None


class Answered(NamedTuple):
    """What ``answer_batch`` gives: one output or reject per message, in order; and for the
    capture, the valid records' estimates (None when there were none) and their ids."""

    outgoing: list[Outgoing]
    estimates: Estimates | None
    ids: list[str]


def request_id_of(id_prefix: str, message: Incoming) -> str:
    """A message's request id, ``<prefix>:<partition>:<offset>``: where the message lies, so a
    message delivered again gets the same id (and its estimates the same inference ids)."""
    return f"{id_prefix}:{message.partition}:{message.offset}"


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


def reject(message: Incoming, document: dict) -> Outgoing:
    """The rejects topic's message for ``message``: the problem and where the message lies."""
    value = orjson.dumps(
        {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "problem": document,
        }
    )
    return Outgoing(REJECT, value, message.key, message.headers)


class _Accepted:
    """A message whose value parsed: its records and where they start in the batch."""

    __slots__ = ("batch", "index", "items", "size", "start")

    def __init__(self, index: int, items: list, batch: bool, size: int):
        self.index, self.items, self.batch, self.size, self.start = index, items, batch, size, 0


def answer_batch(
    model: Estimator,
    messages: Sequence[Incoming],
    *,
    max_batch: int,
    max_bytes: int,
    id_prefix: str,
) -> Answered:
    """One output or reject per message, in order; the valid records estimated in one call.

    Each output is the API's answer to the message's value sent with ``X-Request-ID`` set to
    the message's request id (``request_id_of``): ``inference_id`` R for one record,
    ``inference_ids`` R-0, R-1, ... for a batch.
    """
    answers: list[Outgoing | None] = [None] * len(messages)
    accepted: list[_Accepted] = []
    with paused_gc():  # parsing makes many containers and no cycles (core/strict_json.py)
        for i, message in enumerate(messages):
            try:
                body = read_value(message.value, max_bytes)
                size = len(message.value or b"")
                accepted.append(
                    _Accepted(i, items_in(body, size, max_batch), isinstance(body, list), size)
                )
            except Refused as exc:
                answers[i] = reject(message, exc.document)
    records = _validated(accepted, messages, answers)
    estimates, ids = None, []
    if records:
        estimates = estimate_valid(model, records, batch=True, locate=in_batch)
        request_ids = [request_id_of(id_prefix, messages[one.index]) for one in accepted]
        for one, body in zip(accepted, _split(estimates, accepted, request_ids), strict=True):
            message = messages[one.index]
            answers[one.index] = Outgoing(OUTPUT, body, message.key, message.headers)
        for one, request_id in zip(accepted, request_ids, strict=True):
            ids.extend(inference_ids(request_id, len(one.items), one.batch))
    return Answered(answers, estimates, ids)  # type: ignore[arg-type]  # every slot is filled


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


def _validated(
    accepted: list[_Accepted], messages: Sequence[Incoming], answers: list
) -> ValidRecords:
    """All accepted messages' records, validated at once; messages with an invalid value are
    moved from ``accepted`` to ``answers`` as rejects."""
    everything = [item for one in accepted for item in one.items]
    records, errors = validate_records(everything, in_batch)
    if not errors.total:
        start = 0
        for one in accepted:
            one.start, start = start, start + len(one.items)
        return records  # type: ignore[return-value]  # None only with errors
    # Some value is invalid: each message is validated alone, for its own problems.
    kept, valid, start = [], ValidRecords(), 0
    for one in accepted:
        mine, found = validate_records(one.items, in_batch if one.batch else alone)
        if found.total:
            answers[one.index] = reject(
                messages[one.index],
                _invalid(
                    InvalidRecords(found, total=found.total, complete=found.complete), one.size
                ),
            )
            continue
        one.start, start = start, start + len(one.items)
        valid.extend(mine)  # type: ignore[arg-type]
        kept.append(one)
    accepted[:] = kept
    return valid


def _split(estimates: Estimates, accepted: list[_Accepted], request_ids: list[str]) -> list[bytes]:
    """Each accepted message's answer, byte for byte the API's had it been estimated alone
    under its request id."""
    starts = [one.start for one in accepted]
    warnings: dict[int, list[FieldError]] = {}  # by message; most have none
    for warning in estimates.warnings:  # "/<i>/<field>" in the whole batch
        _, index, rest = warning.pointer.split("/", 2)
        owner = bisect.bisect_right(starts, int(index)) - 1
        one = accepted[owner]
        prefix = f"/{int(index) - one.start}" if one.batch else ""
        warnings.setdefault(owner, []).append(
            FieldError(f"{prefix}/{rest}", warning.message, warning.field, warning.reason)
        )
    # One record per message is the common case: its answer is Estimates.to_json's object,
    # built here from lists made once (an Estimates per message cost 8 us of the 20 us a
    # message may take at 50,000 a second).
    amounts, version, level = estimates.amounts.tolist(), estimates.model_version, estimates.level
    lower = None if estimates.lower is None else estimates.lower.tolist()
    upper = None if estimates.upper is None else estimates.upper.tolist()
    answers = []
    for n, one in enumerate(accepted):
        mine = warnings.get(n, [])
        start, end = one.start, one.start + len(one.items)
        if one.batch:
            answers.append(
                answer_json(
                    Estimates(
                        batch=True,
                        records=estimates.records[start:end],
                        amounts=estimates.amounts[start:end],
                        lower=None if lower is None else estimates.lower[start:end],  # type: ignore[index]
                        upper=None if upper is None else estimates.upper[start:end],  # type: ignore[index]
                        level=level,
                        warnings=mine,
                        model_version=version,
                    ),
                    request_ids[n],
                )
            )
            continue
        body = {
            "prediction": amounts[start],
            "model_version": version,
            "warnings": [w.as_dict() for w in mine],
        }
        if lower is not None:
            body["interval"] = {
                "lower": lower[start],
                "upper": upper[start],  # type: ignore[index]
                "level": level,
            }
        body["inference_id"] = request_ids[n]  # last, as in the API's answer
        answers.append(orjson.dumps(body))
    return answers
