from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import mido
import numpy as np
import pytest

from conftest import mido_file, pretty, record_payload, run
from midiexport import gm, model
from midiexport.options import ConvertOptions
from midiexport.outputs.smf import write_midi
from midiexport.stages.clean import (
    HUBER_BEND_S,
    MAX_ALIGN_PARTS,
    _count_at_or_before,
    _extend_runs,
    _key_order,
    _running_max,
    _time_orders,
    band_latencies,
    clean_record,
    first_onsets,
    group_keys,
    huber_locations,
    overtone_ghosts,
    sampled_onsets,
    solve_offsets,
    within_voice_cap,
)
from midiexport.stages.convert import convert_record
from midiexport.stages.midifile import read_midi
from midiexport.stages.normalize import normalize_payload

ROOT = Path(__file__).resolve().parent.parent
TICK = 1 / 192  # the API's grid


def record_of(*instruments: tuple[str, list[tuple[int, float, float, float]]]) -> model.Record:
    """A record from (name, [(pitch, start_s, end_s, velocity)]) pairs; names may repeat."""
    midi = {
        "state": "complete",
        "instruments": [
            {"name": name, "notes": [{"pitch": p, "start": s, "end": e, "velocity": v} for p, s, e, v in notes]}
            for name, notes in instruments
        ],
    }
    [record] = normalize_payload({"code": 200, "data": {"taskId": "t1", "midiData": midi}}, source="a.json")
    return record


def notes_of(record: model.Record, name: str | None = None) -> list[tuple[int, float, float]]:
    """Sorted (pitch, start_s, end_s) of one instrument (the only one when no name)."""
    [instrument] = [i for i in record.instruments if name is None or i.name == name]
    rows = zip(instrument.pitch.tolist(), instrument.start_s.tolist(), instrument.end_s.tolist())
    return sorted((p, round(s, 9), round(e, 9)) for p, s, e in rows)


def cleaned(record: model.Record, **options: object) -> model.Record:
    return clean_record(record, ConvertOptions(**options))


# --- off by default ---------------------------------------------------------------------

# SHA-256 (first 16 hex digits) of each output before the clean-up stage existed (commit
# ab2b1aa): (input, record index, SMF format, digest). Without a clean-up option the
# bytes must not change at all.
# Digests of the output of main just before the clean-up stage merged (after the deliberate
# notation changes of issue 11: @T title, @I texts, format-0 channel set-up order).
BEFORE_CLEAN_STAGE = [
    ("samples/sample-song.json", 0, 0, "fe7b074b6d2245ee"),
    ("samples/sample-song.json", 0, 1, "fa61dd9c765163fc"),
    ("fixtures/callback-string-times.json", 0, 0, "046d30b2f1af82ba"),
    ("fixtures/callback-string-times.json", 0, 1, "2bda8f8ff66b0e85"),
    ("fixtures/midi-data-bare.json", 0, 1, "f2012a1ba3973bbc"),
    ("fixtures/record-info.json", 0, 0, "0497fa89d309e7bf"),
    ("fixtures/record-info.json", 0, 1, "47af662b2e23c0a5"),
    ("fixtures/records-array.json", 1, 1, "8a7af7878c5a95be"),
    ("fixtures/reseller-data-list.json", 1, 1, "528cd627a525e0e7"),
    ("fixtures/reseller-instruments-object.json", 0, 1, "aa4a7576e10b2464"),
    ("fixtures/reseller-midi-url.json", 0, 1, "503f4c68a1465efe"),
]


@pytest.mark.parametrize(("path", "index", "midi_format", "digest"), BEFORE_CLEAN_STAGE)
def test_output_without_clean_options_is_byte_identical_to_before_the_stage(path, index, midi_format, digest):
    record = normalize_payload((ROOT / path).read_bytes(), source=path)[index]
    data = write_midi(convert_record(record, ConvertOptions(format=midi_format)), format=midi_format)
    assert hashlib.sha256(data).hexdigest()[:16] == digest


def test_clean_record_without_options_returns_the_record_itself():
    record = record_of(("Piano", [(60, 0.0, TICK, 0.5)]))
    assert clean_record(record, ConvertOptions()) is record


def test_no_key_signature_is_written_without_clean_up():
    record = normalize_payload((ROOT / "samples/sample-song.json").read_bytes())[0]
    midi = mido_file(write_midi(convert_record(record)))
    assert not [m for m in midi.tracks[0] if m.type == "key_signature"]


# --- flickers and re-detections ---------------------------------------------------------


def test_flicker_at_the_very_start_is_dropped():
    record = record_of(("Piano", [(64, 0.0, 2 * TICK, 0.5), (60, 0.0, 0.5, 0.5)]))
    after = cleaned(record, clean="light")
    assert notes_of(after) == [(60, 0.0, 0.5)]
    assert after.counts == {model.SHORT_DROPPED: 1}


def test_short_redetection_extends_the_note_before():
    # 60 sounds 0-0.5 s; a 20 ms re-detection 50 ms after its end extends it.
    record = record_of(("Piano", [(60, 0.0, 0.5, 0.5), (60, 0.55, 0.57, 0.5)]))
    after = cleaned(record, clean="light")
    assert notes_of(after) == [(60, 0.0, 0.57)]
    assert after.counts == {model.REDETECT_JOINED: 1}


def test_onset_within_50_ms_of_the_previous_onset_of_its_pitch_is_the_same_note():
    # a 40 ms piece, then the note itself heard again from its end: one note, the first start and velocity
    record = record_of(("Violin", [(67, 1.0, 1.04, 0.9), (67, 1.04, 1.6, 0.4)]))
    after = cleaned(record, clean="light")
    assert notes_of(after) == [(67, 1.0, 1.6)]
    assert after.instruments[0].velocity.tolist() == [0.9]
    assert after.counts == {model.REDETECT_JOINED: 1}


def test_a_short_note_its_re_detection_lengthens_is_no_flicker():
    # 20 ms, then the note heard again 30 ms after its onset: one 600 ms note, not a flicker dropped
    record = record_of(("Flute", [(72, 1.0, 1.02, 0.5), (72, 1.03, 1.6, 0.5), (60, 2.0, 2.01, 0.5)]))
    after = cleaned(record, clean="light")
    assert notes_of(after) == [(72, 1.0, 1.6)]
    assert after.counts == {model.REDETECT_JOINED: 1, model.SHORT_DROPPED: 1}


def test_chain_of_close_re_onsets_becomes_one_note():
    record = record_of(("Violin", [(67, 1.0, 1.04, 0.5), (67, 1.04, 1.08, 0.5), (67, 1.08, 1.6, 0.5)]))
    assert notes_of(cleaned(record, clean="light")) == [(67, 1.0, 1.6)]


def test_note_after_a_40_ms_blip_and_a_gap_restarts_the_blip():
    record = record_of(("Flute", [(72, 1.0, 1.035, 0.5), (72, 1.045, 1.6, 0.5)]))
    assert notes_of(cleaned(record, clean="light")) == [(72, 1.0, 1.6)]


def test_two_voices_in_unison_overlapping_are_not_a_re_detection():
    # two written notes of one pitch a few ms apart, both sounding: a unison in a clean score
    record = record_of(("Cello", [(48, 1.0, 1.5, 0.5), (48, 1.004, 1.48, 0.5)]))
    after = cleaned(record, clean="light")
    assert notes_of(after) == [(48, 1.0, 1.5), (48, 1.004, 1.48)]
    assert after.counts == {}


def test_repeat_60_ms_after_the_previous_onset_is_played():
    record = record_of(("Violin", [(67, 1.0, 1.06, 0.5), (67, 1.06, 1.6, 0.5)]))
    assert notes_of(cleaned(record, clean="light")) == [(67, 1.0, 1.06), (67, 1.06, 1.6)]


def test_drum_roll_faster_than_50_ms_is_kept():
    roll = [(38, 1.0 + 0.03 * k, 1.0 + 0.03 * k + TICK, 0.5) for k in range(8)]
    after = cleaned(record_of(("Drums", roll)), clean="light")
    assert len(notes_of(after)) == 8
    assert after.counts == {}


