"""Tempo stage: estimate a song's tempo, beat grid and first downbeat from its notes.

Sits between normalize and convert: ``estimate_tempo(record)`` reads a Record's
note columns (seconds) and hands on a TempoEstimate, which ``convert`` uses for
``--bpm auto``.

Method. The notes are exact onset times, not audio, so no onset detector is needed;
what is needed is the metrical level and the phase. Following the usual split of a
beat tracker into periodicity, beat phase and bar phase:

1. Onsets are grouped into streams by role, because roles carry the meter
   differently (drums and bass carry the beat best): kick, snare, hats and cymbals,
   crashes, bass, harmony (polyphonic parts), melody. Notes starting within 30 ms
   are one onset.
2. Periodicity is measured with the mean resultant length of onset phases,
   R(P) = |sum w exp(2 pi i t / P)| / sum w, a comb filter evaluated on exact times:
   1 when every onset falls on a multiple of P, near 0 when they are spread over it
   (the Rayleigh statistic of circular statistics; comb-filter tempo induction as in
   Scheirer 1998 and Klapuri et al. 2006, evaluated on symbolic onsets).
3. The metrical level is taken from the bar: harmony changes on bar lines. Chord
   onsets (two notes or more) that bring at least two pitch classes the previous
   chord lacked are harmonic-change events (a melody note brings one at most). The
   bar B is the longest period in the allowed range at which they stay coherent,
   and at half of which they do too: R(B/k) >= R(B) for every divisor, so the
   longest coherent period is the bar, not a fraction of it, while a period such as
   4/3 bar can be fairly coherent but never its half. The beat is B/4 (4/4).
   Without harmony, kick and snare patterns and a log-normal tempo preference around
   110 BPM choose among the levels the onsets support.
4. The period is refined where all onsets agree (R at the beat and its 2-, 3- and
   4-fold subdivisions). The beat phase comes from metrical accents: the tatum grid
   (sixteenths or triplets) fixes the phase up to a tatum, and the beat is the tatum
   position where backbeat snares, harmonic changes and kicks fall. Least squares
   of on-beat onsets against their beat numbers then polish period and phase; with
   hundreds of onsets this averages human timing jitter well below a millisecond.
5. The bar phase is the phase of harmonic changes, crashes and kicks at the bar
   period, snapped to the nearest beat (Papadopoulos & Peeters 2011 use chord
   changes for downbeats likewise). The first downbeat is the first bar line at or
   after the first note: what comes before it is a pickup.

A tempo found in the music task's tags ("128 bpm") is used as a prior: it replaces
step 3 when the onsets agree with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import gm
from ..model import Record

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

MIN_BPM, MAX_BPM = 50.0, 200.0
PREFERRED_BPM = 110.0  # centre of the tempo preference used when harmony cannot decide
GROUP_S = 0.030  # onsets closer than this are one onset (a chord, a drum flam)
KICKS = frozenset({35, 36})
SNARES = frozenset({37, 38, 39, 40})
CRASHES = frozenset({49, 52, 55, 57})
_TEMPO_TAG = re.compile(r"(\d{2,3}(?:\.\d+)?)\s*bpm\b", re.IGNORECASE)


@dataclass(frozen=True)
class TempoEstimate:
    """A song's tempo in BPM, its beat grid (seconds) and first downbeat.

    Beats fall at ``first_beat_s + n * 60 / bpm``; bars of 4 beats start at
    ``first_downbeat_s + n * 240 / bpm``. ``confidence`` is 0-1 (how strongly the
    onsets agree with the grid). ``source`` says how the level was chosen:
    "harmony", "hint", "onsets" or "none" (too few notes).
    """

    bpm: float
    first_beat_s: float
    first_downbeat_s: float
    confidence: float
    source: str

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm


@dataclass(frozen=True)
class _Streams:
    """Onset times (s) and weights per role."""

    kick: tuple[Floats, Floats]
    snare: tuple[Floats, Floats]
    crash: tuple[Floats, Floats]
    carriers: tuple[Floats, Floats]  # every role, weighted by how well it carries the beat
    changes: tuple[Floats, Floats]  # harmonic changes


def tempo_from_tags(tags: str | None) -> float | None:
    """Return the tempo a tag string names ("synthwave, 128 bpm" -> 128.0), if plausible."""
    match = _TEMPO_TAG.search(tags or "")
    if match and MIN_BPM / 2 <= float(match.group(1)) <= MAX_BPM * 2:
        return float(match.group(1))
    return None


def estimate_tempo(record: Record, *, hint_bpm: float | None = None) -> TempoEstimate:
    """Estimate the tempo (BPM, 50-200), beat grid and first downbeat of a record.

    ``hint_bpm`` (default: a tempo in the record's tags) is a prior, used when the
    onsets agree with it. Times are seconds from the song's start. Never raises for
    content: a record with too few notes gets 120 BPM and confidence 0.
    """
    import numpy as np

    hint_bpm = hint_bpm if hint_bpm is not None else tempo_from_tags(record.tags)
    streams = _streams(record)
    times, weights = streams.carriers
    if len(times) < 8 or float(times.max() - times.min()) < 2.0:
        return TempoEstimate(120.0, 0.0, 0.0, 0.0, "none")
    beat_s, source = _choose_level(streams, hint_bpm)
    beat_s = _refine_period(times, weights, beat_s)
    first_beat_s, beat_s = _fit_grid(times, weights, beat_s, streams)
    downbeat_s = _first_downbeat(streams, first_beat_s, beat_s, first_onset_s=float(times.min()))
    confidence = float(
        np.clip(
            _resultant(times, weights, beat_s / 2) * 0.6 + _resultant(*streams.changes, 4 * beat_s) * 0.4
            if len(streams.changes[0])
            else _resultant(times, weights, beat_s / 2),
            0,
            1,
        )
    )
    return TempoEstimate(round(60.0 / beat_s, 3), first_beat_s, downbeat_s, round(confidence, 3), source)


def _streams(record: Record) -> _Streams:
    """Group onsets by role; weights are velocity times how well the role carries the beat."""
    import numpy as np

    parts: dict[str, list[tuple[Floats, Floats, npt.NDArray[np.int64]]]] = {}
    for instrument in record.instruments:
        if instrument.note_count == 0:
            continue
        found = gm.resolve_instrument(instrument.name)
        columns = (instrument.start_s, instrument.velocity, instrument.pitch)
        if found.is_drum:
            for role, pitches in (("kick", KICKS), ("snare", SNARES), ("crash", CRASHES)):
                mask = np.isin(instrument.pitch, list(pitches))
                parts.setdefault(role, []).append(tuple(c[mask] for c in columns))  # type: ignore[arg-type]
            other = ~np.isin(instrument.pitch, list(KICKS | SNARES | CRASHES))
            parts.setdefault("hats", []).append(tuple(c[other] for c in columns))  # type: ignore[arg-type]
        elif 32 <= found.program <= 39:
            parts.setdefault("bass", []).append(columns)
        elif _polyphonic(instrument.start_s):
            parts.setdefault("harmony", []).append(columns)
        else:
            parts.setdefault("melody", []).append(columns)
    onsets = {role: _onsets(*_join(items)) for role, items in parts.items()}
    carrier_weights = {
        "kick": 1.0,
        "snare": 1.0,
        "crash": 0.5,
        "hats": 0.35,
        "bass": 0.8,
        "harmony": 0.6,
        "melody": 0.3,
    }
    carriers = [(t, w * carrier_weights[role]) for role, (t, w) in onsets.items()]
    empty = (np.empty(0), np.empty(0))
    return _Streams(
        kick=onsets.get("kick", empty),
        snare=onsets.get("snare", empty),
        crash=onsets.get("crash", empty),
        carriers=(
            np.concatenate([c[0] for c in carriers] or [np.empty(0)]),
            np.concatenate([c[1] for c in carriers] or [np.empty(0)]),
        ),  # fmt: skip
        changes=_harmonic_changes(parts.get("harmony") or parts.get("bass") or []),
    )


def _join(items: list[tuple[Floats, Floats, npt.NDArray[np.int64]]]) -> tuple[Floats, Floats]:
    import numpy as np

    return np.concatenate([i[0] for i in items]), np.concatenate([i[1] for i in items])


def _polyphonic(start_s: Floats) -> bool:
    import numpy as np

    ordered = np.sort(start_s)
    together = np.diff(ordered) < GROUP_S
    return len(ordered) > 8 and float(together.mean()) > 0.3


def _onsets(start_s: Floats, velocity: Floats) -> tuple[Floats, Floats]:
    """Merge notes starting within GROUP_S into one onset: (time of the first, summed velocity capped at 2)."""
    import numpy as np

    if len(start_s) == 0:
        return np.empty(0), np.empty(0)
    order = np.argsort(start_s, kind="stable")
    times, levels = start_s[order], np.clip(velocity[order], 0.05, 1.0)
    first = np.concatenate([[True], np.diff(times) >= GROUP_S])
    group = np.cumsum(first) - 1
    return times[first], np.minimum(np.bincount(group, weights=levels), 2.0)


def _harmonic_changes(items: list[tuple[Floats, Floats, npt.NDArray[np.int64]]]) -> tuple[Floats, Floats]:
    """Return chord onsets (s) that bring at least two pitch classes the previous chord lacked.

    Only onsets of two notes or more count as chords; a melody note on top of the
    accompaniment brings one new pitch class at most, a new chord usually two or more.
    Weights: the number of new pitch classes.
    """
    import numpy as np

    if not items:
        return np.empty(0), np.empty(0)
    start = np.concatenate([i[0] for i in items])
    pitch = np.concatenate([i[2] for i in items])
    order = np.argsort(start, kind="stable")
    start, pitch = start[order], pitch[order]
    first = np.concatenate([[True], np.diff(start) >= GROUP_S])
    group = np.cumsum(first) - 1
    size = np.bincount(group)
    masks = np.zeros(len(size), dtype=np.int64)
    np.bitwise_or.at(masks, group, 1 << (pitch % 12))
    chord_start, masks = start[first][size >= 2], masks[size >= 2]
    if len(masks) < 2:
        return np.empty(0), np.empty(0)
    new = masks[1:] & ~masks[:-1]
    counts = np.array([bin(int(m)).count("1") for m in new], dtype=np.float64)
    changed = counts >= 2
    return chord_start[1:][changed], counts[changed]


def _resultant(times: Floats, weights: Floats, period_s: float) -> float:
    """Mean resultant length of onset phases at a period: 1 = all on the grid, ~0 = none."""
    import numpy as np

    if len(times) == 0 or weights.sum() <= 0:
        return 0.0
    phase = np.exp(2j * np.pi * times / period_s)
    return float(abs((weights * phase).sum()) / weights.sum())


def _resultants(times: Floats, weights: Floats, periods_s: Floats) -> Floats:
    """Mean resultant length at many periods at once (periods x onsets, in blocks)."""
    import numpy as np

    out = np.empty(len(periods_s))
    total = weights.sum()
    for begin in range(0, len(periods_s), 64):
        chunk = periods_s[begin : begin + 64]
        phase = np.exp(2j * np.pi * np.outer(1.0 / chunk, times))
        out[begin : begin + 64] = np.abs(phase @ weights) / total
    return out


def _choose_level(streams: _Streams, hint_bpm: float | None) -> tuple[float, str]:
    """Return a first beat period (s) at the right metrical level, and how it was chosen."""
    import numpy as np

    times, weights = streams.carriers
    if hint_bpm is not None:
        for factor in (1.0, 2.0, 0.5):  # tags may name the half or double tempo
            bpm = hint_bpm * factor
            if MIN_BPM <= bpm <= MAX_BPM:
                beat = 60.0 / bpm
                if _resultant(times, weights, beat / 2) >= 0.5 * _best_beat_resultant(times, weights):
                    return beat, "hint"
    change_times, change_weights = streams.changes
    if len(change_times) >= 8:
        bars = np.geomspace(240 / MAX_BPM, 240 / MIN_BPM, 900)
        coherence = _resultants(change_times, change_weights, bars)
        halves = _resultants(change_times, change_weights, bars / 2)
        # A bar is coherent, and so is its half (changes on bar lines fall on half-bar
        # lines too); a period such as 4/3 bar can be fairly coherent, never its half.
        best = coherence.max()
        strong = np.flatnonzero((coherence >= 0.85 * best) & (halves >= 0.85 * best))
        if best >= 0.5 and len(strong):
            return float(bars[strong[-1]]) / 4, "harmony"
    return _level_from_onsets(streams), "onsets"


def _best_beat_resultant(times: Floats, weights: Floats) -> float:
    import numpy as np

    halves = np.geomspace(30 / MAX_BPM, 30 / MIN_BPM, 400)
    return float(_resultants(times, weights, halves).max())


def _level_from_onsets(streams: _Streams) -> float:
    """Without harmony: the level the onsets support best, weighted by a tempo preference."""
    import numpy as np

    times, weights = streams.carriers
    beats = np.geomspace(60 / MAX_BPM, 60 / MIN_BPM, 600)
    support = _resultants(times, weights, beats / 2) + 0.5 * _resultants(times, weights, beats)
    kick_snare = (
        np.concatenate([streams.kick[0], streams.snare[0]]),
        np.concatenate([streams.kick[1], streams.snare[1]]),
    )
    if len(kick_snare[0]) >= 8:
        support += _resultants(*kick_snare, beats)
    preference = np.exp(-0.5 * (np.log2((60 / beats) / PREFERRED_BPM) / 0.6) ** 2)
    return float(beats[np.argmax(support * preference)])


def _refine_period(times: Floats, weights: Floats, beat_s: float) -> float:
    """Search ±3% around a beat period for where onsets agree best (beat and subdivisions)."""
    import numpy as np

    def score(candidates: Floats) -> Floats:
        total = np.zeros(len(candidates))
        for n, k in ((1, 1.0), (2, 0.8), (3, 0.4), (4, 0.5)):
            total += k * _resultants(times, weights, candidates / n)
        return total

    coarse = beat_s * np.linspace(0.97, 1.03, 61)
    best = float(coarse[np.argmax(score(coarse))])
    fine = best * np.linspace(0.9985, 1.0015, 31)
    return float(fine[np.argmax(score(fine))])


def _fit_grid(times: Floats, weights: Floats, beat_s: float, streams: _Streams) -> tuple[float, float]:
    """Return (first beat time, beat period) fitted to the on-beat onsets by least squares.

    The phase comes from metrical accents: the tatum grid (sixteenths or triplets,
    whichever the onsets follow better) gives the phase up to a tatum; the beat is
    the tatum position that backbeat snares, harmonic changes and kicks fall on.
    """
    import numpy as np

    per_beat = 4 if _resultant(times, weights, beat_s / 4) >= _resultant(times, weights, beat_s / 3) else 3
    tatum_s = beat_s / per_beat
    tatum_phase = float(np.angle((weights * np.exp(2j * np.pi * times / tatum_s)).sum())) / (2 * np.pi) * tatum_s
    accents = (np.concatenate([streams.snare[0], streams.changes[0], streams.kick[0], streams.crash[0], times]),
               np.concatenate([streams.snare[1] * 2, streams.changes[1], streams.kick[1], streams.crash[1],
                               weights * 0.2]))  # fmt: skip
    position = np.round((accents[0] - tatum_phase) / tatum_s).astype(np.int64) % per_beat
    offset = tatum_phase + int(np.argmax(np.bincount(position, weights=accents[1], minlength=per_beat))) * tatum_s
    for _ in range(3):
        index = np.round((times - offset) / beat_s)
        on_beat = np.abs(times - (offset + index * beat_s)) < beat_s / 8
        if on_beat.sum() < 4:
            break
        slope, intercept = np.polyfit(index[on_beat], times[on_beat], 1, w=np.sqrt(weights[on_beat]))
        beat_s, offset = float(slope), float(intercept)
    return float(offset % beat_s), beat_s


def _first_downbeat(streams: _Streams, first_beat_s: float, beat_s: float, *, first_onset_s: float) -> float:
    """Return the first bar line at or after the first onset: the bar phase snapped to a beat.

    Notes before it (a pickup) are shorter than a bar, so this is where bar 1 starts.
    """
    import numpy as np

    bar_s = 4 * beat_s
    change_t, change_w = streams.changes
    kick_t, kick_w = streams.kick
    crash_t, crash_w = streams.crash
    times = np.concatenate([change_t, crash_t, kick_t])
    weights = np.concatenate([change_w * 2.0, crash_w * 2.0, kick_w * 0.5])
    if len(times) == 0:
        return first_beat_s
    phase = float(np.angle((weights * np.exp(2j * np.pi * times / bar_s)).sum()))
    bar_offset = (phase / (2 * np.pi)) * bar_s
    beat_index = round((bar_offset - first_beat_s) / beat_s)
    downbeat = first_beat_s + beat_index * beat_s
    bars_after = np.ceil((first_onset_s - GROUP_S - downbeat) / bar_s)
    return max(0.0, float(downbeat + bars_after * bar_s))  # a hair before 0 s: the music starts on it
