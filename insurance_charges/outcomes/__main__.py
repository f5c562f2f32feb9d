"""``python -m insurance_charges.outcomes``: see cli.py."""

import sys

from ..core.model_card import path_for
from ..paths import DEFAULT_MODEL_PATH
from .cli import main

# The committed model's card: what report checks MAE against unless --card names others.
sys.exit(main(default_card=path_for(DEFAULT_MODEL_PATH)))
