"""Drift counts: how many values fell in each training bin, one float64 per bin, per process.

Seven bins are counted for every record (six inputs and the estimate). As prometheus_client
counters that was seven locked file writes, about 15 us of a one-record request's ~1 ms;
here they are seven memory additions in one memory-mapped file per process
(``drift_<pid>.counts``), summed by readers like prometheus_client's own files and folded into
``drift_archive.counts`` when a worker dies (files.py). The master exposes the sums as the
counter ``insurance_charges_drift_values_total``.
"""

from __future__ import annotations

import array
import mmap
import os
import re
import threading
from pathlib import Path
from typing import cast

from .drift import Reference

FILE = re.compile(r"^drift_(\d+|archive)\.counts$")
WIDTH = 8  # bytes per count (float64, as prometheus_client stores its values)


class Layout:
    """Where each count sits in the vector: every field's bins in the reference's order, then
    each number's values served outside its training range."""

    def __init__(self, reference: Reference):
        self.slices, start = {}, 0
        for name, bins in reference.all_bins().items():
            self.slices[name] = slice(start, start + len(bins.labels))
            start += len(bins.labels)
        self.outside = {}
        for name, bins in reference.fields.items():
            if bins.kind == "numeric":
                self.outside[name] = start
                start += 1
        self.size = start

    def split(self, values) -> dict:
        """The vector as {field: counts per bin}."""
        return {name: list(values[where]) for name, where in self.slices.items()}

    def out_of_range(self, values) -> dict:
        """The vector's counts of values outside the training range, by field."""
        return {name: values[i] for name, i in self.outside.items()}


class Tally:
    """This process's counts: in a shared directory's file, or in memory without one."""

    def __init__(self, size: int, directory: Path | None):
        self.size, self.directory = size, directory
        self.lock = threading.Lock()  # a threaded server's requests add at the same time
        self._open()
        if directory is not None:  # a forked worker counts in a file of its own, from zero
            os.register_at_fork(after_in_child=self._open)

    def _open(self) -> None:
        if self.directory is None:
            self.view = memoryview(bytearray(WIDTH * self.size)).cast("d")
            return
        fd = os.open(
            self.directory / f"drift_{os.getpid()}.counts",
            os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
            0o600,
        )
        try:
            os.ftruncate(fd, WIDTH * self.size)
            self._map = mmap.mmap(fd, WIDTH * self.size)
        finally:
            os.close(fd)
        self.view = memoryview(self._map).cast("d")

    def values(self) -> list[float]:
        """This process's counts."""
        return _floats(self.view)


def _floats(view: memoryview[float]) -> list[float]:
    # typeshed types memoryview.tolist() as list[int] whatever the format; a "d" view's are floats
    return cast(list[float], view.tolist())


def read(path: Path, size: int) -> list[float] | None:
    """The counts in one file (None if it is not ``size`` counts long: not this layout's)."""
    data = path.read_bytes()
    if len(data) != WIDTH * size:
        return None
    return _floats(memoryview(data).cast("d"))


def summed(directory: Path, size: int) -> list[float]:
    """Every process's counts, live and archived, added up (the caller holds the lock)."""
    total = [0.0] * size
    for path in directory.iterdir():
        if FILE.match(path.name):
            try:
                counts = read(path, size)
            except FileNotFoundError:
                continue
            for i, n in enumerate(counts or ()):
                total[i] += n
    return total


def fold(directory: Path, pid: int) -> bool:
    """Add a dead process's counts to the archive, then delete its file (the caller holds the
    exclusive lock). False if it left none."""
    dead = directory / f"drift_{pid}.counts"
    if not dead.exists():
        return False
    counts = _floats(memoryview(dead.read_bytes()).cast("d"))
    archive = directory / "drift_archive.counts"
    if archive.exists():
        before = read(archive, len(counts)) or [0.0] * len(counts)
        counts = [a + b for a, b in zip(before, counts, strict=True)]
    partial = archive.with_name(archive.name + ".partial")
    partial.write_bytes(array.array("d", counts).tobytes())
    os.replace(partial, archive)
    dead.unlink()
    return True
