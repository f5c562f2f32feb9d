"""A model's life in the registry, end to end with the real commands: a release is served from
the store, a better one promoted, a worse one (retrained on damaged data) refused by the gate,
and the champion rolled back; every change kept in the history.

Three models are trained once for this module by the project's own training command, signed
with the tests' key, on a fixed split of the shared data set: 268 rows become the frozen
reference set and 268 more the newest data's holdout, neither ever trained on; the older model
learns from 400 of the remaining 802 rows, the newer one from all 802, and the damaged one from
the same 802 rows with the charges shuffled among them (bills joined to the wrong patients).
"""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devtools.gunicorn_server import GunicornServer

from .conftest import QUICK_TRAINING, ROOT

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ("tests.registry_fixtures",)  # moto_endpoint, aws, store
from .registry_fixtures import run_module  # noqa: E402


@dataclass(frozen=True)
class Releases:
    """Trained model directories and the evaluation files, by name."""

    dirs: dict
    reference: Path
    holdout: Path

    def version(self, name: str) -> str:
        card = json.loads((self.dirs[name] / "insurance-charges.card.json").read_text())
        return card["model_version"]


@pytest.fixture(scope="module")
def releases(tmp_path_factory, data_path, private_key_file) -> Releases:
    work = tmp_path_factory.mktemp("releases")
    shuffled = pd.read_csv(data_path).sample(frac=1, random_state=12).reset_index(drop=True)
    training = shuffled.iloc[536:]
    damaged = training.copy()
    damaged["charges"] = np.random.default_rng(7).permutation(damaged["charges"].to_numpy())
    frames = {
        "reference": shuffled.iloc[:268],
        "holdout": shuffled.iloc[268:536],
        "older": training.iloc[:400],
        "newer": training,
        "damaged": damaged,
    }
    for name, frame in frames.items():
        frame.to_csv(work / f"{name}.csv", index=False)
    dirs = {name: work / name for name in ("older", "newer", "damaged")}
    # All three at once: each spends seconds importing and setting up on one core, and the
    # scenario is about the registry, so the quick options suffice (tests/conftest.py).
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "insurance_charges.training",
                "--data",
                work / f"{name}.csv",
                "--out",
                out,
                "--signing-key",
                private_key_file,
                *QUICK_TRAINING,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, out in dirs.items()
    }
    for name, run in runs.items():
        _, stderr = run.communicate(timeout=1200)
        assert run.returncode == 0, (name, stderr[-3000:])
    return Releases(dirs, work / "reference.csv", work / "holdout.csv")


@pytest.fixture
def registry(store, aws, public_key_file):
    """``python -m insurance_charges.registry --store STORE ...`` as the DAG runs it."""
    env = {**aws, "MODEL_PUBLIC_KEY": str(public_key_file)}
    return lambda *argv: run_module(env, "--store", store, *argv)


def served_version(store: str, aws: dict, public_key_file: Path) -> str:
    """What a fresh server started with MODEL_URI=STORE/champion says it serves."""
    server = GunicornServer(
        workers=1, MODEL_URI=f"{store}/champion", MODEL_PUBLIC_KEY=str(public_key_file), **aws
    )
    try:
        server.wait_healthy(timeout=120)
        status, _, body = server.request("/api/v1/model")
        assert status == 200
        return json.loads(body)["model_version"]
    finally:
        server.stop()


def champion_line(listing: str) -> str:
    return next(line for line in listing.splitlines() if line.endswith("champion"))


def test_served_promoted_refused_and_rolled_back(releases, registry, store, aws, public_key_file):
    older, newer, damaged = (releases.version(n) for n in ("older", "newer", "damaged"))

    done = registry("publish", releases.dirs["older"], "--reference-data", releases.reference)
    assert done.returncode == 0 and done.stdout.startswith(f"published {older}"), done.stderr
    done = registry("promote", older, "--evaluation-data", releases.holdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert served_version(store, aws, public_key_file) == older

    assert registry("publish", releases.dirs["newer"]).returncode == 0
    done = registry("promote", newer, "--evaluation-data", releases.holdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  MAE within 5% of the champion's" in done.stdout
    assert f"{newer} is the champion (was {older}; history entry 2)" in done.stdout
    assert served_version(store, aws, public_key_file) == newer

    assert registry("publish", releases.dirs["damaged"]).returncode == 0
    done = registry("promote", damaged, "--evaluation-data", releases.holdout)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"challenger {damaged}, champion {newer}" in done.stdout
    assert "FAIL  MAE within 5% of the champion's" in done.stdout
    assert "refused: " in done.stdout and done.stderr == ""
    assert champion_line(registry("list").stdout).startswith(newer)

    done = registry("rollback", "--reason", "newer model under review")
    assert done.returncode == 0 and done.stdout.startswith(
        f"rolled back: {older} is the champion again (was {newer}; history entry 3)"
    )
    assert served_version(store, aws, public_key_file) == older

    trail = registry("list", "--history").stdout.splitlines()[1:]
    assert [line.split()[2:4] for line in trail] == [
        ["promote", older],
        ["promote", newer],
        ["rollback", older],
    ]
    assert trail[2].endswith("no gate (rollback); reason: newer model under review")


def test_forcing_past_the_gate_is_recorded_with_its_reason(releases, registry):
    newer, damaged = releases.version("newer"), releases.version("damaged")
    assert (
        registry(
            "publish", releases.dirs["newer"], "--reference-data", releases.reference
        ).returncode
        == 0
    )
    assert registry("publish", releases.dirs["damaged"]).returncode == 0
    assert registry("promote", newer, "--evaluation-data", releases.holdout).returncode == 0

    done = registry(
        "promote",
        damaged,
        "--evaluation-data",
        releases.holdout,
        "--force",
        "--reason",
        "incident drill",
    )
    assert (
        done.returncode == 0 and f"{damaged} is the champion (forced past the gate)" in done.stdout
    )
    forced = registry("list", "--history").stdout.splitlines()[-1]
    assert forced.split()[2:4] == ["force-promote", damaged]
    assert "gate failed: MAE within 5% of the champion's" in forced
    assert forced.endswith("; reason: incident drill")

    assert registry("rollback").returncode == 0
    assert champion_line(registry("list").stdout).startswith(newer)
    done = registry("rollback")
    assert done.returncode == 1 and done.stderr.startswith(
        "Error: there is no earlier champion to roll back to"
    )
