"""What a refused /invocations body costs against a valid body of the same size and type.

Usage: ``.venv/bin/python -m bench.refusals [--url URL] [--repeat 5] [--out results.json]``.

Without ``--url`` it starts the service under gunicorn as `make run` does (2 workers, on
loopback) and stops it after; with ``--url`` it measures a service already running there, such
as the image (``docker run -p 8080:8080 IMAGE serve``). ``bench.invocations`` runs the same
measure against the image in `make bench`.

Bodies of the payload limit (6 MB): the valid CSV mini-batch of ``bench.invocations`` and the
same records as JSON lines, and the bodies issue 20 found costing 17-27 s against 0.64 s: empty
CSV rows (``,,,,,``), CSV lines of one value (``0``), JSON lines ``{}`` and ``0``. Each refused
body is sent right after the valid body of its type, ``--repeat`` times; the ratio refused /
valid is taken per pair, then the median, since pairs measured seconds apart move together on
a shared machine (bench/README.md, "Noise"). Every refused body must get a 4xx problem+json and
every valid one a 200 with one line per record, or the run stops with one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from insurance_charges.core.schema import FIELD_NAMES, FIELDS, INTEGER, NUMBER
from insurance_charges.settings import MB

CSV, JSONLINES = "text/csv", "application/jsonlines"
# (name, content type, the line repeated to fill the payload), each refused whole.
REFUSED = (
    ("empty CSV rows ,,,,,", CSV, b",,,,,\n"),
    ("CSV lines 0", CSV, b"0\n"),
    ("JSON lines {}", JSONLINES, b"{}\n"),
    ("JSON lines 0", JSONLINES, b"0\n"),
)
TARGET_RATIO = 2  # issue 20: a refused body answered in at most twice a valid one's time


class BenchError(Exception):
    """The run cannot go on; the message is the one line to print."""


def as_jsonlines(csv_body: bytes, limit: int) -> bytes:
    """The CSV rows as JSON lines, as many whole lines as fit in ``limit`` bytes."""
    kinds = [f.kind for f in FIELDS]
    lines, size = [], 0
    for row in csv_body.decode().splitlines():
        values = [
            int(v) if kind == INTEGER else float(v) if kind == NUMBER else v
            for v, kind in zip(row.split(","), kinds, strict=True)
        ]
        line = json.dumps(dict(zip(FIELD_NAMES, values, strict=True)), separators=(",", ":")) + "\n"
        if size + len(line) > limit:
            break
        lines.append(line)
        size += len(line)
    return "".join(lines).encode()


def post(url: str, body: bytes, content_type: str) -> tuple[int, str, bytes, float]:
    """POST ``body`` to /invocations: status, content type, answer and seconds end to end."""
    request = urllib.request.Request(
        url + "/invocations", data=body, headers={"Content-Type": content_type, "Accept": CSV}
    )
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = response.read()
            status, kind = response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        with err:  # closed even when reading its body fails
            answer, status, kind = err.read(), err.code, err.headers.get("Content-Type", "")
    return status, kind, answer, time.perf_counter() - began


def _valid(url: str, body: bytes, content_type: str) -> float:
    status, _, answer, seconds = post(url, body, content_type)
    answered, records = answer.count(b"\n"), body.count(b"\n")
    if status != 200 or answered != records:
        raise BenchError(
            f"a valid {content_type} body got {status} with {answered} lines for {records} records"
        )
    return seconds


def _refused(url: str, name: str, body: bytes, content_type: str) -> tuple[int, float]:
    status, kind, answer, seconds = post(url, body, content_type)
    if not 400 <= status < 500 or kind != "application/problem+json":
        raise BenchError(f"{name} got {status} {kind}, not a 4xx problem: {answer[:200]!r}")
    return status, seconds


def measure(url: str, csv_body: bytes, repeat: int) -> dict:
    """Each refused body after the valid body of its type, ``repeat`` times: seconds, ratios."""
    valid = {CSV: csv_body, JSONLINES: as_jsonlines(csv_body, len(csv_body))}
    for kind, body in valid.items():  # warm-up: first requests fault in the workers' pages
        _valid(url, body, kind)
    refused = []
    for name, kind, line in REFUSED:
        body = line * (len(csv_body) // len(line))
        pairs = []
        for _ in range(repeat):
            took = _valid(url, valid[kind], kind)
            status, seconds = _refused(url, name, body, kind)
            pairs.append((took, seconds))
        refused.append(
            {
                "body": name,
                "content_type": kind,
                "bytes": len(body),
                "status": status,
                "valid_bytes": len(valid[kind]),
                "valid_records": valid[kind].count(b"\n"),
                "seconds_median": round(statistics.median(s for _, s in pairs), 3),
                "valid_seconds_median": round(statistics.median(t for t, _ in pairs), 3),
                "ratio_median": round(statistics.median(s / t for t, s in pairs), 2),
            }
        )
    worst = max(r["ratio_median"] for r in refused)
    return {
        "repeat": repeat,
        "refused": refused,
        "worst_ratio": worst,
        "target_ratio": TARGET_RATIO,
        "met": worst <= TARGET_RATIO,
    }


def lines(result: dict) -> list[str]:
    """The figures, one line per refused body."""
    return [
        f"{r['body']:22} {r['status']} in {r['seconds_median']:.3f} s; valid "
        f"{r['content_type']} ({r['valid_records']:,} records) {r['valid_seconds_median']:.3f}"
        f" s; ratio {r['ratio_median']:.2f}"
        for r in result["refused"]
    ] + [f"worst ratio {result['worst_ratio']:.2f} (target at most {result['target_ratio']})"]


def main() -> int:
    from . import invocations  # its 6 MB mini-batch (it imports this module: not at the top)
    from .servers import BenchError as ServiceError
    from .servers import Service

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start one as `make run`)")
    parser.add_argument("--repeat", type=int, default=5, help="pairs per refused body")
    parser.add_argument("--payload-mb", type=int, default=6, help="body size, in MB")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    service = None
    try:
        body = invocations.mini_batch(args.payload_mb * MB)
        if args.url:
            url = args.url.rstrip("/")
        else:
            service = Service(SAGEMAKER_MAX_PAYLOAD_IN_MB=str(args.payload_mb))
            service.wait_healthy()
            url = service.url("")
        result = measure(url, body, args.repeat)
    except (BenchError, invocations.BenchError, ServiceError, OSError) as exc:
        print(f"bench.refusals failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if service is not None:
            service.kill()
    print("\n".join(lines(result)))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
