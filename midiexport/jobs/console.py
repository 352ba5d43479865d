"""Console: what a batch shows on stderr while it runs, and the summary line at its end.

``ProgressBar`` draws one line, redrawn in place on a terminal: count, rate and time
left. Lines printed during the batch (warnings, failures) go through ``ProgressBar.echo``,
which clears the bar, prints the line above it and draws the bar again: nothing is
swallowed. ``Tally`` adds up outcomes for the summary.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..display import plural

REDRAW_S = 0.1  # the bar is redrawn at most ten times a second: cheap, and still looks live
BAR_WIDTH = 24  # characters of the bar itself; the line stays under 80 columns


class ProgressBar:
    """A one-line progress bar written through ``write`` (stderr on a terminal).

    ``total`` None: the count of units is not known (JSON Lines), so no bar and no
    time left, only the count and the rate.
    """

    def __init__(self, total: int | None, write: Callable[[str], None], *, enabled: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.total, self.done, self.enabled = total, 0, enabled
        self._write, self._clock = write, clock
        self._start = clock()
        self._drawn_at: float | None = None
        self._shown = False

    def step(self) -> None:
        """Count one unit done, and redraw when the last drawing is old enough (or at the end)."""
        self.done += 1
        now = self._clock()
        if self.enabled and (self._drawn_at is None or now - self._drawn_at >= REDRAW_S or self.done == self.total):
            self._draw(now)

    def echo(self, line: str) -> None:
        """Print a line above the bar (the bar is drawn again at the next step)."""
        self.clear()
        self._write(line + "\n")
        if self.enabled and self.done:
            self._draw(self._clock())

    def clear(self) -> None:
        """Remove the bar from the screen (before the summary)."""
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def line(self, now: float) -> str:
        """Return the bar as text: '[#####-----]  12/300  35.1/s  ETA 0:08'."""
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            filled = round(BAR_WIDTH * min(self.done, self.total) / self.total)
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            return (f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {self.done}/{self.total}  "
                    f"{rate:.1f}/s  ETA {_clock_time(left)}")  # fmt: skip
        return f"{self.done} done  {rate:.1f}/s"

    def _draw(self, now: float) -> None:
        self._write("\r\x1b[K" + self.line(now))
        self._drawn_at, self._shown = now, True


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Tally:
    """Outcomes added up for the summary line (and the JSON report's totals)."""

    def __init__(self) -> None:
        self.converted = self.repaired = self.repairs = self.skipped = self.failed = self.notes = 0
        self.left_out: Counter[str] = Counter()

    def add(self, outcome: Any) -> None:
        if outcome.skipped:
            self.skipped += 1
        elif outcome.error is not None:
            self.failed += 1
        else:
            self.converted += 1
            self.notes += outcome.notes
            if outcome.report:
                self.left_out.update(outcome.report.left_out)
                if outcome.report.repairs:
                    self.repaired += 1
                    self.repairs += outcome.report.repairs

    def totals(self) -> dict[str, Any]:
        """Return the counts as plain data."""
        return {"converted": self.converted, "notes": self.notes, "repaired": self.repaired,
                "repairs": self.repairs, "notes_left_out": dict(self.left_out), "skipped_exist": self.skipped,
                "failed": self.failed}  # fmt: skip

    def summary(self) -> str:
        left_out = ""
        if self.left_out:
            kinds = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(self.left_out.items(), key=lambda kv: -kv[1]))
            total = sum(self.left_out.values())
            left_out = f", {total:,} {plural(total, 'note')} left out ({kinds})"
        return (
            f"{self.converted} converted ({self.notes:,} {plural(self.notes, 'note')}), {self.repaired} repaired "
            f"({self.repairs:,} {plural(self.repairs, 'repair')}){left_out}, {self.skipped} skipped (exist), "
            f"{self.failed} failed"
        )
