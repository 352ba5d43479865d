"""Meter: which multiple of the tracked pulse is the beat, how beats group into bars, where bar 1 is.

The pulse from ``beats.track_pulse`` is split into ``SLOTS_PER_PULSE`` slots (halves and
thirds both fall on slots). Every onset is given to its nearest slot, which absorbs
chord spread and per-stem latency up to a third of a slot (about 40 ms at 120 pulses a
minute). A hypothesis is a beat length in slots (1/2, 2/3, 1, 3/2, 2, 3 or 4 pulses),
a meter (beats per bar and a duple or triple beat division: 4/4, 3/4, 6/8)
and a bar phase. This is Klapuri, Eronen & Astola's (2006, "Analysis of the meter of
acoustic musical signals", IEEE TASLP 14(1)) joint choice of tatum, tactus and measure,
made here on exact symbolic onsets, and Temperley's (2007, "Music and Probability")
view of meter as the hypothesis under which onsets are most probable at strong metrical
positions; the downbeat cues are those of downbeat trackers: harmonic change on bar
lines (Goto 2001; Papadopoulos & Peeters 2011), the bass and the kick on beat one, the
backbeat snare (Krebs, Böck & Widmer 2013 learn such bar patterns; here they are fixed
features).

Each hypothesis gets interpretable features (``FEATURES``): a log-normal tempo preference
and the onset density per beat (Temperley: a beat carries one to a few notes); for each
role (kick, snare, cymbals, bass, pitched parts, notes weighted by length, and entries,
a part's first note after a rest), the share of its weight on the beats, on their halves
(or thirds) and quarters (or sixths), and the share of its on-beat weight on beat one and
on the backbeats; crashes on bar lines; a prior per meter. Tempo and meter preferences
have their own columns for songs without drums, and a compound meter's division shares
theirs (a beat's thirds are other evidence than its halves). Without drums, one more says
how many of the beats are played at all (``COVERAGE_SLOTS``): Temperley's
(2007) generative model of meter puts a note on nearly every tactus beat and on fewer of
the levels below it, which the shares of onsets on beats cannot say (a beat too short
holds every onset the right one holds). Two more, also without drums, read meter from how the
music repeats (``_regularity``): Brown (1993, "Determination of the meter of musical scores by
autocorrelation", JASA 94(4)) finds the meter of a score from the autocorrelation of its
note onsets weighted by duration, which peaks at the bar (Toiviainen & Eerola 2006, JASA
119(2), classify the meters of 13,000 folk tunes from such autocorrelations); here the length-weighted onsets
(``long``) are correlated with themselves four beats later against six (``regularity_bar``:
bars of four beats or of three), and a bar of six divisions a 3/4 beat later against a 6/8
beat later (``regularity_grouping``: beats of two divisions or of three). Without a
kit the onset shares cannot tell these apart: a tune's running eighths fill 3/4's halves and
6/8's thirds alike, and on the bench split 3/4 against 6/8 and 4/4 against 3/4 were the
commonest meter errors without drums.

Harmony, the main cue without drums, is read as Papadopoulos & Peeters (2011, "Joint
estimation of chords and downbeats from an audio signal", IEEE TASLP 19(1)) read it from
audio, where chords depend on the metrical position: a beat-synchronous pitch-class profile
of the notes *sounding* in each span (``_slot_chroma``), so a chord a transcription spreads
over up to 80 ms, or a note entering a little early, moves only that much of its weight
into the neighbouring span, and a held chord is no change. Three features compare the
change between consecutive spans: on bar lines against the other beats (``harmony_down``),
on beat 3 of a four-beat bar against beats 2 and 4 (``harmony_half``: the metrical
hierarchy of Lerdahl & Jackendoff 1983), and on beats against between them
(``harmony_beat``: chords change on beats, Temperley 2001's harmonic rule, which sets the
metrical level and tells 3/4 from 6/8), plus the mean change per beat (``harmony_rate``).
The bass role (``onsets``) falls to the lowest part when no part is a bass by program or
register, so a quartet's cello or a chorale's bass voice gives the bass-on-beat-one cue.

With drums, a reading whose beats put the bass drum mostly on their half-beats is not generated
(``_kick_between_beats``; its reason: the comment on KICK_HALF_BEAT_RATIO).

The score is a weighted sum of the features (a conditional logit model); the weights
``WEIGHTS`` were fitted by maximum likelihood on the benchmark's "bench" split
(``python bench/bench_tempo.py --fit``; 0.1 L2 penalty); the coverage weight was
fitted next, the others kept (``--fit --fit-only '^coverage_'``), the regularity weights last,
on the corpus with its real half's lateness corrected (``--fit-only '^regularity_'``). A change
to a feature's definition needs a refit of its weight, and ``tempo``'s calibration after it.

The score margin of the chosen hypothesis over the best one that writes another file is what
``tempo`` calibrates into the confidence.

Studies (the cues tried and left out, with their cross-validation figures): docs/tempo-studies.md,
sections "The meter model's features" to "The metrical level without drums (stop s9)", and "The kick test".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .onsets import FRAME_S, Onsets, Stream

if TYPE_CHECKING:
    from .onsets import Bools, Floats, Ints  # the column types, named once

CHANGE_PHASES_PER_BEAT = 6  # harmonic change is measured for at most 6 beat phases (a 24th note apart)
SLOTS_PER_PULSE = 12  # halves, thirds and quarters of the pulse are all slots
BEAT_SLOTS = (6, 8, 12, 18, 24, 36, 48)  # beat = 1/2, 2/3, 1, 3/2, 2, 3, 4 pulses
# Meters tried: (name, beats per bar, beat division, quarters per beat). Compound meters
# count the dotted quarter as the beat; the tempo written is always in quarters.
# 2/4 and 12/8 are not tried: they group the same beats as 4/4 and 6/8 in bars half or twice as
# long, a choice scores make by a style's habit more than by what is played (README, "Tempo and
# bars"); 4/4 draws every other bar line of a 2/4 song, 6/8 every bar line of a 12/8 song and one
# more on its third beat.
METERS = (
    ("4/4", 4, 2, 1.0),
    ("3/4", 3, 2, 1.0),
    ("6/8", 2, 3, 1.5),
)
MIN_QUARTER_BPM, MAX_QUARTER_BPM = 40.0, 240.0  # tempos written by --bpm auto (quarter notes a minute)
PREFERRED_QUARTER_BPM = 120.0  # centre of the tempo-preference features (Moelants 2002: ~120 a minute)
TINY = 1e-3  # keeps log ratios finite where a role is silent
ROLES = ("kick", "snare", "cymbals", "bass", "pitched", "long", "entries")
# Where a role's onsets fall under a hypothesis, as shares of its weight: on beats, on the
# beat's divisions (halves, or thirds in 6/8), on their halves; the rest is finer.
LEVELS = ("beat", "division", "subdivision")
# Where its on-beat weight falls in the bar: beat one, or the backbeats (2 and 4 in 4/4, 2 and 3
# in 3/4, 2 in 6/8). Krebs, Böck & Widmer (2013) learn such bar patterns per style; this model
# learns one weight per role and place, for all styles.
PLACES = ("down", "back")
# Onsets on a beat's thirds (6/8) and on its halves (3/4, 4/4) are different evidence:
# a waltz's "pah-pah" on beats 2 and 3 falls on a 6/8 bar's thirds. Compound meters
# read their division and subdivision shares from their own columns, "<role>_<level>_compound".
COMPOUND_LEVELS = ("division", "subdivision")
BACKBEATS = {"4/4": (1, 3), "3/4": (1, 2), "6/8": (1,)}
# Tempo and meter preferences differ with the instrumentation (drum-based styles are mostly
# 4/4 at 85-175; chamber and folk music without drums is often in 3/4, 6/8 or 2/4): songs
# without drums read these features from their own columns, "<name>_no_drums".
PRIORS = ("tempo_log", "tempo_log_sq", "density_log", "density_log_sq", "meter_3_4", "meter_6_8")
# Without drums, how many of the beats are played at all (``_coverage``): Temperley's
# (2007, "Music and Probability", ch. 2-4) generative model of meter puts a note on nearly every
# tactus beat and on fewer of the levels below it, so a beat too short leaves beats empty (eighths
# in a chorale) and the right one does not; the shares of onsets on beats above cannot say that,
# since a shorter beat always holds at least as much of the weight. With drums the kit plays every
# beat and most divisions, and a cross-validated fit on the bench split gave the column nothing to
# add there: it is read for songs without drums only (as was a share of bar lines played, which
# added nothing either, and was left out). A beat is played when an onset falls on
# its slot or within COVERAGE_SLOTS of it (a slot is a twelfth of the pulse, 17-60 ms): chord
# spread and stem lag must not empty a beat that is played.
COVERAGE_SLOTS = 1
# The regularity contrasts (``_regularity``, songs without drums) correlate the length-weighted
# onsets smoothed over this many slots each side: a chord's spread or a stem's lag of a slot
# must not break a repeat (the same tolerance as COVERAGE_SLOTS, kept apart).
REGULARITY_SMOOTH_SLOTS = 1
SIX_DIVISIONS = 6  # 3/4 and 6/8: a bar of six beat divisions, grouped in twos or in threes
# With drums, a reading whose beats put the bass drum mostly on their half-beats is not generated
# (``_kick_between_beats``): in a kit groove the bass drum marks beats. Goto (2001, "An audio-based
# real-time beat tracking system for music with or without drum-sounds", JNMR 30(2)) finds the
# quarter-note beats from onset times and uses bass drum and snare patterns (the bass drum on strong
# beats, the snare on the weak ones) a level up, to tell strong beats from weak; his patterns put the
# bass drum on beats, and this test carries that a level down: it is this module's assumption, not his
# finding. The fitted weights cannot say it: they put more on a kick on the beat's division than on
# the beat itself (``kick_division`` over ``kick_beat``). The ratio lies between what syncopated kicks
# (drum'n'bass, funk, trap) put on the half-beats of the right reading (2.03 times the beats' share at
# most on the bench split) and what readings half a beat off put there (3.4 times as much or more).
# Within KICK_SLOTS of a beat or half-beat (a slot is a twelfth of the pulse) a kick counts
# there; below KICK_MIN_WEIGHT of kick weight (about five hits) on the half-beats the test says nothing.
# Studies: docs/tempo-studies.md, "The kick test".
KICK_HALF_BEAT_RATIO = 3.0
KICK_MIN_WEIGHT = 4.0
KICK_SLOTS = 1
# Where the pulse tracker slipped half a beat for a stretch (``kick_phase_path``), the same test is
# made per beat, and leaving the whole song's reading costs this much kick weight each way: about two
# bars of a kick on every beat. On the bench split no stretch is moved; on songs generated from
# other seeds any value from 4 to 16 moves the same ones.
KICK_SWITCH_WEIGHT = 8.0
FEATURES = (
    "tempo_log",  # log2(quarter BPM / 120)
    "tempo_log_sq",  # its square: the preference is log-normal
    "harmony_down",  # harmonic change entering on bar lines minus on other beats (0-1 scale)
    "harmony_beat",  # harmonic change entering on beats minus on their divisions (0-1 scale)
    "harmony_half",  # 4-beat bars: change entering beat 3 minus beats 2 and 4 (0-1 scale)
    "harmony_rate",  # mean harmonic change per beat (0-1)
    "crash_down",  # share of crash weight on bar lines
    "density_log",  # log2(onsets per beat): one to a few notes a beat is the usual density
    "density_log_sq",  # its square
    *(f"{role}_{level}" for role in ROLES for level in LEVELS),
    *(f"{role}_{level}_compound" for role in ROLES for level in COMPOUND_LEVELS),
    *(f"{role}_{place}" for role in ROLES for place in PLACES),
    "meter_3_4",
    "meter_6_8",
    *(f"{name}_no_drums" for name in PRIORS),
    "coverage_beat_no_drums",  # share of the beats that have an onset (songs without drums)
    "regularity_grouping_no_drums",  # length-weighted onsets repeating at the meter's groupings (songs without drums)
    "regularity_bar_no_drums",  # the same at its bar
)
# Fitted on the "bench" split (see the module docstring); re-fit with bench_tempo.py --fit.
WEIGHTS = {
    "tempo_log": -5.54,
    "tempo_log_sq": -3.88,
    "harmony_down": 6.94,
    "harmony_beat": 6.18,
    "harmony_half": 1.26,
    "harmony_rate": 7.46,
    "crash_down": 2.45,
    "density_log": 6.95,
    "density_log_sq": -2.22,
    "kick_beat": 4.77,
    "kick_division": 5.97,
    "kick_subdivision": -0.38,
    "snare_beat": 2.38,
    "snare_division": 2.18,
    "snare_subdivision": 5.54,
    "cymbals_beat": 6.67,
    "cymbals_division": 2.81,
    "cymbals_subdivision": 2.81,
    "bass_beat": 0.87,
    "bass_division": 2.11,
    "bass_subdivision": -0.28,
    "pitched_beat": -1.67,
    "pitched_division": 6.84,
    "pitched_subdivision": 4.10,
    "long_beat": 8.83,
    "long_division": 1.37,
    "long_subdivision": -1.62,
    "entries_beat": 1.65,
    "entries_division": -1.04,
    "entries_subdivision": -2.14,
    "kick_division_compound": 3.82,
    "kick_subdivision_compound": -1.68,
    "snare_division_compound": -2.92,
    "snare_subdivision_compound": -1.61,
    "cymbals_division_compound": 5.69,
    "cymbals_subdivision_compound": -3.06,
    "bass_division_compound": -0.45,
    "bass_subdivision_compound": 0.30,
    "pitched_division_compound": 6.14,
    "pitched_subdivision_compound": -0.22,
    "long_division_compound": 1.15,
    "long_subdivision_compound": 0.32,
    "entries_division_compound": 1.71,
    "entries_subdivision_compound": -0.35,
    "kick_down": 2.41,
    "kick_back": -3.95,
    "snare_down": -1.96,
    "snare_back": 2.57,
    "cymbals_down": -5.03,
    "cymbals_back": 1.23,
    "bass_down": -1.19,
    "bass_back": 0.68,
    "pitched_down": 0.37,
    "pitched_back": 0.95,
    "long_down": 0.61,
    "long_back": -2.49,
    "entries_down": 1.53,
    "entries_back": 0.21,
    "meter_3_4": -1.63,
    "meter_6_8": 1.82,
    "tempo_log_no_drums": -2.09,
    "tempo_log_sq_no_drums": -2.28,
    "density_log_no_drums": 0.70,
    "density_log_sq_no_drums": -0.43,
    "meter_3_4_no_drums": 0.13,
    "meter_6_8_no_drums": 0.17,
    "coverage_beat_no_drums": 2.87,
    "regularity_grouping_no_drums": 1.99,
    "regularity_bar_no_drums": 2.36,
}


@dataclass(frozen=True)
class Hypotheses:
    """Every meter hypothesis of a song: columns, one row per hypothesis.

    ``beat`` is the beat length in slots, ``meter`` the index into METERS, ``phase`` the
    slot of the first bar line (0 .. bar length - 1), ``features`` one column per FEATURES.
    ``kick_near``: the kick weight within KICK_SLOTS of each slot (``_kick_near``), for the
    half-beat repair of the beats found (``kick_phase_path``); None without drums.
    """

    beat: Ints
    meter: Ints
    phase: Ints
    features: Floats
    kick_near: Floats | None = None

    def scores(self) -> Floats:
        """Return each hypothesis's score (log of its unnormalised probability) under ``WEIGHTS``."""
        import numpy as np

        vector = np.array([WEIGHTS[name] for name in FEATURES])
        out: Floats = self.features @ vector
        return out


