"""What the service records: each request, and each answer's records, estimates and warnings.

No Flask here: the web layer hands over plain values (a route template, a status) and the
core's ``Estimates``. ``activate`` settles where values live before prometheus_client is first
imported: in this process's memory, or, under gunicorn, in PROMETHEUS_MULTIPROC_DIR, where
every worker's values are summed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ..core.schema import BY_NAME, CATEGORY
from ..core.validation import COLUMNS_FROM
from ..errors import UserError
from . import files
from .drift import ESTIMATE, Reference
from .tally import Layout, Tally

# Methods outside this set are counted as "_OTHER" (OpenTelemetry's rule), so a client cannot
# grow the number of series by inventing methods.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)


class MonitoringError(UserError, RuntimeError):
    """Metrics cannot be kept as configured; the message says what to change (a RuntimeError
    too: gunicorn shows one raised at start-up as one ``Error:`` line)."""


def activate(directory: Path | None) -> None:
    """Keep metric values in ``directory`` (shared by processes), or in memory when None."""
    if directory is not None:
        os.environ[files.ENV] = str(directory)
        files.prepare(directory, os.getpid())
    if "prometheus_client" in sys.modules:
        from prometheus_client import values

        shared = getattr(values.ValueClass, "_multiprocess", False)
        if shared != (directory is not None):
            raise MonitoringError(
                f"prometheus_client was imported before {files.ENV} was settled "
                f"({'set' if shared else 'unset'} then, {'set' if directory else 'unset'} now); "
                f"set {files.ENV} before the process starts, or leave it to gunicorn.conf.py"
            )


def method_label(method: str) -> str:
    """The request method as a label: a known method, or "_OTHER"."""
    return method if method in METHODS else "_OTHER"


class Recorder:
    """Records into the metrics; one per app, its label values resolved once."""

    def __init__(self, reference: Reference | None, model_version: str, tally: Tally | None = None):
        from . import metrics

        self.m, self.reference, self.tally = metrics, reference, tally
        self.version = model_version
        self._estimates = metrics.ESTIMATES.labels(model_version)
        self._dollars = metrics.ESTIMATE_DOLLARS.labels(model_version)
        self._dollar_bounds = np.array(self._dollars._upper_bounds)
        # Children by label values, found once: labels() costs 2.6 us a call, more than the
        # increment itself (measured here); every label set is bounded (methods, routes,
        # statuses, fields), so these stay small.
        self._children: dict = {}
        self._bins = []  # (field, its Bins, where its counts start in the tally)
        self._outside = {}  # field -> where its out-of-range values are counted in the tally
        if reference is not None:
            layout = Layout(reference)
            self._bins = [
                (name, bins, layout.slices[name].start)
                for name, bins in reference.all_bins().items()
            ]
            self._outside = layout.outside
        for field in metrics.NUMBERS:  # every field a value can leave the range of, from 0
            self._child(metrics.OUT_OF_RANGE, field)

    def started(self, model, load_seconds: float) -> None:
        """In the master, once: the model served, its load time, the start-up checks."""
        m = self.m
        card = getattr(model, "card", None) or {}  # a test's stand-in may have no card
        m.MODEL_INFO.labels(self.version, card.get("estimator", type(model).__name__)).set(1)
        m.MODEL_LOAD_SECONDS.set(load_seconds)
        m.START_TIME.set(time.time())
        m.STARTUP_CHECK.labels("self_check").set(1)  # a model failing it never gets served
        fast = getattr(model, "fast", None)
        m.STARTUP_CHECK.labels("fastpath_parity").set(1 if fast is not None else 0)

    def _child(self, metric, *labels):
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def active(self, method: str):
        """The requests-in-flight gauge of ``method`` (inc on arrival, dec on answer)."""
        return self._child(self.m.ACTIVE_REQUESTS, method)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request."""
        self._child(self.m.REQUEST_DURATION, method, route, str(status)).observe(seconds)

    def problem(self, problem_type: str, status: int) -> None:
        """One 4xx answer."""
        self._child(self.m.PROBLEMS, problem_type, str(status)).inc()

    def capture_shipped(self, records: int) -> None:
        """Captured records shipped in a file (capture/writer.py counts through these)."""
        self._child(self.m.CAPTURE_RECORDS, "shipped").inc(records)

    def capture_dropped(self, records: int) -> None:
        """Captured records dropped: never shipped, and never silently."""
        self._child(self.m.CAPTURE_RECORDS, "dropped").inc(records)

    def capture_failed(self) -> None:
        """One failed attempt to ship a capture file."""
        self.m.CAPTURE_FAILURES.inc()

    def estimates(self, estimates, route: str) -> None:
        """One answer's records: counts, batch size, estimates, bins and warnings."""
        count = len(estimates.records)
        self._estimates.inc(count)
        self._child(self.m.REQUEST_RECORDS, route).observe(count)
        amounts = estimates.amounts
        if count < COLUMNS_FROM:  # a few records: plain Python beats numpy's per-call cost
            for amount in amounts.tolist():
                self._dollars.observe(amount)
        else:
            where = np.searchsorted(self._dollar_bounds, amounts, side="left")
            self.m.observe_many(
                self._dollars,
                np.bincount(where, minlength=len(self._dollar_bounds)),
                float(amounts.sum()),
            )
        if self._bins:
            self._tally(estimates.records, amounts, count)
        outside: dict[str, int] = {}
        for warning in estimates.warnings:
            if warning.reason == "extrapolated":
                outside[warning.field] = outside.get(warning.field, 0) + 1
        for name, n in outside.items():
            self._child(self.m.OUT_OF_RANGE, name).inc(n)
            if name in self._outside:
                tally = self._counting()
                with tally.lock:
                    tally.view[self._outside[name]] += n

    def _counting(self) -> Tally:
        """The tally drift is counted in: given whenever a reference is (watch_model does)."""
        if self.tally is None:
            raise MonitoringError("a Recorder given a reference needs a tally to count drift in")
        return self.tally

    def _tally(self, records, amounts, count: int) -> None:
        """Each value's training bin, counted in this process's tally."""
        tally = self._counting()
        view = tally.view
        with tally.lock:
            if count < COLUMNS_FROM:
                for name, bins, start in self._bins:
                    values = amounts.tolist() if name == ESTIMATE else [r[name] for r in records]
                    for value in values:
                        view[start + bins.index(value)] += 1
                return
            for name, bins, start in self._bins:
                if name == ESTIMATE:
                    counts = bins.count(amounts)
                elif bins.kind == CATEGORY:  # counted by code: no string comparisons
                    counts = bins.count_codes(records.codes(name), BY_NAME[name].choices)
                else:
                    counts = bins.count(records.column(name))
                for i, n in enumerate(counts.tolist()):
                    view[start + i] += n