def test_short_note_of_another_pitch_is_not_a_redetection():
    record = record_of(("Piano", [(60, 0.0, 0.5, 0.5), (61, 0.55, 0.57, 0.5)]))
    assert notes_of(cleaned(record, clean="light")) == [(60, 0.0, 0.5)]


def test_long_repeated_note_is_kept_apart():
    record = record_of(("Bass", [(40, 0.0, 0.24, 0.5), (40, 0.25, 0.49, 0.5)]))
    assert notes_of(cleaned(record, clean="light")) == [(40, 0.0, 0.24), (40, 0.25, 0.49)]


def test_min_note_ms_overrides_the_preset():
    record = record_of(("Piano", [(60, 0.0, 0.04, 0.5), (62, 1.0, 1.02, 0.5)]))
    assert notes_of(cleaned(record, clean="light", min_note_ms=0)) == [(60, 0.0, 0.04), (62, 1.0, 1.02)]
    assert notes_of(cleaned(record, clean="light", min_note_ms=50)) == []
    assert notes_of(cleaned(record, min_note_ms=30)) == [(60, 0.0, 0.04)]  # the rule alone, no preset


# --- fragments --------------------------------------------------------------------------


def test_fragment_chain_becomes_one_note():
    pieces = [(60, 0.0, 0.3, 0.8), (60, 0.31, 0.6, 0.6), (60, 0.61, 0.9, 0.5), (60, 0.91, 1.2, 0.4)]
    after = cleaned(record_of(("Strings", pieces)), merge_gap_ms=20)
    assert notes_of(after) == [(60, 0.0, 1.2)]
    assert after.instruments[0].velocity.tolist() == [0.8]  # the attack's velocity
    assert after.counts == {model.FRAGMENT_MERGED: 3}


def test_repeat_that_lines_up_with_another_part_is_not_a_fragment():
    strings = [(60, 0.0, 0.49, 0.5), (60, 0.5, 1.0, 0.5), (60, 1.01, 1.5, 0.5)]
    bass = [(36, 0.5, 0.9, 0.5)]  # plays with the second note, not the third
    after = cleaned(record_of(("Strings", strings), ("Bass", bass)), merge_gap_ms=20)
    assert notes_of(after, "Strings") == [(60, 0.0, 0.49), (60, 0.5, 1.5)]
    assert after.counts == {model.FRAGMENT_MERGED: 1}


def test_gap_at_the_merge_threshold_keeps_notes_apart():
    record = record_of(("Strings", [(60, 0.0, 0.3, 0.5), (60, 0.32, 0.6, 0.5)]))
    assert len(notes_of(cleaned(record, merge_gap_ms=20))) == 2
    assert len(notes_of(cleaned(record, merge_gap_ms=21))) == 1


# --- doubled tracks ---------------------------------------------------------------------


def test_three_doubled_tracks_fold_into_one_with_no_same_pitch_overlaps():
    a = [(60, 0.0, 0.5, 0.5), (62, 1.0, 1.5, 0.5)]
    b = [(60, 0.005, 0.505, 0.5), (64, 2.0, 2.5, 0.5)]
    c = [(60, 0.010, 0.49, 0.5), (62, 1.01, 1.4, 0.5)]
    after = cleaned(
        record_of(("Guitar", a), ("Bass", [(40, 0.0, 1.0, 0.5)]), ("guitar", b), ("GUITAR", c)), clean="light"
    )
    assert [i.name for i in after.instruments] == ["Guitar", "Bass"]
    assert notes_of(after, "Guitar") == [(60, 0.0, 0.505), (62, 1.0, 1.5), (64, 2.0, 2.5)]
    assert after.counts == {model.TRACK_FOLDED: 2, model.DOUBLE_MERGED: 3}


def test_same_pitch_onsets_more_than_a_16th_apart_stay_two_notes():
    a = [(60, 0.0, 1.0, 0.5)] + [(p, k, k + 0.5, 0.5) for k, p in enumerate((62, 64, 65, 67), 2)]
    b = [(60, 0.2, 0.5, 0.5)] + [(p, k + 0.004, k + 0.5, 0.5) for k, p in enumerate((62, 64, 65, 67), 2)]
    after = cleaned(record_of(("Piano", a), ("Piano", b)), clean="light")
    # Folded (4 of 5 notes double); 60 at 0.2 s starts while 60 sounds: a re-attack, cut by convert.
    assert [n for n in notes_of(after) if n[0] == 60] == [(60, 0.0, 1.0), (60, 0.2, 0.5)]
    song = convert_record(after, ConvertOptions())
    assert sorted(zip(song.tracks[0].on_tick.tolist(), song.tracks[0].off_tick.tolist()))[:2] == [(0, 192), (192, 480)]


def test_two_real_parts_with_one_name_stay_apart():
    soprano = [(72 + k % 3, k * 0.5, k * 0.5 + 0.5, 0.5) for k in range(16)]
    alto = [(64 + k % 3, k * 0.5, k * 0.5 + 0.5, 0.5) for k in range(16)]
    after = cleaned(record_of(("Choir Aahs", soprano), ("Choir Aahs", alto)), clean="light")
    assert [i.note_count for i in after.instruments] == [16, 16]
    assert after.counts == {}


# --- overtone ghosts --------------------------------------------------------------------

BLIPS = [(90, 5.0 + k, 5.01 + k, 0.5) for k in range(2)]  # two 10 ms flickers: the transcriber's marks


def test_octave_ghost_sounding_inside_its_fundamental_is_dropped():
    # a held 48 and an octave above it that starts 20 ms later and ends first: its 2nd harmonic
    record = record_of(("Cello", [(48, 1.0, 2.0, 0.5), (60, 1.02, 1.6, 0.5), *BLIPS]))
    after = cleaned(record, clean="light")
    assert notes_of(after) == [(48, 1.0, 2.0)]
    assert after.counts == {model.SHORT_DROPPED: 2, model.GHOST_DROPPED: 1}


@pytest.mark.parametrize(("interval", "dropped"), [(12, True), (19, True), (24, True), (7, False), (16, False)])
def test_only_the_2nd_3rd_and_4th_harmonics_are_ghosts(interval, dropped):
    record = record_of(("Flute", [(60, 1.0, 2.0, 0.5), (60 + interval, 1.0, 1.5, 0.5), *BLIPS]))
    after = cleaned(record, clean="light")
    assert len(after.instruments[0].pitch) == (1 if dropped else 2)
    assert after.counts.get(model.GHOST_DROPPED, 0) == int(dropped)


@pytest.mark.parametrize(
    ("upper", "dropped"),
    [
        ((72, 0.97, 1.5), True),  # starts 30 ms before its fundamental: within basic-pitch's onset spread
        ((72, 0.96, 1.5), False),  # 40 ms before: played first
        ((72, 1.5, 2.0), True),  # ends with it
        ((72, 1.5, 2.01), False),  # outlasts it: a played note
        ((72, 2.0, 2.5), False),  # starts as it ends
    ],
)
def test_ghost_must_start_with_its_fundamental_or_after_and_end_within_it(upper, dropped):
    record = record_of(("Oboe", [(60, 1.0, 2.0, 0.5), (upper[0], upper[1], upper[2], 0.5), *BLIPS]))
    assert len(cleaned(record, clean="light").instruments[0].pitch) == (1 if dropped else 2)


def test_octave_over_a_note_of_another_part_is_kept():
    record = record_of(("Cello", [(48, 1.0, 2.0, 0.5), *BLIPS]), ("Viola", [(60, 1.0, 1.5, 0.5)]))
    after = cleaned(record, clean="light")
    assert notes_of(after, "Viola") == [(60, 1.0, 1.5)]


@pytest.mark.parametrize(
    "name", ["Acoustic Grand Piano", "Distortion Guitar", "Orchestral Harp", "Marimba", "Zither X"]
)
def test_parts_whose_players_sound_octaves_keep_them(name):
    # two hands on keys, a power chord, a harp; and a name of no known role
    record = record_of((name, [(48, 1.0, 2.0, 0.5), (60, 1.0, 2.0, 0.5), *BLIPS]))
    after = cleaned(record, clean="light")
    assert [p for p, _, _ in notes_of(after)] == [48, 60]
    assert model.GHOST_DROPPED not in after.counts


