"""The retraining data check: checksum, columns and every row against the schema; refused rows
counted and listed, never dropped unseen; the stable holdout the promotion gate judges on."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import subprocess
import sys

import pandas as pd
import pytest

from insurance_charges.training import data_checks, data_fetch, holdout
from insurance_charges.training.data import CANONICAL_SHA256, CANONICAL_URL

from .aws import scoring_s3_on_moto
from .conftest import ROOT

pytest_plugins = ("tests.outcomes_fixtures",)  # shared, shared_joined: a real join output

HEADER = "age,sex,bmi,children,smoker,region,charges"


def run(capsys, *argv) -> tuple[int, dict | None, str]:
    """The command in-process: exit status, the report it printed (if any), its stderr."""
    status = data_checks.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out.strip() else None, err


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows_of(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def damaged(data_path, tmp_path, replacements: dict[int, str]):
    """The shared data set with some lines (1 is the header) replaced."""
    lines = data_path.read_text().splitlines()
    for number, text in replacements.items():
        lines[number - 1] = text
    target = tmp_path / "damaged.csv"
    target.write_text("\n".join(lines) + "\n")
    return target


def test_the_canonical_data_is_accepted_byte_for_byte(data_path, tmp_path, capsys):
    status, report, _ = run(capsys, data_path, "--out", tmp_path)
    assert status == 0
    assert report["sha256"] == report["accepted_sha256"] == CANONICAL_SHA256
    assert report["vouched_by"] == "the canonical file's published SHA-256"
    assert (report["rows"], report["accepted"], report["rejected"]) == (1338, 1338, 0)
    assert (tmp_path / "accepted.csv").read_bytes() == data_path.read_bytes()
    assert rows_of(tmp_path / "rejected.csv") == [["line", "field", "message", *HEADER.split(",")]]
    assert json.loads((tmp_path / "report.json").read_text()) == report


BAD_ROWS = [
    ("19,female,27.9,0,maybe,southwest,16884.924", "smoker", "smoker must be one of"),
    ("17,male,33,1,no,southeast,1725.5523", "age", "age must be a whole number from 18"),
    ("28,male,33,3,no,southeast,", "charges", "charges must be a positive number"),
    ("33,male,22.705,0,no,northwest,-21984.47", "charges", "charges must be a positive number"),
    ("32,male,28.88,0,no,northwest,n/a", "charges", "charges must be a positive number"),
    ("31,female,25.74,0,no,southeast", "", "has 6 values, expected 7"),
    ("46,female,33.44,1,no,southeast,8240.5896,extra", "", "has 8 values, expected 7"),
    ("37,female,27.74,3,no,northwest,7281.5056e0", "charges", "charges must be a positive"),
    ("37,male,29.83,two,no,northeast,6406.4107", "children", "children must be a whole"),
]


@pytest.mark.parametrize("text, field, message", BAD_ROWS, ids=[b[2][:24] for b in BAD_ROWS])
def test_a_refused_row_is_counted_and_listed_with_its_line(
    data_path, tmp_path, capsys, text, field, message
):
    source = damaged(data_path, tmp_path, {7: text})
    status, report, err = run(
        capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source), "--max-rejected", 1
    )
    assert status == 0, err
    assert (report["rows"], report["accepted"], report["rejected"]) == (1338, 1337, 1)
    assert report["rejected_examples"][0]["line"] == 7
    assert message in report["rejected_examples"][0]["message"]
    line, got_field, got_message, *cells = rows_of(tmp_path / "out" / "rejected.csv")[1]
    assert (line, got_field, cells) == ("7", field, text.split(","))
    assert message in got_message
    accepted = rows_of(tmp_path / "out" / "accepted.csv")
    assert len(accepted) == 1338 and text.split(",") not in accepted


def test_more_refused_rows_than_allowed_refuse_the_file(data_path, tmp_path, capsys):
    source = damaged(data_path, tmp_path, {3: BAD_ROWS[0][0], 9: BAD_ROWS[1][0]})
    status, report, err = run(
        capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source), "--max-rejected", 1
    )
    assert status == data_checks.EXIT_REFUSED and report is None
    assert "2 rows refused by the schema, more than the 1 allowed" in err
    assert "line 3 refused" in err and "line 9 refused" in err
    assert not (tmp_path / "out" / "accepted.csv").exists()  # nothing to train on by mistake
    assert [r[0] for r in rows_of(tmp_path / "out" / "rejected.csv")[1:]] == ["3", "9"]


def test_blank_lines_are_counted_not_rows(data_path, tmp_path, capsys):
    source = tmp_path / "blank.csv"
    source.write_text(data_path.read_text().replace("\n", "\n\n", 2))
    status, report, _ = run(capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source))
    assert status == 0
    assert (report["rows"], report["blank_lines"]) == (1338, 2)


@pytest.mark.parametrize(
    "header, named",
    [
        ("age,sex,bmi,children,smoker,region", "missing ['charges']"),
        ("age,sex,bmi,children,smoker,region,charges,notes", "unexpected ['notes']"),
        ("Age,sex,bmi,children,smoker,region,charges", "missing ['age'], unexpected ['Age']"),
    ],
)
def test_other_columns_refuse_the_file(tmp_path, capsys, header, named):
    source = tmp_path / "columns.csv"
    source.write_text(header + "\n19,female,27.9,0,yes,southwest,16884.924\n")
    status, _, err = run(capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source))
    assert status == data_checks.EXIT_REFUSED
    assert named in err and "expected exactly" in err


def test_columns_in_another_order_are_checked_by_name(data_path, tmp_path, capsys):
    rows = rows_of(data_path)
    order = [6, 0, 5, 1, 2, 4, 3]
    source = tmp_path / "reordered.csv"
    with open(source, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([[r[i] for i in order] for r in rows])
    status, report, _ = run(capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source))
    assert status == 0 and report["accepted"] == 1338


def test_a_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    source = tmp_path / "latin1.csv"
    source.write_bytes(HEADER.encode() + b"\n19,f\xe9male,27.9,0,yes,southwest,16884.924\n")
    status, _, err = run(capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source))
    assert status == data_checks.EXIT_REFUSED and "is not UTF-8 text" in err


def test_a_file_with_the_wrong_digest_is_refused_before_any_row_is_read(
    data_path, tmp_path, capsys
):
    status, _, err = run(capsys, data_path, "--out", tmp_path, "--sha256", "0" * 64)
    assert status == data_checks.EXIT_REFUSED
    assert f"has SHA-256 {CANONICAL_SHA256}, but the SHA-256 given (--sha256) is " in err
    assert not (tmp_path / "accepted.csv").exists()


def test_a_file_nobody_vouches_for_is_refused_with_how_to_vouch(data_path, tmp_path, capsys):
    source = damaged(data_path, tmp_path, {2: "19,female,27.9,0,yes,southwest,16884.92"})
    status, _, err = run(capsys, source, "--out", tmp_path / "out")
    assert status == data_checks.EXIT_REFUSED
    assert "has no SHA-256 to check it against; pass --sha256" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sha256", "abc"], "is not a SHA-256; give its 64 hex digits"),
        (["--max-rejected", "-1"], "give 0 or more rows"),
        (["--holdout", "1"], "give a share between 0 and 1"),
    ],
)
def test_bad_options_are_usage_errors(data_path, tmp_path, capsys, argv, message):
    status, _, err = run(capsys, data_path, "--out", tmp_path, *argv)
    assert status == data_checks.EXIT_USAGE and message in err


@pytest.mark.parametrize(
    "source, message",
    [
        ("ftp://example.com/insurance.csv", "read data from `canonical`, https://, s3://"),
        ("s3://bucket-only", "is not an S3 object URI"),
        ("/nonexistent/insurance.csv", "no such file"),
    ],
)
def test_unreadable_sources_are_usage_errors(tmp_path, capsys, source, message):
    status, _, err = run(capsys, source, "--out", tmp_path)
    assert status == data_checks.EXIT_USAGE and message in err


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_canonical_means_the_published_url_checked_by_its_digest(
    data_path, tmp_path, capsys, monkeypatch
):
    asked = []
    monkeypatch.setattr(
        "urllib.request.urlopen",
        lambda url, timeout: asked.append(url) or _Response(data_path.read_bytes()),
    )
    status, report, _ = run(capsys, "canonical", "--out", tmp_path)
    assert status == 0 and asked == [CANONICAL_URL]
    assert (report["source"], report["sha256"]) == (CANONICAL_URL, CANONICAL_SHA256)


def test_a_download_that_fails_says_try_again_later(tmp_path, capsys, monkeypatch):
    def unreachable(url, timeout):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", unreachable)
    status, _, err = run(
        capsys, "https://example.com/weekly.csv", "--out", tmp_path, "--sha256", "0" * 64
    )
    assert status == data_checks.EXIT_TRY_LATER
    assert "Try again later: cannot download https://example.com/weekly.csv" in err


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on 127.0.0.1; boto3 finds it through AWS_ENDPOINT_URL."""
    with scoring_s3_on_moto("weekly-data") as client:
        yield client


