"""The serving layer: load and verify a model, and the fast path that runs it per request.

Below every way in (web, scorer, SageMaker) and above the pure core; it reads no setting
itself: callers pass the model's path and the trusted keys.
"""
