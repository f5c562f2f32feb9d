"""A chunk's output or rejects table as the bytes (or Arrow table) of its file's format."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from .cells import inert_table
from .formats import CSV, PARQUET


def encode_output(table: pa.Table, fmt: str, inert: bool):
    """``table`` as ``fmt`` writes it: a table for Parquet, bytes for CSV and JSON lines;
    with ``inert``, CSV text cells a spreadsheet would evaluate are quoted (cells.py)."""
    if fmt == PARQUET:
        return table
    if fmt == CSV:
        sink = io.BytesIO()
        if table.num_rows:
            table = inert_table(table) if inert else _plain_strings(table)
            pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
        return sink.getvalue()
    return b"".join(
        orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
        for row in table.to_pylist()
    )


def _plain_strings(table: pa.Table) -> pa.Table:
    """View strings as plain strings (Arrow's CSV writer takes no views)."""
    for i, column in enumerate(table.columns):
        if pa.types.is_string_view(column.type):
            table = table.set_column(i, table.column_names[i], column.cast(pa.string()))
    return table
