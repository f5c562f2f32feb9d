"""The records the gate scores on: the newest data's holdout, and the store's frozen reference set.

The reference set is written once, at the first publish, from the data the first model's card
names (its SHA-256 must match) or from a file given explicitly; it is never replaced, so every
challenger for years is compared on the same records. Both are schema-checked CSVs with charges.
It is two objects, ``records.csv`` then ``about.json`` (its SHA-256): one without the other (a
publish stopped between them) is named, never used or skipped silently, and the next publish
given the same records completes it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ..training.data import CANONICAL_SHA256, DataError, download_canonical, load_data
from . import documents
from .documents import About
from .store import RESTORE, Conflict, Damaged, Missing, RegistryError, Store, sha256

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
        raise RegistryError(
            f"cannot read {path} ({exc.strerror}); give --evaluation-data a "
            "CSV of records with their charges"
        ) from None
    return parse(f"newest ({path.name})", data, str(path))


def _about(store: Store) -> About | None:
    """The reference set's about.json, checked; None if it is not there."""
    try:
        document = store.get_json(store.location.key(*ABOUT))[0]
    except Missing:
        return None
    return documents.about(document, store.location.uri(*ABOUT), RESTORE)


def _incomplete(store: Store, there: tuple, missing: tuple) -> Damaged:
    return Damaged(
        f"the reference set is incomplete: {store.location.uri(*there)} is there but "
        f"{store.location.uri(*missing)} is not (a publish stopped between them); "
        "complete it with `publish DIR --reference-data CSV` giving the same records"
    )


def frozen(store: Store) -> bool:
    """Whether the store holds both halves of a reference set (neither is downloaded)."""
    return _about(store) is not None and store.exists(store.location.key(*RECORDS))


def reference(store: Store) -> EvaluationSet | None:
    """The frozen reference set, checked against its recorded SHA-256; None if none was ever
    frozen; Damaged naming the missing half of an incomplete one."""
    about = _about(store)
    if about is None:
        if store.exists(store.location.key(*RECORDS)):
            raise _incomplete(store, RECORDS, ABOUT)
        return None
    try:
        data = store.get(store.location.key(*RECORDS))
    except Missing:
        raise _incomplete(store, ABOUT, RECORDS) from None
    if sha256(data) != about.sha256:
        raise Damaged(
            f"{store.location.uri(*RECORDS)} does not match the SHA-256 in "
            f"{store.location.uri(*ABOUT)}; {RESTORE}"
        )
    return parse("reference (frozen)", data, store.location.uri(*RECORDS))


def _records_to_freeze(card: dict, given: Path | None, state: str) -> tuple[bytes, str]:
    """The bytes to freeze and where they came from: ``given``, else the card's own data."""
    if given is not None:
        try:
            return given.read_bytes(), str(given)
        except OSError as exc:
            raise RegistryError(
                f"cannot read {given} ({exc.strerror}); give --reference-data "
                "a CSV of records with their charges"
            ) from None
    if card["data"]["sha256"] == CANONICAL_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                data = download_canonical(Path(tmp)).read_bytes()
            except (DataError, OSError) as exc:
                raise RegistryError(
                    f"the store {state} and the canonical data cannot be "
                    f"fetched ({exc}); give --reference-data CSV"
                ) from None
        return data, "the canonical insurance.csv (the data the card names)"
    raise RegistryError(
        f"the store {state}; give --reference-data CSV (the data "
        f"{card['model_version']} was trained on has SHA-256 "
        f"{card['data']['sha256'][:12]}..., or records kept out of training)"
    )


def freeze(store: Store, card: dict, given: Path | None, by: str) -> EvaluationSet:
    """Write the reference set at the first publish (``given``, else the card's own data), or
    complete one a publish left half-written; refused, writing nothing, if the store's
    differs from it."""
    recorded = _about(store)
    half = recorded is not None or store.exists(store.location.key(*RECORDS))
    data, source = _records_to_freeze(
        card,
        given,
        "has an incomplete reference set (one of records.csv and about.json)"
        if half
        else "has no reference set yet",
    )
    evaluation = parse("reference (frozen)", data, source)
    if recorded is not None and recorded.sha256 != evaluation.sha256:
        raise RegistryError(
            f"the store's reference set is frozen and differs from {source}; "
            "leave out --reference-data"
        )
    try:
        store.put(store.location.key(*RECORDS), data)
    except Conflict:  # frozen by an earlier publish (whole or half): never replaced
        stored = sha256(store.get(store.location.key(*RECORDS)))
        if stored != evaluation.sha256:
            raise RegistryError(
                f"the store's reference set is frozen and differs from {source}"
                + (
                    "; leave out --reference-data"
                    if recorded is not None
                    else f": {store.location.uri(*RECORDS)} has SHA-256 {stored[:12]}... and no "
                    "about.json; give --reference-data the CSV frozen first to complete it"
                )
            ) from None
    if recorded is None:
        about = {
            "sha256": evaluation.sha256,
            "rows": len(evaluation.frame),
            "source": source,
            "training_data_of": card["model_version"]
            if evaluation.sha256 == card["data"]["sha256"]
            else None,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "by": by,
        }
        try:
            store.put_json(store.location.key(*ABOUT), about)
        except Conflict:  # written meanwhile by another publish
            meanwhile = _about(store)
            if meanwhile is None or meanwhile.sha256 != evaluation.sha256:
                raise RegistryError(
                    f"the store's reference set is frozen and differs from "
                    f"{source}; leave out --reference-data"
                ) from None
    return evaluation