def test_ghosts_are_dropped_beside_a_part_that_keeps_its_octaves():
    piano = [(36, 1.0, 2.0, 0.5), (48, 1.0, 2.0, 0.5), (60, 1.0, 1.5, 0.5)]
    record = record_of(("Piano", piano), ("Cello", [(36, 1.0, 2.0, 0.5), (48, 1.1, 1.5, 0.5), *BLIPS]))
    after = cleaned(record, clean="light")
    assert notes_of(after, "Piano") == notes_of(record, "Piano")
    assert notes_of(after, "Cello") == [(36, 1.0, 2.0)]
    assert after.counts[model.GHOST_DROPPED] == 1


def test_drums_and_an_empty_part_beside_ghosts_are_left_alone():
    drums = [(36, 1.0, 2.0, 1.0), (48, 1.0, 1.5, 1.0)]  # a long kick under a tom an octave up: drums are never ghosts
    record = record_of(("Drums", drums), ("Piano", []), ("Cello", []), ("Viola", [(48, 1.0, 2.0, 0.5), *BLIPS]))
    after = cleaned(record, clean="light")
    assert notes_of(after, "Drums") == notes_of(record, "Drums")
    assert notes_of(after, "Cello") == []
    assert model.GHOST_DROPPED not in after.counts


def test_record_without_a_transcribers_marks_keeps_its_octaves():
    # a written octave in a hand-made record: no flicker, no re-detection, so nothing says it was transcribed
    record = record_of(("Cello", [(48, 1.0, 2.0, 0.5), (60, 1.0, 1.5, 0.5)]))
    after = cleaned(record, clean="light")
    assert notes_of(after) == notes_of(record)
    assert after.counts == {}


def ghosts_of(start: np.ndarray, end: np.ndarray, key: np.ndarray, ghostly=None, *, alive=None) -> list[bool]:
    """``overtone_ghosts`` called as the clean-up calls it, every part ghostly and every note alive unless given.

    Its scratch column holds NaN here, which it must not read.
    """
    ghostly = [True] * (int(key.max(initial=0)) // 128 + 1) if ghostly is None else ghostly
    alive = np.ones(len(start), dtype=bool) if alive is None else alive
    return overtone_ghosts(start, end, key, ghostly, alive=alive, column=np.full(len(start) + 1, np.nan)).tolist()


def test_overtone_ghosts_never_read_the_part_below_for_a_low_pitch():
    # part 1's pitch 4 minus an octave is key 128 + 4 - 12 = part 0's pitch 120, held through it
    start, end = np.array([0.0, 0.5]), np.array([3.0, 1.0])
    assert ghosts_of(start, end, np.array([120, 128 + 4])) == [False, False]
    # the same times an octave apart in one part: a ghost
    assert ghosts_of(start, end, np.array([128 + 4, 128 + 16])) == [False, True]


def test_overtone_ghosts_skip_gone_notes_and_parts_that_play_octaves():
    # key 48 held 0-3 s, an octave above it inside: a ghost; part 1 (key 128 + ...) the same
    start, end = np.array([0.0, 1.0, 0.0, 1.0]), np.array([3.0, 2.0, 3.0, 2.0])
    key = np.array([48, 60, 128 + 48, 128 + 60])
    assert ghosts_of(start, end, key) == [False, True, False, True]
    assert ghosts_of(start, end, key, [True, False]) == [False, True, False, False]
    # a gone fundamental holds nothing up; a gone note is no ghost
    alive = np.array([False, True, True, False])
    assert ghosts_of(start, end, key, alive=alive) == [False] * 4


def test_count_at_or_before_counts_as_searchsorted_does():
    # keyed times as the ghost search makes them: large offsets, ties, runs of equal values
    span = 2 * 86_400.0
    column = np.array([3 * span + 0.1, 3 * span + 0.1, 3 * span + 0.5, 7 * span, 7 * span + 1e-7, 9 * span + 2.0])
    values = np.sort(np.concatenate([column, np.nextafter(column, -np.inf), np.nextafter(column, np.inf), [0.0, 1e12]]))
    ranks = np.arange(1, len(column) + 1, dtype=np.float64)
    found = _count_at_or_before(np.concatenate([[-np.inf], column]), ranks, values)
    assert found.tolist() == np.searchsorted(column, values, side="right").tolist()


@pytest.mark.parametrize("block", [1, 2, 3, 8192])
def test_running_max_is_the_accumulated_maximum(monkeypatch, block):
    # keyed ends as the joins and the ghost search make them: rises, descents, ties, a long note held over
    # shorter ones, a key change; small blocks put stretches across the blocks' edges
    monkeypatch.setattr("midiexport.stages.clean.RUNNING_BLOCK", block)
    span = 2 * 86_400.0
    cases = [
        [],
        [1.0],
        [1.0, 2.0, 3.0],
        [3.0, 2.0, 1.0],
        [1.0, 5.0, 2.0, 3.0, 4.0, 6.0, 5.5, 5.5, 7.0],
        [2.0, 2.0, 1.0, 2.0, 0.5, 3.0],
        [9.0] + [0.1 * k for k in range(20)] + [span + 1.0, span + 0.5, span + 2.0],
    ]
    for case in cases:
        values = np.array(case, dtype=np.float64)
        expected = np.maximum.accumulate(values) if len(values) else values
        _running_max(values)
        assert values.tolist() == expected.tolist()


def noisy_parts(seed: int) -> model.Record:
    """Six parts of a transcriber's noise: flickers, re-detections, octave ghosts, doubled names."""
    rng = np.random.default_rng(seed)
    parts = []
    for name in ("Violin", "Viola", "Cello", "Flute", "Choir Aahs", "Violin"):
        notes = []
        for k in range(400):
            pitch, start = int(rng.integers(48, 72)), k * 0.25 + float(rng.uniform(0, 0.02))
            end = start + float(rng.choice([0.02, 0.1, 0.24, 0.5]))
            notes.append((pitch, start, end, 0.8))
            if rng.random() < 0.2:  # an overtone ghost inside it, or a re-detection just after it
                notes.append((pitch + int(rng.choice([12, 19, 24])), start + 0.01, end - 0.01, 0.5))
            if rng.random() < 0.2:
                notes.append((pitch, end + 0.03, end + 0.2, 0.6))
        parts.append((name, notes))
    return record_of(*parts)


@pytest.mark.parametrize("clean", ["light", "strong"])
def test_blocks_of_any_size_give_the_same_clean_up(monkeypatch, clean):
    # small blocks put every block edge inside parts and inside each ghost search
    record = noisy_parts(7)
    whole = cleaned(record, clean=clean)
    assert whole.counts.get(model.GHOST_DROPPED) and whole.counts.get(model.SHORT_DROPPED)
    blocks = (
        ("GATHER_BLOCK", 301),
        ("GHOST_BLOCK", 17),
        ("OFFSET_BLOCK", 13),
        ("RUNNING_BLOCK", 11),
        ("INDEX_BLOCK", 5),
    )
    for name, block in blocks:
        monkeypatch.setattr(f"midiexport.stages.clean.{name}", block)
    assert_same_clean_up(cleaned(record, clean=clean), whole)


def assert_same_clean_up(mine: model.Record, theirs: model.Record) -> None:
    """The same counts, and every column of every part the same."""
    assert mine.counts == theirs.counts
    for a, b in zip(mine.instruments, theirs.instruments, strict=True):
        for column in ("start_s", "end_s", "pitch", "velocity"):
            assert np.array_equal(getattr(a, column), getattr(b, column))


@pytest.mark.parametrize("clean", ["light", "strong"])
def test_the_argsort_fallback_orders_the_notes_as_the_packed_sort(monkeypatch, clean):
    # one position bit is too few for any part: every note is ordered by the stable argsort instead
    record = noisy_parts(11)
    packed = cleaned(record, clean=clean)
    monkeypatch.setattr("midiexport.stages.clean.POSITION_BITS", 1)
    assert_same_clean_up(cleaned(record, clean=clean), packed)


def test_key_order_is_the_stable_order_of_the_keys():
    keys = np.array([130, 5, 130, 5, 0, 129, 5], dtype=np.int16)  # ties keep their order
    order, ordered = _key_order(keys)
    assert order.tolist() == [4, 1, 3, 6, 5, 0, 2]
    assert ordered.tolist() == [0, 5, 5, 5, 129, 130, 130] and ordered.dtype == np.int16


@pytest.mark.parametrize("position_bits", [17, 1])  # the packed sort, then the argsort fallback
def test_key_order_reads_a_part_sent_out_of_time_order_in_time_order(monkeypatch, position_bits):
    monkeypatch.setattr("midiexport.stages.clean.POSITION_BITS", position_bits)
    # part 0 sent out of time order (two runs), part 1 in order; keys are part * 128 + pitch
    start = np.array([2.0, 0.5, 1.0, 0.1, 0.2, 0.3])
    keys = np.array([5, 5, 3, 5, 129, 128], dtype=np.int16)
    moved = _time_orders(start, np.array([0, 4, 6]))
    assert [head for head, _ in moved] == [0]
    order, ordered = _key_order(keys, moved)
    assert order.tolist() == [2, 3, 1, 0, 5, 4]  # positions as sent: by key, then time
    assert ordered.tolist() == [3, 5, 5, 5, 128, 129]
    assert start.tolist() == [2.0, 0.5, 1.0, 0.1, 0.2, 0.3]  # the starts as sent, not sorted in place


def test_shifting_one_cleaned_part_leaves_the_others_as_they_were():
    # the cleaned parts' times are slices of the clean-up's own columns: a shift moves one part's only
    notes = [(60, 1.0, 1.5, 0.5), (72, 1.7, 1.71, 0.5), (64, 2.0, 2.5, 0.5)]  # a flicker: the parts are cleaned
    parts = [(name, notes) for name in ("Cello", "Bass", "Flute")]
    after = cleaned(record_of(*parts), clean="light", shifts=(("Bass", 100.0),))
    assert notes_of(after, "Cello") == notes_of(after, "Flute") == [(60, 1.0, 1.5), (64, 2.0, 2.5)]
    assert notes_of(after, "Bass") == [(60, 1.1, 1.6), (64, 2.1, 2.6)]


def test_ghost_is_found_among_many_notes_of_the_key_below():
    # the key below holds notes before, around and after the ghost; the one held through it counts
    start = np.array([0.0, 1.0, 1.2, 3.0, 1.5])
    end = np.array([0.5, 2.5, 1.3, 4.0, 2.0])
    key = np.array([48, 48, 48, 48, 60])
    assert ghosts_of(start, end, key) == [False, False, False, False, True]
    end[1] = 1.9  # no longer through it; a later one starts too late
    assert ghosts_of(start, end, key) == [False] * 5


def test_ghosts_option_overrides_the_preset_and_its_gate():
    unmarked = record_of(("Cello", [(48, 1.0, 2.0, 0.5), (60, 1.0, 1.5, 0.5)]))
    assert notes_of(cleaned(unmarked, ghosts=True)) == [(48, 1.0, 2.0)]  # alone, on any record
    assert notes_of(cleaned(unmarked, clean="light", ghosts=True)) == [(48, 1.0, 2.0)]
    marked = record_of(("Cello", [(48, 1.0, 2.0, 0.5), (60, 1.0, 1.5, 0.5), *BLIPS]))
    after = cleaned(marked, clean="light", ghosts=False)
    assert [p for p, _, _ in notes_of(after)] == [48, 60]
    assert after.counts == {model.SHORT_DROPPED: 2}


def test_ghost_of_a_fundamental_joined_from_pieces_is_dropped():
    # the fundamental arrives as a 40 ms piece and its re-detection: joined, it holds the octave above
    notes = [(48, 1.0, 1.04, 0.5), (48, 1.04, 2.0, 0.5), (60, 1.3, 1.9, 0.5), *BLIPS]
    after = cleaned(record_of(("Bassoon", notes)), clean="light")
    assert notes_of(after) == [(48, 1.0, 2.0)]
    assert after.counts == {model.REDETECT_JOINED: 1, model.SHORT_DROPPED: 2, model.GHOST_DROPPED: 1}


# --- voices -----------------------------------------------------------------------------


def test_strong_preset_caps_bass_at_two_notes_keeping_the_lowest():
    chord = [(p, 0.0, 1.0, 0.5) for p in (40, 47, 52, 56)]
    after = cleaned(record_of(("Electric Bass (finger)", chord)), clean="strong")
    assert [p for p, _, _ in notes_of(after)] == [40, 47]
    assert after.counts == {model.VOICE_DROPPED: 2}


def test_strong_preset_caps_a_lead_vocal_at_one_note_keeping_the_highest():
    after = cleaned(
        record_of(("Vocals", [(72, 0.0, 1.0, 0.5), (60, 0.0, 1.0, 0.5), (55, 0.5, 1.0, 0.5)])), clean="strong"
    )
    assert notes_of(after) == [(72, 0.0, 1.0)]  # the cap is judged at each onset


def test_light_preset_never_caps_voices():
    chord = [(p, 0.0, 1.0, 0.5) for p in (40, 47, 52, 56)]
    assert len(notes_of(cleaned(record_of(("Electric Bass (finger)", chord)), clean="light"))) == 4


def test_a_mid_tracks_own_program_gives_its_role_as_placement_reads_it():
    # "Track 2" names no instrument; its program 33 makes it a bass for placement, and so for the clean-up
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Track 2"),
                            mido.Message("program_change", channel=1, program=33)])  # fmt: skip
    track += [mido.Message("note_on", channel=1, note=p, velocity=80) for p in (40, 47, 52, 56)]
    track += [
        mido.Message("note_off", channel=1, note=p, time=480 if k == 0 else 0) for k, p in enumerate((40, 47, 52, 56))
    ]
    smf = mido.MidiFile(ticks_per_beat=480, tracks=[track])
    data = io.BytesIO()
    smf.save(file=data)
    record = read_midi(data.getvalue(), source="song.mid")
    after = cleaned(record, clean="strong")
    assert [p for p, _, _ in notes_of(after, "Track 2")] == [40, 47]  # the bass cap: the lowest two
    assert after.counts == {model.VOICE_DROPPED: 2}


