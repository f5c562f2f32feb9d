"""``python -m insurance_charges.outcomes join|report``: were the estimates right?

Exit status: 0 done (and, for ``report``, every check passed); 1 ``join`` wrote its files but
rejected some lines (listed in the rejects file); 2 the command could not be done (one ``Error:``
line on stderr); 3 ``report`` found a failed check (a version's likely range no longer holds
its level, or its MAE is too far above its card's); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .. import cli_runner
from . import page, report
from .bills import read_bills
from .capture_files import capture_files, read_captures
from .errors import OutcomesError
from .joining import Places, join, write

DONE, REJECTED, NOT_DONE, FAILED_CHECK, INTERRUPTED = 0, 1, 2, 3, 130


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0 <= value <= 10):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a fraction from 0 to 10 (0.25 allows an MAE 25% above the card's)"
        )
    return value


def parser() -> cli_runner.Parser:
    """The command's arguments."""
    p = cli_runner.Parser(
        prog="python -m insurance_charges.outcomes",
        description="Join captured estimates with the bills that arrived later, and "
        "report how right they were per model version and week.",
        epilog="Exit status: 0 done, 1 join rejected lines, 2 not done, 3 a report "
        "check failed. See docs/outcomes.md.",
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="join|report")
    j = commands.add_parser("join", help="match bills to captured estimates by inference id")
    j.add_argument(
        "--captures",
        required=True,
        metavar="URI",
        help="a capture .jsonl file, or a directory of them (YYYY/MM/DD/HH/*.jsonl)",
    )
    j.add_argument(
        "--actuals",
        required=True,
        metavar="FILE",
        help="the bills: .csv or .parquet with inference_id, charges and optionally billed_at",
    )
    j.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="JOINED",
        help="the joined records (.csv or .parquet); STEM.rejects.EXT and "
        "STEM.unbilled.EXT are written beside it",
    )
    r = commands.add_parser("report", help="accuracy and coverage of joined records")
    r.add_argument("joined", metavar="JOINED", help="what join wrote")
    r.add_argument(
        "--format",
        choices=("json", "html"),
        default="json",
        help="json (default) or a self-contained html page, on stdout",
    )
    r.add_argument(
        "--mae-threshold",
        type=_fraction,
        default=report.MAE_THRESHOLD,
        metavar="X",
        help="fail when a version's MAE is more than this fraction above "
        f"its card's holdout MAE (default {report.MAE_THRESHOLD})",
    )
    r.add_argument(
        "--card",
        action="append",
        metavar="CARD",
        help="a model card (*.card.json) whose version's MAE is checked; repeat for "
        "more versions (default: the committed model's card)",
    )
    return p


def run_join(args: argparse.Namespace) -> int:
    """Join, write the three files, print the summary line."""
    places = Places.beside(args.output)
    files = capture_files(args.captures)
    places.check([*files, Path(args.actuals)])
    joined = join(read_captures(files), read_bills(args.actuals), args.actuals)
    write(joined, places)
    print(joined.summary(places), flush=True)
    return REJECTED if joined.rejected else DONE


def run_report(args: argparse.Namespace, default_card: Path | None) -> int:
    """Report on stdout; the exit status says whether every check passed."""
    chosen = args.card or ([default_card] if default_card else [])
    cards = [report.read_card(Path(c)) for c in chosen]
    versions = [c.model_version for c in cards]
    repeated = {v for v in versions if versions.count(v) > 1}
    if repeated:
        raise OutcomesError(f"--card: two cards are for version {sorted(repeated)[0]}; give one")
    built = report.build(report.read_joined(args.joined), cards, args.mae_threshold)
    if args.format == "html":
        sys.stdout.write(page.render(built))
    else:
        sys.stdout.write(json.dumps(built, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()
    for failure in built["failures"]:
        print(f"Failed: {failure}", file=sys.stderr)
    return FAILED_CHECK if built["failures"] else DONE


def main(argv: list[str] | None = None, default_card: Path | None = None) -> int:
    """Run the command; return its exit status. ``default_card``: ``report``'s card when no
    ``--card`` is given (the entry point passes the committed model's)."""
    # Any failure (a full disk, a closed pipe too) could not be done: 2.
    return cli_runner.run(
        lambda: _command(argv, default_card), explain=_interrupted, statuses={Exception: NOT_DONE}
    )


def _command(argv: list[str] | None, default_card: Path | None) -> int:
    args = parser().parse_args(argv)
    return run_join(args) if args.command == "join" else run_report(args, default_card)


def _interrupted(exc: BaseException) -> OutcomesError | None:
    """Ctrl-C: the line says nothing was written, and the status is 130."""
    if isinstance(exc, KeyboardInterrupt):
        return OutcomesError("interrupted; nothing written", INTERRUPTED)
    return None
