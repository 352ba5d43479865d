"""The tolerant .mid reader (stages/midifile.py): real Suno stems and damaged variants of them."""

from __future__ import annotations

import io
import struct

import mido
import numpy as np
import pytest
import smf_damage

from conftest import suno_stems
from midiexport.errors import InputError
from midiexport.outputs.smf import vlq
from midiexport.stages import midifile
from midiexport.stages.midifile import merge_stems, parse_smf, read_midi, stem_title


def mido_starts(data: bytes) -> list[tuple[int, float]]:
    """(pitch, start s) of every note, read by mido (an independent reader) through the tempo map."""
    notes, now = [], 0.0
    for message in mido.MidiFile(file=io.BytesIO(data)):
        now += message.time
        if message.type == "note_on" and message.velocity:
            notes.append((message.note, now))
    return sorted(notes)


@pytest.mark.parametrize("stem", ["Bass", "Drums", "Keyboard"])
def test_real_stem_notes_match_mido_through_the_tempo_map(stem):
    data = suno_stems()[stem]
    record = read_midi(data, source=f"Midnight Concrete ({stem}).mid")
    [instrument] = record.instruments
    ours = sorted(zip(instrument.pitch.tolist(), instrument.start_s.tolist()))
    theirs = mido_starts(data)
    assert len(ours) == len(theirs)
    assert [p for p, _ in ours] == [p for p, _ in theirs]
    assert np.abs(np.array([s for _, s in ours]) - np.array([s for _, s in theirs])).max() < 1e-9


def test_real_stems_give_names_programs_drums_title_and_the_beat_map():
    records = {stem: read_midi(data, source=f"Midnight Concrete ({stem}).mid") for stem, data in suno_stems().items()}
    facts = {stem: (r.instruments[0].name, r.instruments[0].note_count, r.instruments[0].program,
                    r.instruments[0].is_drum) for stem, r in records.items()}  # fmt: skip
    assert facts == {"Bass": ("Bass", 241, 32, None), "Drums": ("Drums", 313, None, True),
                     "Keyboard": ("Keyboard", 885, 0, None)}  # fmt: skip
    bass = records["Bass"]
    assert bass.title == "Midnight Concrete" and bass.source_ppq == 480 and len(bass.source_tempos) == 185
    assert bass.counts == {midifile.CONTROLLERS_LEFT_OUT: 1}  # the stray CC7 = 100 after the last note
    assert bass.beat_map_s is not None and bass.beat_map_s[1] == pytest.approx(0.6866)


def test_stems_of_one_song_join_into_one_record():
    records = [read_midi(data, source=f"Midnight Concrete ({stem}).mid") for stem, data in suno_stems().items()]
    [song] = merge_stems(records)
    assert [i.name for i in song.instruments] == ["Bass", "Drums", "Keyboard"]
    assert song.note_count == 1439 and song.counts[midifile.CONTROLLERS_LEFT_OUT] == 3


def test_stems_with_different_tempo_maps_stay_apart():
    stems = suno_stems()
    other = smf_damage.with_zero_tempo(stems["Bass"])  # its map differs from the drums'
    records = [read_midi(other, source="Song (Bass).mid"), read_midi(stems["Drums"], source="Song (Drums).mid")]
    assert len(merge_stems(records)) == 2


@pytest.mark.parametrize("sharps", [9, 14, 19, -12])
def test_illegal_key_signature_is_read_past_and_counted(sharps):
    data = smf_damage.with_key_signature(suno_stems()["Keyboard"], sharps)
    with pytest.raises(mido.midifiles.meta.KeySignatureError):  # what a strict reader does with it
        mido.MidiFile(file=io.BytesIO(data))
    record = read_midi(data, source="k.mid")
    assert record.note_count == 885 and record.counts[midifile.KEY_SIGNATURE_ILLEGAL] == 1


def test_zero_tempo_is_read_past_and_the_previous_tempo_goes_on():
    record = read_midi(smf_damage.with_zero_tempo(suno_stems()["Bass"]), source="b.mid")
    assert record.counts[midifile.TEMPO_ZERO] == 1 and len(record.source_tempos) == 185  # 120 BPM at 0, then 184
    assert record.source_tempos[0] == (0, midifile.DEFAULT_TEMPO_US)
    assert np.isfinite(record.instruments[0].start_s).all()


def test_truncated_last_track_keeps_the_notes_before_the_cut():
    data = smf_damage.truncated(suno_stems()["Keyboard"], 100)
    record = read_midi(data, source="k.mid")
    assert record.counts[midifile.TRACK_TRUNCATED] == 1
    assert 850 < record.note_count < 885
    assert any("cut short" in w for w in record.warnings)


def test_one_stem_split_over_two_tracks_of_the_same_name_is_joined():
    data = smf_damage.split_track(suno_stems()["Keyboard"], 1, pitch_below=64)
    assert len(mido.MidiFile(file=io.BytesIO(data)).tracks) == 3
    record = read_midi(data, source="Midnight Concrete (Keyboard).mid")
    [keyboard] = record.instruments
    assert keyboard.name == "Keyboard" and keyboard.note_count == 885
    assert record.counts[midifile.TRACKS_JOINED] == 1