def test_voice_cap_counts_notes_sounding_at_each_onset():
    start = np.array([0.0, 0.0, 0.0, 1.0])
    end = np.array([2.0, 2.0, 0.5, 1.5])
    pitch = np.array([72, 67, 64, 60])
    # At 1.0 s the two held notes above 60 still sound: 60 is dropped; 64 is third at 0 s.
    assert within_voice_cap(start, end, pitch, 2, low_wins=False).tolist() == [True, True, False, False]


# --- drums ------------------------------------------------------------------------------


def test_drum_one_tick_hit_is_kept_and_never_remapped():
    hits = [(36, 0.0, TICK, 0.9), (36, 0.002, 0.002 + TICK, 0.9), (99, 0.5, 0.5 + TICK, 0.5)]
    after = cleaned(record_of(("Drums", hits)), clean="strong")
    assert notes_of(after) == sorted((p, round(s, 9), round(e, 9)) for p, s, e, _ in hits)
    assert after.counts == {}


def test_doubled_drum_tracks_are_never_folded():
    hits = [(36, k * 0.5, k * 0.5 + TICK, 0.9) for k in range(8)]
    after = cleaned(record_of(("Drums", hits), ("Drums", hits)), clean="light")
    assert [i.note_count for i in after.instruments] == [8, 8]
    assert after.counts == {}


def test_drum_length_lengthens_short_hits_only():
    record = record_of(("Drums", [(36, 0.0, TICK, 0.9), (49, 1.0, 2.0, 0.9)]), ("Piano", [(60, 0.0, 0.01, 0.5)]))
    after = cleaned(record, drum_length_ms=50)
    assert notes_of(after, "Drums") == [(36, 0.0, 0.05), (49, 1.0, 2.0)]
    assert notes_of(after, "Piano") == [(60, 0.0, 0.01)]
    assert after.counts == {model.DRUM_LENGTHENED: 1}


# --- alignment and shifts ---------------------------------------------------------------


