from __future__ import annotations

import numpy as np
import pytest

from conftest import channel_events, mido_file
from midiexport.model import Song, Track
from midiexport.outputs.smf import encode_track, text_bytes, time_signature, vlq, write_midi


def track(name: str, channel: int, program: int, notes: list[tuple[int, int, int, int]]) -> Track:
    on, off, pitch, velocity = (np.array([n[k] for n in notes], dtype=np.int64) for k in range(4))
    return Track(name, channel, program, channel == 9, on, off, pitch, velocity)


def one_note_song() -> Song:
    return Song(title="T", ppq=480, tempos=((0, 500_000),), end_tick=480,
                tracks=(track("Bass", 0, 33, [(0, 480, 44, 100)]),))  # fmt: skip


def test_format_1_bytes_of_a_one_note_song():
    expected = bytes.fromhex(
        # MThd, length 6, format 1, 2 tracks, 480 ticks per quarter
        "4d546864 00000006 0001 0002 01e0"
        # conductor MTrk, 32 bytes
        "4d54726b 00000020"
        "00 ff03 01 54"  # track name "T"
        "00 ff58 04 04021808"  # 4/4, 24 clocks per click, 8 32nds per quarter
        "00 ff51 03 07a120"  # tempo 500,000 µs per quarter (120 BPM)
        "00 ff01 03 405454"  # text "@TT": the title, as karaoke files give it (MuseScore's score title)
        "8360 ff2f00"  # end of track at tick 480
        # instrument MTrk, 24 bytes
        "4d54726b 00000018"
        "00 ff03 04 42617373"  # track name "Bass"
        "00 c0 21"  # program change, channel 1, program 33
        "00 90 2c 64"  # note on, pitch 44, velocity 100
        "8360 80 2c 40"  # 480 ticks later: note off, release velocity 64
        "00 ff2f00"  # end of track
    )
    assert write_midi(one_note_song()) == expected


def test_format_0_is_one_track_with_everything():
    midi = mido_file(write_midi(one_note_song(), format=0))
    assert (midi.type, len(midi.tracks)) == (0, 1)
    kinds = [m.type for m in midi.tracks[0]]
    assert kinds == ["track_name", "time_signature", "set_tempo", "text", "channel_prefix", "instrument_name",
                     "program_change", "note_on", "note_off", "end_of_track"]  # fmt: skip


def test_source_texts_are_karaoke_information_after_the_title():
    song = Song("My Song", 480, ((0, 500_000),), 480, (track("Bass", 0, 33, [(0, 480, 44, 100)]),),
                texts=("source: task t1",))  # fmt: skip
    texts = [m.text for m in mido_file(write_midi(song)).tracks[0] if m.type == "text"]
    assert texts == ["@TMy Song", "@Isource: task t1"]


def test_format_0_sets_up_the_drum_channel_after_the_melodic_ones():
    song = Song("T", 480, ((0, 500_000),), 480, (track("Drums", 9, 0, [(0, 480, 36, 100)]),
                                                 track("Bass", 0, 33, [(0, 480, 40, 100)])))  # fmt: skip
    programs = [m.channel for m in mido_file(write_midi(song, format=0)).tracks[0] if m.type == "program_change"]
    assert programs == [0, 9]  # MuseScore gives the first program change to its first staff


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (0x40, "40"), (0x7F, "7f"), (0x80, "8100"), (0x2000, "c000"), (0x3FFF, "ff7f"),
     (0x4000, "818000"), (0x1FFFFF, "ffff7f"), (0x200000, "81808000"), (0x0FFFFFFF, "ffffff7f")],
)  # fmt: skip
def test_variable_length_quantities_match_the_smf_spec(value, encoded):
    assert vlq(value) == bytes.fromhex(encoded)


def test_vectorised_deltas_match_the_spec_examples():
    # Deltas of every VLQ length, read back by mido.
    ticks = [
        0,
        0x7F,
        0x7F + 0x80,
        0x7F + 0x80 + 0x3FFF,
        0x7F + 0x80 + 0x3FFF + 0x4000,
        0x7F + 0x80 + 0x3FFF + 0x4000 + 0x200000,
    ]
    notes = [(t, t + 1, 60, 100) for t in ticks]
    song = Song("T", 480, ((0, 500_000),), ticks[-1] + 1, (track("P", 0, 0, notes),))
    ons = [e[0] for e in channel_events(write_midi(song)) if e[1] == "note_on"]
    assert ons == ticks


def test_offs_before_ons_at_one_tick_then_channel_then_pitch():
    song = Song("T", 480, ((0, 500_000),), 960, (
        track("A", 0, 0, [(0, 480, 64, 90), (480, 960, 60, 90)]),
        track("B", 1, 0, [(0, 480, 62, 90), (480, 960, 61, 90)]),
    ))  # fmt: skip
    events = channel_events(write_midi(song, format=0))
    at_480 = [(kind, channel, note) for tick, kind, channel, note, _ in events if tick == 480]
    assert at_480 == [("note_off", 0, 64), ("note_off", 1, 62), ("note_on", 0, 60), ("note_on", 1, 61)]


def test_every_track_ends_at_the_song_end():
    song = Song("T", 480, ((0, 500_000),), 5000, one_note_song().tracks)
    midi = mido_file(write_midi(song))
    assert [sum(m.time for m in t) for t in midi.tracks] == [5000, 5000]


def test_meta_events_at_later_ticks_sit_between_notes():
    chunk = encode_track([(0, b"\xff\x51\x03\x07\xa1\x20"), (480, b"\xff\x51\x03\x0f\x42\x40")],
                         one_note_song().tracks, 960)  # fmt: skip
    # tempo at 0, note on, tempo change at 480 before the note-off at 480, end at 960
    assert chunk[8:] == bytes.fromhex("00ff510307a120 00902c64 8360ff51030f4240 00802c40 8360ff2f00")


def test_names_are_cleaned_and_cut_to_255_bytes():
    assert text_bytes("a\x00b\nc") == b"a b c"
    assert len(text_bytes("é" * 1000)) == 254  # 127 two-byte characters, never half of one
    assert text_bytes("钢铁侠") == "钢铁侠".encode()


def test_format_must_be_0_or_1():
    with pytest.raises(ValueError, match="format must be 0 or 1, got 2"):
        write_midi(one_note_song(), format=2)


@pytest.mark.parametrize(("meter", "clocks"), [((4, 4), 24), ((3, 4), 24), ((2, 4), 24), ((6, 8), 36), ((12, 8), 36)])
def test_time_signature_clicks_once_a_beat_dotted_quarters_in_compound_meters(meter, clocks):
    assert time_signature(*meter) == bytes([meter[0], meter[1].bit_length() - 1, clocks, 8])
