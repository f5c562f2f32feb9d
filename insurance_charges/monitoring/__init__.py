"""Watching the service in production: Prometheus metrics and input drift.

- ``drift``: the population stability index against the training distribution (numpy only;
  usable by a batch job as well as the service);
- ``metrics``: every metric's name, type, labels and buckets (prometheus_client);
- ``recorder``: what one request and one answer's estimates add to them;
- ``files``: prometheus_client's multiprocess directory, its wipe and dead workers' archives;
- ``state``: the drift counts summed over processes, since start and over a recent window;
- ``watch``: one served model under watch (the web layer's handle);
- ``exposition``: what a scrape sees, drift gauges included;
- ``master``: gunicorn's master: the metrics server on METRICS_PORT and its hooks.

Nothing here imports Flask; nothing imports prometheus_client before the multiprocess
directory is settled (``recorder.activate``).
"""
