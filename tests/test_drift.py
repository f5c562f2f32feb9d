"""Input drift: the card's training distribution, the population stability index, and what the
service reports about the records it received, summed over its workers."""

from __future__ import annotations

import dataclasses
import json
import math
import urllib.request

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from devtools.gunicorn_server import GunicornServer, free_port
from insurance_charges.core.schema import FIELD_NAMES
from insurance_charges.monitoring import drift, state
from insurance_charges.monitoring.recorder import MonitoringError
from insurance_charges.training import card_writer
from insurance_charges.web import create_app

HOUR = state.WINDOW_SECONDS


@pytest.fixture(scope="module")
def reference(real_model):
    return drift.read_reference(real_model.card["distribution"])


@pytest.fixture(scope="module")
def training(data_path):
    return pd.read_csv(data_path)[list(FIELD_NAMES)]


def counts_of(reference, frame: pd.DataFrame, estimates, now: float = 0.0) -> state.Counts:
    bins = {name: reference.fields[name].count(frame[name]).tolist() for name in FIELD_NAMES}
    bins[drift.ESTIMATE] = reference.estimate.count(estimates).tolist()
    return state.Counts(now, bins, {})


def older_smokers(frame: pd.DataFrame, count: int, seed: int = 7) -> pd.DataFrame:
    """Records of smokers aged 50 or more, drawn from the training rows."""
    pool = frame[(frame["smoker"] == "yes") & (frame["age"] >= 50)]
    return pool.sample(count, replace=True, random_state=seed)


# --- The statistic -----------------------------------------------------------------------


def test_a_constant_column_gets_one_edge_at_its_value_and_reads_back_from_the_card():
    bins = drift.numeric_bins(drift.ESTIMATE, [4200.0] * 50)  # a useless model's estimates
    assert (bins.edges, bins.shares) == ((4200.0,), (1.0, 0.0))
    card = bins.to_card()
    assert card["labels"] == ["<= 4200", "> 4200"]
    assert drift._bins_from(drift.ESTIMATE, card) == bins


def test_psi_is_zero_for_the_same_shares_and_symmetric():
    assert drift.psi([0.2, 0.3, 0.5], [20, 30, 50]) == 0
    assert drift.psi([0.2, 0.8], [0.5, 0.5]) == pytest.approx(drift.psi([0.5, 0.5], [0.2, 0.8]))


def test_psi_is_the_sum_of_share_differences_times_their_log_ratio():
    expected = (0.6 - 0.5) * math.log(0.6 / 0.5) + (0.4 - 0.5) * math.log(0.4 / 0.5)
    assert drift.psi([0.5, 0.5], [60, 40]) == pytest.approx(expected)


def test_categories_counted_by_code_equal_those_counted_by_value():
    bins = drift.Bins("region", "category", categories=("southwest", "northeast", "southeast"))
    choices = ("northeast", "northwest", "southeast", "southwest")
    values = ["southwest", "northwest", "northeast", "southwest", "southeast", "northwest"]
    codes = np.array([choices.index(v) for v in values])
    # northwest has no bin on this card: counted by neither way
    assert bins.count_codes(codes, choices).tolist() == bins.count(values).tolist() == [2, 1, 1]


def test_an_empty_bin_counts_as_a_tiny_share_not_an_infinite_one():
    got = drift.psi([0.5, 0.5], [100, 0])
    floor = drift.SHARE_FLOOR
    assert got == pytest.approx(
        (1 - 0.5) * math.log(1 / 0.5) + (floor - 0.5) * math.log(floor / 0.5)
    )
    with pytest.raises(ValueError, match="no values"):
        drift.psi([0.5, 0.5], [0, 0])


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.0, "ok"),
        (0.0999, "ok"),
        (0.1, "watch"),
        (0.2499, "watch"),
        (0.25, "drift"),
        (3.0, "drift"),
    ],
)
def test_status_follows_the_rule_of_thumb(value, expected):
    assert drift.status(value) == expected


def test_a_status_is_given_only_from_the_minimum_of_records(reference):
    bins = reference.fields["smoker"]
    assert drift.assess(bins, [1, 0])["status"] == drift.TOO_FEW
    assert drift.assess(bins, [0, drift.MIN_RECORDS])["status"] == "drift"
    assert drift.assess(bins, [0, 0]) == {
        "psi": None,
        "status": drift.TOO_FEW,
        "records": 0,
        "bins": [
            {"bin": "yes", "training": 0.2048, "served": 0.0},
            {"bin": "no", "training": 0.7952, "served": 0.0},
        ],
    }


# --- The card's distribution -------------------------------------------------------------


