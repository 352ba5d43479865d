"""Suno's web export as input: stems in a folder or a .zip become one clean file (CLI and batch).

The real stems are in shared/real/suno-web-export beside the clone; tests that need
them skip with a reason when it is absent. Damaged variants are made from them here
(tests/smf_damage.py) and each must convert or fail in one line, never crash.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import mido
import numpy as np
import pytest
import smf_damage

from conftest import make_zip, mido_file, pretty, run, suno_stems
from midiexport.errors import MidiExportError
from midiexport.jobs.info import summarize_midi
from midiexport.options import ConvertOptions
from midiexport.stages.convert import convert_record
from midiexport.stages.midifile import read_midi

TITLE = "Midnight Concrete"
SOURCE_NOTES = 1439  # 241 bass + 313 drums + 885 keyboard
MERGED_NOTES = 1437  # two keyboard pairs share pitch and start: each becomes one note
MAX_ERROR_S = 0.001


@pytest.fixture
def stems_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    for stem, data in suno_stems().items():
        (folder / f"{TITLE} ({stem}).mid").write_bytes(data)
    return folder


def source_notes() -> dict[str, list[tuple[int, float]]]:
    """(pitch, start s) per stem, read by mido through each file's tempo map; exact duplicates once."""
    found = {}
    for stem, data in suno_stems().items():
        notes, now = set(), 0.0
        for message in mido.MidiFile(file=io.BytesIO(data)):
            now += message.time
            if message.type == "note_on" and message.velocity:
                notes.add((message.note, round(now, 9)))
        found[stem] = sorted(notes)
    return found


def written_notes(data: bytes) -> dict[str, list[tuple[int, float]]]:
    return {i.name: sorted((n.pitch, n.start) for n in i.notes) for i in pretty(data).instruments}


def conductor(data: bytes) -> list[mido.MetaMessage]:
    return [m for m in mido_file(data).tracks[0] if m.is_meta]


@pytest.mark.parametrize("options", [[], ["--bpm", "auto"], ["--tempo-map", "keep"], ["--bpm", "93", "--ppq", "960"]])
def test_stems_in_a_folder_become_one_file_with_every_note_in_time(stems_folder, tmp_path, options):
    out = tmp_path / "song.mid"
    result = run("convert", str(stems_folder), "-o", str(out), *options)
    assert result.exit_code == 0, result.stderr
    data = out.read_bytes()
    song = pretty(data)
    facts = [(i.name, i.is_drum, i.program, len(i.notes)) for i in song.instruments]
    assert facts == [("Bass", False, 32, 241), ("Drums", True, 0, 313), ("Keyboard", False, 0, 883)]
    assert sum(n for *_, n in facts) == MERGED_NOTES
    expected, written = source_notes(), written_notes(data)
    assert sum(len(v) for v in expected.values()) == MERGED_NOTES
    for stem in expected:
        assert [p for p, _ in written[stem]] == [p for p, _ in expected[stem]]
        error = np.abs(np.array([s for _, s in written[stem]]) - np.array([s for _, s in expected[stem]]))
        assert error.max() < MAX_ERROR_S, (stem, float(error.max()))


def test_merged_file_has_no_cc7_no_key_signature_a_meter_and_a_tempo_at_tick_0(stems_folder, tmp_path):
    out = tmp_path / "song.mid"
    assert run("convert", str(stems_folder), "-o", str(out), "--bpm", "auto").exit_code == 0
    midi = mido_file(out.read_bytes())
    kinds = [m.type for track in midi.tracks for m in track]
    assert "control_change" not in kinds and "key_signature" not in kinds
    metas = conductor(out.read_bytes())
    tempos = [m for m in metas if m.type == "set_tempo"]
    assert metas[[m.type for m in metas].index("set_tempo")].time == 0 and "time_signature" in kinds
    assert 1 <= len(tempos) <= 8  # the source has 185, one per beat
    assert all(86.5 < mido.tempo2bpm(t.tempo) < 88.2 for t in tempos)
    channels = {m.channel for track in midi.tracks[1:] for m in track if m.type == "note_on"}
    assert channels == {0, 1, 9}


def test_default_tempo_writes_one_tempo_and_keep_writes_the_source_map(stems_folder, tmp_path):
    for options, count in (([], 1), (["--tempo-map", "keep"], 185)):
        out = tmp_path / f"song-{count}.mid"
        assert run("convert", str(stems_folder), "-o", str(out), *options).exit_code == 0
        assert sum(m.type == "set_tempo" for m in conductor(out.read_bytes())) == count


