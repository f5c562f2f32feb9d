"""One chunk scored: read, validated, estimated, and written out as bytes or an Arrow table.

A ``ChunkScorer`` holds the model and the run's ``Plan``; the command makes one and the pool
gives it to each worker process once, when the worker starts (``parallel.OrderedPool``), so
nothing large crosses a pipe but the chunks and their results. With ``--jobs 1`` it scores in
the command's own process.

Reading is ``tables``': CSV text cells numbered by their lines, JSON lines with the values the
API's strict parser gives, Parquet record batches numbered from 1. Validation and estimates
are the core's: text cells typed as the form types them, every row the fast path does not
certainly accept validated by ``core.validation``, valid rows estimated together by
``core.estimates.estimate_valid`` with pointers ``/<line>/<field>``.

Every line is accounted for: a row is scored or rejected, and text that is not a row (a line of
another width, a quote left open that swallowed the lines after it) is a rejected row for each
line it spans, with one problem naming the lines. A rejected row is one rejects line holding
all of its problems (``problems.Rejected``), and identical rejected rows one after the other
(nothing but blank lines between them) are one line naming their first and last line, as are
identical lines that are no row: the cost of a bad input is its distinct rows, not its
problems. A row has a bounded number of problems (keys that are not columns, or that are
repeated, are one problem each, however many), a rejects file echoes text cut as ``cells``
cuts it, and only the first rejected rows of a run (``--worded-rejects``) carry the core's
messages, the later ones naming their fields: no input multiplies into its rejects.
"""

from __future__ import annotations

from ..tables.csv_text import read_csv_chunk
from ..tables.parquet import batch_rows
from .formats import CSV
from .json_chunks import score_json_lines
from .problems import Rejected
from .reading import BatchChunk
from .scored import Plan, Result
from .table_chunks import score_table


class ChunkScorer:
    """Scores chunks of one run with one model and plan."""

    def __init__(self, model, plan: Plan):
        self.model, self.plan = model, plan

    def score(self, chunk, worded: int) -> Result:
        """Score one chunk (``reading.TextChunk`` or ``reading.BatchChunk``); the rejects
        lines starting within its first ``worded`` rejected rows may get their messages
        (``problems.ChunkRejects``)."""
        if isinstance(chunk, BatchChunk):
            table, lines = batch_rows(chunk.batch, chunk.first_line)
            return score_table(self.model, self.plan, table, lines, [], worded)
        if self.plan.input_format == CSV:
            table, lines, not_rows = read_csv_chunk(chunk.data, chunk.first_line, self.plan.columns)
            return score_table(
                self.model,
                self.plan,
                table,
                lines,
                [Rejected.not_a_row(found) for found in not_rows],
                worded,
            )
        return score_json_lines(self.model, self.plan, chunk, worded)
