from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import api_notes, channel_events, load_fixture, pretty, record_payload
from midiexport import gm, model
from midiexport.errors import EmptyRecord, InvalidNote, RecordError, TaskFailed, TaskPending
from midiexport.options import ConvertOptions
from midiexport.outputs.smf import write_midi
from midiexport.stages.convert import convert_record, place_instruments, repair_channel, split_song
from midiexport.stages.normalize import normalize_payload


def song_of(payload: object, **options: object) -> model.Song:
    [record] = normalize_payload(payload, source="a.json")
    return convert_record(record, ConvertOptions(**options))


def test_api_example_round_trips_exactly_through_pretty_midi():
    payload = load_fixture("record-info.json")
    midi = pretty(write_midi(song_of(payload)))
    expected = api_notes(payload)
    assert [i.name for i in midi.instruments] == list(expected)
    for instrument in midi.instruments:
        got = sorted((n.pitch, n.start, n.end, n.velocity) for n in instrument.notes)
        want = sorted((n["pitch"], n["start"], n["end"], round(n["velocity"] * 127)) for n in expected[instrument.name])
        assert got == want  # exact float equality: 1/192 s grid at 120 BPM, 480 PPQ


def test_drums_go_to_channel_10_and_bass_gets_its_gm_program():
    song = song_of(load_fixture("record-info.json"))
    drums, bass = song.tracks
    assert (drums.channel, drums.is_drum) == (9, True)
    assert (bass.channel, bass.program, bass.is_drum) == (0, 33, False)
    midi = pretty(write_midi(song))
    assert [(i.is_drum, i.program) for i in midi.instruments] == [(True, 0), (False, 33)]


def test_seconds_become_ticks_from_absolute_times():
    song = song_of(record_payload({"Piano": [(60, k / 192, (k + 1) / 192, 1.0) for k in range(0, 100_000, 7)]}))
    track = song.tracks[0]
    assert track.on_tick.tolist() == [5 * k for k in range(0, 100_000, 7)]
    assert (track.off_tick - track.on_tick).tolist() == [5] * len(track.on_tick)


@pytest.mark.parametrize(("velocity", "midi"), [(0.0, 1), (1 / 127, 1), (0.5, 64), (64 / 127, 64), (1.0, 127)])
def test_velocity_maps_to_1_127(velocity, midi):
    song = song_of(record_payload({"Piano": [(60, 0.0, 0.5, velocity)]}))
    assert song.tracks[0].velocity_midi.tolist() == [midi]
    assert song.report.counts == {}


def test_velocity_outside_0_1_is_clamped_and_counted():
    song = song_of(record_payload({"Piano": [(60, 0.0, 0.5, 1.7), (62, 0.0, 0.5, -0.2)]}))
    assert sorted(song.tracks[0].velocity_midi.tolist()) == [1, 127]
    assert song.report.counts == {model.VELOCITY_CLAMPED: 2}


def test_zero_length_note_lasts_one_tick_and_is_counted():
    song = song_of(record_payload({"Piano": [(60, 1.0, 1.0, 1.0)]}))
    assert (song.tracks[0].on_tick.tolist(), song.tracks[0].off_tick.tolist()) == ([960], [961])
    assert song.report.counts == {model.ZERO_LENGTH: 1}


def test_same_pitch_overlap_is_cut_where_the_next_starts():
    song = song_of(record_payload({"Piano": [(60, 0.0, 1.0, 1.0), (60, 0.5, 1.5, 1.0), (64, 0.25, 2.0, 1.0)]}))
    track = song.tracks[0]
    assert sorted(zip(track.pitch.tolist(), track.on_tick.tolist(), track.off_tick.tolist()), key=lambda n: n[1]) == [
        (60, 0, 480), (64, 240, 1920), (60, 480, 1440),
    ]  # fmt: skip
    assert song.report.counts == {model.OVERLAP_CUT: 1}


def test_same_pitch_and_start_keep_the_longest():
    song = song_of(record_payload({"Piano": [(60, 0.0, 0.5, 0.2), (60, 0.0, 1.0, 1.0), (60, 0.0, 0.75, 0.5)]}))
    track = song.tracks[0]
    assert (track.off_tick.tolist(), track.velocity_midi.tolist()) == ([960], [127])
    assert song.report.counts == {model.DUPLICATE_MERGED: 2}


