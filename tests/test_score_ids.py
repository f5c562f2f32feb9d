"""The scorer's inference ids (the run id and each row's line), its captures, and bills joined
to a scored file's estimates by those ids."""

from __future__ import annotations

import json
import math
import re

import orjson
import pandas as pd
import pytest

from insurance_charges.core.captures import check_capture, is_sampled
from insurance_charges.core.model_card import path_for
from insurance_charges.outcomes.cli import main as outcomes
from insurance_charges.paths import DEFAULT_MODEL_PATH

from .scoring_support import OUTPUTS, error_lines, read_rows, summary_of, write_parquet

pytest_plugins = ("tests.scoring_support",)  # the score fixture

HEADER = "id,age,sex,bmi,children,smoker,region\n"
GOOD = ["p1,19,female,27.9,0,yes,southwest", "p3,45,male,31.2,2,no,southeast"]
BAD = "p2,17,male,30.0,0,no,northeast"  # age 17: rejected


def _captured(folder) -> list[dict]:
    lines = b"".join(p.read_bytes() for p in sorted(folder.rglob("*.jsonl")))
    return [orjson.loads(line) for line in lines.splitlines()]


@pytest.mark.parametrize("output_format", ["csv", "jsonl", "parquet"])
def test_each_scored_row_is_named_by_the_run_id_and_its_line_in_csv(score, tmp_path, output_format):
    # Lines: header 1, p1 2, blank 3, p2 4 (rejected), p3 5, p1 again 6; chunks of 2 rows.
    text = HEADER + GOOD[0] + "\n\n" + BAD + "\n" + GOOD[1] + "\n" + GOOD[0] + "\n"
    source = tmp_path / "in.csv"
    source.write_text(text)
    target = tmp_path / f"out.{output_format}"
    status, _, err = score(
        source, "-o", target, "--run-id", "claims-2026.11", "--chunk-rows", 2, "--max-rejects", 1
    )
    assert status == 0, err
    got = read_rows(target)
    assert [r["id"] for r in got] == ["p1", "p3", "p1"]
    run = "claims-2026.11"
    assert [r["inference_id"] for r in got] == [f"{run}-2", f"{run}-5", f"{run}-6"]
    assert list(got[0])[-len(OUTPUTS) :] == list(OUTPUTS)  # the id last, as in the API's answer
    assert summary_of(err)["run_id"] == "claims-2026.11"


