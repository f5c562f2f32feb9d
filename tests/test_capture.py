"""Capture: each estimate one JSON line under its inference id, off the request path, never lost
on a graceful stop, a failing destination counted and retried (docs/outcomes.md#capture)."""

import itertools
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.records import valid_records
from insurance_charges.capture import lines as lines_module
from insurance_charges.capture import writer as writer_module
from insurance_charges.capture.destinations import DestinationError, Directory, destination_of
from insurance_charges.capture.lines import (
    COLUMNS_FROM,
    batch_lines,
    id_lines,
    numbers,
    one_line,
)
from insurance_charges.capture.writer import CaptureWriter
from insurance_charges.core.captures import (
    KEYS,
    capture_line,
    check_capture,
    is_sampled,
    sampling_bucket,
)
from insurance_charges.core.estimates import estimate
from insurance_charges.core.schema import EXAMPLE_RECORD, FIELDS
from insurance_charges.settings import SettingsError
from insurance_charges.web import create_app
from insurance_charges.web.capturing import close_capture

MOMENT = datetime(2026, 12, 7, 13, 52, 28, 123456, tzinfo=UTC)


class Counts:
    """What a writer counted."""

    def __init__(self):
        self.shipped = self.failed = self.dropped = 0

    def capture_shipped(self, records):
        self.shipped += records

    def capture_failed(self):
        self.failed += 1

    def capture_dropped(self, records):
        self.dropped += records


class Flaky:
    """A destination that refuses every file while ``down``, then keeps what it is given."""

    def __init__(self, down=True):
        self.down, self.files, self.attempts = down, {}, 0

    def prepare(self):
        pass

    def put(self, key, parts):
        self.attempts += 1
        if self.down:
            raise DestinationError("SlowDown: please reduce your request rate")
        self.files[key] = b"".join(parts)

    def __str__(self):
        return "flaky"


def reference_lines(request_id, estimates, positions, model_version="v1", path="/p"):
    """capture_line for each record, as the format's own definition writes it."""
    lows = None if estimates.lower is None else estimates.lower.tolist()
    highs = None if estimates.upper is None else estimates.upper.tolist()
    return b"".join(
        capture_line(
            {
                "inference_id": f"{request_id}-{i}",
                "time": MOMENT,
                "model_version": model_version,
                "path": path,
                **estimates.records[i],
                "estimate": estimates.amounts.tolist()[i],
                "low": lows and lows[i],
                "high": highs and highs[i],
            }
        )
        for i in positions
    )


def fast_lines(request_id, estimates, positions, model_version="v1", path="/p"):
    return bytes(
        batch_lines(
            request_id,
            MOMENT,
            model_version,
            path,
            estimates.records,
            estimates.amounts,
            estimates.lower,
            estimates.upper,
            positions,
        )
    )


def captured_lines(root: Path) -> list[dict]:
    """Every line of every capture file under ``root``, checked by the format's validator."""
    lines = []
    for path in sorted(root.rglob("*.jsonl")):
        for text in path.read_bytes().splitlines():
            record, problem = check_capture(orjson.loads(text))
            assert problem is None, problem
            lines.append({**orjson.loads(text), "file": path.relative_to(root).as_posix()})
    return lines


# --- The lines: capture_line's bytes -------------------------------------------------------


def test_a_real_batchs_lines_are_capture_lines_byte_for_byte(real_model):
    got = estimate(real_model, valid_records(3000, seed=5))
    everyone = list(range(3000))
    assert fast_lines("R", got, None) == reference_lines("R", got, everyone)
    assert fast_lines("R", got, everyone) == reference_lines("R", got, everyone)
    assert fast_lines("R", got, [0, 7, 2999]) == reference_lines("R", got, [0, 7, 2999])
    sampled = list(range(0, 3000, 7))  # enough records to be written column by column
    assert fast_lines("R", got, sampled) == reference_lines("R", got, sampled)


