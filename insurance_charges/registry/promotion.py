"""The gate's inputs: both models loaded (each verified) and scored on the same records."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..core import model_card
from ..serving.model import ModelLoadError, load_model
from . import artifacts, evaluation, gate
from .champion import Pointer
from .store import Store


def _loaded(release: artifacts.Release, trusted: tuple, scratch: Path):
    """(the model, None), or (None, why it cannot be scored with the libraries installed)."""
    mismatches = model_card.version_mismatches(release.card)
    if mismatches:
        return None, "made with " + ", ".join(mismatches)
    try:
        return load_model(
            artifacts.write_directory(release, scratch / release.version), trusted
        ), None
    except ModelLoadError as exc:
        return None, str(exc)


def compare(
    store: Store,
    release: artifacts.Release,
    pointer: Pointer | None,
    evaluation_data: Path | None,
    trusted: tuple,
):
    """Score challenger and champion on the reference set and the newest holdout; the
    per-set results and the gate's checks."""
    candidates = (
        evaluation.reference(store),
        evaluation.from_file(evaluation_data) if evaluation_data else None,
    )
    # The same bytes given twice (the holdout that was frozen as the reference set) are one
    # set: counted twice they would double the records behind every figure the gate judges.
    sets: list[evaluation.EvaluationSet] = []
    for candidate in candidates:
        if candidate is not None and all(candidate.sha256 != s.sha256 for s in sets):
            sets.append(candidate)
    scratch = Path(tempfile.mkdtemp(prefix="insurance-charges-gate-"))
    try:
        model, not_scored = _loaded(release, trusted, scratch)
        rival, rival_not_scored = (
            (None, None)
            if pointer is None
            else _loaded(artifacts.fetch(store, pointer.version, trusted), trusted, scratch)
        )
        results = [
            gate.SetResult(
                s.name,
                len(s.frame),
                gate.score(model, s) if model else None,
                gate.score(rival, s) if rival else None,
                challenger_trained=s.sha256 == release.card["data"]["sha256"],
                champion_trained=rival is not None and s.sha256 == rival.card["data"]["sha256"],
            )
            for s in sets
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    checks = gate.judge(
        release.card, results, pointer.version if pointer else None, not_scored, rival_not_scored
    )
    return results, checks
