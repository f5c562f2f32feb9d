"""Training: the data, the PyCaret experiment, the likely range\x27s calibration."""
