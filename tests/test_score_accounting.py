"""Every input line is accounted for, and no input multiplies into its rejects file.

A quote left open swallows the lines after it into one value: those lines are a reject naming
them, count as rejected rows one by one (in the summary and for --max-rejects), and never fall
between the output and the rejects. A rejected row echoes at most ``cells.ECHO_LIMIT``
characters of a cell or line, and has one problem for all its keys that are not columns.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from insurance_charges.core.schema import FIELDS, check_value
from insurance_charges.scoring import cells

from .scoring_support import (
    WRITERS,
    error_lines,
    fields_of,
    messages_of,
    problems_of,
    read_rows,
    summary_of,
)

pytest_plugins = ("tests.scoring_support",)  # the score fixture

HEADER = "id,age,sex,bmi,children,smoker,region"


def good_line(i: int) -> str:
    return f"P{i},{19 + i % 40},female,27.9,{i % 4},yes,southwest"


def csv_with(lines: dict[int, str], count: int) -> str:
    """A CSV file of ``count`` good data lines (line 2 on, line n holding id Pn), some
    replaced by ``lines``."""
    body = [lines.get(n, good_line(n)) for n in range(2, count + 2)]
    return "\n".join([HEADER, *body]) + "\n"


def swallowed_range(message: str) -> tuple[int, int]:
    found = re.match(r"lines? (\d+)(?:-(\d+))?:", message)
    assert found, message
    return int(found.group(1)), int(found.group(2) or found.group(1))


# A quote left open, in the ways a hand-edited or badly exported file leaves one. Line 13 opens
# it; what follows decides where the csv module stops: its field size limit (131,072
# characters, about 3,800 of these lines), the end of the input, or a closing quote further on
# followed by text, or by a row of the wrong width.
OPEN_QUOTES = {
    "never closed, long file": ({13: '"P13,19,female,27.9,0,yes,southwest'}, 6000),
    "never closed, to the end": ({5990: '"P5990,19,female,27.9,0,yes,southwest'}, 6000),
    "closed, then more text": (
        {13: '"P13,19,female,27.9,0,yes,southwest', 20: 'P20"x,19,female,27.9,0,yes,southwest'},
        300,
    ),
    "closed, wrong width": (
        {13: '"P13,19,female', 16: 'P16",19,female,27.9,0,yes,southwest,x'},
        300,
    ),
}


@pytest.mark.parametrize("chunk_rows", [7, 50_000])
@pytest.mark.parametrize("case", OPEN_QUOTES)
def test_lines_swallowed_by_an_open_quote_are_a_reject_naming_them_and_each_is_counted(
    score, tmp_path, case, chunk_rows
):
    replaced, count = OPEN_QUOTES[case]
    (tmp_path / "in.csv").write_text(csv_with(replaced, count))
    status, _, err = score(
        tmp_path / "in.csv",
        "-o",
        tmp_path / "out.csv",
        "--chunk-rows",
        chunk_rows,
        "--jobs",
        1,
        "--max-rejects",
        10**6,
    )
    assert status == 0, err
    scored = {int(r["id"][1:]) for r in read_rows(tmp_path / "out.csv")}  # P<line>
    rejects = read_rows(tmp_path / "out.rejects.csv")
    swallowed = set()
    for reject in rejects:
        [(field, message)] = problems_of(reject)
        first, last = swallowed_range(message)
        assert field is None and (reject["line"], reject["last_line"]) == (str(first), str(last))
        swallowed |= set(range(first, last + 1))
    assert min(swallowed) == min(replaced)
    assert scored | swallowed == set(range(2, count + 2)) and not scored & swallowed
    report = summary_of(err)
    assert report["rows_read"] == count == report["rows_scored"] + report["rows_rejected"]
    assert report["rows_rejected"] == report["rows_unreadable"] == len(swallowed)
    assert report["first_unreadable_line"] == min(replaced)
    assert f"from line {min(replaced)}" in report["message"]


def test_the_reject_says_the_quote_is_never_closed_and_how_to_fix_it(score, tmp_path):
    replaced, count = OPEN_QUOTES["never closed, long file"]
    (tmp_path / "in.csv").write_text(csv_with(replaced, count))
    score(tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    [reject] = read_rows(tmp_path / "out.rejects.csv")
    [message] = messages_of(reject)
    first, last = swallowed_range(message)
    assert message == (
        f"lines 13-{last}: a quote opened in the row that starts on line 13 is never closed "
        "within 131,072 characters, so these lines were read as one value; close the quote (a "
        'quote inside a quoted value is written twice: ""), then score these lines again'
    )
    assert 3000 < last - first < 5000  # 131,072 characters of 36-character lines


@pytest.mark.parametrize("allowed, status", [(0, 1), (1, 1), ("all but one", 1), ("all", 0)])
def test_max_rejects_counts_every_swallowed_line_not_one_reject(score, tmp_path, allowed, status):
    replaced, count = OPEN_QUOTES["never closed, long file"]
    (tmp_path / "in.csv").write_text(csv_with(replaced, count))
    _, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "probe.csv", "--max-rejects", 10**6)
    rejected = summary_of(err)["rows_rejected"]
    limit = {"all but one": rejected - 1, "all": rejected}.get(allowed, allowed)
    got, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--max-rejects", limit)
    assert got == status
    if status:
        assert f"{rejected:,} rows rejected, more than --max-rejects allows" in err


# Inputs whose rejects multiplied: each problem of a row echoed the whole row (six problems of
# a 100 KB row: 600 KB), and a JSON-lines row had one problem per key that is not a column.
LONG = "x" * 100_000


def long_invalid_csv(path: Path) -> None:
    path.write_text(HEADER + "\n" + "".join(f"{LONG}{i},abc,x,y,z,q,w\n" for i in range(20)))


def long_invalid_jsonl(path: Path) -> None:
    record = {
        "id": LONG,
        "age": "abc",
        "sex": "x",
        "bmi": "y",
        "children": "z",
        "smoker": "q",
        "region": "w",
    }
    path.write_text("".join(json.dumps({**record, "n": i}) + "\n" for i in range(20)))


def long_text_jsonl(path: Path) -> None:
    path.write_text("".join(f"not json {LONG}{i}\n" for i in range(20)))


def empty_rows_csv(path: Path) -> None:
    path.write_text(HEADER + "\n" + ",,,,,,\n" * 20_000)


def empty_objects_jsonl(path: Path) -> None:
    path.write_text("{}\n" * 20_000)


def one_bad_line_repeated_csv(path: Path) -> None:
    path.write_text(HEADER + "\n" + "P1,abc,x,y,z,q,w\n" * 20_000)


def one_short_line_repeated_csv(path: Path) -> None:
    path.write_text(HEADER + "\n" + "P1,abc\n" * 20_000)


def open_quote_csv(path: Path) -> None:
    path.write_text(csv_with({13: '"' + good_line(13)}, 6000))


def many_keys_jsonl(path: Path) -> None:
    first = {
        "id": 0,
        "age": 19,
        "sex": "female",
        "bmi": 27.9,
        "children": 0,
        "smoker": "yes",
        "region": "southwest",
    }
    extra = {f"key{k}": k for k in range(3000)}
    path.write_text(
        json.dumps(first)
        + "\n"
        + "".join(json.dumps({**first, "id": i, **extra}) + "\n" for i in range(1, 20))
    )


def repeated_keys_jsonl(path: Path) -> None:
    fields = (
        '"age": 19, "sex": "female", "bmi": 27.9, "children": 0, "smoker": "yes", '
        '"region": "southwest"'
    )
    repeated = ", ".join(f'"k{k}": 1, "k{k}": 2' for k in range(3000))
    path.write_text("".join(f'{{"id": {i}, {fields}, {repeated}}}\n' for i in range(20)))


HOSTILE = {
    "long rows, every field wrong, CSV rejects": (long_invalid_csv, "in.csv", "out.csv", None),
    "long rows, every field wrong, JSON-lines rejects": (
        long_invalid_csv,
        "in.csv",
        "out.csv",
        "rejects.jsonl",
    ),
    "long records, every field wrong": (long_invalid_jsonl, "in.jsonl", "out.jsonl", None),
    "long records to CSV": (long_invalid_jsonl, "in.jsonl", "out.csv", None),
    "long lines that are not JSON": (long_text_jsonl, "in.jsonl", "out.jsonl", None),
    "an open quote, JSON-lines rejects": (open_quote_csv, "in.csv", "out.csv", "rejects.jsonl"),
    "3,000 keys that are not columns": (many_keys_jsonl, "in.jsonl", "out.csv", None),
    "3,000 keys that are not Parquet columns": (many_keys_jsonl, "in.jsonl", "out.parquet", None),
    "3,000 repeated keys": (repeated_keys_jsonl, "in.jsonl", "out.jsonl", None),
    # Six problems a row of a few bytes: once six rejects lines a row, each with the row.
    "empty CSV rows": (empty_rows_csv, "in.csv", "out.csv", None),
    "empty CSV rows, Parquet rejects": (empty_rows_csv, "in.csv", "out.csv", "rejects.parquet"),
    "empty JSON objects": (empty_objects_jsonl, "in.jsonl", "out.jsonl", None),
    "empty JSON objects, CSV rejects": (
        empty_objects_jsonl,
        "in.jsonl",
        "out.jsonl",
        "rejects.csv",
    ),
    "one bad line repeated": (one_bad_line_repeated_csv, "in.csv", "out.csv", "rejects.jsonl"),
    "one short line repeated": (one_short_line_repeated_csv, "in.csv", "out.csv", None),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_no_input_makes_a_rejects_file_larger_than_itself(score, tmp_path, case):
    make, source, output, rejects = HOSTILE[case]
    make(tmp_path / source)
    args = ["--rejects", tmp_path / rejects] if rejects else []
    status, _, err = score(tmp_path / source, "-o", tmp_path / output, *args)
    assert status == 1 and not error_lines(err), err
    written = tmp_path / (rejects or output.replace("out.", "out.rejects."))
    size = (tmp_path / source).stat().st_size
    assert 0 < written.stat().st_size < size, (written.stat().st_size, size)
    assert summary_of(err)["problems"] <= 7 * summary_of(err)["rows_rejected"]


def echoed_texts(path: Path) -> list[str]:
    if path.suffix == ".jsonl":
        texts = []
        for line in path.read_text().splitlines():
            item = json.loads(line)
            row = item.get("row")
            if isinstance(row, dict):  # a row of a CSV or Parquet input: its cells
                texts.extend(str(value) for value in row.values())
            else:  # a JSON-lines record as it was sent, or text that was no row
                texts.append(item["text"] if "text" in item else json.dumps(row))
            texts.extend(field or "" for field in fields_of(item))
        return texts
    with open(path, newline="") as f:
        return [value for row in csv.reader(f) for value in row]


LONG_TEXT = (
    "long rows, every field wrong, CSV rejects",
    "long rows, every field wrong, JSON-lines rejects",
    "long records, every field wrong",
    "long records to CSV",
    "long lines that are not JSON",
    "an open quote, JSON-lines rejects",
)


@pytest.mark.parametrize("case", LONG_TEXT)
def test_a_reject_echoes_at_most_the_limit_of_a_cell_or_line_and_says_how_long_it_was(
    score, tmp_path, case
):
    make, source, output, rejects = HOSTILE[case]
    make(tmp_path / source)
    args = ["--rejects", tmp_path / rejects] if rejects else []
    score(tmp_path / source, "-o", tmp_path / output, *args)
    written = tmp_path / (rejects or output.replace("out.", "out.rejects."))
    texts = echoed_texts(written)
    cut = [t for t in texts if re.search(r"… \(\d+ characters in all\)$", t)]
    assert cut and all(
        len(t) <= cells.ECHO_LIMIT + len("… (1234567 characters in all)") for t in texts
    )
    source_text = (tmp_path / source).read_text()
    assert all(t[: t.rindex("… (")] in source_text for t in cut)  # a slice of the input


@pytest.mark.parametrize("output", ["out.csv", "out.parquet"])
def test_keys_that_are_not_columns_are_one_problem_naming_the_first_three(score, tmp_path, output):
    many_keys_jsonl(tmp_path / "in.jsonl")
    status, _, err = score(tmp_path / "in.jsonl", "-o", tmp_path / output)
    assert status == 1
    rejects = read_rows(tmp_path / output.replace("out.", "out.rejects."))
    assert [int(r["line"]) for r in rejects] == list(range(2, 21))  # one problem a row
    fmt = output.split(".")[1]
    [(field, message)] = problems_of(rejects[0])
    assert field == "key0"
    assert message == (
        f"'key0', 'key1', 'key2' and 2,997 more are not columns of the {fmt} output, whose "
        "columns are the first record's keys; write JSON lines, or give every record the same "
        "keys"
    )


def test_repeated_keys_that_are_not_fields_are_one_problem_and_repeated_fields_one_each(
    score, tmp_path
):
    repeated_keys_jsonl(tmp_path / "in.jsonl")
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write(
            '{"age": 19, "age": 20, "sex": "female", "bmi": 27.9, "children": 0, '
            '"smoker": "yes", "region": "southwest", "k": 1, "k": 2}\n'
        )
    status, _, _ = score(tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl")
    assert status == 1
    rejects = read_rows(tmp_path / "out.rejects.jsonl")
    assert [(r["line"], fields_of(r)) for r in rejects[-2:]] == [(20, ["k0"]), (21, ["age", "k"])]
    assert messages_of(rejects[0]) == [
        "'k0', 'k1', 'k2' and 2,997 more appear more than once in the object; give each key once"
    ]
    assert messages_of(rejects[-1]) == [
        "'age' appears more than once in the object; send each field once",
        "'k' appears more than once in the object; give each key once",
    ]


# One line a rejected row ---------------------------------------------------------------------

SIX_WRONG = {
    "id": "P9",
    "age": "abc",
    "sex": "x",
    "bmi": "y",
    "children": "z",
    "smoker": "q",
    "region": "w",
}
GOOD = {
    "id": "P1",
    "age": 19,
    "sex": "female",
    "bmi": 27.9,
    "children": 0,
    "smoker": "yes",
    "region": "southwest",
}


@pytest.mark.parametrize("rejects_format", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("source", ["csv", "jsonl", "parquet"])
def test_a_row_with_six_problems_is_one_rejects_line_listing_all_six(
    score, tmp_path, source, rejects_format
):
    rows = (
        [GOOD, SIX_WRONG]
        if source != "parquet"
        else [{k: str(v) for k, v in GOOD.items()}, SIX_WRONG]
    )  # one type a Parquet column
    WRITERS[source](tmp_path / f"in.{source}", rows)
    rejects = tmp_path / f"rejects.{rejects_format}"
    status, _, err = score(
        tmp_path / f"in.{source}", "-o", tmp_path / "out.csv", "--rejects", rejects
    )
    assert status == 1  # a row was rejected and --max-rejects is 0
    [reject] = read_rows(rejects)
    line = 3 if source == "csv" else 2  # a CSV header is line 1
    assert (int(reject["line"]), int(reject["last_line"]), int(reject["rows"])) == (line, line, 1)
    assert problems_of(reject) == [(f.name, check_value(f, SIX_WRONG[f.name])[1]) for f in FIELDS]
    report = summary_of(err)
    assert (
        report["rows_read"],
        report["rows_scored"],
        report["rows_rejected"],
        report["problems"],
    ) == (2, 1, 1, 6)


BAD = ",".join(SIX_WRONG.values())
OTHER_BAD = "P8,abc,x,y,z,q,w"
GOOD_LINE = "P1,19,female,27.9,0,yes,southwest"
# Line 1 is the header. Identical rejected rows one after the other are one line, blank lines
# between them or not; a scored row, text that is no row or another row ends the run.
RUNS_CSV = [BAD, BAD, "", BAD, GOOD_LINE, BAD, "P3,abc", "P3,abc", BAD, OTHER_BAD, OTHER_BAD]
RUNS = [(3, 6, 3, 6), (8, 8, 1, 6), (9, 10, 2, 1), (11, 11, 1, 6), (12, 13, 2, 6)]


AS_JSON = {
    GOOD_LINE: json.dumps(GOOD),
    BAD: json.dumps(SIX_WRONG),
    OTHER_BAD: json.dumps({**SIX_WRONG, "id": "P8"}),
    "P3,abc": "not json",
    "": "",
}


@pytest.mark.parametrize("rejects_format", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("source", ["csv", "jsonl"])
def test_identical_rejected_rows_one_after_the_other_are_one_line_naming_their_lines(
    score, tmp_path, source, rejects_format
):
    lines = [GOOD_LINE, *RUNS_CSV]
    if source == "csv":
        text = "\n".join([HEADER, *lines]) + "\n"
        runs = RUNS
    else:  # no header: each line one less
        text = "\n".join(AS_JSON[line] for line in lines) + "\n"
        runs = [(first - 1, last - 1, rows, count) for first, last, rows, count in RUNS]
    (tmp_path / f"in.{source}").write_text(text)
    rejects = tmp_path / f"rejects.{rejects_format}"
    status, _, err = score(
        tmp_path / f"in.{source}", "-o", tmp_path / "out.csv", "--rejects", rejects
    )
    assert status == 1
    got = read_rows(rejects)
    assert [
        (int(r["line"]), int(r["last_line"]), int(r["rows"]), len(problems_of(r))) for r in got
    ] == runs
    report = summary_of(err)
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (11, 2, 9)
    assert report["rows_rejected"] == sum(int(r["rows"]) for r in got)
    assert report["problems"] == 6 * 7 + 2  # a run counts each of its rows' problems


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 50_000])
def test_a_run_split_by_chunks_still_counts_every_row_once(score, tmp_path, chunk_rows):
    (tmp_path / "in.csv").write_text("\n".join([HEADER, GOOD_LINE, *RUNS_CSV]) + "\n")
    status, _, err = score(
        tmp_path / "in.csv",
        "-o",
        tmp_path / "out.csv",
        "--chunk-rows",
        chunk_rows,
        "--max-rejects",
        10,
    )
    assert status == 0
    got = read_rows(tmp_path / "out.rejects.csv")
    covered = {n for r in got for n in range(int(r["line"]), int(r["last_line"]) + 1)}
    blank = 5  # inside the first run when one chunk holds it whole
    assert covered - {blank} == {3, 4, 6, 8, 9, 10, 11, 12, 13}
    assert summary_of(err)["rows_rejected"] == sum(int(r["rows"]) for r in got) == 9


@pytest.mark.parametrize("allowed, status", [(0, 1), (4, 1), (5, 0)])
def test_max_rejects_counts_the_rows_of_a_run_not_its_one_line(score, tmp_path, allowed, status):
    (tmp_path / "in.csv").write_text("\n".join([HEADER, GOOD_LINE, *[BAD] * 5]) + "\n")
    got, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--max-rejects", allowed)
    assert got == status
    assert len(read_rows(tmp_path / "out.rejects.csv")) == 1
    if status:
        assert "5 rows rejected, more than --max-rejects allows" in err


def test_a_line_break_in_a_key_cannot_split_a_csv_rejects_cell(score, tmp_path):
    record = json.dumps({**GOOD, "a\nb": 1}).replace('"a\\nb": 1', '"a\\nb": 1, "a\\nb": 2')
    (tmp_path / "in.jsonl").write_text(json.dumps(GOOD) + "\n" + record + "\n")
    status, _, _ = score(
        tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--rejects", tmp_path / "rejects.csv"
    )
    assert status == 1
    [reject] = read_rows(tmp_path / "rejects.csv")
    assert reject["fields"] == "a\\nb"  # the key's line break written as \n
    assert problems_of(reject) == [
        ("a\\nb", "'a\\nb' appears more than once in the object; give each key once")
    ]
