"""Time a training run and its memory peak, workers included: what sizes a training instance.

Usage: ``python -m devtools.training_peak --data insurance.csv [--out FILE.json]``. It runs
``python -m insurance_charges.training`` (as ``make train`` does) with a throwaway signing key,
samples the resident memory of the whole process tree (the command and its joblib workers)
every ``SAMPLE_S``, and prints (and writes) the wall time, the peak of that sum, the load
average at the start, and the CPUs this machine has.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SAMPLE_S = 0.1  # a joblib worker lives for seconds: ten samples a second see each one's peak
MIB = 1024 * 1024


def tree_rss(root: psutil.Process) -> int:
    """Resident bytes of ``root`` and every descendant (shared pages counted in each)."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass  # ended between listing and reading
    return total


def measure(data: Path) -> dict:
    """Train once on ``data``; the wall time, the memory peak and the machine's state."""
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key.pem"
        key.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        load = os.getloadavg()[0]
        started = time.monotonic()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "insurance_charges.training",
                "--data",
                str(data),
                "--out",
                str(Path(tmp) / "model"),
                "--signing-key",
                str(key),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        root, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            try:
                peak = max(peak, tree_rss(root))
            except psutil.NoSuchProcess:
                break
            time.sleep(SAMPLE_S)
        seconds = time.monotonic() - started
        if child.wait() != 0:
            raise SystemExit(f"training failed with status {child.returncode}")
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak / MIB),
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load, 1),
        "command": "python -m insurance_charges.training --data DATA",
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="insurance.csv")
    parser.add_argument("--out", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args(argv)
    figures = measure(args.data)
    text = json.dumps(figures, indent=2) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
