from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import fixture_path, load_fixture, rock_song, run
from midiexport.io.files import InputFile
from midiexport.jobs.info import format_table, summaries_json, summarize_file, summarize_midi, summarize_record
from midiexport.options import ConvertOptions
from midiexport.outputs.smf import write_midi
from midiexport.stages.convert import convert_record
from midiexport.stages.normalize import normalize_payload


def test_record_and_its_midi_file_summarize_the_same():
    [record] = normalize_payload(load_fixture("record-info.json"), source="a.json")
    from_record = summarize_record(record)
    from_midi = summarize_midi(write_midi(convert_record(record)), source="a.mid")
    assert from_record.parts == from_midi.parts
    drums, bass = from_midi.parts
    assert (drums.name, drums.channel, drums.program_name, drums.notes, drums.pitch_low, drums.pitch_high) == (
        "Drums", 9, "Drum kit", 2, 61, 73,
    )  # fmt: skip
    assert (bass.program, bass.program_name, bass.first_s, bass.last_s) == (
        33,
        "Electric Bass (finger)",
        7.6875,
        7.911458,
    )


def test_midi_summary_uses_the_files_tempo():
    [record] = normalize_payload(load_fixture("record-info.json"), source="a.json")
    summary = summarize_midi(write_midi(convert_record(record, ConvertOptions(bpm=93, ppq=960))))
    assert abs(summary.parts[1].first_s - 7.6875) < 1e-3
    assert summary.detail == "format 1, 960 ticks per quarter, 3 tracks"


def test_table_shows_channels_1_based_and_the_status():
    [record] = normalize_payload(load_fixture("record-info.json"), source="a.json")
    table = format_table(summarize_record(record))
    assert "status complete, title 5c79****be8e, task 5c79****be8e, duration 7.91 s, 3 notes" in table
    drums = next(line for line in table.splitlines() if "Drums" in line)
    assert " 10 " in drums


def test_pending_record_summary_says_why():
    [described] = summarize_file(InputFile(str(fixture_path("record-pending.json")), "p.json", False))
    summary = described.summary
    assert summary is not None and described.error is None and described.warnings == ()
    assert summary.status == "pending" and "still pending" in summary.detail and summary.parts == ()


def test_json_output_is_machine_readable():
    [described] = summarize_file(InputFile(str(fixture_path("record-info.json")), "a.json", False))
    summary = described.summary
    assert summary is not None
    [data] = json.loads(summaries_json([summary]))
    assert data["notes"] == 3 and data["parts"][0]["channel"] == 9


@pytest.mark.parametrize(
    ("bar_threshold", "beat_threshold", "says"),
    [
        (0.0, 0.0, r", 4/4, first downbeat at 1\.3\d\d s \(confidence [01]\.\d\d\)$"),  # bar lines claimed
        (
            1.01,
            0.0,
            r" BPM \(confidence [01]\.\d\d, too low to claim bar lines; beat confidence [01]\.\d\d, beats followed\)$",
        ),
        (
            1.01,
            1.01,
            r" BPM \(confidence [01]\.\d\d, too low to claim bar lines; beat confidence [01]\.\d\d, too low to follow them\)$",
        ),
    ],
)
def test_info_shows_tempo_meter_downbeat_and_both_confidences(monkeypatch, bar_threshold, beat_threshold, says):
    monkeypatch.setattr("midiexport.stages.tempo.CONFIDENCE_THRESHOLD_DRUMS", bar_threshold)  # a song with drums
    monkeypatch.setattr("midiexport.stages.tempo.BEAT_CONFIDENCE_THRESHOLD", beat_threshold)
    table = format_table(summarize_record(rock_song(97.3, 1.37)))
    line = next(line.strip() for line in table.splitlines() if "tempo estimated 97." in line)
    assert re.search(says, line), line


def test_info_says_what_auto_writes_when_believed_beats_are_too_few_to_follow(monkeypatch):
    # Once it said "beats followed" where --bpm auto writes one constant tempo.
    from midiexport.stages.tempo import TempoEstimate

    few = TempoEstimate(120.0, "4/4", 0.0, 0.3, "onsets", 1.0, np.array([0.5, 1.0, 1.5]), None, beat_confidence=0.97)
    monkeypatch.setattr("midiexport.jobs.info.estimate_tempo", lambda record: few)
    summary = summarize_record(rock_song(97.3, 1.37))
    line = next(line.strip() for line in format_table(summary).splitlines() if "tempo estimated" in line)
    assert summary.tempo_written == "constant" and "beats followed" not in line, line
    assert line.endswith("too low to claim bar lines; beat confidence 0.97, too few beats to follow)"), line


