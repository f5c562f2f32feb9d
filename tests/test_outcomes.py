"""Outcomes: captured estimates joined with their bills, and a report of how right they were."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insurance_charges.core.captures import (
    KEYS,
    LARGEST_AMOUNT,
    LONGEST_TEXT,
    capture_line,
    check_capture,
    shown,
)
from insurance_charges.core.estimates import estimate_valid
from insurance_charges.core.model_card import path_for
from insurance_charges.core.schema import RepeatedKeys
from insurance_charges.outcomes import measures, report
from insurance_charges.outcomes.cli import main
from insurance_charges.paths import DEFAULT_MODEL_PATH

from .outcomes_fixtures import START

pytest_plugins = ("tests.outcomes_fixtures",)  # shared: the shared data set captured and billed
CARD = path_for(DEFAULT_MODEL_PATH)
VERSION = json.loads(CARD.read_text())["model_version"]


def capture(i: int, **changes) -> dict:
    """A valid capture record (as checked), with ``changes``."""
    record = {
        "inference_id": f"id-{i}",
        "time": START + timedelta(hours=i),
        "model_version": VERSION,
        "path": "/api/v1/predict",
        "age": 30,
        "sex": "female",
        "bmi": 25.0,
        "children": 0,
        "smoker": "no",
        "region": "northeast",
        "estimate": 5000.0,
        "low": 4000.0,
        "high": 6000.0,
    }
    record.update(changes)
    return record


def write_lines(folder: Path, lines: list[bytes]) -> Path:
    """Capture lines in an hour's partition under ``folder``, as the writer will lay them out."""
    part = folder / "2026" / "11" / "02" / "00"
    part.mkdir(parents=True, exist_ok=True)
    (part / "part-0.jsonl").write_bytes(b"".join(lines))
    return folder


def run(capsys, *argv) -> tuple[int, str, str]:
    """The command's exit status, stdout and stderr."""
    status = main([str(a) for a in argv], default_card=CARD)
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    return err


# --- The capture format ------------------------------------------------------------------------


def test_a_capture_line_written_for_a_real_estimate_reads_back_as_the_same_record(real_model):
    got = estimate_valid(
        real_model,
        [
            {
                "age": 19,
                "sex": "female",
                "bmi": 27.9,
                "children": 0,
                "smoker": "yes",
                "region": "southwest",
            }
        ],
    )
    record = capture(
        0,
        estimate=float(got.amounts[0]),
        low=float(got.lower[0]),
        high=float(got.upper[0]),
        model_version=real_model.version,
        time=datetime(2026, 12, 7, 13, 52, 28, 123456, tzinfo=UTC),
    )
    line = capture_line(record)
    assert line.endswith(b"\n") and b'"time":"2026-12-07T13:52:28.123456Z"' in line
    assert list(json.loads(line)) == list(KEYS)
    assert check_capture(json.loads(line)) == (record, None)


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"inference_id": ""}, "inference_id must be 1 to 200"),
        ({"inference_id": "a b"}, "inference_id must be 1 to 200"),
        ({"inference_id": 7}, "inference_id must be 1 to 200"),
        ({"time": "2026-11-02T00:00:00"}, "time must be an ISO 8601 UTC time"),
        ({"time": "2026-11-02T01:00:00+01:00"}, "time must be an ISO 8601 UTC time"),
        ({"time": "yesterday"}, "time must be an ISO 8601 UTC time"),
        ({"model_version": ""}, "model_version must be text"),
        ({"path": "api/v1/predict"}, "path must start with /"),
        ({"age": 17}, "age must be a whole number from 18 to 100"),
        ({"smoker": "sometimes"}, 'smoker must be one of "yes", "no"'),
        ({"estimate": None}, "estimate must be a number of dollars"),
        ({"estimate": "5000"}, "estimate must be a number of dollars"),
        ({"estimate": 10**400}, "estimate must be a number of dollars"),
        ({"low": None}, "low and high must both be numbers or both null"),
        ({"low": 7000.0}, "low 7000 is above high 6000"),
        ({"high": True}, "high must be a number of dollars"),
    ],
)
def test_a_bad_capture_value_is_named(changes, problem):
    body = {**capture(0), "time": "2026-11-02T00:00:00Z", **changes}
    assert check_capture(body)[0] is None
    assert problem in check_capture(body)[1]


