"""``python -m insurance_charges.events``: see cli.py."""

import os
import sys

from .cli import main

status = main()
# Every output is acknowledged and every offset committed: skip the interpreter's final
# garbage collection, which walks the model's and PyCaret's millions of objects for seconds
# of a stop's budget.
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
