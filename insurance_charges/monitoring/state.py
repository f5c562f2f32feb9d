"""The drift state of the whole service: counts summed over workers, since start and recently.

Workers count each served value in the bin it falls in (``tally.py``); this reads those counts
summed over every process (``files.read_merged``), or from this process's memory when there are
no shared files. The gunicorn master takes a snapshot every minute (``Window``,
written to the shared directory for the workers), so "recent" is the counts now minus the
snapshot from an hour ago.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import drift, files
from .tally import Layout

START_SAMPLE = "insurance_charges_start_time_seconds"
# "Recent" means the last hour: long enough to hold MIN_RECORDS at a few requests a minute,
# short enough that a change of population shows the same day.
WINDOW_SECONDS = 3600
SNAPSHOT_SECONDS = 60  # the window's resolution; one snapshot is ~1 KB, 61 are kept
SOURCE = (
    "Lewis, An Introduction to Credit Scoring (1994); Siddiqi, Intelligent Credit "
    "Scoring (2017); the rule of thumb as R's scorecard::perf_psi documents it"
)


@dataclass(frozen=True)
class Counts:
    """Counts per bin of every compared field, and values out of the training range."""

    time: float
    bins: dict  # field -> counts per bin, in the reference's order
    out_of_range: dict = field(default_factory=dict)  # field -> values
    start: float | None = None  # when the service started, if known

    def minus(self, earlier: Counts) -> Counts:
        """What was counted between ``earlier`` and these counts."""
        bins = {
            name: [a - b for a, b in zip(now, earlier.bins.get(name, [0] * len(now)), strict=True)]
            for name, now in self.bins.items()
        }
        outside = {
            name: n - earlier.out_of_range.get(name, 0) for name, n in self.out_of_range.items()
        }
        return Counts(self.time, bins, outside, earlier.time)

    def to_json(self) -> dict:
        """For the window file."""
        return {"time": self.time, "bins": self.bins, "out_of_range": self.out_of_range}


def counts_from(values: list[float], layout: Layout, metrics, now: float | None = None) -> Counts:
    """Counts from the summed tally; the start time from the collected metrics."""
    start = None
    for metric in metrics:
        for sample in metric.samples:
            if sample.name == START_SAMPLE and sample.value:
                start = sample.value
    return Counts(
        time.time() if now is None else now,
        layout.split(values),
        layout.out_of_range(values),
        start,
    )


def read_counts(watch) -> Counts:
    """The counts now: summed over every process's files, or this process's own."""
    if watch.directory is not None:
        merged, values = files.read_merged(watch.directory, watch.layout.size)
        return counts_from(values, watch.layout, merged)
    from . import metrics

    return counts_from(watch.tally.values(), watch.layout, metrics.START_TIME.collect())


class Window:
    """Snapshots of the counts, one a minute, for the last hour and a little more."""

    def __init__(self, snapshots: list[Counts] | None = None):
        self.snapshots = list(snapshots or [])

    def add(self, counts: Counts) -> None:
        """Keep ``counts``; forget snapshots older than the window needs."""
        self.snapshots.append(counts)
        horizon = counts.time - WINDOW_SECONDS - SNAPSHOT_SECONDS
        self.snapshots = [s for s in self.snapshots if s.time >= horizon]

    def baseline(self, now: float) -> Counts | None:
        """The newest snapshot at least a window old; else the oldest (a younger service)."""
        old = [s for s in self.snapshots if s.time <= now - WINDOW_SECONDS]
        return old[-1] if old else (self.snapshots[0] if self.snapshots else None)

    def write(self, directory: Path) -> None:
        """Replace the window file in one rename, for the workers to read."""
        target = directory / files.WINDOW
        partial = target.with_name(target.name + ".partial")
        partial.write_text(json.dumps([s.to_json() for s in self.snapshots]))
        os.replace(partial, target)

    @classmethod
    def read(cls, directory: Path | None) -> Window:
        """The master's latest snapshots (none without a shared directory, or before the first)."""
        try:
            items = json.loads((directory / files.WINDOW).read_text()) if directory else []
        except (OSError, ValueError):
            items = []
        return cls([Counts(i["time"], i["bins"], i.get("out_of_range", {})) for i in items])


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def section(reference: drift.Reference, counts: Counts, since: float) -> dict:
    """One period's comparison: records, overall status, each field, estimates, out of range."""
    records = int(sum(counts.bins[drift.ESTIMATE]))
    fields = {
        name: drift.assess(bins, counts.bins[name]) for name, bins in reference.fields.items()
    }
    estimate = drift.assess(reference.estimate, counts.bins[drift.ESTIMATE])
    outside = {}
    for name, bins in reference.fields.items():
        if bins.kind == "numeric":  # categories have no range to leave
            n = counts.out_of_range.get(name, 0)
            outside[name] = {"values": int(n), "share": round(n / records, 4) if records else None}
    return {
        "since": _iso(since),
        "seconds": round(max(counts.time - since, 0.0), 1),
        "records": records,
        "status": drift.worst([f["status"] for f in fields.values()] + [estimate["status"]]),
        "fields": fields,
        "estimate": estimate,
        "out_of_range": {"values": int(sum(counts.out_of_range.values())), "fields": outside},
    }


def report(reference: drift.Reference, now: Counts, window: Window, model_version: str) -> dict:
    """The drift document: thresholds, since start and over the recent window."""
    start = now.start or now.time
    base = window.baseline(now.time)
    return {
        "model_version": model_version,
        "reference": {
            "rows": reference.rows,
            "source": "the model card's distribution "
            "(training data and the model's estimates on it)",
        },
        "thresholds": {
            "watch": drift.WATCH,
            "drift": drift.DRIFT,
            "min_records": drift.MIN_RECORDS,
            "source": SOURCE,
        },
        "since_start": section(reference, now, start),
        # Recent counts start where the baseline snapshot was taken (Counts.minus's start).
        "recent": (
            section(reference, now.minus(base), base.time)
            if base is not None
            else section(reference, now, start)
        ),
        "window_seconds": WINDOW_SECONDS,
    }