def test_numbers_fall_in_bins_closed_on_the_right(reference):
    age = reference.fields["age"]
    assert age.edges[:2] == (19, 24) and age.labels[:2] == ("<= 19", "(19, 24]")
    assert [age.index(v) for v in (18, 19, 20, 24, 25, 64, 100)] == [0, 0, 1, 1, 2, 9, 9]
    assert age.count([18, 19, 20, 24, 25, 64, 100]).tolist() == [2, 2, 1, 0, 0, 0, 0, 0, 0, 2]


def test_the_card_records_every_inputs_training_distribution(real_model, training, reference):
    card = real_model.card["distribution"]
    assert card["rows"] == reference.rows == 1338
    assert list(card["fields"]) == list(FIELD_NAMES)
    smoker = reference.fields["smoker"]
    assert smoker.categories == ("yes", "no")
    assert smoker.shares == pytest.approx(
        [(training["smoker"] == "yes").mean(), (training["smoker"] == "no").mean()], abs=1e-6
    )
    for name in ("age", "bmi", "estimate"):  # deciles: about a tenth of the rows in each bin
        assert len(reference.all_bins()[name].shares) == 10
        assert max(reference.all_bins()[name].shares) < 0.11


def test_the_cards_distribution_is_what_training_computes(real_model, training):
    again = card_writer.distribution(training, real_model.pipeline.predict(training))
    assert json.loads(json.dumps(again)) == real_model.card["distribution"]


def test_the_card_records_what_drives_estimates_overall(real_model):
    drivers = real_model.card["drivers"]
    assert drivers["order"][0] == "smoker"  # by far the largest average change
    smoker = drivers["fields"]["smoker"]
    assert (
        smoker["values"] == ["yes", "no"]
        and smoker["mean_estimate"][0] > 3 * smoker["mean_estimate"][1]
    )
    bmi = drivers["fields"]["bmi"]
    assert len(bmi["values"]) == len(bmi["mean_estimate"]) == len(bmi["by_smoker"]["yes"])
    # BMI matters for smokers, hardly for non-smokers: the average would hide it.
    spread = {s: max(v) - min(v) for s, v in bmi["by_smoker"].items()}
    assert spread["yes"] > 4 * spread["no"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["fields"].pop("age"), "distribution entry age must be an object"),
        (
            lambda d: d["fields"]["bmi"]["shares"].pop(),
            "bmi must hold its bins and one share per bin",
        ),
        (
            lambda d: d["fields"]["sex"].update(categories=["male", "female"]),
            "sex must have the categories female, male",
        ),
        (lambda d: d["fields"]["age"]["edges"].reverse(), "age must have increasing edges"),
        (lambda d: d.pop("estimate"), "distribution entry estimate must be an object"),
        (lambda d: d.update(rows=0), "distribution.rows must be a positive whole number"),
    ],
)
def test_a_faulty_distribution_stops_start_up_with_one_line(real_model, edit, message):
    card = json.loads(json.dumps(real_model.card))
    edit(card["distribution"])
    with pytest.raises(MonitoringError, match=message) as caught:
        create_app({"TESTING": True, "MODEL": dataclasses.replace(real_model, card=card)})
    assert "run `make train`" in str(caught.value)


def test_a_model_without_a_distribution_serves_and_says_drift_needs_one(real_model):
    card = {k: v for k, v in real_model.card.items() if k != "distribution"}
    client = create_app(
        {"TESTING": True, "MODEL": dataclasses.replace(real_model, card=card)}
    ).test_client()
    assert client.get("/health").status_code == 200
    answer = client.get("/api/v1/drift")
    assert answer.status_code == 404 and "retrain it" in answer.get_json()["detail"]


# --- Reports on streams ------------------------------------------------------------------


def test_a_stream_sampled_from_the_training_data_stays_ok(reference, training, real_model):
    sample = training.sample(1000, replace=True, random_state=11)
    counts = counts_of(reference, sample, real_model.predict(sample.to_dict("records")))
    part = state.section(reference, counts, since=0)
    assert part["records"] == 1000 and part["status"] == "ok"
    assert {name: f["status"] for name, f in part["fields"].items()} == dict.fromkeys(
        FIELD_NAMES, "ok"
    )
    assert part["estimate"]["status"] == "ok"
    assert max(f["psi"] for f in part["fields"].values()) < 0.05


def test_a_stream_of_older_smokers_flags_age_smoker_and_the_estimates(
    reference, training, real_model
):
    sample = older_smokers(training, 600)
    counts = counts_of(reference, sample, real_model.predict(sample.to_dict("records")))
    part = state.section(reference, counts, since=0)
    assert part["fields"]["age"]["status"] == part["fields"]["smoker"]["status"] == "drift"
    assert part["estimate"]["status"] == "drift"  # older smokers are billed far more
    assert part["status"] == "drift"
    assert part["fields"]["smoker"]["bins"][0] == {"bin": "yes", "training": 0.2048, "served": 1.0}


