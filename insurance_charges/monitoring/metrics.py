"""The service's Prometheus metrics: every name, type, label and bucket, defined once.

prometheus_client decides at import whether values live in this process's memory or in
memory-mapped files shared through PROMETHEUS_MULTIPROC_DIR (one per process, summed at
scrape), so this module is imported only once that variable is settled (``recorder.py``).
HTTP metrics use OpenTelemetry's semantic-convention names, written the Prometheus way.
Gauges that workers change are "livesum" (a dead worker's share disappears with it); gauges
set once in the master before it forks are "max" (a worker's copy holds zeros).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ..core.schema import CATEGORY, FIELDS

NUMBERS = tuple(f.name for f in FIELDS if f.kind != CATEGORY)  # the fields with a training range

# OpenTelemetry's advised boundaries for http.server.request.duration (0.005 s to 10 s), with
# 1 ms and 2.5 ms added: a one-record answer takes 4.5 ms at the median here (bench/README.md),
# so without them half of all requests would share the first bucket.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
# Records per estimating request: one record, small batches, up to the 10,000 limit.
RECORDS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# Yearly charges in dollars: the training charges run from $1,122 to $63,770, with the median
# at $9,382; the steps are finer where most estimates fall.
DOLLAR_BUCKETS = (
    2500,
    5000,
    7500,
    10000,
    12500,
    15000,
    20000,
    25000,
    30000,
    40000,
    50000,
    60000,
    75000,
)

REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=DURATION_BUCKETS,
)
ACTIVE_REQUESTS = Gauge(
    "http_server_active_requests",
    "Number of active HTTP server requests.",
    ["http_request_method"],
    multiprocess_mode="livesum",
)
ESTIMATES = Counter(
    "insurance_charges_estimates",
    "Records estimated (a 10-record batch adds 10).",
    ["model_version"],
)
OUT_OF_RANGE = Counter(
    "insurance_charges_input_out_of_range",
    "Values served with an outside-the-training-range warning.",
    ["field"],
)
REQUEST_RECORDS = Histogram(
    "insurance_charges_request_records",
    "Records per estimating request (batch size).",
    ["http_route"],
    buckets=RECORDS_BUCKETS,
)
ESTIMATE_DOLLARS = Histogram(
    "insurance_charges_estimate_dollars",
    "Estimated yearly charges, in US dollars.",
    ["model_version"],
    buckets=DOLLAR_BUCKETS,
)
PROBLEMS = Counter(
    "insurance_charges_problems",
    "4xx answers, by problem type (/docs#problem-<type>).",
    ["problem_type", "http_response_status_code"],
)
CAPTURE_RECORDS = Counter(
    "insurance_charges_capture_records",
    "Captured records (CAPTURE_URI) by outcome: shipped in a file, or dropped (the backlog of "
    "unshipped files was full, or the destination failed at shutdown).",
    ["outcome"],
)
CAPTURE_FAILURES = Counter(
    "insurance_charges_capture_ship_failures",
    "Attempts to ship a capture file that failed; the file is retried the next minute.",
)
# The values served per training bin (insurance_charges_drift_values_total) are counted in
# tally.py, not here: seven per record would cost more than every other metric together.

MODEL_INFO = Gauge(
    "insurance_charges_model_info",
    "The served model: 1, labelled with its version.",
    ["model_version", "estimator"],
    multiprocess_mode="max",
)
MODEL_LOAD_SECONDS = Gauge(
    "insurance_charges_model_load_seconds",
    "Time to read, verify, unpickle and check the model at start-up.",
    multiprocess_mode="max",
)
START_TIME = Gauge(
    "insurance_charges_start_time_seconds",
    "When the service loaded its model (Unix time).",
    multiprocess_mode="max",
)
STARTUP_CHECK = Gauge(
    "insurance_charges_startup_check",
    "Start-up checks: 1 passed, 0 not (fastpath_parity 0: served through pipeline.predict).",
    ["check"],
    multiprocess_mode="max",
)

ALL = (
    REQUEST_DURATION,
    ACTIVE_REQUESTS,
    ESTIMATES,
    OUT_OF_RANGE,
    REQUEST_RECORDS,
    ESTIMATE_DOLLARS,
    PROBLEMS,
    CAPTURE_RECORDS,
    CAPTURE_FAILURES,
    MODEL_INFO,
    MODEL_LOAD_SECONDS,
    START_TIME,
    STARTUP_CHECK,
)


def observe_many(histogram, counts, total: float) -> None:
    """Add ``counts[i]`` observations to bucket i and ``total`` to the sum, in one call each.

    A 10,000-record batch would otherwise cost 10,000 observe() calls (about 15 ms). This uses
    the histogram child's bucket and sum values, which prometheus_client 0.26 (pinned) keeps in
    ``_buckets`` and ``_sum``; tests/test_metrics.py proves it equal to observing one by one.
    """
    # Not strict: a NaN lands past the +Inf bucket in np.searchsorted's counts, and is left out of
    # every bucket, as observe() leaves it.
    for bucket, count in zip(histogram._buckets, counts, strict=False):
        if count:
            bucket.inc(float(count))
    histogram._sum.inc(float(total))
