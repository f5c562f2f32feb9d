"""The share of mutants killed per core module, read from mutmut's results in mutants/.

Usage (after `mutmut run`, from the project root): ``python -m devtools.mutation_score
[--min PCT] [--out bench/results/mutation.json]``; exits 1 when the share over all modules is
below PCT. ``--out`` records the figures, from which the docs site renders its table
(docs/testing.md#mutation-testing).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from devtools import host

ROOT = Path(__file__).resolve().parent.parent
# mutmut 3.8 records each mutant's test exit code: 1 (tests failed) or 3 (tests errored) kill
# it; 0 means it survived; None that it was not run yet (an interrupted run); anything else is
# a timeout, a crash or no covering test.
KILLED, SURVIVED, NOT_RUN = {1, 3}, 0, None


Row = tuple[str, int, int, int, int]  # module, killed, survived, not run, total


def scores(mutants: Path) -> list[Row]:
    """(module, killed, survived, not run, total) for every module with at least one mutant."""
    rows = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = list(json.loads(meta.read_text())["exit_code_by_key"].values())
        if not codes:  # nothing to mutate (a package's docstring-only __init__.py): no share
            continue
        module = meta.relative_to(mutants).as_posix().removesuffix(".py.meta").replace("/", ".")
        killed = sum(c in KILLED for c in codes)
        rows.append((module, killed, codes.count(SURVIVED), codes.count(NOT_RUN), len(codes)))
    return rows


def record(rows: list[Row], floor: float | None) -> dict:
    """The figures as bench/results/mutation.json holds them."""
    machine = host.machine()
    # Read once mutmut has finished, so the load is the run's end, not its start.
    machine["load_average_at_end"] = machine.pop("load_average_at_start")
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mutmut": version("mutmut"),
        "machine": machine,
        "floor": floor,
        "modules": [
            {"module": m, "killed": k, "survived": s, "not_run": n, "total": t}
            for m, k, s, n, t in rows
        ],
        "killed": sum(r[1] for r in rows),
        "total": sum(r[4] for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    """Print one line per module and the total; check the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    parser.add_argument("--min", type=float, help="fail below this share of mutants killed (%%)")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    rows = scores(args.mutants)
    if not rows:
        sys.stderr.write(f"no mutmut results under {args.mutants}; run `make mutate`\n")
        return 2
    for module, killed, survived, not_run, total in rows:
        other = total - killed - survived - not_run
        sys.stdout.write(
            f"{module}: {killed}/{total} killed ({100 * killed / total:.1f}%), "
            f"{survived} survived, {other} other" + (f", {not_run} not run\n" if not_run else "\n")
        )
    killed, total = sum(r[1] for r in rows), sum(r[4] for r in rows)
    share = 100 * killed / total
    sys.stdout.write(f"core: {killed}/{total} killed ({share:.1f}%)\n")
    if args.out:
        args.out.write_text(json.dumps(record(rows, args.min), indent=2) + "\n")
    if args.min is not None and share < args.min:
        sys.stderr.write(f"mutation score {share:.1f}% is below the floor of {args.min}%\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
