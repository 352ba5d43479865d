"""Tempo stage: a song's tempo, meter, beats and bar lines, estimated from its notes.

Sits between normalize and timing: ``estimate_tempo(record)`` reads a Record's note
columns (seconds) and hands on a TempoEstimate: the tempo in quarter notes a minute,
the meter, every beat and bar line it found (seconds, following drift), the first
downbeat, and a calibrated confidence. ``timing`` turns it into a tempo map.

Method, in three stages (each in its own module, with its sources):

1. ``onsets``: notes become onsets by role (kick, snare, cymbals, bass, pitched parts;
   for the meter also notes weighted by length, and each part's entries after a rest),
   weighted by how well each role carries the beat, and an onset-strength envelope.
2. ``beats``: the most salient pulse of the envelope's autocorrelation, then Ellis's
   (2007) dynamic-programming tracker follows that pulse through drift and ritardandos.
   This is the part of librosa's ``beat_track`` a note list needs; librosa itself is
   not used, because it would bring numba and scipy to a package that needs numpy only,
   and because its tempo stage chooses the metrical level by a fixed prior, which is the
   weak point on this material (see the benchmark: librosa fed the same envelope).
3. ``meter``: which multiple of the pulse is the beat (×1/2 … ×4), the meter (4/4, 3/4,
   6/8) and the bar phase, chosen jointly among all hypotheses by a small
   conditional-logit model over interpretable features: a tempo preference, the onset
   density per beat, each role's weight on beats, beat divisions, beat one and the
   backbeats, harmonic change and crashes on bar lines, and without drums how regularly
   the length-weighted onsets repeat at the bar and at the beat's grouping (Klapuri et al.
   2006; Temperley 2007; Brown 1993; downbeat cues as in Papadopoulos & Peeters 2011 and
   Krebs et al. 2013). Its weights are fitted on the
   benchmark's "bench" split, never on the "holdout" one.

With drums, a stretch where the tracked pulse slipped half a beat (a breakdown without the
kit, then the kick back on the half-beats of the reading chosen for the whole song) has its
beats moved back onto the kick (``meter.kick_phase_path``), by the same test that rules out
such readings for the whole song. Here the beats are then refined to the onsets (a local weighted mean of the deviations
of nearby drum or, without drums, all onsets, smoothed over a few beats).

Bar confidence. The chosen hypothesis's score margin over the best hypothesis that would write
another file (another tempo, meter or bar line) goes through a logistic curve fitted on the
bench split (Platt scaling: a logistic regression on a classifier's score, Platt 1999), so that
it reads as the probability that the tempo and the bar lines the file draws are right. It is
calibrated per group, songs with drums and songs without (``onsets``' ``has_drums``): one
curve and one threshold each. Calibrated over all songs is not calibrated within each group
(Kleinberg, Mullainathan & Raghavan 2016, "Inherent trade-offs in the fair determination of
risk scores", whose "calibration within groups" asks it of each group; Hébert-Johnson et al.
2018's multicalibration of every group of a class): pooled, the songs with drums, nearly all
right, carried the 95% share, and the songs without drums pushed the threshold up for those
with drums. At or above its group's threshold (``bar_threshold``: the lowest confidence at which,
and at every higher one that at least 20 songs of the group reach, the group's bench songs
are right at least 95% of the time, ``bench_tempo.choose_threshold``) the estimate is ``sure`` and its bars
are written. Where a group has no such confidence (without drums, on the bench split: at
best 84% right) its bar lines are never claimed, and its beats may still be followed.

Beat confidence. The posterior of the hypotheses whose beats nest with the chosen ones (the same
beats, or a level of the same grid: twice or half as many, or a third; beat phase within the
refinement window), whatever their meter and bar phase, is ``nested``; with the bar confidence
and the long-note tracker's ``agreement`` (below), through a second logistic curve fitted where
it decides (the bench split's songs below their group's bar-line threshold), it becomes
``beat_confidence``: the beats can be believed when the bars cannot, since the tracker follows
drift whatever meter is chosen, and a map that follows them lies on the music's grid at any of
those levels (the level is the tempo written either way, which the bar confidence judges;
counting only the same beats left the drifting songs that a meter model could not place
written at one constant tempo, though their beats were found). This is the agreement
idea of Zapata, Davies & Gómez (2014, "Multi-feature beat tracking", IEEE/ACM TASLP 22(4)), where beats
that many candidates agree on are the ones to trust, read here as the posterior mass of
the candidates that agree; Degara et al. (2012, "Reliability-informed beat tracking",
IEEE TASLP 20(1)) instead predict beat accuracy from how well the observations fit. The
third input is Zapata et al.'s own committee, one tracking model on diverse input features:
``long_note_agreement``, the share of the beats that Ellis's tracker, run again at the beats'
spacing on the onsets weighted by their length alone (long notes start on strong beats),
also finds. In music without drums, where nearly every song below the bar-line threshold
is, the beats go wrong by sitting half or a third of a beat off the music's; short notes
between the beats can carry the main tracker there, the long notes then fall between its
beats. At or above ``BEAT_CONFIDENCE_THRESHOLD`` (chosen on the same songs by the same rule:
at it and above, their beats lie on the music's grid at least 95% of the time,
``bench_tempo.py --calibrate``) the beats are written without bar lines (``timing``); below
both thresholds, only a constant tempo is. The benchmark judges a song's beats on its grid by
their spacing: a 3/8 song's beats are its eighths, and its dotted quarters found at the right
tempo lie on its grid (``bench_tempo.beats_on_grid``).

Without drums, where the beats chosen show the tempo moving (one straight line leaves them
more than ``timing.CONSTANT_FIT_S``), they are re-tracked by ``beats.follow_tempo``, a
tempo-state dynamic programme that follows a ritardando to its last beat, and its beats are
written when at least half of the chosen ones have one of them near (``_follow_tempo``, which
says why all or nothing and why steady songs are left alone); the tempo figure stays the chosen
hypothesis's, and its bar lines mark the beats nearest them.

A tempo in the music task's tags ("128 bpm") wins when the notes agree: the best
hypothesis at that tempo (or twice or half it) is taken when its score is within
``HINT_MARGIN`` of the best.

Bounded cost: the beat and meter stages work on 10 ms frames over the span they read, so
the estimate reads at most ``MAX_ANALYSIS_S`` (10 minutes) of a record: all of it when its
notes span no more, else the 10 minutes with the most note starts (``_analysed_stretch``).
A song is read whole, so its estimate is unchanged; a record with a stray end time hours
in, or hours of silence, costs what 10 minutes of music cost (at most 20 minutes of frames:
a stretch starting in the first 10 minutes keeps its times). Beats and bar lines are found
in that stretch only; the tempo map written from them keeps its first tempo before it and its
last after it (``timing``): before it, whole bars of the meter run back from the first bar line
found at that tempo, to a pickup at 0 s as any song gets (``timing._bars_before``); beats followed
without bar lines get a lead-in of whole beats.

Reading (all via the search tool): librosa's ``beat_track``/``tempo`` docs and source
(Ellis 2007 DP, ``start_bpm``, ``tightness``); Klapuri, Eronen & Astola 2006; Dixon's
BeatRoot (2001, role-weighted onsets; agents that adjust their period); madmom's DBN bar
tracking (Krebs, Böck & Widmer 2015; Böck, Krebs & Widmer 2016: a tempo state whose changes
cost, which ``beats.follow_tempo`` carries into Ellis's programme); Whiteley, Cemgil & Godsill
2006 (the bar-pointer model); mir_eval.beat (F-measure with a tolerance window, the
continuity metrics that separate metrical-level errors).

Studies (the fit measures tried for the beat confidence, the re-tracking's figures, the
calibration's cross-validation): docs/tempo-studies.md, sections "Confidence and its
calibration" and "Re-tracking drifting beats without drums (stop s8)".
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ..defaults import DEFAULT_BPM, GROUP_S
from ..errors import check_argument
from ..model import Record
from . import beats, meter, onsets
from .timing import (
    BARS,
    BEAT_MAP_SOURCE,
    BEATS,
    CONSTANT_FIT_S,
    NO_ESTIMATE,
    drawn,
    straight_line,
)

if TYPE_CHECKING:
    from .onsets import Bools, Floats, Ints

FALLBACK_BPM = DEFAULT_BPM  # too few notes to estimate: the default tempo, the API's own grid tempo
MIN_ONSETS = 8  # fewer onsets than this say nothing about a tempo
MIN_SPAN_S = 2.0  # nor do onsets spread over less than this
# The estimate reads at most this much of a record: the stretch with the most notes. Longer than a
# song (the corpus's longest spans 1.9 minutes; the benchmark's 5-minute test song is read whole), so
# a song's estimate is unchanged; it bounds the cost of a stray end time or hours of silence.
MAX_ANALYSIS_S = 600.0
MAX_MARGIN = 20.0  # a song with no rival hypothesis at all: as sure as a margin can say
# The bar-line confidence is a logistic curve of the score margin, one per group: songs with drums
# and songs without (calibrated_confidence); bar lines are written at or above the threshold of the
# song's group (bar_threshold; None: that group has none, its bar lines are never claimed). The beat
# confidence is a logistic curve of the log-odds of the nested posterior, of the bar confidence and of
# the long-note tracker's agreement with the beats (calibrated_beat_confidence), fitted on the songs
# below their group's bar-line threshold, where it decides; beats are believed at or above
# BEAT_CONFIDENCE_THRESHOLD, bars or not. All of it is fitted and chosen on the bench split by
# bench_tempo.py --calibrate, which prints the block below (each threshold by the rule of its
# choose_threshold, which lives there with the rest of the calibration): paste it over these lines
# after a refit.
CALIBRATION_DRUMS = (1.642, 0.063)  # songs with drums: slope per unit of margin, offset (log-odds)
CALIBRATION_NO_DRUMS = (1.135, -1.086)  # songs without drums: the same
CONFIDENCE_THRESHOLD_DRUMS: float | None = 0.50
CONFIDENCE_THRESHOLD_NO_DRUMS: float | None = None
BEAT_CALIBRATION_NESTED = 1.000  # per unit of log-odds of the nested posterior
BEAT_CALIBRATION_BARS = 1.412  # per unit of log-odds of the bar confidence
BEAT_CALIBRATION_AGREEMENT = 0.099  # per unit of log-odds of the long-note tracker's agreement
BEAT_CALIBRATION_OFFSET = 0.302
BEAT_CONFIDENCE_THRESHOLD = 0.72
# The words of ``TempoEstimate.describe`` that ``info`` reads back from a file's own tempo text (the patterns
# below): the line is written with these names and read through them, so a rewording changes both.
DESCRIBED_OPENING = "tempo"  # then the BPM
NO_ESTIMATE_OPENING = "too few notes to estimate a tempo; written at"  # then the BPM
DESCRIBED_UNIT = "BPM (quarter notes)"
BARS_FROM_FIRST_BEAT = "bar lines counted from its first beat"  # beats of a source's beat map, no bar claimed
BARS_FROM_ZERO = "bar lines counted from 0 s"  # beats followed, no bar claimed
BARS_NOT_ALIGNED = "bar lines not aligned"  # one constant tempo (no estimate)
BARS_NOT_ALIGNED_TO_MUSIC = f"{BARS_NOT_ALIGNED} to the music"  # one constant tempo (an estimate not followed)
# The tempo a line of ``TempoEstimate.describe`` gives, estimated or not (a file's own text: ``jobs.info``).
DESCRIBED_TEMPO = re.compile(
    f"(?:{re.escape(DESCRIBED_OPENING)}|{re.escape(NO_ESTIMATE_OPENING)}) "
    f"([0-9]+(?:\\.[0-9]+)?) {re.escape(DESCRIBED_UNIT)}"
)
# The words of ``TempoEstimate.describe`` that say no bar line is claimed (beats only, or one constant tempo):
# ``info`` finds them in a file's own tempo text and says so instead of reading its first time signature as a downbeat.
# The longer of two phrases that start alike comes first: the longest is found.
UNCLAIMED_PATTERN = re.compile(
    "|".join(
        re.escape(words)
        for words in (BARS_FROM_FIRST_BEAT, BARS_FROM_ZERO, BARS_NOT_ALIGNED_TO_MUSIC, BARS_NOT_ALIGNED)
    )
)
LOG_ODDS_CLIP = 1e-3  # probabilities are read as log-odds within [0.001, 0.999]
HINT_MARGIN = 3.0  # score (log-probability) a tagged tempo may lose to the best and still win
HINT_TOLERANCE = 0.03  # a hypothesis is "at the tagged tempo" within 3%
# long_note_agreement: no evidence either way (log-odds 0); the beat spacings it compares (s), what
# the tracker follows (a beat of 0.15 s is a 16th at 100, of 3 s a slow bar)
NO_AGREEMENT = 0.5
AGREEMENT_SPACING_S = (0.15, 3.0)
REFINE_WINDOW = 0.15  # onsets within this share of a beat of it pull it (15%: a 16th is 25%)
MAX_NESTED_RATIO = 4  # nested beat levels: up to four of the finer in the coarser, as the benchmark judges the grid
TEMPO_SPAN_BEATS = 8  # the tempo is the median over spans of 8 beats: jitter averages out, drift stays
# Without drums even the earliest stem lags the music: in the real Suno export the bass sits
# 18 ms late against the drums (PRODUCT.md), the least of its stems' lags, so beats found from
# pitched stems alone are moved that much earlier.
STEM_LATENCY_S = 0.018
MIN_PART_ONSETS = beats.MIN_LAG_ONSETS  # a part needs this many onsets near beats for its timing to count
REFINE_SMOOTH_BEATS = 4  # deviations are averaged over ±4 beats: human jitter cancels, drift stays
# _follow_tempo: the tempo-state tracker's beats replace all the chosen ones when at least half of those have one
# of its beats within REFINE_WINDOW (the same beats: the meter model's phase stays), and none otherwise; in songs
# of at least one TEMPO_SPAN_BEATS span of beats (fewer show no tempo change the tempo is read by)
FOLLOW_AGREEMENT = 0.5
FOLLOW_MIN_BEATS = TEMPO_SPAN_BEATS
_TEMPO_TAG = re.compile(r"(\d{2,3}(?:\.\d+)?)\s*bpm\b", re.IGNORECASE)


@dataclass(frozen=True)
class TempoEstimate:
    """A song's tempo, meter and beat grid, as estimated from its notes.

    ``bpm`` is the tempo in quarter notes a minute (the one a DAW shows), fitted over
    the whole song; ``meter`` is "4/4", "3/4" or "6/8" (a 2/4 or 2/2 song is written in 4/4, a
    12/8 or 3/8 one in 6/8: see the README's meter convention); ``quarters_per_beat`` is 1,
    or 1.5 in 6/8. ``beats_s`` and ``downbeats_s`` are every beat and bar line found
    (seconds, following drift), and ``first_downbeat_s`` the first bar line at or after the
    first note. ``confidence`` (0-1) is the calibrated probability that the tempo, beats and
    bar lines written are right (``calibrated_confidence``, by ``has_drums``: whether the
    notes have drums); ``sure`` says it reaches the threshold of that group
    (``bar_threshold``; without drums there may be none).
    ``beat_confidence`` (0-1) is the calibrated probability that a map following the beats
    lies on the music's grid (``calibrated_beat_confidence``), made from ``nested``, the
    posterior of the hypotheses whose beats nest with these (the same grid, at this level or
    twice, half or a third of it) whatever their bars, the bar ``confidence`` and ``agreement``,
    the share of these beats a tracker following the long notes also finds
    (``long_note_agreement``); ``beats_sure`` says they are believed
    (BEAT_CONFIDENCE_THRESHOLD, or ``sure``). ``source``:
    "onsets", "hint" (a tagged tempo agreed) or "none" (too few notes; 120 BPM).
    ``margin`` is the chosen hypothesis's score minus that of the best hypothesis writing
    another file (log-odds): what the bar confidence is made from and calibrated on.
    ``written`` is what the tempo map made from it draws ("bars", "beats" or "constant"),
    set by the writer (``timing.auto_time``); empty until then, when ``timing.drawn`` says it.
    """

    bpm: float
    meter: str
    first_downbeat_s: float
    confidence: float
    source: str
    quarters_per_beat: float = 1.0
    beats_s: Floats | None = field(default=None, compare=False, repr=False)
    downbeats_s: Floats | None = field(default=None, compare=False, repr=False)
    beat_confidence: float = 0.0
    margin: float = 0.0
    nested: float = 0.0
    agreement: float = 0.0
    written: str = ""
    has_drums: bool = True

    @property
    def sure(self) -> bool:
        """True when the bar lines are believed (confidence at or above its group's threshold, if it has one)."""
        return reaches(self.confidence, bar_threshold(has_drums=self.has_drums))

    @property
    def beats_sure(self) -> bool:
        """True when the beats are believed (``beat_confidence`` at or above its threshold), bars or not."""
        return self.sure or self.beat_confidence >= BEAT_CONFIDENCE_THRESHOLD

    def describe(self) -> str:
        """Return one line on what was found: tempo, meter, first downbeat, confidence, and what is written.

        What is written is ``written``, else what ``timing.drawn`` decides: the line never
        claims bar lines or beats that the file does not draw.
        """
        found = f"{self.bpm:g} {DESCRIBED_UNIT}"
        if self.source == NO_ESTIMATE:
            return f"{NO_ESTIMATE_OPENING} {found}, {BARS_NOT_ALIGNED}"
        if self.source == BEAT_MAP_SOURCE:  # a .mid's own beat map (``beatmap``), bars or beats as written
            found += " from the source's beat map"
        confidence, beat_confidence = shown_confidence(self.confidence), shown_confidence(self.beat_confidence)
        written = self.written or drawn(self)
        opening = f"{DESCRIBED_OPENING} {found}"
        if written == BARS:
            return (f"{opening}, {self.meter}, first downbeat at {self.first_downbeat_s:.3f} s "
                    f"(confidence {confidence})")  # fmt: skip
        bars = (self._bars_not_claimed(confidence) if not self.sure
                else f"confidence {confidence}, but no bar line found after the first note")  # fmt: skip
        if written == BEATS and self.source == BEAT_MAP_SOURCE:  # the map's own beats: 0 s in a Suno export
            return f"{opening}; {bars}: no meter or downbeat claimed, {BARS_FROM_FIRST_BEAT}"
        if written == BEATS:
            return (f"{opening}, beats followed (beat confidence {beat_confidence}); {bars}: no meter or "
                    f"downbeat claimed, {BARS_FROM_ZERO}")  # fmt: skip
        if not self.beats_sure:
            return (f"{opening}, {self._bars_not_claimed(confidence)}: "
                    f"written as one constant tempo from 0 s, {BARS_NOT_ALIGNED_TO_MUSIC}")  # fmt: skip
        return (f"{opening}, too few beats found to follow them (beat confidence {beat_confidence}); {bars}: "
                f"written as one constant tempo from 0 s, {BARS_NOT_ALIGNED_TO_MUSIC}")  # fmt: skip

    def _bars_not_claimed(self, confidence: str) -> str:
        """Why no bar line is claimed: the confidence (shown) is below the group's threshold, or the group has none."""
        threshold = bar_threshold(has_drums=self.has_drums)
        if threshold is None:
            return f"confidence {confidence} in the bars, but without drums no bar line is claimed"
        return f"confidence {confidence} in the bars is below {threshold:g}"


def bar_threshold(*, has_drums: bool) -> float | None:
    """Return the bar-line threshold of a song's group (with drums or without), or None when that group has none.

    Each group's is chosen on the bench split (``bench_tempo.py --calibrate``): the lowest
    confidence at or above which that group's songs are right at least 95% of the time.
    None: no confidence reached by enough of its songs is right that often; its bar lines are
    never claimed, its beats may still be followed (``beats_sure``).
    """
    return CONFIDENCE_THRESHOLD_DRUMS if has_drums else CONFIDENCE_THRESHOLD_NO_DRUMS


def reaches(confidence: float, threshold: float | None) -> bool:
    """Return True when a confidence is at or above its threshold; no threshold (None) is never reached."""
    return threshold is not None and confidence >= threshold


def shown_confidence(value: float) -> str:
    """Return a confidence (0-1) with two decimals, rounded down, so one below a threshold never reads as reaching it.

    Rounded to nearest, 0.619 would read "0.62" beside a threshold of 0.62 it misses. The
    values are kept to three decimals; the small allowance keeps 0.29 from showing as 0.28.
    """
    return f"{math.floor(value * 100 + 1e-9) / 100:.2f}"


def tempo_from_tags(tags: str | None) -> float | None:
    """Return the tempo a tag string names ("synthwave, 128 bpm" -> 128.0), if plausible."""
    match = _TEMPO_TAG.search(tags or "")
    if match and meter.MIN_QUARTER_BPM / 2 <= float(match.group(1)) <= meter.MAX_QUARTER_BPM * 2:
        return float(match.group(1))
    return None


def estimate_tempo(record: Record, *, hint_bpm: float | None = None) -> TempoEstimate:
    """Estimate the tempo (quarter notes a minute), meter, beats and bar lines of a record.

    ``hint_bpm`` (default: a tempo in the record's tags) wins when the notes agree.
    Times are seconds from the song's start. Reads at most MAX_ANALYSIS_S of the record
    (the stretch with the most notes), so its time and memory are bounded whatever the
    record's span. Never raises for content: a record with too few notes gets 120 BPM,
    4/4 and confidence 0.
    """
    check_argument("estimate_tempo", "record", record, Record)
    import numpy as np

    hint_bpm = hint_bpm if hint_bpm is not None else tempo_from_tags(record.tags)
    stretch, offset_s = _analysed_stretch(record)
    found = onsets.collect_onsets(stretch)
    if len(found.all.times_s) < MIN_ONSETS or found.last_s - found.first_s < MIN_SPAN_S:
        return _no_estimate(has_drums=found.has_drums)
    slots = beats.slot_grid(found, meter.SLOTS_PER_PULSE)
    hypotheses = meter.meter_hypotheses(found, slots)
    if len(hypotheses.beat) == 0 or len(slots) < 4:
        return _no_estimate(has_drums=found.has_drums)
    scores = hypotheses.scores()
    posterior = np.exp(scores - scores.max())
    posterior /= posterior.sum()
    chosen, source = int(np.argmax(scores)), "onsets"
    if hint_bpm is not None:
        hinted = _hinted(hypotheses, slots, scores, hint_bpm)
        if hinted is not None:
            chosen, source = hinted, "hint"
    same = _agreeing(hypotheses, chosen)
    rivals = scores[~same]
    margin = float(scores[chosen] - rivals.max()) if len(rivals) else MAX_MARGIN
    confidence = calibrated_confidence(margin, has_drums=found.has_drums)
    nested = _beat_mass(hypotheses, posterior, chosen)
    estimate = _estimate_for(found, hypotheses, slots, chosen, confidence, source)
    agreement = long_note_agreement(found, estimate.beats_s)
    return dataclasses.replace(
        _moved(estimate, offset_s),
        beat_confidence=round(calibrated_beat_confidence(nested, confidence, agreement), 3),
        nested=round(nested, 3),
        agreement=round(agreement, 3),
        margin=round(margin, 3),
        has_drums=found.has_drums,
    )


def _no_estimate(*, has_drums: bool) -> TempoEstimate:
    """Return the estimate of a record with too few notes: FALLBACK_BPM, 4/4, confidence 0."""
    return TempoEstimate(
        bpm=FALLBACK_BPM, meter="4/4", first_downbeat_s=0.0, confidence=0.0, source=NO_ESTIMATE, has_drums=has_drums
    )


def _analysed_stretch(record: Record) -> tuple[Record, float]:
    """Return the notes the estimate reads, and the time (s) their times are now counted from.

    The whole record when its notes start within MAX_ANALYSIS_S of each other; otherwise
    the notes starting in the MAX_ANALYSIS_S (from a whole second) that hold the most
    starts, the earliest of equals (counted per second: memory for the span's seconds,
    not its 10 ms frames). A stretch that starts later than MAX_ANALYSIS_S is moved to start
    at 0 s; an earlier one keeps its times, so a song with a stray note long after it is
    estimated exactly as without it. The beat and meter stages cost a frame every 10 ms of
    what they read, so this bounds their time and memory (at most twice MAX_ANALYSIS_S of
    frames, and the notes of that stretch) whatever the record holds: a stray end time
    hours in, or hours of silence.
    """
    import numpy as np

    starts_s = np.concatenate([np.empty(0), *(i.start_s for i in record.instruments)])  # all parts' at once
    first_s = float(starts_s.min()) if len(starts_s) else 0.0
    last_s = float(starts_s.max()) if len(starts_s) else 0.0
    if last_s - first_s <= MAX_ANALYSIS_S:
        return record, 0.0
    per_second = np.bincount(starts_s.astype(np.int64), minlength=int(last_s) + 2).astype(np.float64)
    running = np.concatenate([[0.0], np.cumsum(per_second)])
    width = int(MAX_ANALYSIS_S)
    start_s = float(np.argmax(running[width:] - running[:-width]))
    end_s = start_s + MAX_ANALYSIS_S
    window = (starts_s >= start_s) & (starts_s < end_s)  # all parts' notes, in the order of the parts
    begins_s = float(starts_s[window].min())
    kept = np.split(window, np.cumsum([len(i.start_s) for i in record.instruments])[:-1])  # per part
    origin_s = begins_s if begins_s > MAX_ANALYSIS_S else 0.0
    instruments = tuple(
        dataclasses.replace(
            i,
            start_s=i.start_s[keep] - origin_s,
            end_s=i.end_s[keep] - origin_s,
            pitch=i.pitch[keep],
            velocity=i.velocity[keep],
        )  # fmt: skip
        for i, keep in zip(record.instruments, kept)
    )
    return dataclasses.replace(record, instruments=instruments), origin_s


def _moved(estimate: TempoEstimate, offset_s: float) -> TempoEstimate:
    """Return an estimate made on a stretch starting ``offset_s`` into the song, in the song's time (s)."""
    if offset_s == 0.0:
        return estimate
    return dataclasses.replace(
        estimate,
        first_downbeat_s=estimate.first_downbeat_s + offset_s,
        beats_s=None if estimate.beats_s is None else estimate.beats_s + offset_s,
        downbeats_s=None if estimate.downbeats_s is None else estimate.downbeats_s + offset_s,
    )


def calibrated_confidence(margin: float, *, has_drums: bool) -> float:
    """Return the probability that the bar lines written are right, from the score margin over the best rival.

    A logistic curve of the margin (Platt scaling, Platt 1999), one per group: songs with drums
    (CALIBRATION_DRUMS) and songs without (CALIBRATION_NO_DRUMS), each fitted on that group's
    songs of the bench split by ``bench_tempo.py --calibrate``. Right means what the file draws:
    the tempo within 1%, beats of the right kind (quarters or dotted quarters), and bar lines
    within 30 ms of the music's, by the README's meter convention (4/4 for a 2/4 or 2/2 song,
    6/8 for a 12/8 or 3/8 one). The margin (the log-odds of the chosen hypothesis against the
    best one that writes another file) ranks songs by rightness better than the posterior mass
    does there; at the same margin a song with drums is right more often (its kick and backbeat
    mark the bar, where harmony alone is often ambiguous), which one curve for all songs cannot
    say; the thresholds are chosen per group too. Studies: docs/tempo-studies.md, "Confidence and
    its calibration".
    """
    slope, offset = CALIBRATION_DRUMS if has_drums else CALIBRATION_NO_DRUMS
    return logistic(slope * min(margin, MAX_MARGIN) + offset)


def calibrated_beat_confidence(nested: float, confidence: float, agreement: float) -> float:
    """Return the probability that a map following the beats found lies on the music's grid.

    A logistic curve (Platt 1999, with three inputs) of the log-odds of ``nested`` (the
    posterior of the hypotheses whose beats nest with the chosen ones, ``_beat_mass``), of
    the bar ``confidence`` and of ``agreement`` (the share of the beats that a second tracker,
    following the long notes, also finds: ``long_note_agreement``; NO_AGREEMENT, log-odds 0,
    says nothing either way), fitted by ``bench_tempo.py --calibrate`` on the bench split's
    songs below their group's bar-line threshold: on the grid means the beats found within
    30 ms (median) of the music's at its beat or a level nested with it. The bar confidence
    adds what the posterior mass cannot say: how far the chosen reading stands above its best
    rival; the agreement adds a second opinion from other evidence (where the long notes
    start), which the meter model's posterior cannot give about itself. Its cross-validation:
    docs/tempo-studies.md, "Confidence and its calibration".
    """
    logit = (BEAT_CALIBRATION_NESTED * log_odds(nested) + BEAT_CALIBRATION_BARS * log_odds(confidence)
             + BEAT_CALIBRATION_AGREEMENT * log_odds(agreement) + BEAT_CALIBRATION_OFFSET)  # fmt: skip
    return logistic(logit)


def logistic(logit: float) -> float:
    """Return the probability a log-odds value says (the logistic curve of Platt's calibration).

    Finite for every float: ``exp`` is only taken of a value at most 0 (math.exp overflows above 709).
    """
    if logit >= 0.0:
        return 1.0 / (1.0 + math.exp(-logit))
    odds = math.exp(logit)
    return odds / (1.0 + odds)


def log_odds(probability: float) -> float:
    """Return the log-odds of a probability, read within [LOG_ODDS_CLIP, 1 - LOG_ODDS_CLIP] (finite at 0 and 1)."""
    p = min(max(probability, LOG_ODDS_CLIP), 1.0 - LOG_ODDS_CLIP)
    return math.log(p / (1.0 - p))


def long_note_agreement(found: onsets.Onsets, beat_times: Floats | None) -> float:
    """Return the share of the beats found that a tracker following only the long notes also finds.

    A committee of two beat trackers (Zapata, Davies & Gómez 2014: the same tracking model
    on diverse input features, whose mutual agreement tells which output to trust; Degara
    et al. 2012: a beat tracker's reliability read from its own observations): Ellis's
    dynamic-programming tracker (``beats.track_pulse``) runs again at the beats' median
    spacing, on the envelope of the pitched onsets weighted by their length (``onsets``'
    "long" role: long notes start on strong beats, Lerdahl & Jackendoff's metrical
    preference rule 5). The share of the beats inside the notes' span that have one of its
    pulses within REFINE_WINDOW of a beat is the agreement: a tracker led by other evidence
    putting its pulses on the same beats, where a beat found half a beat or a third off the
    music's (the failure the bar confidence cannot see in music without drums) leaves the
    long notes between the beats. NO_AGREEMENT when there is nothing to compare: fewer than
    MIN_ONSETS long-note onsets or three beats, or a spacing outside what the tracker follows.

    This tracker keeps one period, the beats' median spacing, in every song: for songs
    without drums, whose slot grid ``beats.follow_drift`` tracks a second time at the local
    period, the committee's two members are the same DP model but no longer the same
    tracking of drift. Kept so on purpose: the agreement feeds the beat confidence
    (BEAT_CALIBRATION_AGREEMENT), fitted with this tracker, and following drift here would
    move those calibrated figures; it was not measured whether it would help.

    It reads the beats the estimate keeps (``estimate_tempo`` passes ``estimate.beats_s``):
    for a song without drums whose beats ``_follow_tempo`` re-tracked, those are
    ``beats.follow_tempo``'s, not the chosen hypothesis's, so the re-tracking moved those
    songs' agreement, and the beat confidence was recalibrated after it (commit 44296ab).

    It costs a tenth of ``estimate_tempo`` (CPU time on the bench and test splits' 515 songs:
    1.0 of 8.5-9.2 s) and runs on every song: ``info`` shows the beat confidence of every
    record, so it is never skipped.
    """
    import numpy as np

    long_notes = found.role("long")
    if beat_times is None or len(long_notes.times_s) < MIN_ONSETS:
        return NO_AGREEMENT
    first_s, last_s = found.first_s, found.last_s
    inside = beat_times[(beat_times >= first_s - GROUP_S) & (beat_times <= last_s)]
    if len(inside) < 3:
        return NO_AGREEMENT
    spacing_s = float(np.median(np.diff(inside)))
    shortest_s, longest_s = AGREEMENT_SPACING_S
    if not shortest_s <= spacing_s <= longest_s:
        return NO_AGREEMENT
    env = onsets.envelope(long_notes, last_s=last_s)
    pulses = beats.track_pulse(env, spacing_s)
    if len(pulses) < 2:
        return NO_AGREEMENT
    return _share_near(inside, pulses, spacing_s)


def _share_near(beat_times: Floats, other: Floats, spacing_s: float) -> float:
    """Return the share of ``beat_times`` that have a beat of ``other`` within REFINE_WINDOW of ``spacing_s``."""
    import numpy as np

    distance = np.abs(other[meter.nearest_slot(beat_times, other)] - beat_times)
    return float((distance <= REFINE_WINDOW * spacing_s).mean())


class _OneHypothesis(NamedTuple):
    """One hypothesis of ``meter.Hypotheses``: its beat (slots), meter (index in ``meter.METERS``), bar phase (slot)."""

    beat: int
    meter_index: int
    phase: int


def _one_hypothesis(hypotheses: meter.Hypotheses, index: int) -> _OneHypothesis:
    """Return the hypothesis at ``index`` of the columns ``hypotheses``."""
    return _OneHypothesis(int(hypotheses.beat[index]), int(hypotheses.meter[index]), int(hypotheses.phase[index]))


def _agreeing(hypotheses: meter.Hypotheses, chosen: int) -> Bools:
    """Return which hypotheses write the same file as the chosen one.

    Same beat and meter, and a bar phase within REFINE_WINDOW of a beat, which ``_refine``
    pulls onto the same bar lines.
    """
    import numpy as np

    beat, meter_index, phase = _one_hypothesis(hypotheses, chosen)
    _, per_bar, _, _ = meter.METERS[meter_index]
    bar = beat * per_bar
    distance = np.abs(hypotheses.phase - phase)
    distance = np.minimum(distance, bar - distance)
    close = distance <= REFINE_WINDOW * beat  # the refinement pulls these onto the same bar lines
    same: Bools = (hypotheses.beat == beat) & (hypotheses.meter == meter_index) & close
    return same


def _beat_mass(hypotheses: meter.Hypotheses, posterior: Floats, chosen: int) -> float:
    """Return the posterior of every hypothesis whose beats nest with the chosen one's.

    Nested: one beat length is 1 to ``MAX_NESTED_RATIO`` times the other (eighths and quarters,
    quarters and half notes, eighths and dotted quarters; the levels ``bench_tempo.py`` judges
    to lie on the music's grid, no wider) and the coarser beats fall on the finer grid
    (within REFINE_WINDOW of its beat), whatever the meter and bar phase. Those hypotheses
    put the chosen beats on the music's metrical grid, so a map following the chosen beats
    follows the music even when its metrical level is not the one chosen (that level is
    the tempo written either way, and the bar confidence judges it): the probability that
    following the beats is right even when the bars are not. At least ``posterior``, whose
    hypotheses are among these.
    """
    import numpy as np

    beat, _, phase = _one_hypothesis(hypotheses, chosen)
    finer = np.minimum(hypotheses.beat, beat)
    coarser = np.maximum(hypotheses.beat, beat)
    distance = np.abs(hypotheses.phase % finer - phase % finer)
    distance = np.minimum(distance, finer - distance)
    ratio = coarser // finer
    nested = (coarser % finer == 0) & (ratio <= MAX_NESTED_RATIO) & (distance <= REFINE_WINDOW * finer)
    return float(min(1.0, posterior[nested].sum()))


def _hinted(hypotheses: meter.Hypotheses, slots_s: Floats, scores: Floats, hint_bpm: float) -> int | None:
    """Return the best hypothesis at the tagged tempo (or twice or half it) if it is near the best."""
    import numpy as np

    bpm = _hypothesis_bpm(hypotheses, slots_s)
    near = np.zeros(len(bpm), dtype=bool)
    for factor in (1.0, 2.0, 0.5):  # tags may name the half or double tempo
        near |= np.abs(bpm / (hint_bpm * factor) - 1) <= HINT_TOLERANCE
    if not near.any():
        return None
    best = int(np.flatnonzero(near)[np.argmax(scores[near])])
    return best if scores[best] >= scores.max() - HINT_MARGIN else None


def _hypothesis_bpm(hypotheses: meter.Hypotheses, slots_s: Floats) -> Floats:
    """Return each hypothesis's tempo in quarter notes a minute, on the slot grid's median slot."""
    import numpy as np

    slot_s = float(np.median(np.diff(slots_s)))
    quarters = np.array([q for _, _, _, q in meter.METERS])[hypotheses.meter]
    out: Floats = 60.0 / (hypotheses.beat * slot_s) * quarters
    return out


def _estimate_for(
    found: onsets.Onsets, hypotheses: meter.Hypotheses, slots_s: Floats, chosen: int, confidence: float, source: str
) -> TempoEstimate:
    """Turn one hypothesis into beats, bar lines and a fitted tempo (seconds)."""
    import numpy as np

    beat, meter_index, phase = _one_hypothesis(hypotheses, chosen)
    name, per_bar, division, quarters = meter.METERS[meter_index]
    beat_slots = np.arange(phase % beat, len(slots_s), beat)
    is_down = (beat_slots - phase) % (beat * per_bar) == 0
    if hypotheses.kick_near is not None:  # with drums
        beat_slots = meter.kick_phase_path(hypotheses.kick_near, beat_slots, beat=beat, division=division)
    chosen_times = slots_s[beat_slots]
    beat_times = _placed(found, chosen_times)
    keep = _in_song(found, beat_times, per_bar)
    beat_s = _beat_length(beat_times[keep])
    if not found.has_drums:  # the tempo stays the chosen beats' (beat_s); the beats may follow it closer
        followed = _follow_tempo(found, chosen_times, is_down)
        if followed is not None:
            followed_times, is_down = followed
            beat_times = _placed(found, followed_times)
            keep = _in_song(found, beat_times, per_bar)
    beat_times, is_down = beat_times[keep], is_down[keep]
    downbeats = beat_times[is_down]
    later = downbeats[downbeats >= found.first_s - GROUP_S]
    first_downbeat = max(0.0, float(later[0])) if len(later) else 0.0
    bpm = round(60.0 / beat_s * quarters, 2)
    return TempoEstimate(
        bpm=bpm,
        meter=name,
        first_downbeat_s=first_downbeat,
        confidence=round(confidence, 3),
        source=source,
        quarters_per_beat=quarters,
        beats_s=beat_times,
        downbeats_s=downbeats,
    )


def _placed(found: onsets.Onsets, beat_times: Floats) -> Floats:
    """Return beats refined onto the onsets and moved by the stems' latency."""
    placed = _refine(beat_times, _timing_reference(found))
    placed = placed + _leading_part_offset(found.all, placed)
    if not found.has_drums:
        placed = placed - STEM_LATENCY_S
    return placed


def _in_song(found: onsets.Onsets, beat_times: Floats, per_bar: int) -> Bools:
    """Return which beats lie in the song or a bar (``per_bar`` median beats) either side of it."""
    import numpy as np

    bar_s = per_bar * float(np.median(np.diff(beat_times))) if len(beat_times) > 1 else 0.0
    keep: Bools = (beat_times >= found.first_s - bar_s) & (beat_times <= found.last_s + bar_s)
    return keep


def _beat_length(beat_times: Floats) -> float:
    """Return the beat length (s): the median over spans of TEMPO_SPAN_BEATS beats (jitter averages out)."""
    import numpy as np

    span = min(TEMPO_SPAN_BEATS, len(beat_times) - 1)
    return float(np.median(beat_times[span:] - beat_times[:-span]) / span) if span >= 1 else 60.0 / FALLBACK_BPM


def _follow_tempo(found: onsets.Onsets, beat_times: Floats, is_down: Bools) -> tuple[Floats, Bools] | None:
    """Return the chosen beats re-tracked by ``beats.follow_tempo``, and their downbeats; None to keep the chosen ones.

    Without drums, the chosen hypothesis's beats come from the pulse ``beats.follow_drift``
    tracked; its local period lags a final ritardando and wanders with transcribed onsets.
    Where those beats show the tempo moving (a straight line leaves them more than
    ``timing.CONSTANT_FIT_S``, by ``timing.straight_line``: the rule by which the tempo map
    writes more than one tempo), the tempo-state tracker runs at their median spacing on the
    envelope of all onsets, and its beats replace them when at least FOLLOW_AGREEMENT of the
    chosen beats inside the notes' span have one of its beats within REFINE_WINDOW of theirs:
    the same beat phase, so the level and phase the meter model chose stay (a tracker free to
    change tempo can drift onto strong off-beats, which the meter model has weighed and the
    tracker has not); otherwise none of them. Each chosen downbeat marks the beat nearest it.
    Beats one straight line fits are kept: there the freer tracker only follows the
    transcription's jitter. The test reads the chosen beats, not the music, so a steady song
    whose chosen beats jitter or slip is re-tracked too. Fewer than FOLLOW_MIN_BEATS beats are
    kept as they are.

    All or nothing, not per stretch: splicing was tried (stop s8-stretch) and left out; the
    afrobeats song's long notes and bass sit on the off-beats the re-tracking slid to, and a
    slip of half a beat adds or drops a beat as a tempo change does, so no stretch-level
    evidence told the two apart. The tempo figure stays the chosen beats' (``_estimate_for``).
    Studies: docs/tempo-studies.md, "Re-tracking drifting beats without drums (stop s8)".
    """
    import numpy as np

    inside = beat_times[(beat_times >= found.first_s) & (beat_times <= found.last_s)]
    if len(beat_times) < FOLLOW_MIN_BEATS or len(inside) < 2 or straight_line(inside)[2] <= CONSTANT_FIT_S:
        return None
    spacing_s = float(np.median(np.diff(beat_times)))
    followed = beats.follow_tempo(found.all_envelope, spacing_s)
    if len(followed) < 2:
        return None
    if _share_near(inside, followed, spacing_s) < FOLLOW_AGREEMENT:
        return None
    down = np.zeros(len(followed), dtype=bool)
    down[meter.nearest_slot(beat_times[is_down], followed)] = True
    return followed, down


def _timing_reference(found: onsets.Onsets) -> onsets.Stream:
    """The onsets whose timing the beats follow: the drums when there are any (they lag least), else all."""
    import numpy as np

    if not found.has_drums:
        return found.all
    drums = [found.role(name) for name in ("kick", "snare", "cymbals")]
    times = np.concatenate([d.times_s for d in drums])
    return onsets.sorted_stream(times, np.concatenate([d.weights for d in drums]), np.zeros(len(times), np.int64))


def _near_beats(times_s: Floats, beat_times: Floats) -> tuple[Ints, Floats, Bools]:
    """Return each onset's nearest beat, its deviation from it (s), and whether it is within REFINE_WINDOW."""
    import numpy as np

    spacing = np.gradient(beat_times)
    nearest = meter.nearest_slot(times_s, beat_times)
    deviation = times_s - beat_times[nearest]
    return nearest, deviation, np.abs(deviation) <= REFINE_WINDOW * spacing[nearest]


def _leading_part_offset(every: onsets.Stream, beat_times: Floats) -> float:
    """Return the median deviation from the beats of the part that plays earliest (s, usually <= 0).

    Transcription only ever delays a stem (10-40 ms per stem in real exports), so the part
    that sits earliest on the beats is the best estimate of where the beats really are.
    """
    if len(beat_times) < 3:
        return 0.0
    _, deviation, close = _near_beats(every.times_s, beat_times)
    return min(onsets.part_medians(every.part, deviation, close, MIN_PART_ONSETS).values(), default=0.0)


def _refine(beat_times: Floats, reference: onsets.Stream) -> Floats:
    """Move each beat by the weighted mean deviation of the onsets near it, smoothed over neighbours."""
    import numpy as np

    if len(beat_times) < 3 or len(reference.times_s) == 0:
        return beat_times
    nearest, deviation, close = _near_beats(reference.times_s, beat_times)
    count = len(beat_times)
    weight = np.bincount(nearest[close], weights=reference.weights[close], minlength=count)
    shift = np.bincount(nearest[close], weights=(reference.weights * deviation)[close], minlength=count)
    kernel = np.ones(2 * REFINE_SMOOTH_BEATS + 1)
    # The centred window, one value a beat: what mode="same" gives, also for fewer beats than the kernel.
    centred = slice(REFINE_SMOOTH_BEATS, REFINE_SMOOTH_BEATS + count)
    smooth_weight = np.convolve(weight, kernel)[centred]
    smooth_shift = np.convolve(shift, kernel)[centred]
    shift_s = np.divide(smooth_shift, smooth_weight, out=np.zeros(count), where=smooth_weight > 0)
    moved: Floats = beat_times + shift_s
    return moved
