"""The EB worker environment's routes: sqsd POSTs each SQS message; results are published.

Registered only when ``WORKER_RESULTS`` names a destination (docs/events.md): the web tier has
no such routes. sqsd deletes a message when it gets 200 and retries it otherwise (after
``MaxRetries``, to the dead-letter queue), so 200 means "published": input that can never
succeed is published as its problem document and acknowledged; a failure to publish is a 503
and the message comes back.
"""
from __future__ import annotations

import logging
import re

import orjson
from flask import Blueprint, Flask, current_app, jsonify, request

from ..aws_messages import MAX_MESSAGE_BYTES, Destination, PublishError, messaging_client, publish
from ..core.json_bytes import answer_json
from . import served_model
from .api import estimate_body
from .errors import HttpProblem, problem_document
from .json_body import read_json

log = logging.getLogger(__name__)
bp = Blueprint("worker", __name__)
_CLIENT = "insurance_charges.worker_client"
MESSAGE_ID = "X-Aws-Sqsd-Msgid"
# An SQS message id is a UUID (36 characters); anything else did not come from sqsd.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,128}")
# Refusals a retry cannot change (the message's own body is wrong): published and acknowledged.
PERMANENT = frozenset({400, 413, 415, 422})


def init_app(app: Flask, destination: Destination) -> None:
    """Serve the worker routes, publishing to ``destination`` with one client per process."""
    app.extensions[_CLIENT] = (destination, messaging_client(destination))
    app.register_blueprint(bp)


@bp.post("/worker/estimates")
def estimates():
    """Estimate one SQS message's body (what /api/v1/predict takes) and publish the result."""
    message_id = _message_id()
    try:
        outcome = {"status": 200, "estimates": orjson.Fragment(answer_json(
            estimate_body(*read_json())))}
    except HttpProblem as problem:
        if problem.status not in PERMANENT:
            raise
        outcome = {"status": problem.status, "problem": problem_document(problem)}
    result = _result(message_id, outcome)
    if len(result) > MAX_MESSAGE_BYTES:
        result = _result(message_id, {"status": 413, "problem": problem_document(HttpProblem(
            413, f"the answer is {len(result):,} bytes, over the {MAX_MESSAGE_BYTES:,}-byte "
                 "limit of a result message; send fewer records per message"))})
    _publish(result, message_id)
    return jsonify(published=message_id, status=outcome["status"])


def _message_id() -> str:
    given = request.headers.get(MESSAGE_ID, "")
    if not _MESSAGE_ID.fullmatch(given):
        raise HttpProblem(400, f"send the SQS message id in {MESSAGE_ID} (sqsd sets it); results "
                               "are published under it")
    return given


def _result(message_id: str, outcome: dict) -> bytes:
    return orjson.dumps({"message_id": message_id, "model_version": served_model().version,
                         **outcome})


def _publish(result: bytes, message_id: str) -> None:
    destination, client = current_app.extensions[_CLIENT]
    try:
        publish(destination, result, message_id, client)
    except PublishError as exc:
        log.error("message %s: result not published (%s); answered 503 so sqsd retries it",
                  message_id, exc)
        raise HttpProblem(503, "the result could not be published; the message will be retried",
                          headers={"Retry-After": "2"}) from None