def test_equally_long_duplicates_keep_the_first():
    song = song_of(record_payload({"Piano": [(60, 0.0, 0.5, 0.2), (60, 0.0, 0.5, 1.0), (60, 0.0, 0.5, 0.5)]}))
    assert song.tracks[0].velocity_midi.tolist() == [25]


def test_repeated_note_retriggers_off_before_on_in_the_file():
    song = song_of(record_payload({"Piano": [(60, 0.0, 0.5, 1.0), (60, 0.5, 1.0, 1.0)]}))
    events = [e for e in channel_events(write_midi(song)) if e[0] == 480]
    assert [e[1] for e in events] == ["note_off", "note_on"]


def test_overlap_across_instruments_sharing_a_channel_is_cut():
    names = {f"Lead {i}": [(60, 0.0, 1.0, 1.0)] for i in range(15)}
    names["Lead 15"] = [(60, 0.5, 2.0, 1.0)]  # the 16th melodic instrument shares channel 1 with "Lead 0"
    song = song_of(record_payload(names))
    first, extra = song.tracks[0], song.tracks[-1]
    assert first.channel == extra.channel
    assert first.off_tick.tolist() == [480]
    assert song.report.counts[model.OVERLAP_CUT] == 1


def test_no_note_on_with_velocity_zero_is_written():
    song = song_of(record_payload({"Piano": [(60, 0.0, 0.5, 0.0), (61, 0.0, 0.5, 0.001)]}))
    assert all(v > 0 for _, kind, _, _, v in channel_events(write_midi(song)) if kind == "note_on")


@pytest.mark.parametrize("bpm", [60.0, 93.7, 123.0, 174.0])
@pytest.mark.parametrize("ppq", [96, 480, 960])
def test_other_tempos_keep_every_time_within_half_a_tick(bpm, ppq):
    rng = np.random.default_rng(7)
    starts = np.sort(rng.integers(0, 192 * 200, 300)) / 192
    notes = [(int(p), float(s), float(s) + 0.25, 1.0) for p, s in zip(rng.integers(30, 90, 300), starts)]
    song = song_of(record_payload({"Piano": notes}), bpm=bpm, ppq=ppq)
    midi = pretty(write_midi(song))
    half_tick_s = song.tempos[0][1] / 1e6 / ppq / 2
    got = sorted(n.start for n in midi.instruments[0].notes)
    want = sorted({round(s * 192) / 192 for s in starts})
    assert len(got) == len(want)
    assert max(abs(g - w) for g, w in zip(got, want)) <= half_tick_s + 1e-9


def test_file_ends_at_the_last_note_off():
    song = song_of(load_fixture("record-info.json"))
    assert song.end_tick == round(7.911458333333333 * 960)


def test_conductor_names_the_song_and_its_source():
    song = song_of(load_fixture("record-info.json"))
    assert song.title == "5c79****be8e"
    assert song.texts == ("source: task 5c79****be8e, audio e231****-****-****-****-****8cadc7dc",)


@pytest.mark.parametrize(
    ("fixture", "error", "message"),
    [
        ("record-pending.json", TaskPending, "a.json: task 5c79****be8e: is still pending (successFlag 0)"),
        ("record-failed-generation.json", TaskFailed, "a.json: task 5c79****be8e: failed: MIDI generation failed"),
        ("record-empty-midi-data.json", EmptyRecord, "a.json: task 5c79****be8e: has no notes: midiData is empty"),
        ("reseller-link-only.json", EmptyRecord, "a.json: holds only a link to a MIDI file"),
    ],
)
def test_records_with_nothing_to_convert_are_refused_in_one_line(fixture, error, message):
    [record] = normalize_payload(load_fixture(fixture), source="a.json")
    with pytest.raises(error) as caught:
        convert_record(record)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_failed_task_keeps_error_code_and_message():
    [record] = normalize_payload(load_fixture("record-failed-create.json"), source="a.json")
    with pytest.raises(TaskFailed) as caught:
        convert_record(record)
    assert (caught.value.error_code, caught.value.error_message) == ("400", "audioId not found")