def test_split_keeps_one_file_per_stem(stems_folder, tmp_path):
    result = run("convert", str(stems_folder), "-o", str(tmp_path / "out"), "--split")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{TITLE}-{s}.mid" for s in ("Bass", "Drums", "Keyboard")
    ]


def test_beside_the_inputs_the_song_is_named_after_its_title(stems_folder):
    result = run("convert", str(stems_folder))
    assert result.exit_code == 0, result.stderr
    assert (stems_folder / f"{TITLE}.mid").is_file() and len(list(stems_folder.iterdir())) == 4


def test_a_zip_of_the_stems_becomes_one_file(tmp_path):
    stems = {f"{TITLE}/{TITLE} ({stem}).mid": data for stem, data in suno_stems().items()}
    archive = make_zip(tmp_path / "export.zip", {**stems, "__MACOSX/._x.mid": b"junk", "notes.txt": b"not a stem"})
    result = run("convert", str(archive), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    [written] = (tmp_path / "out").iterdir()
    assert (
        written.name == f"{TITLE}.mid"
        and sum(len(i.notes) for i in pretty(written.read_bytes()).instruments) == MERGED_NOTES
    )


@pytest.mark.parametrize(
    ("member", "reason"),
    [("../evil.mid", "points outside the archive"), ("/etc/evil.mid", "points outside the archive")],
)
def test_zip_members_outside_the_archive_are_refused_in_one_line(tmp_path, member, reason):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(member, suno_stems()["Bass"])
    result = run("convert", str(archive), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and reason in result.stderr
    assert not (tmp_path / "evil.mid").exists() and "Traceback" not in result.stderr


def test_zip_member_claiming_more_than_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.zip"
    make_zip(path, {"Song (Bass).mid": suno_stems()["Bass"]})
    result = run("convert", str(path), "-o", str(tmp_path / "out"), "--max-input-mb", "0.001")
    assert result.exit_code == 1 and "larger than" in result.stderr


def test_not_a_zip_is_named_in_one_line(tmp_path):
    path = tmp_path / "stems.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    result = run("convert", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and result.stderr.splitlines()[0].startswith(f"{path} is not a readable .zip")


def test_json_and_midi_inputs_share_one_batch(stems_folder, tmp_path):
    record = {"data": {"state": "complete", "instruments": [
        {"name": "Kit", "is_drum": True, "notes": [{"pitch": 36, "start": 0, "end": 0.1, "velocity": 0.8}]}]}}  # fmt: skip
    (stems_folder / "clip.json").write_text(json.dumps(record))
    result = run("convert", str(stems_folder), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{TITLE}.mid", "clip.mid"]
    [kit] = pretty((tmp_path / "out" / "clip.mid").read_bytes()).instruments
    assert kit.is_drum  # "Kit" is no drum name: the is_drum flag decides


def test_is_drum_false_keeps_a_drum_named_part_melodic(tmp_path):
    record = {"data": {"state": "complete", "instruments": [
        {"name": "Drums", "is_drum": False, "notes": [{"pitch": 60, "start": 0, "end": 0.5, "velocity": 0.8}]}]}}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(record))
    assert run("convert", str(tmp_path / "a.json")).exit_code == 0
    [part] = pretty((tmp_path / "a.mid").read_bytes()).instruments
    assert not part.is_drum


def test_a_mid_on_standard_input_converts(tmp_path):
    result = run("convert", "-", "-o", str(tmp_path / "x.mid"), input=suno_stems()["Bass"])
    assert result.exit_code == 0, result.stderr
    assert [i.program for i in pretty((tmp_path / "x.mid").read_bytes()).instruments] == [32]


def damaged_variants() -> dict[str, bytes]:
    stems = suno_stems()
    return {
        "key14 (Keyboard).mid": smf_damage.with_key_signature(stems["Keyboard"], 14),
        "key9 (Keyboard).mid": smf_damage.with_key_signature(stems["Keyboard"], 9),
        "tempo0 (Bass).mid": smf_damage.with_zero_tempo(stems["Bass"]),
        "cut (Keyboard).mid": smf_damage.truncated(stems["Keyboard"], 100),
        "split (Keyboard).mid": smf_damage.split_track(stems["Keyboard"], 1, pitch_below=64),
        "ppq0 (Bass).mid": smf_damage.with_division(stems["Bass"], 0),
        "smpte (Bass).mid": smf_damage.with_division(stems["Bass"], 0xE728),
        "chunk (Drums).mid": smf_damage.with_unknown_chunk(stems["Drums"]),
        "header-only.mid": stems["Bass"][:14],
        "cut.mid": stems["Bass"][:9],
        "empty.mid": b"",
        "json.mid": b'{"hello": "world"}',
    }


def test_damaged_files_each_convert_or_fail_in_one_line(tmp_path):
    variants = damaged_variants()
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
    result = run("convert", str(tmp_path), "-o", str(tmp_path / "out"))
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    failures = [line for line in result.stderr.splitlines() if "MIDI file" in line]
    assert sorted(line.split(" is not", 1)[0].rsplit("/", 1)[-1] for line in failures) == [
        "cut.mid", "empty.mid", "header-only.mid", "json.mid"]  # fmt: skip
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    # each is its song's only stem: named as the stem file it is (the name of its song is for stems joined)
    assert written == ["chunk (Drums).mid", "cut (Keyboard).mid", "key14 (Keyboard).mid", "key9 (Keyboard).mid",
                       "ppq0 (Bass).mid", "smpte (Bass).mid", "split (Keyboard).mid", "tempo0 (Bass).mid"]  # fmt: skip
    split = pretty((tmp_path / "out" / "split (Keyboard).mid").read_bytes())
    assert [(i.name, len(i.notes)) for i in split.instruments] == [("Keyboard", 883)]


def test_info_never_crashes_on_damaged_files_and_names_the_damage(tmp_path):
    paths = []
    for name, data in damaged_variants().items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    result = run("info", *paths)
    assert result.exit_code == 1  # the four unreadable files
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 4
    assert f"{tmp_path / 'cut.mid'} is not a valid MIDI file: its header is cut short at 9 bytes" in result.stderr
    assert "1 illegal key signature read past" in result.stdout and "1 zero tempo read past" in result.stdout
    assert "ticks per quarter is 0, which cannot be; read as 480" in result.stdout


def test_info_json_on_zero_ppq_is_strict_json(tmp_path):
    path = tmp_path / "ppq0.mid"
    path.write_bytes(smf_damage.with_division(suno_stems()["Bass"], 0))
    result = run("info", "--json", str(path))
    assert result.exit_code == 0 and result.stderr == ""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    [summary] = json.loads(result.stdout, parse_constant=refuse)
    assert summary["parts"][0]["notes"] == 241


def test_info_on_a_suno_export_shows_the_tempo_map_and_the_stems(stems_folder):
    result = run("info", str(stems_folder))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("tempo map 86.693-87.951 BPM in 185 tempo events") == 3
    assert result.stdout.count(f"title {TITLE}") == 3
    for stem in ("Bass", "Drums", "Keyboard"):
        assert f"  1  {stem} " in result.stdout


def randomly_damaged(data: bytes, *, seed: int, count: int, most_bytes: int) -> list[bytes]:
    """Return ``count`` copies of ``data`` with 1 to ``most_bytes`` random bytes changed, some cut short."""
    rng = np.random.default_rng(seed)
    copies = []
    for _ in range(count):
        damaged = bytearray(data)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, most_bytes))):
            damaged[at] = int(rng.integers(0, 256))
        cut = int(rng.integers(0, len(data) + 1)) if rng.random() < 0.3 else len(data)
        copies.append(bytes(damaged[:cut]))
    return copies