def test_an_s3_object_is_vouched_for_by_its_stored_sha256(s3, data_path, tmp_path, capsys):
    body = damaged(data_path, tmp_path, {2: "19,female,27.9,0,yes,southwest,16884.92"})
    s3.put_object(
        Bucket="weekly-data", Key="with-sha.csv", Body=body.read_bytes(), ChecksumAlgorithm="SHA256"
    )
    status, report, _ = run(capsys, "s3://weekly-data/with-sha.csv", "--out", tmp_path / "out")
    assert status == 0 and report["sha256"] == sha256(body)
    assert report["vouched_by"] == "the SHA-256 checksum S3 stores for the object"


def test_an_s3_object_without_a_sha256_needs_one_given(s3, data_path, tmp_path, capsys):
    body = damaged(data_path, tmp_path, {2: "19,female,27.9,0,yes,southwest,16884.92"})
    s3.put_object(Bucket="weekly-data", Key="plain.csv", Body=body.read_bytes())  # CRC32 only
    status, _, err = run(capsys, "s3://weekly-data/plain.csv", "--out", tmp_path / "a")
    assert status == data_checks.EXIT_REFUSED and "--checksum-algorithm SHA256" in err
    status, report, _ = run(
        capsys, "s3://weekly-data/plain.csv", "--out", tmp_path / "b", "--sha256", sha256(body)
    )
    assert status == 0 and report["vouched_by"] == "the SHA-256 given (--sha256)"


