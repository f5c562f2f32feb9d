"""The store's objects, checked for shape and type before anything reads a field of them.

Anyone with s3:PutObject on the store can write any object, so nothing read back is trusted:
each function takes what was read and its s3:// URI and returns a typed value, or raises
``Damaged`` naming the object, what is wrong with it and what to do. A version's files are
exactly the three names its signature covers, each a plain file name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from ..core import model_card
from .store import RESTORE, Damaged, loads
from .uri import check_version

RELEASE_FORMAT = "insurance-charges-release/1"
PIPELINE, CARD, SIGNATURE = ".pkl", ".card.json", ".sig.json"
# A pipeline's name: one segment of letters, digits, '.', '_', '-' starting with a letter or a
# digit (so never empty, '.', '..', hidden, or a path), 100 characters at most so its card's
# name and that name's temporary twin (".NAME.card.json.XXXXXXXX") fit any file system's 255.
_PIPELINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}\.pkl")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The committed pipeline is 194 KB; a model 300 times larger is still accepted, while a manifest
# can never make a fetch or a server's start-up hold more than this per file in memory.
MAX_FILE_BYTES = 64 * 1024 * 1024
ACTIONS = ("promote", "force-promote", "rollback")
VERSION_FIX = f"{RESTORE}, or serve and promote another version"


def shown(value: object) -> str:
    """A value from the store as one short, printable token for an error line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # a line stays readable


