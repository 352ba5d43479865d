"""Pulse: how fast the onsets repeat, and where each pulse falls, following drift.

Two steps, both on the onset envelope of ``onsets.envelope`` (10 ms frames):

1. ``pulse_period``: the autocorrelation of the envelope (a tempogram summed over the
   song, as librosa's ``tempo`` does) weighted by a broad log-normal preference around
   120 pulses a minute (Ellis 2007 uses the same kind of prior, ``start_bpm`` 120, one
   octave wide); with drums it is centred on the eighth-note tatum instead
   (``PULSE_PRIOR_DRUMS_S``), so that a tracker following it seldom slips half a beat
   off (it still can where it locks onto the beat level or drops a pulse where the drums
   rest: ``meter.kick_phase_path`` moves such stretches back onto the kick). This is a
   pulse to follow, not yet the tempo: the meter stage decides which multiple or
   fraction of it is the beat.
2. ``track_pulse``: Ellis's dynamic-programming beat tracker (Ellis 2007, "Beat tracking
   by dynamic programming", J. New Music Research 36(1); librosa's ``beat_track``): the
   pulse times maximise onset strength at the pulses minus a penalty on the log ratio
   of each interval to the period, so the pulse bends with the onsets instead of keeping
   a fixed grid. The recursion is vectorised over blocks as long as the shortest allowed
   interval (no frame can depend on a frame of its own block), so a 5-minute song takes
   a few hundred numpy steps, not 30,000 Python ones. Without drums the pulse is tracked
   twice (``follow_drift``): the second pass pays its penalty against the local period the
   first pass found (the median interval over 8 pulses either side), not against the
   song's one period, as librosa's ``beat_track`` accepts a time-varying tempo (its
   ``bpm`` given per frame, from ``tempo`` with ``aggregate=None``) for music whose tempo
   moves. The second pass only refines a pulse the first already roughly follows (it
   cannot recover beats the first lost: see ``follow_drift``). With one period,
   TIGHTNESS charges every interval of a drifting song for its distance from the song's
   mean tempo, so the pulse lags where the tempo has moved away from it and slips a beat
   fraction at the turns. Songs with drums are tracked once: their tatum pulse already
   follows their drift.

``follow_tempo`` is a third tracker, at the beat level, run after the meter stage has chosen
the beats of a song without drums whose tempo moves (``tempo._follow_tempo``): Ellis's
programme with the tempo in its state, each interval charged for its change from the one
before (a bar-pointer model's tempo transition: Whiteley, Cemgil & Godsill 2006; Krebs, Böck
& Widmer 2015), not for its distance from a period read off other pulses. ``follow_drift``'s
local period is a median over 8 pulses either side: a final ritardando (the last 8-15% of a score's beats
slowing to 72-85% of its tempo, as the corpus renders them) is over before that median moves,
and the penalty against it held the pulses early, so the last beats slipped. Its beats replace all the chosen ones when
at least half of those have one of its beats near (``tempo.FOLLOW_AGREEMENT``: the same beat
phase, so the meter stage's choice stands), and none of them otherwise; the slot grid the
meter model reads is not changed, so tempo and meter figures are not either. Dixon's BeatRoot
(2001) follows a moving tempo with agents that each adjust their period to the onsets they
meet; a tempo state in one dynamic programme does the same in one pass.

``subdivide`` then splits the tracked pulse into equal slots (linear interpolation
between pulses), the grid on which the meter stage tests its hypotheses.

In a song with drums, the envelope is made from ``drum_aligned`` onsets: where the drums
rest (intros, breakdowns, outros), each pitched part's onsets are moved earlier by that
part's lag behind the drums, measured where both play. Transcription delays each stem by
its own latency (PRODUCT.md: bass ~18 ms, keyboard ~28 ms late against the drums in a real
export; the corpus draws 10-40 ms), and the drums, which lag least, are the timing
reference of the beats elsewhere (``tempo._timing_reference``); without the correction the
pulse in a stretch without drums sits 10-40 ms late, beyond the 30 ms a beat may be off,
and has to bend at each drum entry and exit, where the tracker slipped off the beat. Where
the drums play, nothing moves: the meter stage reads those onsets as they are.

Studies (what each tracker was measured on, what was tried and left out): docs/tempo-studies.md,
section "The beat trackers' studies".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .meter import nearest_slot
from .onsets import DRUM_ROLES, FRAME_S, Onsets, Stream, envelope, part_medians, sorted_stream

if TYPE_CHECKING:
    from .onsets import Floats

PULSE_MIN_S, PULSE_MAX_S = 0.2, 0.75  # pulses followed: 80-300 a minute; the meter stage scales by 1/2..4
PULSE_PRIOR_S = 0.4  # centre of the pulse preference: 150 a minute, an eighth or a beat, rarely a half bar
# With drums the pulse followed is preferably the eighth-note tatum the hats and percussion
# keep (Klapuri et al. 2006 track tatum, tactus and measure; a drum part's tatum is its most
# regular level): a tracker on the beat level can slip half a beat onto strong off-beats
# (afrobeats' off-beat guitar and congas) without paying for it, one on the tatum cannot
# slip a whole pulse. The meter stage then takes two or four pulses as the beat.
PULSE_PRIOR_DRUMS_S = 0.3
PULSE_PRIOR_OCTAVES = 1.0  # its width (std of log2 period), as in librosa's tempo prior
COMB_HARMONICS = 4  # a pulse's salience sums the autocorrelation at 1-4 periods (Klapuri 2006's comb
# resonators): an isochronous level repeats at every multiple, a 3+3+2 figure's 3/4-beat spacing does not
TIGHTNESS = 100.0  # Ellis 2007 / librosa: weight of the log-interval penalty against onset strength
DP_POOL = 2  # the tracker runs on 20 ms frames (max of two), then each pulse takes the stronger 10 ms frame
INTERVAL_RANGE = (0.8, 1.25)  # allowed pulse-to-pulse interval as a share of the period (see follow_drift)
DRIFT_SPAN_PULSES = 8  # follow_drift: the local period is the median interval over 8 pulses either side
DRIFT_LIMIT = 0.15  # and stays within 15% of the song's period (with INTERVAL_RANGE: 0.68-1.44 of it)
# follow_tempo: beat intervals within 0.6-1.6 of the song's beat (a final ritardando ends at 0.7-0.85 of the
# tempo: 1.2-1.4 times the beat; 0.6 and 1.6 lie about as far below and above 1 on a log scale, so a tempo
# may rise as far as it may fall, to 1/0.6 = 1.67 or 1/1.6 = 0.63 of the song's), TIGHTNESS on the log ratio
# of each interval to the one before it (Ellis's penalty, moved from the song's period to the previous beat's:
# tempo changes gradually), and a tenth of it on the log ratio to the song's beat, so the tempo still returns
# where the onsets say nothing.
TEMPO_RANGE = (0.6, 1.6)
TEMPO_PULL = 0.1
# and each interval within 15% of the one before: a bound of the search more than of the model (the
# transitions form a band, half the cost; no bound and one of 1.1 gave the same figures), wide enough
# for any gradual change (a ritardando slows by a few % a beat; a jump of 15% is a new section)
TEMPO_STEP = 1.15
# and it runs on frames pooled so that the song's beat spans at most 50 of them (DP_POOL's 20 ms up to a
# 1 s beat, then coarser): an interval is still resolved to 2% of the beat, 7 steps within TEMPO_STEP, and
# each beat then takes the strongest 10 ms frame of its pooled frame (``_finest``) before tempo._refine
# moves it onto the onsets. Without it the cost grew with the square of the beat (see follow_tempo).
TEMPO_BEAT_FRAMES = 50
# drum_aligned: a pitched onset within LAG_WINDOW_S of a drum hit plays with the drums (the latencies
# are 10-40 ms); the median of those distances is the part's lag, measured on at least MIN_LAG_ONSETS
# onsets (tempo.MIN_PART_ONSETS reads this one: a part's timing counts from as many). An onset with
# no drum hit within DRUMLESS_GAP_S (half a beat at 120, more than a 16th's spacing at any tempo
# followed) lies in a stretch without drums and is moved.
LAG_WINDOW_S = 0.05
MIN_LAG_ONSETS = 32
DRUMLESS_GAP_S = 0.25


def pulse_period(env: Floats, *, prior_s: float = PULSE_PRIOR_S) -> float:
    """Return the most salient pulse period (s) in PULSE_MIN_S..PULSE_MAX_S of an envelope, preferring ``prior_s``."""
    import numpy as np

    acf = autocorrelation(env)
    lags = np.arange(int(PULSE_MIN_S / FRAME_S), min(int(PULSE_MAX_S / FRAME_S) + 1, len(acf) - 1))
    if len(lags) == 0:
        return prior_s
    prior = np.exp(-0.5 * (np.log2(lags * FRAME_S / prior_s) / PULSE_PRIOR_OCTAVES) ** 2)
    positive = np.maximum(acf, 0)
    multiples = np.arange(1, COMB_HARMONICS + 1)[:, None] * lags[None, :]
    comb = np.where(multiples < len(acf), positive[np.minimum(multiples, len(acf) - 1)], 0.0).mean(axis=0)
    salience = comb * prior
    best = int(np.argmax(salience))
    return float(lags[0] + _parabolic_peak(salience, best)) * FRAME_S


def autocorrelation(env: Floats) -> Floats:
    """Return the envelope's autocorrelation by lag (frames), 1 at lag 0, unbiased for the overlap."""
    import numpy as np

    centred = env - env.mean()
    size = 1 << int(np.ceil(np.log2(2 * len(env))))
    spectrum = np.fft.rfft(centred, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: len(env)]
    acf = acf / (len(env) - np.arange(len(env)))
    out: Floats = acf / acf[0] if acf[0] > 0 else acf
    return out


