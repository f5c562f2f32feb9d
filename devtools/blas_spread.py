"""How far the training figures move with the CPU: retrain on several BLAS kernels, compare.

Usage (from the project root): ``python -m devtools.blas_spread [--data PATH] [--kernels NAME ...]
[--out bench/results/blas-spread.json]``. Each run is the real training command in a child process
with OpenBLAS forced to one kernel (``OPENBLAS_CORETYPE``); one more keeps this CPU's kernel on one
BLAS thread, and one runs the generic kernel with numpy's run-time SIMD switched off too, as the
oldest x86-64 CPU would. For each part of the card made of figures (the model's metrics, the
tutorials' model's, the likely range, the training distribution, the drivers) it prints the largest
relative spread between runs and every figure that moved; ``--out`` records them, and the docs site
renders its table from that file (docs/training.md#how-reproducible-training-is).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal

# Only this interpreter is started, with fixed arguments and no shell.
import subprocess  # nosec B404
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from devtools import host

ROOT = Path(__file__).resolve().parent.parent
# The x86-64 kernels of OpenBLAS's DYNAMIC_ARCH builds (the ones numpy's and scipy's wheels
# ship), oldest first; a name outside this list is refused rather than silently ignored.
KERNELS = (
    "Prescott",
    "Core2",
    "Penryn",
    "Dunnington",
    "Nehalem",
    "Atom",
    "Sandybridge",
    "Haswell",
    "SkylakeX",
    "Cooperlake",
    "Barcelona",
    "Bulldozer",
    "Piledriver",
    "Steamroller",
    "Excavator",
    "Zen",
)
# Prescott is the generic kernel any x86-64 CPU runs (the one of the host where the
# committed baseline once failed to reproduce); then one per vector width: SSE4.2, AVX, AVX2,
# AVX-512.
GENERIC = "Prescott"
DEFAULT_KERNELS = (GENERIC, "Nehalem", "Sandybridge", "Haswell", "SkylakeX")
# Every part of the card made of figures; the rest names things or says when.
PARTS = ("metrics", "baseline", "interval", "distribution", "drivers")
# One training takes about a minute on 2 cores; ten is far beyond a slow machine's worst.
RUN_TIMEOUT_SECONDS = 600
# What a child reports about itself: the kernel each OpenBLAS runs, its threads, numpy's SIMD.
PROBE = (
    "import json, scipy.linalg, threadpoolctl\n"
    "from devtools.blas_spread import simd_features\n"
    "print(json.dumps({'blas': sorted({(i['version'], i['architecture'], i['num_threads'])"
    " for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'}),"
    " 'simd': simd_features()}))"
)


class SpreadError(Exception):
    """A run could not be made or compared; the message says which and why."""


@dataclass
class Run:
    """One training: what it forced, what it ran on, and its card."""

    label: str
    env: dict[str, str]
    ran_on: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)


def simd_features() -> list[str]:
    """The SIMD features numpy's loops use here beyond its build's baseline (SSE3)."""
    # The lists numpy.show_runtime() reads; numpy has no public name for them.
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def oldest_cpu() -> dict[str, str]:
    """The environment in which a child computes as the oldest x86-64 CPU would.

    OpenBLAS's generic kernel, and numpy's loops without SIMD beyond its baseline.
    """
    features = simd_features()
    return {
        "OPENBLAS_CORETYPE": GENERIC,
        **({"NPY_DISABLE_CPU_FEATURES": " ".join(features)} if features else {}),
    }


def runs_for(kernels: list[str]) -> list[Run]:
    """This CPU's kernel, then the same on one BLAS thread, each forced kernel, the oldest CPU."""
    runs = [Run("this CPU", {}), Run("this CPU, 1 BLAS thread", {"OPENBLAS_NUM_THREADS": "1"})]
    runs += [Run(name, {"OPENBLAS_CORETYPE": name}) for name in kernels]
    return runs + [Run(f"{GENERIC}, numpy without SIMD", oldest_cpu())]


def child(args: list[str], env: dict[str, str], what: str) -> str:
    """Run this interpreter with ``args`` and ``env`` added; its stdout, or SpreadError."""
    # Its own process group, so that a timeout or Ctrl-C also ends PyCaret's loky workers.
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # nosec B603
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise SpreadError(f"{what} took over {RUN_TIMEOUT_SECONDS} s") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode < 0:  # a kernel this CPU lacks dies of SIGILL
        raise SpreadError(
            f"{what} was killed by {signal.Signals(-proc.returncode).name}; if "
            "it forced a kernel, this CPU cannot run it: leave it out"
        )
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["(nothing on stderr)"])[-1]
        raise SpreadError(f"{what} exited {proc.returncode}: {last}")
    return out


def train(run: Run, data: Path | None, work: Path, key: Path) -> None:
    """Train once under the run's environment and keep what it ran on and its card."""
    what = f"the run on {run.label}"
    run.ran_on = json.loads(child(["-c", PROBE], run.env, what))
    forced = run.env.get("OPENBLAS_CORETYPE")
    kernels = {kernel for _, kernel, _ in run.ran_on["blas"]}
    if forced is not None and kernels != {forced}:
        raise SpreadError(
            f"OPENBLAS_CORETYPE={forced} ran {', '.join(sorted(kernels))} here: "
            f"this CPU cannot run {forced}; leave it out of --kernels"
        )
    out = work / f"run{len(list(work.iterdir()))}"
    command = ["-m", "insurance_charges.training", "--out", str(out), "--signing-key", str(key)]
    child(command + (["--data", str(data)] if data is not None else []), run.env, what)
    run.card = json.loads((out / "insurance-charges.card.json").read_text(encoding="utf-8"))


