from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import fixture_path, load_fixture
from midiexport import model
from midiexport.errors import InputError
from midiexport.stages.normalize import MAX_ISSUES, normalize_lines, normalize_payload


def read(name: str) -> list[model.Record]:
    return normalize_payload(fixture_path(name).read_bytes(), source=name)


@pytest.mark.parametrize(
    ("fixture", "task_id", "names", "counts"),
    [
        ("record-info.json", "5c79****be8e", ["Drums", "Electric Bass (finger)"], [2, 1]),
        ("record-data-only.json", "5c79****be8e", ["Drums", "Electric Bass (finger)"], [2, 1]),
        ("midi-data-bare.json", None, ["Drums", "Electric Bass (finger)"], [2, 1]),
        ("callback-string-times.json", "5c79****be8e", ["Drums", "Electric Bass (finger)"], [3, 3]),
        ("reseller-midi-url.json", "reseller0002", ["Drums", "Electric Bass (finger)"], [2, 1]),
        ("reseller-instruments-object.json", "reseller0003", ["Drums", "Electric Bass (finger)"], [2, 1]),
    ],
)
def test_every_envelope_gives_the_same_instruments(fixture, task_id, names, counts):
    [record] = read(fixture)
    assert record.status == model.COMPLETE
    assert record.task_id == task_id
    assert [i.name for i in record.instruments] == names
    assert [i.note_count for i in record.instruments] == counts


def test_record_info_notes_are_columns_with_exact_values():
    [record] = read("record-info.json")
    drums = record.instruments[0]
    assert drums.start_s.dtype == np.float64 and drums.pitch.dtype == np.int64
    assert drums.start_s.tolist() == [0.036458333333333336, 0.046875]
    assert drums.end_s.tolist() == [0.18229166666666666, 0.19270833333333334]
    assert drums.pitch.tolist() == [73, 61]
    assert drums.velocity.tolist() == [1.0, 1.0]
    assert record.audio_id == "e231****-****-****-****-****8cadc7dc"


def test_times_sent_as_strings_are_read_and_counted():
    [record] = read("callback-string-times.json")
    assert record.instruments[0].end_s.tolist() == [0.18229166666666666, 0.19270833333333334, 0.4895833333333333]
    assert record.counts == {model.STRING_NUMBER: 7}
    assert record.issues == ()


def test_reseller_data_list_gives_one_record_per_result():
    records = read("reseller-data-list.json")
    assert [r.locator for r in records] == ["result 1", "result 2"]
    assert [r.note_count for r in records] == [3, 1]


def test_array_of_records_numbers_them():
    records = read("records-array.json")
    assert [(r.locator, r.task_id) for r in records] == [("record 1", "5c79****be8e"), ("record 2", "second0002")]


@pytest.mark.parametrize(
    ("fixture", "status", "reason"),
    [
        ("record-pending.json", model.PENDING, "is still pending (successFlag 0)"),
        ("midi-data-running.json", model.PENDING, "is still running (state 'running')"),
        ("record-failed-create.json", model.FAILED, "failed: the task could not be created (400: audioId not found)"),
        ("record-failed-generation.json", model.FAILED, "failed: MIDI generation failed (500: MIDI generation failed)"),
        ("callback-failure.json", model.FAILED, "failed: MIDI generation failed (code 500)"),
        ("callback-failure-legacy.json", model.FAILED, "failed: MIDI generation failed (code 500)"),
        ("record-empty-midi-data.json", model.EMPTY, "split_stem"),
        ("record-missing-midi-data.json", model.EMPTY, "split_stem"),
        ("reseller-link-only.json", model.LINK, "holds only a link to a MIDI file"),
        ("music-record-info.json", model.EMPTY, "is a music task"),
    ],
)
def test_records_with_nothing_to_convert_say_why(fixture, status, reason):
    [record] = read(fixture)
    assert record.status == status
    assert reason in record.reason
    assert record.instruments == ()


def test_legacy_failure_keeps_the_task_id_from_data():
    [record] = read("callback-failure-legacy.json")
    assert record.task_id == "legacy0001"


def test_link_record_keeps_the_url():
    [record] = read("reseller-link-only.json")
    assert record.midi_url == "https://cdn.example/files/reseller0004.midi"


