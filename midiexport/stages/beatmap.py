"""Beat map: a .mid's own tempo map (Suno's beat tracking) -> the tempo map to write.

Suno's web export carries one ``set_tempo`` per beat: its beat tracking of the audio,
a gift no estimate can beat. With ``--bpm auto`` the beats of that map are the grid:

- one constant tempo when a line through the first downbeat fits every later beat
  within ``BEAT_TOLERANCE_S`` (least squares on the beat numbers);
- otherwise a smoothed map with at most one change per bar: bars are joined greedily
  into segments of one tempo (a least-squares line from where the previous segment
  ends) as long as every beat inside stays within the tolerance.

The first downbeat is found as for JSON (``tempo.estimate_tempo``, with the source's
tempo as the hint) and snapped to the nearest source beat; the beats before it become
a pickup bar of that many quarters. When the estimate is not sure of its bar lines, the
beats are still Suno's, but no downbeat is claimed: 4/4 is counted from the first source
beat, as the source itself counts it. ``--tempo-map keep`` writes the source map as it is
(ticks rescaled to the PPQ written). Either way ``timing`` computes note ticks from
seconds through the map written, so every note keeps its time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..defaults import MAX_BPM, MIN_BPM
from ..model import Record
from .timing import BARS, BEAT_MAP_SOURCE, BEATS, TimeMap

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

BEAT_TOLERANCE_S = 0.010  # a beat of the written grid may sit this far from Suno's beat (the issue's ~10 ms)
BEATS_PER_BAR = 4  # the meter assumed from the downbeat on, as for JSON (tempo.py assumes 4/4)
MIN_PERIOD_S, MAX_PERIOD_S = 60.0 / MAX_BPM, 60.0 / MIN_BPM  # a period beyond is damage, not a beat; fits 24 bits


def plan_source_time(record: Record, *, ppq: int, keep: bool) -> TimeMap:
    """Return the tempo map for a record read from a .mid that has a beat map.

    ``keep``: the source tempo map and meters as they are (a 4/4 at tick 0 when the
    file has none). Otherwise the beat map fitted as in the module docstring.
    Times are seconds; ticks at ``ppq`` per quarter.
    """
    if keep:
        return keep_source_map(record, ppq=ppq)
    from .tempo import TempoEstimate, estimate_tempo  # here, so importing the module skips the estimator

    assert record.beat_map_s is not None
    beats_s = _beats_in_use(record, record.beat_map_s)
    hint = 60.0 / float(_median_step(beats_s))
    estimate = estimate_tempo(record, hint_bpm=hint)
    downbeat = _nearest_beat(beats_s, estimate.first_downbeat_s) if estimate.sure else 0  # bars only if believed
    tempos, meters, downbeat_tick = fit_beat_map(beats_s, downbeat=downbeat, ppq=ppq)
    main_us = next(tempo_us for tick, tempo_us in reversed(tempos) if tick <= downbeat_tick)
    found = TempoEstimate(round(60e6 / main_us, 3), "4/4", float(beats_s[downbeat]), estimate.confidence,
                          BEAT_MAP_SOURCE, beat_confidence=1.0, written=BARS if estimate.sure else BEATS,
                          has_drums=estimate.has_drums)  # fmt: skip
    return TimeMap(ppq, tempos, meters, downbeat_tick, found)


def keep_source_map(record: Record, *, ppq: int) -> TimeMap:
    """Return the source's tempo map and meters, ticks rescaled from ``source_ppq`` to ``ppq``."""
    scale = ppq / (record.source_ppq or ppq)
    tempos: dict[int, int] = {}
    for tick, tempo_us in record.source_tempos or ((0, 500_000),):
        tempos[round(tick * scale)] = tempo_us
    meters = {round(tick * scale): (round(tick * scale), n, d) for tick, n, d in record.source_meters}
    meters.setdefault(0, (0, 4, 4))  # a DAW needs a time signature at the start
    return TimeMap(ppq, tuple(sorted(tempos.items())), tuple(meters[t] for t in sorted(meters)))