@pytest.mark.parametrize(
    "body, problem",
    [
        ([1, 2], "a capture record must be a JSON object"),
        ({"inference_id": "x"}, "missing time, model_version"),
        (
            {**capture(0), "time": "2026-11-02T00:00:00Z", "api_key": "secret"},
            "unknown key 'api_key'",
        ),
    ],
)
def test_a_capture_that_is_not_a_record_is_named(body, problem):
    assert problem in check_capture(body)[1]


def test_a_capture_without_a_likely_range_is_valid():
    body = {**capture(0), "time": "2026-11-02T00:00:00Z", "low": None, "high": None}
    assert check_capture(body)[0]["low"] is None


# Each problem's exact words and the format's limits: `outcomes join` lists a bad capture line
# with these words, so a person can fix the line without reading the code.

VALID_CAPTURE = {
    "inference_id": "id-0",
    "time": "2026-11-02T00:00:00Z",
    "model_version": "1.0.0-586c9afb",
    "path": "/api/v1/predict",
    "age": 30,
    "sex": "female",
    "bmi": 25.0,
    "children": 0,
    "smoker": "no",
    "region": "northeast",
    "estimate": 5000.0,
    "low": 4000.0,
    "high": 6000.0,
}
EVERY_KEY = (
    "inference_id, time, model_version, path, age, sex, bmi, children, smoker, region, "
    "estimate, low, high"
)
DOLLARS = "must be a number of dollars (at most 1e+09 either side of 0)"


def capture_problem(**changes) -> str | None:
    """The one line check_capture gives VALID_CAPTURE with ``changes`` (None when it is valid)."""
    record, message = check_capture({**VALID_CAPTURE, **changes})
    assert (record is None) == (message is not None)
    return message


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"inference_id": "a b"},
            "inference_id must be 1 to 200 letters, digits or ._:@/+=- ; got 'a b'",
        ),
        (
            {"time": "yesterday"},
            "time must be an ISO 8601 UTC time such as 2026-12-07T13:52:28Z; got 'yesterday'",
        ),
        (
            {"time": 1764633600},
            "time must be an ISO 8601 UTC time such as 2026-12-07T13:52:28Z; got 1764633600",
        ),
        ({"model_version": ""}, "model_version must be text of 1 to 200 characters; got ''"),
        ({"path": 7}, "path must be text of 1 to 200 characters; got 7"),
        ({"path": "api/v1"}, "path must start with /; got 'api/v1'"),
        ({"estimate": "5000"}, f"estimate {DOLLARS}; got '5000'"),
        ({"low": "4000"}, f"low {DOLLARS} or null; got '4000'"),
        ({"high": True}, f"high {DOLLARS} or null; got True"),
        ({"low": None}, "low and high must both be numbers or both null"),
        ({"low": 7000.5}, "low 7000.5 is above high 6000"),
        (
            {"region": "moon"},
            'region must be one of "northeast", "northwest", "southeast", "southwest"; '
            'got "moon" (a string)',
        ),
    ],
)
def test_each_bad_value_is_named_with_the_rule_and_the_value_sent(changes, message):
    assert capture_problem(**changes) == message


def test_every_problem_of_a_record_is_listed_in_one_line_in_key_order():
    assert capture_problem(inference_id="", path="x", estimate=None) == (
        "inference_id must be 1 to 200 letters, digits or ._:@/+=- ; got ''; "
        "path must start with /; got 'x'; "
        f"estimate {DOLLARS}; got None"
    )


def test_an_unknown_key_is_named_with_every_key_a_record_has():
    assert (
        capture_problem(api_key="secret")
        == f"unknown key 'api_key'; a capture record has {EVERY_KEY}"
    )


def test_a_key_sent_twice_is_named():
    body = RepeatedKeys(VALID_CAPTURE)
    body.repeated = ("age",)
    assert check_capture(body) == (None, "'age' appears more than once")


def test_a_capture_that_is_not_an_object_is_refused_quoting_it():
    assert check_capture([1, 2]) == (None, "a capture record must be a JSON object; got [1, 2]")


@pytest.mark.parametrize("key", ["model_version", "path"])
def test_text_of_200_characters_is_kept_and_of_201_refused(key):
    longest = "/" + "v" * (LONGEST_TEXT - 1)
    assert capture_problem(**{key: longest}) is None
    assert capture_problem(**{key: longest + "v"}) == (
        f"{key} must be text of 1 to 200 characters; got {shown(longest + 'v')}"
    )


