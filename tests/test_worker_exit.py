"""Recycled workers end at once (gunicorn.conf.py's worker_exit) without losing a log line."""

import json
import re
import time

import pytest

from devtools.gunicorn_server import GunicornServer
from insurance_charges.core.schema import EXAMPLE_RECORD

pytestmark = pytest.mark.slow


def test_recycled_workers_answer_everything_log_everything_and_stop_cleanly():
    server = GunicornServer(
        via_make=True, workers=1, GUNICORN_CMD_ARGS="--max-requests 40 --max-requests-jitter 0"
    )
    try:
        server.wait_healthy()
        statuses = [server.request("/api/v1/predict", EXAMPLE_RECORD)[0] for _ in range(100)]
        assert statuses == [200] * 100
        time.sleep(0.5)
        text = "".join(server.lines)
        assert text.count("Autorestarting worker") >= 2
        # Every request's access line reached stdout, including each worker's last one.
        access = [
            json.loads(line)
            for line in server.lines
            if line.startswith('{"time"') and '"type": "access"' in line
        ]
        assert len([a for a in access if a["path"] == "/api/v1/predict"]) == 100
        assert server.stop() == 0
        assert len(re.findall(r"Booting worker with pid", "".join(server.lines))) >= 3
    finally:
        server.kill()
