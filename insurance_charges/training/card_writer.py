"""The model card written at training time: what a pipeline is, how it scored, what made it."""
from __future__ import annotations

import json
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.model_card import installed_versions
from ..core.schema import FIELDS

# Training is seeded, so a rerun on the same data and versions reproduces the metrics;
# the tolerance absorbs floating-point noise across CPUs.
REPRODUCIBILITY_TOLERANCE = {"relative": 1e-6}


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