def test_a_batch_beyond_the_positions_made_in_advance_has_its_positions_written(
    real_model, monkeypatch
):
    monkeypatch.setattr(lines_module, "_POSITIONS", numbers(np.arange(100), b'"'))
    got = estimate(real_model, valid_records(101, seed=5))
    assert fast_lines("R", got, None) == reference_lines("R", got, range(101))


@pytest.mark.parametrize(
    ("many", "most", "steps"),
    [
        (
            (),
            lines_module.MOST_COMBINATIONS,
            [("age", "sex"), "bmi", ("children", "smoker", "region")],
        ),
        (
            ("age",),
            lines_module.MOST_COMBINATIONS,
            ["age", ("sex",), "bmi", ("children", "smoker", "region")],
        ),
        (("age", "children"), 4096, ["age", ("sex",), "bmi", "children", ("smoker", "region")]),
        ((), 1, [("age",), ("sex",), "bmi", ("children",), ("smoker",), ("region",)]),
        ((), 87, [("age",), ("sex",), "bmi", ("children", "smoker"), ("region",)]),
    ],
)
def test_lines_are_capture_lines_however_the_fields_are_grouped(
    real_model, monkeypatch, many, most, steps
):
    texts = {field.name: lines_module._texts(field) for field in FIELDS}
    texts.update(dict.fromkeys(many))  # as if these integers had too many values for a take
    planned = lines_module.plan(texts, most)
    assert [
        tuple(f.name for f in step.fields) if isinstance(step, lines_module.Taken) else step.name
        for step in planned
    ] == steps
    monkeypatch.setattr(lines_module, "_PLAN", planned)
    got = estimate(real_model, valid_records(500, seed=6))
    assert fast_lines("R", got, None) == reference_lines("R", got, range(500))
    sampled = list(range(1, 500, 3))
    assert fast_lines("R", got, sampled) == reference_lines("R", got, sampled)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(st.floats(width=64), min_size=1, max_size=50),
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50),
    ),
    st.sampled_from([b',"low":', b'"', b"}\n"]),
)
def test_a_columns_numbers_are_written_as_orjson_writes_each_number(values, after):
    column = np.array(values, dtype=np.float64 if isinstance(values[0], float) else np.int64)
    written = numbers(column, after)
    assert written.to_pylist() == [orjson.dumps(value) + after for value in values]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 2 * COLUMNS_FROM + 40),  # below and above it, for all records and every other
    st.integers(0, 10_000),
    st.booleans(),
    st.from_regex(r"[A-Za-z0-9._:@/+=-]{1,128}", fullmatch=True),
    st.text(min_size=1, max_size=30),
    st.sampled_from(["/api/v1/predict", "/", "/x}{"]),
)
def test_batch_lines_equal_capture_lines_for_any_batch_id_version_and_path(
    real_model, count, seed, ranged, request_id, version, path
):
    got = estimate(real_model, valid_records(count, seed=seed))
    if not ranged:
        got = type(got)(**{**got.__dict__, "lower": None, "upper": None, "level": None})
    positions = list(range(0, count, 2))
    assert fast_lines(request_id, got, positions, version, path) == reference_lines(
        request_id, got, positions, version, path
    )
    assert fast_lines(request_id, got, None, version, path) == reference_lines(
        request_id, got, range(count), version, path
    )


def test_one_records_line_is_its_capture_line(real_model):
    got = estimate(real_model, dict(EXAMPLE_RECORD))
    line = one_line("R", MOMENT, "v1", "/p", got.records[0], 19270.25, 17327.01, 22846.89)
    assert list(orjson.loads(line)) == list(KEYS)
    assert check_capture(orjson.loads(line))[1] is None


# --- Sampling: deterministic per id ----------------------------------------------------------


def test_the_sampling_bucket_is_the_documented_sha256_rule():
    import hashlib

    digest = hashlib.sha256(b"claim-7").digest()
    assert sampling_bucket("claim-7") == int.from_bytes(digest[:8], "big") % 10_000


