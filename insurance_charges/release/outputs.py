"""What a release leaves in dist/: its record and two Elastic Beanstalk bundles that pull the image.

Each bundle holds a Dockerrun.aws.json v1 whose ``Image.Name`` is the pushed image by digest
(immutable: every instance, now or after a scale-out next month, runs the same bytes),
Dockerrun's ports and logging directory, and no Dockerfile: with none, EB pulls the image
instead of building one on each instance. The web bundle adds the checkout's ``.ebextensions/``
and ``.platform/``; the worker bundle adds ``deploy/eb-worker/``'s ``env.yaml`` (the worker
tier), ``.ebextensions/`` and ``.platform/`` instead (docs/events.md).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from . import eb_files

BUNDLED_DIRS = (".ebextensions", ".platform")
# The worker environment's own files, kept apart from the web tier's; what its bundle takes.
WORKER_FILES = Path("deploy") / "eb-worker"
WORKER_BUNDLED = ("env.yaml", ".ebextensions", ".platform")


@dataclass(frozen=True)
class ReleaseRecord:
    """One pushed image and where it came from (dist/release.json)."""

    image: str  # repository@sha256:... - what runs
    repository: str
    tag: str
    digest: str
    model_version: str
    git_sha: str
    bundle: str  # the bundle's file name, beside release.json
    worker_bundle: str  # the worker environment's bundle, beside it


def image_by_digest(repository: str, digest: str) -> str:
    """The immutable reference ``repository@sha256:...``."""
    return f"{repository}@{digest}"


def bundle_name(tag: str) -> str:
    """The bundle's file name for a tag, as `deploy: artifact:` names it."""
    return f"eb-{tag}.zip"


def worker_bundle_name(tag: str) -> str:
    """The worker bundle's file name for a tag."""
    return f"eb-worker-{tag}.zip"


def write(release: ReleaseRecord, root: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write the bundles and release.json into ``out_dir``; the record's and web bundle's paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = _atomically(
        out_dir / release.bundle, lambda path: write_bundle(release.image, root, path)
    )
    _atomically(
        out_dir / release.worker_bundle, lambda path: write_worker_bundle(release.image, root, path)
    )
    record = _atomically(
        out_dir / "release.json",
        lambda path: path.write_text(json.dumps(asdict(release), indent=2) + "\n"),
    )
    return record, bundle


def _atomically(target: Path, write_to) -> Path:
    partial = target.with_name(target.name + ".partial")
    write_to(partial)
    os.replace(partial, target)  # readers see the whole file or none
    return target


def dockerrun_for(image: str, root: Path) -> dict:
    """The checkout's Dockerrun.aws.json, with the image to pull instead of a build."""
    kept = {
        key: value
        for key, value in eb_files.dockerrun(root).items()
        if key not in ("AWSEBDockerrunVersion", "Image")
    }
    return {"AWSEBDockerrunVersion": "1", "Image": {"Name": image, "Update": "true"}, **kept}


def write_bundle(image: str, root: Path, path: Path) -> None:
    """The web tier's source bundle: Dockerrun naming ``image``, .ebextensions/, .platform/."""
    _zip(image, root, root, BUNDLED_DIRS, path)


def write_worker_bundle(image: str, root: Path, path: Path) -> None:
    """The worker tier's bundle: Dockerrun naming ``image`` and deploy/eb-worker's EB files."""
    _zip(image, root, root / WORKER_FILES, WORKER_BUNDLED, path)


def _zip(image: str, root: Path, files: Path, names: tuple[str, ...], path: Path) -> None:
    """Dockerrun (from ``root``) naming ``image``, then ``names`` under ``files``, at the root."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        info = zipfile.ZipInfo(eb_files.DOCKERRUN, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        bundle.writestr(
            info, json.dumps(dockerrun_for(image, root), indent=2) + "\n", zipfile.ZIP_DEFLATED
        )
        for name in names:
            found = [files / name] if (files / name).is_file() else (files / name).rglob("*")
            for file in sorted(p for p in found if p.is_file()):
                # from_file keeps the mode: .platform hooks must stay executable.
                bundle.write(file, file.relative_to(files).as_posix())
