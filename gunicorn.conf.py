"""Gunicorn settings shared by `make run` and the container (one file, one behaviour)."""
import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# One sync worker per core: a prediction is CPU-bound work that holds the GIL, so threads
# would not add throughput. WEB_CONCURRENCY is the conventional override (EB sets it).
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
worker_class = "sync"
# Load the model once in the master; workers share its memory copy-on-write.
preload_app = True
# The slowest legitimate request (a 10,000-record batch) takes well under 5 s.
timeout = 30
graceful_timeout = 30
keepalive = 5

loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logger_class = "insurance_charges.logs.GunicornJsonLogger"
accesslog = "-"          # JSON access lines on stdout
errorlog = "-"           # gunicorn's own messages on stderr; the app logs JSON to stdout