@pytest.mark.parametrize("amount", [LARGEST_AMOUNT, -LARGEST_AMOUNT, 10**9])
def test_an_amount_of_a_billion_dollars_either_side_of_0_is_kept(amount):
    assert capture_problem(estimate=amount) is None


@pytest.mark.parametrize("amount", [10**9 + 1, 1e9 + 1, float("inf"), float("nan")])
def test_an_amount_beyond_a_billion_dollars_or_not_finite_is_refused(amount):
    assert capture_problem(estimate=amount) == f"estimate {DOLLARS}; got {amount!r}"


def test_a_likely_range_of_one_point_is_kept():
    assert capture_problem(low=6000.0, high=6000.0) is None


def test_a_time_of_40_characters_is_read_and_of_41_refused():
    forty = "2026-11-02T00:00:00.1234+00:00:00.000000"  # an offset may carry microseconds
    assert (len(forty), capture_problem(time=forty)) == (40, None)
    longer = forty.replace(".1234", ".12345")
    assert capture_problem(time=longer) == (
        f"time must be an ISO 8601 UTC time such as 2026-12-07T13:52:28Z; got {shown(longer)}"
    )


@pytest.fixture
def tokyo_time():
    """The process's local time zone set to UTC+9 (a POSIX rule: no time zone data needed)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "JST-9"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_a_capture_time_is_read_as_utc_whatever_the_machines_time_zone(tokyo_time):
    record, _ = check_capture({**VALID_CAPTURE, "time": "2026-11-02T00:00:00+00:00"})
    assert record is not None
    assert record["time"].isoformat() == "2026-11-02T00:00:00+00:00"
    assert record["time"] == datetime(2026, 11, 2, tzinfo=UTC)
    assert record["time"].utcoffset() == timedelta(0)


def test_a_capture_time_is_written_in_utc_whatever_the_machines_time_zone(tokyo_time):
    line = capture_line(capture(0, time=datetime(2026, 11, 2, 13, 52, 28, 5, tzinfo=UTC)))
    assert b'"time":"2026-11-02T13:52:28.000005Z"' in line


def test_a_capture_time_that_is_not_utc_is_refused_naming_it():
    moment = datetime(2026, 11, 2, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ValueError) as refused:
        capture_line(capture(0, time=moment))
    assert str(refused.value) == f"{moment!r} is not a UTC time"


@pytest.mark.parametrize(
    "value, quoted",
    [
        ("x" * 38, "'" + "x" * 38 + "'"),  # a repr of 40 characters is quoted whole
        ("x" * 39, "'" + "x" * 39 + "..."),  # 41: cut to its first 40, and marked cut
        (10**100, "1" + "0" * 39 + "..."),
    ],
)
def test_a_value_is_quoted_by_its_repr_cut_after_40_characters(value, quoted):
    assert shown(value) == quoted


# --- Join and report on the shared data set ----------------------------------------------------


def test_join_and_report_on_the_shared_data_equal_an_independent_computation(
    shared, tmp_path, capsys
):
    folder, bills, data = shared
    joined = tmp_path / "joined.parquet"
    status, out, _ = run(capsys, "join", "--captures", folder, "--actuals", bills, "-o", joined)
    assert status == 0
    assert out.startswith(f"joined {len(data):,} of {len(data):,} captures")
    got = pd.read_parquet(joined).set_index("inference_id").loc[data["inference_id"]]
    assert got["charges"].to_numpy() == pytest.approx(data["charges"].to_numpy())
    assert got["estimate"].to_numpy() == pytest.approx(data["estimate"].to_numpy())
    assert pd.read_parquet(tmp_path / "joined.rejects.parquet").empty
    assert pd.read_parquet(tmp_path / "joined.unbilled.parquet").empty

    status, out, _ = run(capsys, "report", joined, "--format", "json")
    result = json.loads(out)
    error = data["estimate"] - data["charges"]
    covered = (data["low"] <= data["charges"]) & (data["charges"] <= data["high"])
    r2 = 1 - (error**2).sum() / ((data["charges"] - data["charges"].mean()) ** 2).sum()
    for figures in (result["overall"], result["versions"][VERSION]):
        assert figures["records"] == len(data)
        assert figures["mae"] == pytest.approx(error.abs().mean(), rel=1e-12)
        assert figures["rmse"] == pytest.approx(math.sqrt((error**2).mean()), rel=1e-12)
        assert figures["r2"] == pytest.approx(r2, rel=1e-12)
        assert figures["bias"] == pytest.approx(error.mean(), abs=1e-9)
        assert figures["coverage"] == pytest.approx(covered.mean(), rel=1e-12)
    # The whole data set holds the model's training rows, where the range is wider than it
    # needs to be: the exit status is what the independent interval says of it.
    low, high = independent_wilson(int(covered.sum()), len(data))
    assert status == (0 if low <= 0.8 <= high else 3)


def test_the_report_per_week_and_smoker_group_equals_pandas_groupby(shared, tmp_path, capsys):
    folder, bills, data = shared
    joined = tmp_path / "joined.csv"
    run(capsys, "join", "--captures", folder, "--actuals", bills, "-o", joined)
    _, out, _ = run(capsys, "report", joined)
    version = json.loads(out)["versions"][VERSION]
    frame = data.assign(
        error=(data["estimate"] - data["charges"]).abs(),
        week=[f"{t.isocalendar()[0]}-W{t.isocalendar()[1]:02d}" for t in data["time"]],
    )
    weekly = frame.groupby("week")["error"].agg(["mean", "size"])
    assert list(version["weeks"]) == list(weekly.index)
    assert [w["mae"] for w in version["weeks"].values()] == pytest.approx(list(weekly["mean"]))
    assert [w["records"] for w in version["weeks"].values()] == list(weekly["size"])
    by_smoker = frame.groupby("smoker")["error"].mean()
    assert {s: g["mae"] for s, g in version["smoker"].items()} == pytest.approx(by_smoker.to_dict())


# --- Coverage's interval and the exit status at the boundary -----------------------------------


def independent_wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's interval as the roots of (p̂ - p)² = z² p (1 - p) / n, solved for p."""
    z = 1.959963984540054
    a, b, c = 1 + z * z / n, -(2 * k / n + z * z / n), (k / n) ** 2
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize(
    "k, n", [(0, 10), (8, 10), (80, 100), (69, 100), (90, 100), (10, 10), (1125, 1338)]
)
def test_coverage_interval_is_wilsons(k, n):
    assert measures.wilson(k, n) == pytest.approx(independent_wilson(k, n), abs=1e-12)


