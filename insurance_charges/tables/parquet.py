"""Parquet: record batches as tables of typed cells, each row numbered from 1 (a Parquet file
has no lines, so a row's number stands in for one in pointers and rejects)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa


def numbered_batches(parquet_file, rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The record batches of a ``pyarrow.parquet.ParquetFile``, at most ``rows`` rows each,
    with the number of each one's first row."""
    line = 1
    for batch in parquet_file.iter_batches(batch_size=rows):
        yield line, batch
        line += batch.num_rows


def batch_rows(batch: pa.RecordBatch, first_line: int) -> tuple[pa.Table, np.ndarray]:
    """A batch as a table, and each of its rows' numbers."""
    table = pa.Table.from_batches([batch])
    return table, first_line + np.arange(table.num_rows, dtype=np.int64)
