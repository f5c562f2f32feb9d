"""``python -m insurance_charges.registry [--store s3://bucket/prefix] COMMAND``.

Exit status: 0 done; 1 an error (one line on stderr: what failed and what to do); 2 a usage
error; 3 the promotion gate refused the version (the comparison table is on stdout); 4 the
champion moved but the rollout to EB/ECS did not come up healthy (the line says what failed).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .. import cli_runner
from ..settings import registry_environ
from . import artifacts, champion, evaluation, gate, reports, rollout
from .store import RegistryError, Store, caller
from .uri import CHAMPION, check_version, parse_store

# ERROR is a UserError's own status, USAGE argparse's, ROLLOUT_FAILED rollout.RolloutFailed's.
OK, ERROR, USAGE, REFUSED, ROLLOUT_FAILED = 0, 1, 2, 3, 4


def _version(text: str) -> str:
    """A VERSION argument, checked before it becomes part of any S3 key (a usage error if not)."""
    try:
        return check_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _version_or_champion(text: str) -> str:
    """``champion``, or a VERSION argument as ``_version`` checks it."""
    return text if text == CHAMPION else _version(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m insurance_charges.registry", description=__doc__.splitlines()[0].strip("`.")
    )
    parser.add_argument("--store", help="s3://bucket/prefix (default: MODEL_STORE)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser("publish", help="upload a trained model directory")
    publish.add_argument("directory", type=Path)
    publish.add_argument(
        "--reference-data",
        type=Path,
        help="CSV that becomes the frozen reference set (first publish only)",
    )
    listing = commands.add_parser("list", help="the published versions")
    listing.add_argument("--history", action="store_true", help="every change of champion")
    commands.add_parser("show", help="one version").add_argument("version", type=_version)
    promote = commands.add_parser("promote", help="make a version the champion, through the gate")
    promote.add_argument("version", type=_version)
    promote.add_argument(
        "--evaluation-data",
        type=Path,
        help="CSV of the newest data's holdout (records with charges)",
    )
    promote.add_argument("--force", action="store_true", help="promote even if the gate refuses")
    promote.add_argument("--reason", help="why (required with --force; kept in the history)")
    rollback = commands.add_parser("rollback", help="back to the champion before this one")
    rollback.add_argument("--reason", help="why (kept in the history)")
    for command in (promote, rollback):
        command.add_argument(
            "--deploy-eb",
            metavar="ENVIRONMENT",
            help="then set MODEL_URI on this EB environment and wait for Ok",
        )
        command.add_argument(
            "--deploy-ecs",
            metavar="CLUSTER/SERVICE",
            help="then roll this ECS service to the version",
        )
    fetch = commands.add_parser("fetch", help="download and verify a version (or champion)")
    fetch.add_argument("version", type=_version_or_champion)
    fetch.add_argument("directory", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status as the module docstring lists them."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "promote" and args.force and not (args.reason or "").strip():
        parser.error('--force needs --reason "...": the history keeps why the gate was overridden')
    if getattr(args, "deploy_ecs", None) and args.deploy_ecs.count("/") != 1:
        parser.error("--deploy-ecs takes CLUSTER/SERVICE")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return cli_runner.run(lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    store_env, trusted = registry_environ()
    text = args.store or store_env
    if not text:
        raise RegistryError("no store given; pass --store s3://bucket/prefix or set MODEL_STORE")
    try:
        store = Store(parse_store(text))
    except ValueError as exc:
        raise RegistryError(f"--store {text!r}: {exc}") from None
    return COMMANDS[args.command](store, trusted, args)


def _publish(store: Store, trusted: tuple, args) -> int:
    release = artifacts.read_directory(args.directory, trusted)
    if args.reference_data or not evaluation.frozen(store):
        evaluation.freeze(store, release.card, args.reference_data, by=_actor())
    fresh = artifacts.publish(store, release)
    print(
        f"{'published' if fresh else 'already published (identical bytes)'} "
        f"{release.version} at {store.location.model_uri(release.version)}"
    )
    return OK


def _list(store: Store, trusted: tuple, args) -> int:
    print(reports.history(store) if args.history else reports.versions(store))
    return OK


def _show(store: Store, trusted: tuple, args) -> int:
    print(reports.show(store, args.version))
    return OK


def _fetch(store: Store, trusted: tuple, args) -> int:
    version = args.version
    if version == CHAMPION:
        pointer = champion.current(store)
        if pointer is None:
            raise RegistryError(f"{store.location.uri()} has no champion yet")
        version = pointer.version
    release = artifacts.fetch(store, version, trusted)
    path = artifacts.write_directory(release, args.directory)
    print(
        f"wrote {path} and its card and signature: {release.version}, signed by key "
        f"{release.signer}"
    )
    return OK


def _actor() -> str:
    return f"{caller()} ({artifacts.who()})"


def _promote(store: Store, trusted: tuple, args) -> int:
    version = args.version
    release = artifacts.fetch(store, version, trusted)
    pointer = champion.current(store)
    if pointer is not None and pointer.version == version:
        if pointer.pending:  # promoted by a run that stopped before writing champion.json
            champion.settle(store, pointer)
        print(f"{version} is already the champion")
        return _roll_out(store, version, args)
    from .promotion import compare  # loads PyCaret's pipelines: only promote needs it

    results, checks = compare(store, release, pointer, args.evaluation_data, trusted)
    passed = all(c.passed for c in checks)
    print(f"challenger {version}, champion {pointer.version if pointer else '(none yet)'}\n")
    print(gate.table(results, checks) + "\n")
    if not passed and not args.force:
        print(
            f"refused: {version} stays a candidate; fix what failed, or override with "
            '--force --reason "..." (recorded)'
        )
        return REFUSED
    entry = champion.promote(
        store,
        version,
        by=_actor(),
        gate=gate.figures(results, checks),
        forced=not passed,
        reason=args.reason,
        pointer=pointer,
    )
    print(
        f"{version} is the champion{' (forced past the gate)' if entry['forced'] else ''}"
        f" (was {entry['previous'] or 'none'}; history entry {entry['sequence']})"
    )
    return _roll_out(store, version, args)


def _rollback(store: Store, trusted: tuple, args) -> int:
    entry = champion.rollback(
        store,
        by=_actor(),
        reason=args.reason,
        check=lambda version: artifacts.fetch(store, version, trusted),
    )
    print(
        f"rolled back: {entry['version']} is the champion again (was {entry['previous']}; "
        f"history entry {entry['sequence']})"
    )
    return _roll_out(store, entry["version"], args)


def _roll_out(store: Store, version: str, args) -> int:
    uri = store.location.model_uri(version)  # pinned: a fleet serves one version
    if args.deploy_eb:
        print(rollout.deploy_eb(args.deploy_eb, uri))
    if args.deploy_ecs:
        cluster, service = args.deploy_ecs.split("/")
        print(rollout.deploy_ecs(cluster, service, uri))
    return OK


COMMANDS = {
    "publish": _publish,
    "list": _list,
    "show": _show,
    "promote": _promote,
    "rollback": _rollback,
    "fetch": _fetch,
}