def test_a_textbook_wilson_interval():
    # 81 of 263: (0.2553, 0.3662) in Wilson (1927)'s worked form, as Newcombe (1998) tabulates.
    assert measures.wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)


def boundary(n: int) -> tuple[int, int]:
    """The most covered records whose interval still lies below 80%, and the fewest above it."""
    below = max(k for k in range(n + 1) if independent_wilson(k, n)[1] < 0.8)
    above = min(k for k in range(n + 1) if independent_wilson(k, n)[0] > 0.8)
    return below, above


def joined_frame(n: int, covered: int, error: float = 100.0, version: str = VERSION):
    """n records a week apart in one week, ``covered`` of them inside their range."""
    charges = np.full(n, 5000.0)
    estimate = charges + error
    inside = np.arange(n) < covered
    low = np.where(inside, charges - 1, charges + 1)  # the bill just inside, or just below
    return pd.DataFrame(
        {
            "inference_id": [f"id-{i}" for i in range(n)],
            "time": [START + timedelta(minutes=i) for i in range(n)],
            "model_version": version,
            "age": 30,
            "sex": "male",
            "bmi": 25.0,
            "children": 0,
            "smoker": np.where(np.arange(n) % 2, "yes", "no"),
            "region": "northeast",
            "estimate": estimate,
            "low": low,
            "high": charges + 2 * abs(error) + 1,
            "charges": charges,
        }
    )


def card_with_mae(tmp_path: Path, mae: float) -> Path:
    card = json.loads(CARD.read_text())
    card["metrics"]["holdout"]["mae"] = mae
    path = tmp_path / "test.card.json"
    path.write_text(json.dumps(card))
    return path


N = 100  # records in a boundary test: enough for the interval's edge to fall between counts
LOW_EDGE, HIGH_EDGE = boundary(N)


@pytest.mark.parametrize(
    "covered, status", [(LOW_EDGE, 3), (LOW_EDGE + 1, 0), (HIGH_EDGE - 1, 0), (HIGH_EDGE, 3)]
)
def test_exit_status_3_exactly_when_coverages_interval_excludes_80_percent(
    covered, status, tmp_path, capsys
):
    joined = tmp_path / "joined.parquet"
    joined_frame(N, covered).to_parquet(joined)
    got, out, err = run(capsys, "report", joined, "--card", card_with_mae(tmp_path, 1000.0))
    assert got == status
    assert json.loads(out)["overall"]["coverage_interval"] == pytest.approx(
        independent_wilson(covered, N)
    )
    assert ("excludes the 80% it promises" in err) == (status == 3)