def test_a_missing_s3_object_says_try_again_later(s3, tmp_path, capsys):
    status, _, err = run(capsys, "s3://weekly-data/not-yet.csv", "--out", tmp_path)
    assert status == data_checks.EXIT_TRY_LATER
    assert "Try again later: no such object reading s3://weekly-data/not-yet.csv (NoSuchKey)" in err


def test_a_missing_s3_bucket_is_an_error_to_fix_not_a_retry(s3, tmp_path, capsys):
    status, _, err = run(capsys, "s3://no-such-weekly-data/week.csv", "--out", tmp_path)
    assert status == 1
    assert "Error: no such bucket reading s3://no-such-weekly-data/week.csv" in err


def test_the_holdout_is_a_stable_fifth_kept_apart_from_training(data_path, tmp_path, capsys):
    status, report, _ = run(capsys, data_path, "--out", tmp_path, "--holdout")
    assert status == 0 and report["holdout_fraction"] == 0.2
    train, held = rows_of(tmp_path / "train.csv"), rows_of(tmp_path / "holdout.csv")
    assert train[0] == held[0] == HEADER.split(",")
    assert (report["train_rows"], report["holdout_rows"]) == (len(train) - 1, len(held) - 1)
    assert sorted(train[1:] + held[1:]) == sorted(rows_of(data_path)[1:])
    assert 0.17 < len(held[1:]) / 1338 < 0.23
    assert report["holdout_sha256"] == sha256(tmp_path / "holdout.csv")


