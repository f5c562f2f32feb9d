"""The service without metrics or drift, for `make bench` to measure what they cost.

The deployed app built with ``MONITORING`` off: no request timing, no counters, no drift
counts; everything else (validation, the fast path, logs, headers) is the same.
"""

from insurance_charges.web import create_app

application = create_app({"MONITORING": False})
