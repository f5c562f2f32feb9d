"""The weekly retraining's steps as the image runs them (``docker run IMAGE retrain STEP``)."""