def track_pulse(env: Floats, period_s: float | Floats) -> Floats:
    """Return pulse times (s) that follow the onsets at about ``period_s`` (Ellis 2007 DP).

    ``period_s`` is the song's one period, or one period per envelope frame (a local
    period, from ``follow_drift``), as librosa's ``beat_track`` takes a time-varying tempo.
    Each pulse's score is its onset strength plus the best earlier score minus
    TIGHTNESS * log(interval / period)^2, the period being the one at the pulse; the path is
    read back from the best final pulse. Intervals are allowed within INTERVAL_RANGE of the
    period, of the shortest and longest local period with a local one. Raises ValueError
    when a local period does not have one value per envelope frame.
    """
    import numpy as np

    coarse = _pool(env, DP_POOL)
    if isinstance(period_s, np.ndarray):
        if period_s.shape != env.shape:
            raise ValueError(f"period_s must be one float or one per envelope frame ({len(env)}), got {period_s.shape}")
        local = period_s[: len(coarse) * DP_POOL : DP_POOL] / (FRAME_S * DP_POOL)
        shortest, longest = float(local.min()), float(local.max())
    else:
        local = None
        shortest = longest = period_s / (FRAME_S * DP_POOL)
    shortest_share, longest_share = INTERVAL_RANGE
    low, high = max(1, int(shortest_share * shortest)), int(np.ceil(longest_share * longest))
    intervals = np.arange(low, high + 1)
    if local is None:  # one row for one period; with a local period, a row per frame below
        penalty = -TIGHTNESS * np.log(intervals / shortest) ** 2
    score = coarse.copy()
    back = np.full(len(coarse), -1, dtype=np.int64)
    rows = np.arange(low)
    offsets = rows[:, None] - intervals[None, :]  # a block's predecessors, from its first frame
    for start in range(low, len(coarse), low):
        frames = np.arange(start, min(start + low, len(coarse)))
        previous = start + offsets[: len(frames)]
        if local is not None:  # a row per frame, against the period there
            penalty = -TIGHTNESS * np.log(intervals[None, :] / local[frames, None]) ** 2
        if start >= high:  # every predecessor lies in the song
            candidates = score[previous] + penalty
        else:
            candidates = np.where(previous >= 0, score[np.maximum(previous, 0)] + penalty, -np.inf)
        pick = np.argmax(candidates, axis=1)
        gain = candidates[rows[: len(frames)], pick]
        link = gain > 0  # a pulse with no worthwhile predecessor starts a path
        score[frames] += np.where(link, gain, 0.0)
        back[frames] = np.where(link, frames - intervals[pick], -1)
    tail = np.arange(max(0, len(coarse) - high), len(coarse))
    frame = int(tail[np.argmax(score[tail])])
    path = [frame]
    while back[frame] >= 0:  # one step per pulse, a few hundred for a song
        frame = int(back[frame])
        path.append(frame)
    return _finest(env, path[::-1], DP_POOL)


