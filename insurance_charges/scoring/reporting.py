"""What a run tells the person or the scheduler running it, on stderr.

On a terminal: a progress bar (rows, rows/s, time left) and a closing summary in words. Not on
a terminal (a batch job, a pipe, a log collector): one JSON object per line, the same shape as
the service's logs (``time``, ``level``, ``logger``, ``message``), with a ``progress`` line
every ``LOG_EVERY`` seconds and a ``summary`` line at the end carrying every count.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO

from ..command_logs import JsonFormatter

LOGGER = "insurance_charges.scoring"
LOG_EVERY = 10.0  # seconds between progress lines in JSON mode


class Reporter:
    """Progress while rows are scored, and the summary at the end."""

    def __init__(self, stream: IO | None = None, terminal: bool | None = None):
        self.stream = stream = stream if stream is not None else sys.stderr
        self.terminal = stream.isatty() if terminal is None else terminal
        self.started = time.perf_counter()
        self.bar = None
        self.last_log = self.started
        self.rows = 0
        handler = logging.StreamHandler(stream)
        if self.terminal:
            handler.setFormatter(logging.Formatter("%(message)s"))
            level = logging.WARNING
        else:
            handler.setFormatter(JsonFormatter())
            level = logging.INFO
        root = logging.getLogger()
        self.handler, self.level = handler, root.level
        root.addHandler(handler)  # the core's lines (model loading) too
        root.setLevel(level)
        self.log = logging.getLogger(LOGGER)  # this run's own lines go here, and only here
        self.log.addHandler(handler)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False

    def event(self, message: str, **fields) -> None:
        """One log line (JSON) or, on a terminal, nothing but the bar."""
        if not self.terminal:
            self.log.info(message, extra={"fields": fields})

    def start(self, total_rows: int | None = None) -> None:
        """Begin timing (after the model is loaded) and show the bar on a terminal."""
        self.started = self.last_log = time.perf_counter()
        if self.terminal:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_rows,
                unit=" rows",
                unit_scale=True,
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.1,
                mininterval=0.5,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} rows "
                "[{elapsed}<{remaining}, {rate_fmt}]",
            )

    def advance(
        self, rows: int, done_bytes: int, total_bytes: int | None, total_rows: int | None
    ) -> None:
        """Count rows just written; estimate the total from the bytes read when unknown."""
        self.rows += rows
        if total_rows is None and total_bytes and done_bytes:
            total_rows = max(self.rows, round(self.rows * total_bytes / done_bytes))
        now = time.perf_counter()
        if self.bar is not None:
            if total_rows is not None:
                self.bar.total = total_rows
            self.bar.update(rows)
            return
        if now - self.last_log >= LOG_EVERY:
            self.last_log = now
            seconds = now - self.started
            rate = self.rows / seconds if seconds > 0 else 0.0
            fields = {
                "event": "progress",
                "rows": self.rows,
                "seconds": round(seconds, 1),
                "rows_per_second": round(rate),
            }
            if total_rows and rate:
                fields["seconds_left"] = round(max(0, total_rows - self.rows) / rate, 1)
            self.event(f"{self.rows:,} rows scored", **fields)

    def elapsed(self) -> float:
        """Seconds since ``start``."""
        return time.perf_counter() - self.started

    def close(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def detach(self) -> None:
        """Stop routing log records to this run's stderr (the run is over)."""
        self.close()
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)
        self.log.removeHandler(self.handler)
        self.log.propagate = True

    def summary(
        self,
        counts: dict,
        output: str,
        rejects: str | None,
        first_unreadable: int | None,
        run_id: str,
        captured: dict | None = None,
        *,
        worded: tuple[int, int | None],
    ) -> None:
        """The closing line: rows read = scored + rejected, warnings, time, rows/s, and the run
        id the scored rows' inference ids start with.

        ``worded``: the rejected rows before the first rejects line without messages, and that
        line (None when every line has them: the first count is then all rejected rows).

        Rejected rows include one per line of text that is not a row (a quote left open
        swallows the lines after it): the line says how many, and where the first starts.
        """
        self.close()
        seconds = self.elapsed()
        rate = counts["rows"] / seconds if seconds > 0 else 0.0
        unreadable = counts.get("unreadable", 0)
        lost = (
            f"; {unreadable:,} of them in lines that are not rows, from line {first_unreadable}"
            if unreadable
            else ""
        )
        where = f"; rejects in {rejects}" if counts["rejected"] and rejects else ""
        worded_rows, unworded_line = worded
        if where and unworded_line is not None:
            where += (
                f"; messages for the first {worded_rows:,} rejected rows, the rest (from line "
                f"{unworded_line}) name their fields"
            )
        message = (
            f"{counts['rows']:,} rows read = {counts['scored']:,} scored + "
            f"{counts['rejected']:,} rejected ({counts['problems']:,} problem"
            f"{'' if counts['problems'] == 1 else 's'}{lost}"
            f"{where}); {counts['warnings']:,} warnings; {seconds:.2f} s, "
            f"{rate:,.0f} rows/s; run id {run_id} (inference ids {run_id}-<line>)"
        )
        if captured is not None:
            message += f"; {captured['captures_shipped']:,} captured" + (
                f", {captured['captures_dropped']:,} captures dropped (see the log)"
                if captured["captures_dropped"]
                else ""
            )
        if self.terminal:
            print(message, file=self.stream, flush=True)
            return
        self.event(
            message,
            event="summary",
            rows_read=counts["rows"],
            rows_scored=counts["scored"],
            rows_rejected=counts["rejected"],
            rows_unreadable=unreadable,
            first_unreadable_line=first_unreadable,
            problems=counts["problems"],
            warnings=counts["warnings"],
            seconds=round(seconds, 3),
            rows_per_second=round(rate),
            output=output,
            rejects=rejects,
            rejects_worded=worded_rows,
            first_unworded_line=unworded_line,
            run_id=run_id,
            **(captured or {}),
        )
        self.stream.flush()
