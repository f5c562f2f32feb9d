"""Prometheus metrics: what each request and answer adds, summed over gunicorn's workers,
kept through worker recycling, and read by a real Prometheus server."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY, Histogram
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from devtools.gunicorn_server import GunicornServer, free_port
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.monitoring import files, metrics, tally
from insurance_charges.settings import SettingsError, from_environ

from .conftest import require

OLDER = {**EXAMPLE_RECORD, "age": 70}  # valid, outside the training range (18 to 64)


def value(name: str, **labels) -> float:
    """A sample's value in this process's registry (0 if it was never recorded)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- What the app records, in one process ------------------------------------------------


def test_a_ten_record_batch_adds_ten_estimates_and_one_batch_size(client, real_model):
    before = value("insurance_charges_estimates_total", model_version=real_model.version)
    sizes = value("insurance_charges_request_records_count", http_route="/api/v1/predict")
    assert client.post("/api/v1/predict", json=[EXAMPLE_RECORD] * 10).status_code == 200
    assert (
        value("insurance_charges_estimates_total", model_version=real_model.version) == before + 10
    )
    assert (
        value("insurance_charges_request_records_count", http_route="/api/v1/predict") == sizes + 1
    )


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/predict", OLDER),
        ("/predict_api", OLDER),
        ("/api/v1/predict", [OLDER, EXAMPLE_RECORD, OLDER]),
    ],
)
def test_values_outside_the_training_range_are_counted_by_field(client, path, body):
    before = value("insurance_charges_input_out_of_range_total", field="age")
    assert client.post(path, json=body).status_code == 200
    sent = 2 if isinstance(body, list) else 1
    assert value("insurance_charges_input_out_of_range_total", field="age") == before + sent


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/csv", "19,female,27.9,0,yes,southwest\n70,male,30.1,1,no,northeast\n"),
        ("application/jsonlines", "\n".join([json.dumps(EXAMPLE_RECORD), json.dumps(OLDER)])),
        ("application/json", json.dumps([EXAMPLE_RECORD, OLDER])),
    ],
)
def test_sagemakers_invocations_count_every_line_they_estimate(
    client, real_model, content_type, body
):
    before = value("insurance_charges_estimates_total", model_version=real_model.version)
    older = value("insurance_charges_input_out_of_range_total", field="age")
    assert client.post("/invocations", data=body, content_type=content_type).status_code == 200
    assert (
        value("insurance_charges_estimates_total", model_version=real_model.version) == before + 2
    )
    assert value("insurance_charges_input_out_of_range_total", field="age") == older + 1


def test_the_form_counts_the_person_it_estimates_not_its_what_ifs(client, real_model):
    before = value("insurance_charges_estimates_total", model_version=real_model.version)
    form = {name: str(v) for name, v in EXAMPLE_RECORD.items()}
    assert client.post("/", data=form).status_code == 200
    assert (
        value("insurance_charges_estimates_total", model_version=real_model.version) == before + 1
    )


def test_requests_are_timed_by_route_template_method_and_status(client):
    labels = {
        "http_request_method": "GET",
        "http_route": "/static/<path:filename>",
        "http_response_status_code": "200",
    }
    before = value("http_server_request_duration_seconds_count", **labels)
    with client.get("/static/style.css") as response:  # a raw path never is a label
        assert response.status_code == 200
    assert value("http_server_request_duration_seconds_count", **labels) == before + 1


@pytest.mark.parametrize(
    "method, path, status, route, problem",
    [
        ("GET", "/no/such/page/123", 404, "", "not-found"),
        ("POST", "/api/v1/model", 405, "", "method-not-allowed"),
        ("POST", "/api/v1/predict", 415, "/api/v1/predict", "unsupported-media-type"),
        ("BREW", "/health", 405, "", "method-not-allowed"),
    ],
)
def test_4xx_answers_are_counted_by_problem_type(client, method, path, status, route, problem):
    shown = method if method != "BREW" else "_OTHER"  # invented methods share one label
    timed = {
        "http_request_method": shown,
        "http_route": route,
        "http_response_status_code": str(status),
    }
    before = (
        value(
            "insurance_charges_problems_total",
            problem_type=problem,
            http_response_status_code=str(status),
        ),
        value("http_server_request_duration_seconds_count", **timed),
    )
    assert client.open(path, method=method, data="x").status_code == status
    assert (
        value(
            "insurance_charges_problems_total",
            problem_type=problem,
            http_response_status_code=str(status),
        ),
        value("http_server_request_duration_seconds_count", **timed),
    ) == (before[0] + 1, before[1] + 1)


