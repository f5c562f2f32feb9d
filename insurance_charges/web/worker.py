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
from flask import Blueprint, Flask, current_app, g, jsonify, request

from ..aws.messages import MAX_MESSAGE_BYTES, Destination, PublishError, messaging_client, publish
from ..core.json_bytes import answer_json
from ..registry.uri import parse_model_uri
from . import served_model, worker_files
from .api import estimate_body
from .errors import HttpProblem, problem_document
from .json_body import read_json
from .logs import REQUEST_ID_HEADER

log = logging.getLogger(__name__)
bp = Blueprint("worker", __name__)
files_bp = Blueprint("worker_files", __name__)
_CLIENT = "insurance_charges.worker_client"
MESSAGE_ID = "X-Aws-Sqsd-Msgid"
# An SQS message id is a UUID (36 characters); anything else did not come from sqsd.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,128}")
# Refusals a retry cannot change (the message's own body is wrong): published and acknowledged.
PERMANENT = frozenset({400, 413, 415, 422})
# When sqsd tries a message again after any answer but 200: after the environment's sqsd
# ErrorVisibilityTimeout, which the worker bundle sets to this many seconds
# (deploy/eb-worker/.ebextensions/01-worker.config: 60 s x MaxRetries 5 ride out five minutes
# of a destination's outage; tests/test_eb_worker.py holds the two equal). sqsd reads only the
# status (EB developer guide, "The worker environment SQS daemon"); the 503's Retry-After says
# this for whoever reads the answer, so it must not promise an earlier retry than sqsd makes.
RETRY_AFTER_S = 60
MB = 1024 * 1024


def init_app(app: Flask, destination: Destination) -> None:
    """Serve the worker routes, publishing to ``destination`` with one client per process.

    ``/worker/files`` only when ``WORKER_SCORED_URI`` says where scored files go.
    """
    app.extensions[_CLIENT] = (destination, messaging_client(destination))
    app.register_blueprint(bp)
    if app.config["WORKER_SCORED_URI"] is not None:
        app.register_blueprint(files_bp)


@bp.post("/worker/estimates")
def estimates():
    """Estimate one SQS message's body (what /api/v1/predict takes) and publish the result."""
    message_id = _message_id()
    try:
        outcome = {
            "status": 200,
            "estimates": orjson.Fragment(answer_json(estimate_body(*read_json()), g.request_id)),
        }
    except HttpProblem as problem:
        if problem.status not in PERMANENT:
            raise
        outcome = {"status": problem.status, "problem": problem_document(problem)}
    result = _result(message_id, outcome)
    if len(result) > MAX_MESSAGE_BYTES:
        result = _result(
            message_id,
            {
                "status": 413,
                "problem": problem_document(
                    HttpProblem(
                        413,
                        f"the answer is {len(result):,} bytes, over the {MAX_MESSAGE_BYTES:,}-byte "
                        "limit of a result message; send fewer records per message",
                    )
                ),
            },
        )
    _publish(result, message_id)
    return jsonify(published=message_id, status=outcome["status"])


@files_bp.post("/worker/files")
def files():
    """Score each object an S3 event names into WORKER_SCORED_URI; publish one summary each."""
    message_id = _message_id()
    try:
        found, skipped = worker_files.arrivals(read_json()[0])
    except HttpProblem as problem:
        if problem.status not in PERMANENT:
            raise
        _publish(
            _result(message_id, {"status": problem.status, "problem": problem_document(problem)}),
            message_id,
        )
        return jsonify(published=[message_id], status=problem.status)
    for note in skipped:  # nothing to score: said in the log, and acknowledged
        log.info("message %s: skipped %s", message_id, note)
    config, model_env = current_app.config, _scorer_model()
    published = []
    for index, arrival in enumerate(found):
        output = worker_files.scored_uri(config["WORKER_SCORED_URI"], arrival)
        # One result per object; a redelivered message repeats each under the same id, and
        # scores the object under the same inference ids (the result's id is the run id).
        result_id = message_id if len(found) == 1 else f"{message_id}-{index}"
        fields = worker_files.summary(
            arrival, output, config["WORKER_MAX_FILE_MB"] * MB, model_env, result_id
        )
        _publish(_result(message_id, {"status": 200, "file": fields}), result_id)
        published.append(result_id)
    return jsonify(published=published, status=200)


def _scorer_model() -> dict[str, str | None]:
    """The scorer's MODEL_PATH or MODEL_URI for the very model this process serves."""
    uri = current_app.config.get("MODEL_URI")
    if uri:  # the version served, not "champion": that name may move on meanwhile
        location, _ = parse_model_uri(uri)
        return {"MODEL_URI": location.model_uri(served_model().version), "MODEL_PATH": None}
    return {"MODEL_PATH": str(served_model().path), "MODEL_URI": None}


def _message_id() -> str:
    given = request.headers.get(MESSAGE_ID, "")
    if not _MESSAGE_ID.fullmatch(given):
        raise HttpProblem(
            400,
            f"send the SQS message id in {MESSAGE_ID} (sqsd sets it); results "
            "are published under it",
        )
    if REQUEST_ID_HEADER not in request.headers:  # sqsd sends none
        # The inference ids derive from the message id, so a redelivered message publishes the
        # same result (and is captured under the same ids), never new ones.
        g.request_id = given
    return given


def _result(message_id: str, outcome: dict) -> bytes:
    return orjson.dumps(
        {"message_id": message_id, "model_version": served_model().version, **outcome}
    )


def _publish(result: bytes, message_id: str) -> None:
    destination, client = current_app.extensions[_CLIENT]
    try:
        publish(destination, result, message_id, client)
    except PublishError as exc:
        log.error(
            "message %s: result not published (%s); answered 503 so sqsd retries it",
            message_id,
            exc,
        )
        raise HttpProblem(
            503,
            "the result could not be published; the message will be retried",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