def test_a_record_stays_on_its_side_when_the_data_grows_or_is_reordered(
    data_path, tmp_path, capsys
):
    rows = rows_of(data_path)
    run(capsys, data_path, "--out", tmp_path / "week1", "--holdout")
    shuffled = rows[1:] + [["64", "male", "31.2", "1", "no", "northeast", "14107.21"]]
    random.Random(4).shuffle(shuffled)
    week2 = tmp_path / "week2.csv"
    with open(week2, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([rows[0], *shuffled])
    run(capsys, week2, "--out", tmp_path / "week2", "--holdout", "--sha256", sha256(week2))
    held1 = {tuple(r) for r in rows_of(tmp_path / "week1" / "holdout.csv")[1:]}
    train2 = {tuple(r) for r in rows_of(tmp_path / "week2" / "train.csv")[1:]}
    assert held1 and not held1 & train2  # last week's holdout is never trained on this week


def test_the_same_record_written_differently_is_on_the_same_side():
    cells = "19,female,27.9,0,yes,southwest,16884.924".split(",")
    plain = dict(zip(HEADER.split(","), cells, strict=True))
    padded = dict(plain, bmi="27.90", charges="16884.9240")
    assert all(
        holdout.held_out(plain, f) == holdout.held_out(padded, f) for f in (0.1, 0.2, 0.5, 0.9)
    )


@pytest.mark.slow
def test_progress_is_json_lines_for_a_scheduler_and_the_report_is_the_last_line(
    data_path, tmp_path
):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "insurance_charges.training.data_checks",
            str(data_path),
            "--out",
            str(tmp_path),
            "--holdout",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["step"] for line in lines] == ["fetch", "check", "holdout"]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert json.loads(done.stdout.splitlines()[-1])["accepted"] == 1338


def test_fetch_reads_a_local_file_in_place(data_path, tmp_path):
    fetched = data_fetch.fetch(str(data_path), tmp_path)
    assert fetched.path == data_path and not list(tmp_path.iterdir())


# The drift report against the champion's training data --------------------------------------

CARD = ROOT / "model" / "insurance-charges.card.json"  # its distribution: all 1,338 rows


def rows_file(tmp_path, rows: list[list[str]]):
    """A CSV of the data set's header and ``rows``."""
    source = tmp_path / "week.csv"
    with open(source, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([HEADER.split(","), *rows])
    return source


def drift_check(capsys, source, tmp_path, *reference):
    status, report, err = run(
        capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source), *reference
    )
    assert status == 0, err
    return report, json.loads((tmp_path / "out" / "drift.json").read_text()), err


def test_a_sample_of_the_training_data_shows_no_drift(data_path, tmp_path, capsys):
    rows = random.Random(7).sample(rows_of(data_path)[1:], 600)
    report, drift, err = drift_check(
        capsys, rows_file(tmp_path, rows), tmp_path, "--reference-card", CARD
    )
    card = json.loads(CARD.read_text())
    assert drift["reference_version"] == card["model_version"]
    assert (drift["records"], drift["training_rows"]) == (600, 1338)
    assert {name: f["status"] for name, f in drift["fields"].items()} == dict.fromkeys(
        ["age", "sex", "bmi", "children", "smoker", "region"], "ok"
    )
    assert drift["status"] == report["drift"]["status"] == "ok"
    assert report["drift"]["fields"]["age"] == {
        "psi": drift["fields"]["age"]["psi"],
        "status": "ok",
    }
    assert "need a model" in drift["estimate"]  # the estimates are left to the service
    lines = [json.loads(line) for line in err.splitlines()]
    assert [line["field"] for line in lines if "field" in line] == list(drift["fields"])


def test_only_smokers_aged_50_and_over_flag_age_and_smoker_but_are_still_accepted(
    data_path, tmp_path, capsys
):
    older_smokers = [r for r in rows_of(data_path)[1:] if int(r[0]) >= 50 and r[4] == "yes"]
    rows = (older_smokers * 20)[:600]  # repeated past drift's 500-record minimum
    report, drift, err = drift_check(
        capsys, rows_file(tmp_path, rows), tmp_path, "--reference-card", CARD
    )
    assert report["accepted"] == 600  # drift is reported, never a refusal
    assert drift["fields"]["age"]["status"] == drift["fields"]["smoker"]["status"] == "drift"
    assert drift["status"] == "drift"
    assert drift["fields"]["smoker"]["bins"][0] == {"bin": "yes", "training": 0.2048, "served": 1.0}
    warned = {
        json.loads(line).get("field")
        for line in err.splitlines()
        if json.loads(line)["level"] == "WARNING"
    }
    assert {"age", "smoker"} <= warned