def _finest(env: Floats, pooled: list[int], size: int) -> Floats:
    """Return the times (s) of pooled frames, each on the strongest 10 ms frame of its ``size`` frames."""
    import numpy as np

    fine = np.array(pooled, dtype=np.int64) * size
    choices = np.clip(fine[:, None] + np.arange(size)[None, :], 0, len(env) - 1)
    best = np.take_along_axis(choices, np.argmax(env[choices], axis=1)[:, None], axis=1)[:, 0]
    out: Floats = best.astype(np.float64) * FRAME_S
    return out


def follow_drift(env: Floats, period_s: float) -> Floats:
    """Return pulse times (s) tracked twice: at one period, then at the local period the first pass found.

    The local period at each pulse is the median interval over DRIFT_SPAN_PULSES pulses either
    side of it (jitter averages out, drift stays), kept within DRIFT_LIMIT of the song's
    period and interpolated to every frame; the second pass (``track_pulse`` given that
    per-frame period) then pays its interval penalty against the tempo of that stretch of
    the song, not against the song's one tempo. A song too short for the window keeps the
    first pass.

    It follows slow drift the first pass already roughly follows, pulling pulses that lag
    or slip at the turns back onto the onsets; it cannot find beats the first pass lost,
    as its local period is read from those pulses (a ritardando is ``follow_tempo``'s job).

    The two limits combine: the local period stays within DRIFT_LIMIT (15%) of the song's,
    and ``track_pulse`` then allows intervals within INTERVAL_RANGE of the shortest and the
    longest local period of the song, so at most 0.68-1.44 of the song's period anywhere;
    where the tempo has not moved, that is wider than INTERVAL_RANGE of the local period,
    and the penalty against the local period is what keeps intervals near it.
    """
    import numpy as np

    pulses = track_pulse(env, period_s)
    if len(pulses) < 2 * DRIFT_SPAN_PULSES + 2:
        return pulses
    gaps = np.diff(pulses)
    span = DRIFT_SPAN_PULSES
    inner = np.median(np.lib.stride_tricks.sliding_window_view(gaps, 2 * span + 1), axis=1)
    head = [np.median(gaps[: i + span + 1]) for i in range(span)]  # the window cut by the song's ends
    tail = [np.median(gaps[i - span :]) for i in range(len(gaps) - span, len(gaps))]
    local = np.concatenate([head, inner, tail])
    local = np.clip(local, period_s * (1 - DRIFT_LIMIT), period_s * (1 + DRIFT_LIMIT))
    frames_s = np.arange(len(env)) * FRAME_S
    return track_pulse(env, np.interp(frames_s, (pulses[1:] + pulses[:-1]) / 2, local))


