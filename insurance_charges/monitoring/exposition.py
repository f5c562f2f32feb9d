"""What a scrape sees: every process's metrics merged, plus drift computed from them.

Served by gunicorn's master (master.py, through server.py) at /metrics on METRICS_PORT, and
nowhere else.
"""

from __future__ import annotations

from . import drift, files, state

SEVERITY = {name: i for i, name in enumerate(drift.SEVERITY)}  # ok 0, watch 1, drift 2


class ServiceCollector:
    """Every process's metrics, merged, and the drift gauges computed from them."""

    def __init__(self, watch, window: state.Window):
        self.watch, self.window = watch, window

    def collect(self):
        """One scrape: the files read once, under the archive lock."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        watch = self.watch
        merged, values = files.read_merged(
            watch.directory, watch.layout.size if watch.layout else 0
        )
        yield from merged
        if watch.reference is None:
            return
        served = CounterMetricFamily(
            "insurance_charges_drift_values",
            "Values served, by the training bin they fall in (the card's distribution).",
            labels=["field", "bin"],
        )
        for name, bins in watch.reference.all_bins().items():
            for label, n in zip(bins.labels, values[watch.layout.slices[name]], strict=True):
                served.add_metric([name, label], n)
        yield served
        now = state.counts_from(values, watch.layout, merged)
        doc = state.report(self.watch.reference, now, self.window, self.watch.model_version)
        psi = GaugeMetricFamily(
            "insurance_charges_drift_psi",
            "Population stability index of what was served against the training data.",
            labels=["field", "window"],
        )
        level = GaugeMetricFamily(
            "insurance_charges_drift_status",
            "Drift status: 0 ok, 1 watch, 2 drift (absent below the minimum of records).",
            labels=["field", "window"],
        )
        records = GaugeMetricFamily(
            "insurance_charges_drift_records", "Records compared.", labels=["window"]
        )
        outside = GaugeMetricFamily(
            "insurance_charges_drift_out_of_range_share",
            "Share of records with the field outside the training range.",
            labels=["field", "window"],
        )
        for window in ("since_start", "recent"):
            part = doc[window]
            records.add_metric([window], part["records"])
            for name, item in {**part["fields"], drift.ESTIMATE: part["estimate"]}.items():
                if item["psi"] is not None:
                    psi.add_metric([name, window], item["psi"])
                if item["status"] in SEVERITY:
                    level.add_metric([name, window], SEVERITY[item["status"]])
            for name, item in part["out_of_range"]["fields"].items():
                if item["share"] is not None:
                    outside.add_metric([name, window], item["share"])
        yield from (psi, level, records, outside)


def metrics_app(registry):
    """The WSGI app: the Prometheus text at /metrics, 404 elsewhere."""
    from prometheus_client import make_wsgi_app

    exposition = make_wsgi_app(registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not found: the metrics are at /metrics\n"]
        return exposition(environ, start_response)

    return app