def test_a_card_without_a_training_distribution_says_so_and_the_check_goes_on(
    data_path, tmp_path, capsys
):
    card = json.loads(CARD.read_text())
    del card["distribution"]  # an older champion's card
    older = tmp_path / "older.card.json"
    older.write_text(json.dumps(card))
    report, drift, err = drift_check(capsys, data_path, tmp_path, "--reference-card", older)
    assert report["accepted"] == 1338
    note = f"no training distribution in the champion's card ({card['model_version']})"
    assert drift == {**drift, "status": "not_compared", "note": note, "fields": {}}
    assert report["drift"]["note"] == note and note in err


def test_no_champion_to_compare_with_is_said_in_the_report(data_path, tmp_path, capsys):
    report, drift, err = drift_check(
        capsys, data_path, tmp_path, "--no-reference-card", "no champion in the store yet"
    )
    assert (drift["status"], drift["note"]) == ("not_compared", "no champion in the store yet")
    assert "input drift not compared: no champion in the store yet" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "cannot read it as a model card"),
        ("[1, 2]", "a model card is a JSON object"),
        ('{"distribution": {"fields": {}}}', "distribution entry age must be an object"),
    ],
)
def test_an_unreadable_reference_card_is_a_usage_error(data_path, tmp_path, capsys, text, message):
    card = tmp_path / "bad.card.json"
    card.write_text(text)
    status, report, err = run(
        capsys, data_path, "--out", tmp_path / "out", "--reference-card", card
    )
    assert status == data_checks.EXIT_USAGE and report is None
    assert f"--reference-card {card}: {message}" in err


# --- The joined records (`outcomes join`'s output) as retraining's newest data -----------------

TRAINING = list(data_checks.EXPECTED_COLUMNS)


def joined_copy(shared_joined, tmp_path, suffix: str, change=None):
    """A copy of the real join output, with ``change(frame)`` applied to its rows."""
    frame = (
        pd.read_csv(shared_joined[suffix], dtype=str, keep_default_na=False)
        if suffix == ".csv"
        else pd.read_parquet(shared_joined[suffix])
    )
    frame = change(frame) if change else frame
    target = tmp_path / f"changed{suffix}"
    if suffix == ".csv":
        frame.to_csv(target, index=False)
    else:
        frame.to_parquet(target, index=False)
    return target


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_joined_records_become_the_training_rows_they_were_estimated_and_billed_for(
    shared, shared_joined, tmp_path, capsys, suffix
):
    source = shared_joined[suffix]
    status, report, err = run(
        capsys, source, "--out", tmp_path, "--sha256", sha256(source), "--holdout"
    )
    assert status == 0, err
    assert (report["joined"], report["format"]) == (True, suffix[1:])
    assert (report["rows"], report["accepted"], report["rejected"]) == (1338, 1338, 0)
    assert report["train_rows"] + report["holdout_rows"] == 1338
    accepted = pd.read_csv(tmp_path / "accepted.csv")
    assert list(accepted.columns) == TRAINING  # the training CSV's shape, nothing else
    _, _, data = shared
    pd.testing.assert_frame_equal(accepted, data[TRAINING], check_exact=True)
    assert report["accepted_sha256"] == sha256(tmp_path / "accepted.csv")


BAD_JOINED = [
    ("age", "17", "age", "age must be a whole number from 18"),
    ("smoker", "sometimes", "smoker", "smoker must be one of"),
    ("charges", "-120.5", "charges", "charges must be a positive number"),
    ("charges", "", "charges", "charges must be a positive number"),
    ("inference_id", "has space", "inference_id", "inference_id must be 1 to 200 of"),
    ("inference_id", "patient-0", "inference_id", "'patient-0' is on line 2 too"),
]


