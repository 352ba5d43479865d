"""Key: estimate a song's key from its notes, and the key signature to write for it.

Each of the 24 major and minor keys gets a score from three cues, and the best wins:

1. **Key profile.** The correlation of Krumhansl and Schmuckler (Krumhansl, *Cognitive
   Foundations of Musical Pitch*, 1990, ch. 4): a duration-weighted histogram of the
   twelve pitch classes against the key's profile. The profiles are Albrecht and
   Shanahan's ("The Use of Large Corpora to Train a New Type of Key-Finding Algorithm:
   An Improved Treatment of the Minor Mode", *Music Perception* 31(1), 2013), trained on
   scores; the values of their appendix, as also given in music21's ``analysis.discrete``.
2. **Key signature.** The share of the note weight that lies in the key signature's
   seven pitch classes, the diatonic collection shared by a major key and its relative
   minor (Longuet-Higgins and Steedman's shape matching, "On Interpreting Bach",
   *Machine Intelligence* 6, 1971, keeps the keys whose scale holds the notes). A key
   profile weighs the tonic and the dominant so heavily that a key and its dominant
   score alike; the collection tells them apart by the one note they differ in (F or
   F# between C and G major), however rarely it sounds.
3. **Final cadence.** Music tends to end on its tonic (Sapp, "Harmonic Visualizations of
   Tonal Music", ICMC 2001: "the key of a piece typically starts and ends the piece";
   the keynote of a folk tune is almost always its last note). When the last sonority
   is held (at least ``CADENCE_HOLD`` times the median note), the keys whose tonic is its
   lowest note get a bonus; an excerpt or a song that stops mid-phrase gets none. On
   the corpus's real scores (bench split, key truth audited against published analyses),
   held endings sit on the tonic 26 times in 31, other endings 60 times in 120. The
   same bonus goes to the keys on the tonic that the first and the last sonority both
   have in the bass, held or not: the piece starts and ends there.

Drums are left out (``gm.is_drum_instrument``, the rule placement and clean-up use), and
so are notes under 30 ms (``defaults.CLEAN_MIN_NOTE_S``, the clean-up's flicker
threshold): a transcription's flickers (PRODUCT.md: 7.7% of Suno's notes) weigh little
in a duration histogram, but a flicker after the last chord would become the final
sonority and hide the cadence. Durations are capped so one held pad does not outweigh
the tune.

A signature is written only when the estimate is sure twice over. The confidence is
the margin between the best key's score and the next best's, so a near-tie (relative
keys share a signature and differ by the profile alone) is unsure. And the key must be
**steady**: it also wins in most of the song's ``SECTIONS`` equal spans of time that
hold at least ``MIN_NOTES`` notes (a sparser span, a slow intro or coda, is too little
to tell a key and does not vote; with none voting, the margin alone decides). A key
that changes (a last chorus a step up; on the corpus, excerpts cut from a movement
that has modulated) sums to a histogram that fits a blend of the keys, often with a
comfortable margin; the spans disagree with it, and the blend is never written (the
key in force at the start may be, below). This borrows the segment view of Temperley's model (*Music and
Probability*, 2007: each segment has its key, and the key may change between them)
to refuse; picking the key most spans agree on was worse on bench.

The key reported is the one **in force at the start** (a song's key signature stands at
its beginning), read as the first state of a **key path**: the song is cut into
``SEGMENT_S`` segments, each key gets its segment's part of the whole song's score, and
the path of keys with the most score, less what its changes cost, is decoded with the
Viterbi algorithm. This is the modulation model of Temperley's Bayesian key finder
(*Music and Probability*, 2007, its polyphonic model; "A Bayesian Key-Finding Model",
MIREX 2005: a segment keeps the previous segment's key with probability .998, so a
change must be paid for by the notes), with the key-to-key costs of HMM key trackers, where the
neighbouring keys on the circle of fifths and the relative key are the cheap changes
(Noland and Sandler, "Key Estimation Using a Hidden Markov Model", ISMIR 2006; Nápoles
López, Arthur and Fujinaga, "Key-Finding Based on a Hidden Markov Model and Key
Profiles", DLfM 2019). The cues are the ones above, made additive: the correlation's
numerator and the signature's weight are sums over the notes, so each segment's part
is taken over the whole song's denominators and the segments add up to the song's
score; a path that never changes key is the whole song's estimate, and a change
(``KEY_CHANGE``, ``NEIGHBOUR_CHANGE``) is measured in the same unit, a share of the
song's evidence, whatever its length. The ending's cues (the cadence bonuses) go to the
last segment. A record over 10 minutes gets longer segments (``MAX_SEGMENTS``): one
step of the path per segment is the one loop in Python.

The path's first key is not taken outright: a tune that opens on its dominant for a
phrase would be reported in the dominant (on bench the path's first key alone lost
most of what it gained). It goes through the gate of ``_start_key``:
the whole song's key stands when the lowest note of the first or the last sonority is
its tonic ("the key of a piece typically starts and ends the piece", Sapp above). Else
the path's first key is taken when its tonic is one of those two notes, or when the
song's key is its dominant in the same mode: the song opened in its key and moved to
the dominant, the commonest modulation of tonal music, and the later segments pull the
whole histogram there. Last, relative keys share a signature and differ by the profile
alone: a song that opens on the relative key's tonic in the bass and does not end on
the chosen key's is taken to start in the relative (``_relative_switch``). The
steadiness is then the start key's: a song with a last chorus a step up gets its first
key written (it wins two spans of three), one that moved to the dominant for two
thirds of its length gets none; the confidence of a start key other than the whole
song's is its margin in the notes of the path's first key. The gate lets one case
through: a tune that opens on its dominant's tonic, without the note that tells its key
from the dominant (C in G major) for its first segments, and does not end on its tonic
is reported in the dominant.

The start key's variants and the methods measured on the corpus's real scores
(bench/bench_clean.py, bench split) and left out, their figures and the estimate's errors:
docs/cleanup-studies.md, "Key methods tried".

A MIDI key signature holds at most 7 sharps or flats (Suno's own files carry illegal ones
with 11-19 sharps, which crash mido and pretty_midi): ``signature`` spells each key
with the fewer accidentals, so it writes at most 6: 5 flats to 6 sharps (Db major's 5 flats
over C#'s 7 sharps; F# major's 6 sharps where Gb's 6 flats tie).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from .. import model
from ..defaults import CLEAN_MIN_NOTE_S as MIN_NOTE_S  # the clean-up's flicker threshold, left out here too
from ..errors import check_argument
from ..model import KeySignature, Record

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Albrecht & Shanahan (2013), appendix: weight of each pitch class above the tonic.
MAJOR_PROFILE = (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081)
MINOR_PROFILE = (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052)

# The seven pitch classes of a major key's signature, above its tonic.
DIATONIC = (0, 2, 4, 5, 7, 9, 11)

MAX_WEIGHT_S = 2.0  # a note counts at most this long: held chords must not outweigh the melody
COLLECTION_WEIGHT = 4.0  # weight of the signature's share (0-1) against the correlation (-1..1); bench, 2-8 alike
CADENCE_BONUS = 0.2  # added for a held final bass note on the tonic (bench; about one signature's 5% share)
CADENCE_HOLD = 3.0  # the final sonority counts as a cadence when held this many median notes long
FINAL_GROUP_S = 0.1  # notes starting this close to the last onset belong to the final sonority
MIN_CONFIDENCE = 0.05  # below this margin the key is not written (bench, with the steadiness check)
SECTIONS = 3  # the key must also win in most of this many equal spans of the song to be written
MIN_NOTES = 8  # fewer pitched notes than this say nothing about a key
SEGMENT_S = 4.0  # the key path's segment: two 4/4 bars at 120 bpm, a short phrase (bench: 3-8 s alike)
KEY_CHANGE = 0.1  # what a change of key costs the path, in whole-song score (bench: 0.07-0.13 alike)
NEIGHBOUR_CHANGE = 0.05  # the cost to a key a fifth away in the same mode, or to the relative key
MAX_SEGMENTS = 150  # a longer record (over 10 minutes) gets longer segments: the path's steps stay few

PITCH_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Fifths of the major key on each tonic, spelt with at most 6 accidentals (F# over Gb).
MAJOR_FIFTHS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)


@dataclass(frozen=True)
class KeyEstimate:
    """A key found in the notes: tonic pitch class 0-11 (0 = C), mode, and how sure.

    ``correlation`` is the key's profile correlation; ``confidence`` the margin of its
    score (profile, signature and cadence) over the best other key's (0 = a tie), in the
    whole song, or for a start key of its own in the notes of the key path's first key;
    ``steady`` whether the key also wins in most thirds of the song; ``confident``
    (both: a margin of at least ``MIN_CONFIDENCE`` and steady) says whether a signature
    should be written.
    """

    tonic: int
    minor: bool
    correlation: float
    confidence: float
    steady: bool = True

    @property
    def confident(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE and self.steady

    @property
    def signature(self) -> KeySignature:
        """The key signature: sharps positive, flats negative, within -5..6 (``MAJOR_FIFTHS``)."""
        major_tonic = (self.tonic + 3) % 12 if self.minor else self.tonic
        return KeySignature(MAJOR_FIFTHS[major_tonic], self.minor)

    @property
    def name(self) -> str:
        """The key as people write it, spelt like its signature: 'Bb major', 'F# minor'."""
        names = PITCH_NAMES_FLAT if self.signature.fifths < 0 else PITCH_NAMES_SHARP
        return f"{names[self.tonic]} {'minor' if self.minor else 'major'}"

    def describe(self) -> str:
        """Return one line on the signature: written, or why not (not sure enough, not steady)."""
        if self.confident:
            return f"key signature {self.name} written (confidence {self.confidence:.2f})"
        if self.confidence < MIN_CONFIDENCE:
            why = f"not sure enough (confidence {self.confidence:.2f}, under {MIN_CONFIDENCE:g})"
        else:
            why = "not steady (another key wins most thirds of the song)"
        return f"no key signature written: {self.name} is {why}"


NO_KEY = "no key signature written: too few pitched notes to tell a key"  # ``estimate_key`` found none


def estimate_key(record: Record, drums: Sequence[bool] | None = None) -> KeyEstimate | None:
    """Estimate the key of a record's pitched notes (seconds), or None when too few.

    ``drums`` marks the instruments to leave out; by default the drum channel's, as
    ``gm.is_drum_instrument`` decides it for placement and clean-up (Suno's ``is_drum``
    flag or a .mid's channel 10 first, else the name), without ``--program`` overrides.
    """
    check_argument("estimate_key", "record", record, Record)
    import numpy as np

    from .. import gm

    if record.status != model.COMPLETE:
        return None
    flags = drums if drums is not None else [gm.is_drum_instrument(i) for i in record.instruments]
    pitched = [i for i, drum in zip(record.instruments, flags) if not drum and i.note_count]
    if sum(i.note_count for i in pitched) < MIN_NOTES:
        return None
    start, end, pitch = (np.concatenate([getattr(i, f) for i in pitched]) for f in ("start_s", "end_s", "pitch"))
    return key_from_notes(start, end, pitch)


def key_from_notes(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64]
) -> KeyEstimate | None:
    """Estimate the key of notes given as columns (seconds, MIDI pitch); None when silent."""
    import numpy as np

    heard = end - start >= MIN_NOTE_S
    if np.count_nonzero(heard) >= MIN_NOTES:
        start, end, pitch = start[heard], end[heard], pitch[heard]
    found = _profile_scores(start, end, pitch)
    if found is None:
        return None
    scores, correlation = found
    cadence = _cadence_bonus(start, end, pitch)
    ends = (_bass_at(start, end, pitch, start.min()), _bass_at(start, end, pitch, start.max()))
    scores = scores + cadence + _ends_bonus(ends)
    best = _best(scores)
    votes = [_best(span) for span in _section_scores(start, end, pitch) if span is not None]
    segments = _segment_scores(start, end, pitch)
    segments[-1] += cadence + _ends_bonus(ends)  # the ending's cues speak for the last key
    path = _key_path(segments)
    key = _relative_switch(_start_key(ends, best, int(path[0])), ends)
    return KeyEstimate(
        tonic=key % 12,
        minor=key >= 12,
        correlation=float(correlation[key]),
        confidence=_margin(scores if key == best else _opening_scores(start, end, pitch, path), key),
        steady=_steady(votes, key),
    )


def _best(scores: npt.NDArray[np.float64]) -> int:
    """Return the key (0-23) with the highest score; of exact equals the first (C before C#, major before minor)."""
    import numpy as np

    return int(np.argmax(scores))


def _margin(scores: npt.NDArray[np.float64], key: int) -> float:
    """How far ``key``'s score lies above the best other key's (0 = a tie)."""
    import numpy as np

    return float(scores[key] - np.delete(scores, key).max())


def _scores(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """Score of each key (0-11 major on its tonic, 12-23 minor) and its profile correlation; None when silent.

    The profile and signature scores (``_profile_scores``) with the cadence's bonus.
    """
    found = _profile_scores(start, end, pitch)
    return None if found is None else (found[0] + _cadence_bonus(start, end, pitch), found[1])


def _profile_scores(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """``_scores`` without the cadence: the profile correlation and the signature's share; None when silent."""
    import numpy as np

    weight = np.clip(end - start, 0.0, MAX_WEIGHT_S)
    histogram = np.bincount(pitch % 12, weights=weight, minlength=12).astype(np.float64)
    if not histogram.any():
        return None
    correlation = np.concatenate([_correlations(histogram, MAJOR_PROFILE), _correlations(histogram, MINOR_PROFILE)])
    return correlation + COLLECTION_WEIGHT * _collection_shares(histogram)[_signature_tonics()], correlation


def _signature_tonics() -> npt.NDArray[np.int64]:
    """The tonic of each key's signature as a major key (0-11): a minor key's relative major's."""
    import numpy as np

    tonics = np.arange(24) % 12
    return np.where(np.arange(24) < 12, tonics, (tonics + 3) % 12)


def _cadence_bonus(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """``CADENCE_BONUS`` for the keys (24) whose tonic is the bass of a held last sonority; zeros without one."""
    import numpy as np

    final = _final_bass(start, end, pitch)
    return CADENCE_BONUS * (np.arange(24) % 12 == final) if final is not None else np.zeros(24)


def _ends_bonus(ends: tuple[int, int]) -> npt.NDArray[np.float64]:
    """``CADENCE_BONUS`` for the keys on the tonic that the first and the last sonority both have in the bass.

    "The key of a piece typically starts and ends the piece" (Sapp 2001): an ending that is
    not held still counts when the song began on the same bass note.
    """
    import numpy as np

    first, last = ends
    return CADENCE_BONUS * (np.arange(24) % 12 == first) if first == last else np.zeros(24)


def _segment_scores(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Each segment's part of the whole song's key scores (segments x 24 keys; notes by onset; ``_segment_s``).

    Both cues are sums over the notes: the correlation's numerator (the profile's deviations
    from its mean weighted by the histogram) and the signature's weight. Each segment gets
    its notes' part of both, over the whole song's denominators, so that the segments of a
    song add up to its scores (``_profile_scores``): a key path that never
    changes scores as the whole song does.
    """
    import numpy as np

    weight = np.clip(end - start, 0.0, MAX_WEIGHT_S)
    segment = ((start - start.min()) // _segment_s(start)).astype(np.int64)
    count = int(segment.max()) + 1
    grid = np.bincount(segment * 12 + pitch % 12, weights=weight, minlength=12 * count).reshape(count, 12)
    histogram = grid.sum(axis=0)
    deviation = histogram - histogram.mean()
    spread = float(np.sqrt(deviation @ deviation)) or 1.0
    profiles = np.array([np.roll(profile, tonic) for profile in (MAJOR_PROFILE, MINOR_PROFILE) for tonic in range(12)])
    profiles -= profiles.mean(axis=1, keepdims=True)
    profiles /= np.sqrt((profiles * profiles).sum(axis=1, keepdims=True))
    signatures = _scales()[_signature_tonics()]
    scores: npt.NDArray[np.float64] = (
        grid @ profiles.T / spread + COLLECTION_WEIGHT * grid @ signatures.T / histogram.sum()
    )
    return scores


def _segment_s(start: npt.NDArray[np.float64]) -> float:
    """The key path's segment length: ``SEGMENT_S``, or longer so that a song has at most ``MAX_SEGMENTS``."""
    return max(SEGMENT_S, float(start.max() - start.min()) / (MAX_SEGMENTS - 1))


@cache
def _change_costs() -> npt.NDArray[np.float64]:
    """What the key path pays to go from one key (row) to another (column): 0 to stay.

    ``NEIGHBOUR_CHANGE`` to the keys next to it (a fifth away in the same mode, or the
    relative key: the commonest modulations, whose signatures differ by one note or none),
    ``KEY_CHANGE`` to any other. A constant, built once (on first use: numpy is not loaded
    at import) and read-only, as it is shared.
    """
    import numpy as np

    keys = np.arange(24)
    minor = keys >= 12
    step = (keys[None, :] - keys[:, None]) % 12  # the tonic's rise from row to column
    same_mode = minor[:, None] == minor[None, :]
    fifth = same_mode & ((step == 5) | (step == 7))
    relative = ~same_mode & (step == np.where(minor, 3, 9)[:, None])
    costs = np.where(fifth | relative, NEIGHBOUR_CHANGE, KEY_CHANGE)
    np.fill_diagonal(costs, 0.0)
    costs.flags.writeable = False
    return costs


def _key_path(segments: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """The key (0-23) of each segment on the best path: the most score less what its changes cost (Viterbi).

    One step per segment, each over the 24 x 24 keys at once (a 5-minute song has 75 segments).
    """
    import numpy as np

    costs = _change_costs()
    total = segments[0].copy()
    came_from = np.zeros(segments.shape, dtype=np.int64)
    for index in range(1, len(segments)):
        reach = total[:, None] - costs
        came_from[index] = reach.argmax(axis=0)
        total = reach.max(axis=0) + segments[index]
    path = np.empty(len(segments), dtype=np.int64)
    path[-1] = total.argmax()
    for index in range(len(segments) - 1, 0, -1):
        path[index - 1] = came_from[index, path[index]]
    return path


def _opening_scores(
    start: npt.NDArray[np.float64],
    end: npt.NDArray[np.float64],
    pitch: npt.NDArray[np.int64],
    path: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """The key scores (as ``_scores``) of the notes starting in the key path's first key."""
    import numpy as np

    changed = np.flatnonzero(path != path[0])
    until = start.min() + _segment_s(start) * (changed[0] if len(changed) else len(path))
    mine = start < until
    found = _scores(start[mine], end[mine], pitch[mine])
    return found[0] if found is not None else np.zeros(24)


def _section_scores(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64]
) -> list[npt.NDArray[np.float64] | None]:
    """The key scores (as ``_scores``) of each of the song's ``SECTIONS`` equal spans of time (notes by onset).

    None for a span with fewer than ``MIN_NOTES`` notes: too few to tell a key.
    """
    import numpy as np

    edges = np.linspace(start.min(), end.max(), SECTIONS + 1)[1:-1]
    section = np.searchsorted(edges, start, side="right")
    spans: list[npt.NDArray[np.float64] | None] = []
    for index in range(SECTIONS):
        mine = section == index
        found = _scores(start[mine], end[mine], pitch[mine]) if np.count_nonzero(mine) >= MIN_NOTES else None
        spans.append(None if found is None else found[0])
    return spans


def _steady(votes: list[int], key: int) -> bool:
    """Whether ``key`` (0-23) is the best key of most sections that can tell one (``votes``); with none, it is."""
    return 2 * votes.count(key) > len(votes) or not votes


def _start_key(ends: tuple[int, int], whole: int, opening: int) -> int:
    """The key in force at the start (0-23): the whole song's key, or the key path's first.

    The song's key stands when the lowest note of its first or its last sonority
    (``ends``) is its tonic: a piece typically starts and ends in its key (Sapp 2001).
    When neither is, the opening's key wins if it has a reason of its own: its tonic is
    one of those two notes, or the song's key is its dominant in the same mode (the song
    opened in its key and moved to the dominant, the commonest modulation, whose
    segments pull the whole song's histogram to it).
    """
    if opening == whole or whole % 12 in ends:
        return whole
    to_dominant = opening // 12 == whole // 12 and (whole - opening) % 12 == 7
    return opening if opening % 12 in ends or to_dominant else whole


def _relative_switch(key: int, ends: tuple[int, int]) -> int:
    """The relative key instead of ``key`` when the first sonority's bass is its tonic and the last's is not ``key``'s.

    Relative keys share a signature and differ by the profile alone, the estimate's
    commonest near-miss; a song that opens on the relative's tonic and does not end on
    the chosen key's is taken to start in the relative (Sapp 2001, above).
    """
    first, last = ends
    relative = (key + 9) % 12 + 12 if key < 12 else (key + 3) % 12
    return relative if first == relative % 12 and last != key % 12 else key


def _collection_shares(histogram: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Share of the histogram in the seven pitch classes of the major key on each of the 12 tonics."""
    shares: npt.NDArray[np.float64] = _scales() @ histogram / histogram.sum()
    return shares


def _scales() -> npt.NDArray[np.float64]:
    """The major scale on each of the 12 tonics (rows): 1 for its seven pitch classes, 0 for the others."""
    import numpy as np

    member = np.zeros(12)
    member[list(DIATONIC)] = 1.0
    return np.array([np.roll(member, tonic) for tonic in range(12)])


def _final_bass(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64]
) -> int | None:
    """Pitch class of the lowest note sounding at the last onset, when the ending is held; else None.

    Held: the longest note of the final sonority lasts at least ``CADENCE_HOLD`` median notes.
    """
    import numpy as np

    length = end - start
    last_onset = start.max()
    final = start >= last_onset - FINAL_GROUP_S
    if length[final].max() < CADENCE_HOLD * np.median(length):
        return None
    return _bass_at(start, end, pitch, last_onset)


def _bass_at(
    start: npt.NDArray[np.float64], end: npt.NDArray[np.float64], pitch: npt.NDArray[np.int64], onset: float
) -> int:
    """Pitch class of the lowest note of the sonority at ``onset`` (one of the notes' onsets).

    The sonority: the notes sounding at the onset and those starting up to ``FINAL_GROUP_S`` after it
    (a transcribed chord's notes do not start together).
    """
    sounding = ((start <= onset) & (end > onset)) | ((start >= onset) & (start <= onset + FINAL_GROUP_S))
    return int(pitch[sounding].min() % 12)


def _correlations(histogram: npt.NDArray[np.float64], profile: tuple[float, ...]) -> npt.NDArray[np.float64]:
    """Pearson correlation of the histogram with the profile on each of the 12 tonics."""
    import numpy as np

    rotations = np.array([np.roll(profile, tonic) for tonic in range(12)])
    h = histogram - histogram.mean()
    p = rotations - rotations.mean(axis=1, keepdims=True)
    norm = np.sqrt((h * h).sum() * (p * p).sum(axis=1))
    correlation: npt.NDArray[np.float64] = (p @ h) / np.where(norm > 0, norm, 1.0)
    return correlation