def _late_band(latency_s: float, pickup: tuple[float, ...] = ()) -> model.Record:
    beats = [0.5 + 0.25 * k for k in range(64)]
    drums = [(36 if k % 2 else 42, t, t + TICK, 0.8) for k, t in enumerate(beats)]
    bass = [(40 + k % 3, t + latency_s, t + latency_s + 0.2, 0.6) for k, t in enumerate(beats)]
    return record_of(("Drums", drums), ("Bass", bass + [(45, t, t + 0.1, 0.6) for t in pickup]))


def test_align_shifts_a_late_stem_onto_the_drums_and_reports_it():
    after = cleaned(_late_band(0.025), align=True)
    starts = np.sort(after.instruments[1].start_s)
    assert np.allclose(starts, 0.5 + 0.25 * np.arange(64), atol=1e-9)
    assert after.notices == ('"Bass" shifted by -25.0 ms (aligned against "Drums")',)
    assert after.counts == {model.NOTE_SHIFTED: 64}


def test_align_shift_that_would_move_a_note_before_0_s_holds_it_at_0_s():
    after = cleaned(_late_band(0.020, pickup=(0.005,)), align=True)
    assert notes_of(after, "Bass")[-1] == (45, 0.0, 0.085)  # 0.005 - 0.020 < 0: held at 0 s, the end keeps the shift
    assert after.counts == {model.NOTE_SHIFTED: 65, model.HELD_AT_ZERO: 1}
    assert after.notices == ('"Bass" shifted by -20.0 ms (aligned against "Drums")',)


def test_note_shifted_entirely_before_0_s_becomes_a_one_tick_note():
    after = cleaned(record_of(("Piano", [(60, 0.0, 0.1, 0.5), (62, 1.0, 1.5, 0.5)])), shifts=(("", -200.0),))
    assert notes_of(after) == [(60, 0.0, 0.0), (62, 0.8, 1.3)]
    song = convert_record(after, ConvertOptions())
    assert sorted(zip(song.tracks[0].on_tick.tolist(), song.tracks[0].off_tick.tolist())) == [(0, 1), (768, 1248)]


def test_shift_by_name_moves_only_that_instrument():
    record = record_of(("Piano", [(60, 1.0, 1.5, 0.5)]), ("Bass", [(40, 1.0, 1.5, 0.5)]))
    after = cleaned(record, shifts=(("bass", 100.0),))
    assert notes_of(after, "Bass") == [(40, 1.1, 1.6)]
    assert notes_of(after, "Piano") == [(60, 1.0, 1.5)]
    assert after.notices == ('"Bass" shifted by +100.0 ms (as asked)',)


def test_shift_naming_no_instrument_is_a_warning():
    after = cleaned(record_of(("Piano", [(60, 1.0, 1.5, 0.5)])), shifts=(("Banjo", 10.0),))
    assert notes_of(after) == [(60, 1.0, 1.5)]
    assert after.warnings == (
        'the shift for "Banjo" names no instrument, so nothing shifted for it (instruments: "Piano")',
    )


def test_shift_matches_names_as_program_does_and_offers_the_near_one():
    record = record_of(("Electric Bass (finger)", [(40, 1.0, 1.5, 0.5)]), ("Piano", [(60, 1.0, 1.5, 0.5)]))
    after = cleaned(record, shifts=(("electric bass finger", 10.0), ("Bass", 5.0)))
    assert notes_of(after, "Electric Bass (finger)") == [(40, 1.01, 1.51)]
    assert after.warnings == (
        'the shift for "Bass" names no instrument, so nothing shifted for it (instruments: '
        '"Electric Bass (finger)", "Piano"); did you mean "Electric Bass (finger)"?',
    )
    program_warnings = gm.unmatched_overrides(
        {"Bass": 38, "electric bass finger": 38}, [i.name for i in record.instruments]
    )
    assert program_warnings == [
        'a program was given for "Bass", but no instrument has that name (instruments: '
        '"Electric Bass (finger)", "Piano"); did you mean "Electric Bass (finger)"?'
    ]


def test_align_notices_tell_same_named_instruments_apart_by_their_number():
    band = _late_band(0.025)
    late = [(60 + k % 3, t + 0.015, t + 0.2, 0.6) for k, t in enumerate(0.5 + 0.25 * k for k in range(64))]
    record = record_of(*[(i.name, notes_of_raw(i)) for i in band.instruments], ("Bass", late))
    after = cleaned(record, align=True)
    assert after.notices == (
        '"Bass" (instrument 2) shifted by -25.0 ms (aligned against "Drums")',
        '"Bass" (instrument 3) shifted by -15.0 ms (aligned against "Drums")',
    )
    by_name = cleaned(record, shifts=(("bass", 10.0),))  # one name shifts every part of it: one notice says so
    assert by_name.notices == ('"Bass" shifted by +10.0 ms (as asked)',)


def notes_of_raw(instrument: model.Instrument) -> list[tuple[int, float, float, float]]:
    return list(zip(instrument.pitch.tolist(), instrument.start_s.tolist(), instrument.end_s.tolist(),
                    instrument.velocity.tolist()))  # fmt: skip


def test_one_instrument_shifted_twice_is_refused_naming_both():
    with pytest.raises(ValueError, match=r"^'Keyboard=-28' and 'keyboard=-10' shift the same instrument twice"):
        ConvertOptions(shifts=(("Keyboard", -28), ("keyboard", -10)))
    with pytest.raises(ValueError, match="'-250' and '10' shift the same instrument twice"):
        ConvertOptions(shifts=(("", -250), ("", 10)))
    assert ConvertOptions(shifts=(("", -250), ("Bass", -18))).shifts == (("", -250.0), ("Bass", -18.0))


def test_a_name_without_letters_is_not_every_instrument_in_the_twice_check():
    # "!!" keys as "" (name_key drops punctuation), as "" (every instrument) does: it names only instruments
    # whose names key as "" too, so shifting it and every instrument is no instrument twice.
    assert ConvertOptions(shifts=(("!!", 20), ("", 10))).shifts == (("!!", 20.0), ("", 10.0))
    with pytest.raises(ValueError, match="'!!=20' and '\\?\\?=5' shift the same instrument twice"):
        ConvertOptions(shifts=(("!!", 20), ("??", 5)))


def test_shifts_take_a_mapping_as_programs_do_and_a_string_is_a_type_error_naming_both_forms():
    assert ConvertOptions(shifts={"Bass": 20, "": -5}).shifts == (("Bass", 20.0), ("", -5.0))
    assert ConvertOptions(shifts={"Bass": 20}) == ConvertOptions(shifts=(("Bass", 20),))
    for given in ("Bass=20", ("Bass=20",), (("Bass", 20, 1),), 20):
        with pytest.raises(TypeError, match=r"shifts takes a mapping \{\"Bass\": \.\.\.\} or \(name, value\) pairs"):
            ConvertOptions(shifts=given)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="programs takes a mapping"):
        ConvertOptions(programs="Bass=33")  # type: ignore[arg-type]


def test_clean_record_defaults_its_options_as_convert_record_does():
    record = record_of(("Piano", [(60, 0.0, 0.01, 0.5), (62, 1.0, 1.5, 0.5)]))
    assert clean_record(record) is record  # no clean-up asked for: the record itself comes back
    with pytest.raises(TypeError, match="^clean_record: options must be ConvertOptions, got dict"):
        clean_record(record, {"clean": "light"})  # type: ignore[arg-type]


def _band_without_drums(bass_s: float, strings_s: float, *, early: tuple[float, ...] = ()) -> model.Record:
    """Piano on an 8th-note grid (the busiest part); bass on every other 8th and on the
    off-beats between; strings on those off-beats only, so they meet the piano nowhere
    within 80 ms and are linked to it through the bass alone."""
    grid = [0.5 + 0.25 * k for k in range(80)]
    between = [0.625 + 0.25 * k for k in range(32)]
    piano = [(60 + k % 5, t, t + 0.2, 0.5) for k, t in enumerate(grid)]
    bass = [(40, t + bass_s, t + bass_s + 0.1, 0.5) for t in grid[:64:2] + between]
    strings = [(67, t + strings_s, t + strings_s + 0.1, 0.5) for t in between]
    strings += [(72, t, t + 0.1, 0.5) for t in early]
    return record_of(("Acoustic Grand Piano", piano), ("Bass", bass), ("Strings", strings))