def follow_tempo(env: Floats, beat_s: float) -> Floats:
    """Return beat times (s) that follow the onsets with a tempo that changes gradually.

    Ellis's dynamic programme with the tempo in its state, as a bar-pointer model carries it
    (Whiteley, Cemgil & Godsill 2006; Krebs, Böck & Widmer 2015, whose state space holds one
    beat interval per tempo and lets it change only at a beat, with probability
    exp(-lambda |ratio - 1|); madmom's and compIAM's DBN implement it): a beat's score is its onset
    strength plus the best score of a beat one interval earlier, over the interval that beat
    was reached by, minus TIGHTNESS times the squared log ratio of the two intervals, and minus
    TEMPO_PULL of that against ``beat_s``, the song's beat. Intervals lie within TEMPO_RANGE
    of ``beat_s``, and each within TEMPO_STEP of the one before (the transitions form a band,
    which halves the cost). So a ritardando's intervals can grow beat by beat to 1.4 times the song's
    beat, where ``follow_drift``'s local period, a median over 8 pulses either side, lags the
    slowing at the song's end and its penalty keeps the pulses early (on a ritardando from
    136 to 103 a minute over 101 beats, ``follow_drift`` misses 25 beats, this tracker none).
    The recursion runs in blocks as long as the shortest interval, as ``track_pulse``'s does:
    a block's predecessors all lie before it. On DP_POOL's frames its cost grew with the
    square of the beat (more intervals, each with a wider band of predecessors); pooled so
    that a beat spans at most TEMPO_BEAT_FRAMES frames, the cost stops growing past a 1 s beat.

    Not fitted: TIGHTNESS is Ellis's, the pull a tenth of it. Studies (cost and settings
    measured): docs/tempo-studies.md, "The beat trackers' studies".
    """
    import numpy as np

    pool = max(DP_POOL, int(np.ceil(beat_s / (FRAME_S * TEMPO_BEAT_FRAMES))))
    coarse = _pool(env, pool)
    beat = beat_s / (FRAME_S * pool)
    shortest_share, longest_share = TEMPO_RANGE
    intervals = np.arange(max(1, int(shortest_share * beat)), int(np.ceil(longest_share * beat)) + 1)
    low, count = int(intervals[0]), len(intervals)
    # the previous beat's interval, within TEMPO_STEP of this one: a band of indices around it
    reach = int(np.ceil(intervals[-1] * (1 - 1 / TEMPO_STEP)))
    before = np.clip(np.arange(count)[:, None] + np.arange(-reach, reach + 1)[None, :], 0, count - 1)
    ratio = np.log(intervals[:, None] / intervals[before])
    change = np.where(np.abs(ratio) <= np.log(TEMPO_STEP), -TIGHTNESS * ratio**2, -np.inf)  # (interval, band)
    pull = -TIGHTNESS * TEMPO_PULL * np.log(intervals / beat) ** 2
    score = np.full((len(coarse), count), -np.inf)
    back = np.full((len(coarse), count), -1, dtype=np.int16)  # the previous beat's interval (index), -1: none
    columns = np.arange(count)[None, :]
    for start in range(0, len(coarse), low):
        frames = np.arange(start, min(start + low, len(coarse)))
        previous = frames[:, None] - intervals[None, :]  # (frame, interval): the beat before
        candidates = score[np.maximum(previous, 0)[:, :, None], before[None, :, :]] + change[None, :, :]
        if start < intervals[-1]:  # a beat before the song's start is none
            candidates[previous < 0] = -np.inf
        pick = np.argmax(candidates, axis=2)
        gain = np.take_along_axis(candidates, pick[:, :, None], axis=2)[:, :, 0]
        link = gain > 0  # a beat with no worthwhile predecessor starts a path
        score[frames] = coarse[frames, None] + pull[None, :] + np.where(link, gain, 0.0)
        back[frames] = np.where(link, before[columns, pick], -1)
    tail = np.arange(max(0, len(coarse) - int(intervals[-1])), len(coarse))
    row, column = np.unravel_index(int(np.argmax(score[tail])), (len(tail), count))
    frame, interval = int(tail[row]), int(column)
    path = [frame]
    while back[frame, interval] >= 0:  # one step per beat
        frame, interval = frame - int(intervals[interval]), int(back[frame, interval])
        path.append(frame)
    return _finest(env, path[::-1], pool)


