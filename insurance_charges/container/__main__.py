"""``python -m insurance_charges.container``: the image's command (PID 1)."""
import sys

from .launcher import main

sys.exit(main())
