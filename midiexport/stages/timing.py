"""Timing: how seconds become ticks. A fixed tempo, or the song's own (``--bpm auto``).

With ``auto`` the tempo, meter and bar lines come from ``tempo.estimate_tempo``. When
the estimate is sure (its confidence reaches its group's ``tempo.bar_threshold``), the first
downbeat is put on a bar line: everything before it becomes a short pickup bar of n 16ths,
written in the meter's unit (n/4 or n/8 beside x/4, n/8 beside 6/8 and 12/8, else n/16; a whole
bar in the meter found), played at the tempo that makes the pickup last exactly until the
downbeat; from the downbeat on, the meter found (4/4, 3/4, 6/8). The pickup is written only when
its tempo stays near the song's (``PICKUP_TEMPO_RATIO``, ``_pickup_sixteenths``); a downbeat
closer to 0 s than a 64th note, or one whose pickup would be marked far faster or slower than
the song (0.055 s at 146 BPM: a 1/16 bar at 274 BPM), is no bar: it opens the file and the
first bar takes that time at a slightly slower tempo. A first downbeat whose pickup would be
longer than a bar (after a long silence, or in a record longer than ``tempo.MAX_ANALYSIS_S`` whose
bar lines were found only in the stretch read) first has whole bars of the meter run back from it at
the first span's tempo, to the earliest bar line within a 64th of 0 s or after it (``_bars_before``):
the rules above then apply to that bar line, so the file opens as any song's, with at most a pickup
bar (one bar held everything before the downbeat found: 172/4 over the first 103 s of a 12-minute
record read from 103 s on). The estimate the map carries says where the first downbeat is drawn,
so the one-line message, the text event and ``info`` agree with the file.
The tempo follows the bar lines found: one tempo for the song when it fits the beats
(within CONSTANT_FIT_S rms, the beats' jitter averaged over JITTER_BEATS), else a tempo map with at most one
change per bar, so a notation program shows a few tempo marks, not one per beat. Each span
of one tempo is a least-squares line through its beats, from where the span before it
ends (as ``beatmap`` fits Suno's own beats): pinned to the one bar line found at its end,
as it was, a single beat found off (a late stem's entry, a spread chord, the last chord of a
ritardando) bent the whole span (docs/tempo-studies.md, "Songs without drums, and drifting
songs", has the figures). When the estimate is not
sure of its bars but is of its beats (``beats_sure``: its beat confidence reaches
``tempo.BEAT_CONFIDENCE_THRESHOLD``), ``follow_beats`` writes the beats without a bar line:
each on a whole quarter (or dotted quarter) under the plainest time signature of the
beat, counted from 0 s, after a lead-in of whole beats (or of one bar, ending on a beat found,
where whole beats would mark a tempo over PICKUP_TEMPO_RATIO from the song's: no pickup bar); the
tempo follows them by the same rules. When neither is sure, only its tempo is written, constant from 0 s, and no bar
line is claimed. Which of the three is written is decided in one place, ``drawn``: the
writer (``auto_time``) follows it, and the one-line message and ``info`` say it, so a file
with one constant tempo never reads as "beats followed", nor beats alone as a meter.

Every tempo written is a whole, positive number of µs: a pickup or lead-in tempo is that of
the whole ticks it spans, so the first downbeat or beat falls exactly where it was found
(within a few µs) whatever the PPQ; a lead-in the tempo drawn would make last almost no time is
not written (the first beat opens the file). A pickup bar is at most a bar of the meter, so
its numerator always fits SMF's one byte. Beats followed need no such rule: the lead-in before the
first beat is whole beats of one tempo under the plainest time signature, claiming no bar line.

Audio sync is kept: ticks are computed from each note's absolute time through the
tempo map actually written (whole µs per quarter), so a note moves by at most half
a tick; at 960 ticks per quarter (the default with ``auto``) that is under 0.6 ms
down to 50 BPM. ``quantize`` is the one deliberate exception.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

from ..defaults import GROUP_S
from ..model import Record
from ..options import AUTO, GRID_CHOICES, GRID_PATTERN, KEEP_TEMPO_MAP

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .tempo import TempoEstimate

# A first downbeat closer to 0 s than a 64th note (a sixteenth of the quarter, at the tempo drawn) gets no
# pickup bar: it opens the file, and the first bar takes that time too (``_opening_bar``). The shortest pickup a
# bar can show is one 16th (1/16); one that lasts under a quarter of that would be written at over four times
# the song's tempo (a 4 ms pickup was 1/16 at 3798 BPM over an empty bar in a score). The first bar line moves
# to 0 s by under a 64th, half a 32nd: the notes keep their times, and `--quantize 1/32` (or coarser) still puts
# each note of the first bar on the grid line it was played nearest to; every later bar line stays where found.
MIN_PICKUP_QUARTERS = 1 / 16
# A pickup bar's tempo within 25% of the song's (the n 16ths nearest the song's tempo: 2 or more 16ths are
# always within 33%, 4 or more within 14%): a tempo mark a quarter off still reads as the song's tempo played
# a little freer, while a mark 1.5 to 2 times the song's over a bar of silence (a gap of about one and a half
# or half a 16th) reads as a different tempo. Beyond it the gap goes into the first bar instead
# (``_pickup_sixteenths``), at a tempo at most 1.6 16ths in a bar slower (under 12% in 3/4), whichever is nearer.
PICKUP_TEMPO_RATIO = 1.25
MOVED_S = 0.001  # a first downbeat closer to 0 s than this is simply moved there: a note may move as much
CONSTANT_FIT_S = 0.015  # one tempo for the song when it fits the beats within 15 ms rms (see below)
SPAN_FIT_S = 0.025  # a tempo map keeps every beat this close
# The constant fit is judged on the beats' trend: their distances from one tempo averaged over
# +-4 beats (tempo.REFINE_SMOOTH_BEATS), so the tracker's beat-to-beat jitter does not count as
# tempo. Issue 12 asks for no change where one tempo fits within about 10 ms and a map where one
# tempo leaves beats more than about 30 ms from the music; 15 ms rms lies between. Measured on the
# bench split: the beats found on steady songs without drums (transcribed: spread chords, stems
# entering late) wander 8 ms rms (median) but over 10 ms on 27 of the 64 such songs whose beats or
# bars are written (16 over 15 ms), which at 10 ms got a tempo mark every few bars; the drifting
# songs' true beats stray 14 ms rms or more from one tempo (10th percentile). Beat share on the
# drifting songs is the same at 10 and 15 ms; steady songs written with bars or beats get one tempo
# (and a lead-in) more often (88% -> 94% with bars, 46% -> 69% with beats).
JITTER_BEATS = 4
# The time signature written when only the beats are believed: the plainest of the beat's kind
# (quarters: 4/4, SMF's default when a file has none; dotted quarters: 6/8), claiming no downbeat.
BEAT_ONLY_METERS = {1.0: (4, 4), 1.5: (6, 8)}
# What an auto tempo map draws (``drawn``): bar lines, the beats only, or one constant tempo.
BARS, BEATS, CONSTANT = "bars", "beats", "constant"
NO_ESTIMATE = "none"  # TempoEstimate.source when there were too few notes to estimate
BEAT_MAP_SOURCE = "beat map"  # TempoEstimate.source for a grid taken from a .mid's own tempo map


class TimeMap(NamedTuple):
    """Tempo changes (tick, µs per quarter) and time signatures (tick, n, d) of a song.

    ``downbeat_tick`` is where the first full bar starts (0 without a pickup);
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
    """Return the tempo map for a record: a fixed ``bpm``, or ``"auto"`` (estimated).

    With ``auto``, ``auto_time`` on the estimate: with a sure estimate, a pickup bar until
    the first downbeat, the meter found, and a tempo that follows the bar lines (at most
    one change per bar, none where one tempo fits within CONSTANT_FIT_S). Below the
    confidence threshold, beats believed: ``follow_beats``. Neither believed: the estimated
    tempo, constant, and no pickup or meter claimed (``drawn`` decides). A record read from a .mid with a
    tempo map uses it with ``"auto"`` or ``tempo_map="keep"`` (see ``beatmap``). Raises
    ValueError for a bpm that is neither a number nor "auto".
    """
    # MIDI input: the source's own beat map is the grid; see stages/beatmap.py.
    keep = tempo_map == KEEP_TEMPO_MAP and bool(record.source_tempos)
    if keep or (bpm == AUTO and record.beat_map_s is not None):
        from .beatmap import plan_source_time

        return plan_source_time(record, ppq=ppq, keep=keep)
    if bpm != AUTO:
        if isinstance(bpm, str):
            raise ValueError(f"bpm must be a number or 'auto', got {bpm!r}")
        return TimeMap(ppq, ((0, tempo_us(bpm)),))
    from .tempo import estimate_tempo  # only with --bpm auto: start-up skips the estimator

    return auto_time(estimate_tempo(record), ppq=ppq)