def test_random_damage_reads_and_converts_or_raises_only_midiexport_errors():
    for attempt, damaged in enumerate(randomly_damaged(suno_stems()["Drums"], seed=10, count=100, most_bytes=12)):
        try:
            record = read_midi(damaged, source="x.mid")
            convert_record(record, ConvertOptions(bpm="auto" if attempt % 10 == 0 else 120))
        except MidiExportError:
            continue


def test_summarize_midi_raises_only_midiexport_errors_on_random_damage():
    for damaged in randomly_damaged(suno_stems()["Keyboard"], seed=14, count=300, most_bytes=20):
        try:
            summary = summarize_midi(damaged, source="x.mid")
        except MidiExportError:
            continue
        assert summary.duration_s is None or np.isfinite(summary.duration_s)


def test_info_on_a_zip_summarizes_each_stem(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for stem, data in suno_stems().items():
            zipped.writestr(f"{TITLE} ({stem}).mid", data)
    result = run("info", "--json", str(archive))
    assert result.exit_code == 0, result.stderr
    summaries = json.loads(result.stdout)
    assert [s["parts"][0]["name"] for s in summaries] == ["Bass", "Drums", "Keyboard"]
    assert {s["tempo_events"] for s in summaries} == {185}


def test_stems_converted_one_at_a_time_each_get_a_file_and_all_together_make_the_song(tmp_path):
    stems = suno_stems()
    for stem in ("Bass", "Drums"):
        (tmp_path / f"{TITLE} ({stem}).mid").write_bytes(stems[stem])
        result = run("convert", str(tmp_path / f"{TITLE} ({stem}).mid"))
        assert result.exit_code == 0, result.stderr
        written = tmp_path / f"{TITLE} ({stem})-midiexport.mid"  # its own name, clear of its input's path
        assert f"wrote {written}" in result.stderr.splitlines() and "skipped" not in result.stderr.split("converted")[0]
        assert [i.name for i in pretty(written.read_bytes()).instruments] == [stem]
    (tmp_path / f"{TITLE} (Keyboard).mid").write_bytes(stems["Keyboard"])
    together = run("convert", *sorted(str(p) for p in tmp_path.iterdir()))  # a shell's *.mid: its outputs left out
    assert together.exit_code == 0, together.stderr
    assert together.stderr.startswith("2 .mid files midiexport wrote from another input of this run left out")
    song = pretty((tmp_path / f"{TITLE}.mid").read_bytes())
    assert sorted(i.name for i in song.instruments) == ["Bass", "Drums", "Keyboard"]
    again = run("convert", *sorted(str(p) for p in tmp_path.iterdir()))
    assert again.exit_code == 0 and again.stderr.splitlines()[-2].endswith("1 skipped (exist), 0 failed")


def test_a_song_file_kept_that_was_made_from_fewer_stems_is_named_in_a_warning(tmp_path):
    stems = suno_stems()
    for stem in ("Bass", "Drums"):
        (tmp_path / f"{TITLE} ({stem}).mid").write_bytes(stems[stem])
    assert run("convert", str(tmp_path)).exit_code == 0
    (tmp_path / f"{TITLE} (Keyboard).mid").write_bytes(stems["Keyboard"])  # downloaded later
    again = run("convert", str(tmp_path))
    assert again.exit_code == 0  # kept, as any re-run keeps a file: not a failure
    song = tmp_path / f"{TITLE}.mid"
    assert (
        f"warning: {song} exists, made from {TITLE} (Bass).mid and 1 more stem, not from {TITLE} (Bass).mid "
        "and 2 more stems; kept (to write it from these, run again with --overwrite)"
    ) in again.stderr.splitlines()
    assert run("convert", str(tmp_path), "--overwrite").exit_code == 0
    assert len(pretty(song.read_bytes()).instruments) == 3
    assert "warning" not in run("convert", str(tmp_path)).stderr  # made from these very stems: nothing to say


def test_a_lone_stem_with_split_keeps_the_song_title_its_files_named_by_instrument(tmp_path):
    path = tmp_path / f"{TITLE} (Bass).mid"
    path.write_bytes(suno_stems()["Bass"])
    assert run("convert", str(path), "--split", "-o", str(tmp_path / "out")).exit_code == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"{TITLE}-Bass.mid"]