def test_zero_division_is_read_as_480_and_named():
    smf = parse_smf(smf_damage.with_division(suno_stems()["Bass"], 0), source="b.mid")
    assert smf.ppq == midifile.FALLBACK_PPQ and "ticks per quarter is 0" in smf.problems[0]


def test_smpte_division_counts_ticks_per_second():
    # 0xE7 = -25 frames per second, 40 ticks per frame: 1000 ticks per second.
    record = read_midi(smf_damage.with_division(suno_stems()["Bass"], 0xE728), source="b.mid")
    assert record.source_tempos == () and record.beat_map_s is None
    first = int(np.argmin(record.instruments[0].start_s))
    assert record.instruments[0].start_s[first] == 0.0


def test_running_status_and_unknown_chunks_are_read():
    # Track: note-on 60, then a note-on 62 and two note-offs (velocity 0) in running status.
    #   00 90 3C 64 | 00 3E 64 | 60 3C 00 | 00 3E 00 | 00 FF 2F 00
    body = bytes.fromhex("00903C64 003E64 603C00 003E00 00FF2F00")
    data = (
        b"MThd"
        + struct.pack(">IHHH", 6, 0, 1, 96)
        + b"XFIH\x00\x00\x00\x02ab"
        + b"MTrk"
        + struct.pack(">I", len(body))
        + body
    )
    record = read_midi(data, source="r.mid")
    assert sorted(record.instruments[0].pitch.tolist()) == [60, 62]
    assert record.instruments[0].end_s.tolist() == [0.5, 0.5]  # 96 ticks at 120 BPM
    assert record.counts[midifile.CHUNK_UNKNOWN] == 1


def test_notes_never_released_end_with_their_track():
    body = bytes.fromhex("00903C64 8360FF2F00")  # note-on, then end of track 480 ticks later
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body
    record = read_midi(data, source="r.mid")
    assert record.instruments[0].end_s.tolist() == [0.5] and record.counts[midifile.NOTE_UNRELEASED] == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "is not a MIDI file: it is empty"),
        (b'{"data": 1}', "does not start with the MThd header"),
        (b"MThd\x00\x00\x00\x06\x00", "header is cut short at 9 bytes"),
        (b"MThd" + struct.pack(">IHHH", 6, 1, 1, 480), "holds no track"),
    ],
)
def test_what_cannot_be_read_is_named_in_one_line(data, reason):
    with pytest.raises(InputError) as caught:
        read_midi(data, source="cut.mid")
    assert str(caught.value).startswith("cut.mid ") and reason in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("cut", range(14, 300, 7))
def test_any_cut_of_a_real_file_reads_or_fails_with_input_error(cut):
    data = suno_stems()["Bass"][:cut]
    try:
        record = read_midi(data, source="cut.mid")
    except InputError:
        return
    assert all(np.isfinite(i.start_s).all() for i in record.instruments)


@pytest.mark.parametrize(
    ("name", "split"),
    [("Midnight Concrete (Keyboard)", ("Midnight Concrete", "Keyboard")), ("Electric Bass (finger)", None),
     ("song", None), ("A (B) (Bass)", ("A (B)", "Bass")), ("5c79be8e - Electric Bass (finger)", None),
     ("task-Lead 8 (bass + lead)", None), ("Song (finger)", ("Song", "finger")), ("Electric (finger)", ("Electric", "finger")),
     ("My Pad 2 (Keyboard)", ("My Pad 2", "Keyboard"))],
)  # fmt: skip
def test_stem_title_reads_suno_file_names(name, split):
    assert stem_title(name) == split


def mido_leading_texts(data: bytes) -> tuple[str, ...]:
    """The text events that open the first track at tick 0, as mido (an independent reader) reads them."""
    texts = []
    for message in mido.MidiFile(file=io.BytesIO(data), charset="utf-8").tracks[0]:
        if message.time or not message.is_meta:
            break
        if message.type == "text":
            texts.append(message.text)
    return tuple(texts)


@pytest.mark.parametrize("midi_format", [0, 1])
def test_leading_texts_are_the_first_tracks_texts_at_tick_0_and_fit_the_mark_head(midi_format):
    from midiexport.jobs.convert_files import MARK_HEAD_BYTES
    from midiexport.model import COMPLETE, Instrument, Record
    from midiexport.options import ConvertOptions
    from midiexport.outputs.smf import write_midi
    from midiexport.stages.convert import convert_record

    notes = np.array([0.0, 0.5])
    piano = Instrument("Piano", notes, notes + 0.25, np.array([60, 62]), np.array([0.8, 0.8]))
    record = Record(source="a.json", status=COMPLETE, title="Ä longest title " * 30, task_id="1a2b",
                    tags="lo-fi " * 60, instruments=(piano,))  # fmt: skip
    data = write_midi(convert_record(record, ConvertOptions(format=midi_format)), format=midi_format)
    texts = midifile.leading_texts(data[:MARK_HEAD_BYTES])  # the longest title and texts: still within the head
    assert texts == mido_leading_texts(data)
    assert texts[1] == "@Isource: task 1a2b" and texts[2].startswith("@Itags: lo-fi")