def drawn(estimate: TempoEstimate) -> str:
    """Return what an ``auto`` tempo map draws from an estimate: BARS, BEATS or CONSTANT.

    The one place this is decided: ``auto_time`` writes what it returns, and the one-line
    message (``TempoEstimate.describe``) and ``info`` say it. BARS when the bar lines are
    believed and one falls at or after the first note; else BEATS when the beats are
    believed and ``follow_beats`` has two bars of them to follow; else CONSTANT.
    """
    if estimate.source == NO_ESTIMATE:
        return CONSTANT
    if estimate.sure and len(_bar_lines(estimate)):
        return BARS
    if estimate.beats_sure and _beats_to_follow(estimate) is not None:
        return BEATS
    return CONSTANT


def auto_time(estimate: TempoEstimate, *, ppq: int) -> TimeMap:
    """Return the tempo map ``--bpm auto`` writes for an estimate (what ``drawn`` says it draws).

    BARS: a pickup bar until the first downbeat, the meter found, and a tempo that follows the
    bar lines; BEATS: ``follow_beats``; CONSTANT: the estimated tempo from 0 s. The returned
    map's ``estimate`` carries what was drawn (``TempoEstimate.written``).
    """
    import dataclasses

    kind = drawn(estimate)
    estimate = dataclasses.replace(estimate, written=kind)
    if kind == BEATS:
        return follow_beats(estimate, ppq=ppq)
    if kind == CONSTANT:
        return TimeMap(ppq, ((0, tempo_us(estimate.bpm)),), estimate=estimate)
    numerator, denominator = (int(x) for x in estimate.meter.split("/"))
    bar_quarters = numerator * 4 / denominator
    later = _bar_lines(estimate)
    later[0] = estimate.first_downbeat_s  # a bar line a hair before 0 s starts at 0 s
    if len(later) < 2:  # one bar line from the first note on (a clip under two bars): the estimate's tempo
        downbeat_s, bar_tempos = float(later[0]), [(0, tempo_us(estimate.bpm))]
    else:
        downbeat_s, bar_tempos = bar_tempos_us(
            later, estimate.beats_s, bar_quarters=bar_quarters, beat_quarters=estimate.quarters_per_beat
        )
    first_us = bar_tempos[0][1]
    before = _bars_before(downbeat_s, first_us, bar_quarters=bar_quarters)
    if before:  # whole bars of the first span's tempo back from the downbeat found; the pickup rule before them
        downbeat_s -= before * bar_quarters * first_us / 1e6
        bar_tempos = [(0, first_us), *((before + bar, us) for bar, us in bar_tempos[1:])]
    sixteenths = _pickup_sixteenths(downbeat_s, first_us, bar_quarters=bar_quarters)
    if sixteenths == 0:  # no pickup bar keeps a tempo near the song's: the downbeat opens the file
        estimate = dataclasses.replace(estimate, first_downbeat_s=0.0)  # where the file draws it
        return TimeMap(ppq, _opening_bar(bar_tempos, downbeat_s, bar_quarters=bar_quarters, ppq=ppq),
                       ((0, numerator, denominator),), 0, estimate)  # fmt: skip
    estimate = dataclasses.replace(estimate, first_downbeat_s=downbeat_s)  # where the file draws it
    downbeat_tick = max(1, round(sixteenths * ppq / 4))
    pickup_us = round(downbeat_s * 1e6 * ppq / downbeat_tick)  # the pickup lasts exactly until the downbeat
    meters = ((0, *_pickup_meter(sixteenths, (numerator, denominator))), (downbeat_tick, numerator, denominator))
    tempos = ((0, pickup_us), *((downbeat_tick + round(bar * bar_quarters * ppq), us) for bar, us in bar_tempos))
    return TimeMap(ppq, tempos, meters, downbeat_tick, estimate)


