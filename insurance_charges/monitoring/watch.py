"""The served model under watch: its recorder, its training distribution, the drift report.

One ``Watch`` per app, made when the model is loaded (in gunicorn's master, before it forks):
the web layer records through it and asks it for the drift document; the master's metrics
server reads the same shared files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import drift, state
from .recorder import MonitoringError, Recorder, activate
from .tally import Layout, Tally


@dataclass(frozen=True)
class Watch:
    """What is watched for one served model."""

    recorder: Recorder
    reference: drift.Reference | None  # None: the card predates training distributions
    directory: Path | None  # shared by gunicorn's processes; None: this process's memory
    model_version: str
    tally: Tally | None = None  # the drift counts (with a reference)
    layout: Layout | None = None

    def drift(self) -> dict | None:
        """The drift document (None without a training distribution)."""
        if self.reference is None:
            return None
        now = state.read_counts(self)
        return state.report(
            self.reference, now, state.Window.read(self.directory), self.model_version
        )


def reference_of(model) -> drift.Reference | None:
    """The model card's training distribution, checked; None if the card has none."""
    section = (getattr(model, "card", None) or {}).get("distribution")
    if section is None:
        return None
    try:
        return drift.read_reference(section)
    except ValueError as exc:
        raise MonitoringError(
            f"model card of {getattr(model, 'path', model.version)}: {exc}; "
            "run `make train` to rebuild it, or set MODEL_PATH to a trained "
            "pipeline"
        ) from None


def watch_model(model, directory: Path | None, load_seconds: float) -> Watch:
    """Start watching ``model``: values shared through ``directory`` (or kept in memory)."""
    activate(directory)
    reference = reference_of(model)
    layout = Layout(reference) if reference is not None else None
    tally = Tally(layout.size, directory) if layout is not None else None
    recorder = Recorder(reference, model.version, tally)
    recorder.started(model, load_seconds)
    return Watch(recorder, reference, directory, model.version, tally, layout)
