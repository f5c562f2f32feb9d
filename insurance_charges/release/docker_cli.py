"""The docker CLI, as a release drives it: build from the commit's archive, tag, log in, push.

Every failure becomes one ReleaseError line. A registry password only ever travels on
standard input (`docker login --password-stdin`), into a Docker config directory that the
caller deletes afterwards, so it is never on a command line, in a log or left on disk.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from .errors import ReleaseError

BUILD_SECONDS = 1800  # a build without cache measured 152 s here; a slow machine gets 12x
COMMAND_SECONDS = 120
PUSH_SECONDS = 1800  # 865 MB the first time, over whatever link the registry is behind
PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def docker(
    *args: str, config: Path | None = None, timeout: float = COMMAND_SECONDS, **kwargs
) -> str:
    """Run one docker command; its standard output, or ReleaseError with its last line.

    With ``config`` (a private config directory), the engine is named explicitly: that
    directory has none of the user's contexts (Docker Desktop's, say).
    """
    private = ["--config", str(config), "--host", engine_address()] if config else []
    command = ["docker", *private, *args]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except FileNotFoundError:
        raise ReleaseError(
            "the docker command is not installed; install Docker (Debian: "
            "apt-get install docker.io) and start its engine"
        ) from None
    except subprocess.TimeoutExpired:
        raise ReleaseError(
            f"`docker {args[0]}` did not finish within {timeout:.0f} s; check "
            "the engine (`docker info`) and the network, then release again"
        ) from None
    if run.returncode:
        raise ReleaseError(f"`docker {args[0]}` failed: {last_line(run.stderr, run.stdout)}")
    return run.stdout


def last_line(*outputs: str) -> str:
    """The last non-blank line of the first output that has one."""
    for text in outputs:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no output"


@functools.lru_cache(maxsize=1)
def engine_address() -> str:
    """The address of the engine the current Docker context talks to."""
    return docker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}").strip()


def require_engine() -> None:
    """ReleaseError unless a Docker engine answers."""
    try:
        docker("info", "--format", "{{.ServerVersion}}")
    except ReleaseError as exc:
        raise ReleaseError(
            f"no Docker engine answers ({exc}); start one (`dockerd`, or "
            "Docker Desktop) and release again"
        ) from None


def build(context_tar: Path, labels: dict[str, str], log: Path) -> str:
    """Build the Dockerfile in a tar build context; the new image's ID (sha256:...)."""
    iidfile = context_tar.with_name("image-id")
    label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    with open(context_tar, "rb") as context:
        run = subprocess.run(
            ["docker", "build", "--iidfile", str(iidfile), *label_args, "-"],
            stdin=context,
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
        )
    if run.returncode:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(run.stdout + run.stderr)
        raise ReleaseError(
            f"`docker build` failed: {last_line(run.stderr, run.stdout)} (the whole output: {log})"
        )
    return iidfile.read_text().strip()


def login(registry: str, username: str, password: str, config: Path) -> None:
    """Log in to ``registry``, the password on standard input, the token kept in ``config``."""
    docker(
        "login", "--username", username, "--password-stdin", registry, config=config, input=password
    )


def push(reference: str, config: Path | None) -> str:
    """Push ``reference``; the manifest digest the registry answered with."""
    output = docker("push", reference, config=config, timeout=PUSH_SECONDS)
    found = PUSHED.findall(output)
    if not found:
        raise ReleaseError(
            f"`docker push {reference}` reported no digest "
            f"({last_line(output)}); push it by hand to see why"
        )
    return found[-1]