@pytest.mark.parametrize(
    "column, value, field, message", BAD_JOINED, ids=[b[3] for b in BAD_JOINED]
)
def test_a_bad_joined_row_is_refused_and_listed_with_its_whole_record(
    shared_joined, tmp_path, capsys, column, value, field, message
):
    def spoil(frame):
        frame.loc[4, column] = value  # line 6 of the CSV
        return frame

    source = joined_copy(shared_joined, tmp_path, ".csv", spoil)
    status, report, err = run(
        capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source), "--max-rejected", 1
    )
    assert status == 0, err
    assert (report["accepted"], report["rejected"]) == (1337, 1)
    header, refused = rows_of(tmp_path / "out" / "rejected.csv")[:2]
    assert header == [*data_checks.PROBLEM_COLUMNS, *data_checks.JOINED_COLUMNS]
    assert refused[:2] == ["6", field] and message in refused[2]
    assert refused[3:] == rows_of(source)[5]  # the joined record as it was, id and all
    assert len(rows_of(tmp_path / "out" / "accepted.csv")) == 1338  # header + 1,337


def test_a_bad_value_in_a_joined_parquet_file_is_refused_with_its_row(
    shared_joined, tmp_path, capsys
):
    def spoil(frame):
        frame["children"] = frame["children"].astype("float64")
        frame.loc[0, "children"] = 2.5
        return frame

    source = joined_copy(shared_joined, tmp_path, ".parquet", spoil)
    status, _, err = run(capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source))
    assert status == data_checks.EXIT_REFUSED
    assert "line 1 refused: children must be a whole number" in err


def test_a_joined_row_with_a_value_missing_is_counted_against_the_joined_header(
    shared_joined, tmp_path, capsys
):
    lines = shared_joined[".csv"].read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]  # billed_at's cell gone
    source = tmp_path / "short.csv"
    source.write_text("\n".join(lines) + "\n")
    status, _, err = run(capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source))
    assert status == data_checks.EXIT_REFUSED
    assert "line 3 refused: has 13 values, expected 14" in err


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda f: f.assign(notes="x"), "unexpected ['inference_id', 'time', 'model_version'"),
        (lambda f: f.drop(columns=["billed_at"]), "unexpected ['inference_id'"),
        (lambda f: f.drop(columns=["charges"]), "missing ['charges']"),
    ],
    ids=["a column more", "billed_at missing", "charges missing"],
)
def test_a_joined_file_with_other_columns_is_refused_naming_both_shapes(
    shared_joined, tmp_path, capsys, change, named
):
    for suffix in (".csv", ".parquet"):
        source = joined_copy(shared_joined, tmp_path, suffix, change)
        status, _, err = run(
            capsys, source, "--out", tmp_path / suffix[1:], "--sha256", sha256(source)
        )
        assert status == data_checks.EXIT_REFUSED
        assert named in err, err
        assert "(a training CSV) or ['inference_id', 'time'" in err
        assert "`python -m insurance_charges.outcomes join` writes" in err


@pytest.mark.parametrize("kind", ["rejects", "unbilled"])
def test_the_files_join_writes_beside_joined_are_not_training_data(
    shared_joined, tmp_path, capsys, kind
):
    source = shared_joined[".parquet"].with_name(f"joined.{kind}.parquet")
    status, _, err = run(capsys, source, "--out", tmp_path, "--sha256", sha256(source))
    assert status == data_checks.EXIT_REFUSED and "expected exactly" in err


def test_a_damaged_parquet_file_is_refused_in_one_line(shared_joined, tmp_path, capsys):
    source = tmp_path / "cut.parquet"
    source.write_bytes(shared_joined[".parquet"].read_bytes()[:-100])
    status, _, err = run(capsys, source, "--out", tmp_path / "out", "--sha256", sha256(source))
    assert status == data_checks.EXIT_REFUSED
    assert "cut.parquet is not a readable Parquet file (" in err


def test_joined_records_in_s3_are_read_like_any_source(s3, shared_joined, tmp_path, capsys):
    body = shared_joined[".parquet"].read_bytes()
    s3.put_object(
        Bucket="weekly-data", Key="outcomes/joined.parquet", Body=body, ChecksumAlgorithm="SHA256"
    )
    status, report, err = run(
        capsys, "s3://weekly-data/outcomes/joined.parquet", "--out", tmp_path / "out"
    )
    assert status == 0, err
    assert (report["joined"], report["format"], report["accepted"]) == (True, "parquet", 1338)
    assert report["vouched_by"] == "the SHA-256 checksum S3 stores for the object"