def fit_beat_map(
    beats_s: npt.NDArray[np.float64], *, downbeat: int, ppq: int
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int, int], ...], int]:
    """Fit a tempo map to beat times (seconds, beat 0 at 0 s) with the first downbeat at beat ``downbeat``.

    Returns (tempos as (tick, µs per quarter), meters as (tick, n, d), downbeat tick).
    Beat ``downbeat + k`` is written at tick ``downbeat_tick + k * ppq``.
    """
    downbeat_tick = downbeat * ppq
    tempos: list[tuple[int, int]] = []
    meters: list[tuple[int, int, int]] = []
    if downbeat:  # the beats before the first downbeat: a pickup bar of that many quarters
        tempos.append((0, round(_legal(beats_s[downbeat] / downbeat) * 1e6)))
        meters.append((0, downbeat, 4))
    meters.append((downbeat_tick, BEATS_PER_BAR, 4))
    body = beats_s[downbeat:] - beats_s[downbeat]
    constant_s = _constant_period(body)
    if constant_s is not None:
        segments = [(0, constant_s)]
    else:
        segments = _bar_segments(body)
    for beat, period_s in segments:
        tempo = round(period_s * 1e6)
        if not tempos or tempos[-1][1] != tempo:
            tempos.append((downbeat_tick + beat * ppq, tempo))
    return tuple(tempos), tuple(meters), downbeat_tick


def _constant_period(body_s: npt.NDArray[np.float64]) -> float | None:
    """Return the beat period (s) of a line through beat 0 fitting every beat, or None."""
    if len(body_s) < 2:
        return None
    period, worst_s = _line(body_s, 0, len(body_s) - 1, 0.0)
    return period if worst_s <= BEAT_TOLERANCE_S else None


def _bar_segments(body_s: npt.NDArray[np.float64]) -> list[tuple[int, float]]:
    """Join bars greedily into segments of one tempo; return (first beat, period s) per segment.

    Each segment starts where the written grid of the one before ends (so the map is
    continuous) and takes the least-squares period of its beats from there; it grows
    bar by bar while every beat in it stays within BEAT_TOLERANCE_S. A bar that fits
    no line on its own still gets one (its least-squares period). Loops over bars.
    """
    last = len(body_s) - 1
    segments = []
    start, start_s = 0, 0.0
    while start < last:
        end = min(start + BEATS_PER_BAR, last)
        period, _ = _line(body_s, start, end, start_s)
        while end < last:
            longer = min(end + BEATS_PER_BAR, last)
            found, worst_s = _line(body_s, start, longer, start_s)
            if worst_s > BEAT_TOLERANCE_S:
                break
            end, period = longer, found
        segments.append((start, period))
        start, start_s = end, start_s + (end - start) * period
    return segments or [(0, 0.5)]


def _line(body_s: npt.NDArray[np.float64], start: int, end: int, start_s: float) -> tuple[float, float]:
    """Return the least-squares period of beats start..end on a line from ``start_s``, and the worst miss (s).

    The period is held to MIN_BPM..MAX_BPM (``_legal``): a damaged beat map (beats
    seconds apart, or behind the grid before them) must not give a tempo of zero,
    negative or beyond 24 bits; the miss is that of the line held so.
    """
    import numpy as np

    index = np.arange(end - start + 1, dtype=np.float64)
    offsets = body_s[start : end + 1] - start_s
    period = _legal(float((index * offsets).sum() / (index * index).sum()))
    return period, float(np.abs(offsets - index * period).max())


def _legal(period_s: float) -> float:
    """Return a beat period held to MIN_PERIOD_S..MAX_PERIOD_S (the tempos --bpm accepts)."""
    return min(max(float(period_s), MIN_PERIOD_S), MAX_PERIOD_S)


def _beats_in_use(record: Record, beats_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the beats up to one after the last note's start: the grid matters where notes start."""
    import numpy as np

    last_s = max((float(i.start_s.max()) for i in record.instruments if i.note_count), default=0.0)
    count = int(np.searchsorted(beats_s, last_s, side="right")) + 1
    return beats_s[: max(count, 2)]


def _median_step(beats_s: npt.NDArray[np.float64]) -> float:
    import numpy as np

    return float(np.median(np.diff(beats_s))) if len(beats_s) > 1 else 0.5


def _nearest_beat(beats_s: npt.NDArray[np.float64], time_s: float) -> int:
    """Return the first downbeat as a beat index 0-3: the source beat nearest ``time_s``, less whole bars.

    Bars before the first note are whole bars, so the pickup is at most three beats.
    """
    import numpy as np

    index = int(np.argmin(np.abs(beats_s - time_s))) % BEATS_PER_BAR
    return min(index, max(len(beats_s) - 2, 0))
