"""The HTTP floor for `make bench`: the deployed app plus one route that returns a constant.

Everything around the route is the service's own stack (gunicorn.conf.py, request ids, JSON
access log, security headers), so predict / floor is the share of capacity the prediction
endpoint keeps: reading and validating JSON, predicting and answering.
"""

from flask import Response

from bench import FLOOR_PATH
from insurance_charges.web import create_app

_CONSTANT = b'{"prediction":19270.25}'


def floor() -> Response:
    """Answer a constant without reading the body."""
    return Response(_CONSTANT, mimetype="application/json")


application = create_app()  # the deployed app, as application.py builds it
application.add_url_rule(FLOOR_PATH, "bench_floor", floor, methods=["POST"])
