"""What is released: a commit with nothing uncommitted beside it, and the model it holds.

The image is built from ``git archive`` of that commit, so nothing outside it (an untracked
or git-ignored file in the build context) can reach the image; the clean-tree check makes
sure the person releasing is not expecting uncommitted work to be in it.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import ReleaseError

# The committed model card, read from the commit itself (not from the working tree).
CARD = "model/insurance-charges.card.json"
# Where the release writes its record and bundle: the only path allowed to differ from HEAD.
OUTPUT_DIR = "dist"
# Docker's tag grammar: 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
SHORT_SHA = 7  # git's own default abbreviation; the full SHA is in dist/release.json
SHOWN_CHANGES = 3


@dataclass(frozen=True)
class ReleasedCommit:
    """The commit being released and the model version its card records."""

    git_sha: str
    model_version: str

    @property
    def tag(self) -> str:
        """The image tag: ``<model_version>-<short git sha>``."""
        return f"{self.model_version}-{self.git_sha[:SHORT_SHA]}"


def git(root: Path, *args: str) -> str:
    """Run git in ``root``; its standard output, or ReleaseError with git's own complaint."""
    try:
        run = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise ReleaseError(
            "git is not installed; a release is built from a git commit, "
            "so install git and release from a clone"
        ) from None
    if run.returncode:
        said = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReleaseError(
            f"`git {' '.join(args)}` failed in {root} ({said}); release from a "
            "clone of the repository with at least one commit"
        )
    return run.stdout


def read_source(root: Path) -> ReleasedCommit:
    """The commit at HEAD and its model version; ReleaseError if anything is uncommitted."""
    sha = git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()
    status = git(
        root, "status", "--porcelain", "--untracked-files=all", "--", ".", f":(exclude){OUTPUT_DIR}"
    )
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    if changed:
        more = len(changed) - SHOWN_CHANGES
        listed = ", ".join(changed[:SHOWN_CHANGES]) + (f" and {more} more" if more > 0 else "")
        raise ReleaseError(
            f"the working tree differs from commit {sha[:SHORT_SHA]} ({listed}); "
            "commit or stash the changes, so that the image is that commit"
        )
    return ReleasedCommit(git_sha=sha, model_version=model_version(root, sha))


def model_version(root: Path, sha: str) -> str:
    """The ``model_version`` of the model card committed at ``sha``."""
    fix = f"commit the card `make train` writes ({CARD})"
    try:
        card = json.loads(
            subprocess.run(
                ["git", "show", f"{sha}:{CARD}"],
                cwd=root,
                capture_output=True,
                check=True,
                timeout=120,
            ).stdout
        )
    except subprocess.CalledProcessError:
        raise ReleaseError(
            f"commit {sha[:SHORT_SHA]} holds no model card {CARD}, so the model "
            f"version is unknown; {fix}"
        ) from None
    except ValueError as exc:
        raise ReleaseError(
            f"the model card {CARD} in commit {sha[:SHORT_SHA]} is not JSON ({exc}); {fix}"
        ) from None
    version = card.get("model_version") if isinstance(card, dict) else None
    if not isinstance(version, str) or not TAG.fullmatch(f"{version}-{sha[:SHORT_SHA]}"):
        raise ReleaseError(
            f"the model card {CARD} in commit {sha[:SHORT_SHA]} has no usable "
            f"model_version ({version!r}: it must be letters, digits, '.', '_' "
            f"or '-', as an image tag); {fix}"
        )
    return version


def archive(root: Path, sha: str, dest: Path) -> Path:
    """Write the commit's files as a tar (Docker's build context) to ``dest``.

    Modes 0644/0755 (umask 022), as a checkout has them: Docker's layer cache keys COPY on
    content and mode, so the slow dependency layer built from a checkout is reused.
    """
    git(root, "-c", "tar.umask=022", "archive", "--format=tar", "-o", str(dest), sha)
    return dest
