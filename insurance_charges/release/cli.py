"""``python -m insurance_charges.release``: build once, check, tag, push, record, bundle.

Exit status 0 when released (the record and bundle are in dist/), 2 when not: one
``Error:`` line on stderr says why and what to do. Progress goes to stderr, the result to
stdout.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .. import cli_runner
from ..errors import UsageError, UserError
from ..paths import PROJECT_ROOT
from . import checks, docker_cli, ecr, outputs, source
from .errors import ReleaseError

# host[:port]/path: the host part must be explicit (a '.' or ':' in it, or localhost), so the
# image never lands on Docker Hub by accident; path components as Docker's grammar allows.
REGISTRY = re.compile(
    r"(?P<host>[A-Za-z0-9.-]+(:\d{1,5})?)"
    r"(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+"
)


def parser() -> cli_runner.Parser:
    """The command's arguments."""
    p = cli_runner.Parser(
        prog="python -m insurance_charges.release",
        description="Build the image once from the committed checkout, check it, tag it "
        "<model_version>-<git short sha>, push it, and write "
        "dist/release.json, dist/eb-<tag>.zip (an Elastic Beanstalk bundle "
        "that pulls the image by digest) and dist/eb-worker-<tag>.zip (the same "
        "for a worker environment).",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--registry",
        metavar="HOST[:PORT]/REPOSITORY",
        type=_registry,
        help="any registry `docker push` reaches (log in to it first if needed)",
    )
    where.add_argument(
        "--ecr-repository",
        metavar="NAME",
        help="Amazon ECR: the repository in this account (created if missing)",
    )
    p.add_argument("--region", default="", help="the AWS region, with --ecr-repository")
    p.add_argument(
        "--dist",
        type=Path,
        metavar="DIR",
        help="where the record and bundle go (default: dist/ in the project)",
    )
    return p


def _registry(text: str) -> str:
    found = REGISTRY.fullmatch(text)
    if not found or not (
        "." in found["host"] or ":" in found["host"] or found["host"] == "localhost"
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not host[:port]/repository with an explicit host "
            "(e.g. 127.0.0.1:5000/insurance-charges or registry.example.com/team/insurance)"
        )
    return text


def main(argv: list[str] | None = None, root: Path = PROJECT_ROOT) -> int:
    """Run the release from the checkout at ``root``; the exit status."""
    return cli_runner.run(lambda: _release(argv, root), explain=_explained)


def _release(argv: list[str] | None, root: Path) -> int:
    args = parser().parse_args(argv)
    release, record, bundle = run(args, root, args.dist or root / source.OUTPUT_DIR)
    print(
        f"released {release.image}\n  tag     {release.tag}\n  record  {record}\n"
        f"  bundle  {bundle}\n  worker  {bundle.with_name(release.worker_bundle)}"
    )
    return 0


def _explained(exc: BaseException) -> UserError | None:
    """Anything that stops a release is status 2; what did not say so adds that nothing was
    recorded (a ReleaseError, or a usage error, says what to do instead)."""
    if isinstance(exc, (ReleaseError, UsageError)):
        return ReleaseError(str(exc))
    if isinstance(exc, (Exception, KeyboardInterrupt)):
        return ReleaseError(f"{cli_runner.line_for(exc)}; nothing was recorded")
    return None


def run(args: argparse.Namespace, root: Path, out_dir: Path):
    """Release the commit at ``root``: (the ReleaseRecord, its record's path, its bundle's path)."""
    src = source.read_source(root)
    with _docker_config() as config:
        if args.ecr_repository:
            registry = ecr.prepare(args.ecr_repository, args.region)
            for note in registry.notes:
                _progress(note)
            repository = registry.repository
            digest = ecr.released_digest(args.ecr_repository, args.region, src.tag)
            if digest:
                _progress(
                    f"{repository}:{src.tag} was released already as {digest}; "
                    "writing its record and bundle, not building it again"
                )
            else:
                docker_cli.require_engine()
                docker_cli.login(registry.host, registry.username, registry.password, config)
                digest = _build_check_push(src, root, repository, out_dir, config)
        else:
            repository = args.registry
            docker_cli.require_engine()
            digest = _build_check_push(src, root, repository, out_dir, None)
    release = outputs.ReleaseRecord(
        image=outputs.image_by_digest(repository, digest),
        repository=repository,
        tag=src.tag,
        digest=digest,
        model_version=src.model_version,
        git_sha=src.git_sha,
        bundle=outputs.bundle_name(src.tag),
        worker_bundle=outputs.worker_bundle_name(src.tag),
    )
    return (release, *outputs.write(release, root, out_dir))


def _build_check_push(
    src: source.ReleasedCommit, root: Path, repository: str, out_dir: Path, config: Path | None
) -> str:
    """Build the commit, check that image, push it as repository:tag; the pushed digest."""
    reference = f"{repository}:{src.tag}"
    with tempfile.TemporaryDirectory(prefix="insurance-charges-release-") as tmp:
        _progress(f"building the image from commit {src.git_sha[: source.SHORT_SHA]}")
        context = source.archive(root, src.git_sha, Path(tmp) / "context.tar")
        image = docker_cli.build(
            context,
            {
                "org.opencontainers.image.revision": src.git_sha,
                "org.opencontainers.image.version": src.tag,
            },
            log=out_dir / "docker-build.log",
        )
    _progress(f"checking {image[:19]}: /health, one estimate, no process as root")
    checks.check_image(image, root)
    docker_cli.docker("tag", image, reference)
    _progress(f"pushing {reference}")
    return docker_cli.push(reference, config)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _docker_config():
    """A private Docker config directory for one login, deleted with the token in it."""
    path = Path(tempfile.mkdtemp(prefix="insurance-charges-release-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
