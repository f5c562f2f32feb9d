"""Outcomes: captured estimates joined with the bills that arrived, and how right they were.

``python -m insurance_charges.outcomes join`` (joining.py) and ``report`` (report.py, page.py);
cli.py is the command. No Flask here; the capture format is the core's (core/captures.py).
"""