@pytest.mark.parametrize("percent", [0, 0.5, 12.5, 50, 100])
def test_sampling_keeps_about_the_share_asked_for_and_always_the_same_ids(percent):
    ids = [f"r{i}-{j}" for i in range(200) for j in range(100)]
    kept = [i for i in ids if is_sampled(i, percent)]
    assert len(kept) / len(ids) == pytest.approx(percent / 100, abs=0.01)
    assert kept == [i for i in ids if is_sampled(i, percent)]
    assert set(kept) <= {i for i in ids if is_sampled(i, min(100, percent + 10))}  # nested


def id_in_bucket(bucket: int) -> str:
    """The first id ``id-N`` whose sampling bucket is ``bucket`` (one in 10,000 ids is)."""
    return next(f"id-{n}" for n in itertools.count() if sampling_bucket(f"id-{n}") == bucket)


@pytest.mark.parametrize("percent", [0, 12.5, 99.99])
def test_percent_p_captures_the_buckets_below_p_times_100_and_not_that_bucket(percent):
    edge = round(percent * 100)  # buckets 0 to edge - 1 are captured
    assert not is_sampled(id_in_bucket(edge), percent)
    if edge:
        assert is_sampled(id_in_bucket(edge - 1), percent)


# --- The writer ------------------------------------------------------------------------------


def test_captures_go_to_hour_partitions_under_a_name_of_this_process(tmp_path, real_model):
    writer = CaptureWriter(Directory(tmp_path), 100)
    writer.add("one", "/api/v1/predict", estimate(real_model, dict(EXAMPLE_RECORD)))
    writer.add("many", "/api/v1/predict", estimate(real_model, valid_records(250, seed=1)))
    writer.close()
    lines = captured_lines(tmp_path)
    assert [line["inference_id"] for line in lines] == ["one"] + [f"many-{i}" for i in range(250)]
    hour = datetime.now(UTC).strftime("%Y/%m/%d/%H")
    (name,) = {line["file"] for line in lines}
    assert name.startswith(hour + "/") and name.endswith(".jsonl") and str(writer._pid) in name
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".jsonl"]


