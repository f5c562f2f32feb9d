"""`make bench`: measure the service as deployed against an HTTP floor (see bench/README.md)."""

FLOOR_PATH = "/bench/floor"  # the constant route bench/floor_app.py adds
