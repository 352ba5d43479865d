"""Property tests: random valid records round-trip exactly; malformed input only ever
raises the project's own error. The expected notes come from a plain per-note oracle
written here from PRODUCT.md's rules, not from the converter's code."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import mido_file
from midiexport.errors import MidiExportError
from midiexport.outputs.smf import write_midi
from midiexport.stages.convert import convert_record
from midiexport.stages.normalize import normalize_payload

NAMES = ["Drums", "Electric Bass (finger)", "Synth Voice", "String Ensembles 1", "Piano", "Percussion"]

grid_note = st.builds(
    lambda pitch, k, length, level: {"pitch": pitch, "start": k / 192, "end": (k + length) / 192, "velocity": level / 127},
    st.integers(0, 127), st.integers(0, 192 * 30), st.integers(0, 192 * 2), st.integers(1, 127),
)  # fmt: skip
valid_record = st.lists(
    st.tuples(st.sampled_from(NAMES), st.lists(grid_note, min_size=1, max_size=40)), min_size=1, max_size=5
).map(lambda parts: {"data": {"taskId": "p", "successFlag": 1, "midiData": {
    "state": "complete", "instruments": [{"name": n, "notes": notes} for n, notes in parts]}}})  # fmt: skip


def expected_ticks(record: dict[str, Any]) -> list[tuple[int, int, int, int, int]]:
    """(channel, pitch, on, off, velocity) per PRODUCT.md: 960 ticks/s, repairs by hand."""
    melodic = iter([c for c in range(16) if c != 9])
    by_channel: dict[tuple[int, int], list[list[int]]] = defaultdict(list)
    for instrument in record["data"]["midiData"]["instruments"]:
        drum = instrument["name"] in ("Drums", "Percussion")
        channel = 9 if drum else next(melodic)
        for note in instrument["notes"]:
            on, off = round(note["start"] * 960), round(note["end"] * 960)
            by_channel[channel, note["pitch"]].append([on, max(off, on + 1), round(note["velocity"] * 127)])
    result = []
    for (channel, pitch), notes in by_channel.items():
        notes.sort(key=lambda n: (n[0], -n[1]))
        kept: list[list[int]] = []
        for note in notes:
            if kept and kept[-1][0] == note[0]:
                continue  # same start: the longest (first) stays
            if kept and kept[-1][1] > note[0]:
                kept[-1][1] = note[0]  # overlap: cut where the next starts
            kept.append(note)
        result += [(channel, pitch, on, off, velocity) for on, off, velocity in kept]
    return sorted(result)


def notes_in_file(data: bytes) -> list[tuple[int, int, int, int, int]]:
    found, sounding = [], {}
    for track in mido_file(data).tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                assert (message.channel, message.note) not in sounding, "a note started twice without an off"
                sounding[message.channel, message.note] = (tick, message.velocity)
            elif message.type in ("note_on", "note_off"):
                on, velocity = sounding.pop((message.channel, message.note))
                found.append((message.channel, message.note, on, tick, velocity))
    assert not sounding, "a note was left hanging"
    return sorted(found)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_record)
def test_random_grid_records_round_trip_exactly(record):
    [parsed] = normalize_payload(record, source="p.json")
    data = write_midi(convert_record(parsed))
    assert notes_in_file(data) == expected_ticks(record)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
field_value = st.one_of(json_value, st.sampled_from(["60", "0.5", "NaN", "-Infinity", "1e400", "", " 7 "]),
                        st.floats(), st.integers(-300, 300))  # fmt: skip
near_valid_note = st.fixed_dictionaries(
    {}, optional={"pitch": field_value, "start": field_value, "end": field_value, "velocity": field_value}
)
near_valid_record = st.fixed_dictionaries({
    "code": st.sampled_from([200, 500, "200", None]),
    "data": st.fixed_dictionaries({
        "successFlag": st.sampled_from([0, 1, 2, 3, None, "1"]),
        "midiData": st.one_of(json_value, st.fixed_dictionaries({
            "state": st.sampled_from(["complete", "running", None]),
            "instruments": st.one_of(json_value, st.lists(st.fixed_dictionaries(
                {"name": st.one_of(st.text(max_size=20), json_value),
                 "notes": st.one_of(json_value, st.lists(st.one_of(near_valid_note, json_value), max_size=6))}),
                max_size=3)),
        })),
    }),
})  # fmt: skip


def convert_everything(payload: Any) -> None:
    for record in normalize_payload(payload, source="fuzz.json"):
        try:
            write_midi(convert_record(record))
        except MidiExportError:
            pass


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_value, near_valid_record))
def test_malformed_payloads_end_in_our_error_or_a_file(payload):
    try:
        convert_everything(payload)
    except MidiExportError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_end_in_our_error_or_a_file(raw):
    try:
        convert_everything(raw)
    except MidiExportError:
        pass
