"""The JSON API: strict, one record or a batch, machine-readable errors."""
from __future__ import annotations

import json
import math

import orjson
from flask import Blueprint, Response, current_app, jsonify, request

from ..core.estimates import Estimates, InvalidRecords, TooManyRecords, estimate
from . import served_model
from .errors import Problem

bp = Blueprint("api", __name__)
JSON_TYPES = ("application/json",)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


# orjson parses a full batch about three times faster than json. It turns integers beyond
# 64 bits into floats and refuses a few inputs json accepts (lone surrogates, deep nesting),
# so a body with a 19-digit run, or one orjson refuses, goes to json: every body gets
# json's exact answer.
# (Digits are mapped to "0" and searched as a run: a regular expression costs 10 ms a batch.)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


def parse_json(raw: bytes, text: str):
    """Parse a UTF-8 body strictly, as json.loads with NaN, Infinity and overflow refused."""
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json gives the answer (and the message) below
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def read_json():
    """Parse the request body as strict JSON (no NaN, no Infinity, UTF-8) or raise a Problem."""
    if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
        raise Problem(415, "send the body as JSON with Content-Type: application/json; "
                           f"got {request.mimetype or 'no content type'}")
    raw = request.get_data(cache=False)  # a Content-Length over the limit raises 413 here
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and len(raw) >= limit:
        # A chunked body is cut off at the limit instead of refused: refuse it here.
        raise Problem(413, f"the body is over the {limit // 1024} KiB limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"the body is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise Problem(400, "the body is empty; send a JSON object or an array of objects")
    try:
        return parse_json(raw, text)
    except RecursionError:
        raise Problem(400, "the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad constants, huge numbers
        raise Problem(400, f"the body is not valid JSON: {exc}") from None


def answer(body) -> Response:
    """A JSON response serialized with orjson (a full batch's answer: json ~23 ms, orjson ~1 ms)."""
    return current_app.response_class(orjson.dumps(body) + b"\n", mimetype="application/json")


def estimate_body(body) -> Estimates:
    """The core's estimates for a parsed body, its refusals turned into problem+json."""
    try:
        return estimate(served_model(), body, max_batch=current_app.config["MAX_BATCH"])
    except TooManyRecords as exc:
        raise Problem(413, str(exc)) from None
    except InvalidRecords as exc:
        raise Problem(422, exc.detail, exc.errors) from None


@bp.post("/api/v1/predict")
def predict():
    """Predict one record (object) or a batch (array of 1 to MAX_BATCH records)."""
    return answer(estimate_body(read_json()).to_json())


@bp.post("/predict_api")
def predict_api():
    """The tutorials' contract: one record in, the bare predicted number out."""
    body = read_json()
    if isinstance(body, list):
        raise Problem(422, "send one record as a JSON object; batches go to /api/v1/predict",
                      [{"pointer": "", "message": "expected an object, got an array"}])
    return answer(float(estimate_body(body).amounts[0]))


@bp.get("/api/v1/model")
def model_card():
    """The model card of the model being served."""
    return jsonify(served_model().card)


@bp.get("/health")
def health():
    """Cheap liveness and readiness: the model is loaded and checked once the app exists."""
    return jsonify(status="ok", model_version=served_model().version)
