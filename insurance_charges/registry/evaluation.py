"""The records the gate scores on: the newest data's holdout, and the store's frozen reference set.

The reference set is written once, at the first publish, from the data the first model's card
names (its SHA-256 must match) or from a file given explicitly; it is never replaced, so every
challenger for years is compared on the same records. Both are schema-checked CSVs with charges.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..training.data import CANONICAL_SHA256, DataError, download_canonical, load_data
from .store import Conflict, Missing, RegistryError, Store, sha256

RECORDS = ("reference", "records.csv")
ABOUT = ("reference", "about.json")


@dataclass(frozen=True)
class EvaluationSet:
    """Named, schema-checked records with their charges, and the SHA-256 of the file."""

    name: str
    frame: pd.DataFrame
    sha256: str


def parse(name: str, data: bytes, where: str) -> EvaluationSet:
    """The CSV bytes as an EvaluationSet; RegistryError naming the first bad row."""
    with tempfile.TemporaryDirectory(prefix="insurance-charges-eval-") as tmp:
        path = Path(tmp) / "records.csv"
        path.write_bytes(data)
        try:
            frame = load_data(path)
        except (DataError, ValueError) as exc:
            text = str(exc).replace(str(path), where)
            raise RegistryError(f"evaluation records {where} are unusable: {text}") from None
    if frame.empty:
        raise RegistryError(f"evaluation records {where} hold no rows")
    return EvaluationSet(name, frame, sha256(data))


def from_file(path: Path) -> EvaluationSet:
    """The newest data's holdout, given to ``promote --evaluation-data``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {path} ({exc.strerror}); give --evaluation-data a "
                            "CSV of records with their charges") from None
    return parse(f"newest ({path.name})", data, str(path))


def reference(store: Store) -> EvaluationSet | None:
    """The frozen reference set, checked against its recorded SHA-256; None if none yet."""
    try:
        about = store.get_json(store.location.key(*ABOUT))[0]
    except Missing:
        return None
    data = store.get(store.location.key(*RECORDS))
    if sha256(data) != about.get("sha256"):
        raise RegistryError(f"{store.location.uri(*RECORDS)} does not match the SHA-256 in "
                            f"{store.location.uri(*ABOUT)} (changed in the store?); restore it")
    return parse("reference (frozen)", data, store.location.uri(*RECORDS))


def freeze(store: Store, card: dict, given: Path | None, by: str) -> EvaluationSet:
    """Write the reference set at the first publish: ``given``, else the card's own data."""
    if given is not None:
        try:
            data = given.read_bytes()
        except OSError as exc:
            raise RegistryError(f"cannot read {given} ({exc.strerror}); give --reference-data "
                                "a CSV of records with their charges") from None
        source = str(given)
    elif card["data"]["sha256"] == CANONICAL_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                data = download_canonical(Path(tmp)).read_bytes()
            except (DataError, OSError) as exc:
                raise RegistryError(f"the store has no reference set and the canonical data "
                                    f"cannot be fetched ({exc}); give --reference-data CSV"
                                    ) from None
        source = "the canonical insurance.csv (the data the card names)"
    else:
        raise RegistryError(f"the store has no reference set yet; give --reference-data CSV "
                            f"(the data {card['model_version']} was trained on has SHA-256 "
                            f"{card['data']['sha256'][:12]}..., or records kept out of training)")
    evaluation = parse("reference (frozen)", data, source)
    about = {"sha256": evaluation.sha256, "rows": len(evaluation.frame), "source": source,
             "training_data_of": card["model_version"]
             if evaluation.sha256 == card["data"]["sha256"] else None,
             "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "by": by}
    try:
        store.put(store.location.key(*RECORDS), data)
        store.put_json(store.location.key(*ABOUT), about)
    except Conflict:  # frozen: written by an earlier publish, never replaced
        if (reference(store) or evaluation).sha256 != evaluation.sha256:
            raise RegistryError(f"the store's reference set is frozen and differs from "
                                f"{source}; leave out --reference-data") from None
    return evaluation