def notes_of(*notes: object) -> dict[str, object]:
    return {"instruments": [{"name": "Drums", "notes": list(notes)}]}


GOOD = {"pitch": 60, "start": 0.5, "end": 1.0, "velocity": 0.5}


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ({**GOOD, "pitch": 128}, '"Drums", note 1: pitch 128 is outside 0-127'),
        ({**GOOD, "pitch": -1}, '"Drums", note 1: pitch -1 is outside 0-127'),
        ({**GOOD, "pitch": 60.5}, '"Drums", note 1: pitch 60.5 is not a whole number'),
        ({**GOOD, "pitch": True}, '"Drums", note 1: pitch true is not a number'),
        ({**GOOD, "start": "abc"}, '"Drums", note 1: start "abc" is not a number'),
        ({**GOOD, "start": -0.5}, '"Drums", note 1: start -0.5 is negative'),
        ({**GOOD, "start": 1e308, "end": 1e308}, '"Drums", note 1: start 1e+308 is beyond 24 hours'),
        ({**GOOD, "start": 2.0}, '"Drums", note 1: end 1.0 is before start 2.0'),
        ({**GOOD, "velocity": "NaN"}, '"Drums", note 1: velocity "NaN" is not a finite number'),
        ({**GOOD, "end": "Infinity"}, '"Drums", note 1: end "Infinity" is not a finite number'),
        ({**GOOD, "end": None}, '"Drums", note 1: end null is not a number'),
        ({"pitch": 60, "start": 0.5, "velocity": 1}, '"Drums", note 1: end is missing'),
        (42, '"Drums", note 1: note 42 is not an object'),
    ],
)
def test_a_note_with_no_obvious_repair_is_left_out_and_named(note, message):
    [record] = normalize_payload(notes_of(GOOD, note, GOOD), source="a.json")
    assert record.status == model.COMPLETE
    assert record.instruments[0].note_count == 2
    assert record.counts[model.NOTE_LEFT_OUT] == 1
    assert [record.place(i.describe()) for i in record.issues] == [f"a.json: {message}"]


def test_pitch_sent_as_a_string_is_read_as_that_number():
    [record] = normalize_payload(notes_of({**GOOD, "pitch": "60"}), source="a.json")
    assert record.instruments[0].pitch.tolist() == [60]
    assert record.counts == {model.STRING_NUMBER: 1}


def test_notes_not_a_list_leaves_the_instrument_out_with_a_warning():
    [record] = normalize_payload({"instruments": [{"name": "Bass", "notes": "x"}, {"name": "Piano", "notes": [GOOD]}]})
    assert [i.name for i in record.instruments] == ["Piano"]
    assert record.warnings == ('"Bass": notes is a string, not a list; instrument left out',)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "a.json is empty; expected a JSON record"),
        (b"   \n ", "a.json is empty; expected a JSON record"),
        (b'{"data": ', "a.json is not valid JSON (unexpected end of data)"),
        (b"null", "a.json holds null, not a MIDI record; expected a JSON object"),
        (b"42", "a.json holds a number, not a MIDI record; expected a JSON object"),
        (b'"text"', "a.json holds a string, not a MIDI record; expected a JSON object"),
        (b"[]", "a.json is an empty list; it holds no records"),
        (b"[" * 5000 + b"]" * 5000, "a.json is not valid JSON (nested more than 1024 levels deep)"),
    ],
)
def test_inputs_that_are_not_records_raise_input_error(payload, message):
    with pytest.raises(InputError) as caught:
        normalize_payload(payload, source="a.json")
    assert str(caught.value).startswith(message)


def _text_with(field: str, number: bytes) -> bytes:
    """JSON text of three notes, the middle one's ``field`` written as ``number`` (text json.dumps cannot make)."""
    middle, last = {**GOOD, "start": 1.0, "end": 1.5}, {**GOOD, "start": 2.0, "end": 2.5}
    text = json.dumps(notes_of(GOOD, {**middle, field: 12345}, last)).encode()
    return text.replace(b"12345", number)


HUGE_INTEGER = b"9" * 5000  # over Python's 4,300-digit int limit


