"""GET /api/v1/drift: what the service received, compared with the training data."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .errors import HttpProblem
from .observe import watch_of

bp = Blueprint("drift", __name__)


@bp.get("/api/v1/drift")
def drift():
    """Per field PSI and status since start and over the recent window; estimates; out of range."""
    watch = watch_of()
    document = watch.drift() if watch is not None else None
    if document is None:
        raise HttpProblem(
            404,
            "the served model's card holds no training distribution to compare "
            "with (a model trained before drift was watched); retrain it with "
            "`make train`"
            if watch is not None
            else "monitoring is off in this app",
        )
    return jsonify(document)