@pytest.mark.parametrize(
    ("notes", "words"), [(1, "1 invalid note left out: "), (2, "2 invalid notes left out; the first: ")]
)
def test_record_whose_notes_are_all_invalid_is_refused_naming_the_count_and_the_first_reason(notes, words):
    payload = record_payload({"Piano": [(200, 0.0, 1.0, 1.0)] * notes})
    [record] = normalize_payload(payload, source="a.json")
    with pytest.raises(EmptyRecord) as caught:
        convert_record(record)
    why = '"Piano", note 0: pitch 200 is outside 0-127'  # no warning line says it: the refusal does
    assert str(caught.value).endswith(f"has no valid notes to convert ({words}{why})")


def test_strict_refuses_a_record_with_an_invalid_note():
    [record] = normalize_payload(record_payload({"Piano": [(60, 0.0, 1.0, 1.0), (60, 2.0, 1.0, 1.0)]}), source="a.json")
    assert convert_record(record).note_count == 1
    with pytest.raises(InvalidNote) as caught:
        convert_record(record, ConvertOptions(strict=True))
    assert str(caught.value) == 'a.json: "Piano", note 1: end 1.0 is before start 2.0; refused in strict mode'
    assert (caught.value.note_index, caught.value.field) == (1, "end")


def test_invalid_notes_become_warnings_naming_the_place():
    song = song_of(record_payload({"Piano": [(60, 0.0, 1.0, 1.0), (60.5, 2.0, 3.0, 1.0)]}))
    assert song.report.warnings == ('a.json: "Piano", note 1: pitch 60.5 is not a whole number',)


def test_unknown_instrument_gets_program_0_and_a_warning():
    song = song_of(record_payload({"Theremin-ish": [(60, 0.0, 1.0, 1.0)]}))
    assert song.tracks[0].program == 0
    assert song.report.counts == {model.UNKNOWN_INSTRUMENT: 1}
    assert song.report.warnings[0].startswith('a.json: "Theremin-ish" is not a known instrument name')


def test_program_override_by_number_and_by_name():
    payload = record_payload({"Piano": [(60, 0.0, 1.0, 1.0)], "Bass": [(40, 0.0, 1.0, 1.0)]})
    song = song_of(payload, programs={"piano": "4", "BASS": "Fretless Bass"})
    assert [t.program for t in song.tracks] == [4, 35]


def test_drum_names_stay_on_channel_10_whatever_their_program():
    payload = record_payload({"Drum Kit": [(36, 0.0, 1.0, 1.0)], "Pads": [(60, 0.0, 1.0, 1.0)]})
    song = song_of(payload, programs={"Drum Kit": 25, "Pads": "Drums"})
    assert [(t.channel, t.program, t.is_drum) for t in song.tracks] == [(9, 25, True), (9, 0, True)]
    assert song.report.warnings == (
        'a.json: "Drum Kit" stays on channel 10: a drum name keeps the drum channel whatever program it is given, '
        "so program 25 (Acoustic Guitar (steel)) does not make it pitched",
    )
    flagged = song_of(record_payload({"Drums": [(36, 0.0, 1.0, 1.0)]}), programs={"Drums": "Standard Kit"})
    assert flagged.report.warnings == ()  # a drum program for a drum part: nothing to say


def test_a_melodic_program_for_a_drum_name_warns_once_per_name():
    placements, warnings, _ = place_instruments(["Drum Kit", "Bass", "Drum Kit"], {"Drum Kit": "Flute"})
    assert [(p.channel, p.program, p.is_drum) for p in placements] == [(9, 73, True), (0, 33, False), (9, 73, True)]
    assert warnings == ['"Drum Kit" stays on channel 10: a drum name keeps the drum channel whatever program it is '
                        "given, so program 73 (Flute) does not make it pitched"]  # fmt: skip
    assert gm.resolve_part("Drum Kit", overrides=gm.resolve_overrides({"drum kit": 73})).how == gm.DRUM_NAME_KEPT
    assert gm.resolve_part("Drum Kit", program=73).how == "file"  # a .mid's program: no override, nothing to say


def test_twenty_melodic_instruments_share_channels_by_program_first():
    names = [f"Violin {i}" if i < 10 else f"Flute {i}" for i in range(20)]
    placements, warnings, counts = place_instruments(names, {"Violin 0": 40})
    channels = [p.channel for p in placements]
    assert 9 not in channels
    assert len(set(channels)) == 15
    assert counts == {model.CHANNEL_SHARED: 5}
    assert len(warnings) == 5


