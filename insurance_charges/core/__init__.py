"""The estimator core: schema, validation, the loaded model, likely ranges (no Flask here)."""
