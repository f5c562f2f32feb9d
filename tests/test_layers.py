"""The layers of docs/architecture.md#layers hold: import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter import cli  # noqa: F401  (importing it configures import-linter's adapters)
from importlinter.application import use_cases

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_keeps_every_import_contract(monkeypatch):
    monkeypatch.chdir(ROOT)  # import-linter reads pyproject.toml from the working directory
    # The use case itself, not cli.lint_imports: that one reconfigures logging with
    # dictConfig, which disables every logger already made (later tests' logs went missing).
    assert use_cases.lint_imports(cache_dir=None, no_logo=True) is True


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "module, line, broken",
    [
        (
            "core/schema.py",
            "from ..web import create_app",
            "insurance_charges.core is not allowed to import insurance_charges.web",
        ),
        (
            "serving/model.py",
            "from .. import settings",
            "Settings are read by entry points only BROKEN",
        ),
        ("scoring/cells.py", "import flask", "Only the web layer imports Flask BROKEN"),
        (
            "platforms/sagemaker/decoding.py",
            "from ...web import errors",
            "insurance_charges.platforms is not allowed to import insurance_charges.web",
        ),
        (
            "aws/uri.py",
            "from ..core import schema",
            "insurance_charges.aws is not allowed to import insurance_charges.core",
        ),
        (
            "aws/errors.py",
            "from ..registry import store",
            "insurance_charges.aws is not allowed to import insurance_charges.registry",
        ),
        (
            "platforms/sagemaker/csv_body.py",
            "from ...scoring import cells",
            "insurance_charges.platforms is not allowed to import insurance_charges.scoring",
        ),
        (
            "tables/lines.py",
            "from ..scoring import formats",
            "insurance_charges.tables is not allowed to import insurance_charges.scoring",
        ),
        (
            "tables/json_lines.py",
            "from ..serving import model",
            "insurance_charges.tables is not allowed to import insurance_charges.serving",
        ),
    ],
)
def test_an_import_against_the_layers_is_caught(tmp_path, module, line, broken):
    shutil.copytree(
        ROOT / "insurance_charges",
        tmp_path / "insurance_charges",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "insurance_charges" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import "
            "lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert broken in " ".join(run.stdout.split())