def _bars_before(downbeat_s: float, first_us: int, *, bar_quarters: float) -> int:
    """Return how many whole bars of the first tempo (µs per quarter) go before a first downbeat ``downbeat_s`` in.

    0 when the pickup before it is a bar at most (its whole 16ths, as ``_pickup_sixteenths`` counts
    them), as nearly always: the estimate's first downbeat is the first bar line at or after the first
    note. A longer one (after a long silence: one 133/16 bar for 20 s at 100 BPM; or in a record over
    ``tempo.MAX_ANALYSIS_S`` whose bar lines were found only in the stretch read: one 172/4 bar for the
    103 s before it) is no bar: the grid runs back from the downbeat in whole bars at the song's opening
    tempo, to its earliest bar line that is not more than a 64th (MIN_PICKUP_QUARTERS) before 0 s. What
    is left before that line, under a bar, gets the pickup rule as any song's (``_pickup_sixteenths``);
    a line within a 64th of 0 s, either side, opens the file (``_opening_bar``).
    """
    if round(downbeat_s / (first_us / 4e6)) <= round(bar_quarters * 4):  # a pickup of a bar at most
        return 0
    return math.floor((downbeat_s + MIN_PICKUP_QUARTERS * first_us / 1e6) / (bar_quarters * first_us / 1e6))


