"""The typed ingest path (msgspec) gives exactly the Records of the general path, or steps aside."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from make_output_digests import inputs
from midiexport.stages import normalize, typed_json


def same_records(a: list[normalize.Record], b: list[normalize.Record]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for field in dataclasses.fields(x):
            left, right = getattr(x, field.name), getattr(y, field.name)
            if field.name == "instruments":
                for i, j in zip(left, right, strict=True):
                    assert i.name == j.name and i.is_drum == j.is_drum
                    for column in ("start_s", "end_s", "pitch", "velocity"):
                        assert getattr(i, column).dtype == getattr(j, column).dtype
                        assert getattr(i, column).tobytes() == getattr(j, column).tobytes()
            elif left != right:
                return False
    return True


def general(raw: bytes, source: str = "in") -> list[normalize.Record]:
    return normalize.normalize_payload(orjson.loads(raw.removeprefix(b"\xef\xbb\xbf")), source=source)


@pytest.mark.parametrize("path", [p for p in inputs() if p.suffix == ".json"], ids=lambda p: p.name)
def test_typed_records_equal_the_general_ones(path) -> None:
    raw = path.read_bytes()
    typed = normalize._typed_records(raw, str(path), None)
    if typed is not None:
        assert same_records(typed, general(raw, str(path)))


def record(notes: list[dict[str, object]], **envelope: object) -> bytes:
    data = {"taskId": "t1", "midiData": {"state": "complete", "instruments": [{"name": "Bass", "notes": notes}]}}
    return json.dumps({"code": 200, "msg": "success", "data": data, **envelope}).encode()


NOTE = {"pitch": 40, "start": 0.5, "end": 1.0, "velocity": 0.5}


def test_the_common_record_takes_the_typed_path() -> None:
    assert normalize._typed_records(record([NOTE]), "in", None) is not None


@pytest.mark.parametrize(
    "change",
    [{"start": "0.5"}, {"pitch": True}, {"velocity": None}, {"end": [1]}, {"pitch": 128}, {"end": 0.1}, {"start": -1}],
    ids=["string", "bool", "null", "nested", "pitch-range", "end-before-start", "negative"],
)
def test_unusual_notes_take_the_general_path(change: dict[str, object]) -> None:
    raw = record([NOTE, {**NOTE, **change}])
    assert normalize._typed_records(raw, "in", None) is None
    assert normalize.normalize_payload(raw, source="in")[0].issues or change == {"start": "0.5"}


def test_a_missing_field_takes_the_general_path() -> None:
    assert normalize._typed_records(record([{"pitch": 40, "start": 0.5, "end": 1.0}]), "in", None) is None


def test_an_integer_orjson_reads_as_a_float_takes_the_general_path() -> None:
    raw = record([NOTE]).replace(b'"t1"', b"123456789012345678901234567890")
    assert normalize._typed_records(raw, "in", None) is None


def test_a_saved_music_record_takes_the_general_path() -> None:
    raw = json.dumps({"midiRecord": json.loads(record([NOTE])), "musicRecord": {}}).encode()
    assert normalize._typed_records(raw, "in", None) is None


def test_every_key_the_envelope_walk_reads_is_declared() -> None:
    # Read by normalize (_records_from_object, _record, _from_task, _from_midi, _meta) and
    # protocol.read_code; the schema is built from protocol.ENVELOPE_KEYS.
    read = {"code", "msg", "message", "data", "midiData", "instruments", "state", "midi_url", "successFlag",
            "taskId", "task_id", "audioId", "audio_id", "errorCode", "errorMessage", "title", "midiRecord",
            "musicRecord", "response"}  # fmt: skip
    assert read <= typed_json.ENVELOPE_KEYS


def test_a_music_task_answer_is_named_as_such_on_either_path() -> None:
    # "response" (a music task's answer) is read by the envelope walk: the typed schema keeps it.
    raw = json.dumps({"code": 200, "data": {"taskId": "m1", "response": {"sunoData": [{"id": "a"}]}}}).encode()
    assert typed_json.decode(raw) == json.loads(raw)


numbers = st.one_of(
    st.floats(min_value=0, max_value=86_400, allow_nan=False), st.integers(min_value=0, max_value=86_400)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 127), numbers, numbers, st.floats(-2, 2, allow_nan=False)), min_size=1))
def test_typed_columns_hold_the_same_bits_as_the_general_ones(notes: list[tuple[int, float, float, float]]) -> None:
    items = [{"pitch": p, "start": min(s, e), "end": max(s, e), "velocity": v} for p, s, e, v in notes]
    raw = record(items)
    typed = normalize._typed_records(raw, "in", None)
    assert typed is not None
    assert same_records(typed, general(raw))
    assert np.array_equal(typed[0].instruments[0].start_s, [min(s, e) for _, s, e, _ in notes])


def test_midi_data_sent_as_a_json_string_is_type_checked_as_before() -> None:
    inner = json.dumps(
        {"state": "complete", "instruments": [{"name": "Bass", "notes": [NOTE, {**NOTE, "velocity": True}]}]}
    )
    raw = json.dumps({"code": 200, "msg": "success", "data": {"taskId": "t1", "midiData": inner}}).encode()
    typed = normalize._typed_records(raw, "in", None)
    assert typed is not None and typed[0].issues
    assert same_records(typed, general(raw))
