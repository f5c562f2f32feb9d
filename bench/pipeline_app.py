"""The service as it was before the fast path, for `make bench` to compare against.

The deployed app with its model's compiled path removed: every prediction goes through
``pipeline.predict`` and PyCaret's pandas wrappers, as the service did before.
"""
import dataclasses

from insurance_charges import create_app

_KEY = "insurance_model"
application = create_app()  # the deployed app, as application.py builds it
application.extensions[_KEY] = dataclasses.replace(application.extensions[_KEY], fast=None)