def _pickup_sixteenths(downbeat_s: float, first_us: int, *, bar_quarters: float) -> int:
    """Return how many 16ths the pickup bar before a first downbeat ``downbeat_s`` in lasts; 0 for no pickup bar.

    Two writings keep every note's time: a pickup of n 16ths (n >= 1, the n nearest the song's tempo) at
    the tempo that makes it last until the downbeat, or no pickup, the first bar taking that time at a
    slower tempo (``_opening_bar``). The pickup is written when its tempo is within PICKUP_TEMPO_RATIO of the
    first bar's, else the writing whose tempo is nearer the song's (by ratio): never a 1/16 bar with no
    notes marked at twice the song's tempo.
    """

    if downbeat_s < MIN_PICKUP_QUARTERS * first_us / 1e6:  # too short to be a bar
        return 0
    sixteenths = max(1, round(downbeat_s / (first_us / 1e6 / 4)))
    pickup_ratio = sixteenths * first_us / 4 / (downbeat_s * 1e6)  # the pickup's tempo over the song's
    if 1 / PICKUP_TEMPO_RATIO <= pickup_ratio <= PICKUP_TEMPO_RATIO:
        return sixteenths
    bar_s = bar_quarters * first_us / 1e6
    opening_ratio = bar_s / (bar_s + downbeat_s)  # the first bar's tempo over the song's, taking the time too
    return sixteenths if abs(math.log(pickup_ratio)) < abs(math.log(opening_ratio)) else 0


def _opening_bar(
    bar_tempos: list[tuple[int, int]], downbeat_s: float, *, bar_quarters: float, ppq: int
) -> tuple[tuple[int, int], ...]:
    """Return the tempos (tick, µs per quarter) of bars drawn from 0 s when the first downbeat is ``downbeat_s`` in.

    The first bar takes the time before the downbeat too (it starts at 0 s, at the tempo that ends it
    where the second bar line was found), so every later bar line stays where it was found, and its tempo
    is slower than the song's by at most the gap a pickup was refused for (under 12% in 3/4:
    PICKUP_TEMPO_RATIO). A downbeat ``downbeat_s`` before 0 s (within a 64th: a grid run back by whole
    bars, ``_bars_before``) ends the first bar that much early, at a slightly faster tempo. A downbeat
    within MOVED_S of 0 s is moved there with the bar lines after it: no tempo of its own.
    """
    tempos = [(round(bar * bar_quarters * ppq), us) for bar, us in bar_tempos]
    if abs(downbeat_s) < MOVED_S:
        return tuple(tempos)
    first_us = round((downbeat_s * 1e6 + bar_quarters * tempos[0][1]) / bar_quarters)
    if first_us != tempos[0][1]:
        if len(tempos) == 1 or tempos[1][0] != round(bar_quarters * ppq):
            tempos.insert(1, (round(bar_quarters * ppq), tempos[0][1]))
        tempos[0] = (0, first_us)
    return tuple(tempos)


def _bar_lines(estimate: TempoEstimate) -> npt.NDArray[np.float64]:
    """Return the estimate's bar lines (s) from its first downbeat on (less GROUP_S): those a map can draw."""
    import numpy as np

    downbeats = estimate.downbeats_s if estimate.downbeats_s is not None else np.empty(0)
    later: npt.NDArray[np.float64] = downbeats[downbeats >= estimate.first_downbeat_s - GROUP_S].copy()
    return later


