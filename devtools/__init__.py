"""Helpers shared by the tests and the benchmark (never shipped: not in the image or bundle)."""
