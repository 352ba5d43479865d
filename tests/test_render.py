"""Render (jobs/render.py): one Record becomes the bytes of its files, split or whole, named.

Records are made by hand; every .mid is read back with mido, never with our writer.
"""

from __future__ import annotations

import json

import pytest

from conftest import mido_file, notes_by_track, record_payload
from midiexport import model
from midiexport.errors import TaskPending
from midiexport.jobs.naming import record_values
from midiexport.jobs.render import render_record
from midiexport.options import ConvertOptions
from midiexport.stages.normalize import normalize_payload

# (pitch, start s, end s, velocity 0-1) on the 1/192 s grid: exact at 120 BPM and PPQ 480.
PARTS = {
    "Drums": [(36, 0.0, 0.125, 1.0), (38, 0.5, 0.625, 0.5), (36, 1.0, 1.125, 1.0)],
    "Electric Bass (finger)": [(40, 0.0, 0.5, 0.8), (43, 0.5, 1.0, 0.8)],
    "Lead/Vocals: take 2?": [(67, 0.25, 1.5, 0.6)],
}


def make_record(parts: dict[str, list[tuple[int, float, float, float]]] = PARTS) -> model.Record:
    [record] = normalize_payload(record_payload(parts, title="Neon Rain"), source="song.json")
    return record


def expected_notes(name: str, channel: int) -> list[tuple[int, int, int, int]]:
    """The notes of PARTS[name] in ticks at 120 BPM and PPQ 480 (960 ticks a second)."""
    return sorted(
        ((channel, p, round(s * 960), round(e * 960)) for p, s, e, _ in PARTS[name]), key=lambda n: (n[2], n[1])
    )


def test_a_record_renders_one_file_with_a_track_per_instrument():
    record = make_record()
    rendered = render_record(record, ConvertOptions(), stem="song")
    assert (rendered.stem, rendered.place, rendered.error, rendered.notes) == ("song", record.place(), None, 6)
    [only] = rendered.files
    assert (only.suffix, only.extension, only.companion) == ("", ".mid", False)
    midi = mido_file(only.data)
    assert (midi.type, midi.ticks_per_beat, len(midi.tracks)) == (1, 480, 4)  # a conductor track and three
    assert notes_by_track(only.data) == {
        "Drums": expected_notes("Drums", 9),
        "Electric Bass (finger)": expected_notes("Electric Bass (finger)", 0),
        "Lead/Vocals: take 2?": expected_notes("Lead/Vocals: take 2?", 1),
    }
    assert rendered.report is not None and rendered.report.counts == {}  # notes on the grid: nothing repaired


def test_split_gives_a_file_per_instrument_named_by_a_safe_suffix():
    rendered = render_record(make_record(), ConvertOptions(split=True), stem="song")
    assert [(f.suffix, f.extension) for f in rendered.files] == [
        ("-Drums", ".mid"),
        ("-Electric Bass (finger)", ".mid"),
        ("-Lead_Vocals_ take 2_", ".mid"),  # no separator, colon or question mark in a file name
    ]
    for file, (name, channel) in zip(rendered.files, [("Drums", 9), ("Electric Bass (finger)", 0),
                                                      ("Lead/Vocals: take 2?", 1)]):  # fmt: skip
        assert notes_by_track(file.data) == {name: expected_notes(name, channel)}
        tempos = [m.tempo for m in mido_file(file.data).tracks[0] if m.type == "set_tempo"]
        assert tempos == [500_000]  # every file keeps the song's tempo
    assert rendered.stem == "song" and rendered.notes == 6


def test_split_with_an_instrument_field_names_each_file_whole_from_the_template():
    record = make_record()
    values = record_values(record, stem="song", number="")
    options = ConvertOptions(split=True, name="{title} - {instrument}")
    rendered = render_record(record, options, stem="ignored", values=values)
    assert rendered.stem == ""
    assert [f.suffix for f in rendered.files] == [
        "Neon Rain - Drums",
        "Neon Rain - Electric Bass (finger)",
        "Neon Rain - Lead_Vocals_ take 2_",
    ]


def test_split_without_an_instrument_field_keeps_the_stem_and_the_suffixes():
    record = make_record()
    options = ConvertOptions(split=True, name="{title}")
    rendered = render_record(record, options, stem="Neon Rain", values=record_values(record, stem="s", number=""))
    assert rendered.stem == "Neon Rain" and rendered.files[0].suffix == "-Drums"


@pytest.mark.parametrize("split", [False, True])
def test_the_kept_answer_is_one_companion_after_the_mid_files(split):
    keep = json.dumps(record_payload(PARTS)).encode()
    rendered = render_record(make_record(), ConvertOptions(split=split), stem="t123", keep=keep)
    *mids, companion = rendered.files
    assert len(mids) == (3 if split else 1) and all(f.extension == ".mid" and not f.companion for f in mids)
    assert (companion.suffix, companion.extension, companion.companion, companion.data) == ("", ".json", True, keep)


def test_format_0_writes_every_note_in_one_track():
    rendered = render_record(make_record(), ConvertOptions(format=0), stem="song")
    midi = mido_file(rendered.files[0].data)
    assert (midi.type, len(midi.tracks)) == (0, 1)
    ons = [(m.channel, m.note) for m in midi.tracks[0] if m.type == "note_on" and m.velocity > 0]
    assert sorted(ons) == sorted(
        (channel, p) for name, channel in (("Drums", 9), ("Electric Bass (finger)", 0), ("Lead/Vocals: take 2?", 1))
        for p, *_ in PARTS[name]
    )  # fmt: skip


def test_a_record_that_cannot_convert_is_a_rendered_error_with_no_files():
    [pending] = normalize_payload({"data": {"taskId": "t9", "midiData": {"state": "running"}}}, source="t9.json")
    rendered = render_record(pending, ConvertOptions(), stem="t9", keep=b"{}")
    assert isinstance(rendered.error, TaskPending) and rendered.files == () and rendered.report is None
    assert (rendered.stem, rendered.place) == ("t9", pending.place())