def test_info_never_shows_a_confidence_below_its_threshold_as_reaching_it():
    from midiexport.jobs.info import Summary
    from midiexport.stages.tempo import BEAT_CONFIDENCE_THRESHOLD, CONFIDENCE_THRESHOLD_DRUMS

    assert CONFIDENCE_THRESHOLD_DRUMS is not None

    summary = Summary("a.json", "record", "SUCCESS", None, None, 10.0, (), tempo_bpm=97.3,
                      tempo_confidence=round(CONFIDENCE_THRESHOLD_DRUMS - 0.001, 3), has_drums=True,
                      beat_confidence=round(BEAT_CONFIDENCE_THRESHOLD - 0.001, 3))  # fmt: skip
    line = next(line for line in format_table(summary).splitlines() if "tempo estimated" in line)
    bars, beats = (float(x) for x in re.findall(r"confidence (\d\.\d\d)", line))
    assert bars < CONFIDENCE_THRESHOLD_DRUMS and beats < BEAT_CONFIDENCE_THRESHOLD, line
    assert "too low to follow them" in line


def test_info_says_without_drums_no_bar_line_is_claimed_when_that_group_has_no_threshold(monkeypatch):
    monkeypatch.setattr("midiexport.stages.tempo.CONFIDENCE_THRESHOLD_NO_DRUMS", None)
    summary = summarize_record(rock_song(97.3, 1.37, drums=False))
    line = next(line.strip() for line in format_table(summary).splitlines() if "tempo estimated" in line)
    assert summary.has_drums is False and summary.meter is None and summary.tempo_written != "bars"
    assert "without drums no bar line is claimed" in line, line


def test_info_on_a_mid_with_notes_past_24_hours_shows_what_convert_keeps_and_counts_the_rest(tmp_path):
    from midiexport.stages.midifile import NOTE_TOO_LATE, read_midi

    late = Path(__file__).parent / "hostile" / "late-notes.mid"  # a note at tick 1, one after huge deltas at 3.6 BPM
    summary = summarize_midi(late.read_bytes(), source="late-notes.mid")
    record = read_midi(late.read_bytes(), source="late-notes.mid")  # what convert reads: the same rule
    assert summary.notes_too_late == record.counts[NOTE_TOO_LATE] == 1
    assert summary.notes == record.note_count == 1
    [part] = summary.parts
    assert (part.pitch_low, part.pitch_high, part.last_s) == (
        60,
        60,
        pytest.approx(float(record.instruments[0].end_s.max())),
    )
    assert summary.duration_s == part.last_s < 60  # not the file's end, billions of seconds away
    result = run("info", str(late))
    assert result.exit_code == 0, result.stderr
    assert "  1 note ending beyond 24 hours, which convert leaves out" in result.stdout.splitlines()
    one_tick_s = 0xFFFFFF / 1e6  # the kept note: one tick at the file's tempo (0xFFFFFF µs per quarter, 1 PPQ)
    assert f"duration {one_tick_s:.2f} s, 1 note" in result.stdout
    converted = run("convert", str(late), "-o", str(tmp_path))
    assert "1 note ending beyond 24 hours left out" in converted.stderr and "1 converted (1 note)" in converted.stderr


def test_info_counts_no_late_note_in_an_ordinary_mid():
    [record] = normalize_payload(load_fixture("record-info.json"), source="a.json")
    summary = summarize_midi(write_midi(convert_record(record)), source="a.mid")
    assert summary.notes_too_late == 0
    assert "24 hours" not in format_table(summary)


def _smf_bytes(tempos_bpm: list[float], meters: list[tuple[int, int, int]], *, ppq: int = 480) -> bytes:
    """A one-note .mid made with mido: one tempo a quarter from tick 0, time signatures (tick, n, d)."""
    import io

    import mido

    events = [(i * ppq, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(b))) for i, b in enumerate(tempos_bpm)]
    events += [(t, mido.MetaMessage("time_signature", numerator=n, denominator=d)) for t, n, d in meters]
    conductor, now = mido.MidiTrack(), 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        conductor.append(message.copy(time=tick - now))
        now = tick
    notes = mido.MidiTrack([mido.Message("note_on", note=60, velocity=64, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=len(tempos_bpm) * ppq)])  # fmt: skip
    out = io.BytesIO()
    mido.MidiFile(ticks_per_beat=ppq, tracks=[conductor, notes]).save(file=out)
    return out.getvalue()


def test_info_on_a_mid_without_time_signature_claims_no_downbeat():
    summary = summarize_midi(_smf_bytes([90.0], []), source="suno.mid")
    assert summary.first_downbeat_s is None
    assert "tempo written 90 BPM, no time signature written" in format_table(summary)


def test_info_on_a_tempo_map_says_its_figure_is_the_median_over_the_beats():
    # One tempo a beat as in a Suno export; the first (95) is neither the median (100) nor the longest.
    summary = summarize_midi(_smf_bytes([95.0, 100.0, 104.0, 100.0, 98.0, 103.0, 101.0], []), source="map.mid")
    assert summary.tempo_bpm == pytest.approx(100.0, abs=0.001)
    assert "tempo written 100 BPM (median over the beats), no time signature written" in format_table(summary)