@pytest.mark.parametrize(
    ("field", "number", "message"),
    [
        pytest.param("pitch", HUGE_INTEGER, '"Drums", note 1: pitch inf is outside 0-127', id="pitch-9x5000"),
        ("pitch", b"-1e999", '"Drums", note 1: pitch -inf is outside 0-127'),
        ("pitch", b"1" + b"0" * 30, '"Drums", note 1: pitch 1e+30 is outside 0-127'),
        ("start", b"1e999", '"Drums", note 1: start inf is not a finite number'),
        pytest.param("end", b"-" + HUGE_INTEGER, '"Drums", note 1: end -inf is not a finite number', id="end--9x5000"),
    ],
)
def test_a_number_beyond_a_double_leaves_out_only_its_note(field, number, message):
    # JSON sets no limit on numbers: one that overflows is its note's problem, not the file's.
    [record] = normalize_payload(_text_with(field, number), source="a.json")
    assert record.instruments[0].note_count == 2
    assert [record.place(i.describe()) for i in record.issues] == [f"a.json: {message}"]


@pytest.mark.parametrize(
    ("number", "clamped"), [(b"1e999", 1.0), (b"-1e999", 0.0), (HUGE_INTEGER, 1.0)], ids=["1e999", "-1e999", "9x5000"]
)
def test_a_velocity_beyond_a_double_is_clamped_like_any_velocity_out_of_0_1(number, clamped):
    from midiexport.options import ConvertOptions
    from midiexport.stages.convert import convert_record

    [record] = normalize_payload(_text_with("velocity", number), source="a.json")
    assert record.instruments[0].note_count == 3 and not record.issues
    song = convert_record(record, ConvertOptions())
    [edge] = normalize_payload(_text_with("velocity", str(clamped).encode()), source="a.json")  # 0.0 or 1.0 itself
    same = convert_record(edge, ConvertOptions()).tracks[0]
    assert song.tracks[0].velocity_midi.tolist() == same.velocity_midi.tolist()
    assert song.report.counts[model.VELOCITY_CLAMPED] == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"a": 1e999, "b": NaN}', "NaN is not a JSON number"),
        (b'{"a": 1e999, "b": tru}', "Expecting value"),
        (b'{"a": 1e999, "b": "\xff"}', "str is not valid UTF-8"),  # orjson checks the whole text first
    ],
)
def test_text_with_a_huge_number_and_an_error_after_it_is_still_not_json(text, reason):
    with pytest.raises(InputError) as caught:
        normalize_payload(text, source="a.json")
    assert str(caught.value).startswith(f"a.json is not valid JSON ({reason}")


def test_a_utf8_byte_order_mark_is_accepted():
    raw = b"\xef\xbb\xbf" + fixture_path("record-info.json").read_bytes()
    [record] = normalize_payload(raw, source="bom.json")
    assert record.note_count == 3


def test_empty_object_is_a_record_without_midi_data():
    [record] = normalize_payload(b"{}", source="a.json")
    assert record.status == model.EMPTY
    assert record.reason == "holds no MIDI data (none of instruments, midiData, data)"


def test_json_lines_yield_records_and_errors_in_line_order():
    lines = [(1, json.dumps(load_fixture("record-info.json")).encode()), (2, b"   "), (3, b"{oops"), (4, b"[1]")]
    items = list(normalize_lines(lines, source="s.jsonl"))
    assert isinstance(items[0], model.Record) and items[0].locator == "line 1"
    assert isinstance(items[1], InputError) and str(items[1]).startswith("s.jsonl: line 3 is not valid JSON")
    assert isinstance(items[2], model.Record) and items[2].status == model.EMPTY and items[2].locator == "line 4"


def test_saved_fetch_answer_with_music_record_takes_title_tags_and_duration():
    midi = load_fixture("record-info.json")
    music = load_fixture("music-record-info.json")
    [record] = normalize_payload({"midiRecord": midi, "musicRecord": music})
    assert (record.title, record.tags, record.model_name, record.duration_s) == (
        "钢铁侠", "electrifying, rock", "chirp-v3-5", 198.44,
    )  # fmt: skip


def test_music_record_without_a_matching_song_warns():
    midi = load_fixture("record-info.json")
    music = load_fixture("music-record-info.json")
    music["data"]["response"]["sunoData"][0]["id"] = "other"
    [record] = normalize_payload({"midiRecord": midi, "musicRecord": music})
    assert record.title is None
    assert "no song of the music task has id" in record.warnings[0]


