"""``python -m insurance_charges.retraining``: see cli.py."""

import sys

from .cli import main

sys.exit(main())