def test_no_request_is_left_in_flight(client):
    client.get("/health")
    assert value("http_server_active_requests", http_request_method="GET") == 0


def test_the_model_its_load_time_and_start_up_checks_are_recorded(app, real_model):
    assert (
        value(
            "insurance_charges_model_info",
            model_version=real_model.version,
            estimator="GradientBoostingRegressor",
        )
        == 1
    )
    assert value("insurance_charges_startup_check", check="self_check") == 1
    assert value("insurance_charges_startup_check", check="fastpath_parity") == 1
    assert value("insurance_charges_start_time_seconds") > 1.7e9


def test_the_benchmarks_unmetered_app_answers_the_same_and_records_nothing(client, real_model):
    from bench.unmetered_app import application as unmetered

    before = value("insurance_charges_estimates_total", model_version=real_model.version)
    plain = unmetered.test_client()
    same_id = {"X-Request-ID": "r-1"}
    assert (
        plain.post("/api/v1/predict", json=EXAMPLE_RECORD, headers=same_id).get_json()
        == client.post("/api/v1/predict", json=EXAMPLE_RECORD, headers=same_id).get_json()
    )
    assert (
        value("insurance_charges_estimates_total", model_version=real_model.version) == before + 1
    )  # the metered app's only
    assert plain.get("/api/v1/drift").status_code == 404


def test_observing_a_whole_batch_at_once_equals_observing_one_by_one():
    amounts = [100.0, 2500.0, 2500.01, 9000.0, 80000.0, 80000.0]
    one, many = (
        Histogram(f"check_{n}", "check", registry=None, buckets=metrics.DOLLAR_BUCKETS)
        for n in ("one", "many")
    )
    for amount in amounts:
        one.observe(amount)
    bounds = np.array(many._upper_bounds)
    where = np.searchsorted(bounds, amounts, side="left")
    metrics.observe_many(many, np.bincount(where, minlength=len(bounds)), sum(amounts))

    def counts(histogram):
        return [
            s.value
            for s in histogram.collect()[0].samples
            if s.name.endswith(("_bucket", "_count", "_sum"))
        ]

    assert counts(many) == counts(one) and counts(one)[-1] == sum(amounts)


def test_every_gauge_is_one_the_archive_keeps_or_drops_correctly():
    from prometheus_client import Gauge

    for metric in metrics.ALL:
        if isinstance(metric, Gauge):
            assert metric._multiprocess_mode in ("livesum", "max"), metric._name


# --- Settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ, message",
    [
        (
            {"METRICS_PORT": "0"},
            "METRICS_PORT='0': outside 1 to 65535; set METRICS_PORT to a TCP "
            "port from 1 to 65535 other than PORT",
        ),
        (
            {"METRICS_PORT": "8000"},
            "METRICS_PORT='8000': the app's own port; set METRICS_PORT to another port (e.g. 9100)",
        ),
        ({"PORT": "9100", "METRICS_PORT": "9100"}, "the app's own port"),
        (
            {"PROMETHEUS_MULTIPROC_DIR": __file__},
            "not a directory; set PROMETHEUS_MULTIPROC_DIR to a writable directory",
        ),
    ],
)
def test_unusable_metrics_settings_are_one_line_naming_the_fix(environ, message):
    with pytest.raises(SettingsError) as caught:
        from_environ(environ, cpus=1)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "host",
    [
        "0.0.0.0:9100",
        "http://127.0.0.1",
        "*",
        "256.1.1.1",
        "1.2.3",
        "10.0.0.1/24",
        "-metrics.example",
        "metrics..example",
        "a" * 64 + ".example",
        "x" * 250 + ".com",
        "metrics host",
        "local\nhost",
        "métrique.example",
        "127.0.0.1\x00",
    ],
)
def test_a_metrics_host_that_is_no_address_or_host_name_is_one_line_naming_the_fix(host):
    with pytest.raises(SettingsError) as caught:
        from_environ({"METRICS_PORT": "9100", "METRICS_HOST": host}, cpus=1)
    assert str(caught.value) == (
        f"METRICS_HOST={host[:80]!r}: neither an IP address nor a hostname; set METRICS_HOST to "
        "127.0.0.1 (the default: this machine only), 0.0.0.0 (every interface, for a "
        "Prometheus on another host) or another address of this machine, without a port "
        "(that is METRICS_PORT)"
    )


