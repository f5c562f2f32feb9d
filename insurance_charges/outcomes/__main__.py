"""``python -m insurance_charges.outcomes``: see cli.py."""
import sys

from .cli import main

sys.exit(main())
