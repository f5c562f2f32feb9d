"""The output and its rejects appear together or not at all, and a run that ends early says
exactly what it left.

``publish_together`` first does everything slow and interruptible (fsync, the last part of an
upload), then, with stop signals deferred, makes each sink appear (a rename, completing an
upload); if one cannot appear, those already published are taken back. ``abort_all`` removes
every partial file and unfinished upload, going on past any that fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .signals import StopSignals
from .storage import Sink


class Abortable(Protocol):
    """A sink, or a writer in front of one."""

    @property
    def streams(self) -> bool:
        """Written as it goes (it cannot be taken back)."""

    def abort(self) -> str | None:
        """Leave nothing that looks finished; say what could not be cleaned up (or None)."""


class Publishable(Protocol):
    """A writer: ``finish`` writes the end of its file; ``sink`` is where it goes."""

    @property
    def sink(self) -> Sink:
        """Where the file goes."""

    def finish(self) -> None:
        """Write the file's end and make it durable, still unpublished."""


@dataclass
class Outcome:
    """What the run has left where, so that its closing line is true however it ends."""

    published: list[str] = field(default_factory=list)  # outputs written in full
    notes: list[str] = field(default_factory=list)  # what else is there (or is not)
    streamed: str | None = None  # standard output got part of the rows

    def said(self) -> str:
        """The end of the run's ``Error:`` line: what exists now."""
        if self.published:
            verb = "were" if len(self.published) > 1 else "was"
            return " and ".join(self.published) + f" {verb} written in full"
        return "; ".join([self.streamed or "no output written", *self.notes])


def publish_together(
    writers: Sequence[Publishable], outcome: Outcome, signals: StopSignals
) -> None:
    """Make every writer's sink appear, in order, or none (those published are taken back)."""
    for writer in writers:
        writer.finish()  # slow, and nothing is visible yet: a signal here just aborts
    sinks = [writer.sink for writer in writers]
    with signals.deferred():
        done: list[Sink] = []
        try:
            for sink in sinks:
                sink.publish()
                done.append(sink)
        except BaseException:
            for sink in reversed(done):
                try:
                    outcome.notes.append(sink.withdraw())
                except Exception as exc:  # noqa: BLE001 - said, not raised over the cause
                    outcome.notes.append(
                        f"{sink.location} was written by this run and could "
                        f"not be taken back ({exc}): it is complete, but the "
                        "file it goes with is not this run's"
                    )
            raise
        for sink in sinks:
            try:
                sink.settle()
            except OSError:  # a hidden .previous file stays behind: harmless
                pass
        outcome.published = [s.label for s in sinks]
    signals.raise_pending()  # a stop signal that came meanwhile ends the run now, said truly


def abort_all(items: Iterable[Abortable], outcome: Outcome, signals: StopSignals) -> None:
    """Abort every item, each whatever happened to the others, with stop signals deferred."""
    with signals.deferred():
        for item in items:
            try:
                note = item.abort()
            except Exception as exc:  # noqa: BLE001 - the next one is cleaned up all the same
                note = f"cleaning up failed ({type(exc).__name__}: {exc})"
            if note and item.streams:
                outcome.streamed = note
            elif note:
                outcome.notes.append(note)
