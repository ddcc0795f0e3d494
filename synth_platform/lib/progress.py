"""Progress lines of long steps (fit, sample, re-key, evaluate): rows done, percent and rate.

Domain code takes an optional ``progress`` callable receiving one line of text; the Dagster
assets pass ``context.log.info``, so the lines appear in the run's log as the step works.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Receives one human-readable line.
Progress = Callable[[str], None]


class Meter:
    """Counts the units of one stage and reports ``done / total (percent), rate`` at most once
    every ``every`` seconds (and always at the end).

    Args:
        progress: Where lines go (None: nowhere).
        stage: What is counted, e.g. ``"sample transactions"``.
        total: Units to do (rows, columns).
        unit: Their name, plural.
        every: Seconds between two lines.
    """

    def __init__(
        self,
        progress: Progress | None,
        *,
        stage: str,
        total: int,
        unit: str = "rows",
        every: float = 5.0,
    ) -> None:
        self._progress = progress
        self.stage, self.total, self.unit, self.every = stage, max(int(total), 0), unit, every
        self.done = 0
        self._start = self._last = time.perf_counter()

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.done / elapsed
        # A slow stage (a wide table's columns) keeps its decimals, not "0 columns/s".
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2f}"
        return (
            f"{self.stage}: {self.done:,} / {self.total:,} {self.unit} ({pct:.0f}%), "
            f"{shown} {self.unit}/s, {elapsed:.1f} s"
        )

    def advance(self, n: int) -> None:
        """``n`` more units are done; report when ``every`` seconds passed or all are done."""
        self.set(self.done + int(n))

    def set(self, done: int, total: int | None = None) -> None:
        """``done`` units are done in all (of ``total``, when the stage learns it late)."""
        if total is not None:
            self.total = max(int(total), 0)
        finished, self.done = self.done >= self.total > 0, int(done)
        now = time.perf_counter()
        if self._progress is not None and (
            now - self._last >= self.every or (self.done >= self.total and not finished)
        ):
            self._last = now
            self._progress(self.line())


class Tally:
    """Counts the units done toward ``total`` and tells ``progress`` ``(done, total)`` after
    each addition: the callback form that pure functions take (a :class:`Meter`'s ``set``
    fits it)."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int) -> None:
        self.progress, self.total, self.done = progress, int(total), 0

    def advance(self, n: int) -> None:
        self.done += int(n)
        if self.progress is not None:
            self.progress(self.done, self.total)


def report(progress: Progress | None, line: str) -> None:
    """Send one line, when there is somewhere to send it."""
    if progress is not None:
        progress(line)
