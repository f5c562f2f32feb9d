"""JSON-lines bodies: one JSON object per line, each read as strictly as the API reads one."""
from __future__ import annotations

import numpy as np

from ...core.validation import ValidRecords, validate_records
from ...scoring.reading import lines_of
from .decoding import EMPTY, Decoded, Unreadable, invalid, locate, unreadable


def read_jsonlines(data: bytes) -> Decoded:
    """The records of a JSON-lines body: one JSON object per line, read as the API reads one."""
    from ...web.json_body import parse_json  # the API's strict parser (Flask is not used)

    items, found, problems = [], [], []
    for number, raw in enumerate(lines_of(data), 1):
        body = raw.strip()
        if not body:
            continue  # a blank line is no record
        try:
            text = body.decode("utf-8")
            items.append(parse_json(body, text))
        except UnicodeDecodeError as exc:
            problems.append((number, f"the line is not UTF-8 text (byte {exc.start + 1}); "
                                     "send the body as UTF-8"))
            continue
        except RecursionError:
            problems.append((number, "the line's JSON is nested too deeply"))
            continue
        except ValueError as exc:  # JSONDecodeError, NaN or Infinity, huge numbers
            problems.append((number, f"the line is not valid JSON: {exc}"))
            continue
        found.append(number)
    if problems:
        raise unreadable(problems)
    if not found and not data.strip():
        raise Unreadable(EMPTY)
    lines = np.array(found, dtype=np.int64)
    records, refused = validate_records(items, locate(lines))
    if refused.total:
        raise invalid(refused)
    return Decoded(records if records is not None else ValidRecords(), lines)
