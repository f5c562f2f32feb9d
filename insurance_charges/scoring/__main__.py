"""``python -m insurance_charges.scoring``: see cli.py."""
import os
import sys

from .cli import main

status = main()
# Everything is written, flushed and committed: skip the interpreter's final garbage
# collection, which walks the model's and PyCaret's millions of objects for seconds.
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
