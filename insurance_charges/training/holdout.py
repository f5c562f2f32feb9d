"""The newest data's holdout: records kept out of training, for the promotion gate to judge on.

A record's side is fixed by a hash of its values, not by its position or a random draw: the
same record lands on the same side every week. As the data grows, a record held out this week
was held out last week too, so neither the champion (trained on an earlier week's training
part) nor the challenger has seen any holdout record, and the gate compares them fairly.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..core.model_card import sha256_of
from ..core.schema import BY_NAME, FIELD_NAMES, typed_from_text
from .data import TARGET

TRAIN, HOLDOUT = "train.csv", "holdout.csv"
_SCALE = 2**64  # the first 8 bytes of a record's SHA-256, as a number below this


@dataclass(frozen=True)
class Part:
    """One side of the split: its file, rows and SHA-256."""

    path: Path
    rows: int
    sha256: str


def held_out(record: dict[str, str], fraction: float) -> bool:
    """True if this record (column -> text) belongs to the holdout.

    Hashed by value, so "27.9" and "27.90" are the same record on the same side.
    """
    values = [typed_from_text(BY_NAME[name], record[name]) for name in FIELD_NAMES]
    key = json.dumps([*values, float(record[TARGET])]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") < fraction * _SCALE


def split(accepted: Path, out_dir: Path, fraction: float) -> tuple[Part, Part]:
    """Write ``train.csv`` and ``holdout.csv`` from schema-checked rows, cells as given."""
    with (
        open(accepted, newline="", encoding="utf-8-sig") as source,
        open(out_dir / TRAIN, "w", newline="", encoding="utf-8") as train,
        open(out_dir / HOLDOUT, "w", newline="", encoding="utf-8") as holdout,
    ):
        reader = csv.reader(source)
        header = next(reader)
        sides = csv.writer(train, lineterminator="\n"), csv.writer(holdout, lineterminator="\n")
        counts = [0, 0]
        for writer in sides:
            writer.writerow(header)
        for cells in reader:
            side = int(held_out(dict(zip(header, cells, strict=True)), fraction))
            sides[side].writerow(cells)
            counts[side] += 1
    return (
        Part(out_dir / TRAIN, counts[0], sha256_of(out_dir / TRAIN)),
        Part(out_dir / HOLDOUT, counts[1], sha256_of(out_dir / HOLDOUT)),
    )