def test_more_than_15_programs_share_channels_with_a_clash_warning():
    names = [f"Instrument {p}" for p in range(20)]
    programs = {name: p for p, name in enumerate(names)}
    placements, warnings, counts = place_instruments(names, programs)
    assert sorted({p.channel for p in placements}) == [c for c in range(16) if c != 9]
    assert "their programs differ" in warnings[0]
    assert counts == {model.CHANNEL_SHARED: 5}


def test_placing_known_instruments_counts_nothing_and_an_unknown_name_once():
    assert place_instruments(["Drums", "Electric Bass (finger)"], None)[2] == {}
    assert place_instruments(["Drums", "Theremin-ish", "Theremin-ish"], None)[2] == {model.UNKNOWN_INSTRUMENT: 2}


def ticks(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_repair_channel_returns_what_it_repaired_per_kind():
    # one track: a duplicate at tick 0 (pitch 60, the longer kept), an overlap at pitch 62 cut at 100
    notes = (ticks(0, 0, 50, 100), ticks(40, 80, 150, 200), ticks(60, 60, 62, 62), ticks(90, 90, 90, 90))
    [(on, off, pitch, _)], counts = repair_channel([notes])
    assert counts == {model.DUPLICATE_MERGED: 1, model.OVERLAP_CUT: 1}
    assert list(zip(on, off, pitch)) == [(0, 80, 60), (50, 100, 62), (100, 200, 62)]
    clean = (ticks(0, 10), ticks(5, 20), ticks(60, 60), ticks(90, 90))
    assert repair_channel([clean, clean[:2] + (ticks(61, 61), clean[3])])[1] == {}


def test_the_report_adds_this_stage_s_counts_to_the_record_s_in_the_order_first_met():
    payload = record_payload(
        {"Theremin-ish": [(60, 0.0, 1.0, 1.5), (62, 0.0, 0.0, 1.0)], "Piano": [(61, 0.0, 0.0, 0.5)]}
    )
    [record] = normalize_payload(payload, source="a.json")
    record = dataclasses.replace(record, counts={model.STRING_NUMBER: 2, model.ZERO_LENGTH: 1})
    assert list(convert_record(record).report.counts.items()) == [
        (model.STRING_NUMBER, 2),
        (model.ZERO_LENGTH, 3),  # one from the record, two zero-length notes here
        (model.UNKNOWN_INSTRUMENT, 1),  # placing comes before the notes
        (model.VELOCITY_CLAMPED, 1),
    ]


def test_split_gives_one_song_per_track_with_the_tempo():
    songs = split_song(song_of(load_fixture("record-info.json")))
    assert [len(s.tracks) for s in songs] == [1, 1]
    assert all(s.tempos == ((0, 500_000),) for s in songs)


@pytest.mark.parametrize(("options", "message"), [({"bpm": 0}, "bpm must be in 4..1000 or .auto., got 0"),
                                                   ({"ppq": 40000}, "ppq must be in 24..32767, got 40000"),
                                                   ({"ppq": 1}, "ppq must be in 24..32767, got 1")])  # fmt: skip
def test_timing_options_out_of_range_raise_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        song_of(load_fixture("record-info.json"), **options)


def test_a_bad_program_is_refused_when_the_options_are_built():
    with pytest.raises(ValueError, match="nonsense"):
        ConvertOptions(programs={"Piano": "nonsense"})
    with pytest.raises(ValueError, match="0..127"):
        ConvertOptions().replace(programs=(("Bass", 200),))
    with pytest.raises(ValueError, match="'bass=33' and 'BASS=Drums' give the same instrument two programs"):
        ConvertOptions(programs=(("bass", 33), ("BASS", "Drums")))  # one name twice: neither wins silently
    resolved = ConvertOptions(programs=(("bass", 33), ("BASS", "Electric Bass (finger)")))  # the same program twice
    assert resolved.program_overrides == {gm.name_key("Bass"): gm.Resolved(33, False, "override")}
    assert resolved == ConvertOptions(programs=(("bass", 33), ("BASS", "Electric Bass (finger)")))


@pytest.mark.parametrize("field", ["split", "strict", "align", "ghosts"])
def test_a_bool_option_given_a_string_is_a_type_error(field):
    with pytest.raises(TypeError, match=f"^{field} must be True"):
        ConvertOptions(**{field: "yes"})
    assert getattr(ConvertOptions(**{field: True}), field) is True


@pytest.mark.parametrize("field", ["split", "strict", "align", "ghosts"])
def test_a_bool_option_takes_a_numpy_bool_as_a_plain_one(field):
    # library callers pass flags computed with numpy (np.any(...)); they are kept as Python bools
    for flag in (True, False):
        given = ConvertOptions(**{field: np.bool_(flag)})
        assert getattr(given, field) is flag
        assert given == ConvertOptions(**{field: flag})
    with pytest.raises(TypeError, match=f"^{field} must be True"):
        ConvertOptions(**{field: np.int64(1)})


def test_public_functions_given_the_wrong_type_name_the_parameter_and_the_type_it_takes(tmp_path):
    import midiexport

    [record] = normalize_payload(load_fixture("record-info.json"))
    song = convert_record(record)
    wrong = [
        (lambda: midiexport.convert_record(None), "^convert_record: record must be Record, got NoneType"),  # type: ignore[arg-type]
        (lambda: midiexport.convert_record(record, {"bpm": 90}), "^convert_record: options must be ConvertOptions, got dict; build one"),  # type: ignore[arg-type]
        (lambda: midiexport.convert_payload(load_fixture("record-info.json"), options={"bpm": 90}), "^convert_payload: options must be ConvertOptions"),  # type: ignore[arg-type]
        (lambda: midiexport.convert_file(tmp_path, tmp_path, {"bpm": 90}), "^convert_file: options must be ConvertOptions"),  # type: ignore[arg-type]
        (lambda: midiexport.write_midi(record), "^write_midi: song must be Song, got Record; convert_record makes a Song"),  # type: ignore[arg-type]
        (lambda: midiexport.split_song(record), "^split_song: song must be Song, got Record"),  # type: ignore[arg-type]
        (lambda: midiexport.estimate_tempo(song), "^estimate_tempo: record must be Record, got Song"),  # type: ignore[arg-type]
        (lambda: midiexport.estimate_key(song), "^estimate_key: record must be Record, got Song"),  # type: ignore[arg-type]
        (lambda: midiexport.summarize_record(song), "^summarize_record: record must be Record, got Song"),  # type: ignore[arg-type]
        (lambda: midiexport.merge_stems([song]), "^merge_stems: each of records must be Record, got Song"),  # type: ignore[list-item]
        (lambda: midiexport.to_pretty_midi(None), "^to_pretty_midi: song_or_record must be Song or Record"),  # type: ignore[arg-type]
    ]  # fmt: skip
    for call, message in wrong:
        with pytest.raises(TypeError, match=message):
            call()


def test_song_too_long_for_the_file_is_refused():
    payload = record_payload({"Piano": [(60, 80_000.0, 80_001.0, 1.0)]})
    with pytest.raises(RecordError, match="too long for a MIDI file"):
        song_of(payload, bpm=1000, ppq=32767)


# --- one rule for "is this a drum part" (gm.resolve_part): placement, clean-up and onsets agree ---

DRUM_CASES = [  # (name, Suno's is_drum flag, --program overrides, on the drum channel?)
    ("Lead Vocals", True, {}, True),  # the flag decides over a melodic name
    ("Drums", False, {}, False),  # ... and over a drum name
    ("Loop", True, {"Loop": "Piano"}, False),  # an override decides over the flag
    ("Shaker", False, {"Shaker": "Drums"}, True),
    ("Drums", None, {"Drums": "Piano"}, True),  # a drum name stays on drums whatever program it is given
    ("Percussion", None, {}, True),  # no flag: the name decides
    ("Steel Drums", None, {}, False),  # a GM program's name, not the kit
]


def _flagged_record(name: str, flag: bool | None) -> model.Record:
    part: dict[str, object] = {"name": name, "notes": [{"pitch": 38, "start": 0.5, "end": 0.51, "velocity": 0.8}]}
    if flag is not None:
        part["is_drum"] = flag
    payload = {"code": 200, "data": {"taskId": "t1", "midiData": {"state": "complete", "instruments": [part]}}}
    [record] = normalize_payload(payload, source="a.json")
    return record


@pytest.mark.parametrize(("name", "flag", "programs", "drum"), DRUM_CASES)
def test_placement_and_clean_up_agree_on_drum_parts(name, flag, programs, drum):
    from midiexport.stages.clean import clean_record

    record = _flagged_record(name, flag)
    [placement], _, _ = place_instruments([name], programs, hints=[(None, flag)])
    assert placement.is_drum is drum
    cleaned = clean_record(record, ConvertOptions(drum_length_ms=100, programs=programs))
    lengthened = float(cleaned.instruments[0].end_s[0]) > 0.51  # only drum hits are lengthened
    assert lengthened is drum


@pytest.mark.parametrize(("name", "flag", "programs", "drum"), [c for c in DRUM_CASES if not c[2]])
def test_the_tempo_estimate_reads_drum_parts_as_placement_does(name, flag, programs, drum):
    from midiexport.stages.onsets import collect_onsets

    assert collect_onsets(_flagged_record(name, flag)).has_drums is drum


def test_notes_left_out_are_counted_in_full_past_the_described_issues():
    from midiexport.stages.normalize import MAX_ISSUES

    bad_pitch = [
        {"pitch": 200, "start": 0.1 * k, "end": 0.1 * k + 0.05, "velocity": 0.5} for k in range(MAX_ISSUES + 500)
    ]
    bad_end = [{"pitch": 60, "start": 1.0, "end": 0.5, "velocity": 0.5}] * 7
    good = [{"pitch": 60, "start": 0.0, "end": 0.5, "velocity": 0.5}]
    midi = {"state": "complete", "instruments": [{"name": "Piano", "notes": good + bad_pitch},
                                                 {"name": "Bass", "notes": bad_end + good}]}  # fmt: skip
    [record] = normalize_payload({"code": 200, "data": {"taskId": "t1", "midiData": midi}}, source="a.json")
    report = convert_record(record, ConvertOptions()).report
    assert len(record.issues) == MAX_ISSUES  # described one by one up to the limit ...
    assert report.left_out == {"pitch": MAX_ISSUES + 500, "end": 7}  # ... counted in full
    assert sum(report.left_out.values()) == report.counts[model.NOTE_LEFT_OUT]


def test_a_record_made_by_hand_with_issues_only_counts_them_as_left_out():
    piano = model.Instrument("Piano", np.array([0.0]), np.array([0.5]), np.array([60]), np.array([0.8]))
    issues = (model.NoteIssue("Piano", 1, "pitch", 200, "is outside 0-127"),
              model.NoteIssue("Piano", 2, "pitch", -1, "is outside 0-127"),
              model.NoteIssue("Piano", 3, "end", 0.1, "is before start 0.5"))  # fmt: skip
    record = model.Record(source="hand", status=model.COMPLETE, instruments=(piano,), issues=issues)
    assert convert_record(record, ConvertOptions()).report.left_out == {"pitch": 2, "end": 1}


def _beat_map_record(seed: int, notes: int) -> model.Record:
    """Random piano notes over a .mid's beat map of 100 BPM from 0 s (Suno's export starts its map at 0)."""
    rng = np.random.default_rng(seed)
    start = np.sort(rng.uniform(0.5, 30, notes))
    piano = model.Instrument("Piano", start, start + 0.2, rng.integers(50, 70, notes), np.full(notes, 0.7))
    return model.Record(source="x.mid", status=model.COMPLETE, instruments=(piano,), source_ppq=480,
                        source_tempos=((0, 600_000),), beat_map_s=np.arange(0.0, 31, 0.6))  # fmt: skip


@pytest.mark.parametrize(("seed", "notes"), [(seed, 20) for seed in range(6)] + [(5, 60)])  # sure, unsure, a pickup
def test_a_beat_map_is_described_alike_in_the_message_and_the_file(seed, notes):
    song = convert_record(_beat_map_record(seed, notes), ConvertOptions(bpm="auto"))
    [line] = [t for t in song.texts if "tempo" in t]
    assert song.report.tempo is not None and "from the source's beat map" in song.report.tempo
    assert line == song.report.tempo
    bar_tick = song.meters[-1][0]  # where the file's 4/4 starts (after a pickup bar, if any)
    bar_s = sum((min(end, bar_tick) - tick) * us / song.ppq / 1e6 for (tick, us), end in
                zip(song.tempos, [t for t, _ in song.tempos[1:]] + [bar_tick]) if tick < bar_tick)  # fmt: skip
    if "first downbeat at" in line:  # the downbeat the line names is the file's first bar line
        assert f"first downbeat at {bar_s:.3f} s" in line
    else:
        assert bar_tick == 0 and "bar lines counted from its first beat" in line
