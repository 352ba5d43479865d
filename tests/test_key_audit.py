"""The corpus's key audit (bench/corpus/key_audit.py): which analysis key counts, and how a correction applies.

Hand-made analyses (bar, tonic, mode per chord) and songs; no When in Rome checkout needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "corpus"))

import key_audit  # noqa: E402
import schema  # noqa: E402

# an analysis: C major from bar 1, a one-bar tonicization of D minor at bar 9, A minor from bar 10 to 14, C again
KEYED = [(1, "C", "major"), (5, "C", "major"), (9, "D", "minor"), (10, "A", "minor"), (15, "C", "major")]


def test_governing_key_ignores_a_one_bar_tonicization() -> None:
    assert key_audit._governing(KEYED, 9, 8) == ("A", "minor")  # bars 9-16: D 1, A 5, C 2
    assert key_audit._governing(KEYED, 8, 3) == ("C", "major")  # bars 8-10: C 1, D 1, A 1: the first on a tie


def test_spans_count_bars_from_the_key_in_force_before_the_window() -> None:
    assert key_audit._spans(KEYED, 3, 4) == {("C", "major"): 4}
    assert key_audit._spans(KEYED, 12, 6) == {("A", "minor"): 3, ("C", "major"): 3}


def test_a_correction_keeps_the_key_it_replaces() -> None:
    song = {"id": "s", "truth": {"key": {"tonic": "D", "mode": "minor", "source": "key-signature"}}, "meta": {}}
    corrections = {"s": {"id": "s", "key": {"tonic": "G", "mode": "minor"}}}
    assert key_audit.apply_correction(song, corrections)
    assert song["truth"]["key"] == {"tonic": "G", "mode": "minor", "source": "published-analysis"}
    assert song["meta"]["key_before_audit"]["tonic"] == "D"
    assert not key_audit.apply_correction(song, corrections)  # applied twice: unchanged, the original kept
    assert song["meta"]["key_before_audit"]["tonic"] == "D"


def test_songs_without_a_correction_or_a_key_are_left_alone() -> None:
    song = {"id": "t", "truth": {"key": None}, "meta": {}}
    assert not key_audit.apply_correction(song, {"t": {"key": {"tonic": "C", "mode": "major"}}})
    assert song["truth"]["key"] is None
    other = {"id": "u", "truth": {"key": {"tonic": "C", "mode": "major"}}, "meta": {}}
    assert not key_audit.apply_correction(other, {})


def test_pitch_names_with_sharps_flats_and_music21_minus() -> None:  # the corpus schema's, which the audit reads
    assert [schema.tonic_pc(n) for n in ("C", "F#", "Bb", "B-", "Db", "c#")] == [0, 6, 10, 10, 1, 1]
    assert [schema.tonic_pc(n) for n in ("b", "bb", "eb", "B")] == [11, 10, 3, 11]  # lowercase names as well
