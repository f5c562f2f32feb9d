"""A release's files: a trained model directory, checked on the way into the store and out.

A version is the folder ``prefix/VERSION/`` holding the pipeline, its card and signature exactly
as training wrote them, and ``manifest.json`` (each file's SHA-256 and size, who published it),
written last: a version without its manifest was never published. Nothing is ever overwritten.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..core import model_card, model_signing
from . import documents
from .documents import CARD, SIGNATURE, Manifest, covered, shown, signed_names
from .store import Conflict, Damaged, Missing, RegistryError, Store, sha256
from .uri import check_version

MANIFEST = "manifest.json"
FORMAT = documents.RELEASE_FORMAT


@dataclass(frozen=True)
class Release:
    """A trained model's files (name -> bytes), proven signed by a trusted key."""

    files: dict
    pipeline: str  # the name of the pipeline file among ``files``
    card: dict
    signer: str

    @property
    def version(self) -> str:
        """The card's model_version: the release's name in the store."""
        return self.card["model_version"]

    def listing(self) -> dict:
        """Each file's SHA-256 and size, as the manifest records them."""
        return {
            name: {"sha256": sha256(data), "bytes": len(data)}
            for name, data in sorted(self.files.items())
        }


def who() -> str:
    """The person or machine acting, for the manifest and the champion's history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def checked(files: dict, pipeline: str, trusted: tuple, where: str) -> Release:
    """The files as a Release once names, signature, card and checksum hold; RegistryError if
    not. The files must be exactly the pipeline, its card and its signature."""
    try:
        names = signed_names(pipeline)
    except ValueError as exc:
        raise RegistryError(f"model {where}: its pipeline {exc}") from None
    if set(files) != names:
        raise RegistryError(
            f"model {where} is not exactly its pipeline, card and signature "
            f"({', '.join(sorted(names))}); a trained model is a .pkl with its "
            ".card.json and .sig.json"
        )
    stem = pipeline[: -len(".pkl")]
    card_bytes, signature = files[stem + CARD], files[stem + SIGNATURE]
    try:
        signer = model_signing.verify(signature, files[pipeline], card_bytes, trusted)
    except model_signing.SignatureError as exc:
        raise RegistryError(
            f"model {where} is refused: {exc}; sign it with the training key, "
            "or set MODEL_PUBLIC_KEY to the key that signed it"
        ) from None
    try:
        card = json.loads(card_bytes)
        model_card.check_structure(card)
        check_version(card["model_version"])
    except (ValueError, model_card.CardError) as exc:
        raise RegistryError(
            f"model card {where}/{stem}{CARD} is unusable ({exc}); "
            "retrain with `python -m insurance_charges.training`"
        ) from None
    if sha256(files[pipeline]) != card["pipeline_sha256"]:
        raise RegistryError(
            f"model {where}/{pipeline} does not match its card's SHA-256; "
            "retrain, or fetch the version again"
        )
    return Release(files=dict(files), pipeline=pipeline, card=card, signer=signer)


def read_directory(directory: Path, trusted: tuple) -> Release:
    """The trained model in ``directory`` (one .pkl with its .card.json and .sig.json)."""
    cards = sorted(directory.glob("*" + CARD)) if directory.is_dir() else []
    if len(cards) != 1:
        raise RegistryError(
            f"{directory} holds {len(cards)} model cards, not one; give the "
            "directory `python -m insurance_charges.training --out DIR` wrote"
        )
    stem = cards[0].name[: -len(CARD)]
    files = {}
    for name in (stem + ".pkl", stem + CARD, stem + SIGNATURE):
        try:
            files[name] = (directory / name).read_bytes()
        except OSError as exc:
            raise RegistryError(
                f"cannot read {directory / name} ({exc.strerror}); a trained "
                "model is a .pkl with its .card.json and .sig.json"
            ) from None
    return checked(files, stem + ".pkl", trusted, str(directory))


def publish(store: Store, release: Release) -> bool:
    """Upload a release once; False if the identical release is already there.

    Refused (Conflict) if the version exists with other bytes: versions are immutable.
    """
    version = release.version
    manifest = {
        "format": FORMAT,
        "version": version,
        "pipeline": release.pipeline,
        "files": release.listing(),
        "signed_by": release.signer,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "published_by": who(),
    }
    immutable = (
        f"version {version} is already in {store.location.uri()} with other bytes; "
        "versions are immutable: retrain to make a new version"
    )
    existing = published(store, version)
    if existing is not None:
        if existing.listing() == manifest["files"]:
            return False
        raise Conflict(immutable)
    for name, data in sorted(release.files.items()):
        key = store.location.key(version, name)
        try:
            store.put(key, data)
        except Conflict:  # left by an earlier attempt: fine only if it is the same bytes
            if sha256(store.get(key)) != sha256(data):
                raise Conflict(
                    f"{immutable} (s3://{store.location.bucket}/{key} holds other "
                    "bytes, left by an unfinished publish)"
                ) from None
    try:
        store.put_json(store.location.key(version, MANIFEST), manifest)
    except Conflict:  # published meanwhile by someone else
        meanwhile = published(store, version)
        if meanwhile is None or meanwhile.listing() != manifest["files"]:
            raise Conflict(immutable) from None
        return False
    return True


def published(store: Store, version: str) -> Manifest | None:
    """The version's manifest, checked; None if the version was never published."""
    try:
        document = store.get_json(store.location.key(version, MANIFEST))[0]
    except Missing:
        return None
    return documents.manifest(document, store.location.uri(version, MANIFEST), version)