def test_recent_is_now_minus_the_snapshot_from_an_hour_ago(reference, training, real_model):
    old = training.sample(700, replace=True, random_state=3)
    new = older_smokers(training, 700)
    first = counts_of(reference, old, real_model.predict(old.to_dict("records")), now=1000)
    both = pd.concat([old, new])
    now = counts_of(
        reference, both, real_model.predict(both.to_dict("records")), now=1000 + HOUR + 30
    )
    now = dataclasses.replace(now, start=900)
    window = state.Window()
    window.add(dataclasses.replace(first, time=950))  # too old once the next one is an hour old
    window.add(first)
    window.add(dataclasses.replace(first, time=1000 + 60))  # younger than an hour
    doc = state.report(reference, now, window, "v")
    assert doc["since_start"]["records"] == 1400 and doc["recent"]["records"] == 700
    assert doc["recent"]["fields"]["smoker"]["bins"][0]["served"] == 1.0
    assert doc["recent"]["seconds"] == HOUR + 30
    assert doc["since_start"]["seconds"] == HOUR + 130


def test_a_younger_service_compares_everything_since_its_first_snapshot(reference):
    zero = state.Counts(
        100, {name: [0] * len(b.labels) for name, b in reference.all_bins().items()}, {}
    )
    window = state.Window([zero])
    assert window.baseline(now=100 + 600) is zero
    assert state.Window().baseline(now=5) is None


def test_the_window_keeps_a_little_over_an_hour_and_survives_a_file(tmp_path, reference):
    window = state.Window()
    for minute in range(200):
        window.add(state.Counts(minute * 60.0, {"estimate": [minute]}, {"age": minute}))
    assert len(window.snapshots) == HOUR // state.SNAPSHOT_SECONDS + 2
    window.write(tmp_path)
    again = state.Window.read(tmp_path)
    assert [s.to_json() for s in again.snapshots] == [s.to_json() for s in window.snapshots]
    assert state.Window.read(tmp_path / "missing").snapshots == []


def test_the_drift_document_matches_its_openapi_schema(client, record):
    client.post("/api/v1/predict", json=[record] * 3)
    doc = client.get("/openapi.json").get_json()
    body = client.get("/api/v1/drift").get_json()
    Draft202012Validator(
        {"$ref": "#/components/schemas/Drift", "components": doc["components"]}
    ).validate(body)
    assert body["since_start"]["records"] >= 3
    assert body["thresholds"] == {
        "watch": 0.1,
        "drift": 0.25,
        "min_records": 500,
        "source": state.SOURCE,
    }


# --- The real server: summed over workers, and as metrics --------------------------------


def scrape(port: int) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.slow
def test_the_service_reports_drift_over_all_its_workers_and_as_metrics(training, tmp_path):
    port = free_port()
    server = GunicornServer(
        workers=2, METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(tmp_path)
    )
    try:
        server.wait_healthy()
        sample = training.sample(1000, replace=True, random_state=5).to_dict("records")
        for start in range(0, 1000, 50):  # 20 requests: both workers answer some
            assert server.request("/api/v1/predict", sample[start : start + 50])[0] == 200
        status, _, body = server.request("/api/v1/drift")
        doc = json.loads(body)
        assert status == 200 and doc["since_start"]["records"] == 1000
        assert doc["since_start"]["status"] == doc["recent"]["status"] == "ok"
        metrics = scrape(port)
        age = doc["since_start"]["fields"]["age"]["psi"]
        assert metrics[
            ("insurance_charges_drift_psi", (("field", "age"), ("window", "since_start")))
        ] == pytest.approx(age)
        assert (
            metrics[
                ("insurance_charges_drift_status", (("field", "age"), ("window", "since_start")))
            ]
            == 0
        )

        older = older_smokers(training, 2000).to_dict("records")
        for start in range(0, 2000, 500):
            assert server.request("/api/v1/predict", older[start : start + 500])[0] == 200
        doc = json.loads(server.request("/api/v1/drift")[2])
        fields = doc["since_start"]["fields"]
        assert doc["since_start"]["records"] == 3000
        assert fields["age"]["status"] == fields["smoker"]["status"] == "drift"
        assert (
            scrape(port)[
                ("insurance_charges_drift_status", (("field", "smoker"), ("window", "since_start")))
            ]
            == 2
        )
        assert server.stop() == 0
    finally:
        server.kill()


def test_training_data_psi_noise_at_the_minimum_of_records_stays_far_below_watch(
    reference, training
):
    rng = np.random.default_rng(2026)
    worst = 0.0
    for _ in range(200):
        rows = training.iloc[rng.integers(0, len(training), drift.MIN_RECORDS)]
        for name in FIELD_NAMES:
            bins = reference.fields[name]
            worst = max(worst, drift.psi(bins.shares, bins.count(rows[name])))
    assert worst < drift.WATCH
