"""``python -m insurance_charges.training``: train, calibrate and write the model and its card."""

import sys

from .train import main

sys.exit(main())