def test_a_split_part_kept_from_other_stems_is_counted_in_the_summary(tmp_path):
    stems = suno_stems()
    (tmp_path / f"{TITLE} (Keyboard).mid").write_bytes(stems["Keyboard"])
    assert run("convert", str(tmp_path), "--split").exit_code == 0  # writes its Keyboard part alone
    for stem in ("Bass", "Drums"):
        (tmp_path / f"{TITLE} ({stem}).mid").write_bytes(stems[stem])  # downloaded later
    again = run("convert", str(tmp_path), "--split")
    assert again.exit_code == 0, again.stderr
    lines = again.stderr.splitlines()
    assert f"warning: {tmp_path / f'{TITLE}-Keyboard.mid'} exists, made from {TITLE} (Keyboard).mid" in again.stderr
    assert "; 1 existing file kept), " in lines[-1] and lines[-1].startswith("1 converted (")  # the other parts written
    assert run("convert", str(tmp_path), "--split").stderr.splitlines()[-2].endswith(" 1 skipped (exist), 0 failed")


def test_a_lone_mid_never_replaces_itself(tmp_path):
    # One track named "song": 00 FF 03 04 "song" | note-on 60 | 480 ticks later note-off | end of track.
    body = bytes.fromhex("00FF0304") + b"song" + bytes.fromhex("00903C64 8360803C40 00FF2F00")
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body
    path = tmp_path / "song.mid"
    path.write_bytes(data)
    result = run("convert", str(path))
    assert result.exit_code == 0, result.stderr
    assert path.read_bytes() == data and (tmp_path / "song-midiexport.mid").is_file()


