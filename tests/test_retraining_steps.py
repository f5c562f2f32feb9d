"""The retraining steps' own rules (insurance_charges/retraining), without AWS or a process.

Which capture files a weekly outcomes report reads, how a step's JSON result is found in a
command's output, and that every bad argument ends in one line and status 2 before anything is
fetched. The steps themselves run in the image in tests/test_retraining_dag.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from insurance_charges.retraining import cli, steps

END = dt.datetime(2026, 12, 7, 3, tzinfo=dt.UTC)
WEEK_START = END - dt.timedelta(days=7)


@pytest.mark.parametrize(
    "key, inside",
    [
        ("captures/2026/12/07/02/a.jsonl", True),  # the last hour before the end
        ("captures/2026/11/30/03/a.jsonl", True),  # the first hour of the week
        ("captures/2026/12/07/03/a.jsonl", False),  # the end itself belongs to next week
        ("captures/2026/11/30/02/a.jsonl", False),  # an hour before the week
        ("captures/2026/13/01/00/a.jsonl", False),  # no such month
        ("captures/latest/a.jsonl", False),  # not an hour partition
        ("captures/2026/12/07/a.jsonl", False),  # a day, not an hour
    ],
)
def test_the_outcomes_report_reads_the_hour_partitions_of_the_week_before_the_run(key, inside):
    assert steps.in_window(key, "captures/", WEEK_START, END) is inside


def test_a_steps_result_is_the_last_json_object_the_command_printed():
    output = 'starting\n{"first": 1}\n[1, 2]\nnot json\n{"sha256": "ab", "rows": 3}\n'
    assert steps.last_json(output) == {"sha256": "ab", "rows": 3}


def test_a_command_that_printed_no_json_object_is_one_clear_error():
    with pytest.raises(steps.StepError, match="no JSON report in the command's output"):
        steps.last_json("Refused: 2 rows refused\n[1]\n")


@pytest.mark.parametrize(
    "argv, says",
    [
        (["check", "--source", "canonical", "--work", "work-bucket/x"], "--work 'work-bucket/x'"),
        (
            ["check", "--source", "canonical", "--work", "s3://w/x", "--max-rejected", "-1"],
            "give 0 or more",
        ),
        (["check", "--source", "canonical", "--work", "s3://w/x", "--sha256", "12"], "--sha256"),
        (
            ["promote", "--version", "v", "--holdout", "s3://w/h.csv", "--holdout-sha256", "x"],
            "is not a SHA-256",
        ),
        (
            ["outcomes", "--captures", "s3://c/p", "--actuals", "s3://b/a.csv"]
            + ["--work", "s3://w/x", "--until", "last monday"],
            "'last monday' is not an ISO date",
        ),
        (
            ["outcomes", "--captures", "s3://c/p", "--actuals", "s3://b/a.csv"]
            + ["--work", "s3://w/x", "--until", "2026-12-07", "--days", "0"],
            "give whole days from 1 to 92",
        ),
        (["train"], "invalid choice: 'train'"),
    ],
)
def test_a_bad_argument_is_one_line_and_status_2_before_anything_is_fetched(argv, says, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and says in err[0]