def test_metrics_settings_are_optional_and_parsed(tmp_path):
    default = from_environ({}, cpus=1)
    assert (default.metrics_port, default.metrics_host) == (None, "127.0.0.1")  # loopback
    got = from_environ({"METRICS_PORT": "9100", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, cpus=1)
    assert (got.metrics_port, got.metrics_dir) == (9100, tmp_path)


@pytest.mark.parametrize(
    "host, parsed",
    [
        ("0.0.0.0", "0.0.0.0"),
        (" 10.0.1.23 ", "10.0.1.23"),
        ("::", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[::1]", "::1"),  # as URLs write it, and as HOST takes it
        ("localhost", "localhost"),
        ("ip-10-0-1-23.eu-west-1.compute.internal", "ip-10-0-1-23.eu-west-1.compute.internal"),
    ],
)
def test_a_metrics_host_is_an_ip_address_or_a_host_name(host, parsed):
    assert from_environ({"METRICS_HOST": host}, cpus=1).metrics_host == parsed


# --- The shared directory: start-up wipe and dead workers' archives ----------------------


def write_process_file(directory: Path, kind: str, owner, samples: list) -> None:
    """A metric file as a process writes it: (metric, sample name, labels, value) each."""
    store = MmapedDict(str(directory / f"{kind}_{owner}.db"))
    for metric, name, labels, amount in samples:
        store.write_value(
            mmap_key(metric, name, list(labels), list(labels.values()), "help"), amount, 0.0
        )
    store.close()


def totals(directory: Path) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in files.read_merged(directory)[0]
        for s in m.samples
    }


RECORDS = "insurance_charges_request_records"
ROUTE = {"http_route": "/api/v1/predict"}


def worker_samples(n: float) -> dict:
    """A worker's files after n rounds of work: counter, histogram and both kinds of gauge."""
    return {
        "counter": [
            (
                "insurance_charges_estimates",
                "insurance_charges_estimates_total",
                {"model_version": "v1"},
                10 * n,
            )
        ],
        "histogram": [
            (RECORDS, RECORDS + "_bucket", {**ROUTE, "le": "1.0"}, n),
            (RECORDS, RECORDS + "_bucket", {**ROUTE, "le": "+Inf"}, 2 * n),
            (RECORDS, RECORDS + "_sum", ROUTE, 30 * n),
        ],
        "gauge_livesum": [
            (
                "http_server_active_requests",
                "http_server_active_requests",
                {"http_request_method": "GET"},
                1,
            )
        ],
        "gauge_max": [
            (
                "insurance_charges_model_info",
                "insurance_charges_model_info",
                {"model_version": "v1"},
                0,
            )
        ],
    }


def test_a_dead_workers_files_fold_into_the_archive_and_no_total_moves(tmp_path):
    for pid, n in ((101, 1), (102, 2), (103, 4)):
        for kind, samples in worker_samples(n).items():
            write_process_file(tmp_path, kind, pid, samples)
    write_process_file(
        tmp_path,
        "gauge_max",
        100,
        [  # the master's
            (
                "insurance_charges_model_info",
                "insurance_charges_model_info",
                {"model_version": "v1"},
                1,
            )
        ],
    )
    before = totals(tmp_path)
    assert files.archive_dead(tmp_path, 101) == 4
    assert files.archive_dead(tmp_path, 102) == 4
    after = totals(tmp_path)
    in_flight = ("http_server_active_requests", (("http_request_method", "GET"),))
    assert after.pop(in_flight) == before.pop(in_flight) - 2  # dead workers' requests ended
    assert after == before  # counters, histogram buckets and sums, the master's gauge
    assert after[("insurance_charges_estimates_total", (("model_version", "v1"),))] == 70
    assert sorted(p.name for p in files.metric_files(tmp_path)) == [
        "counter_103.db",
        "counter_archive.db",
        "gauge_livesum_103.db",
        "gauge_max_100.db",
        "gauge_max_103.db",
        "gauge_max_archive.db",
        "histogram_103.db",
        "histogram_archive.db",
    ]


def test_start_up_removes_every_other_process_s_files_and_nothing_else(tmp_path):
    for owner in (101, "archive", 200):
        write_process_file(tmp_path, "counter", owner, worker_samples(1)["counter"])
        (tmp_path / f"drift_{owner}.counts").write_bytes(bytes(16))
    (tmp_path / files.WINDOW).write_text("[]")
    (tmp_path / "notes.db").write_text("someone else's")
    assert files.wipe_others(tmp_path, 200) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        files.LOCK,
        "counter_200.db",
        "drift_200.counts",
        "notes.db",
    ]