def meter_hypotheses(onsets: Onsets, slots_s: Floats) -> Hypotheses:
    """Return every (beat, meter, bar phase) hypothesis on a slot grid (s) with its features."""
    import numpy as np

    pulse_s = float(np.median(np.diff(slots_s))) * SLOTS_PER_PULSE if len(slots_s) > 1 else 0.5
    accents = {name: _slot_accents(stream, slots_s) for name, stream in _accent_streams(onsets).items()}
    if not onsets.has_drums:  # ``played`` and ``regular`` are read without drums only
        accents["played"] = _slot_played(onsets.all, slots_s)
        smooth = np.ones(2 * REGULARITY_SMOOTH_SLOTS + 1)  # a box of +-REGULARITY_SMOOTH_SLOTS
        regular = np.convolve(accents["long"], smooth, mode="same")
    chroma = _slot_chroma(onsets, slots_s)
    kick_near = _kick_near(accents["kick"]) if onsets.has_drums else None  # the kick test needs drums
    rows: list[tuple[Ints, Ints, Ints, Floats]] = []
    changes_by_span: dict[int, Floats] = {}
    for beat in BEAT_SLOTS:
        beat_s = pulse_s * beat / SLOTS_PER_PULSE
        for meter_index, (_, per_bar, division, quarters) in enumerate(METERS):
            bpm = 60.0 / beat_s * quarters
            if not (MIN_QUARTER_BPM <= bpm <= MAX_QUARTER_BPM) or beat % division:
                continue
            for span in (beat, beat // division):  # harmonic change between beats, and between divisions
                if span not in changes_by_span:  # (phase within a span, span number) -> change 0-1
                    changes_by_span[span] = _span_changes(chroma, span)
            changes = (changes_by_span[beat], changes_by_span[beat // division])
            features = _features(accents, changes, beat=beat, per_bar=per_bar, division=division)
            features[:, FEATURES.index("tempo_log")] = np.log2(bpm / PREFERRED_QUARTER_BPM)
            features[:, FEATURES.index("tempo_log_sq")] = np.log2(bpm / PREFERRED_QUARTER_BPM) ** 2
            density = np.log2(max(len(onsets.all.times_s), 1) * beat / len(slots_s))
            features[:, FEATURES.index("density_log")] = density
            features[:, FEATURES.index("density_log_sq")] = density**2
            name = METERS[meter_index][0]
            for column in ("3_4", "6_8"):
                features[:, FEATURES.index(f"meter_{column}")] = float(name == column.replace("_", "/"))
            if not onsets.has_drums:
                regularity = _regularity(regular, beat=beat, per_bar=per_bar, division=division)
                features[:, FEATURES.index("regularity_grouping_no_drums")] = regularity[0]
                features[:, FEATURES.index("regularity_bar_no_drums")] = regularity[1]
                for prior in PRIORS:
                    features[:, FEATURES.index(f"{prior}_no_drums")] = features[:, FEATURES.index(prior)]
                    features[:, FEATURES.index(prior)] = 0.0
            phases = np.arange(len(features))
            if kick_near is not None:  # never all go: of phases p and p + beat/2 the kick test rules out at most one
                kept = ~_kick_between_beats(kick_near, beat=beat, bar=len(features), division=division)
                phases, features = phases[kept], features[kept]
            rows.append((np.full(len(phases), beat), np.full(len(phases), meter_index), phases, features))
    if not rows:
        empty = np.empty(0, dtype=np.int64)
        return Hypotheses(empty, empty, empty, np.empty((0, len(FEATURES))), kick_near)
    beat_col, meter_col, phase_col, feature_rows = (np.concatenate(c) for c in zip(*rows))
    return Hypotheses(beat_col, meter_col, phase_col, feature_rows, kick_near)


def kick_phase_path(kick_near: Floats, beat_slots: Ints, *, beat: int, division: int) -> Ints:
    """Return the beat slots, moved half a beat on (``beat // 2`` slots) where the kick says the beats lie there.

    The pulse tracker can slip half a beat where the drums rest (a breakdown, an intro) and stay
    there when they come back; the reading chosen for the whole song then puts the kick between
    the beats of that stretch. Its pulse is an eighth-level one with drums, which cannot itself
    slip half a pulse (``beats``); the beats slip when the tracker locks onto the beat level
    despite its drum prior, or drops or adds a pulse where the drums rest, so that the beats
    counted from it fall on the pulses between the kicks. A two-state Viterbi path over the
    beats (as found, or half a beat on) follows the kick as the whole-song test does
    (``_kick_between_beats``): a beat as found earns KICK_HALF_BEAT_RATIO times the kick weight
    near it (``kick_near``: per slot, within KICK_SLOTS), a beat moved earns the kick weight near its
    half-beat, and each change of state costs KICK_SWITCH_WEIGHT, so only a stretch with about
    two bars of kicks on its half-beats and none on its beats is moved. Beats of three divisions
    (6/8) are returned as they are.
    """
    import numpy as np

    if division != 2 or len(beat_slots) < 2:
        return beat_slots
    near = np.concatenate([kick_near, np.zeros(beat // 2)])  # a moved last beat may fall past the end
    on = (KICK_HALF_BEAT_RATIO * near[beat_slots]).tolist()  # earned per beat as found ...
    off = near[beat_slots + beat // 2].tolist()  # ... and moved half a beat on
    found, moved_on = on[0], off[0] - KICK_SWITCH_WEIGHT  # running totals; the whole-song reading starts free
    from_found, from_moved = bytearray(len(on)), bytearray(len(on))  # back-pointers: 1 = came from "moved"
    for index in range(1, len(on)):  # one step a beat (not a note), two states, plain floats
        switch_in, switch_out = moved_on - KICK_SWITCH_WEIGHT, found - KICK_SWITCH_WEIGHT
        from_found[index] = found < switch_in
        from_moved[index] = moved_on >= switch_out
        found, moved_on = max(found, switch_in) + on[index], max(moved_on, switch_out) + off[index]
    state = np.empty(len(on), dtype=np.int64)
    state[-1] = int(moved_on > found)
    for index in range(len(on) - 1, 0, -1):
        state[index - 1] = (from_moved if state[index] else from_found)[index]
    moved: Ints = np.minimum(beat_slots + state * (beat // 2), len(kick_near) - 1)
    return moved


def _kick_near(kick: Floats) -> Floats:
    """Return the kick weight within KICK_SLOTS of each slot (none beyond the song's ends)."""
    import numpy as np

    padded = np.concatenate([np.zeros(KICK_SLOTS), kick, np.zeros(KICK_SLOTS)])
    out: Floats = np.sum([padded[shift : shift + len(kick)] for shift in range(2 * KICK_SLOTS + 1)], axis=0)
    return out


def _kick_between_beats(kick_near: Floats, *, beat: int, bar: int, division: int) -> Bools:
    """Return, per bar phase (slots), whether the bass drum falls on the half-beats rather than the beats.

    True when the kick weight within KICK_SLOTS of the phase's half-beats (``kick_near``, per slot,
    from ``_kick_near``) is at least KICK_HALF_BEAT_RATIO times that near its beats, and at least
    KICK_MIN_WEIGHT. Only beats of two divisions have a half-beat on a division; compound beats
    (6/8) read all False.
    """
    import numpy as np

    if division != 2:
        return np.zeros(bar, dtype=bool)
    near = np.bincount(np.arange(len(kick_near)) % beat, weights=kick_near, minlength=beat)
    beat_phase = np.arange(bar) % beat
    on, off = near[beat_phase], near[(beat_phase + beat // 2) % beat]
    out: Bools = (off >= KICK_HALF_BEAT_RATIO * on) & (off >= KICK_MIN_WEIGHT)
    return out


def _regularity(regular: Floats, *, beat: int, per_bar: int, division: int) -> tuple[float, float]:
    """Return how much better the length-weighted onsets repeat at this meter's beats and bar than at its rival's.

    Brown (1993)'s autocorrelation of duration-weighted note onsets, read as two contrasts
    between meters on the same beat or bar, so that neither favours a shorter or longer beat
    by itself (the bar contrast compares even numbers of beats, four against six: at twice the
    right tempo an odd one would fall off the music's beats and read as a contrast; the
    grouping contrast compares two divisions against three, so it is gated, below).
    Grouping, 3/4 against 6/8 (4/4 reads 0): a bar of six divisions grouped in three beats or
    two, the correlation at the lag of the meter's beat minus that at the other's; it counts
    only when the bar's sixths repeat better than its quarters, that is when the bar really
    is six divisions (otherwise a duple bar's half would read as a 6/8 beat). Bar, 4/4
    against 3/4 (6/8 reads 0): the correlation four beats later minus six beats later (two
    bars of three), for 4/4, and the reverse for 3/4.
    """
    at = functools.partial(_lag_correlation, regular)
    bar = beat * per_bar
    grouping = 0.0
    if bar % SIX_DIVISIONS == 0 and per_bar * division == SIX_DIVISIONS:  # 3/4 or 6/8
        triple = at(bar // 3) - at(bar // 2)  # the bar in three beats rather than two
        grouping = (triple if per_bar == 3 else -triple) * float(at(bar // SIX_DIVISIONS) > at(bar // 4))
    four = at(4 * beat) - at(6 * beat)  # bars of four beats rather than three (six: two bars of three)
    bars = four if per_bar == 4 else -four if per_bar == 3 else 0.0
    return grouping, bars


def _lag_correlation(values: Floats, lag: int) -> float:
    """Return the correlation of a slot series with itself ``lag`` slots later (0 when too short or flat)."""
    if lag >= len(values) - 2:
        return 0.0
    early, late = values[:-lag], values[lag:]
    spread = float(early.std() * late.std())
    return float(((early - early.mean()) * (late - late.mean())).mean() / spread) if spread > 0 else 0.0


def _accent_streams(onsets: Onsets) -> dict[str, Stream]:
    return {role: onsets.role(role) for role in (*ROLES, "crash")}


def _slot_accents(stream: Stream, slots_s: Floats) -> Floats:
    """Sum each onset's weight into its nearest slot."""
    import numpy as np

    sums = np.bincount(nearest_slot(stream.times_s, slots_s), weights=stream.weights, minlength=len(slots_s))
    out: Floats = sums.astype(np.float64)
    return out


def _slot_played(stream: Stream, slots_s: Floats) -> Floats:
    """Return 1 for each slot with an onset on it or within COVERAGE_SLOTS of it, else 0."""
    import numpy as np

    played = np.zeros(len(slots_s))
    if len(stream.times_s) == 0 or len(slots_s) < 2:
        return played
    at = nearest_slot(stream.times_s, slots_s)
    for shift in range(-COVERAGE_SLOTS, COVERAGE_SLOTS + 1):  # a loop over a few shifts, not onsets
        played[np.clip(at + shift, 0, len(slots_s) - 1)] = 1.0
    return played


def nearest_slot(times_s: Floats, slots_s: Floats) -> Ints:
    """Return the index of the slot nearest each time (a tie goes to the later slot)."""
    import numpy as np

    right = np.clip(np.searchsorted(slots_s, times_s), 1, len(slots_s) - 1)
    left = right - 1
    nearer_left = (times_s - slots_s[left]) < (slots_s[right] - times_s)
    out: Ints = np.where(nearer_left, left, right)
    return out


def _slot_chroma(onsets: Onsets, slots_s: Floats) -> Floats:
    """Return a (slots x 12) pitch-class profile of what sounds from each slot to the next (s of sounding).

    The harmony of a span is the notes sounding in it, as in a beat-synchronous chromagram
    (Papadopoulos & Peeters 2011), not only the notes starting in it: a chord whose notes a
    transcription spreads over up to CHORD_SPREAD_S, or a note entering a little before the
    beat, moves only that much of its weight into the neighbouring span, and a held chord
    reads as no change. Counted on FRAME_S frames, but only at the slots: memory grows with
    the notes and slots, not with the song's length (one stray note hours in is no burden).
    """
    import numpy as np

    chroma = np.zeros((len(slots_s), 12))
    if len(onsets.pitched_start_s) == 0 or len(slots_s) < 2:
        return chroma
    frames = int(slots_s[-1] / FRAME_S) + 2
    start = np.clip(np.rint(onsets.pitched_start_s / FRAME_S).astype(np.int64), 0, frames - 1)
    end = np.clip(np.rint(onsets.pitched_end_s / FRAME_S).astype(np.int64), 0, frames - 1)
    end = np.maximum(end, start + 1)  # a note sounds at least one frame
    at = np.clip(np.rint(slots_s / FRAME_S).astype(np.int64), 0, frames)
    pitch_class = onsets.pitched_pitch % 12
    total = np.zeros((len(slots_s), 12))
    for pc in range(12):  # a loop over pitch classes, not notes
        mine = pitch_class == pc
        total[:, pc] = _frames_sounding_before(start[mine], end[mine], at)
    total *= FRAME_S
    chroma[:-1] = total[1:] - total[:-1]
    return chroma


def _frames_sounding_before(start: Ints, end: Ints, at: Ints) -> Ints:
    """Return, for each frame in ``at``, the frames of sounding summed over notes [start, end) before it.

    A note adds max(k - start, 0) - max(k - end, 0) before frame k (end > start): two sums
    over sorted starts and ends, read off at each k by binary search.
    """
    import numpy as np

    def before(times: Ints) -> Ints:
        ordered = np.sort(times)
        prefix = np.concatenate([[0], np.cumsum(ordered)])
        count = np.searchsorted(ordered, at, side="left")  # times < k
        out: Ints = count * at - prefix[count]
        return out

    return before(start) - before(end)


def _span_changes(chroma: Floats, beat: int) -> Floats:
    """Return harmonic change (1 - cosine to the previous span's held profile) per span phase and span.

    Spans are ``beat`` slots long (a beat division). Shape (beat, spans): row p holds the change
    entering each span when spans start at slot p. A silent span holds the previous profile.
    """
    import numpy as np

    beats = len(chroma) // beat - 1
    if beats < 2:
        return np.zeros((beat, max(beats, 0)))
    step = max(1, beat // CHANGE_PHASES_PER_BEAT)
    running = np.concatenate([np.zeros((1, 12)), np.cumsum(chroma, axis=0)])
    edges = np.arange(0, beat, step)[:, None] + beat * np.arange(beats + 1)[None, :]  # (phase, beat edge) -> slot
    per_beat = running[edges[:, 1:]] - running[edges[:, :-1]]  # (phase, beat, 12)
    sounding = per_beat.sum(axis=2) > TINY
    held_index = np.maximum.accumulate(np.where(sounding, np.arange(beats)[None, :], -1), axis=1)
    held = np.take_along_axis(per_beat, np.maximum(held_index, 0)[:, :, None], axis=1)
    held = np.where((held_index >= 0)[:, :, None], held, 0.0)
    norm = np.linalg.norm(held, axis=2)
    cosine = (held[:, 1:] * held[:, :-1]).sum(axis=2) / np.maximum(norm[:, 1:] * norm[:, :-1], TINY)
    out = np.zeros((len(edges), beats))
    out[:, 1:] = np.where(sounding[:, 1:] & (norm[:, :-1] > 0), 1.0 - cosine, 0.0)
    expanded: Floats = np.repeat(out, step, axis=0)[:beat]  # phases between those computed share their change
    return expanded


@functools.lru_cache(maxsize=64)
def _masks(beat: int, per_bar: int, division: int) -> dict[str, Floats]:
    """Return 0/1 matrices (bar phase x bar slot) of the metrical places of one (beat, meter).

    A pure function of its arguments, cached: the same 35 shapes serve every song.
    """
    import numpy as np

    bar = beat * per_bar
    position = (np.arange(bar)[None, :] - np.arange(bar)[:, None]) % bar
    within = position % beat
    step = beat / division
    on_beat = within == 0
    on_division = (np.isclose(within % step, 0) | np.isclose(within % step, step)) & ~on_beat
    half = step / 2
    on_half = (np.isclose(within % half, 0) | np.isclose(within % half, half)) & ~on_beat & ~on_division
    meter_name = next(name for name, n, d, _ in METERS if n == per_bar and d == division)
    backbeats = np.isin(position, [k * beat for k in BACKBEATS[meter_name]])
    places = {"beat": on_beat, "division": on_division, "subdivision": on_half, "down": position == 0}
    return {name: mask.astype(np.float64) for name, mask in (places | {"back": backbeats}).items()}


def _features(
    accents: dict[str, Floats], changes: tuple[Floats, Floats], *, beat: int, per_bar: int, division: int
) -> Floats:
    """Return the features of every bar phase of one (beat, meter): shape (bar slots, FEATURES)."""
    import numpy as np

    bar = beat * per_bar
    usable = (len(accents["kick"]) // bar) * bar
    masks = _masks(beat, per_bar, division)
    features = np.zeros((bar, len(FEATURES)))
    for role in (*ROLES, "crash"):
        profile = accents[role][:usable].reshape(-1, bar).sum(axis=0)
        total = profile.sum()
        if total <= 0:
            continue
        on_beat = np.maximum(masks["beat"] @ profile, TINY)
        if role == "crash":
            features[:, FEATURES.index("crash_down")] = masks["down"] @ profile / on_beat
            continue
        for level in LEVELS:
            column = f"{role}_{level}_compound" if division == 3 and level in COMPOUND_LEVELS else f"{role}_{level}"
            features[:, FEATURES.index(column)] = masks[level] @ profile / total
        for place in PLACES:
            features[:, FEATURES.index(f"{role}_{place}")] = masks[place] @ profile / on_beat
    if "played" in accents and usable:
        share = _coverage(accents["played"][:usable], masks, bar=bar, per_bar=per_bar)
        features[:, FEATURES.index("coverage_beat_no_drums")] = share
    by_beat, by_division = changes
    down, half, rate = _harmony_bar(by_beat, beat=beat, per_bar=per_bar)
    for name, values in (("harmony_down", down), ("harmony_half", half), ("harmony_rate", rate)):
        features[:, FEATURES.index(name)] = values
    on_beats = _harmony_beat(by_division, span=beat // division, division=division)
    features[:, FEATURES.index("harmony_beat")] = np.tile(on_beats, per_bar)  # the same for every beat of the bar
    return features


def _coverage(played: Floats, masks: dict[str, Floats], *, bar: int, per_bar: int) -> Floats:
    """Return, per bar phase (slots), the share of the beats that are played (``_slot_played``, whole bars)."""
    per_slot = played.reshape(-1, bar).sum(axis=0)
    share: Floats = masks["beat"] @ per_slot / (per_bar * (len(played) // bar))
    return share


def _harmony_bar(changes: Floats, *, beat: int, per_bar: int) -> tuple[Floats, Floats, Floats]:
    """Return, per bar phase (slots), harmonic change on bar lines, at mid-bar, and per beat.

    ``down`` is the mean change entering bar lines minus that entering the other beats;
    ``half`` (4-beat bars only) the change entering beat 3 minus that entering beats 2 and 4:
    beat 3 is the bar's second-strongest beat (Lerdahl & Jackendoff's metrical hierarchy), so
    chords change there more often than on 2 and 4 when the bar is right; ``rate`` the
    mean change per beat, which is low when the hypothesised beat is too short for the
    harmonic rhythm and high when it is too long (Temperley 2001: chords change on beats,
    rarely more than once a beat).
    """
    import numpy as np

    bar = beat * per_bar
    count = changes.shape[1]
    by_residue = _by_residue(changes, span=beat, period=per_bar)
    if by_residue is None:
        return np.zeros(bar), np.zeros(bar), np.zeros(bar)
    sums, counts, row, first = by_residue  # by beat number modulo the bar
    place = (first[:, None] + np.arange(per_bar)[None, :]) % per_bar  # (bar phase, beat of the bar) -> residue
    means = sums[row[:, None], place] / np.maximum(counts[place], 1)  # (bar phase, beat of the bar)
    down: Floats = means[:, 0] - means[:, 1:].mean(axis=1)
    half: Floats = means[:, 2] - (means[:, 1] + means[:, 3]) / 2 if per_bar == 4 else np.zeros(bar)
    rate: Floats = sums[row].sum(axis=1) / count
    return down, half, rate


def _harmony_beat(changes: Floats, *, span: int, division: int) -> Floats:
    """Return, per beat phase (slots), mean harmonic change entering on beats minus between them.

    ``changes`` is measured between consecutive beat divisions (``span`` slots). Chords change
    on beats far more often than between them (harmonic rhythm is rarely faster than the
    beat: Temperley 2001's harmonic preference rule; Papadopoulos & Peeters 2011), so this
    is high when the hypothesised beats are the real ones and low when they fall between
    them, as at half or two-thirds the right tempo, or 3/4 beats in 6/8.
    """
    import numpy as np

    count = changes.shape[1]
    by_residue = _by_residue(changes, span=span, period=division)
    if by_residue is None:
        return np.zeros(span * division)
    sums, counts, row, first = by_residue  # by division number modulo the beat
    on_sum, on_count = sums[row, first], counts[first]
    off = (sums[row].sum(axis=1) - on_sum) / np.maximum(count - on_count, 1)
    out: Floats = on_sum / np.maximum(on_count, 1) - off
    return out


def _by_residue(changes: Floats, *, span: int, period: int) -> tuple[Floats, Floats, Ints, Ints] | None:
    """Return the changes summed by their step's number modulo ``period``, for ``_harmony_bar`` and ``_harmony_beat``.

    ``changes`` (step phase, step): the change entering each step of ``span`` slots. Returns
    the sums (step phase, residue), how many steps each residue has, and for each phase of
    ``span * period`` slots its phase within its step and the residue of that step; None when
    fewer than two periods of steps.
    """
    import numpy as np

    count = changes.shape[1]
    if count < 2 * period:
        return None
    residue = np.arange(count) % period
    sums = np.stack([changes[:, residue == r].sum(axis=1) for r in range(period)], axis=1)
    counts = np.bincount(residue, minlength=period).astype(np.float64)
    phase = np.arange(span * period)
    return sums, counts, phase % span, (phase // span) % period
