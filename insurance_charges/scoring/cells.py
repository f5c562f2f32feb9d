"""What text from the input may carry into an output file.

Formulas: a spreadsheet evaluates a CSV cell that starts with ``=``, ``+``, ``-`` or ``@`` (and
one starting with a tab or a carriage return, which it strips first), so an id such as
``=HYPERLINK(...)`` or ``+cmd|'/C calc'!A0`` would run when the file is opened. OWASP's advice
("CSV Injection") is to start such a cell with a single quote, which the spreadsheet shows as
text. Only text cells are touched, and not those that are a plain number (``-1.5``, ``+19``),
which a spreadsheet reads as that number: a CSV input's cells are all text, and its numbers
must come out as they went in. JSON lines and Parquet outputs are never changed.

Echoes: a rejected row is written back beside each of its problems; a text cell (or a whole
line) longer than ``ECHO_LIMIT`` characters is cut there, so a long line or a run of lines
swallowed by an open quote cannot multiply into a rejects file many times the input's size.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QUOTE = "'"
STARTS_A_FORMULA = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_STARTS_A_FORMULA = re.compile(STARTS_A_FORMULA)
_PLAIN_NUMBER = re.compile(PLAIN_NUMBER)


def _byte_table(characters: bytes) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(characters, dtype=np.uint8)] = True
    table.flags.writeable = False  # a constant
    return table


_STARTS_A_FORMULA_BYTE = _byte_table(b"=+-@\t\r")

# 4,096 characters, the least of a problem the API always shows (docs/security.md): a real
# record, with its id and a few carried columns, is a few hundred characters and is echoed
# whole; only a pasted blob or lines swallowed by an open quote are cut.
ECHO_LIMIT = 4096


def _text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _text_column(array):
    """A text column as plain strings (dictionary and view strings decoded), or None."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        if not _text(kind.value_type):
            return None
        array = array.cast(kind.value_type)
        kind = kind.value_type
    if not _text(kind):
        return None
    return array.cast(pa.string()) if pa.types.is_string_view(kind) else array


def inert_text(value: str) -> str:
    """One text cell (or a header name) that a spreadsheet will not evaluate."""
    if _STARTS_A_FORMULA.match(value) and not _PLAIN_NUMBER.match(value):
        return QUOTE + value
    return value


def _may_start_a_formula(text) -> bool:
    """True when some cell's first byte is one a formula starts with.

    Read from Arrow's buffers with numpy: the usual column has none, and this costs a tenth of
    a regular expression over it (which a CSV output would pay on every text column).
    """
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()
        if data is None:
            continue  # every cell is empty
        wide: type[np.signedinteger] = (
            np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        )
        bounds = np.frombuffer(offsets, dtype=wide)[chunk.offset : chunk.offset + len(chunk) + 1]
        starts = bounds[:-1][bounds[1:] > bounds[:-1]]
        if _STARTS_A_FORMULA_BYTE[np.frombuffer(data, dtype=np.uint8)[starts]].any():
            return True
    return False


def inert_column(array):
    """A text column with every formula-like cell quoted (other columns as they are)."""
    text = _text_column(array)
    if text is None or not _may_start_a_formula(text):  # the usual case
        return text if text is not None else array
    starts = pc.match_substring_regex(text, STARTS_A_FORMULA)
    risky = pc.and_(starts, pc.invert(pc.match_substring_regex(text, PLAIN_NUMBER)))
    quoted = pc.binary_join_element_wise(
        pa.scalar(QUOTE, text.type), text, pa.scalar("", text.type)
    )
    return pc.if_else(risky, quoted, text)


def inert_table(table: pa.Table) -> pa.Table:
    """Every text column of a table made inert for a spreadsheet."""
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        inert = inert_column(column)
        if inert is not column:
            table = table.set_column(i, name, inert)
    return table


def cut_text(value: str | None, limit: int = ECHO_LIMIT) -> str | None:
    """Text echoed in a rejects file: whole, or its first ``limit`` characters and its size."""
    if value is None or len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(value)} characters in all)"


def cut_column(array, limit: int = ECHO_LIMIT):
    """A text column with every cell longer than ``limit`` cut as ``cut_text`` cuts it."""
    text = _text_column(array)
    if text is None:
        return array
    lengths = pc.utf8_length(text)
    long = pc.greater(lengths, limit)
    if not pc.any(long).as_py():
        return text
    kind = text.type
    cut = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(text, 0, limit),
        pa.scalar("… (", kind),
        pc.cast(lengths, kind),
        pa.scalar(" characters in all)", kind),
        pa.scalar("", kind),
    )
    return pc.if_else(long, cut, text)


def cut_table(table: pa.Table, limit: int = ECHO_LIMIT) -> pa.Table:
    """Every text column of a table cut as ``cut_column`` cuts it."""
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        cut = cut_column(column, limit)
        if cut is not column:
            table = table.set_column(i, name, cut)
    return table
