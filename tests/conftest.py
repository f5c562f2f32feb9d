"""Shared fixtures: the real committed model loaded once, the app and its test client."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from insurance_charges.web import create_app
from insurance_charges.core.estimator import load_model
from insurance_charges.settings import DEFAULT_MODEL_PATH
from insurance_charges.core.schema import EXAMPLE_RECORD

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("INSURANCE_DATA", ROOT.parent / "shared" / "data" / "insurance.csv"))


def require(condition: bool, reason: str) -> None:
    """Skip when a machine part is missing, but fail in CI, where nothing may be skipped."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this cannot be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_model():
    """The committed model, loaded and verified once for the whole run."""
    return load_model(DEFAULT_MODEL_PATH)


@pytest.fixture
def app(real_model):
    """The app with the committed model injected."""
    return create_app({"TESTING": True, "MODEL": real_model})


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def record():
    """A fresh copy of a valid record."""
    return dict(EXAMPLE_RECORD)


@pytest.fixture(scope="session")
def data_path():
    """The shared copy of insurance.csv."""
    require(SHARED_DATA.is_file(), f"needs the shared data set at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def model_copy(tmp_path):
    """A writable copy of the committed pipeline and its card."""
    for src in DEFAULT_MODEL_PATH.parent.glob(DEFAULT_MODEL_PATH.stem + ".*"):
        shutil.copy(src, tmp_path / src.name)
    return tmp_path / DEFAULT_MODEL_PATH.name


def vouch_for(model_path: Path) -> None:
    """Rewrite the card beside ``model_path`` so its checksum and version match the file."""
    import hashlib
    import json

    from insurance_charges.core.model_card import path_for

    card_path = path_for(model_path)
    card = json.loads(card_path.read_text())
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    card["pipeline_sha256"] = digest
    card["model_version"] = card["model_version"].rsplit("-", 1)[0] + "-" + digest[:8]
    card_path.write_text(json.dumps(card))