@pytest.mark.parametrize(
    "error, threshold, status",
    [
        (1250.0, "0.25", 0),
        (1250.5, "0.25", 3),
        (1000.0, "0", 0),
        (1000.5, "0", 3),
        (1500.0, "0.5", 0),
    ],
)
def test_exit_status_3_exactly_when_mae_exceeds_the_cards_by_more_than_the_threshold(
    error, threshold, status, tmp_path, capsys
):
    joined = tmp_path / "joined.csv"
    joined_frame(N, 80, error=error).to_csv(joined, index=False)
    got, _, err = run(
        capsys,
        "report",
        joined,
        "--card",
        card_with_mae(tmp_path, 1000.0),
        "--mae-threshold",
        threshold,
    )
    assert got == status
    assert ("above the card's holdout MAE $1,000" in err) == (status == 3)


def test_the_default_mae_threshold_is_the_documented_one(tmp_path, capsys):
    joined = tmp_path / "joined.csv"
    joined_frame(N, 80, error=1250.5).to_csv(joined, index=False)
    assert report.MAE_THRESHOLD == 0.25
    assert run(capsys, "report", joined, "--card", card_with_mae(tmp_path, 1000.0))[0] == 3


def test_a_version_without_a_card_has_its_coverage_checked_but_not_its_mae(tmp_path, capsys):
    joined = tmp_path / "joined.csv"
    joined_frame(N, 80, error=10**6, version="2027.01.01-other").to_csv(joined, index=False)
    status, out, _ = run(capsys, "report", joined)
    assert status == 0
    assert json.loads(out)["checks"]["mae_unchecked"] == ["2027.01.01-other"]


def test_json_has_overall_and_each_version_with_records_mae_and_coverage(tmp_path, capsys):
    frame = pd.concat([joined_frame(10, 8), joined_frame(20, 16, version="2027.01.01-other")])
    frame["inference_id"] = [f"id-{i}" for i in range(len(frame))]
    joined = tmp_path / "joined.parquet"
    frame.to_parquet(joined)
    result = json.loads(run(capsys, "report", joined)[1])
    assert result["overall"]["records"] == 30 and result["overall"]["coverage"] == 0.8
    assert {v: f["records"] for v, f in result["versions"].items()} == {
        VERSION: 10,
        "2027.01.01-other": 20,
    }
    assert all({"records", "mae", "coverage"} <= set(f) for f in result["versions"].values())


def test_weeks_are_iso_weeks_so_new_years_day_2027_is_in_the_53rd_week_of_2026(tmp_path, capsys):
    frame = joined_frame(2, 2).assign(
        time=[datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC)]
    )
    frame.to_parquet(tmp_path / "joined.parquet")
    result = json.loads(run(capsys, "report", tmp_path / "joined.parquet")[1])
    assert list(result["versions"][VERSION]["weeks"]) == ["2026-W53", "2027-W01"]


# --- The HTML page -----------------------------------------------------------------------------


def test_the_html_report_is_one_self_contained_page_with_charts_against_the_card(
    shared, tmp_path, capsys
):
    folder, bills, _ = shared
    joined = tmp_path / "joined.parquet"
    run(capsys, "join", "--captures", folder, "--actuals", bills, "-o", joined)
    status, page, _ = run(capsys, "report", joined, "--format", "html")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("<svg") == 2
    assert "MAE per week" in page and "coverage per week" in page
    assert "Holdout" in page and "$2,189" in page  # the committed card's holdout MAE
    assert ("Failed:" in page) == (status == 3)


# --- Bad input: listed as a reject, or one error line ------------------------------------------

GOOD = capture_line(capture(0))


