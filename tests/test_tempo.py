"""Tempo estimation and the tempo map: the song's own tempo, downbeat on a bar line,
audio sync kept within 1 ms, optional quantizing. Songs are built here, note by note."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import mido_file, pretty
from midiexport import model
from midiexport.options import ConvertOptions
from midiexport.outputs.smf import write_midi
from midiexport.stages.convert import convert_record
from midiexport.stages.normalize import normalize_payload
from midiexport.stages.tempo import estimate_tempo, tempo_from_tags
from midiexport.stages.timing import grid_ticks, plan_time

CHORDS = ([60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62])  # C Am F G


def rock_song(bpm: float, downbeat_s: float, *, bars: int = 48, drums: bool = True, jitter_s: float = 0.008,
              seed: int = 1, tags: str | None = None) -> model.Record:  # fmt: skip
    """A backbeat song: kick 1 and 3, snare 2 and 4, 8th hats, bass 8ths, a chord a bar, pickup notes."""
    rng = np.random.default_rng(seed)
    beat = 60 / bpm
    parts: dict[str, list[dict[str, float]]] = {}

    def add(part: str, at_beat: float, beats: float, pitch: int, velocity: float = 0.8) -> None:
        start = max(0.0, downbeat_s + at_beat * beat + rng.uniform(-jitter_s, jitter_s))
        start = round(start * 192) / 192
        end = max(start + 1 / 192, round((start + beats * beat) * 192) / 192)
        parts.setdefault(part, []).append({"pitch": pitch, "start": start, "end": end, "velocity": velocity})

    for b in (-2, -1):  # a pickup before bar 1
        if downbeat_s + b * beat >= 0:
            add("Synth Voice", b, 0.9, 72 + b)
    for bar in range(bars):
        chord = CHORDS[bar % 4]
        for pitch in chord:
            add("String Ensemble 1", bar * 4, 3.9, pitch, 0.6)
        for eighth in range(8):
            add("Electric Bass (finger)", bar * 4 + eighth / 2, 0.45, chord[0] - 24)
            if drums:
                add("Drums", bar * 4 + eighth / 2, 0.1, 42, 0.5)
        if drums:
            for b in (0, 2):
                add("Drums", bar * 4 + b, 0.2, 36, 0.95)
            for b in (1, 3):
                add("Drums", bar * 4 + b, 0.2, 38, 0.9)
    instruments = [{"name": name, "notes": sorted(notes, key=lambda n: n["start"])} for name, notes in parts.items()]
    [record] = normalize_payload({"data": {"taskId": "t", "successFlag": 1,
                                           "midiData": {"state": "complete", "instruments": instruments}}})  # fmt: skip
    if tags:
        record = dataclasses.replace(record, tags=tags)
    return record


@pytest.mark.parametrize(("bpm", "downbeat_s"), [(61.3, 2.9), (97.3, 1.37), (128.0, 0.0), (176.4, 0.52)])
def test_tempo_and_first_downbeat_of_a_band_song(bpm, downbeat_s):
    found = estimate_tempo(rock_song(bpm, downbeat_s))
    assert abs(found.bpm / bpm - 1) < 0.01
    assert abs(found.first_downbeat_s - downbeat_s) < 0.030
    assert found.source == "harmony" and found.confidence > 0.8


def test_without_drums_the_harmony_still_gives_the_bar():
    found = estimate_tempo(rock_song(84.0, 0.9, drums=False))
    assert abs(found.bpm / 84.0 - 1) < 0.01
    assert abs(found.first_downbeat_s - 0.9) < 0.030


def test_a_tempo_in_the_tags_is_used_as_a_prior():
    record = rock_song(88.0, 0.4, tags="lofi, chill, 88 bpm")
    found = estimate_tempo(record)
    assert found.source == "hint" and abs(found.bpm / 88.0 - 1) < 0.01
    assert abs(estimate_tempo(record, hint_bpm=44.0).bpm / 88.0 - 1) < 0.01  # half the tempo named: doubled


@pytest.mark.parametrize(("tags", "bpm"), [("synthwave, 128 bpm", 128.0), ("92BPM boom bap", 92.0),
                                           ("rock", None), ("9 bpm", None), (None, None)])  # fmt: skip
def test_tempo_from_tags(tags, bpm):
    assert tempo_from_tags(tags) == bpm


def test_too_few_notes_give_no_confidence():
    [record] = normalize_payload({"instruments": [{"name": "Piano", "notes": [
        {"pitch": 60, "start": 0.5, "end": 1.0, "velocity": 1}]}]})  # fmt: skip
    found = estimate_tempo(record)
    assert (found.source, found.confidence) == ("none", 0.0)


@pytest.mark.parametrize(("bpm", "downbeat_s"), [(61.3, 2.9), (97.3, 1.37), (176.4, 0.52), (128.0, 0.0)])
def test_auto_tempo_keeps_every_note_within_a_millisecond(bpm, downbeat_s):
    record = rock_song(bpm, downbeat_s)
    midi = pretty(write_midi(convert_record(record, ConvertOptions(bpm="auto"))))
    for instrument, written in zip(record.instruments, midi.instruments):
        want = np.sort(instrument.start_s)
        got = np.sort([n.start for n in written.notes])
        assert len(got) == len(want)
        assert np.abs(got - want).max() < 0.001
        assert np.abs(np.sort([n.end for n in written.notes]) - np.sort(instrument.end_s)).max() < 0.001


def test_auto_tempo_puts_the_first_downbeat_on_a_bar_line():
    record = rock_song(97.3, 1.37)
    song = convert_record(record, ConvertOptions(bpm="auto"))
    (pickup_tick, n, d), (downbeat_tick, four, quarter) = song.meters
    assert (pickup_tick, four, quarter) == (0, 4, 4)
    assert d in (4, 8, 16) and downbeat_tick == n * song.ppq * 4 // d
    midi = pretty(write_midi(song))
    assert abs(midi.get_downbeats()[1] - 1.37) < 0.030  # bar 2 starts on the first downbeat
    assert abs(midi.get_tempo_changes()[1][-1] - 97.3) < 0.97
    texts = [m.text.removeprefix("@I") for m in mido_file(write_midi(song)).tracks[0] if m.type == "text"]
    assert any(t.startswith("tempo: estimated 97.") for t in texts)


def test_no_pickup_when_the_song_starts_on_a_downbeat():
    time_map = plan_time(rock_song(128.0, 0.0), bpm="auto", ppq=960)
    assert time_map.meters == ((0, 4, 4),) and len(time_map.tempos) == 1


def test_quantize_moves_starts_and_ends_to_the_grid():
    record = rock_song(120.0, 0.0, jitter_s=0.02)
    song = convert_record(record, ConvertOptions(quantize="1/16"))
    for track in song.tracks:
        assert np.all(track.on_tick % 120 == 0) and np.all(track.off_tick % 120 == 0)
    assert song.report.counts[model.QUANTIZED] > 1000


def test_quantize_with_auto_counts_the_grid_from_the_downbeat():
    song = convert_record(rock_song(97.3, 1.37, jitter_s=0.02), ConvertOptions(bpm="auto", quantize="1/8"))
    downbeat_tick = song.meters[1][0]
    for track in song.tracks:
        after = track.on_tick[track.on_tick >= downbeat_tick]
        assert np.all((after - downbeat_tick) % (song.ppq // 2) == 0)


@pytest.mark.parametrize(("grid", "ticks"), [("1/4", 480), ("1/16", 120), ("1/8t", 160), ("1/32", 60)])
def test_grid_values(grid, ticks):
    assert grid_ticks(grid, 480) == ticks


def test_unknown_grid_names_the_accepted_values():
    with pytest.raises(ValueError, match="quantize grid must be 1/N"):
        grid_ticks("1/12", 480)