def _beats_to_follow(estimate: TempoEstimate) -> tuple[npt.NDArray[np.float64], int, bool] | None:
    """Return the beats ``follow_beats`` writes (s), how many whole beats come before the first, and whether a bar.

    A beat within SPAN_FIT_S of 0 s opens the file (it is put at 0 s); otherwise the first
    beat at least half a beat in starts whole beat N, the nearest count of beats. When N whole
    beats would be marked further than PICKUP_TEMPO_RATIO from the beat where the song starts
    (a first beat half a beat in: a lead-in beat at twice the song's tempo), the time before the
    first beat goes into the first bar instead, as before a first downbeat whose pickup is refused
    (``_opening_bar``): a lead-in of one bar of the signature (the third value, True), ending on the
    beat found that makes its tempo nearest the song's (by ratio: at most 14% off in 4/4 for steady
    beats). In 6/8 a bar is two beats, and the nearest can be up to 28% off: there, when no beat
    ends one bar within PICKUP_TEMPO_RATIO, the lead-in is two bars (at most 14% off). None when
    fewer than two bars of the time signature written (``BEAT_ONLY_METERS``) are left.
    """
    import numpy as np

    beats_s = estimate.beats_s
    if beats_s is None or len(beats_s) < 2:
        return None
    numerator, denominator = BEAT_ONLY_METERS.get(estimate.quarters_per_beat, (4, 4))
    per_bar = round(numerator * 4 / denominator / estimate.quarters_per_beat)
    period_s = float(np.median(np.diff(beats_s[: 2 * per_bar + 1])))  # the beat where the song starts
    if not period_s > 0:  # beats out of order: nothing to follow
        return None
    at_zero = np.flatnonzero(np.abs(beats_s) <= SPAN_FIT_S)
    opening_bar = False
    if len(at_zero):
        beats, lead = beats_s[at_zero[0] :].copy(), 0
        beats[0] = 0.0  # this beat opens the file
    else:
        beats = beats_s[beats_s >= period_s / 2]
        lead = max(1, int(beats[0] / period_s + 0.5)) if len(beats) else 0
        if lead and not 1 / PICKUP_TEMPO_RATIO <= lead * period_s / beats[0] <= PICKUP_TEMPO_RATIO:
            for bars in (1, 2):  # a second bar only where one leaves no beat within the ratio (6/8: 2 beats)
                off = np.abs(np.log(beats / (bars * per_bar * period_s)))  # its tempo against the song's
                if off.min() <= math.log(PICKUP_TEMPO_RATIO):
                    break
            end = int(np.argmin(off))  # the beat found that makes the first bar's tempo nearest the song's
            beats, lead, opening_bar = beats[end:], bars * per_bar, True  # the first bar from 0 s ends on it
    if len(beats) <= per_bar:  # two bar lines are needed to fit a tempo
        return None
    return beats, lead, opening_bar