@pytest.mark.parametrize(
    "line, problem",
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "a capture record must be a JSON object"),
        (b'{"inference_id": "id-9", "inference_id": "id-9"}\n', "appears more than once"),
        (b'{"x": NaN}\n', "not JSON"),
        (b"\xff\xfe\n", "not UTF-8"),
        (b"[" * 100_000 + b"\n", "longer than 64 KiB"),
        (b"[" * 50_000 + b"\n", "not JSON"),
        (
            capture_line(capture(9))[:-1].replace(b'"age":30', b'"age":"30"') + b"\n",
            "age must be a whole number",
        ),
        # A key twice in a line whose values hold colons (its time), and with an escaped colon
        # making up for the repeat's own: never the last value silently.
        (capture_line(capture(9)).replace(b'"age":30', b'"age":99,"age":30'), "'age' appears more"),
        (
            capture_line(capture(9))
            .replace(b'"age":30', b'"age":99,"age":30')
            .replace(b'"/api/v1/predict"', b'"/api\\u003av1"'),
            "'age' appears more than once",
        ),
    ],
)
def test_a_bad_capture_line_is_a_listed_reject_and_the_rest_still_join(
    line, problem, tmp_path, capsys
):
    folder = write_lines(tmp_path / "captures", [GOOD, line])
    bills = tmp_path / "bills.csv"
    bills.write_text("inference_id,charges\nid-0,5100\n")
    status, out, _ = run(
        capsys, "join", "--captures", folder, "--actuals", bills, "-o", tmp_path / "joined.csv"
    )
    assert status == 1
    assert "joined 1 of 1 captures" in out and "rejected 1 capture lines" in out
    rejects = pd.read_csv(tmp_path / "joined.rejects.csv")
    assert list(rejects["line"]) == [2] and problem in rejects["problem"][0]


def test_bad_capture_lines_are_listed_in_line_order_with_the_numbers_of_the_file(tmp_path, capsys):
    # A line too long to read is skipped, not counted as more lines: those after it keep their
    # numbers, and blank lines count as lines.
    lines = [GOOD, b"x" * 70_000 + b"\n", b"\n", b"not json\n", b"[" * 50_000 + b"\n", b"[1]"]
    folder = write_lines(tmp_path / "captures", lines)
    bills = tmp_path / "bills.csv"
    bills.write_text("inference_id,charges\nid-0,5100\n")
    run(capsys, "join", "--captures", folder, "--actuals", bills, "-o", tmp_path / "joined.csv")
    rejects = pd.read_csv(tmp_path / "joined.rejects.csv")
    assert list(rejects["line"]) == [2, 4, 5, 6]
    assert [p.split(":")[0] for p in rejects["problem"]] == [
        "the line is longer than 64 KiB",
        "not JSON",
        "not JSON",
        "a capture record must be a JSON object; got [1]",
    ]


