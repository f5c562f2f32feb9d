"""insurance-charges: predict yearly medical insurance charges from six facts.

Rooms: ``core`` (schema, validation, the estimator and its answer), ``fastpath`` (the compiled
pipeline and its parity proof), ``web`` (the Flask app: API, form, docs), ``training`` (the
training command, data, calibration), ``settings`` (every environment variable).
"""