def slot_grid(found: Onsets, slots_per_pulse: int) -> Floats:
    """Return the slot grid (s) the meter stage tests: the tracked pulse of a record's onsets, subdivided."""

    env = envelope(drum_aligned(found), last_s=found.last_s) if found.has_drums else found.all_envelope
    prior_s, track = (PULSE_PRIOR_DRUMS_S, track_pulse) if found.has_drums else (PULSE_PRIOR_S, follow_drift)
    return subdivide(track(env, pulse_period(env, prior_s=prior_s)), slots_per_pulse)


def drum_aligned(found: Onsets) -> Stream:
    """Return all onsets, each pitched part's moved earlier by its lag behind the drums where the drums rest.

    A part's lag is the median distance (s) from its onsets to the nearest drum hit, over the
    onsets within LAG_WINDOW_S of one (at least MIN_LAG_ONSETS of them, else the part is not
    moved); only a lag (a positive one) is corrected, as transcription only ever delays a stem.
    Only onsets with no drum hit within DRUMLESS_GAP_S move. No step per part: each onset's lag
    is looked up by its part.
    """
    import numpy as np

    every = found.all
    drum_parts = np.unique(np.concatenate([found.role(name).part for name in DRUM_ROLES]))
    is_drum = np.isin(every.part, drum_parts)
    drum_s = every.times_s[is_drum]
    if len(drum_s) < 2:
        return every
    distance = every.times_s - drum_s[nearest_slot(every.times_s, drum_s)]  # signed, from the nearest drum hit
    close = np.abs(distance) <= LAG_WINDOW_S
    drumless = np.abs(distance) > DRUMLESS_GAP_S
    lags = part_medians(every.part, distance, close & ~is_drum, MIN_LAG_ONSETS)
    lag = np.zeros(int(every.part.max()) + 1)  # per part, 0 for the parts not moved
    lag[list(lags)] = np.fmax(list(lags.values()), 0.0)  # a NaN lag moves nothing
    times = every.times_s.copy()
    times[drumless] -= lag[every.part[drumless]]
    return sorted_stream(np.maximum(times, 0.0), every.weights, every.part)


