"""Shared fixtures: the real committed model loaded once, the app and its test client."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.serving.model import load_model
from insurance_charges.settings import DEFAULT_MODEL_PATH
from insurance_charges.web import create_app

pytest_plugins = ["tests.tiers"]
# Fixture modules that test modules load with `pytest_plugins` and also import names from: marked
# here, before any test module imports them, so pytest rewrites their asserts (and does not warn).
pytest.register_assert_rewrite(
    "tests.browser_fixtures", "tests.scoring_support", "tests.outcomes_fixtures"
)

# `make test` runs pytest inside make, whose own variables would make every `make` a test starts
# a sub-make (`make[1]: ***` lines, the parent's command-line variables passed on): the tests
# run make as a person types it.
for _make_variable in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
    os.environ.pop(_make_variable, None)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(
    os.environ.get("INSURANCE_DATA", ROOT.parent / "shared" / "data" / "insurance.csv")
)


# Training options for tests whose claims are about how training computes or what happens to
# its result (seeds, BLAS, signing, the registry's gate), not about how many regressors it
# compares: two candidates (a linear model on BLAS, the boosting the full run chooses) on 5
# folds instead of 18 on 10. Every training step still runs. A forest chosen on the registry
# scenario's 400 rows covered 87% in its range and the gate refused it, as it should.
QUICK_TRAINING = ("--candidates", "lr,gbr", "--folds", "5")


def require(condition: bool, reason: str) -> None:
    """Skip when a machine part is missing, but fail in CI, where nothing may be skipped."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this cannot be skipped)")
    pytest.skip(reason)


def run_in_session(
    command: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """``command`` from the project, to its end, in a session of its own: when it outlives
    ``timeout``, every process it started (a server `make run` left) is killed with it."""
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of it still running
        except ProcessLookupError:
            pass
        proc.wait()
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


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


@pytest.fixture(scope="session")
def signing_key():
    """The tests' own model-signing key (the committed model's private key is never here)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def public_key_file(signing_key, tmp_path_factory) -> Path:
    """A PEM file of the tests' public key, as MODEL_PUBLIC_KEY would name it."""
    from cryptography.hazmat.primitives import serialization

    target = tmp_path_factory.mktemp("keys") / "test-model-key.pem"
    target.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return target


@pytest.fixture(scope="session")
def private_key_file(signing_key, tmp_path_factory) -> Path:
    """The tests' private key as a PEM file, as `make train SIGNING_KEY=...` takes it."""
    from cryptography.hazmat.primitives import serialization

    target = tmp_path_factory.mktemp("private") / "test-signing.key"
    target.write_bytes(
        signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return target


@pytest.fixture(scope="session")
def test_keys(public_key_file):
    """The tests' public key, as load_model's ``trusted_keys``."""
    from insurance_charges.core.model_signing import read_public_keys

    return read_public_keys(public_key_file.read_bytes())


def sign_with(signing_key, model_path: Path) -> None:
    """Sign the pipeline and card at ``model_path`` as they now are, with the tests' key."""
    from insurance_charges.core.model_card import path_for
    from insurance_charges.core.model_signing import write_signature

    write_signature(signing_key, model_path, path_for(model_path))


def vouch_for(model_path: Path, signing_key=None) -> None:
    """Rewrite the card beside ``model_path`` so its checksum and version match the file.

    With ``signing_key``, also sign the result: a model made by someone holding that key.
    """
    import hashlib
    import json

    from insurance_charges.core.model_card import path_for

    card_path = path_for(model_path)
    card = json.loads(card_path.read_text())
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    card["pipeline_sha256"] = digest
    card["model_version"] = card["model_version"].rsplit("-", 1)[0] + "-" + digest[:8]
    card_path.write_text(json.dumps(card))
    if signing_key is not None:
        sign_with(signing_key, model_path)


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> str:
    """The image built once per run from the bundle `eb deploy` uploads, as EB builds it;
    every container test (EB, ECS, SageMaker, release) runs these same bytes."""
    from .containers import build_bundle_image

    return build_bundle_image(tmp_path_factory)


@pytest.fixture
def metered(tmp_path):
    """Start gunicorn with metrics on their own port, its directory in tmp_path: (server, port)."""
    from devtools.gunicorn_server import GunicornServer, free_port

    started = []

    def start(workers: int = 2, **env):
        port = free_port()
        server = GunicornServer(
            workers=workers, METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(tmp_path), **env
        )
        started.append(server)
        server.wait_healthy()
        return server, port

    yield start
    for server in started:
        server.kill()
