"""In-process timings of each stage of a prediction, old way against new way.

Usage: ``python -m bench.micro``. Best of 5 repeats per figure; CPU-bound, single thread, so
far less sensitive to a busy machine than the HTTP benchmark. Prints a Markdown table.
"""

from __future__ import annotations

import json
import sys
import timeit
from datetime import UTC, datetime

import orjson
import pandas as pd

from devtools.records import valid_records
from insurance_charges.capture.lines import batch_lines
from insurance_charges.core import interval
from insurance_charges.core.captures import capture_line
from insurance_charges.core.estimates import estimate
from insurance_charges.core.json_bytes import answer_json
from insurance_charges.core.schema import FIELD_NAMES
from insurance_charges.core.strict_json import _finite_float, _reject_constant, parse_json
from insurance_charges.core.validation import (
    alone,
    in_batch,
    range_warnings,
    validate_each,
    validate_records,
)
from insurance_charges.paths import DEFAULT_MODEL_PATH
from insurance_charges.serving.fastpath.predictor import ROWS_BELOW, inputs
from insurance_charges.serving.model import load_model


def best_ms(func, number: int) -> float:
    """Best of 5 repeats, in milliseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1000


def lines_one_by_one(answer, moment: datetime) -> bytes:
    """A batch's capture lines through ``capture_line``, one record at a time."""
    amounts, lows, highs = answer.amounts.tolist(), answer.lower.tolist(), answer.upper.tolist()
    return b"".join(
        capture_line(
            {
                "inference_id": f"R-{i}",
                "time": moment,
                "model_version": answer.model_version,
                "path": "/api/v1/predict",
                **record,
                "estimate": amounts[i],
                "low": lows[i],
                "high": highs[i],
            }
        )
        for i, record in enumerate(answer.records)
    )


def rows(model, records: list, number: int) -> list[tuple[str, float | None, float]]:
    """(stage, old ms or None, new ms) for one set of records."""
    body = records[0] if len(records) == 1 else records
    raw = json.dumps(body).encode()
    text = raw.decode()
    locate = alone if len(records) == 1 else in_batch
    predicted = model.predict(records)
    answer = estimate(model, body)
    moment = datetime.now(UTC)

    def frame_predict():
        return model.pipeline.predict(pd.DataFrame.from_records(records, columns=list(FIELD_NAMES)))

    return [
        (
            "parse JSON (json.loads → orjson with json's answers)",
            best_ms(
                lambda: json.loads(
                    text, parse_constant=_reject_constant, parse_float=_finite_float
                ),
                number,
            ),
            best_ms(lambda: parse_json(raw, text), number),
        ),
        (
            "validate (record by record → column at a time)",
            best_ms(lambda: validate_each(records, locate), number),
            best_ms(lambda: validate_records(records, locate), number),
        ),
        (
            "training-range warnings",
            None,
            best_ms(lambda: range_warnings(records, model.training_ranges, locate), number),
        ),
        *(
            [
                (
                    "encode a few records (numpy columns → record by record)",
                    best_ms(lambda: model.fast.encode(inputs(records)), number),
                    best_ms(lambda: model.fast.encode_rows(records), number),
                )
            ]
            if len(records) < ROWS_BELOW
            else []
        ),
        (
            "predict (pipeline.predict → compiled path)",
            best_ms(frame_predict, max(1, number // 20)),
            best_ms(lambda: model.predict(records), number),
        ),
        (
            "likely ranges (numpy, whole batch)",
            None,
            best_ms(lambda: interval.bounds(model.likely_range, records, predicted), number),
        ),
        (
            "answer as JSON bytes (orjson of to_json → from the arrays)",
            best_ms(lambda: orjson.dumps(answer.to_json()), number),
            best_ms(lambda: answer_json(answer), number),
        ),
        (
            "capture lines (capture_line a record at a time → columns side by side)",
            best_ms(lambda: lines_one_by_one(answer, moment), number),
            best_ms(
                lambda: batch_lines(
                    "R",
                    moment,
                    answer.model_version,
                    "/api/v1/predict",
                    answer.records,
                    answer.amounts,
                    answer.lower,
                    answer.upper,
                ),
                number,
            ),
        ),
        (
            "the whole core: estimate(model, body)",
            None,
            best_ms(lambda: estimate(model, body), number),
        ),
    ]


def main() -> int:
    """Print the table for one record and for a 10,000-record batch."""
    model = load_model(DEFAULT_MODEL_PATH)
    if model.fast is None:
        print("the fast path is off for this model; nothing to compare", file=sys.stderr)
        return 1
    in_range = valid_records(10_000, seed=42, ranges=model.training_ranges)
    print("| Stage | Records | Before (ms) | Now (ms) | × faster |")
    print("|---|---|---|---|---|")
    for records, number in (
        ([in_range[200]], 400),
        (in_range[: ROWS_BELOW - 1], 400),
        (in_range, 3),
    ):
        for stage, old, new in rows(model, records, number):
            before, ratio = (f"{old:.3f}", f"{old / new:.1f}") if old else ("", "")
            print(f"| {stage} | {len(records):,} | {before} | {new:.3f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