def test_info_finds_the_first_downbeat_after_a_pickup_bar_in_any_meter():
    # A 1/8 pickup (240 ticks at 120 BPM: 0.25 s) before 3/4: the first full bar starts at 0.25 s, not 0.
    summary = summarize_midi(_smf_bytes([120.0] * 8, [(0, 1, 8), (240, 3, 4)]), source="waltz.mid")
    assert summary.first_downbeat_s == pytest.approx(0.25, abs=0.001)
    assert "first downbeat at 0.250 s" in format_table(summary)


@pytest.mark.parametrize(
    ("confidence", "beat_confidence", "unclaimed"),
    [
        (0.99, 0.99, None),  # bar lines drawn: the first downbeat is the file's first full bar
        (0.10, 0.99, "bar lines counted from 0 s"),  # beats followed, no meter or downbeat claimed
        (0.10, 0.10, "bar lines not aligned to the music"),  # one constant tempo
    ],
)
def test_info_on_a_mid_says_no_downbeat_when_its_own_text_claims_none(monkeypatch, confidence, beat_confidence,
                                                                     unclaimed):  # fmt: skip
    from midiexport.stages.tempo import TempoEstimate

    bpm, downbeat_s = 120.0, 0.5
    beats_s = downbeat_s + np.arange(64) * 60 / bpm
    estimate = TempoEstimate(bpm, "4/4", downbeat_s, confidence, "onsets", 1.0, beats_s, beats_s[::4],
                             beat_confidence=beat_confidence)  # fmt: skip
    monkeypatch.setattr("midiexport.stages.tempo.estimate_tempo", lambda record: estimate)
    song = convert_record(rock_song(bpm, downbeat_s, bars=8, jitter_s=0.0), ConvertOptions(bpm="auto"))
    summary = summarize_midi(write_midi(song))
    table = format_table(summary)
    assert summary.bars_unclaimed == unclaimed and summary.estimated_bpm == bpm
    if unclaimed is None:
        assert summary.first_downbeat_s == pytest.approx(downbeat_s, abs=0.001)
        assert f"first downbeat at {summary.first_downbeat_s:.3f} s" in table
    else:  # a time signature is written all the same (4/4 from 0 s): not read as a downbeat
        assert summary.first_downbeat_s is None and "first downbeat" not in table
        assert f"no meter or downbeat claimed ({unclaimed})" in table
        assert f"time signature 4/4 (no downbeat claimed: {unclaimed})" in table
        assert json.loads(summaries_json([summary]))[0]["first_downbeat_s"] is None


def test_info_names_the_map_median_and_the_estimate_convert_gave_apart():
    # convert says the estimate (over the whole song); info's written tempo is the map's median over the beats:
    # when they differ, info's line says which figure each is, the estimate read from the file's own text.
    record = rock_song(97.0, 0.4, bars=24, drums=False, jitter_s=0.02, seed=1)
    song = convert_record(record, ConvertOptions(bpm="auto"))
    estimated = re.search(r"tempo ([0-9.]+) BPM", song.report.tempo or "")
    assert estimated is not None
    summary = summarize_midi(write_midi(song))
    assert summary.estimated_bpm == float(estimated.group(1)) and summary.tempo_bpm != summary.estimated_bpm
    assert (summary.tempo_events or 0) > 1
    line = next(line for line in format_table(summary).splitlines() if line.strip().startswith("tempo written"))
    assert line.strip().startswith(f"tempo written {summary.tempo_bpm:g} BPM (median over the beats; ")
    assert f"convert estimated {summary.estimated_bpm:g} BPM)" in line


def test_info_on_a_mid_without_midiexports_text_reads_its_time_signature_as_before():
    song = convert_record(rock_song(120.0, 0.0, bars=4), ConvertOptions(bpm=120))
    summary = summarize_midi(write_midi(song))
    assert summary.estimated_bpm is None and summary.bars_unclaimed is None
    assert summary.first_downbeat_s == 0.0 and "first downbeat at 0.000 s" in format_table(summary)


def test_info_on_a_mid_with_too_few_notes_for_an_estimate_claims_no_downbeat():
    [record] = normalize_payload({"title": "few", "instruments": [
        {"name": "Piano", "notes": [{"pitch": 60, "start": 0.5, "end": 1.0, "velocity": 0.8}]}]})  # fmt: skip
    summary = summarize_midi(write_midi(convert_record(record, ConvertOptions(bpm="auto"))))
    assert summary.bars_unclaimed == "bar lines not aligned" and summary.first_downbeat_s is None
    assert "no meter or downbeat claimed (bar lines not aligned)" in format_table(summary)


def test_info_reads_a_text_like_midiexports_tempo_line_with_a_broken_number_as_no_such_text():
    import mido

    track = mido.MidiTrack([mido.MetaMessage("text", text="@Itempo 1.2.3 BPM (quarter notes)"),
                            mido.Message("note_on", note=60), mido.Message("note_off", note=60, time=480)])  # fmt: skip
    smf = mido.MidiFile(tracks=[track])
    out = io.BytesIO()
    smf.save(file=out)
    summary = summarize_midi(out.getvalue(), source="karaoke.mid")  # before: ValueError from float("1.2.3")
    assert summary.estimated_bpm is None and "no time signature written" in format_table(summary)
