"""``python -m insurance_charges.scoring``: see cli.py."""

import os
import signal
import sys

from .signals import STOP_SIGNALS


def _stopped_while_loading(signum, frame):
    # Nothing is open or written yet: one line and the signal's status, not a traceback.
    os.write(
        2, f"Error: interrupted by {signal.Signals(signum).name}; no output written\n".encode()
    )
    os._exit(128 + signum)


for _signum in STOP_SIGNALS:  # until main() sets the run's own handler
    signal.signal(_signum, _stopped_while_loading)

from .cli import main  # noqa: E402 - after the handlers: loading pyarrow takes a second

status = main()
for _signum in STOP_SIGNALS:  # the run is over and its status decided
    signal.signal(_signum, signal.SIG_IGN)
# Everything is written, flushed and committed: skip the interpreter's final garbage
# collection, which walks the model's and PyCaret's millions of objects for seconds.
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
