"""Key: estimate a song's key from its notes, and the key signature to write for it.

The method is the key-profile correlation of Krumhansl and Schmuckler (Krumhansl,
*Cognitive Foundations of Musical Pitch*, 1990, ch. 4): a duration-weighted histogram
of the twelve pitch classes is correlated with a profile of each of the 24 major and
minor keys, and the best correlation wins. The profiles are Albrecht and Shanahan's
("The Use of Large Corpora to Train a New Type of Key-Finding Algorithm: An Improved
Treatment of the Minor Mode", *Music Perception* 31(1), 2013), trained on a corpus of
scores, which treat the minor mode better than the probe-tone ratings; the values are
those of their appendix, as also given in music21's ``analysis.discrete`` module.
Drums are left out; durations are capped so one held pad does not outweigh the tune.

The confidence is the margin between the best key's correlation and the next best's,
so a near-tie (between relative keys, or a key and its dominant) is unsure. On the
corpus's real scores (bench/bench_clean.py) these profiles beat Krumhansl-Kessler's,
Temperley's, Aarden-Essen's and Bellman-Budge's, alone or averaged; a bonus for the
final bass note did not help, since excerpts seldom end on a cadence.

A key signature has at most 7 sharps or flats (Suno's own files carry illegal ones
with 11-19 sharps, which crash mido and pretty_midi): ``signature`` spells each key
with the fewer accidentals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import model
from ..model import KeySignature, Record

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Albrecht & Shanahan (2013), appendix: weight of each pitch class above the tonic.
MAJOR_PROFILE = (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081)
MINOR_PROFILE = (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052)

MAX_WEIGHT_S = 2.0  # a note counts at most this long: held chords must not outweigh the melody
MIN_CONFIDENCE = 0.05  # below this margin the key is not written (tuned on the corpus)
MIN_NOTES = 8  # fewer pitched notes than this say nothing about a key

PITCH_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Fifths of the major key on each tonic, spelt with at most 6 accidentals (F# over Gb).
MAJOR_FIFTHS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)


@dataclass(frozen=True)
class KeyEstimate:
    """A key found in the notes: tonic pitch class 0-11 (0 = C), mode, and how sure.

    ``correlation`` is the winning score; ``confidence`` the margin over the best
    other key (0 = a tie); ``confident`` says whether a signature should be written.
    """

    tonic: int
    minor: bool
    correlation: float
    confidence: float

    @property
    def confident(self) -> bool:
        return self.confidence >= MIN_CONFIDENCE

    @property
    def signature(self) -> KeySignature:
        """The key signature: sharps positive, flats negative, within -7..7."""
        major_tonic = (self.tonic + 3) % 12 if self.minor else self.tonic
        return KeySignature(MAJOR_FIFTHS[major_tonic], self.minor)

    @property
    def name(self) -> str:
        """The key as people write it, spelt like its signature: 'Bb major', 'F# minor'."""
        names = PITCH_NAMES_FLAT if self.signature.fifths < 0 else PITCH_NAMES_SHARP
        return f"{names[self.tonic]} {'minor' if self.minor else 'major'}"


def estimate_key(record: Record, drums: Sequence[bool] | None = None) -> KeyEstimate | None:
    """Estimate the key of a record's pitched notes (seconds), or None when too few.

    ``drums`` marks the instruments to leave out (default: drum names, as ``gm`` reads them).
    """
    import numpy as np

    from .. import gm

    if record.status != model.COMPLETE:
        return None
    flags = drums if drums is not None else [gm.resolve_instrument(i.name).is_drum for i in record.instruments]
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

    weight = np.clip(end - start, 0.0, MAX_WEIGHT_S)
    histogram = np.bincount(pitch % 12, weights=weight, minlength=12).astype(np.float64)
    if not histogram.any():
        return None
    scores = np.concatenate([_correlations(histogram, MAJOR_PROFILE), _correlations(histogram, MINOR_PROFILE)])
    order = np.argsort(scores)[::-1]
    best, second = int(order[0]), int(order[1])
    return KeyEstimate(
        tonic=best % 12,
        minor=best >= 12,
        correlation=float(scores[best]),
        confidence=float(scores[best] - scores[second]),
    )


def _correlations(histogram: npt.NDArray[np.float64], profile: tuple[float, ...]) -> npt.NDArray[np.float64]:
    """Pearson correlation of the histogram with the profile on each of the 12 tonics."""
    import numpy as np

    rotations = np.array([np.roll(profile, tonic) for tonic in range(12)])
    h = histogram - histogram.mean()
    p = rotations - rotations.mean(axis=1, keepdims=True)
    norm = np.sqrt((h * h).sum() * (p * p).sum(axis=1))
    correlation: npt.NDArray[np.float64] = (p @ h) / np.where(norm > 0, norm, 1.0)
    return correlation