def test_json_lines_count_every_line_and_parquet_rows_count_from_one(score, tmp_path):
    lines = [
        '{"age": 19, "sex": "female", "bmi": 27.9, "children": 0, "smoker": "yes", '
        '"region": "southwest"}',
        "",
        '{"age": 17, "sex": "male", "bmi": 30.0, "children": 0, "smoker": "no", '
        '"region": "northeast"}',
        '{"age": 45, "sex": "male", "bmi": 31.2, "children": 2, "smoker": "no", '
        '"region": "southeast"}',
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    status, _, err = score(
        source, "-o", tmp_path / "out.jsonl", "--run-id", "r", "--max-rejects", 1
    )
    assert status == 0, err
    assert [r["inference_id"] for r in read_rows(tmp_path / "out.jsonl")] == ["r-1", "r-4"]

    rows = [json.loads(line) for line in lines if line]
    parquet = write_parquet(tmp_path / "in.parquet", rows)
    status, _, err = score(
        parquet, "-o", tmp_path / "out.parquet", "--run-id", "r", "--max-rejects", 1
    )
    assert status == 0, err
    assert [r["inference_id"] for r in read_rows(tmp_path / "out.parquet")] == ["r-1", "r-3"]


def test_without_a_run_id_each_run_gets_a_new_one_given_in_the_summary(score, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(HEADER + GOOD[0] + "\n")
    run_ids = []
    for n in range(2):
        status, _, err = score(source, "-o", tmp_path / f"out{n}.csv")
        assert status == 0, err
        run_id = summary_of(err)["run_id"]
        assert re.fullmatch("[0-9a-f]{32}", run_id)
        assert f"run id {run_id} (inference ids {run_id}-<line>)" in summary_of(err)["message"]
        assert read_rows(tmp_path / f"out{n}.csv")[0]["inference_id"] == f"{run_id}-2"
        run_ids.append(run_id)
    assert run_ids[0] != run_ids[1]


@pytest.mark.parametrize(
    "run_id",
    ["", "-x", "=HYPERLINK(1)", "a b", "x" * 129, "é", "a,b", 'a"b'],
    ids=["empty", "hyphen first", "formula", "blank", "too long", "not ascii", "comma", "quote"],
)
def test_a_run_id_that_is_not_one_is_refused_in_one_line(score, tmp_path, run_id):
    source = tmp_path / "in.csv"
    source.write_text(HEADER + GOOD[0] + "\n")
    status, _, err = score(source, "-o", tmp_path / "out.csv", f"--run-id={run_id}")
    assert status == 2
    [line] = error_lines(err)
    assert "is not a run id: give 1 to 128 letters, digits or ._:@/+=-" in line
    assert not (tmp_path / "out.csv").exists()


def test_the_longest_run_id_makes_ids_the_capture_format_takes(score, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTURE_URI", str(tmp_path / "captures"))
    source = tmp_path / "in.csv"
    source.write_text(HEADER + GOOD[0] + "\n")
    run_id = "R" + "9" * 127
    status, _, err = score(source, "-o", tmp_path / "out.csv", "--run-id", run_id)
    assert status == 0, err
    [line] = _captured(tmp_path / "captures")
    record, problem = check_capture(line)
    assert problem is None and record is not None and record["inference_id"] == f"{run_id}-2"


def test_an_input_column_named_inference_id_is_refused_as_one_the_command_adds(score, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("inference_id," + HEADER + "x," + GOOD[0] + "\n")
    status, _, err = score(source, "-o", tmp_path / "out.csv")
    assert status == 2
    [line] = error_lines(err)
    assert "inference_id" in line


@pytest.mark.parametrize("percent", ["100", "40"])
def test_with_capture_uri_each_scored_row_is_captured_under_its_id(
    score, tmp_path, monkeypatch, real_model, percent
):
    monkeypatch.setenv("CAPTURE_URI", str(tmp_path / "captures"))
    monkeypatch.setenv("CAPTURE_PERCENT", percent)
    rows = [GOOD[i % 2].replace("p", f"{i}p") for i in range(200)]
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "\n".join(rows[:100]) + "\n" + BAD + "\n" + "\n".join(rows[100:]))
    status, _, err = score(
        source, "-o", tmp_path / "out.csv", "--run-id", "b", "--chunk-rows", 30, "--max-rejects", 1
    )
    assert status == 0, err
    scored = {r["inference_id"]: r for r in read_rows(tmp_path / "out.csv")}
    captured = _captured(tmp_path / "captures")
    # Exactly the sampled ids, each once, each line a valid capture of its row's estimate.
    assert sorted(c["inference_id"] for c in captured) == sorted(
        i for i in scored if is_sampled(i, float(percent))
    )
    assert len(captured) == 200 if percent == "100" else 0 < len(captured) < 200
    for line in captured:
        record, problem = check_capture(line)
        assert problem is None and record is not None
        row = scored[record["inference_id"]]
        assert record["estimate"] == float(row["estimate"])
        assert (record["low"], record["high"]) == (
            float(row["likely_lower"]),
            float(row["likely_upper"]),
        )
        assert (record["age"], record["sex"], record["region"]) == (
            int(row["age"]),
            row["sex"],
            row["region"],
        )
        assert (record["path"], record["model_version"]) == ("/scoring", real_model.version)
    report = summary_of(err)
    assert (report["captures_shipped"], report["captures_dropped"]) == (len(captured), 0)


def test_a_capture_directory_that_cannot_be_written_stops_the_run_before_scoring(
    score, tmp_path, monkeypatch
):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("CAPTURE_URI", str(tmp_path / "file" / "captures"))
    source = tmp_path / "in.csv"
    source.write_text(HEADER + GOOD[0] + "\n")
    status, _, err = score(source, "-o", tmp_path / "out.csv")
    assert status == 2
    [line] = error_lines(err)
    assert line.startswith("Error: CAPTURE_URI=") and "set CAPTURE_URI to a writable" in line
    assert not (tmp_path / "out.csv").exists()


def _outcomes(capfd, *argv) -> tuple[int, str]:
    status = outcomes([str(a) for a in argv], default_card=path_for(DEFAULT_MODEL_PATH))
    out, _ = capfd.readouterr()
    return status, out


def test_bills_join_a_scored_file_by_its_ids_and_the_report_equals_an_independent_computation(
    score, data_path, tmp_path, monkeypatch, capfd
):
    captures = tmp_path / "captures"
    monkeypatch.setenv("CAPTURE_URI", str(captures))
    scored = tmp_path / "scored.csv"
    status, _, err = score(data_path, "-o", scored, "--run-id", "book-1")
    assert status == 0, err
    data = pd.read_csv(scored)  # the shared data's charges are carried through
    assert len(data) == len(pd.read_csv(data_path))
    # The bills, fabricated from the data set's charges, name each estimate by the scorer's id.
    bills = tmp_path / "bills.csv"
    data[["inference_id", "charges"]].to_csv(bills, index=False)
    joined = tmp_path / "joined.parquet"
    capfd.readouterr()
    status, out = _outcomes(capfd, "join", "--captures", captures, "--actuals", bills, "-o", joined)
    assert status == 0, out
    assert out.startswith(f"joined {len(data):,} of {len(data):,} captures")
    assert pd.read_parquet(tmp_path / "joined.unbilled.parquet").empty

    status, out = _outcomes(capfd, "report", joined, "--format", "json")
    result = json.loads(out)
    error = data["estimate"] - data["charges"]
    covered = (data["likely_lower"] <= data["charges"]) & (data["charges"] <= data["likely_upper"])
    figures = result["overall"]
    assert figures["records"] == len(data)
    assert figures["mae"] == pytest.approx(error.abs().mean(), rel=1e-12)
    assert figures["rmse"] == pytest.approx(math.sqrt((error**2).mean()), rel=1e-12)
    assert figures["coverage"] == pytest.approx(covered.mean(), rel=1e-12)
    assert status in (0, 3)  # 3: coverage above its promise on the model's own training rows


def test_a_file_scored_again_under_its_run_id_is_captured_again_and_joined_once(
    score, tmp_path, monkeypatch, capfd
):
    captures = tmp_path / "captures"
    monkeypatch.setenv("CAPTURE_URI", str(captures))
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "\n".join(GOOD) + "\n")
    for _ in range(2):  # a rerun, or a redelivered /worker/files message
        status, _, err = score(source, "-o", tmp_path / "out.csv", "--run-id", "again")
        assert status == 0, err
    assert len(_captured(captures)) == 4
    bills = tmp_path / "bills.csv"
    bills.write_text("inference_id,charges\nagain-2,20000\nagain-3,9000\n")
    capfd.readouterr()
    status, out = _outcomes(
        capfd, "join", "--captures", captures, "--actuals", bills, "-o", tmp_path / "j.csv"
    )
    assert status == 0, out
    assert "joined 2 of 2 captures" in out and "2 repeated captures kept once" in out
