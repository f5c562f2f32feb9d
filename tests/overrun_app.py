"""The service with one more route, which runs past gunicorn's worker timeout (test_faults.py)."""

import time

from flask import Response

from insurance_charges.web import create_app

OVERRUN_PATHS = ("/api/v1/overrun", "/overrun")  # under the API (problem+json) and not (HTML)


def overrun() -> Response:
    """Work longer than any worker timeout: the timeout's SIGABRT interrupts the sleep."""
    time.sleep(3600)
    return Response("finished", mimetype="text/plain")


application = create_app()  # the deployed app, as application.py builds it
for path in OVERRUN_PATHS:
    application.add_url_rule(path, f"overrun{path.replace('/', '_')}", overrun, methods=["POST"])