def bills_rows(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bills.csv"
    path.write_text("inference_id,charges,billed_at\n" + text)
    return path


@pytest.mark.parametrize(
    "rows, problem",
    [
        ("id-0,,\n", "charges must be dollars from 0 to 10,000,000; got ''"),
        ("id-0,nan,\n", "charges must be dollars"),
        ("id-0,-5,\n", "charges must be dollars"),
        ("id-0,inf,\n", "charges must be dollars"),
        ("id-0,12e9,\n", "charges must be dollars"),
        ("id-0,lots,\n", "charges must be dollars"),
        (",5100,\n", "inference_id must be 1 to 200"),
        ("id-0,5100,someday\n", "billed_at must be an ISO 8601 date or time"),
        ("id-0,5100,2026-10-01\n", "is before the estimate was made"),
        ("id-7,5100,\n", "no capture has this inference_id"),
        ("id-0,5100,\nid-0,5200,\n", "2 bills have this inference_id (lines 2, 3)"),
    ],
)
def test_a_bad_bill_is_a_listed_reject_and_its_capture_is_listed_unbilled(
    rows, problem, tmp_path, capsys
):
    folder = write_lines(tmp_path / "captures", [GOOD])
    status, out, _ = run(
        capsys,
        "join",
        "--captures",
        folder,
        "--actuals",
        bills_rows(tmp_path, rows),
        "-o",
        tmp_path / "joined.csv",
    )
    assert status == 1 and "joined 0 of 1 captures" in out
    rejects = pd.read_csv(tmp_path / "joined.rejects.csv", keep_default_na=False)
    assert all(rejects["input"] == "actuals") and problem in rejects["problem"][0]
    assert list(rejects["line"]) == list(range(2, 2 + rows.count("\n")))
    assert list(pd.read_csv(tmp_path / "joined.unbilled.csv")["inference_id"]) == ["id-0"]


def test_a_capture_repeated_exactly_is_kept_once_and_listed(tmp_path, capsys):
    folder = write_lines(tmp_path / "captures", [GOOD, GOOD])
    status, out, _ = run(
        capsys,
        "join",
        "--captures",
        folder,
        "--actuals",
        bills_rows(tmp_path, "id-0,5100,\n"),
        "-o",
        tmp_path / "joined.csv",
    )
    assert status == 0 and "joined 1 of 1 captures" in out and "1 repeated captures" in out
    assert "repeats" in pd.read_csv(tmp_path / "joined.rejects.csv")["problem"][0]


def test_the_same_estimate_captured_again_later_is_kept_once_at_its_earliest_time(tmp_path, capsys):
    # A Kafka message or an EB worker's message delivered again, a file scored again under its
    # run id: the same id, inputs, model and estimate, made later. The later copy comes first.
    later = capture_line(capture(0, time=START + timedelta(days=2)))
    folder = write_lines(tmp_path / "captures", [later, GOOD])
    status, out, _ = run(
        capsys,
        "join",
        "--captures",
        folder,
        "--actuals",
        bills_rows(tmp_path, "id-0,5100,\n"),
        "-o",
        tmp_path / "joined.csv",
    )
    assert status == 0 and "joined 1 of 1 captures" in out and "1 repeated captures" in out
    joined = pd.read_csv(tmp_path / "joined.csv")
    assert pd.Timestamp(joined["time"][0]) == pd.Timestamp(START)
    [problem] = pd.read_csv(tmp_path / "joined.rejects.csv")["problem"]
    assert problem.endswith("line 2, the same estimate (kept once, the earliest)")


@pytest.mark.parametrize(
    "change", [{"estimate": 1.0}, {"model_version": "other"}, {"age": 31}, {"path": "/kafka"}]
)
def test_captures_that_differ_beyond_their_time_under_one_id_are_rejected(tmp_path, capsys, change):
    other = capture_line(capture(0, time=START + timedelta(days=2), **change))
    folder = write_lines(tmp_path / "captures", [GOOD, other])
    status, _, _ = run(
        capsys,
        "join",
        "--captures",
        folder,
        "--actuals",
        bills_rows(tmp_path, "id-0,5100,\n"),
        "-o",
        tmp_path / "joined.csv",
    )
    problems = pd.read_csv(tmp_path / "joined.rejects.csv")["problem"]
    assert status == 1 and problems.str.contains("which was billed is unknown").sum() == 2


def test_captures_that_disagree_under_one_id_are_all_rejected_and_so_is_their_bill(
    tmp_path, capsys
):
    folder = write_lines(tmp_path / "captures", [GOOD, capture_line(capture(0, estimate=1.0))])
    status, _, _ = run(
        capsys,
        "join",
        "--captures",
        folder,
        "--actuals",
        bills_rows(tmp_path, "id-0,5100,\n"),
        "-o",
        tmp_path / "joined.csv",
    )
    rejects = pd.read_csv(tmp_path / "joined.rejects.csv")
    assert status == 1 and len(rejects) == 3
    assert rejects["problem"].str.contains("which was billed is unknown").sum() == 2
    assert "its capture was rejected" in rejects["problem"].iloc[2]


def test_a_capture_never_billed_is_listed_and_does_not_fail_the_join(tmp_path, capsys):
    folder = write_lines(tmp_path / "captures", [GOOD, capture_line(capture(1))])
    status, out, _ = run(
        capsys,
        "join",
        "--captures",
        folder,
        "--actuals",
        bills_rows(tmp_path, "id-0,5100,2026-11-20\n"),
        "-o",
        tmp_path / "joined.csv",
    )
    assert status == 0 and "1 captures without a bill yet" in out
    assert list(pd.read_csv(tmp_path / "joined.unbilled.csv")["inference_id"]) == ["id-1"]


@pytest.mark.parametrize(
    "setup, argv, message",
    [
        (None, ["--captures", "{tmp}/none"], "--captures {tmp}/none: no such file or directory"),
        ("empty", ["--captures", "{tmp}/empty"], "no .jsonl files in it or below it"),
        (None, ["--captures", "s3://bucket/captures"], "local paths only for now"),
        ("bills_no_charges", [], "no charges column"),
        ("bills_twice", [], "column 'charges' appears more than once"),
        ("bills_tsv", ["--actuals", "{tmp}/bills.tsv"], "name it .csv or .parquet"),
        (
            "parquet_int_ids",
            ["--actuals", "{tmp}/bills.parquet"],
            "column inference_id holds int64; it must hold text",
        ),
        (
            "parquet_text_charges",
            ["--actuals", "{tmp}/bills.parquet"],
            "column charges holds string; it must hold numbers",
        ),
        ("not_parquet", ["--actuals", "{tmp}/bills.parquet"], "not a readable Parquet file"),
        (None, ["-o", "{tmp}/joined.json"], "-o {tmp}/joined.json: cannot tell its format"),
        (None, ["-o", "{tmp}/bills.csv"], "would overwrite an input"),
        (None, ["-o", "{tmp}/nowhere/joined.csv"], "does not exist"),
    ],
)
def test_a_join_that_cannot_be_done_is_one_error_line_and_writes_nothing(
    setup, argv, message, tmp_path, capsys
):
    write_lines(tmp_path / "captures", [GOOD])
    (tmp_path / "empty").mkdir()
    (tmp_path / "bills.csv").write_text(
        {
            "bills_no_charges": "inference_id,amount\nid-0,1\n",
            "bills_twice": "inference_id,charges,charges\nid-0,1,2\n",
        }.get(setup, "inference_id,charges\nid-0,1\n")
    )
    (tmp_path / "bills.tsv").write_text("inference_id\tcharges\n")
    if setup == "parquet_int_ids":
        pd.DataFrame({"inference_id": [1], "charges": [1.0]}).to_parquet(tmp_path / "bills.parquet")
    elif setup == "parquet_text_charges":
        pd.DataFrame({"inference_id": ["id-0"], "charges": ["1"]}).to_parquet(
            tmp_path / "bills.parquet"
        )
    elif setup == "not_parquet":
        (tmp_path / "bills.parquet").write_bytes(b"PAR1 but not really")
    options = {
        "--captures": f"{tmp_path}/captures",
        "--actuals": f"{tmp_path}/bills.csv",
        "-o": f"{tmp_path}/joined.csv",
    }
    options.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    status, out, err = run(
        capsys, "join", *[part.format(tmp=tmp_path) for item in options.items() for part in item]
    )
    assert status == 2 and out == ""
    assert message.format(tmp=tmp_path) in one_error_line(err)
    assert not (tmp_path / "joined.csv").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("inference_id,time\nx,2026-11-02T00:00:00Z\n", "no model_version, smoker, estimate"),
        ("{columns}\n", "no joined records, so nothing to report yet"),
        ("{columns}\n{row}\n{bad_time}\n", "line 3: time is not an ISO 8601 time (1 rows like it)"),
        ("{columns}\n{bad_charges}\n", "line 2: charges is not a number of dollars from 0"),
        ("{columns}\n{half_range}\n", "line 2: low and high are not both numbers"),
        ("{columns}\n{bad_smoker}\n", "line 2: smoker is not one of yes, no"),
    ],
)
def test_a_report_that_cannot_be_made_is_one_error_line(content, message, tmp_path, capsys):
    frame = joined_frame(1, 1).astype(str)
    row = ",".join(frame.iloc[0])
    columns = ",".join(frame.columns)
    swap = {
        name: ",".join(frame.assign(**{name: value}).iloc[0])
        for name, value in (
            ("time", "later"),
            ("charges", "nan"),
            ("high", ""),
            ("smoker", "maybe"),
        )
    }
    joined = tmp_path / "joined.csv"
    if content is not None:
        joined.write_text(
            content.format(
                columns=columns,
                row=row,
                bad_time=swap["time"],
                bad_charges=swap["charges"],
                half_range=swap["high"],
                bad_smoker=swap["smoker"],
            )
        )
    status, out, err = run(capsys, "report", joined)
    assert status == 2 and out == ""
    assert message in one_error_line(err)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "j.csv", "--mae-threshold", "-1"], "is not a fraction from 0 to 10"),
        (["report", "j.csv", "--mae-threshold", "nan"], "is not a fraction from 0 to 10"),
        (["report", "j.csv", "--format", "pdf"], "invalid choice: 'pdf'"),
        (["report", "j.json"], "cannot tell its format"),
        (["report", "j.csv", "--card", "{tmp}/bills.csv"], "not a model card"),
        (["join", "--captures", "x"], "the following arguments are required: --actuals, -o"),
        (["audit"], "invalid choice: 'audit'"),
    ],
)
def test_a_usage_mistake_is_one_error_line(argv, message, tmp_path, capsys):
    (tmp_path / "bills.csv").write_text("a,b\n")
    joined_frame(1, 1).to_csv(tmp_path / "j.csv", index=False)
    argv = [
        a.format(tmp=tmp_path)
        if a.startswith("{")
        else (str(tmp_path / a) if a.startswith("j.") else a)
        for a in argv
    ]
    status, _, err = run(capsys, *argv)
    assert status == 2 and message in one_error_line(err)
