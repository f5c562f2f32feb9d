"""Output and rejects files: chunks written in order to a sink that appears only when published."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow as pa

from ..errors import UsageError
from .cells import inert_text
from .formats import CSV, PARQUET
from .storage import Sink


def csv_header(columns, inert: bool = True) -> bytes:
    """One CSV header line (quoted only where needed; names a spreadsheet would evaluate
    quoted as ``cells.inert_text`` quotes them, unless ``inert`` is off)."""
    text = io.StringIO()
    names = [inert_text(c) if inert else c for c in columns]
    csv.writer(text, lineterminator="\n").writerow(names)
    return text.getvalue().encode("utf-8")


def csv_writable(kind: pa.DataType) -> bool:
    """True for the Arrow types a CSV cell holds exactly: text, numbers, booleans, times."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return any(
        test(kind)
        for test in (
            pa.types.is_null,
            pa.types.is_boolean,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_decimal,
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_string_view,
            pa.types.is_date,
            pa.types.is_time,
            pa.types.is_timestamp,
            pa.types.is_duration,
        )
    )


def refuse_unwritable_csv(schema: pa.Schema, name: str, what: str) -> None:
    """Refuse, before anything is scored, a column a CSV file cannot hold (nested, binary)."""
    bad = [f"{f.name!r} ({f.type})" for f in schema if not csv_writable(f.type)]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise UsageError(
            f"{name} has a column a CSV file cannot hold: {shown}; write the "
            f"{what} as Parquet or JSON lines (--format, --rejects), or leave the "
            "column out of the input"
        )


class ChunkWriter:
    """Writes scored chunks (bytes, or Arrow tables for Parquet) to a sink, in order."""

    def __init__(
        self,
        sink: Sink,
        fmt: str,
        columns=None,
        schema: pa.Schema | None = None,
        inert: bool = True,
    ):
        self.sink, self.fmt, self.schema = sink, fmt, schema
        self.parquet: Any = None  # pyarrow's ParquetWriter (untyped), once the first rows came
        if fmt == CSV and columns is not None:
            sink.write(csv_header(columns, inert))

    @property
    def streams(self) -> bool:
        """True when the rows go out as they are written (standard output)."""
        return self.sink.streams

    def write(self, payload) -> None:
        """Append one chunk's rows."""
        if payload is None:
            return
        if self.fmt != PARQUET:
            if payload:
                self.sink.write(payload)
                self.sink.flush()  # each chunk reaches the (temporary) file as it is done
            return
        parquet = self.parquet
        if parquet is None:
            if payload.num_rows == 0 and self.schema is None:
                self.schema = _storable(payload.schema)
                return
            parquet = self._open(_storable(payload.schema) if payload.num_rows else self.schema)
        if payload.num_rows:
            parquet.write_table(self._conform(payload))

    def _open(self, schema: pa.Schema) -> Any:
        """Start the Parquet file with ``schema``; its writer (pyarrow's ParquetWriter)."""
        import pyarrow.parquet as pq

        self.schema = schema
        self.parquet = pq.ParquetWriter(self.sink, schema)
        return self.parquet

    def _conform(self, table: pa.Table) -> pa.Table:
        schema = self.schema  # set once the first rows came
        if schema is None or table.schema.equals(schema):
            return table
        try:
            return table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            changed = [f.name for f in table.schema if f.type != schema.field(f.name).type]
            raise UsageError(
                "a Parquet file has one type per column, but column "
                + ", ".join(changed)
                + f" holds values of another type than in the first rows ({exc}); write CSV "
                "or JSON lines instead, or give the column one type"
            ) from None

    def finish(self) -> None:
        """Write the file's end (a Parquet footer) and make it durable, still unpublished."""
        if self.fmt == PARQUET:
            parquet = self.parquet
            if parquet is None:
                parquet = self._open(self.schema if self.schema is not None else pa.schema([]))
            parquet.close()
        self.sink.finish()

    def abort(self) -> str | None:
        """Leave nothing that looks finished; say what could not be cleaned up."""
        note = self.sink.abort()  # from here on the sink takes writes and drops them
        if self.parquet is not None:
            try:  # closed now, into the void, so that its finalizer has nothing left to do
                self.parquet.close()
            except (pa.ArrowException, OSError, ValueError):
                pass
            self.parquet = None
        return note


def _storable(schema: pa.Schema) -> pa.Schema:
    """A column with no values yet (type null) is stored as text."""
    return pa.schema(
        [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema],
        metadata=schema.metadata,
    )
