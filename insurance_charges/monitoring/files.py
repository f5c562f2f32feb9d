"""prometheus_client's multiprocess directory: where it is, its start-up wipe, dead workers' files.

Each process writes its own ``<kind>_<pid>.db`` files (memory-mapped, one per kind of metric)
and its ``drift_<pid>.counts`` (tally.py).
A recycled worker (gunicorn's ``max_requests``) leaves its files behind; left there, they pile
up and every scrape reads them all (prometheus/client_python issues 275 and 568). Deleting them
would make counters go backwards, so the master folds each dead worker's counters and histograms
into one ``<kind>_archive.db`` per kind, then deletes its files: the file count stays at the
live processes' plus the archives, and every total keeps counting. Readers and the archiver
share one lock file, so a scrape never sees a dead worker twice or not at all.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import tally

ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads this name when it is imported
LOCK = "archive.lock"
WINDOW = "drift-window.json"  # the master's recent snapshots of the drift counts (state.py)
# The files prometheus_client writes: counter_123.db, gauge_livesum_123.db, histogram_archive.db
METRIC_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_(\d+|archive)\.db$")
# Kinds that add up across processes and so can be folded into an archive (gauges in "max"
# mode keep the largest value, which an archive keeps too); live gauges are deleted instead.
ARCHIVED = ("counter", "histogram", "summary", "gauge_max")


def default_directory(port: int) -> Path:
    """The directory under the temp dir for a service on ``port``: one per running service."""
    return Path(tempfile.gettempdir()) / f"insurance-charges-metrics-{port}"


def metric_files(directory: Path) -> list[Path]:
    """The metric files in ``directory``: prometheus_client's and the drift counts."""
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if METRIC_FILE.match(p.name) or tally.FILE.match(p.name)]


def owner(path: Path) -> str:
    """The pid (or "archive") a metric file belongs to."""
    match = METRIC_FILE.match(path.name) or tally.FILE.match(path.name)
    if match is None:  # callers pass what metric_files found; anything else is a bug
        raise ValueError(f"{path.name} is not a metric file")
    return match.groups()[-1]


def prepare(directory: Path, pid: int) -> None:
    """Before this process creates a metric: the directory exists and holds no file of ``pid``.

    A file named with this pid is stale, from an earlier process that had the same pid.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in metric_files(directory):
        if owner(path) == str(pid):
            path.unlink(missing_ok=True)


def wipe_others(directory: Path, pid: int) -> int:
    """At start, once the service holds its port: remove every metric file but ``pid``'s."""
    removed = 0
    with locked(directory, exclusive=True):
        for path in metric_files(directory):
            if owner(path) != str(pid):
                path.unlink(missing_ok=True)
                removed += 1
        (directory / WINDOW).unlink(missing_ok=True)
    return removed


@contextmanager
def locked(directory: Path, exclusive: bool = False) -> Iterator[None]:
    """Hold the directory's lock: shared to read the files, exclusive to archive."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            # Explicitly: a worker forked while the lock was held shares this descriptor.
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_merged(directory: Path, drift_size: int = 0) -> tuple[list, list[float]]:
    """Every metric of every process, live and archived, merged as a scrape sees them; and
    the drift counts (``drift_size`` of them) summed the same way, under the same lock."""
    from prometheus_client.multiprocess import MultiProcessCollector

    with locked(directory):
        merged = list(
            MultiProcessCollector.merge(
                [str(p) for p in metric_files(directory) if METRIC_FILE.match(p.name)],
                accumulate=True,
            )
        )
        return merged, tally.summed(directory, drift_size) if drift_size else []


def archive_dead(directory: Path, pid: int) -> int:
    """Fold a dead process's counters and histograms into the archives; delete its files.

    Its live gauges (requests in flight) are simply deleted, as prometheus_client's own
    ``mark_process_dead`` does. Returns how many files were removed.
    """
    removed = 0
    with locked(directory, exclusive=True):
        for path in metric_files(directory):
            kind = METRIC_FILE.match(path.name)
            if kind is None or kind.group(2) != str(pid):
                continue
            if kind.group(1) in ARCHIVED:
                _fold(directory / f"{kind.group(1)}_archive.db", path)
            path.unlink(missing_ok=True)
            removed += 1
        removed += tally.fold(directory, pid)
    return removed


def _fold(archive: Path, dead: Path) -> None:
    """Rewrite ``archive`` as itself plus ``dead``; replaced in one rename."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    sources = [str(p) for p in (archive, dead) if p.exists()]
    # accumulate=False keeps histogram buckets per bucket, as the files store them.
    merged = MultiProcessCollector.merge(sources, accumulate=False)
    partial = archive.with_name(archive.name + ".partial")  # not *.db: no reader picks it up
    partial.unlink(missing_ok=True)
    store = MmapedDict(str(partial))
    try:
        for metric in merged:
            for sample in metric.samples:
                labels = sample.labels
                store.write_value(
                    mmap_key(
                        metric.name,
                        sample.name,
                        list(labels),
                        list(labels.values()),
                        metric.documentation,
                    ),
                    sample.value,
                    0.0,
                )
    finally:
        store.close()
    os.replace(partial, archive)