def test_info_places_a_part_by_its_is_drum_flag(tmp_path):
    record = {"data": {"state": "complete", "instruments": [
        {"name": "Kit", "is_drum": True, "notes": [{"pitch": 36, "start": 0, "end": 0.1, "velocity": 0.8}]}]}}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(record))
    result = run("info", "--json", str(tmp_path / "a.json"))
    assert json.loads(result.stdout)[0]["parts"][0]["channel"] == 9


def test_tempo_map_keep_writes_a_single_source_tempo_as_it_is(tmp_path):
    # One track: tempo 686,600 µs per quarter (87.39 BPM), one note of 480 ticks, end of track.
    body = bytes.fromhex("00FF5103 0A7A08 00903C64 8360803C40 00FF2F00")
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body
    (tmp_path / "a.mid").write_bytes(data)
    result = run("convert", str(tmp_path / "a.mid"), "-o", str(tmp_path / "x.mid"), "--tempo-map", "keep")
    assert result.exit_code == 0, result.stderr
    assert [m.tempo for m in conductor((tmp_path / "x.mid").read_bytes()) if m.type == "set_tempo"] == [686600]


def test_stem_files_named_one_by_one_go_into_one_named_file(stems_folder, tmp_path):
    stems = sorted(str(p) for p in stems_folder.iterdir())
    result = run("convert", *stems, "-o", str(tmp_path / "song.mid"))
    assert result.exit_code == 0, result.stderr
    assert len(pretty((tmp_path / "song.mid").read_bytes()).instruments) == 3


def _export_with_a_stem_past_1_mb(tmp_path):
    """A stem export folder: Bass, and a Keyboard stem past 1 MB; returns (folder, that stem)."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / f"{TITLE} (Bass).mid").write_bytes(suno_stems()["Bass"])
    huge = folder / f"{TITLE} (Keyboard).mid"
    with open(huge, "wb") as handle:
        handle.write(suno_stems()["Keyboard"])
        handle.truncate(1_100_000)  # sparse: past 1 MB without writing it
    return folder, huge


def test_a_mid_stem_over_the_size_limit_is_refused_in_one_line_and_the_others_convert(tmp_path):
    folder, huge = _export_with_a_stem_past_1_mb(tmp_path)
    result = run("convert", str(folder), "-o", str(tmp_path / "song.mid"), "--max-input-mb", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{huge} is larger than 1 MB; raise the limit with --max-input-mb; "
        "its song's file is written without it, or kept as it was if it existed; mend it and run again with --overwrite"
    )
    assert [i.name for i in pretty((tmp_path / "song.mid").read_bytes()).instruments] == ["Bass"]


def test_with_v_a_refused_stem_is_one_line_holding_its_own_error(tmp_path):
    folder, huge = _export_with_a_stem_past_1_mb(tmp_path)
    result = run("convert", str(folder), "-o", str(tmp_path / "song.mid"), "--max-input-mb", "1", "-v")
    assert result.exit_code == 1
    [line] = [line for line in result.stderr.splitlines() if str(huge) in line]
    assert line.startswith(f"{huge} is larger than 1 MB") and "its song's file is written without it" in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["read_midi", "summarize_midi"])
def test_a_path_given_for_the_bytes_is_a_type_error_saying_they_take_the_files_bytes(tmp_path, name):
    import midiexport

    path = tmp_path / "song.mid"
    song = mido.MidiFile()
    song.tracks.append(
        mido.MidiTrack([mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=480)])
    )
    song.save(path)
    function = getattr(midiexport, name)
    for given in (str(path), path):
        with pytest.raises(
            TypeError, match=rf"^{name}: data must be bytes or bytearray, got \w+; pass the file's bytes"
        ):
            function(given)
    assert function(path.read_bytes(), source=str(path)) is not None  # the bytes themselves are read