@pytest.mark.slow
def test_drift_counts_of_a_forked_worker_and_a_dead_one_add_up(tmp_path):
    import os

    counts = tally.Tally(3, tmp_path)
    counts.view[0] += 2
    child = os.fork()
    if child == 0:  # the worker: its own file, from zero
        counts.view[1] += 5
        counts.view[0] += 1
        os._exit(0 if counts.values() == [1, 5, 0] else 1)
    assert os.waitpid(child, 0)[1] == 0
    assert counts.values() == [2, 0, 0]
    assert tally.summed(tmp_path, 3) == [3, 5, 0]
    assert files.archive_dead(tmp_path, child) == 1
    assert tally.summed(tmp_path, 3) == [3, 5, 0]  # folded into the archive, nothing lost
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [files.LOCK, "drift_archive.counts", f"drift_{os.getpid()}.counts"]
    )


def test_a_new_process_first_removes_stale_files_bearing_its_own_pid(tmp_path):
    write_process_file(tmp_path, "counter", 300, worker_samples(5)["counter"])
    write_process_file(tmp_path, "counter", 301, worker_samples(5)["counter"])
    files.prepare(tmp_path, 300)
    assert [p.name for p in files.metric_files(tmp_path)] == ["counter_301.db"]


# --- The real server ----------------------------------------------------------------------


