"""The JSON API: strict, one record or a batch, machine-readable errors."""
from __future__ import annotations

import json
import math

from flask import Blueprint, current_app, jsonify, request

from .errors import Problem
from .schema import training_range_warnings, validate_record

bp = Blueprint("api", __name__)
JSON_TYPES = ("application/json",)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def read_json():
    """Parse the request body as strict JSON (no NaN, no Infinity, UTF-8) or raise a Problem."""
    if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
        raise Problem(415, "send the body as JSON with Content-Type: application/json; "
                           f"got {request.mimetype or 'no content type'}")
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH raises 413 first
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"the body is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise Problem(400, "the body is empty; send a JSON object or an array of objects")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise Problem(400, "the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad constants, huge numbers
        raise Problem(400, f"the body is not valid JSON: {exc}") from None


def model():
    """The model loaded at start-up."""
    return current_app.extensions["insurance_model"]


def predict_records(records: list, batch: bool) -> tuple[list, list]:
    """Validate and predict; return rounded predictions and training-range warnings."""
    pointers = [f"/{i}" if batch else "" for i in range(len(records))]
    checked, errors = [], []
    for item, pointer in zip(records, pointers):
        record, problems = validate_record(item, pointer)
        checked.append(record)
        errors.extend(problems)
    if errors:
        raise Problem(422, f"{len(errors)} invalid value(s); see errors", errors)
    ranges = model().training_ranges
    warnings = [w.as_dict() for record, pointer in zip(checked, pointers)
                for w in training_range_warnings(record, ranges, pointer)]
    return [round(p, 2) for p in model().predict(checked)], warnings


@bp.post("/api/v1/predict")
def predict():
    """Predict one record (object) or a batch (array of 1 to MAX_BATCH records)."""
    body = read_json()
    if isinstance(body, list):
        limit = current_app.config["MAX_BATCH"]
        if len(body) > limit:
            raise Problem(413, f"a batch holds at most {limit} records; got {len(body)}")
        if not body:
            raise Problem(422, f"a batch holds 1 to {limit} records; got none",
                          [{"pointer": "", "message": "the array is empty"}])
        predictions, warnings = predict_records(body, batch=True)
        return jsonify(predictions=predictions, model_version=model().version,
                       warnings=warnings)
    predictions, warnings = predict_records([body], batch=False)
    return jsonify(prediction=predictions[0], model_version=model().version,
                   warnings=warnings)


@bp.post("/predict_api")
def predict_api():
    """The tutorials' contract: one record in, the bare predicted number out."""
    body = read_json()
    if isinstance(body, list):
        raise Problem(422, "send one record as a JSON object; batches go to /api/v1/predict",
                      [{"pointer": "", "message": "expected an object, got an array"}])
    predictions, _ = predict_records([body], batch=False)
    return jsonify(predictions[0])


@bp.get("/api/v1/model")
def model_card():
    """The model card of the model being served."""
    return jsonify(model().card)


@bp.get("/health")
def health():
    """Cheap liveness and readiness: the model is loaded once the app exists."""
    return jsonify(status="ok", model_version=model().version)
