"""In-process timings of each stage of a prediction, old way against new way.

Usage: ``python -m bench.micro``. Best of 5 repeats per figure; CPU-bound, single thread, so
far less sensitive to a busy machine than the HTTP benchmark. Prints a Markdown table.
"""
from __future__ import annotations

import json
import sys
import timeit

import pandas as pd

from insurance_charges.api import _finite_float, _reject_constant, parse_json
from insurance_charges.batch import range_warnings, validate_records
from insurance_charges.model import load_model
from insurance_charges.parity import valid_records
from insurance_charges.schema import FIELD_NAMES, training_range_warnings, validate_record


def best_ms(func, number: int) -> float:
    """Best of 5 repeats, in milliseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1000


def rows(model, records: list, number: int) -> list[tuple[str, float, float]]:
    """(stage, old ms, new ms) for one set of records."""
    raw = json.dumps(records[0] if len(records) == 1 else records).encode()
    text = raw.decode()
    batch = len(records) > 1
    ranges = model.training_ranges

    def old_validate():
        return [validate_record(r, f"/{i}" if batch else "") for i, r in enumerate(records)]

    def old_warnings():
        return [w for i, r in enumerate(records)
                for w in training_range_warnings(r, ranges, f"/{i}" if batch else "")]

    frame_predict = (lambda: model.pipeline.predict(
        pd.DataFrame.from_records(records, columns=list(FIELD_NAMES))))
    return [
        ("parse JSON (json.loads → orjson with json's answers)",
         best_ms(lambda: json.loads(text, parse_constant=_reject_constant,
                                    parse_float=_finite_float), number),
         best_ms(lambda: parse_json(raw, text), number)),
        ("validate (record by record → column at a time)", best_ms(old_validate, number),
         best_ms(lambda: validate_records(records, batch), number)),
        ("training-range warnings", best_ms(old_warnings, number),
         best_ms(lambda: range_warnings(records, ranges, batch), number)),
        ("predict (pipeline.predict → compiled path)",
         best_ms(frame_predict, max(1, number // 20)),
         best_ms(lambda: model.predict(records), number)),
    ]


def main() -> int:
    """Print the table for one record and for a 10,000-record batch."""
    model = load_model()
    if model.fast is None:
        print("the fast path is off for this model; nothing to compare", file=sys.stderr)
        return 1
    in_range = valid_records(10_000, seed=42, ranges=model.training_ranges)
    print("| Stage | Records | Before (ms) | After (ms) | × faster |")
    print("|---|---|---|---|---|")
    for records, number in (([in_range[200]], 400), (in_range, 3)):
        for stage, old, new in rows(model, records, number):
            print(f"| {stage} | {len(records):,} | {old:.3f} | {new:.3f} | {old / new:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
