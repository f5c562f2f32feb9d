"""Only the first rejected rows carry the core's messages; every later one still has its line.

``--worded-rejects N`` (1,000 by default) words the rejects lines of the first N rejected rows
in input order; each later rejected row keeps its rejects line, its fields and its echo, with
no messages, so that a file of distinct bad rows costs its echo and not the core's wording.
Which lines are worded depends on the input alone: the rejects file is the same bytes whatever
the chunks and the workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from insurance_charges.core.schema import EXAMPLE_RECORD, FIELD_NAMES, FIELDS, check_value
from insurance_charges.scoring.chunk_scorer import ChunkScorer
from insurance_charges.scoring.reading import TextChunk
from insurance_charges.scoring.scored import Plan

from .scoring_support import error_lines, read_rows, summary_of

pytest_plugins = ("tests.scoring_support",)  # the score fixture

HEADER = "id,age,sex,bmi,children,smoker,region"
GOOD = "P0,19,female,27.9,0,yes,southwest"
FORMATS = ["csv", "jsonl", "parquet"]


def all_wrong(i: int) -> str:
    """A row with every field wrong, different from the others by its id."""
    return f"P{i},abc,x,y,z,q,w"


def expected_messages() -> list[str]:
    values = dict(zip(FIELD_NAMES, ["abc", "x", "y", "z", "q", "w"], strict=True))
    return [check_value(f, values[f.name])[1] for f in FIELDS]


def messages(reject: dict) -> list[str] | None:
    """A rejects line's messages in any format, or None when it has none."""
    if "problems" in reject:
        said = [p.get("message") for p in reject["problems"]]
        return None if said and all(m is None for m in said) else said
    cell = reject["messages"]
    if isinstance(cell, str):
        return cell.split("\n") if cell else None
    return cell


def fields(reject: dict) -> list[str | None]:
    if "problems" in reject:
        return [p["field"] for p in reject["problems"]]
    cell = reject["fields"]
    return [f or None for f in cell.split("\n")] if isinstance(cell, str) else cell


def echoed_id(reject: dict) -> str:
    return reject["row"]["id"] if "row" in reject else reject["id"]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


@pytest.mark.parametrize("chunk_rows", [3, 50_000])
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_first_n_rejected_rows_are_worded_and_each_later_one_names_its_fields(
    score, tmp_path, fmt, chunk_rows
):
    source = write_lines(tmp_path / "in.csv", [GOOD, *[all_wrong(i) for i in range(1, 11)]])
    status, _, err = score(
        source,
        "-o",
        tmp_path / "out.csv",
        "--rejects",
        tmp_path / f"rejects.{fmt}",
        "--worded-rejects",
        4,
        "--chunk-rows",
        chunk_rows,
        "--max-rejects",
        10,
    )
    assert status == 0, err
    rejects = read_rows(tmp_path / f"rejects.{fmt}")
    assert [echoed_id(r) for r in rejects] == [f"P{i}" for i in range(1, 11)]  # none lost
    assert [fields(r) for r in rejects] == [list(FIELD_NAMES)] * 10
    assert [messages(r) for r in rejects[:4]] == [expected_messages()] * 4
    assert [messages(r) for r in rejects[4:]] == [None] * 6
    report = summary_of(err)
    assert (report["rejects_worded"], report["first_unworded_line"]) == (4, 7)
    assert report["problems"] == 60  # every problem still counted
    assert (
        "messages for the first 4 rejected rows, the rest (from line 7) name their fields"
        in report["message"]
    )


def test_a_run_of_identical_rows_counts_its_rows_and_is_worded_when_it_starts_within_n(
    score, tmp_path
):
    lines = [all_wrong(1), all_wrong(2), *[all_wrong(3)] * 5, all_wrong(4), all_wrong(5)]
    source = write_lines(tmp_path / "in.csv", lines)
    _, _, err = score(
        source, "-o", tmp_path / "out.csv", "--worded-rejects", 4, "--max-rejects", 10
    )
    rejects = read_rows(tmp_path / "out.rejects.csv")
    assert [(r["line"], r["rows"]) for r in rejects] == [
        ("2", "1"),
        ("3", "1"),
        ("4", "5"),
        ("9", "1"),
        ("10", "1"),
    ]
    assert [messages(r) is not None for r in rejects] == [True, True, True, False, False]
    report = summary_of(err)
    assert (report["rejects_worded"], report["first_unworded_line"]) == (7, 9)


