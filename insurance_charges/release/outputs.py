"""What a release leaves in dist/: its record and an Elastic Beanstalk bundle that pulls the image.

The bundle holds a Dockerrun.aws.json v1 whose ``Image.Name`` is the pushed image by digest
(immutable: every instance, now or after a scale-out next month, runs the same bytes),
Dockerrun's ports and logging directory, ``.ebextensions/`` and ``.platform/``, and no
Dockerfile: with none, EB pulls the image instead of building one on each instance.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from . import eb_files

BUNDLED_DIRS = (".ebextensions", ".platform")


@dataclass(frozen=True)
class ReleaseRecord:
    """One pushed image and where it came from (dist/release.json)."""

    image: str          # repository@sha256:... - what runs
    repository: str
    tag: str
    digest: str
    model_version: str
    git_sha: str
    bundle: str         # the bundle's file name, beside release.json


def image_by_digest(repository: str, digest: str) -> str:
    """The immutable reference ``repository@sha256:...``."""
    return f"{repository}@{digest}"


def bundle_name(tag: str) -> str:
    """The bundle's file name for a tag, as `deploy: artifact:` names it."""
    return f"eb-{tag}.zip"


def write(release: ReleaseRecord, root: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write release.json and the bundle into ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = _atomically(out_dir / release.bundle,
                         lambda path: write_bundle(release.image, root, path))
    record = _atomically(out_dir / "release.json", lambda path: path.write_text(
        json.dumps(asdict(release), indent=2) + "\n"))
    return record, bundle


def _atomically(target: Path, write_to) -> Path:
    partial = target.with_name(target.name + ".partial")
    write_to(partial)
    os.replace(partial, target)  # readers see the whole file or none
    return target


def dockerrun_for(image: str, root: Path) -> dict:
    """The checkout's Dockerrun.aws.json, with the image to pull instead of a build."""
    kept = {key: value for key, value in eb_files.dockerrun(root).items()
            if key not in ("AWSEBDockerrunVersion", "Image")}
    return {"AWSEBDockerrunVersion": "1", "Image": {"Name": image, "Update": "true"}, **kept}


def write_bundle(image: str, root: Path, path: Path) -> None:
    """The source bundle: Dockerrun naming ``image``, then .ebextensions/ and .platform/."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        info = zipfile.ZipInfo(eb_files.DOCKERRUN, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        bundle.writestr(info, json.dumps(dockerrun_for(image, root), indent=2) + "\n",
                        zipfile.ZIP_DEFLATED)
        for name in BUNDLED_DIRS:
            for file in sorted(p for p in (root / name).rglob("*") if p.is_file()):
                # from_file keeps the mode: .platform hooks must stay executable.
                bundle.write(file, file.relative_to(root).as_posix())