def scrape(port: int) -> dict:
    """The metrics endpoint's samples: {(name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def estimates_total(samples: dict) -> float:
    return sum(v for (name, _), v in samples.items() if name == "insurance_charges_estimates_total")


def answering_pids(server) -> set:
    """The workers that answered a prediction, from the JSON access log."""
    return {
        json.loads(line)["pid"]
        for line in list(server.lines)
        if '"type": "access"' in line and '"/api/v1/predict"' in line
    }


@pytest.mark.slow
def test_metrics_are_summed_over_workers_on_their_own_port_only(metered):
    from concurrent.futures import ThreadPoolExecutor

    server, port = metered()
    sent = 0
    with ThreadPoolExecutor(8) as pool:  # concurrent requests, until both workers answered
        while len(answering_pids(server)) < 2 and sent < 400:
            statuses = list(
                pool.map(
                    lambda _: server.request("/api/v1/predict", [EXAMPLE_RECORD] * 10)[0], range(8)
                )
            )
            assert statuses == [200] * 8
            sent += 80
            time.sleep(0.2)  # the access lines are read from the server's output
    assert len(answering_pids(server)) == 2
    assert estimates_total(scrape(port)) == sent
    assert server.request("/metrics")[0] == 404  # never on the app's port
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
    refused.value.close()  # it holds the connection: left to the collector, a leaked socket
    assert server.stop() == 0


@pytest.mark.slow
def test_a_metrics_port_in_use_stops_start_up_with_one_line(tmp_path):
    import socket

    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        taken = held.getsockname()[1]
        server = GunicornServer(METRICS_PORT=str(taken), PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
        try:
            assert server.proc.wait(timeout=90) == 1
        finally:
            server.kill()
    time.sleep(0.3)  # the last lines of output are read by a thread
    assert [line for line in server.lines if line.startswith("Error: ")] == [
        f"Error: METRICS_PORT={taken}: cannot listen (Address already in use); set "
        "METRICS_PORT to a free port\n"
    ]
    assert "Traceback" not in server.output()


@pytest.mark.slow
@pytest.mark.parametrize(
    "host",
    [
        "192.0.2.1",  # TEST-NET-1 (RFC 5737): no machine's address
        "no-such-host.invalid",
    ],
)  # .invalid never resolves (RFC 2606)
def test_a_metrics_host_this_machine_cannot_listen_on_stops_start_up_with_one_line(tmp_path, host):
    server = GunicornServer(
        METRICS_PORT=str(free_port()), METRICS_HOST=host, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)
    )
    try:
        assert server.proc.wait(timeout=90) == 1
    finally:
        server.kill()
    time.sleep(0.3)  # the last lines of output are read by a thread
    errors = [line for line in server.lines if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"Error: METRICS_HOST={host!r}: cannot listen ("
    )
    assert errors[0].endswith(
        "; set METRICS_HOST to an address of this machine: 127.0.0.1 "
        "(this machine only) or 0.0.0.0 (every interface)\n"
    )
    assert "Traceback" not in server.output()


@pytest.mark.slow
def test_start_up_empties_the_directory_of_an_earlier_run(metered, tmp_path):
    write_process_file(
        tmp_path,
        "counter",
        "archive",
        [
            (
                "insurance_charges_estimates",
                "insurance_charges_estimates_total",
                {"model_version": "old"},
                999,
            )
        ],
    )
    server, port = metered()
    assert not (tmp_path / "counter_archive.db").exists()
    assert estimates_total(scrape(port)) == 0


def leftovers(server, directory: Path, timeout: float = 10) -> set:
    """Owners of metric files that are neither a live process nor the archive (after a
    recycle settles)."""
    deadline = time.monotonic() + timeout
    while True:
        live = {str(server.master_pid()), *map(str, server.worker_pids()), "archive"}
        owners = {files.owner(p) for p in files.metric_files(directory)}
        if owners <= live or time.monotonic() > deadline:
            return owners - live
        time.sleep(0.2)


@pytest.mark.slow
def test_recycled_workers_keep_every_count_and_leave_a_bounded_set_of_files(metered, tmp_path):
    server, port = metered(GUNICORN_CMD_ARGS="--max-requests 15 --max-requests-jitter 0")
    seen, sent = [], 0
    for _round in range(12):
        for _ in range(10):
            assert server.request("/api/v1/predict", [EXAMPLE_RECORD] * 3)[0] == 200
            sent += 3
        seen.append(estimates_total(scrape(port)))
    deadline = time.monotonic() + 10
    while estimates_total(scrape(port)) != sent and time.monotonic() < deadline:
        time.sleep(0.2)
    assert estimates_total(scrape(port)) == sent == 360
    assert seen == sorted(seen)  # never backwards, through every recycle
    booted = [line.split("pid: ")[1].strip() for line in server.lines if "Booting worker" in line]
    assert len(booted) >= 8  # 120 requests at 15 per worker: workers were replaced many times
    assert leftovers(server, tmp_path) == set()  # no dead worker's file is left
    assert server.stop() == 0


# --- A real Prometheus server -----------------------------------------------------------

PROMETHEUS = shutil.which("prometheus")


def promql(url: str, query: str) -> list:
    with urllib.request.urlopen(
        f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query}), timeout=5
    ) as response:
        return json.loads(response.read())["data"]["result"]


@pytest.fixture
def prometheus():
    """Debian's Prometheus, scraping a target every second; yields (start(target), url)."""
    require(PROMETHEUS is not None, "needs Debian's prometheus (apt-get install prometheus)")
    work = Path(tempfile.mkdtemp(prefix="prometheus-"))
    port, procs = free_port(), []

    def start(target_port: int) -> str:
        config = work / "prometheus.yml"
        config.write_text(
            json.dumps(
                {  # YAML is a superset of JSON
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "insurance-charges",
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                        }
                    ],
                }
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=20)
    shutil.rmtree(work, ignore_errors=True)


def wait_for(url: str, query: str, want: float, timeout: float = 60) -> float:
    """Poll a PromQL query until its one value equals ``want``; return the last value."""
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            result = promql(url, query)
            got = float(result[0]["value"][1]) if result else None
        except OSError:
            pass
        if got == want:
            return got
        time.sleep(0.5)
    return got


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_counts_the_test_sent(metered, prometheus):
    server, port = metered()
    url = prometheus(port)
    assert wait_for(url, 'up{job="insurance-charges"}', 1) == 1
    for body in ([EXAMPLE_RECORD] * 10, EXAMPLE_RECORD, OLDER, [OLDER, EXAMPLE_RECORD]):
        assert server.request("/api/v1/predict", body)[0] == 200
    assert server.request("/api/v1/predict", {"age": "x"})[0] == 422
    assert wait_for(url, "sum(insurance_charges_estimates_total)", 14) == 14
    assert wait_for(url, 'insurance_charges_input_out_of_range_total{field="age"}', 2) == 2
    assert (
        wait_for(
            url, 'sum(http_server_request_duration_seconds_count{http_route="/api/v1/predict"})', 5
        )
        == 5
    )
    assert wait_for(url, 'insurance_charges_problems_total{problem_type="invalid-values"}', 1) == 1
    assert wait_for(url, "sum(insurance_charges_request_records_count)", 4) == 4