def rejects_with_one_worded(score, source: Path, output: Path, fmt: str) -> list[dict]:
    """The rejects lines of ``source`` scored with only the first rejected row worded."""
    rejects = output.parent / f"rejects.{fmt}"
    score(source, "-o", output, "--rejects", rejects, "--worded-rejects", 1, "--max-rejects", 10)
    return read_rows(rejects)


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_that_is_no_row_keeps_its_message_after_n(score, tmp_path, fmt):
    source = write_lines(tmp_path / "in.csv", [all_wrong(1), all_wrong(2), "a,b", all_wrong(3)])
    rejects = rejects_with_one_worded(score, source, tmp_path / "out.csv", fmt)
    assert [messages(r) is not None for r in rejects] == [True, False, True, False]
    assert fields(rejects[2]) == [None]
    assert messages(rejects[2]) == ["the line has 2 values where the header has 7 columns"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_json_lines_after_n_name_their_fields_and_a_value_that_is_no_object_keeps_its_message(
    score, tmp_path, fmt
):
    record = dict(zip(FIELD_NAMES, ["abc", "x", "y", "z", "q", "w"], strict=True))
    lines = [json.dumps({"id": f"P{i}", **record}) for i in range(1, 4)]
    lines.insert(2, "[1, 2]")
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    rejects = rejects_with_one_worded(score, tmp_path / "in.jsonl", tmp_path / "out.jsonl", fmt)
    assert [messages(r) is not None for r in rejects] == [True, False, True, False]
    assert [fields(r) for r in rejects] == [list(FIELD_NAMES)] * 2 + [[None]] + [list(FIELD_NAMES)]
    assert messages(rejects[0]) == expected_messages()


def test_with_no_more_rejected_rows_than_n_every_line_is_worded_and_the_summary_says_nothing(
    score, tmp_path
):
    source = write_lines(tmp_path / "in.csv", [all_wrong(i) for i in range(1, 4)])
    _, _, err = score(
        source, "-o", tmp_path / "out.csv", "--worded-rejects", 3, "--max-rejects", 10
    )
    assert all(messages(r) for r in read_rows(tmp_path / "out.rejects.csv"))
    report = summary_of(err)
    assert (report["rejects_worded"], report["first_unworded_line"]) == (3, None)
    assert "name their fields" not in report["message"]


def test_worded_rejects_0_words_no_row(score, tmp_path):
    source = write_lines(tmp_path / "in.csv", [GOOD, all_wrong(1)])
    _, _, err = score(source, "-o", tmp_path / "out.csv", "--worded-rejects", 0, "--max-rejects", 1)
    [reject] = read_rows(tmp_path / "out.rejects.csv")
    assert messages(reject) is None and fields(reject) == list(FIELD_NAMES)
    assert summary_of(err)["first_unworded_line"] == 3


def test_the_default_words_the_first_1000_rejected_rows(score, tmp_path):
    source = write_lines(tmp_path / "in.csv", [all_wrong(i) for i in range(1, 1003)])
    _, _, err = score(source, "-o", tmp_path / "out.csv", "--max-rejects", 10**4)
    rejects = read_rows(tmp_path / "out.rejects.csv")
    assert [messages(r) is not None for r in rejects[998:]] == [True, True, False, False]
    assert summary_of(err)["rejects_worded"] == 1000


@pytest.mark.parametrize("given", ["-1", "x", "1.5", ""])
def test_a_worded_rejects_that_is_no_whole_number_is_one_error_line(score, tmp_path, given):
    source = write_lines(tmp_path / "in.csv", [GOOD])
    status, _, err = score(source, "-o", tmp_path / "out.csv", "--worded-rejects", given)
    assert status == 2 and "Traceback" not in err
    [line] = error_lines(err)
    assert "--worded-rejects" in line and repr(given) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# The same bytes whatever the chunks and the workers ----------------------------------------------


def mixed_csv(path: Path) -> Path:
    """Good rows, distinct bad rows, runs of identical ones and text that is no row."""
    lines = []
    for i in range(1, 121):
        if i % 7 == 0:
            lines.append(GOOD)
        elif i % 11 == 0:
            lines.append("a,b")
        elif i % 13 == 0:
            lines.extend([all_wrong(i)] * 3)
        else:
            lines.append(all_wrong(i))
    return write_lines(path, lines)


def mixed_jsonl(path: Path) -> Path:
    """The same as JSON lines, with a line that is no JSON and a value that is no object."""
    record = dict(zip(FIELD_NAMES, ["abc", "x", "y", "z", "q", "w"], strict=True))
    lines = []
    for i in range(1, 121):
        line = json.dumps({"id": f"P{i}", **record})
        if i % 7 == 0:
            lines.append(json.dumps({"id": "P0", **EXAMPLE_RECORD}))
        elif i % 11 == 0:
            lines.append("not json" if i % 2 else "[1]")
        elif i % 13 == 0:
            lines.extend([line] * 3)
        else:
            lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def the_rejects(score, tmp_path: Path, source: Path, fmt: str, *args) -> tuple[object, list]:
    """The rejects file scoring ``source`` writes (its bytes; a Parquet file's rows, since its
    row groups follow the chunks), and its lines read back."""
    rejects = tmp_path / f"rejects.{fmt}"
    status, _, err = score(
        source,
        "-o",
        tmp_path / "out.jsonl",
        "--rejects",
        rejects,
        "--worded-rejects",
        20,
        "--max-rejects",
        10**4,
        *args,
    )
    assert status == 0, err
    lines = read_rows(rejects)
    return (lines if fmt == "parquet" else rejects.read_bytes()), lines


def distinct_csv(path: Path) -> Path:
    lines = [GOOD if i % 5 == 0 else all_wrong(i) for i in range(1, 61)]
    lines[17] = "a,b"
    return write_lines(path, lines)


@pytest.mark.parametrize("chunk_rows", [1, 4, 9])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("make", [distinct_csv, mixed_jsonl], ids=["csv", "jsonl"])
def test_distinct_rejects_are_the_same_bytes_in_chunks_of_any_size(
    score, tmp_path, make, fmt, chunk_rows
):
    source = make(tmp_path / ("in.csv" if make is distinct_csv else "in.jsonl"))
    whole, lines = the_rejects(score, tmp_path, source, fmt, "--chunk-rows", 50_000)
    assert [messages(r) is not None for r in lines].count(False) > 10  # both kinds compared
    if make is mixed_jsonl:  # runs are found within a chunk: chunks that cut none of them
        chunk_rows *= 30
    assert the_rejects(score, tmp_path, source, fmt, "--chunk-rows", chunk_rows)[0] == whole


@pytest.mark.slow  # forks workers
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("make", [mixed_csv, mixed_jsonl], ids=["csv", "jsonl"])
def test_the_rejects_are_the_same_bytes_with_any_number_of_workers(score, tmp_path, make, fmt):
    source = make(tmp_path / ("in.csv" if make is mixed_csv else "in.jsonl"))
    for rows in (3, 7, 40):
        one, _ = the_rejects(score, tmp_path, source, fmt, "--chunk-rows", rows, "--jobs", 1)
        two, _ = the_rejects(score, tmp_path, source, fmt, "--chunk-rows", rows, "--jobs", 2)
        assert two == one


# A chunk sent with more words than it turns out to get -------------------------------------------


def plan(input_format: str, fmt: str) -> Plan:
    return Plan(
        input_format,
        "jsonl",
        fmt,
        ("id", *FIELD_NAMES),
        {f: f for f in FIELD_NAMES},
        run_id="run-1",
    )


def chunks() -> dict[str, TextChunk]:
    lines = [all_wrong(i) for i in range(1, 13)]
    lines[5:5] = [all_wrong(5)] * 2  # a run
    lines[9] = "a,b"
    record = dict(zip(FIELD_NAMES, ["abc", "x", "y", "z", "q", "w"], strict=True))
    json_lines = [json.dumps({"id": i, **record}) for i in range(12)]
    json_lines[6] = "[1]"
    json_lines[3:3] = [json_lines[2]] * 2
    return {
        "csv": TextChunk(2, ("\n".join(lines) + "\n").encode()),
        "jsonl": TextChunk(1, ("\n".join(json_lines) + "\n").encode()),
    }


@pytest.mark.parametrize("allowance", [0, 1, 4, 6, 13])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("input_format", ["csv", "jsonl"])
def test_a_chunk_given_a_larger_budget_finishes_as_if_given_the_exact_one(
    real_model, input_format, fmt, allowance
):
    scorer = ChunkScorer(real_model, plan(input_format, fmt))
    chunk = chunks()[input_format]
    exact = scorer.score(chunk, allowance).rejects.finished(allowance)
    generous = scorer.score(chunk, 14).rejects.finished(allowance)
    if fmt == "parquet":
        assert generous.equals(exact) and isinstance(generous, pa.Table)
    else:
        assert generous == exact
    everything = scorer.score(chunk, 14).rejects.finished(14)
    assert not (generous.equals(everything) if fmt == "parquet" else generous == everything)


def test_a_chunk_cannot_be_finished_with_more_words_than_its_budget(real_model):
    rejects = ChunkScorer(real_model, plan("csv", "csv")).score(chunks()["csv"], 2).rejects
    with pytest.raises(ValueError, match="3 rejected rows to word, over the budget 2"):
        rejects.finished(3)
