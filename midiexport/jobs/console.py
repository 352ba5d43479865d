"""Console: what a batch shows on stderr while it runs, and the summary line at its end.

``ProgressBar`` draws one line, redrawn in place on a terminal: inputs done of the
total found, inputs per second and time left (records too when JSON Lines are read).
Lines printed during the batch (warnings, failures) go through ``ProgressBar.echo``,
which clears the bar, prints the line above it and draws the bar again: nothing is
swallowed. ``Tally`` adds up outcomes for the summary.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..display import plural

REDRAW_S = 0.1  # the bar is redrawn at most ten times a second: cheap, and still looks live
BAR_WIDTH = 24  # characters of the bar itself; the line stays under 80 columns
MB = 1_000_000  # the bytes of a JSON Lines input, as the bar shows them


class ProgressBar:
    """A one-line progress bar written through ``write`` (stderr on a terminal).

    ``total``: the inputs of the batch (files, or tasks), known once they are found; the
    bar, the rate and the time left count inputs. ``records``: a unit may be one record of
    an input (a line of JSON Lines), so records done are shown beside the inputs, and the
    rate counts records. ``size``: the bytes of a batch's one JSON Lines input, given only
    for such a batch (None: not known, or not one such input): the bar and the time left
    then follow the bytes its records were read from, as a single input alone would leave
    the bar at 0/1.
    """

    def __init__(self, total: int, write: Callable[[str], None], *, enabled: bool,
                 clock: Callable[[], float] = time.monotonic, records: bool = False,
                 size: int | None = None) -> None:  # fmt: skip
        self.total, self.done, self.enabled, self.records = total, 0, enabled, records
        self.size, self.bytes_done = size, 0
        self.inputs_done = 0  # inputs finished: all their units done
        self._seen: set[str] = set()  # the inputs units came from so far
        self._write, self._clock = write, clock
        self._start = clock()
        self._drawn_at: float | None = None
        self._shown = False

    def step(self, inputs: Sequence[str] = (), *, partial: bool = False, size: int = 0) -> None:
        """Count one unit done, and redraw when the last drawing is old enough (or at the end).

        ``inputs``: the input files the unit read (several .mid stems make one song; none: the
        unit is an input of its own, a task). ``partial``: it is one record of its input,
        which counts as done once a unit of another input is (units come in input order).
        ``size``: the bytes of the input the unit was read from (a JSON Lines line), for ``size``.
        """
        self.done += 1
        self.bytes_done += size
        if inputs:
            self._seen.update(inputs)
            self.inputs_done = len(self._seen) - partial
        else:
            self.inputs_done += 1
        now = self._clock()
        at_end = self.inputs_done == self.total
        if self.enabled and (self._drawn_at is None or now - self._drawn_at >= REDRAW_S or at_end):
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
        """Return the bar as text: '[#####-----] 12/300  35.1/s  ETA 0:08'.

        With ``records``: '[#####-----] 2/3 inputs  1,204 records  35.1/s  ETA 0:08', the rate
        in records; the time left is the inputs left at the pace of those done ('-:--' until one is).
        """
        elapsed = max(now - self._start, 1e-9)
        rate = (self.done if self.records else self.inputs_done) / elapsed
        if self.size:  # one JSON Lines input: '[#####-----] 12.0/40.0 MB  1,204 records  35.1/s  ETA 0:08'
            part = min(self.bytes_done / self.size, 1.0)
            filled = round(BAR_WIDTH * part)
            left = _clock_time((1 - part) * elapsed / part) if part else "-:--"
            unit, name = (MB, "MB") if self.size >= MB // 10 else (1000, "kB")  # a small file: "0.4/1.2 kB"
            read = f"{self.bytes_done / unit:.1f}/{self.size / unit:.1f} {name}"
            count = f"{read}  {self.done:,} {plural(self.done, 'record')}"
        else:
            done = min(self.inputs_done, self.total)
            filled = round(BAR_WIDTH * done / self.total)
            left = _clock_time((self.total - done) * elapsed / done) if done else "-:--"
            count = f"{done}/{self.total}"
            if self.records:
                count += f" inputs  {self.done:,} {plural(self.done, 'record')}"
        return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {count}  {rate:.1f}/s  ETA {left}"

    def _draw(self, now: float) -> None:
        self._write("\r\x1b[K" + self.line(now))
        self._drawn_at, self._shown = now, True


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Tally:
    """Outcomes added up for the summary line (and the JSON report's totals).

    Inputs are counted once each: converted, skipped (every file existed) or failed. A
    converted input may also have kept some files that existed (a part of ``--split``, a
    song's file made from other stems): ``kept`` counts those files, said beside its notes.
    """

    def __init__(self) -> None:
        self.converted = self.repaired = self.repairs = self.skipped = self.failed = self.notes = self.kept = 0
        self.left_out: Counter[str] = Counter()

    def add(self, outcome: Any) -> None:
        if outcome.skipped:
            self.skipped += 1
        elif outcome.error is not None:
            self.failed += 1
        else:
            self.converted += 1
            self.notes += outcome.notes
            self.kept += len(outcome.existing)
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
        kept = f"; {self.kept:,} existing {plural(self.kept, 'file')} kept" if self.kept else ""
        return (
            f"{self.converted} converted ({self.notes:,} {plural(self.notes, 'note')}{kept}), {self.repaired} repaired "
            f"({self.repairs:,} {plural(self.repairs, 'repair')}){left_out}, {self.skipped} skipped (exist), "
            f"{self.failed} failed"
        )
