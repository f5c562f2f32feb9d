"""``POST /worker/files``: an S3 event notification in, each new object scored, a summary out.

S3 sends ``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": B},
"object": {"key": K, "size": N}}}]}`` to the worker's queue; sqsd posts it here. Each object is
scored by the file scorer, run as its own process (``python -m insurance_charges.scoring``:
its signals, memory and pool stay out of this gunicorn worker) with the model this service
serves, into ``WORKER_SCORED_URI`` + the object's key, its rejects beside it. The scorer's own
summary becomes the message published for each object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import unquote_plus

from ..aws.uri import MAX_KEY_BYTES, check_bucket
from ..scoring.formats import RUN_ID
from .errors import HttpProblem

# S3 puts one record in each notification; a body of more is not S3's, but a few are taken.
MAX_RECORDS = 10
# The scorer's exit statuses (docs/scoring.md#summary-exit-status-logs).
SCORED, REJECTED_ROWS = 0, 1
# Lines of the scorer's stderr kept for a failure: its one Error: line is the last.
KEPT_LINES = 20


@dataclass(frozen=True)
class Arrival:
    """One object an S3 event says was created."""

    bucket: str
    key: str
    size: int

    @property
    def uri(self) -> str:
        """``s3://bucket/key`` of the object."""
        return f"s3://{self.bucket}/{self.key}"


def arrivals(body) -> tuple[list[Arrival], list[str]]:
    """The created objects an S3 event names, and what in it was skipped (why, for the log).

    Raises HttpProblem(422) for a body that is no S3 event notification at all.
    """
    if isinstance(body, dict) and body.get("Event") == "s3:TestEvent":
        return [], ["S3's test event (sent when a notification is configured)"]
    records = body.get("Records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records or len(records) > MAX_RECORDS:
        raise HttpProblem(
            422,
            "send an S3 event notification: an object whose Records holds "
            f"1 to {MAX_RECORDS} records (S3 sends these to the queue)",
        )
    found, skipped = [], []
    for number, record in enumerate(records):
        where = f"/Records/{number}"
        if not isinstance(record, dict):
            raise HttpProblem(422, f"{where} is not an object; send S3's event records")
        name = str(record.get("eventName", ""))[:80]
        if not name.startswith("ObjectCreated:"):
            skipped.append(f"{where}: {name or 'no eventName'} is not an object being created")
            continue
        found.append(_arrival(record, where))
    return found, skipped


def _arrival(record: dict, where: str) -> Arrival:
    s3 = record.get("s3")
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    obj = s3.get("object") if isinstance(s3, dict) else None
    name = bucket.get("name") if isinstance(bucket, dict) else None
    raw_key = obj.get("key") if isinstance(obj, dict) else None
    size = obj.get("size", 0) if isinstance(obj, dict) else None
    if not isinstance(name, str) or not _bucket_name(name):
        raise HttpProblem(422, f"{where}/s3/bucket/name is not an S3 bucket name")
    if not isinstance(raw_key, str) or not raw_key:
        raise HttpProblem(422, f"{where}/s3/object/key is missing")
    key = unquote_plus(raw_key)  # S3 URL-encodes keys in events, a space as +
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES or "\0" in key:
        raise HttpProblem(
            422, f"{where}/s3/object/key is not an S3 key (1 to {MAX_KEY_BYTES} bytes, no NUL)"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise HttpProblem(422, f"{where}/s3/object/size is not a whole number of bytes")
    return Arrival(name, key, size)


def _bucket_name(name: str) -> bool:
    """Whether S3 allows ``name`` for a bucket (the aws package's one rule)."""
    try:
        check_bucket(name)
    except ValueError:
        return False
    return True


def scored_uri(scored: str, arrival: Arrival) -> str:
    """Where the scored copy of ``arrival`` goes: the scored prefix + the object's own key."""
    return f"{scored.rstrip('/')}/{arrival.key}"


def summary(
    arrival: Arrival,
    output: str,
    max_bytes: int,
    model_env: dict[str, str | None],
    run_id: str,
) -> dict:
    """Score ``arrival`` into ``output`` with the scorer; the result message's fields.

    The scored rows' inference ids are ``run_id``-<line> (the result's id: sqsd's message id),
    so a redelivered message scores the object under the same ids; an id the scorer would
    refuse (not sqsd's) leaves the scorer to make one, said in the summary's ``run_id``.

    No timeout of its own: gunicorn's worker timeout, sized to the largest object accepted
    (docs/events.md), ends the request and with it the scorer (subprocess.run kills it).
    """
    base = {"input": arrival.uri, "bytes": arrival.size}
    if arrival.size > max_bytes:
        return {
            **base,
            "outcome": "refused",
            "error": (
                f"the object is {arrival.size:,} bytes, over the {max_bytes:,} this worker scores "
                "(WORKER_MAX_FILE_MB); split it, or score it with the scorer or SageMaker Batch "
                "Transform"
            ),
        }
    if output == arrival.uri:
        return {
            **base,
            "outcome": "refused",
            "error": "the scored copy would replace the "
            "object itself; set WORKER_SCORED_URI to another prefix",
        }
    environ = {
        name: value for name, value in {**os.environ, **model_env}.items() if value is not None
    }  # None: the variable is unset for the scorer
    command = [
        sys.executable,
        "-m",
        "insurance_charges.scoring",
        arrival.uri,
        "-o",
        output,
        "--jobs",
        "1",
        "--max-rejects",
        str(2**62),
        *(["--run-id", run_id] if RUN_ID.fullmatch(run_id) else []),
    ]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, check=False)
    lines = done.stderr.splitlines()[-KEPT_LINES:]
    if done.returncode in (SCORED, REJECTED_ROWS):
        scorer = _summary_event(lines)
        return {
            **base,
            "outcome": "scored",
            "output": output,
            "rejects": scorer.get("rejects"),
            "rows_read": scorer.get("rows_read"),
            "rows_scored": scorer.get("rows_scored"),
            "rows_rejected": scorer.get("rows_rejected"),
            # Where the rejects' messages stop (the scorer's --worded-rejects, 1,000 rows).
            "rejects_worded": scorer.get("rejects_worded"),
            "first_unworded_line": scorer.get("first_unworded_line"),
            "warnings": scorer.get("warnings"),
            "run_id": scorer.get("run_id"),
        }
    error = next(
        (line[len("Error: ") :] for line in reversed(lines) if line.startswith("Error: ")),
        f"the scorer exited {done.returncode}",
    )
    return {**base, "outcome": "failed", "error": error[:1000]}


def _summary_event(lines: list[str]) -> dict:
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "summary":
            return entry
    return {}