def test_a_note_is_left_out_for_its_first_problem_and_counted_by_field_in_the_order_of_their_first_note():
    notes = [
        {"pitch": 60, "start": 0.0, "end": 0.5, "velocity": 0.5},  # kept
        {"pitch": 60, "start": 2.0, "end": 1.0, "velocity": "loud"},  # a value that is no number comes first
        {"pitch": 200, "start": -1.0, "end": 0.5, "velocity": 0.5},  # then the checks, in order
        {"pitch": 60.5, "start": -1.0, "end": 0.5, "velocity": 0.5},
        {"pitch": 60, "start": 1.0, "end": 0.5, "velocity": 0.5},
        "x",
        {"pitch": 60, "start": 0.0, "end": 0.5},
    ]
    midi = {"state": "complete", "instruments": [{"name": "Piano", "notes": notes}]}
    [record] = normalize_payload({"code": 200, "data": {"taskId": "t1", "midiData": midi}}, source="a.json")
    assert [issue.describe() for issue in record.issues] == [
        '"Piano", note 1: velocity "loud" is not a number',
        '"Piano", note 2: pitch 200 is outside 0-127',
        '"Piano", note 3: pitch 60.5 is not a whole number',
        '"Piano", note 4: end 0.5 is before start 1.0',
        '"Piano", note 5: note "x" is not an object',
        '"Piano", note 6: velocity is missing',
    ]
    assert list(record.left_out.items()) == [("velocity", 2), ("pitch", 2), ("end", 1), ("note", 1)]
    assert record.counts[model.NOTE_LEFT_OUT] == 6
    assert record.instruments[0].note_count == 1


def test_many_instruments_with_left_out_notes_keep_each_ones_notes_names_and_the_order_of_first_meeting():
    good = {"pitch": 60, "start": 0.0, "end": 0.5, "velocity": 0.5}
    instruments = [{"name": "Strings", "notes": [good, {**good, "start": "0.25"}]}]  # a string read, nothing left out
    instruments += [
        {"name": f"Lead {k}", "notes": [{**good, "pitch": 61 + k % 2}, {**good, "velocity": "x"}]}
        | ({"is_drum": True} if k == 2 else {})
        for k in range(MAX_ISSUES + 100)
    ]
    instruments.append({"name": "Pad", "notes": [{**good, "end": -1.0}, good]})
    midi = {"state": "complete", "instruments": instruments}
    [record] = normalize_payload({"code": 200, "data": {"taskId": "t1", "midiData": midi}}, source="a.json")
    assert [i.name for i in record.instruments][:3] == ["Strings", "Lead 0", "Lead 1"]
    assert [i.note_count for i in record.instruments] == [2] + [1] * (MAX_ISSUES + 100) + [1]
    assert record.instruments[2].pitch.tolist() == [62] and record.instruments[0].start_s.tolist() == [0.0, 0.25]
    assert [i.is_drum for i in record.instruments[2:5]] == [None, True, None]
    assert list(record.counts) == [model.STRING_NUMBER, model.NOTE_LEFT_OUT]  # in the order first met
    assert record.counts[model.NOTE_LEFT_OUT] == MAX_ISSUES + 101
    assert list(record.left_out.items()) == [("velocity", MAX_ISSUES + 100), ("end", 1)]
    assert (
        len(record.issues) == MAX_ISSUES
        and record.issues[-1].describe() == f'"Lead {MAX_ISSUES - 1}", note 1: velocity "x" is not a number'
    )


def test_a_value_nested_too_deep_is_named_where_the_first_instrument_holds_it():
    deep: object = []
    for _ in range(70):
        deep = [deep]
    good = {"pitch": 60, "start": 0.0, "end": 0.5, "velocity": 0.5}
    instruments = [
        {"name": "Keys", "notes": [good, {**good, "velocity": deep}]},  # its last field: met first all the same
        {"name": "Bass", "notes": [{**good, "pitch": deep}]},
    ]
    midi = {"state": "complete", "instruments": instruments}
    with pytest.raises(InputError, match='"Keys", note 1 is nested more than 64 levels deep'):
        normalize_payload({"code": 200, "data": {"taskId": "t1", "midiData": midi}}, source="a.json")
