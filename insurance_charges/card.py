"""The model card: what a trained pipeline is, how it scored, and what it was made with."""
from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .schema import FIELDS

# The libraries whose versions must match between training and serving: a pickled
# PyCaret/scikit-learn pipeline is only trustworthy in the versions that wrote it.
MUST_MATCH = ("pycaret", "scikit-learn")
RECORDED = (*MUST_MATCH, "pandas", "numpy", "lightgbm")
# Training is seeded, so a rerun on the same data and versions reproduces the metrics;
# the tolerance absorbs floating-point noise across CPUs.
REPRODUCIBILITY_TOLERANCE = {"relative": 1e-6}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_for(pipeline_path: Path) -> Path:
    """The card's path beside a pipeline file: ``name.pkl`` -> ``name.card.json``."""
    return pipeline_path.with_name(pipeline_path.stem + ".card.json")


def installed_versions(names=RECORDED) -> dict[str, str]:
    """Versions of the named distributions installed here."""
    return {name: metadata.version(name) for name in names}


def schema_document(ranges: dict[str, Any]) -> dict:
    """The input schema with the value ranges seen in training."""
    fields = []
    for f in FIELDS:
        item = {"name": f.name, "type": f.kind, "label": f.label}
        if f.choices:
            item["allowed"] = list(f.choices)
        else:
            item.update(minimum=f.minimum, maximum=f.maximum)
        fields.append(item)
    return {"fields": fields, "training_ranges": ranges}


def build(*, pipeline_path: Path, pipeline_sha256: str, estimator: str, estimator_id: str,
          trained_at: datetime, data_sha256: str, rows: int, training: dict, metrics: dict,
          baseline: dict, ranges: dict, interval: dict | None = None) -> dict:
    """Assemble the card for a freshly trained pipeline."""
    return {
        "model_version": f"{trained_at:%Y.%m.%d}-{estimator_id}-{pipeline_sha256[:8]}",
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "estimator": estimator,
        "estimator_id": estimator_id,
        "pipeline_file": pipeline_path.name,
        "pipeline_sha256": pipeline_sha256,
        "data": {"sha256": data_sha256, "rows": rows},
        "versions": {"python": platform.python_version(), **installed_versions()},
        "training": training,
        "metrics": metrics,
        "baseline": baseline,
        "interval": interval,
        "reproducibility_tolerance": REPRODUCIBILITY_TOLERANCE,
        "schema": schema_document(ranges),
    }


def write(card: dict, path: Path) -> None:
    """Write the card as stable, readable JSON."""
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def version_mismatches(card: dict) -> list[str]:
    """Describe each must-match library whose installed version differs from the card's."""
    recorded = card.get("versions", {})
    here = installed_versions(MUST_MATCH)
    return [f"{name} {recorded.get(name, '(not recorded)')} (installed: {here[name]})"
            for name in MUST_MATCH if recorded.get(name) != here[name]]
