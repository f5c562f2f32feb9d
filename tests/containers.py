"""Docker helpers shared by every test that builds or runs the image."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from .conftest import ROOT, require
from .deploy_files import EBCLI_PYTHON, EBCLI_VENV, copy_project, eb_bundle

# One tag per checkout: two clones testing at once on one engine never run each other's image.
IMAGE_TAG = "insurance-charges:test-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]


def docker(*args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run a docker command; fail with its output if it fails."""
    run = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    output = run.stdout[-3000:] + run.stderr[-3000:]
    assert run.returncode == 0, f"docker {' '.join(args)}:\n{output}"
    return run


def engine_running() -> bool:
    """Whether a Docker engine answers."""
    return (
        bool(shutil.which("docker"))
        and subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0
    )


def build_bundle_image(tmp_path_factory) -> str:
    """The image the bundle `eb deploy` would upload builds into, built as EB builds it."""
    require(engine_running(), "needs a running Docker engine (.ci/run installs docker.io)")
    require(EBCLI_PYTHON.exists(), f"needs the EB CLI's virtual environment {EBCLI_VENV}")
    workdir = tmp_path_factory.mktemp("container")
    eb_bundle(copy_project(workdir / "project")).extractall(workdir / "bundle")
    docker("build", "-t", IMAGE_TAG, str(workdir / "bundle"), timeout=1500)
    return IMAGE_TAG


class Container:
    """A running container and the localhost URL of its mapped port."""

    def __init__(self, name: str, url: str):
        self.name, self.url = name, url

    def inspect(self, template: str) -> str:
        """One value from docker inspect."""
        return docker("inspect", "-f", template, self.name).stdout.strip()

    def request(self, path: str, body=None, form=None, headers: dict | None = None):
        """Status, headers and body of one request (``headers`` added to it)."""
        data = (
            json.dumps(body).encode()
            if body is not None
            else (urllib.parse.urlencode(form).encode() if form is not None else None)
        )
        kind = "application/json" if body is not None else "application/x-www-form-urlencoded"
        sent = {**({"Content-Type": kind} if data else {}), **(headers or {})}
        req = urllib.request.Request(self.url + path, data=data, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            with err:  # closed even when reading its body fails
                return err.code, err.headers, err.read()