def test_align_without_drums_solves_latencies_from_every_pair_of_parts():
    after = cleaned(_band_without_drums(0.020, 0.030), align=True)
    assert after.notices == (
        '"Bass" shifted by -20.0 ms (aligned against "Acoustic Grand Piano")',
        '"Strings" shifted by -30.0 ms (aligned against "Acoustic Grand Piano")',
    )
    assert np.allclose(np.sort(after.instruments[2].start_s), 0.625 + 0.25 * np.arange(32), atol=1e-9)
    assert notes_of(after, "Acoustic Grand Piano") == notes_of(_band_without_drums(0.0, 0.0), "Acoustic Grand Piano")


def test_align_without_drums_moves_every_part_onto_the_earliest_one():
    # the bass sits 20 ms before the busiest part (the piano): the piano and strings move onto it
    after = cleaned(_band_without_drums(-0.020, 0.010), align=True)
    assert after.notices == (
        '"Acoustic Grand Piano" shifted by -20.0 ms (aligned against "Bass")',
        '"Strings" shifted by -30.0 ms (aligned against "Bass")',
    )
    assert np.allclose(np.sort(after.instruments[0].start_s), 0.48 + 0.25 * np.arange(80), atol=1e-9)


def test_align_without_drums_holds_a_note_shifted_before_0_s_at_0_s():
    after = cleaned(_band_without_drums(0.020, 0.030, early=(0.010,)), align=True)
    assert (72, 0.0, 0.08) in notes_of(after, "Strings")  # 0.010 - 0.030 < 0: held at 0 s, the end keeps the shift
    assert after.counts[model.HELD_AT_ZERO] == 1


def test_pair_that_disagrees_with_the_others_is_dropped_as_an_outlier():
    # latency(a) - latency(b) = delay: 1 is 20 ms after 0, 2 is 10 ms after 1; the direct
    # pair (2, 0) claims 60 ms where the other two say 30 ms.
    pairs = [(1, 0, 0.020, 100), (2, 1, 0.010, 100), (2, 0, 0.060, 50)]
    solved, fits = solve_offsets(0, pairs)
    assert solved == pytest.approx({1: 0.020, 2: 0.030})
    assert fits.tolist() == [True, True, False]


def test_part_no_pair_links_to_the_anchor_is_left_alone():
    solved, fits = solve_offsets(0, [(1, 0, 0.020, 100), (3, 2, 0.010, 100)])
    assert solved == pytest.approx({1: 0.020})
    assert fits.tolist() == [True, False]


def _weak_strings(confirmed: bool) -> model.Record:
    """``_band_without_drums(0.020, ...)`` with strings that meet the bass on 12 of the
    bass's off-beats, 30 ms late, between 6 strays 45-70 ms off: a pair on 12 agreeing
    onsets, under the 16 a part needs against the drums. ``confirmed``: they also meet the
    piano, alone after the bass stops, on 12 of its 8ths, 30 ms late, so a second pair agrees."""
    grid = [0.5 + 0.25 * k for k in range(80)]
    between = [0.625 + 0.25 * k for k in range(32)]
    offsets = (-0.060, 0.065, -0.050, 0.070, -0.045, 0.060)
    onsets = [between[2 * k] + 0.030 for k in range(12)] + [between[2 * k + 1] + d for k, d in enumerate(offsets)]
    if confirmed:
        onsets += [grid[66 + k] + 0.030 for k in range(12)]
    record = _band_without_drums(0.020, 0.0)
    return record_of(
        *[(i.name, list(zip(i.pitch.tolist(), i.start_s.tolist(), i.end_s.tolist(), i.velocity.tolist())))
          for i in record.instruments[:2]],
        ("Strings", [(67, t, t + 0.1, 0.5) for t in sorted(onsets)]),
    )  # fmt: skip


def shifts_ms(record: model.Record) -> dict[str, float]:
    """{instrument: shift in ms} from the alignment notices, each against the piano."""
    found = {}
    for notice in cleaned(record, align=True).notices:
        name, rest = notice[1:].split('" shifted by ')
        assert rest.endswith(' ms (aligned against "Acoustic Grand Piano")')
        found[name] = float(rest.split(" ms")[0])
    return found


def test_part_on_one_weak_pair_is_left_alone_until_a_second_pair_confirms_it():
    # the strings' strays 45-70 ms off weigh on the pairs' delays a little (Huber): 0.5 ms allowed
    assert shifts_ms(_weak_strings(confirmed=False)) == pytest.approx({"Bass": -20.0}, abs=0.5)
    assert shifts_ms(_weak_strings(confirmed=True)) == pytest.approx({"Bass": -20.0, "Strings": -30.0}, abs=0.5)


def _with_choir(record: model.Record) -> model.Record:
    """``record`` (``_weak_strings``) with strings after 21 s too, and a choir that meets
    nothing but them: 10 ms after 12 of those onsets and 45-70 ms off 6 more, a weak pair."""
    late = [21.0 + 0.25 * k for k in range(18)]
    offsets = (0.050, -0.065, 0.045, -0.070, 0.060, -0.055)
    choir = [t + 0.010 for t in late[:12]] + [t + d for t, d in zip(late[12:], offsets)]
    rows = {i.name: list(zip(i.pitch.tolist(), i.start_s.tolist(), i.end_s.tolist(), i.velocity.tolist()))
            for i in record.instruments}  # fmt: skip
    rows["Strings"] += [(67, t, t + 0.1, 0.5) for t in late]
    return record_of(*rows.items(), ("Choir Aahs", [(64, t, t + 0.1, 0.5) for t in choir]))


def test_weak_pair_with_a_part_left_alone_confirms_nothing():
    # the choir, on one weak pair, is left alone; that pair fits whatever the strings' latency
    # is, so it is no second pair for them: strings on one weak pair with the bass stay alone
    assert shifts_ms(_with_choir(_weak_strings(confirmed=False))) == pytest.approx({"Bass": -20.0}, abs=0.5)
    expected = {"Bass": -20.0, "Strings": -30.0}
    assert shifts_ms(_with_choir(_weak_strings(confirmed=True))) == pytest.approx(expected, abs=0.5)


def test_align_without_drums_measures_a_widely_spread_stem_by_its_centre():
    # a sung part on the piano's onsets, late by 15 to 45 ms in even steps (a slow attack heard
    # late by a varying amount): every 21 ms window from 25 to 35 ms holds as many onsets, so
    # a histogram's peak sits on the plateau's first edge; the Huber estimate on its centre
    grid = [0.5 + 0.25 * k for k in range(78)]
    delays = [0.015 + 0.0025 * (k % 13) for k in range(78)]  # 6 rounds of 15, 17.5, ..., 45 ms
    record = record_of(
        ("Acoustic Grand Piano", [(60, t, t + 0.2, 0.5) for t in grid]),
        ("Choir Aahs", [(64, t + d, t + d + 0.2, 0.5) for t, d in zip(grid, delays)]),
    )
    assert shifts_ms(record) == pytest.approx({"Choir Aahs": -30.0}, abs=0.05)


def test_huber_location_bounds_a_strays_pull_by_the_bend_point():
    # 20 differences at 20 ms and one at 70 ms: the stray counts as if 10 ms (the bend point)
    # past the estimate, so 20 * (0.020 - m) + 0.010 = 0 and m = 20.5 ms (the mean: 22.4 ms)
    diff = np.array([0.020] * 20 + [0.070, -0.030, -0.030])
    row = np.array([0] * 21 + [1, 1])
    found = huber_locations(diff, row, np.array([0.020, 0.0, 0.005]))
    assert found == pytest.approx([0.0205, -0.030, 0.005], abs=1e-5)  # row 2 has no values: its start is kept