def test_leading_texts_stop_at_a_later_tick_or_another_event_and_never_raise():
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="Bass"), mido.MetaMessage("text", text="first"),
                            mido.Message("program_change", program=33), mido.MetaMessage("text", text="after an event"),
                            mido.MetaMessage("text", text="later", time=10)])  # fmt: skip
    buffer = io.BytesIO()
    mido.MidiFile(tracks=[track, mido.MidiTrack([mido.MetaMessage("text", text="second track")])]).save(file=buffer)
    data = buffer.getvalue()
    assert midifile.leading_texts(data) == ("first",)
    assert {midifile.leading_texts(data[:cut]) for cut in range(len(data))} == {(), ("first",)}  # any cut: no raise
    assert midifile.leading_texts(b"RIFF" + data) == ()


@pytest.mark.parametrize("stem", ["Bass", "Drums", "Keyboard"])
def test_real_suno_stems_open_with_no_text(stem):
    assert midifile.leading_texts(suno_stems()[stem]) == ()  # a track name only: no file midiexport wrote


def fifo_notes(data: bytes) -> tuple[dict[int, list[tuple[int, int, int, int]]], int]:
    """Per channel (on tick, off tick, pitch, velocity) of one track, paired first in, first out by a plain
    reference over mido's messages: ended notes in the order they end, then the unreleased ones at the
    track's end, by the first note-on of their pitch; and how many are unreleased."""
    from collections import deque

    [track] = mido.MidiFile(file=io.BytesIO(data)).tracks
    sounding: dict[tuple[int, int], deque[tuple[int, int]]] = {}
    notes: dict[int, list[tuple[int, int, int, int]]] = {}
    tick = 0
    for message in track:
        tick += message.time
        if message.type == "note_on" and message.velocity:
            sounding.setdefault((message.channel, message.note), deque()).append((tick, message.velocity))
        elif message.type in ("note_on", "note_off") and sounding.get((message.channel, message.note)):
            on, velocity = sounding[(message.channel, message.note)].popleft()
            notes.setdefault(message.channel, []).append((on, tick, message.note, velocity))
    for (channel, pitch), ons in sounding.items():
        notes.setdefault(channel, []).extend((on, tick, pitch, velocity) for on, velocity in ons)
    return notes, sum(len(ons) for ons in sounding.values())


@pytest.mark.parametrize("running", [False, True])
def test_notes_pair_first_in_first_out_in_long_tracks(running):
    # Long enough for runs of plain events (read as columns) and, with running status, event by event:
    # re-triggers of one pitch, note-ons of velocity 0, offs with nothing sounding, two channels, long deltas.
    rng = np.random.default_rng(7)
    events = []
    for k in range(3000):
        channel, pitch = int(rng.choice([0, 9])), int(rng.integers(60, 64))
        kind = int(rng.choice([0x90, 0x90, 0x80, 0xB0]))
        velocity = int(rng.choice([0, 64, 100])) if kind == 0x90 else 64
        if k == 1500:
            events.append((0, bytes([0xC0 | channel, 5])))
        events.append((int(rng.choice([0, 1, 100, 480, 20000])), bytes([kind | channel, pitch, velocity])))
    body = bytearray()
    status = 0
    for delta, event in events:
        body += vlq(delta)
        body += event[1:] if running and event[0] == status else event
        status = event[0]
    body += b"\x00\xff\x2f\x00"
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)
    smf = parse_smf(data)
    ours = {p.channel: list(zip(*(c.tolist() for c in (p.on_tick, p.off_tick, p.pitch, p.velocity_midi))))
            for p in smf.parts}  # fmt: skip
    theirs, unreleased = fifo_notes(data)
    assert ours == theirs and sum(len(n) for n in ours.values()) > 500
    assert smf.counts[midifile.NOTE_UNRELEASED] == unreleased > 0
    assert smf.parts[0].program == 5 or smf.parts[1].program == 5
    assert smf.counts[midifile.CONTROLLERS_LEFT_OUT] == sum(1 for _, e in events if e[0] & 0xF0 == 0xB0)


def test_a_row_of_empty_chunks_is_counted_whole():
    body = bytes.fromhex("00903C64 603C00 00FF2F00")
    track = b"MTrk" + struct.pack(">I", len(body)) + body
    after = b"XYZW" + bytes(4) + bytes(8 * 20) + b"\x00\x00"  # an empty chunk, 20 of zeros, two stray bytes
    data = b"MThd" + struct.pack(">IHHH", 6, 1, 1, 96) + bytes(8 * 1000) + track + after
    record = read_midi(data, source="r.mid")
    assert record.instruments[0].pitch.tolist() == [60]
    assert record.counts[midifile.CHUNK_UNKNOWN] == 1021 and record.counts[midifile.BYTE_STRAY] == 2