def follow_beats(estimate: TempoEstimate, *, ppq: int) -> TimeMap:
    """Return a tempo map that puts every beat found on a whole beat, claiming no bar line.

    For an estimate whose beats are believed but whose bars are not. The beat (a quarter,
    or a dotted quarter in a compound meter) is written under the plainest time signature
    of its kind (``BEAT_ONLY_METERS``), from 0 s: the bar lines a DAW draws are counted
    from the start, not from a downbeat. A beat within SPAN_FIT_S of 0 s is put at 0 s;
    otherwise the first beat at least half a beat in starts whole beat N (the nearest
    count of beats), and a lead-in tempo makes the time before it last exactly until it.
    A lead-in of whole beats marked further than PICKUP_TEMPO_RATIO from the song's tempo
    (a first beat half a beat in, after a song's offset of silence or an eighth's
    anacrusis: one beat at twice the tempo) is one bar of the signature instead, from 0 s
    to the beat found that makes its tempo nearest the song's (``_beats_to_follow``): no
    pickup bar and no second time signature, as for a downbeat's refused pickup
    (``_opening_bar``); when the song's tempo from 0 s ends that bar within SPAN_FIT_S of
    the beat (a stray first beat), the bar gets no tempo of its own, as a first beat drawn
    within SPAN_FIT_S of 0 s opens the file. A pickup bar of 16ths was written here once
    (1/8, then 4/4 from the first beat), but MuseScore 3 imports such a file without drums
    as a human performance and showed the pickup's 1/8 as every bar's time signature
    (docs/tempo-studies.md, stop s13). The beats inside that first bar are not on whole
    quarters: that is its cost.
    From there the tempo follows the beats as ``bar_tempos_us`` follows bar lines, with a
    bar of the signature written as the unit: one tempo where it fits, else at most one
    change a bar. The lead-in's tempo is that of its whole ticks, so the first beat falls
    exactly where it was drawn whatever the PPQ; when the tempo drawn puts the first beat
    within SPAN_FIT_S of 0 s, that beat opens the file instead (no lead-in of almost no time).
    Times are seconds. Raises ValueError when there are not two bars of beats to follow
    (``drawn`` says BEATS only when there are).
    """
    followed = _beats_to_follow(estimate)
    if followed is None:
        raise ValueError("follow_beats needs two bars of beats; drawn() says whether an estimate has them")
    beats, lead, opening_bar = followed
    beat_quarters = estimate.quarters_per_beat
    numerator, denominator = BEAT_ONLY_METERS.get(beat_quarters, (4, 4))
    bar_quarters = numerator * 4 / denominator
    anchors = beats[:: round(bar_quarters / beat_quarters)]
    first_s, spans = bar_tempos_us(anchors, beats, bar_quarters=bar_quarters, beat_quarters=beat_quarters)
    lead = lead if first_s > SPAN_FIT_S else 0  # the tempo drawn puts the first beat at 0 s: it opens the file
    start_tick = round(lead * beat_quarters * ppq)
    tempos = [(start_tick + round(bar * bar_quarters * ppq), us) for bar, us in spans]
    lead_us = round(first_s * 1e6 * ppq / start_tick) if lead else tempos[0][1]  # of the ticks written
    if opening_bar and abs(first_s - start_tick / ppq * tempos[0][1] / 1e6) <= SPAN_FIT_S:  # one bar or two (6/8)
        lead_us = tempos[0][1]  # the song's tempo from 0 s ends the first bar near the beat found: no tempo mark
    if lead_us != tempos[0][1]:  # the lead-in lasts exactly until the first beat
        tempos.insert(0, (0, lead_us))
    elif lead:
        tempos[0] = (0, lead_us)  # the first beat falls where the song's tempo puts it
    return TimeMap(ppq, tuple(tempos), ((0, numerator, denominator),), 0, estimate)


def bar_tempos_us(
    downbeats_s: npt.NDArray[np.float64],
    beats_s: npt.NDArray[np.float64] | None,
    *,
    bar_quarters: float,
    beat_quarters: float,
) -> tuple[float, list[tuple[int, int]]]:
    """Return where the first bar line is drawn (s) and (bar number, µs per quarter) tempo changes.

    ``downbeats_s`` holds at least two bar lines (seconds); the spans between them are the bars.

    One tempo for the song when ``straight_line``'s distance is at most CONSTANT_FIT_S; the
    bar lines are then drawn on that line, from where it puts the first one (never before
    0 s). Otherwise bars are joined
    greedily into spans played at one tempo (``_fitted_spans``): each a least-squares line
    through its beats from where the span before it ends, grown while every beat in it stays
    within SPAN_FIT_S of the line. One outer loop step per span (a few dozen), one inner step
    per bar it grows by, each vectorised over the span's beats.
    """
    first, last = float(downbeats_s[0]), float(downbeats_s[-1])
    beats = beats_s if beats_s is not None else downbeats_s
    beats = beats[(beats >= first - GROUP_S) & (beats <= last + GROUP_S)]
    if len(beats) < 2:  # no beats to follow between the bar lines: the bar lines are the beats (two at least)
        beats, beat_quarters = downbeats_s, bar_quarters
    slope, intercept, drift_s = straight_line(beats)
    if drift_s <= CONSTANT_FIT_S:
        return max(0.0, intercept), [(0, round(slope / beat_quarters * 1e6))]
    changes = _fitted_spans(downbeats_s, beats, bar_quarters=bar_quarters, beat_quarters=beat_quarters)
    merged = [changes[0]]
    for bar, us in changes[1:]:
        if us != merged[-1][1]:
            merged.append((bar, us))
    return first, merged


