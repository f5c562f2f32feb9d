"""``python -m insurance_charges.registry``."""

import sys

from .cli import main

sys.exit(main())
