"""``python -m insurance_charges.release``: see cli.py."""

import sys

from .cli import main

sys.exit(main())