def straight_line(beats_s: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """Return the least-squares line through beats (s per beat, s at beat 0) and how far they leave it (s).

    How far: the root mean square of the distances from the line, each first averaged over
    JITTER_BEATS beats either side, so a tracker's beat-to-beat jitter is not counted as tempo.
    At most CONSTANT_FIT_S: one tempo fits. Needs two beats.
    """
    import numpy as np

    index = np.arange(len(beats_s))
    slope, intercept = np.polyfit(index, beats_s, 1)
    residual = beats_s - (intercept + slope * index)
    width = min(2 * JITTER_BEATS + 1, len(residual))
    trend = np.convolve(residual, np.ones(width) / width, mode="valid")  # the tracker's jitter averaged out
    return float(slope), float(intercept), float(np.sqrt(np.mean(trend**2)))


def _fitted_spans(
    downbeats_s: npt.NDArray[np.float64],
    beats_s: npt.NDArray[np.float64],
    *,
    bar_quarters: float,
    beat_quarters: float,
) -> list[tuple[int, int]]:
    """Return (bar number, µs per quarter) per span of bars played at one tempo: least-squares lines.

    ``downbeats_s`` are bar lines among ``beats_s`` (seconds). A span starts where the grid
    drawn for the span before it ends (the first at the first bar line), and its beat is the
    least-squares slope of its beats on a line from there; it grows bar by bar while every
    beat in it stays within SPAN_FIT_S of that line. Fitted to all its beats, not pinned to
    the bar line found at its end: one beat found off (a stem entering late, a spread chord)
    does not bend a whole span. The outer loop steps once per span, the inner once per bar
    the span grows by, each step vectorised over the span's beats. Where the beats found
    between two bar lines are not the bar's number of beats (beats missing in a bar, or
    beats that start a bar late), that bar is a span of its own, timed by its bar lines
    alone (``bar_quarters / beat_quarters`` beats a bar), and the next one starts at its
    end; no span grows over such a bar.
    """
    import numpy as np

    from .meter import nearest_slot

    bars = len(downbeats_s) - 1
    at = nearest_slot(downbeats_s, beats_s)  # each bar line's nearest beat

    def line(start: int, end: int, start_s: float) -> tuple[float, float, float]:
        """The least-squares beat (s) from ``start_s`` over bars start..end, the worst beat's miss (s), its beats."""
        count = int(at[end] - at[start])
        per_bar = (end - start) * bar_quarters / beat_quarters
        if count != round(per_bar):  # beats missing between the bar lines: one bar, by its bar lines alone
            return float(downbeats_s[end] - start_s) / per_bar, 0.0 if end - start == 1 else np.inf, per_bar
        index = np.arange(1, count + 1, dtype=np.float64)
        offsets = beats_s[at[start] + 1 : at[end] + 1] - start_s
        beat_s = float((index * offsets).sum() / (index * index).sum())
        return beat_s, float(np.abs(offsets - index * beat_s).max()), float(count)

    changes: list[tuple[int, int]] = []
    start, start_s = 0, float(downbeats_s[0])
    while start < bars:
        end = start + 1
        beat_s, _, count = line(start, end, start_s)
        while end < bars:
            longer, worst_s, more = line(start, end + 1, start_s)
            if worst_s > SPAN_FIT_S:
                break
            end, beat_s, count = end + 1, longer, more
        changes.append((start, round(beat_s / beat_quarters * 1e6)))
        start_s += count * beat_s
        start = end
    return changes


def tempo_us(bpm: float) -> int:
    """Return the µs per quarter note written for a tempo in BPM (rounded to whole µs)."""
    return round(60_000_000 / bpm)


def _pickup_meter(sixteenths: int, meter: tuple[int, int]) -> tuple[int, int]:
    """Return a pickup bar of ``sixteenths`` written as a producer reads it beside the ``meter`` (n, d).

    A whole bar is the meter itself; otherwise the meter's unit when it divides (quarters are
    not used beside x/8: 3/4 before 6/8 reads as a change of meter), else eighths, else 16ths.
    """
    if sixteenths * meter[1] == meter[0] * 16:
        return meter
    units = ((4, 4), (2, 8)) if meter[1] <= 4 else ((2, 8),)
    for unit, denominator in units:
        if sixteenths % unit == 0:
            return sixteenths // unit, denominator
    return sixteenths, 16


def grid_ticks(grid: str, ppq: int) -> float:
    """Return the length in ticks of a note value: "1/16" -> ppq/4, "1/8t" (triplet) -> ppq/3.

    Raises ValueError naming the accepted values.
    """
    match = GRID_PATTERN.match(grid.strip())
    if match is None:
        raise ValueError(f"quantize grid must be {GRID_CHOICES}, got {grid!r}")
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