def numbers(tree, prefix: str = "") -> dict[str, float]:
    """Every number in a nested card section (lists too), by its path."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = enumerate(tree)
    else:
        number = isinstance(tree, (int, float)) and not isinstance(tree, bool)
        return {prefix: tree} if number else {}
    return {
        path: value for key, sub in items for path, value in numbers(sub, f"{prefix}/{key}").items()
    }


def spread(values: list[float]) -> float:
    """(largest − smallest) / the largest in size: the relative tolerance the figure needs."""
    low, high = min(values), max(values)
    return 0.0 if high == low else (high - low) / max(abs(low), abs(high))


def compare(runs: list[Run]) -> list[dict]:
    """Each part's figures across the runs: how many, the largest spread, what moved."""
    parts = []
    for part in PARTS:
        figures = [numbers(run.card[part]) for run in runs]
        if any(set(f) != set(figures[0]) for f in figures):
            raise SpreadError(f"the runs' cards have different {part} figures; compare by hand")
        moved = {path: spread([f[path] for f in figures]) for path in figures[0]}
        worst = max(moved, key=moved.__getitem__)
        parts.append(
            {
                "part": part,
                "figures": len(moved),
                "largest_spread": moved[worst],
                "largest_at": worst if moved[worst] > 0 else None,
                "moved": [
                    {"figure": path, "spread": rel, "values": [f[path] for f in figures]}
                    for path, rel in sorted(moved.items())
                    if rel > 0
                ],
            }
        )
    return parts


def same_in_every_run(runs: list[Run], key: str) -> dict[str, list[int]]:
    """The card's ``key`` in each run: value -> the runs (from 1) that wrote it."""
    runs_by_value: dict[str, list[int]] = {}
    for i, run in enumerate(runs, start=1):
        runs_by_value.setdefault(run.card[key], []).append(i)
    return runs_by_value


def record(runs: list[Run]) -> dict:
    """The measurement as bench/results/blas-spread.json holds it."""
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": host.machine(),
        "runs": [
            {
                "label": run.label,
                "env": run.env,
                "openblas": [
                    {"version": version, "kernel": kernel, "threads": threads}
                    for version, kernel, threads in run.ran_on["blas"]
                ],
                "numpy_simd": run.ran_on["simd"],
            }
            for run in runs
        ],
        "estimator": same_in_every_run(runs, "estimator"),
        "pipeline_sha256": same_in_every_run(runs, "pipeline_sha256"),
        "parts": compare(runs),
    }


def report(result: dict) -> list[str]:
    """The lines printed: what each run ran on, then each part's largest spread and movers."""
    lines = [
        f"run {i}: {run['label']}: OpenBLAS "
        + "; ".join(f"{b['version']} {b['kernel']} x{b['threads']}" for b in run["openblas"])
        + f"; numpy SIMD {' '.join(run['numpy_simd']) or 'none beyond the baseline'}"
        for i, run in enumerate(result["runs"], start=1)
    ]
    for key in ("estimator", "pipeline_sha256"):
        lines.append(
            f"{key}: "
            + "; ".join(
                f"{value} (runs {', '.join(map(str, seen))})" for value, seen in result[key].items()
            )
        )
    for part in result["parts"]:
        lines.append(
            f"{part['part']}: {part['figures']} figures, largest relative spread "
            f"{part['largest_spread']:.2g}"
            + (f" ({part['largest_at']})" if part["largest_at"] else "")
        )
        lines += [
            f"  {moved['figure']}: spread {moved['spread']:.2g}: "
            + " ".join(repr(v) for v in moved["values"])
            for moved in part["moved"]
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Train under each kernel, print the spread; one ``Error:`` line and 1 if a run fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, help="insurance.csv (default: the training command's checked download)"
    )
    parser.add_argument(
        "--kernels",
        nargs="+",
        default=list(DEFAULT_KERNELS),
        choices=KERNELS,
        metavar="NAME",
        help=f"OpenBLAS kernels to force, of: {' '.join(KERNELS)}"
        f" (default: {' '.join(DEFAULT_KERNELS)})",
    )
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.data is not None and not args.data.is_file():
        sys.stderr.write(f"Error: --data {args.data} is not a file; give insurance.csv's path\n")
        return 1
    if args.out is not None and not args.out.parent.is_dir():  # before the runs, not after
        sys.stderr.write(
            f"Error: --out {args.out}: no folder {args.out.parent}; give a path in "
            "an existing folder\n"
        )
        return 1
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        with tempfile.TemporaryDirectory() as tmp:
            key, work = Path(tmp) / "key.pem", Path(tmp) / "runs"
            work.mkdir()
            # A throwaway key: these models are compared, never served.
            key.write_bytes(
                Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            runs = runs_for(args.kernels)
            for i, run in enumerate(runs):
                sys.stderr.write(f"run {i + 1} of {len(runs)}: {run.label}\n")
                train(run, args.data.resolve() if args.data else None, work, key)
        result = record(runs)
    except SpreadError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted; nothing was measured\n")
        return 130  # 128 + SIGINT, as a shell reports it
    sys.stdout.write("\n".join(report(result)) + "\n")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
