"""The model card written at training time: what a pipeline is, how it scored, what made it."""

from __future__ import annotations

import json
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.model_card import installed_versions
from ..core.schema import CATEGORY, FIELD_NAMES, FIELDS, INTEGER
from ..monitoring.drift import reference_distribution

# Training is seeded: on the same CPU kernel and BLAS thread count, with the same data and
# versions, a rerun writes the same figures and a pipeline with the same estimates, bit for
# bit. Other CPUs round differently; the relative tolerance covers that: MEASURED_SPREAD is
# the largest relative spread of any card figure between OpenBLAS's kernels Prescott to
# Cooperlake, 1 or 2 BLAS threads and numpy's SIMD on or off (`python -m
# devtools.blas_spread`, docs/training.md#how-reproducible-training-is), and the tolerance
# leaves nine orders of magnitude for CPUs not measured.
MEASURED_SPREAD = 1.9e-15  # the baseline's holdout MAE; the model's own figures: 3.8e-16
REPRODUCIBILITY_TOLERANCE = {
    "relative": 1e-6,
    "bit_for_bit": "the same figures and estimates on the same CPU kernel and BLAS thread "
    "count (blas above), with the same data and versions",
    "across_cpus": "every figure within the relative tolerance; measured: at most "
    f"{MEASURED_SPREAD:.2g} over OpenBLAS kernels Prescott, Nehalem, "
    "Sandybridge, Haswell, SkylakeX and Cooperlake, 1 or 2 BLAS threads, "
    "numpy's SIMD on or off",
}


def blas_libraries() -> list[dict]:
    """Each BLAS library loaded here: its version, the CPU kernel it runs and its threads.

    What a bit-for-bit rerun must match besides the versions; OpenBLAS picks its kernel from
    the CPU at start (or from OPENBLAS_CORETYPE).
    """
    from threadpoolctl import threadpool_info

    return sorted(
        (
            {
                "library": info["internal_api"],
                "version": info["version"],
                "kernel": info.get("architecture"),
                "threads": info["num_threads"],
            }
            for info in threadpool_info()
            if info["user_api"] == "blas"
        ),
        key=lambda library: (library["library"], str(library["version"])),
    )


def schema_document(ranges: dict[str, Any]) -> dict:
    """The input schema with the value ranges seen in training."""
    fields = []
    for f in FIELDS:
        item: dict[str, Any] = {"name": f.name, "type": f.kind, "label": f.label}
        if f.choices:
            item["allowed"] = list(f.choices)
        else:
            item.update(minimum=f.minimum, maximum=f.maximum)
        fields.append(item)
    return {"fields": fields, "training_ranges": ranges}


def distribution(features, estimates) -> dict:
    """The training distribution of each input and of the served model's estimates on it.

    The service compares what it receives with this (insurance_charges.monitoring.drift).
    """
    return reference_distribution(
        {name: features[name].to_numpy() for name in FIELD_NAMES},
        np.asarray(estimates, dtype=np.float64),
    )


# Points along each number's training range: enough for a smooth line on a small chart, and
# the whole grid (62 values of the six inputs x 1,338 rows) is one batch of about 83,000.
DRIVER_POINTS = 24
SMOKER = "smoker"
DRIVERS_METHOD = (
    "partial dependence on the training rows: each row's estimate with one input "
    "set to each value and the others as they are, averaged over all rows (and, "
    "for numbers, over the smokers and the non-smokers apart); spread is the "
    "largest average minus the smallest"
)


def _grid(field, column) -> list:
    if field.kind == CATEGORY:
        return list(field.choices)
    low, high = column.min().item(), column.max().item()
    if field.kind == INTEGER:
        step = max(1, round((high - low) / (DRIVER_POINTS - 1)))
        return sorted({*range(low, high + 1, step), high})
    return sorted({round(v, 1) for v in np.linspace(low, high, DRIVER_POINTS).tolist()})


def drivers(pipeline, features) -> dict:
    """How the estimate moves with each input, overall: partial dependence, computed once."""
    import pandas as pd

    rows = len(features)
    grids = {f.name: _grid(f, features[f.name]) for f in FIELDS}
    frames = []
    for name, grid in grids.items():
        for value in grid:
            frames.append(features.assign(**{name: value}))
    predicted = np.asarray(
        pipeline.predict(pd.concat(frames, ignore_index=True)), dtype=np.float64
    ).reshape(-1, rows)
    smokers = features[SMOKER].to_numpy() == "yes"
    out: dict[str, dict[str, Any]] = {}
    at = 0
    for f in FIELDS:
        block = predicted[at : at + len(grids[f.name])]
        at += len(grids[f.name])
        mean = block.mean(axis=1)
        item: dict[str, Any] = {
            "values": grids[f.name],
            "mean_estimate": [round(v, 2) for v in mean.tolist()],
            "spread": round(float(mean.max() - mean.min()), 2),
        }
        if f.kind != CATEGORY:
            item["by_smoker"] = {
                "yes": [round(v, 2) for v in block[:, smokers].mean(axis=1)],
                "no": [round(v, 2) for v in block[:, ~smokers].mean(axis=1)],
            }
        out[f.name] = item
    order = sorted(out, key=lambda name: -out[name]["spread"])
    return {"method": DRIVERS_METHOD, "rows": rows, "order": order, "fields": out}


def build(
    *,
    pipeline_path: Path,
    pipeline_sha256: str,
    estimator: str,
    estimator_id: str,
    trained_at: datetime,
    data_sha256: str,
    rows: int,
    training: dict,
    metrics: dict,
    baseline: dict,
    ranges: dict,
    interval: dict | None = None,
    distribution: dict | None = None,
    drivers: dict | None = None,
) -> dict:
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
        "blas": blas_libraries(),
        "training": training,
        "metrics": metrics,
        "baseline": baseline,
        "interval": interval,
        "reproducibility_tolerance": REPRODUCIBILITY_TOLERANCE,
        "schema": schema_document(ranges),
        "distribution": distribution,
        "drivers": drivers,
    }


def write(card: dict, path: Path) -> None:
    """Write the card as stable, readable JSON."""
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