def test_huber_location_solves_hubers_estimating_equation():
    rng = np.random.default_rng(7)
    diff = np.concatenate([rng.gamma(2.0, 0.012, 200), rng.uniform(-0.08, 0.08, 60)])  # skewed bump and strays
    row = np.repeat([0, 1], 130)
    found = huber_locations(diff, row, np.zeros(2))
    for r in (0, 1):
        psi = np.clip(diff[row == r] - found[r], -HUBER_BEND_S, HUBER_BEND_S)  # Huber's psi
        assert abs(psi.sum()) < 1e-3 * HUBER_BEND_S * (row == r).sum()


def test_align_leaves_an_aligned_song_alone():
    assert cleaned(_late_band(0.0), align=True).notices == ()
    assert cleaned(_band_without_drums(0.0, 0.0), align=True).notices == ()


def _marked_band(latency_s: float, flickers: int) -> model.Record:
    """``_late_band``'s 64 bass notes plus ``flickers`` 10 ms blips between the beats (the
    transcriber's marks), far from every drum hit so they do not weigh on the latency."""
    record = _late_band(latency_s)
    drums, bass = record.instruments
    blips = [(70, 0.625 + 0.5 * k, 0.635 + 0.5 * k, 0.6) for k in range(flickers)]
    rows = list(zip(bass.pitch.tolist(), bass.start_s.tolist(), bass.end_s.tolist(), bass.velocity.tolist()))
    drum_rows = list(zip(drums.pitch.tolist(), drums.start_s.tolist(), drums.end_s.tolist(), drums.velocity.tolist()))
    return record_of(("Drums", drum_rows), ("Bass", rows + blips))


@pytest.mark.parametrize(("flickers", "aligned"), [(0, False), (1, False), (2, True), (8, True)])
def test_strong_preset_aligns_only_a_record_with_a_transcribers_marks(flickers, aligned):
    # 1 blip among 65 melodic notes is 1.5% (under the 2% share); 2 among 66 are 3%
    after = cleaned(_marked_band(0.025, flickers), clean="strong")
    notice = '"Bass" shifted by -25.0 ms (aligned by the clean-up against "Drums")'
    assert after.notices == ((notice,) if aligned else ())
    assert after.counts.get(model.SHORT_DROPPED, 0) == flickers
    assert after.counts.get(model.NOTE_SHIFTED, 0) == (64 if aligned else 0)


def test_clean_preset_shifts_its_own_columns_and_never_the_records():
    # the cleaned parts are shifted where they are; the input record's notes stay as sent
    record = _marked_band(0.025, 8)
    before = [(i.start_s.copy(), i.end_s.copy()) for i in record.instruments]
    after = cleaned(record, clean="strong", shifts=(("Drums", 10.0),))
    for instrument, (start, end) in zip(record.instruments, before):
        assert np.array_equal(instrument.start_s, start) and np.array_equal(instrument.end_s, end)
    assert np.allclose(np.sort(after.instruments[1].start_s), 0.5 + 0.25 * np.arange(64), atol=1e-9)
    assert np.allclose(after.instruments[0].start_s, record.instruments[0].start_s + 0.010)


def test_strong_preset_keeps_a_clean_records_offsets():
    # a bass laid back 25 ms on a hand-made record: the players' feel, left as it is
    record = _late_band(0.025)
    after = cleaned(record, clean="strong")
    assert after.notices == ()
    assert notes_of(after, "Bass") == notes_of(record, "Bass")


def test_light_preset_never_aligns():
    # the light preset is the note rules alone: a marked record's late bass stays late
    record = _marked_band(0.025, 8)
    after = cleaned(record, clean="light")
    assert model.NOTE_SHIFTED not in after.counts and after.counts[model.SHORT_DROPPED] == 8
    assert notes_of(after, "Bass")[:64] == notes_of(record, "Bass")[:64]


def test_no_align_turns_the_strong_presets_alignment_off():
    after = cleaned(_marked_band(0.025, 8), clean="strong", align=False)
    assert after.notices == ()
    assert model.NOTE_SHIFTED not in after.counts


def test_align_measures_a_strummed_chord_from_its_first_note():
    # a guitar strums 4-string chords 20 ms late, each string 8 ms after the one before
    beats = [0.5 + 0.25 * k for k in range(64)]
    drums = [(36, t, t + TICK, 0.8) for t in beats]
    strums = [(52 + 5 * s, t + 0.020 + 0.008 * s, t + 0.2, 0.6) for t in beats for s in range(4)]
    after = cleaned(record_of(("Drums", drums), ("Guitar", strums)), align=True)
    assert after.notices == ('"Guitar" shifted by -20.0 ms (aligned against "Drums")',)


@pytest.mark.parametrize(("rival_s", "shifted"), [(None, True), (-0.045, False)])
def test_align_leaves_a_part_whose_onsets_sit_on_two_grids_alone(rival_s, shifted):
    # half the onsets 25 ms after a drum hit, half 45 ms before one: which is the latency?
    beats = [0.5 + 0.5 * k for k in range(64)]
    drums = [(36, t, t + TICK, 0.8) for t in beats]
    late = [(60, t + 0.025, t + 0.2, 0.6) for t in beats[::2]]
    early = [] if rival_s is None else [(62, t + rival_s, t + 0.2, 0.6) for t in beats[1::2]]
    after = cleaned(record_of(("Drums", drums), ("Vibraphone", late + early)), align=True)
    assert after.notices == (('"Vibraphone" shifted by -25.0 ms (aligned against "Drums")',) if shifted else ())


def test_first_onsets_keeps_each_groups_first_note_and_spreads_a_sample():
    times = np.array([0.0, 0.01, 0.02, 0.5, 0.5, 1.0, 1.029, 2.0])
    assert first_onsets(times).tolist() == [0.0, 0.5, 1.0, 2.0]
    assert sampled_onsets([np.arange(100) * 0.1], 4)[0].tolist() == pytest.approx([0.0, 3.3, 6.6, 9.9])


def test_first_onsets_sorts_a_part_out_of_time_order_first():
    times = np.array([1.0, 0.0, 0.5, 0.01, 2.0, 1.029])  # a folded track: two runs
    assert first_onsets(times).tolist() == [0.0, 0.5, 1.0, 2.0]
    assert sampled_onsets([np.arange(100)[::-1] * 0.1], 4)[0].tolist() == pytest.approx([0.0, 3.3, 6.6, 9.9])


def test_sampled_onsets_of_several_parts_are_each_parts_own_sample():
    parts = [
        np.array([0.0, 0.01, 0.5, 1.0]),
        np.zeros(0),  # a part with no note
        np.array([1.0, 0.0, 0.5, 0.01, 2.0, 1.029]),  # out of time order: two runs
        np.arange(100) * 0.1,  # more groups than the sample holds
        np.array([3.0]),
    ]
    joined, sizes = sampled_onsets(parts, 4)
    assert sizes.tolist() == [3, 0, 4, 4, 1]
    assert joined[:3].tolist() == [0.0, 0.5, 1.0]
    assert joined[3:7].tolist() == [0.0, 0.5, 1.0, 2.0]
    assert joined[7:11].tolist() == pytest.approx([0.0, 3.3, 6.6, 9.9])
    assert joined[11:].tolist() == [3.0]
    assert parts[2].tolist() == [1.0, 0.0, 0.5, 0.01, 2.0, 1.029]  # the caller's column is left as sent


def test_extend_runs_gives_each_runs_first_note_its_latest_end():
    end = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    join = np.array([False, True, True, False, True, False])  # runs: notes 0-2, 3-4, 5
    _extend_runs(end, np.flatnonzero(join))
    assert end[~join].tolist() == [3.0, 5.0, 6.0]
    assert end[join].tolist() == [3.0, 2.0, 4.0]  # the joined notes' own ends are left (they are dropped)
    alone = np.array([1.0, 3.0, 2.0])
    _extend_runs(alone, np.zeros(0, dtype=np.int64))
    assert alone.tolist() == [1.0, 3.0, 2.0]


def test_group_keys_key_each_note_by_part_then_pitch():
    parts = [model.Instrument(name, np.zeros(len(p)), np.ones(len(p)), np.array(p), np.ones(len(p))) for name, p in
             (("A", [60, 0]), ("B", []), ("C", [127]))]  # fmt: skip
    keys = group_keys(parts, [2, 0, 1])
    assert keys.tolist() == [60, 0, 2 * 128 + 127] and keys.dtype == np.int16
    many = [parts[2]] * 300  # past 255 parts the keys no longer fit 16 bits
    assert group_keys(many, [1] * 300)[-1] == 299 * 128 + 127