def test_files_are_shipped_every_interval_without_waiting_for_exit(tmp_path, real_model):
    writer = CaptureWriter(Directory(tmp_path), 100, ship_seconds=0.3)
    writer.add("early", "/p", estimate(real_model, dict(EXAMPLE_RECORD)))
    deadline = time.monotonic() + 10
    while not list(tmp_path.rglob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [line["inference_id"] for line in captured_lines(tmp_path)] == ["early"]
    writer.add("later", "/p", estimate(real_model, dict(EXAMPLE_RECORD)))
    writer.close()
    assert len(list(tmp_path.rglob("*.jsonl"))) == 2  # a file per interval, none rewritten


def test_a_sampled_writer_keeps_exactly_the_ids_the_rule_picks(tmp_path, real_model):
    writer = CaptureWriter(Directory(tmp_path), 30)
    writer.add("batch", "/p", estimate(real_model, valid_records(400, seed=2)))
    for i in range(50):
        writer.add(f"one{i}", "/p", estimate(real_model, dict(EXAMPLE_RECORD)))
    writer.close()
    expected = [f"batch-{i}" for i in range(400) if is_sampled(f"batch-{i}", 30)] + [
        f"one{i}" for i in range(50) if is_sampled(f"one{i}", 30)
    ]
    assert [line["inference_id"] for line in captured_lines(tmp_path)] == expected


def test_a_failing_destination_is_counted_retried_and_logged_once_a_minute(real_model, caplog):
    flaky, counts = Flaky(), Counts()
    writer = CaptureWriter(flaky, 100, counts)
    writer.add("a", "/p", estimate(real_model, dict(EXAMPLE_RECORD)))
    caplog.set_level(logging.ERROR, "insurance_charges.capture")
    writer.drain()
    with writer._shipping:
        writer._ship()
        writer._ship()  # the next interval: retried, still failing
    assert (counts.failed, counts.shipped, flaky.files) == (2, 0, {})
    assert len([r for r in caplog.records if "not shipped" in r.message]) == 1
    assert "SlowDown" in caplog.records[0].message
    flaky.down = False
    writer.close()
    assert counts.shipped == 1 and len(flaky.files) == 1 and counts.dropped == 0


def test_past_the_backlog_bound_the_oldest_files_are_dropped_and_counted(
    real_model, monkeypatch, caplog
):
    monkeypatch.setattr(writer_module, "BACKLOG_BYTES", 1)  # any second file is one too many
    flaky, counts = Flaky(), Counts()
    writer = CaptureWriter(flaky, 100, counts)
    for name in ("first", "second"):
        writer.add(name, "/p", estimate(real_model, valid_records(3, seed=1)))
        writer.drain()
        with writer._shipping:
            writer._ship()
    assert counts.dropped == 6 and [key for key, _, _ in writer._backlog] == []
    assert "dropped" in caplog.text and 'outcome="dropped"' in caplog.text
    flaky.down = False
    writer.close()
    assert counts.shipped == 0 and counts.dropped == 6


def test_at_exit_a_destination_still_failing_loses_records_counted_never_silently(
    real_model, caplog
):
    counts = Counts()
    writer = CaptureWriter(Flaky(), 100, counts)
    writer.add("a", "/p", estimate(real_model, valid_records(4, seed=1)))
    writer.close()
    assert counts.dropped == 4 and "failed at exit" in caplog.text


def _kafka_lines(real_model, count: int) -> tuple[bytes, list[str]]:
    got = estimate(real_model, valid_records(count, seed=3))
    ids = [f"admissions:0:{40 + i}" for i in range(count)]
    data = id_lines(
        ids,
        MOMENT,
        got.model_version,
        "/kafka",
        got.records,
        got.amounts.tolist(),
        got.lower.tolist(),
        got.upper.tolist(),
        list(range(count)),
    )
    return data, ids


def test_lines_under_given_ids_are_capture_lines_byte_for_byte(real_model):
    got = estimate(real_model, valid_records(50, seed=4))
    ids = [f"t:3:{i}" if i % 2 else f"t:3:{i}-0" for i in range(50)]
    positions = list(range(0, 50, 3))
    made = id_lines(
        [ids[i] for i in positions],
        MOMENT,
        "v1",
        "/kafka",
        got.records,
        got.amounts.tolist(),
        got.lower.tolist(),
        got.upper.tolist(),
        positions,
    )
    expected = b"".join(
        capture_line(
            {
                "inference_id": ids[i],
                "time": MOMENT,
                "model_version": "v1",
                "path": "/kafka",
                **got.records[i],
                "estimate": got.amounts.tolist()[i],
                "low": got.lower.tolist()[i],
                "high": got.upper.tolist()[i],
            }
        )
        for i in positions
    )
    assert made == expected


def test_without_its_thread_the_writer_ships_only_when_asked_and_a_file_is_due(
    tmp_path, real_model, monkeypatch
):
    threads = sum(t.name == "capture" for t in threading.enumerate())
    counts = Counts()
    writer = CaptureWriter(Directory(tmp_path), 100, counts, ship_seconds=3600, background=False)
    data, ids = _kafka_lines(real_model, 5)
    writer.hold(MOMENT, data, 5)
    assert sum(t.name == "capture" for t in threading.enumerate()) == threads  # none started
    assert writer.ship_if_due() is False and not list(tmp_path.rglob("*.jsonl"))
    monkeypatch.setattr(writer_module, "FILE_BYTES", len(data))  # held enough: a file is due
    assert writer.ship_if_due() is True
    lines = captured_lines(tmp_path)
    assert [line["inference_id"] for line in lines] == ids and counts.shipped == 5
    assert {line["file"].rsplit("/", 1)[0] for line in lines} == {"2026/12/07/13"}  # MOMENT's
    writer.hold(MOMENT, *_kafka_lines(real_model, 2)[:1], 2)
    writer.close()  # at the end: everything held is shipped
    assert len(captured_lines(tmp_path)) == 7 and counts.shipped == 7


def test_without_its_thread_a_failing_destination_waits_in_the_backlog_and_is_counted(
    real_model, monkeypatch
):
    monkeypatch.setattr(writer_module, "FILE_BYTES", 1)  # every hold makes a file due
    flaky, counts = Flaky(), Counts()
    writer = CaptureWriter(flaky, 100, counts, background=False)
    writer.hold(MOMENT, _kafka_lines(real_model, 3)[0], 3)
    assert writer.ship_if_due() is True  # tried: the caller may go on (the consumer commits)
    assert (counts.failed, counts.shipped, len(writer._backlog)) == (1, 0, 1)
    flaky.down = False
    writer.hold(MOMENT, _kafka_lines(real_model, 2)[0], 2)
    assert writer.ship_if_due() is True
    assert (counts.shipped, len(flaky.files), counts.dropped) == (5, 2, 0)


def test_a_directory_that_fails_leaves_no_half_written_file(tmp_path):
    (tmp_path / "2026").write_text("a file where a directory should be")
    with pytest.raises(DestinationError, match="2026"):
        Directory(tmp_path).put("2026/12/07/13/a.jsonl", [b"{}\n"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026"]


# --- Through the app ---------------------------------------------------------------------------


def capturing_app(real_model, root, **config):
    return create_app(
        {
            "TESTING": True,
            "MODEL": real_model,
            "CAPTURE": Directory(root),
            "CAPTURE_PERCENT": 100.0,
            **config,
        }
    )


def test_every_answered_estimate_is_captured_as_answered_with_no_key_or_header(
    tmp_path, real_model
):
    app = capturing_app(real_model, tmp_path, API_KEYS=("k-secret-123",))
    client = app.test_client()
    headers = {"X-API-Key": "k-secret-123", "X-Request-ID": "q-1", "Cookie": "s=secret-cookie"}
    one = client.post("/api/v1/predict", json=EXAMPLE_RECORD, headers=headers).get_json()
    batch = client.post(
        "/api/v1/predict",
        json=valid_records(20, seed=4),
        headers={**headers, "X-Request-ID": "q-2"},
    ).get_json()
    legacy = client.post(
        "/predict_api", json=EXAMPLE_RECORD, headers={**headers, "X-Request-ID": "q-3"}
    ).get_json()
    form = client.post(
        "/", data={k: str(v) for k, v in EXAMPLE_RECORD.items()}, headers={"X-Request-ID": "q-4"}
    )
    assert b"q-4" in form.data  # the result page shows its id
    close_capture(app)
    lines = captured_lines(tmp_path)
    by_id = {line["inference_id"]: line for line in lines}
    assert list(by_id) == ["q-1", *batch["inference_ids"], "q-3", "q-4"]
    assert (by_id["q-1"]["estimate"], by_id["q-1"]["low"], by_id["q-1"]["high"]) == (
        one["prediction"],
        one["interval"]["lower"],
        one["interval"]["upper"],
    )
    assert [by_id[i]["estimate"] for i in batch["inference_ids"]] == batch["predictions"]
    assert by_id["q-3"]["estimate"] == legacy
    assert {by_id[i]["path"] for i in by_id} == {"/api/v1/predict", "/predict_api", "/"}
    text = b"".join(p.read_bytes() for p in tmp_path.rglob("*.jsonl"))
    assert b"k-secret" not in text and b"secret-cookie" not in text
    assert {tuple(line)[:-1] for line in lines} == {KEYS}  # nothing but the record's keys


def test_refused_requests_are_not_captured(tmp_path, real_model):
    app = capturing_app(real_model, tmp_path)
    assert app.test_client().post("/api/v1/predict", json={"age": 19}).status_code == 422
    close_capture(app)
    assert captured_lines(tmp_path) == []


def test_a_failing_destination_changes_no_answer(real_model, monkeypatch):
    flaky = Flaky()
    app = create_app(
        {"TESTING": True, "MODEL": real_model, "CAPTURE": flaky, "CAPTURE_PERCENT": 100.0}
    )
    plain = create_app({"TESTING": True, "MODEL": real_model}).test_client()
    same = {"X-Request-ID": "same"}
    for body in (EXAMPLE_RECORD, valid_records(50, seed=3)):
        got = app.test_client().post("/api/v1/predict", json=body, headers=same)
        assert got.status_code == 200
        assert got.data == plain.post("/api/v1/predict", json=body, headers=same).data
    close_capture(app)
    assert flaky.attempts >= 1 and flaky.files == {}


def test_capture_percent_0_captures_nothing(tmp_path, real_model):
    app = capturing_app(real_model, tmp_path, CAPTURE_PERCENT=0.0)
    app.test_client().post("/api/v1/predict", json=EXAMPLE_RECORD)
    close_capture(app)
    assert captured_lines(tmp_path) == []


def test_an_unwritable_capture_directory_stops_start_up_with_one_line(tmp_path, real_model):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(
        SettingsError,
        match=r"^CAPTURE_URI='.*/file/captures': cannot write to "
        r".*; set CAPTURE_URI to a writable directory",
    ):
        capturing_app(real_model, blocker / "captures")


def test_shipped_records_are_counted_in_the_services_metrics(tmp_path, real_model):
    from prometheus_client import REGISTRY

    def shipped():
        return (
            REGISTRY.get_sample_value(
                "insurance_charges_capture_records_total", {"outcome": "shipped"}
            )
            or 0.0
        )

    before = shipped()
    app = capturing_app(real_model, tmp_path)
    app.test_client().post("/api/v1/predict", json=valid_records(7, seed=1))
    close_capture(app)
    assert shipped() == before + 7


@pytest.mark.parametrize(
    "uri, kind", [("s3://b-1.x/p/q", "S3Prefix"), ("relative/dir", "Directory")]
)
def test_a_capture_uri_names_a_directory_or_an_s3_prefix(uri, kind):
    destination = destination_of(uri)
    assert type(destination).__name__ == kind
    if kind == "Directory":
        assert destination.root.is_absolute()  # resolved once, not against a later cwd


def test_an_answers_lines_are_made_once_its_response_is_closed(tmp_path, real_model):
    app = capturing_app(real_model, tmp_path)
    writer = app.extensions["insurance_charges.capture"]
    response = app.test_client().post("/api/v1/predict", json=valid_records(5, seed=1))
    queued = len(writer._queue)
    response.close()  # as gunicorn does once the last byte is sent
    assert (queued, len(writer._queue), sum(writer._held_records.values())) == (1, 0, 5)
    close_capture(app)


def test_sagemaker_bodies_of_lines_are_captured_under_their_positions(tmp_path, real_model):
    app = capturing_app(real_model, tmp_path)
    body = b"19,female,27.9,0,yes,southwest\n70,male,33.1,2,no,northeast\n"
    answer = app.test_client().post(
        "/invocations",
        data=body,
        headers={"Content-Type": "text/csv", "Accept": "text/csv", "X-Request-ID": "sm"},
    )
    close_capture(app)
    lines = captured_lines(tmp_path)
    assert [(line["inference_id"], line["path"]) for line in lines] == [
        ("sm-0", "/invocations"),
        ("sm-1", "/invocations"),
    ]
    assert [line["estimate"] for line in lines] == [float(x) for x in answer.data.split()]