def _pool(env: Floats, size: int) -> Floats:
    """Return the envelope max-pooled over ``size`` frames (the last partial group dropped)."""
    usable = len(env) // size * size
    pooled: Floats = env[:usable].reshape(-1, size).max(axis=1)
    return pooled


def subdivide(pulses_s: Floats, slots: int) -> Floats:
    """Return ``slots`` equal slots per pulse interval (s), one pulse extrapolated at each end."""
    import numpy as np

    if len(pulses_s) < 2:
        return pulses_s.copy()
    first, last = pulses_s[1] - pulses_s[0], pulses_s[-1] - pulses_s[-2]
    padded = np.concatenate([[pulses_s[0] - first], pulses_s, [pulses_s[-1] + last]])
    index = np.arange((len(padded) - 1) * slots + 1) / slots
    grid: Floats = np.interp(index, np.arange(len(padded)), padded)
    return grid


def _parabolic_peak(values: Floats, index: int) -> float:
    """Return the sub-sample position of a peak by a parabola through its neighbours."""
    if index <= 0 or index >= len(values) - 1:
        return float(index)
    left, mid, right = values[index - 1], values[index], values[index + 1]
    bend = left - 2 * mid + right
    if bend >= 0:
        return float(index)
    return index + min(0.5, max(-0.5, 0.5 * float(left - right) / float(bend)))
