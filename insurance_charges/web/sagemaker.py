"""SageMaker's endpoints: ``GET /ping``, ``POST /invocations``, ``GET /execution-parameters``.

Adapters only. ``application/json`` is ``/api/v1/predict``'s own code path (its limits, its
answers); CSV and JSON-lines bodies are read by ``platforms.sagemaker``, estimated by
the core a chunk at a time and written as the ``Accept`` header asks. Every refusal is
problem+json: 406 for an ``Accept`` no answer fits, 415 for a body type it does not read,
400 for lines that are not records, 422 for invalid values, 413 over the payload limit.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..core.estimates import InvalidRecords
from ..platforms.sagemaker import encoding, execution_parameters
from ..platforms.sagemaker.body_estimates import estimate_lines
from ..platforms.sagemaker.csv_body import read_csv
from ..platforms.sagemaker.decoding import Unreadable
from ..platforms.sagemaker.jsonlines_body import read_jsonlines
from ..settings import MB
from . import api, served_model
from .capturing import capture_estimates
from .errors import HttpProblem, listed_within, totals
from .json_body import check_encoding, read_json
from .observe import record_estimates

bp = Blueprint("sagemaker", __name__)
READERS = {encoding.CSV: read_csv, encoding.JSONLINES: read_jsonlines}


@bp.get("/ping")
def ping():
    """SageMaker's health probe (2 s timeout): the model is loaded once the app exists."""
    return api.health()


@bp.get("/execution-parameters")
def batch_parameters():
    """The Batch Transform settings that fit this container (BatchStrategy and the rest)."""
    return jsonify(
        execution_parameters(current_app.config["WORKERS"], current_app.config["MAX_PAYLOAD_MB"])
    )


def _answer_type() -> str:
    if not request.headers.get("Accept", "").strip():
        return encoding.JSON
    chosen = encoding.negotiate(request.accept_mimetypes)
    if chosen is None:
        raise HttpProblem(
            406,
            "answers come as " + ", ".join(encoding.ANSWER_TYPES) + "; got "
            f"Accept: {request.headers['Accept'][:100]}",
        )
    return chosen


def _body_type() -> str:
    kind = request.mimetype
    if kind == encoding.JSON or kind.endswith("+json"):
        return encoding.JSON
    if kind not in READERS:
        raise HttpProblem(
            415,
            "send the body as " + ", ".join(encoding.BODY_TYPES) + "; got "
            f"{kind[:100] or 'no content type'}",
        )
    check_encoding()
    return kind


def _lines_body() -> bytes:
    limit = current_app.config["MAX_PAYLOAD_MB"] * MB
    # One byte more than allowed is read: a chunked body is cut there rather than refused.
    request.max_content_length = limit + 1
    too_large = HttpProblem(
        413,
        f"the body is over the {limit // MB} MB limit "
        "(SAGEMAKER_MAX_PAYLOAD_IN_MB); send fewer records per request",
    )
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:  # a Content-Length over the limit
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    return raw


@bp.post("/invocations")
def invocations():
    """Estimates for a JSON, CSV or JSON-lines body, answered in the Accept type."""
    answer, kind = _answer_type(), _body_type()
    lines = None
    if kind == encoding.JSON:  # exactly /api/v1/predict's contract
        estimates = api.estimate_body(*read_json())
    else:
        raw = _lines_body()
        try:
            decoded = READERS[kind](raw)
        except Unreadable as exc:
            found = exc.errors
            listed = listed_within(found, max(len(raw), api.ERROR_BYTES_FLOOR))
            raise HttpProblem(
                400,
                exc.detail,
                listed,
                extra=None
                if len(listed) == found.total and found.complete
                else totals(found.total, found.complete),
            ) from None
        except InvalidRecords as exc:
            raise api.refusal(exc, len(raw)) from None
        estimates, lines = estimate_lines(served_model(), decoded), decoded.lines
        record_estimates(estimates)
        capture_estimates(estimates)
    if answer == encoding.JSON:
        return api.answer_estimates(estimates)
    body = (
        encoding.as_csv(estimates)
        if answer == encoding.CSV
        else encoding.as_jsonlines(estimates, lines, g.request_id)
    )
    return current_app.response_class(body, mimetype=answer)