# --- options and command line -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("clean", "medium", "clean must be one of light, strong, got 'medium'"),
        ("min_note_ms", -1.0, "min_note_ms must be in 0..10000 ms, got -1.0"),
        ("drum_length_ms", float("nan"), "drum_length_ms must be in 0..10000 ms, got nan"),
        ("shifts", (("Bass", 1e9),), "shift must be in -60000..60000 ms, got 1000000000.0"),
        ("key", "D major", "key must be one of auto, off, got 'D major'"),
    ],
)
def test_clean_options_outside_their_range_are_refused(field, value, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        ConvertOptions(**{field: value})


def test_cli_clean_counts_changes_in_the_summary(tmp_path):
    payload = record_payload({"Piano": [(60, 0.0, 0.5, 0.5), (64, 1.0, 1.01, 0.5)], "Drums": [(36, 0.0, TICK, 1.0)]})
    source = tmp_path / "a.json"
    source.write_text(json.dumps(payload))
    result = run("convert", str(source), "-o", str(tmp_path / "a.mid"), "--clean", "--drum-length", "40")
    assert result.exit_code == 0, result.stderr
    assert f"{source}: 1 short note dropped (--clean); 1 drum hit lengthened (--drum-length)" in result.stderr
    midi = pretty((tmp_path / "a.mid").read_bytes())
    assert [len(i.notes) for i in midi.instruments] == [1, 1]


@pytest.mark.parametrize(
    ("words", "cleaned"),
    [
        (["--clean", "{a}"], True),  # a bare --clean before the input: light, the input stays an input
        (["--clean", "{a}", "--clean", "strong"], True),  # the last one given wins, as for any option
        (["{a}", "--clean"], True),
        (["--clean", "light", "{a}"], True),
        (["--clean", "--", "{a}"], True),  # -- ends the options; the bare --clean before it is light
        (["{a}"], False),
    ],
)
def test_cli_bare_clean_takes_no_input_for_a_preset(tmp_path, words, cleaned):
    source = tmp_path / "a.json"
    source.write_text(json.dumps(record_payload({"Piano": [(60, 0.0, 0.5, 0.5), (64, 1.0, 1.01, 0.5)]})))
    result = run("convert", "-o", str(tmp_path / "a.mid"), *(w.format(a=source) for w in words))
    assert result.exit_code == 0, result.stderr
    assert (f"{source}: 1 short note dropped (--clean)" in result.stderr) == cleaned
    assert len(pretty((tmp_path / "a.mid").read_bytes()).instruments[0].notes) == (1 if cleaned else 2)


@pytest.mark.parametrize(
    ("words", "value"), [(["--clean=a.json", "x.json"], "a.json"), (["--clean", "medium", "x.json"], "medium")]
)
def test_cli_clean_refuses_a_word_meant_as_a_preset_that_names_none(tmp_path, words, value):
    result = run("convert", *words)  # letters naming no file after a bare --clean: a misspelt preset
    assert result.exit_code == 2
    assert f"'{value}' is not one of 'light', 'strong'" in result.stderr


def test_cli_clean_presets_are_read_whatever_their_case(tmp_path):
    source = tmp_path / "a.json"
    source.write_text(json.dumps(record_payload({"Piano": [(60, 0.0, 0.5, 0.5), (64, 1.0, 1.01, 0.5)]})))
    result = run("convert", "--clean", "Strong", str(source), "-o", str(tmp_path / "a.mid"))
    assert result.exit_code == 0, result.stderr
    assert f"{source}: 1 short note dropped (--clean)" in result.stderr


def test_cli_counts_overtone_ghosts_in_the_summary_and_the_report(tmp_path):
    payload = record_payload({"Cello": [(48, 1.0, 2.0, 0.5), (60, 1.02, 1.6, 0.5), *BLIPS]})
    source, report = tmp_path / "a.json", tmp_path / "report.json"
    source.write_text(json.dumps(payload))
    args = ["convert", str(source), "-o", str(tmp_path / "a.mid"), "--clean", "--report", str(report)]
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert f"{source}: 2 short notes dropped (--clean); 1 overtone ghost dropped (--clean, --ghosts)" in result.stderr
    [outcome] = json.loads(report.read_text())["results"]
    assert outcome["counts"] == {model.SHORT_DROPPED: 2, model.GHOST_DROPPED: 1}  # the report keeps the library's kinds
    assert [n.pitch for n in pretty((tmp_path / "a.mid").read_bytes()).instruments[0].notes] == [48]
    result = run(*args, "--overwrite", "--no-ghosts")
    assert result.exit_code == 0, result.stderr
    assert f"{source}: 2 short notes dropped (--clean)\n" in result.stderr
    assert sorted(n.pitch for n in pretty((tmp_path / "a.mid").read_bytes()).instruments[0].notes) == [48, 60]


def test_cli_no_align_keeps_the_strong_presets_alignment_off(tmp_path):
    record = _marked_band(0.025, 8)
    payload = record_payload(
        {i.name: list(zip(i.pitch.tolist(), i.start_s.tolist(), i.end_s.tolist(), i.velocity.tolist()))
         for i in record.instruments}
    )  # fmt: skip
    source = tmp_path / "a.json"
    source.write_text(json.dumps(payload))
    found = {}
    for flags in ((), ("--no-align",)):
        out = tmp_path / f"{len(flags)}.mid"
        result = run("convert", str(source), "-o", str(out), "--clean=strong", *flags)
        assert result.exit_code == 0, result.stderr
        found[flags] = result.stderr
    assert '"Bass" shifted by -25.0 ms (--clean, against "Drums")' in found[()]
    assert "shifted" not in found[("--no-align",)]


def test_cli_shift_reports_and_moves_notes(tmp_path):
    source = tmp_path / "a.json"
    source.write_text(json.dumps(record_payload({"Piano": [(60, 1.0, 1.5, 0.5)]})))
    result = run("convert", str(source), "-o", str(tmp_path / "a.mid"), "--shift=-250")
    assert result.exit_code == 0, result.stderr
    assert f"{source}: every instrument shifted by -250.0 ms (--shift)" in result.stderr
    [note] = pretty((tmp_path / "a.mid").read_bytes()).instruments[0].notes
    assert (note.start, note.end) == (0.75, 1.25)


@pytest.mark.parametrize("value", ["Bass=", "=5", "fast", "Bass=inf", "1e9"])
def test_cli_refuses_a_malformed_shift(tmp_path, value):
    result = run("convert", "x.json", f"--shift={value}")
    assert result.exit_code == 2
    assert "is not MS or NAME=MS" in result.stderr


def test_voice_cap_agrees_with_a_plain_count_on_random_notes():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        start = np.round(rng.uniform(0, 5, n), 2)
        end = start + np.round(rng.uniform(0.01, 3, n), 2)
        pitch = rng.integers(30, 90, n)
        cap, low_wins = int(rng.integers(1, 5)), bool(rng.integers(0, 2))
        rank = -pitch if low_wins else pitch
        plain = [((start <= start[i]) & (end > start[i]) & (rank > rank[i])).sum() < cap for i in range(n)]
        assert within_voice_cap(start, end, pitch, cap, low_wins=low_wins).tolist() == plain


def test_without_drums_only_the_parts_with_the_most_onsets_are_aligned():
    # Parts of one rhythm, each 20 ms later than the one before; the first parts have one
    # onset more than the rest, so they are the ones aligned.
    grid = np.arange(64) * 0.5
    onsets = [grid[: 64 - (k >= MAX_ALIGN_PARTS)] + 0.020 * (k % 3) for k in range(MAX_ALIGN_PARTS + 8)]
    found = band_latencies(onsets, onsets)
    assert found and {k for k, _, _ in found} <= set(range(MAX_ALIGN_PARTS))
    assert {k for k, _, _ in found} == {k for k in range(MAX_ALIGN_PARTS) if k % 3}
