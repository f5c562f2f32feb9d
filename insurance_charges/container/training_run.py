"""``docker run IMAGE train``: a SageMaker training job in a child process that SIGTERM stops.

SageMaker starts a training container as ``docker run IMAGE train`` and stops one (the job's
stopping condition, StopTrainingJob) as ``docker stop -t 120`` does: SIGTERM, then SIGKILL
120 s later. The job runs in a session of its own (``platforms/sagemaker/training_job.py``),
so that its joblib workers are stopped with it: on SIGTERM the whole group gets SIGTERM, then
SIGKILL after ``STOP_GRACE_S``, and the failure file says the job was stopped. The model is
copied into /opt/ml/model only once trained and signed, so a stopped job leaves none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ..platforms.sagemaker.training_job import OPT_ML, JobPaths, write_failure

TRAIN = "train"
# The whole stop, PyCaret's workers included, measured 1.5 to 1.9 s from `docker stop`
# (docs/deploy/sagemaker-training.md#one-image); 10 s covers a busy host, and leaves 110 of
# SageMaker's 120 s unused.
STOP_GRACE_S = 10
POLL_S = 0.1  # how often the launcher looks at its child; a stop is answered within this


def run(root=OPT_ML) -> int:
    """Run the training job; return its exit status, or 143 when a SIGTERM stopped it."""
    paths = JobPaths(root)
    stop = {"asked": False}

    def ask_stop(*_signal) -> None:
        stop["asked"] = True

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    child = subprocess.Popen(
        [sys.executable, "-m", "insurance_charges.platforms.sagemaker.training_job"],
        start_new_session=True,
    )
    signalled_at = None
    while child.poll() is None:
        if stop["asked"] and signalled_at is None:
            _signal_group(child.pid, signal.SIGTERM)
            signalled_at = time.monotonic()
        elif signalled_at is not None and time.monotonic() - signalled_at > STOP_GRACE_S:
            _signal_group(child.pid, signal.SIGKILL)
        time.sleep(POLL_S)
    _signal_group(child.pid, signal.SIGKILL)  # no worker outlives the job
    if stop["asked"]:
        write_failure(
            paths,
            "Error: stopped by SIGTERM (StopTrainingJob or the job's stopping "
            "condition) before training finished; no model was written",
        )
        return 128 + signal.SIGTERM
    if child.returncode < 0:  # killed: the job itself could not say why
        killed_by = signal.Signals(-child.returncode).name
        hint = " (the instance ran out of memory?)" if child.returncode == -signal.SIGKILL else ""
        line = f"Error: the training process was killed by {killed_by}{hint}; no model was written"
        print(line, file=sys.stderr, flush=True)
        write_failure(paths, line)
        return 1
    return child.returncode


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group has already ended
