"""Timing: how seconds become ticks. A fixed tempo, or the song's own (``--bpm auto``).

With ``auto`` the tempo comes from ``tempo.estimate_tempo`` and the first detected
downbeat is put on a bar line: everything before it becomes a short pickup bar
(n/16, or n/8 or n/4 when n divides), played at the tempo that makes the pickup last
exactly until the downbeat; from the downbeat on, 4/4 at the song's tempo. In a DAW,
bar 1 is that pickup and bar 2 starts on the first downbeat, so bars and beats line
up with the music and the audio alike.

Audio sync is kept: ticks are computed from each note's absolute time through the
tempo map actually written (whole µs per quarter), so a note moves by at most half
a tick; at 960 ticks per quarter (the default with ``auto``) that is under 0.6 ms
down to 50 BPM. ``quantize`` is the one deliberate exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model import Record
from ..options import AUTO, GRID_PATTERN, KEEP_TEMPO_MAP

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .tempo import TempoEstimate

MIN_PICKUP_S = 0.001  # a first downbeat closer to 0 s than this needs no pickup bar


@dataclass(frozen=True)
class TimeMap:
    """Tempo changes (tick, µs per quarter) and time signatures (tick, n, d) of a song.

    ``downbeat_tick`` is where the first full 4/4 bar starts (0 without a pickup);
    ``estimate`` is the tempo estimate behind an ``auto`` map.
    """

    ppq: int
    tempos: tuple[tuple[int, int], ...]
    meters: tuple[tuple[int, int, int], ...] = ((0, 4, 4),)
    downbeat_tick: int = 0
    estimate: TempoEstimate | None = None

    def to_ticks(self, seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Map seconds from the song's start to absolute ticks (rounded), through every tempo."""
        import numpy as np

        if len(self.tempos) == 1:
            ticks_per_s = self.ppq * 1_000_000 / self.tempos[0][1]
            single: npt.NDArray[np.int64] = np.rint(seconds * ticks_per_s).astype(np.int64)
            return single
        ticks = np.array([t for t, _ in self.tempos], dtype=np.float64)
        per_quarter_us = np.array([u for _, u in self.tempos], dtype=np.float64)
        starts_s = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * per_quarter_us[:-1] / (self.ppq * 1e6))])
        segment = np.clip(np.searchsorted(starts_s, seconds, side="right") - 1, 0, None)
        exact = ticks[segment] + (seconds - starts_s[segment]) * self.ppq * 1e6 / per_quarter_us[segment]
        mapped: npt.NDArray[np.int64] = np.rint(exact).astype(np.int64)
        return mapped


def plan_time(record: Record, *, bpm: float | str, ppq: int, tempo_map: str = "bpm") -> TimeMap:
    """Return the tempo map for a record: a fixed ``bpm``, or ``"auto"`` (estimated, pickup bar).

    A record read from a .mid with a tempo map uses it with ``"auto"`` or ``tempo_map="keep"``.
    Raises ValueError for a bpm that is neither a number nor "auto".
    """
    # Issue 14 (MIDI input): the source's own beat map is the grid; see stages/beatmap.py.
    keep = tempo_map == KEEP_TEMPO_MAP and bool(record.source_tempos)
    if keep or (bpm == AUTO and record.beat_map_s is not None):
        from .beatmap import plan_source_time

        return plan_source_time(record, ppq=ppq, keep=keep)
    if bpm != AUTO:
        if isinstance(bpm, str):
            raise ValueError(f"bpm must be a number or 'auto', got {bpm!r}")
        return TimeMap(ppq, ((0, tempo_us(bpm)),))
    from .tempo import estimate_tempo  # only with --bpm auto: start-up skips the estimator

    estimate = estimate_tempo(record)
    main_us = tempo_us(estimate.bpm)
    downbeat_s = estimate.first_downbeat_s
    if downbeat_s < MIN_PICKUP_S:
        return TimeMap(ppq, ((0, main_us),), estimate=estimate)
    sixteenths = max(1, round(downbeat_s / (estimate.beat_s / 4)))
    downbeat_tick = max(1, round(sixteenths * ppq / 4))
    pickup_us = round(downbeat_s * 1e6 * ppq / downbeat_tick)  # the pickup lasts exactly until the downbeat
    meters = ((0, *_pickup_meter(sixteenths)), (downbeat_tick, 4, 4))
    return TimeMap(ppq, ((0, pickup_us), (downbeat_tick, main_us)), meters, downbeat_tick, estimate)


def tempo_us(bpm: float) -> int:
    """Return the µs per quarter note written for a tempo in BPM (rounded to whole µs)."""
    return round(60_000_000 / bpm)


def _pickup_meter(sixteenths: int) -> tuple[int, int]:
    for unit, denominator in ((4, 4), (2, 8)):
        if sixteenths % unit == 0:
            return sixteenths // unit, denominator
    return sixteenths, 16


def grid_ticks(grid: str, ppq: int) -> float:
    """Return the length in ticks of a note value: "1/16" -> ppq/4, "1/8t" (triplet) -> ppq/3.

    Raises ValueError naming the accepted values.
    """
    match = GRID_PATTERN.match(grid.strip())
    if match is None:
        raise ValueError(f"quantize grid must be 1/N with N in 1, 2, 4, 8, 16, 32, 64 (t for triplets), got {grid!r}")
    length = ppq * 4 / int(match.group(1))
    return length * 2 / 3 if match.group(2) else length


def quantize(
    on_tick: npt.NDArray[np.int64], off_tick: npt.NDArray[np.int64], *, grid: float, origin: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Move note starts and ends to the nearest grid line counted from ``origin`` (a downbeat).

    A note that would shrink to nothing keeps one grid step. Ticks never go below 0.
    """
    import numpy as np

    def snap(ticks: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.maximum(np.rint(origin + np.rint((ticks - origin) / grid) * grid), 0).astype(np.int64)

    on = snap(on_tick)
    off = np.maximum(snap(off_tick), np.rint(on + grid).astype(np.int64))
    return on, off
