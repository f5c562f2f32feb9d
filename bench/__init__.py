"""`make bench`: measure the service as deployed against an HTTP floor (see bench/README.md)."""
