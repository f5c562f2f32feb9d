"""Read the deployment files (Dockerfile, Dockerrun, .ebextensions, nginx) and build EB bundles."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parent.parent
EB_OPTIONS = yaml.safe_load((Path(__file__).with_name("eb_options.yml")).read_text())
# The EB CLI's own virtual environment (made by `make test`; EBCLI_VENV names another).
EBCLI_VENV = ROOT / os.environ.get("EBCLI_VENV", ".venv-ebcli")  # an absolute path stays as is
EBCLI_PYTHON = EBCLI_VENV / "bin" / "python"
EB_FILES = ("Dockerfile", ".dockerignore", "Dockerrun.aws.json", ".ebextensions", ".platform")
ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, split into build stages at each FROM."""
    found = []
    for word, rest in dockerfile():
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
    return found


def exposed_port() -> int:
    """The first port the Dockerfile EXPOSEs."""
    first = next(rest for word, rest in dockerfile() if word == "EXPOSE").split()[0]
    return int(first.split("/")[0])


def image_env() -> dict[str, str]:
    """ENV settings of the final stage (KEY=value form)."""
    env = {}
    for word, rest in stages()[-1]:
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def copy_sources() -> list[str]:
    """Paths the Dockerfile COPYs from the build context (not from other stages)."""
    sources = []
    for word, rest in dockerfile():
        if word == "COPY" and "--from=" not in rest:
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources.extend(p.rstrip("/") for p in parts[:-1])
    return sources


def working_tree_files(paths, root: Path = ROOT) -> set[str]:
    """Files under these project paths, as the build context holds them (no bytecode)."""
    found = set()
    for name in paths:
        path = root / name
        candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        found.update(
            p.relative_to(root).as_posix()
            for p in candidates
            if "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
        )
    return found


# The EB worker environment's own files (its bundle: insurance_charges/release/outputs.py).
WORKER = ROOT / "deploy" / "eb-worker"


def ebextensions_resources(root: Path = ROOT) -> dict:
    """Every Resources entry of root's .ebextensions, in EB's order; a name used twice fails."""
    found: dict = {}
    for path in sorted((root / ".ebextensions").glob("*.config")):
        for name, resource in (yaml.safe_load(path.read_text()).get("Resources") or {}).items():
            assert name not in found, f"{path.name}: resource {name} is defined twice"
            found[name] = resource
    return found


def option_settings(root: Path = ROOT) -> list[tuple[str, str, str, str]]:
    """(file, namespace, option, value) for every setting in root's .ebextensions, in EB's order."""
    found = []
    for path in sorted((root / ".ebextensions").glob("*.config")):
        for namespace, options in yaml.safe_load(path.read_text())["option_settings"].items():
            for option, value in options.items():
                found.append((path.name, namespace, option, value))
    return found


def settings(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """The effective .ebextensions settings by namespace (later files win, as in EB)."""
    merged: dict[str, dict[str, str]] = {}
    for _, namespace, option, value in option_settings(root):
        merged.setdefault(namespace, {})[option] = value
    return merged


def dockerrun() -> dict:
    """Dockerrun.aws.json."""
    return json.loads((ROOT / "Dockerrun.aws.json").read_text())


def nginx_directives(root: Path = ROOT) -> dict[str, str]:
    """Directive -> value from the nginx snippets EB includes (from root's .platform)."""
    found = {}
    for path in sorted((root / ".platform" / "nginx" / "conf.d").glob("*.conf")):
        text = re.sub(r"#[^\n]*", "", path.read_text())
        found.update(re.findall(r"^\s*(\w+)\s+([^;]+);", text, re.M))
    return found


def nginx_size(value: str) -> int:
    """An nginx size (2m, 512k, 1024) in bytes."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def nginx_seconds(value: str) -> float:
    """An nginx time (35s, 1m, 500ms) in seconds."""
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[unit]


def gunicorn_settings(environ: dict[str, str]) -> dict:
    """gunicorn.conf.py evaluated with this environment."""
    with mock.patch.dict(os.environ, environ, clear=True):
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def copy_project(dest: Path) -> Path:
    """A copy of the working tree without the heavy virtual environments and git."""
    skip = shutil.ignore_patterns(
        ".venv", ".venv-ebcli", ".venv-airflow", ".git", "node_modules", ".pytest_cache"
    )
    shutil.copytree(ROOT, dest, ignore=skip, symlinks=True)
    return dest


def eb_bundle(project: Path, label: str = "bundle-test") -> zipfile.ZipFile:
    """Zip ``project`` with the EB CLI's own code, exactly as `eb deploy` does."""
    (project / ".elasticbeanstalk").mkdir(exist_ok=True)
    (project / ".elasticbeanstalk" / "config.yml").write_text(
        "global:\n  application_name: insurance-charges\n  default_region: us-east-1\n"
        "  default_platform: Docker running on 64bit Amazon Linux 2023\n"
    )
    run = subprocess.run(
        [str(EBCLI_PYTHON), str(Path(__file__).with_name("ebcli_bundle.py")), label],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return zipfile.ZipFile(run.stdout.strip().splitlines()[-1])


def bundle_files(bundle: zipfile.ZipFile) -> set[str]:
    """The file names in a bundle, without the directory entries."""
    return {n.removeprefix("./") for n in bundle.namelist() if not n.endswith("/")}


def allowed(rule, value: str) -> bool:
    """Whether a value meets one documented constraint from eb_options.yml."""
    if "enum" in rule:
        return value in rule["enum"]
    if "range" in rule:
        low, high = rule["range"]
        return re.fullmatch(r"-?\d+", value) is not None and low <= int(value) <= high
    if "integer" in rule:
        return re.fullmatch(r"-?\d+", value) is not None
    if "duration" in rule:
        found = ISO_DURATION.fullmatch(value)
        seconds = found and sum(
            int(g or 0) * s for g, s in zip(found.groups(), (3600, 60, 1), strict=True)
        )
        return bool(found) and rule["duration"][0] <= seconds <= rule["duration"][1]
    if "instance_types" in rule:
        types = value.split(",")
        known = EB_OPTIONS["instance_types"]
        return 1 <= len(types) <= 10 and all(t.strip() in known for t in types)
    if "path" in rule:
        return value.startswith("/")
    return "any" in rule


def cfn_lint(template: dict, tmp_path: Path) -> list[dict]:
    """cfn-lint's findings (pinned in requirements-dev.txt; offline: the wheel has its schemas)."""
    path = tmp_path / "ebextensions-resources.json"
    path.write_text(json.dumps(template, indent=2))
    from .conftest import require

    require(CFN_LINT.exists(), f"needs cfn-lint beside {sys.executable} (requirements-dev.txt)")
    run = subprocess.run(
        [str(CFN_LINT), "--format", "json", str(path)], capture_output=True, text=True, timeout=120
    )
    assert run.stderr == "" and run.returncode in (0, 2, 4, 8), run.stderr  # 2/4/8: findings
    return json.loads(run.stdout)
