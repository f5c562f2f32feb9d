"""The service as it was before the fast path, for `make bench` to compare against.

The deployed app with its model's compiled path removed: every prediction goes through
``pipeline.predict`` and PyCaret's pandas wrappers, as the service did before.
"""

import dataclasses

from insurance_charges.paths import DEFAULT_MODEL_PATH
from insurance_charges.serving.model import load_model
from insurance_charges.web import create_app

application = create_app({"MODEL": dataclasses.replace(load_model(DEFAULT_MODEL_PATH), fast=None)})
