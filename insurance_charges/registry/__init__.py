"""The model registry: releases in S3, a champion with its audit trail, a promotion gate.

``python -m insurance_charges.registry`` (``cli.py``) publishes, lists, shows, promotes, rolls
back and fetches versions; ``serving.py`` serves ``MODEL_URI`` at start-up. Modules by concern:
``uri`` (names), ``store`` (S3 through ``aws``: checked reads and write-once puts),
``artifacts`` (a release's files in and out), ``evaluation`` (the records the gate scores),
``promotion`` (both models loaded and scored), ``gate`` (the checks and the table),
``champion`` (the pointer and its history), ``reports`` (what list and show print),
``rollout`` (EB and ECS). Importing this
package imports no boto3.
"""
