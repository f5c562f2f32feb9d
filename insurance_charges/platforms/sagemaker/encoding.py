"""Media types /invocations reads and writes, and estimates written as a client asked.

JSON is the API's own answer (``Estimates.to_json``). CSV is one estimate per line and JSON
lines one object per line, each exactly what ``POST /api/v1/predict`` answers for that record
alone, in input order: Batch Transform's ``AssembleWith=Line`` then gives one output line per
input record.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import orjson

from ...core.estimates import Estimates

JSON, CSV, JSONLINES = "application/json", "text/csv", "application/jsonlines"
BODY_TYPES = (JSON, CSV, JSONLINES)
ANSWER_TYPES = (JSON, CSV, JSONLINES)  # the first is the answer when Accept allows any
UTF8 = ("utf-8", "utf8")


def negotiate(accepted: Iterable[tuple[str, float]]) -> str | None:
    """The answer type for Accept's (media range, quality) pairs, best first; None if none fits.

    Parameters other than a UTF-8 charset rule a range out (``text/csv; charset=utf-8`` fits,
    as a client sending a charset expects).
    """
    for value, quality in accepted:
        kind, _, params = value.partition(";")
        kind = kind.strip().lower()
        charset = [
            p.split("=", 1)[1].strip().strip('"').lower()
            for p in params.split(";")
            if p.strip().lower().startswith("charset=")
        ]
        if quality <= 0 or any(c not in UTF8 for c in charset):
            continue
        for offer in ANSWER_TYPES:
            major = offer.split("/")[0]
            if kind in (offer, "*/*", f"{major}/*"):
                return offer
    return None


def record_of(estimates: Estimates, lines: np.ndarray | None):
    """A function from a warning's pointer to (the record's index, the pointer within it)."""
    if not estimates.batch:
        return lambda pointer: (0, pointer)

    def split(pointer: str) -> tuple[int, str]:
        _, head, rest = pointer.split("/", 2)
        index = int(head) if lines is None else int(np.searchsorted(lines, int(head)))
        return index, "/" + rest

    return split


def as_csv(estimates: Estimates) -> bytes:
    """One estimate per line, as JSON writes the number (shortest exact form)."""
    amounts = estimates.amounts.tolist()
    return ("\n".join(map(repr, amounts)) + "\n").encode("ascii") if amounts else b""


def as_jsonlines(
    estimates: Estimates, lines: np.ndarray | None = None, request_id: str | None = None
) -> bytes:
    """One object per line: the API's answer for that record alone; with ``request_id``, its
    inference id last (``R-<position>`` in a batch, core/captures.inference_ids)."""
    locate = record_of(estimates, lines)
    warnings: dict[int, list] = {}
    for warning in estimates.warnings:
        index, pointer = locate(warning.pointer)
        warnings.setdefault(index, []).append({"pointer": pointer, "message": warning.message})
    # Written from a template (a 6 MB body's 150,000 objects: 0.2 s, against 1.2 s through
    # a dict each); numbers as repr writes them, the shortest exact form, as orjson does.
    version = orjson.dumps(estimates.model_version).decode().replace("%", "%%")
    head = '{"prediction":%r,"model_version":' + version
    # The id's text as orjson writes it, written once; a batch's positions go in with %d.
    ids = (
        ""
        if request_id is None
        else ',"inference_id":'
        + (
            orjson.dumps(request_id).decode()[:-1].replace("%", "%%") + '-%d"'
            if estimates.batch
            else orjson.dumps(request_id).decode().replace("%", "%%")
        )
    )
    positions = ids.count("%d")  # 1: each row's position fills the id
    amounts = estimates.amounts.tolist()
    lower, upper = estimates.lower, estimates.upper
    if lower is None or upper is None:
        template = head + ',"warnings":%s' + ids + "}\n"
        rows = [
            template % ((a, _json(warnings.get(i, [])), i)[: 2 + positions])
            for i, a in enumerate(amounts)
        ]
    else:
        template = head + (
            ',"warnings":%s,"interval":{"lower":%r,"upper":%r,"level":'
            + repr(estimates.level)
            + "}"
            + ids
            + "}\n"
        )
        bounds = zip(amounts, lower.tolist(), upper.tolist(), strict=True)
        rows = [
            template % ((a, _json(warnings.get(i, [])), low, high, i)[: 4 + positions])
            for i, (a, low, high) in enumerate(bounds)
        ]
    return "".join(rows).encode("utf-8")


def _json(value) -> str:
    return orjson.dumps(value).decode() if value else "[]"
