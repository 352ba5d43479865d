"""Scale inside one input: very many instruments, and values nested very deep.

50,000 instruments are placed on channels and named apart with the same rules as a
handful (the quadratic versions took minutes; timings live in bench/bench_scale.py,
never here). A name or note value nested deeper than any real one is refused with
a line naming the input, never a RecursionError.
"""

from __future__ import annotations

import dataclasses
import random
import struct
from pathlib import Path

import orjson
import pytest

from conftest import mido_file, run
from midiexport import gm, model
from midiexport.errors import InputError, MidiExportError, RecordError
from midiexport.io.files import NamePlanner
from midiexport.jobs.api import convert_payload
from midiexport.options import ConvertOptions
from midiexport.outputs.smf import write_midi
from midiexport.stages.convert import (
    MELODIC_CHANNELS,
    _assign_channels,
    convert_record,
    place_instruments,
)
from midiexport.stages.normalize import CONTAINER_CHECK_BYTES as BIG_TEXT_BYTES
from midiexport.stages.normalize import MAX_VALUE_DEPTH, normalize_lines, normalize_payload, parse_json

MANY = 50_000
NAMES = ("Piano", "Electric Bass (finger)", "Violin", "Trumpet", "Flute", "Synth Voice", "Organ", "Drums")


def one_note_instruments(count: int, names: tuple[str, ...] = NAMES) -> bytes:
    # (pitch, start) differ for every note, so no two notes merge on a shared channel
    parts = [{"name": names[i % len(names)], "notes": [{"pitch": 20 + i % 100, "start": i // 100 * 0.1,
                                                        "end": i // 100 * 0.1 + 0.05, "velocity": 0.8}]}
             for i in range(count)]  # fmt: skip
    return orjson.dumps({"state": "complete", "instruments": parts})


def assign_channels_by_the_rule(programs: list[int]) -> list[int]:
    """The rule as first written (quadratic): the oracle for the linear version."""
    load: dict[int, int] = {}
    holder: dict[int, list[int]] = {}
    free = list(MELODIC_CHANNELS)
    channels = []
    for index, program in enumerate(programs):
        unseen = {p for p in programs[index + 1 :] if p not in holder} - {program}
        if free and (len(free) > len(unseen) or program not in holder):
            channel = free.pop(0)
        elif program in holder:
            channel = min(holder[program], key=lambda c: load[c])
        else:
            channel = min(load, key=lambda c: load[c])
        load[channel] = load.get(channel, 0) + 1
        holder.setdefault(program, []).append(channel)
        channels.append(channel)
    return channels


@pytest.mark.parametrize("seed", range(40))
def test_channels_follow_the_rule_for_any_mix_of_programs(seed):
    rng = random.Random(seed)
    programs = [rng.randrange(rng.choice([2, 10, 16, 30, 128])) for _ in range(rng.randrange(1, 120))]
    assert _assign_channels(programs) == assign_channels_by_the_rule(programs)


def test_fifty_thousand_instruments_share_channels_by_program():
    [record] = normalize_payload(one_note_instruments(MANY))
    song = convert_record(record)
    assert len(song.tracks) == MANY and song.note_count == MANY
    drums = [t for t in song.tracks if t.is_drum]
    assert len(drums) == MANY // len(NAMES) and {t.channel for t in drums} == {gm.DRUM_CHANNEL}
    melodic = [t for t in song.tracks if not t.is_drum]
    by_channel: dict[int, set[int]] = {}
    for track in melodic:
        by_channel.setdefault(track.channel, set()).add(track.program)
    assert set(by_channel) == set(MELODIC_CHANNELS)
    assert all(len(programs) == 1 for programs in by_channel.values())  # 7 programs: nothing clashes
    assert song.report.counts[model.CHANNEL_SHARED] == len(melodic) - len(MELODIC_CHANNELS)
    data = write_midi(song)
    assert struct.unpack(">HHH", data[8:14]) == (1, MANY + 1, song.ppq)  # format 1: conductor + a track each


def test_more_instruments_than_a_midi_file_holds_are_refused_in_one_line_unless_one_track(tmp_path):
    # A file's header counts 65,535 tracks; the tempo track is one. Found by bench/fuzz.py (struct.error).
    most = gm.MAX_TRACKS - 1
    data = one_note_instruments(most + 1)
    path = tmp_path / "band.json"
    path.write_bytes(data)
    [record] = normalize_payload(data, source="band.json")
    fits = dataclasses.replace(record, instruments=record.instruments[:-1])
    assert struct.unpack(">H", write_midi(convert_record(fits))[10:12]) == (gm.MAX_TRACKS,)
    for options in (ConvertOptions(), ConvertOptions(clean="strong")):  # refused before the clean-up's work
        with pytest.raises(RecordError, match="65,535 instruments are more than one MIDI file holds"):
            convert_record(record, options)
    song = convert_record(record, ConvertOptions(format=0))
    assert song.note_count == most + 1 and len(mido_file(write_midi(song, format=0)).tracks) == 1
    with pytest.raises(ValueError, match="holds at most 65,534 tracks beside its tempo track, got 65,535"):
        write_midi(song)  # the writer's own check, for a Song made for one track and written as format 1
    result = run("convert", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 2  # the line, and the summary
    assert "beside its tempo track); use --split or --format 0" in result.stderr


def test_fifty_thousand_distinct_names_past_sixteen_programs_clash_with_a_warning_each():
    names = tuple(gm.program_name(p) for p in range(128))
    placements, warnings, counts = place_instruments([names[i % 128] for i in range(MANY)], None)
    assert len(placements) == MANY
    assert all(p.channel in MELODIC_CHANNELS or p.is_drum for p in placements)
    assert counts[model.CHANNEL_SHARED] == len(warnings) == MANY - 15


def test_fifty_thousand_claims_of_one_name_are_numbered_in_order():
    planner, folder = NamePlanner(), Path("out")
    paths = [planner.claim(folder, "Piano") for _ in range(MANY)]
    assert [p.name for p in paths[:3]] == ["Piano.mid", "Piano-2.mid", "Piano-3.mid"]
    assert paths[-1].name == f"Piano-{MANY}.mid"
    assert len({str(p).casefold() for p in paths}) == MANY


def test_a_name_that_looks_numbered_is_not_given_twice():
    planner, folder = NamePlanner(), Path("out")
    assert planner.claim(folder, "song-3").name == "song-3.mid"
    assert [planner.claim(folder, "SONG").name for _ in range(4)] == [
        "SONG.mid",
        "SONG-2.mid",
        "SONG-4.mid",
        "SONG-5.mid",
    ]
    assert planner.claim(folder, "song-4").name == "song-4-2.mid"
    assert planner.claim(Path("other"), "song").name == "song.mid"


def test_split_of_many_instruments_of_one_name_writes_each_under_its_own_name(tmp_path):
    count = 600
    (tmp_path / "band.json").write_bytes(one_note_instruments(count, names=("Piano",)))
    result = run("convert", str(tmp_path / "band.json"), "--split", "-o", str(tmp_path / "out"), "-q")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == count
    assert {"band-Piano.mid", "band-Piano-2.mid", f"band-Piano-{count}.mid"} <= set(written)
    assert len(mido_file((tmp_path / "out" / f"band-Piano-{count}.mid").read_bytes()).tracks) == 2


# --- values nested very deep ---------------------------------------------------------

DEEP = "[" * 1000 + "60" + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
NOTE = '{"pitch": 60, "start": 0, "end": 1, "velocity": 0.5}'


def payload(name: str = '"Piano"', note: str = NOTE) -> str:
    return '{"state": "complete", "instruments": [{"name": ' + name + ', "notes": [' + note + ", " + NOTE + "]}]}"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (payload(note=NOTE.replace("60", DEEP)), '"Piano", note 0 is nested more than 64 levels deep'),
        (payload(note=NOTE.replace("0.5", DEEP_OBJECT)), '"Piano", note 0 is nested more than 64 levels deep'),
        (payload(note=DEEP), '"Piano", note 0 is nested more than 64 levels deep'),
        (payload(name=DEEP), "instrument 1: name is nested more than 64 levels deep"),
        (payload(name=DEEP_OBJECT), "instrument 1: name is nested more than 64 levels deep"),
        (f"[{payload()}, {payload(name=DEEP)}]", "record 2, instrument 1: name is nested more than 64"),
    ],
)
def test_a_value_nested_a_thousand_deep_is_refused_naming_the_input(text, where):
    with pytest.raises(InputError, match="refused") as raised:
        normalize_payload(text, source="deep.json")
    assert str(raised.value).startswith(f"deep.json: {where}")
    with pytest.raises(InputError):
        convert_payload(text)


def test_a_deep_body_code_is_read_as_no_code_and_ends_in_one_line():
    # The protocol reads a body code only as a number: a nested one is never walked.
    with pytest.raises(MidiExportError, match="holds no MIDI data"):
        convert_payload('{"code": ' + DEEP + ', "msg": "no"}')


def test_a_deep_line_of_json_lines_is_refused_and_the_other_lines_convert():
    lines = [(1, payload().encode()), (2, payload(name=DEEP).encode()), (3, payload().encode())]
    items = list(normalize_lines(lines, source="songs.jsonl"))
    assert [type(i).__name__ for i in items] == ["Record", "InputError", "Record"]
    assert str(items[1]).startswith("songs.jsonl: line 2, instrument 1: name is nested more than 64 levels deep")


def test_nesting_up_to_the_limit_is_read_as_before():
    shallow = "[" * (MAX_VALUE_DEPTH - 1) + "60" + "]" * (MAX_VALUE_DEPTH - 1)  # in its note: 64 levels
    [record] = normalize_payload(payload(note=NOTE.replace("60", shallow)))
    assert record.note_count == 1 and record.issues[0].problem == "is not a number"
    [named] = normalize_payload(payload(name=shallow))
    assert named.instruments[0].name.startswith("[[[")
    one_more = "[" * MAX_VALUE_DEPTH + "60" + "]" * MAX_VALUE_DEPTH
    with pytest.raises(InputError, match="nested more than 64 levels deep"):
        normalize_payload(payload(note=NOTE.replace("60", one_more)))


def test_the_cli_gives_one_line_for_a_deep_input_and_goes_on(tmp_path):
    (tmp_path / "a.json").write_text(payload(note=NOTE.replace("60", DEEP)))
    (tmp_path / "b.json").write_text(payload())
    result = run("convert", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-q")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f'{tmp_path / "a.json"}: "Piano", note 0 is nested more than 64 levels deep; refused (a name or note value '
        "is text or a number)"
    ]
    assert (tmp_path / "b.mid").exists()


# --- texts made of lists and objects --------------------------------------------------


@pytest.mark.parametrize(
    "filler",
    [b"[" * 100 + b"60" + b"]" * 100, b"[]", b'{"a":{}}'],
    ids=["nested-velocities", "empty-lists", "small-objects"],
)
def test_a_text_denser_in_lists_and_objects_than_any_record_is_refused_before_parsing(filler):
    # Parsed, each list or object is a Python object 30-40 times its text (json:158 of the
    # fuzzer's seed 11: 20 million lists in 52 MB took 2 GB); refused by counting instead.
    count = BIG_TEXT_BYTES // len(filler) + 1
    text = b'{"state": "complete", "instruments": [{"name": "Piano", "notes": [' + b",".join([filler] * count) + b"]}]}"
    with pytest.raises(InputError, match="refused") as raised:
        normalize_payload(text, source="dense.json")
    message = str(raised.value)
    assert message.startswith("dense.json holds ") and "JSON lists and objects" in message and "\n" not in message
    lines = list(normalize_lines([(1, payload().encode()), (2, text)], source="songs.jsonl"))
    assert [type(i).__name__ for i in lines] == ["Record", "InputError"]
    assert str(lines[1]).startswith("songs.jsonl: line 2 holds ")


def test_an_array_of_empty_records_is_refused_before_either_decoder():
    # Each {} would be a Record (the typed decoder's path too): 1 million took 18 s and 574 MB.
    count = BIG_TEXT_BYTES // 3 + 1
    with pytest.raises(InputError, match=f"^dense.json holds {count + 1:,} JSON lists and objects"):
        normalize_payload(b"[" + b",".join([b"{}"] * count) + b"]", source="dense.json")


def test_a_large_record_of_notes_is_read_past_the_container_check():
    text = one_note_instruments(2_000)
    assert len(text) > BIG_TEXT_BYTES
    assert isinstance(parse_json(text, source="many.json"), dict)  # the check runs on it and lets it through
    [record] = normalize_payload(text, source="many.json")
    assert record.note_count == 2_000 and record.status == model.COMPLETE