def fetch(store: Store, version: str, trusted: tuple) -> Release:
    """Download a version and prove every file: manifest checksums, card SHA-256, signature.

    The manifest is checked whole first (its files exactly the signed names, each a plain file
    name), so a hostile one is refused before any file is downloaded.
    """
    manifest = published(store, version)
    if manifest is None:
        raise Missing(
            f"version {version} is not in the store {store.location.uri()}; "
            "`python -m insurance_charges.registry list` shows the published ones"
        )
    files = {}
    for name, expected in sorted(manifest.files.items()):
        files[name] = store.get(
            store.location.key(version, name),
            limit=expected.size,
            bound="the size its manifest records",
        )
        if sha256(files[name]) != expected.sha256:
            raise Damaged(
                f"{store.location.uri(version, name)} does not match the SHA-256 its "
                "manifest records (changed in the store?); serve another version, "
                "or restore it from the bucket's object versions"
            )
    release = checked(files, manifest.pipeline, trusted, store.location.uri(version))
    if release.version != version:
        raise Damaged(
            f"{store.location.uri(version)} holds model {release.version}; {documents.VERSION_FIX}"
        )
    return release


def _inside(directory: Path, name: str) -> Path:
    """Where ``name`` lands in ``directory`` (resolved); RegistryError unless that is directly
    inside it under that very name."""
    target = Path(os.path.abspath(directory / name))  # '..' resolved; the entry itself is
    # replaced, never followed, so the directory's own resolved path is what must contain it
    if "\0" in name or target.parent != directory or target.name != name:
        raise RegistryError(
            f"refusing to write {shown(name)}: it resolves to "
            f"{shown(str(target))}, not a file directly inside {directory}"
        )
    return target


def write_directory(release: Release, directory: Path) -> Path:
    """Write the files into ``directory`` (each whole or not at all); the pipeline's path.

    The single place a release reaches the disk: every name is proven, before anything is
    written, to be one its signature covers and to resolve to a file directly inside.
    """
    inside, names = directory.resolve(), covered(release.pipeline)
    targets = {}
    for name in sorted(release.files):
        if name not in names:
            raise RegistryError(
                f"refusing to write {shown(name)} into {directory}: not one of "
                f"the files its signature covers ({', '.join(sorted(names))})"
            )
        targets[name] = _inside(inside, name)
    try:
        inside.mkdir(parents=True, exist_ok=True)
        for name, target in targets.items():
            _write_whole(target, release.files[name])
    except OSError as exc:
        raise RegistryError(
            f"cannot write into {directory} ({exc.strerror}); give a directory this user can write"
        ) from None
    return directory / release.pipeline


def _write_whole(target: Path, data: bytes) -> None:
    """``target`` holds ``data`` whole, or is left as it was (no partial file behind)."""
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as part:
        try:
            part.write(data)
        except OSError:
            os.unlink(part.name)
            raise
    os.replace(part.name, target)
