"""Serve from the store: ``MODEL_URI=s3://bucket/prefix/VERSION`` (or ``.../champion``).

At start-up, once, in gunicorn's master: ``champion`` is resolved to the version it points at
(a fleet serves one pinned version, so the name is never looked at again), the version's files
are downloaded into a private temporary directory and proven (manifest checksums, card
SHA-256, signature), then loaded exactly as a local MODEL_PATH is. The directory is removed once
the model is in memory. Any failure is one ``RegistryError`` line and start-up stops.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ..serving.model import Model, load_model
from . import artifacts, champion
from .store import RegistryError, Store
from .uri import CHAMPION, parse_model_uri

log = logging.getLogger(__name__)


def resolve(store: Store, name: str) -> str:
    """The version ``name`` stands for: itself, or the champion's version."""
    if name != CHAMPION:
        return name
    pointer = champion.current(store)
    if pointer is None:
        raise RegistryError(
            f"{store.location.uri()} has no champion yet; promote a version "
            "(`python -m insurance_charges.registry promote VERSION`) or set "
            "MODEL_URI to a version"
        )
    return pointer.version


def load_from_store(uri: str, trusted_keys: tuple, store: Store | None = None) -> Model:
    """Download, verify and load the model ``uri`` names; RegistryError in one line if not."""
    location, name = parse_model_uri(uri)
    store = store or Store(location)
    try:
        version = resolve(store, name)
        if name == CHAMPION:
            log.info("MODEL_URI %s resolved to version %s", uri, version)
        release = artifacts.fetch(store, version, trusted_keys)
    except RegistryError as exc:
        raise RegistryError(f"MODEL_URI {uri}: {exc}") from None
    private = Path(tempfile.mkdtemp(prefix="insurance-charges-model-"))  # mode 0700
    try:
        model = load_model(artifacts.write_directory(release, private), trusted_keys)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    log.info(
        "serving model %s from %s (signed by key %s)",
        version,
        location.model_uri(version),
        release.signer,
    )
    return model