def _a(value: object) -> str:
    """A JSON value's kind as JSON names it, with its article: "an array", "a number"..."""
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(type(value), "a number")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _version(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(check_version(value))
    except ValueError:
        return False


def covered(pipeline: str) -> frozenset[str]:
    """The names a release's signature covers: the pipeline, its card and the signature."""
    stem = pipeline[: -len(PIPELINE)]
    return frozenset({pipeline, stem + CARD, stem + SIGNATURE})


def signed_names(pipeline: str) -> frozenset[str]:
    """``covered(pipeline)`` once the pipeline is a plain file name; ValueError if not."""
    if not _PIPELINE_NAME.fullmatch(pipeline) or ".." in pipeline:
        raise ValueError(
            f"{shown(pipeline)} is not a plain file name ending .pkl (letters, "
            "digits, '.', '_', '-', at most 100; no path)"
        )
    return covered(pipeline)


def _fields(doc: Any, keys: tuple[str, ...], bad: Callable[[str], Damaged]) -> dict:
    """The JSON object's entries, once it is an object holding every one of ``keys``."""
    if not isinstance(doc, dict):
        raise bad(f"it is {_a(doc)}, not an object")
    missing = [key for key in keys if key not in doc]
    if missing:
        raise bad("it lacks " + ", ".join(missing))
    return doc


@dataclass(frozen=True)
class Listed:
    """One file of a version as its manifest records it."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A published version's manifest, checked."""

    version: str
    pipeline: str
    files: Mapping[str, Listed]
    signed_by: str
    published_at: str
    published_by: str

    def listing(self) -> dict:
        """Each file's SHA-256 and size, in the form the manifest stores them."""
        return {
            name: {"sha256": item.sha256, "bytes": item.size}
            for name, item in sorted(self.files.items())
        }


MANIFEST_KEYS = (
    "format",
    "version",
    "pipeline",
    "files",
    "signed_by",
    "published_at",
    "published_by",
)


def manifest(doc: Any, uri: str, version: str) -> Manifest:
    """The manifest of ``version`` read from ``uri``; Damaged unless every field is usable and
    its files are exactly the signed names."""

    def bad(what: str) -> Damaged:
        return Damaged(f"{uri} is not a usable manifest of {version}: {what}; {VERSION_FIX}")

    fields = _fields(doc, MANIFEST_KEYS, bad)
    if fields["format"] != RELEASE_FORMAT:
        raise bad(f"format is {shown(fields['format'])}, not {RELEASE_FORMAT!r}")
    if fields["version"] != version:
        raise bad(f"version is {shown(fields['version'])}, not its folder's name")
    if not isinstance(fields["pipeline"], str):
        raise bad(f"pipeline is {_a(fields['pipeline'])}, not a file name")
    try:
        names = signed_names(fields["pipeline"])
    except ValueError as exc:
        raise bad(f"pipeline {exc}") from None
    files = fields["files"]
    if not isinstance(files, dict):
        raise bad(f"files is {_a(files)}, not an object of name: {{sha256, bytes}}")
    for name in sorted(set(files) - names, key=str):
        raise bad(
            f"files lists {shown(name)}, which is not one of the three files its "
            f"signature covers ({', '.join(sorted(names))})"
        )
    for name in sorted(names - set(files)):
        raise bad(f"files lacks {name}")
    listed = {}
    for name in sorted(names):
        item = files[name]
        if not (
            isinstance(item, dict)
            and isinstance(item.get("sha256"), str)
            and _SHA256.fullmatch(item["sha256"])
            and _whole(item.get("bytes"))
            and 0 <= item["bytes"] <= MAX_FILE_BYTES
        ):
            raise bad(
                f'files[{name!r}] is not {{"sha256": 64 lower-case hex digits, '
                f'"bytes": 0 to {MAX_FILE_BYTES:,}}}'
            )
        listed[name] = Listed(item["sha256"], item["bytes"])
    for key in ("signed_by", "published_at", "published_by"):
        if not isinstance(fields[key], str):
            raise bad(f"{key} is {_a(fields[key])}, not a string")
    return Manifest(
        version,
        fields["pipeline"],
        listed,
        fields["signed_by"],
        fields["published_at"],
        fields["published_by"],
    )


class Entry(TypedDict):
    """A change of champion: a history entry, and champion.json (a copy of the newest)."""

    sequence: int
    version: str
    action: str
    at: str
    by: str
    previous: str | None
    rollback_to: int | None
    forced: bool
    reason: str | None
    gate: dict | None


ENTRY_KEYS = tuple(Entry.__annotations__)


def _gate_fault(gate: object) -> str | None:
    """What is wrong with an entry's gate figures (None: nothing)."""
    if gate is None:
        return None
    if not (
        isinstance(gate, dict)
        and isinstance(gate.get("passed"), bool)
        and isinstance(gate.get("sets"), list)
        and isinstance(gate.get("checks"), list)
    ):
        return "gate is not null or {passed, sets, checks}"
    for check in gate["checks"]:
        if not (
            isinstance(check, dict)
            and isinstance(check.get("name"), str)
            and isinstance(check.get("passed"), bool)
            and isinstance(check.get("detail"), str)
        ):
            return "gate.checks holds an item that is not {name, passed, detail}"
    return None


def entry(doc: Any, uri: str, fix: str) -> Entry:
    """A champion entry read from ``uri``; Damaged (saying ``fix``) unless every field is
    usable."""

    def bad(what: str) -> Damaged:
        return Damaged(f"{uri} is not a usable champion entry: {what}; {fix}")

    fields = _fields(doc, ENTRY_KEYS, bad)
    sequence, rollback_to = fields["sequence"], fields["rollback_to"]
    if not _whole(sequence) or sequence < 1:
        raise bad(f"sequence is {shown(sequence)}, not a whole number from 1")
    for key in ("version", "previous"):
        if key == "previous" and fields[key] is None:  # the first champion replaced none
            continue
        if not _version(fields[key]):
            raise bad(f"{key} is {shown(fields[key])}, not a version name")
    if fields["action"] not in ACTIONS:
        raise bad(f"action is {shown(fields['action'])}, not one of {', '.join(ACTIONS)}")
    for key in ("at", "by"):
        if not isinstance(fields[key], str):
            raise bad(f"{key} is {_a(fields[key])}, not a string")
    if rollback_to is not None and not (_whole(rollback_to) and 1 <= rollback_to < sequence):
        raise bad(f"rollback_to is {shown(rollback_to)}, not null or an earlier sequence")
    if not isinstance(fields["forced"], bool):
        raise bad(f"forced is {_a(fields['forced'])}, not true or false")
    if fields["reason"] is not None and not isinstance(fields["reason"], str):
        raise bad(f"reason is {_a(fields['reason'])}, not null or a string")
    fault = _gate_fault(fields["gate"])
    if fault:
        raise bad(fault)
    return Entry(
        sequence=sequence,
        version=fields["version"],
        action=fields["action"],
        at=fields["at"],
        by=fields["by"],
        previous=fields["previous"],
        rollback_to=rollback_to,
        forced=fields["forced"],
        reason=fields["reason"],
        gate=fields["gate"],
    )


@dataclass(frozen=True)
class About:
    """The frozen reference set's about.json, checked."""

    sha256: str
    rows: int
    source: str


ABOUT_KEYS = ("sha256", "rows", "source", "training_data_of", "written_at", "by")


def about(doc: Any, uri: str, fix: str) -> About:
    """The reference set's about.json read from ``uri``; Damaged (saying ``fix``) if unusable."""

    def bad(what: str) -> Damaged:
        return Damaged(f"{uri} is not a usable description of the reference set: {what}; {fix}")

    fields = _fields(doc, ABOUT_KEYS, bad)
    if not (isinstance(fields["sha256"], str) and _SHA256.fullmatch(fields["sha256"])):
        raise bad(f"sha256 is {shown(fields['sha256'])}, not 64 lower-case hex digits")
    if not _whole(fields["rows"]) or fields["rows"] < 1:
        raise bad(f"rows is {shown(fields['rows'])}, not a whole number from 1")
    for key in ("source", "written_at", "by"):
        if not isinstance(fields[key], str):
            raise bad(f"{key} is {_a(fields[key])}, not a string")
    if fields["training_data_of"] is not None and not isinstance(fields["training_data_of"], str):
        raise bad(f"training_data_of is {_a(fields['training_data_of'])}, not null or a version")
    return About(fields["sha256"], fields["rows"], fields["source"])


@dataclass(frozen=True)
class CardFigures:
    """What ``list`` and ``show`` print of a version's card."""

    trained_at: str
    estimator: str
    mae: float
    r2: float | None
    coverage: float | None
    data_sha256: str
    data_rows: int
    versions: Mapping[str, str]


def card_figures(data: bytes, uri: str) -> CardFigures:
    """A card's figures from its bytes; Damaged naming ``uri`` if it cannot give them."""
    card = loads(data, uri)
    try:
        model_card.check_structure(card)
    except model_card.CardError as exc:
        raise Damaged(f"{uri} is not a usable model card ({exc}); {VERSION_FIX}") from None
    assert isinstance(card, dict)  # check_structure refuses anything else
    holdout, interval = card["metrics"]["holdout"], card.get("interval")
    coverage = (
        (interval.get("holdout") or {}).get("coverage")
        if isinstance(interval, dict) and isinstance(interval.get("holdout"), dict)
        else None
    )
    r2, source = holdout.get("r2"), card["data"]
    faults = [
        name
        for name, ok in (
            ("trained_at", isinstance(card.get("trained_at"), str)),
            ("data.sha256", isinstance(source.get("sha256"), str)),
            ("metrics.holdout.r2", r2 is None or _number(r2)),
            ("interval.holdout.coverage", coverage is None or _number(coverage)),
        )
        if not ok
    ]
    if faults:
        raise Damaged(
            f"{uri} is not a usable model card ({faults[0]} has the wrong type); {VERSION_FIX}"
        )
    return CardFigures(
        card["trained_at"],
        card["estimator"],
        holdout["mae"],
        r2,
        coverage,
        source["sha256"],
        source["rows"],
        card["versions"],
    )
