"""A .zip of stems (io/archive.py): members meet --max-input-mb like files given alone.

The archives are made here, small and by hand: each member a .mid written with mido
(one track, one program, a tempo, ``notes`` quarter notes), or a JSON record padded
with whitespace to the size a test needs. Written files are read back with mido.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import mido
import pytest

from conftest import make_zip, notes_by_track, run
from midiexport.errors import InputError
from midiexport.io.archive import ARCHIVE_TOTAL_FACTOR, read_archive
from midiexport.io.files import MB, InputFile

TITLE = "Song"


def stem_bytes(notes: int, *, program: int = 33) -> bytes:
    """Return a .mid of one track: a tempo of 120 BPM, a program, ``notes`` quarter notes at PPQ 480."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                            mido.Message("program_change", program=program, time=0)])  # fmt: skip
    for index in range(notes):
        pitch = 40 + index % 24
        track += [mido.Message("note_on", note=pitch, velocity=90, time=0),
                  mido.Message("note_off", note=pitch, velocity=0, time=480)]  # fmt: skip
    buffer = io.BytesIO()
    mido.MidiFile(ticks_per_beat=480, tracks=[track]).save(file=buffer)
    return buffer.getvalue()


def padded_record(size: int) -> bytes:
    """Return a JSON record of one note, padded with spaces to exactly ``size`` bytes."""
    record = json.dumps({"data": {"state": "complete", "instruments": [
        {"name": "Piano", "notes": [{"pitch": 60, "start": 0, "end": 0.5, "velocity": 0.8}]}]}}).encode()  # fmt: skip
    return record + b" " * (size - len(record))


def written_notes(path: Path) -> dict[str, int]:
    """Return {track name: notes} of a written .mid, read with mido."""
    return {name: len(notes) for name, notes in notes_by_track(path.read_bytes()).items()}


def test_a_stem_meets_the_same_limit_alone_and_in_a_zip(tmp_path):
    big = stem_bytes(2000)  # ~16 kB
    limit_mb = len(big) / MB / 2
    alone = tmp_path / "alone" / f"{TITLE} (Bass).mid"
    alone.parent.mkdir()
    alone.write_bytes(big)
    zipped = make_zip(tmp_path / "stems.zip", {f"{TITLE} (Bass).mid": big})
    for source in (alone, zipped):
        result = run("convert", str(source), "-o", str(tmp_path / "out"), "--max-input-mb", f"{limit_mb:g}")
        assert result.exit_code == 1, (source, result.stderr)
        assert f"is larger than {limit_mb:g} MB; raise the limit with --max-input-mb" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_member_over_the_limit_fails_alone_and_the_other_stems_convert(tmp_path):
    small, big = stem_bytes(10), stem_bytes(2000)
    limit_mb = len(big) / MB / 2
    path = make_zip(tmp_path / "stems.zip", {f"{TITLE}/{TITLE} (Bass).mid": small, f"{TITLE}/{TITLE} (Keys).mid": big})
    result = run("convert", str(path), "-o", str(tmp_path / "out"), "--max-input-mb", f"{limit_mb:g}")
    assert result.exit_code == 1
    failures = [line for line in result.stderr.splitlines() if "is larger than" in line]
    said = [f"{path}: {TITLE}/{TITLE} (Keys).mid is larger than {limit_mb:g} MB; raise the limit with "
            "--max-input-mb; its song's file is written without it, or kept as it was "
            "if it existed; mend it and run again with --overwrite"]  # fmt: skip
    assert failures == said
    [written] = (tmp_path / "out").iterdir()
    assert written.name == f"{TITLE}.mid" and written_notes(written) == {"Bass": 10}
    # a re-run keeps the song's file as it was: the line stays true (no song "converted" claimed)
    again = run("convert", str(path), "-o", str(tmp_path / "out"), "--max-input-mb", f"{limit_mb:g}")
    assert again.exit_code == 1 and "1 skipped (exist)" in again.stderr
    assert [line for line in again.stderr.splitlines() if "is larger than" in line] == said


def test_in_a_zip_of_two_songs_only_a_stem_of_the_song_written_says_it_was_left_out(tmp_path):
    small, big = stem_bytes(10), stem_bytes(2000)
    limit_mb = len(big) / MB / 2
    members = {f"{TITLE} (Keys).mid": small, f"{TITLE} (Bass).mid": big, "Other (Bass).mid": big, "Lone.mid": big}
    path = make_zip(tmp_path / "two songs.zip", {**members, "record.json": padded_record(300)})
    result = run("convert", str(path), "-o", str(tmp_path / "out"), "--max-input-mb", f"{limit_mb:g}")
    assert result.exit_code == 1
    refused = f"is larger than {limit_mb:g} MB; raise the limit with --max-input-mb"
    note = "; its song's file is written without it, or kept as it was if it existed; mend it and run again with --overwrite"
    failures = [line for line in result.stderr.splitlines() if "is larger than" in line]
    assert failures == [
        f"{path}: {TITLE} (Bass).mid {refused}{note}",  # its song is written without it
        f"{path}: Other (Bass).mid {refused}",  # no file of its song was written: a plain re-run makes it
        f"{path}: Lone.mid {refused}",  # a file of its own
    ]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())  # the song, and the JSON record's file
    assert written == [f"{TITLE}.mid", "record.mid"]


def test_a_json_record_in_a_zip_is_named_by_its_task_id_else_its_member_in_convert_and_info(tmp_path):
    with_id = json.dumps({"data": {"taskId": "5c79be8e", "state": "complete", "instruments": [
        {"name": "Piano", "notes": [{"pitch": 62, "start": 0, "end": 0.5, "velocity": 0.8}]}]}}).encode()  # fmt: skip
    members = {"record.json": padded_record(300), "more/other.json": padded_record(300), "task.json": with_id}
    path = make_zip(tmp_path / "two songs.zip", members)
    result = run("convert", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["5c79be8e.mid", "other.mid", "record.mid"]  # not "two songs.zip_ record.mid"
    conductor = mido.MidiFile(tmp_path / "out" / "record.mid").tracks[0]
    assert [m.name for m in conductor if m.type == "track_name"] == ["record"]
    shown = run("info", "--json", str(path))
    assert shown.exit_code == 0, shown.stderr
    assert [(s["source"], s["title"]) for s in json.loads(shown.stdout)] == [
        (f"{path}: record.json", "record"), (f"{path}: more/other.json", "other"), (f"{path}: task.json", "5c79be8e"),
    ]  # fmt: skip


def test_the_member_limit_follows_the_option_above_16_mib(tmp_path):
    member = padded_record(17 * 2**20)  # past the former fixed 16 MiB per member; deflates to ~20 kB
    path = make_zip(tmp_path / "big.zip", {"record.json": member})
    result = run("convert", str(path), "-o", str(tmp_path / "out"), "--max-input-mb", "20")
    assert result.exit_code == 0, result.stderr
    assert [sum(written_notes(p).values()) for p in (tmp_path / "out").iterdir()] == [1]
    refused = run("convert", str(path), "-o", str(tmp_path / "out2"), "--max-input-mb", "17")
    assert refused.exit_code == 1 and "record.json is larger than 17 MB" in refused.stderr


def test_members_past_the_archive_total_refuse_the_archive_in_one_line(tmp_path):
    member = stem_bytes(200)
    limit_mb = len(member) * 1.5 / MB  # each member fits; all of them do not
    count = 2 * ARCHIVE_TOTAL_FACTOR  # 2 x FACTOR members of 1/1.5 limit: past FACTOR x limit
    path = make_zip(tmp_path / "many.zip", {f"{TITLE} ({n}).mid": member for n in range(count)})
    result = run("convert", str(path), "-o", str(tmp_path / "out"), "--max-input-mb", f"{limit_mb:g}")
    assert result.exit_code == 1
    total_mb = ARCHIVE_TOTAL_FACTOR * float(f"{limit_mb:g}")
    assert result.stderr.splitlines()[0].startswith(f"{path}: more than {total_mb:g} MB inflated in all")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    fits = run("convert", str(path), "-o", str(tmp_path / "out"), "--max-input-mb", f"{limit_mb * 2:g}")
    assert fits.exit_code == 0, fits.stderr


def test_a_member_outside_the_archive_fails_alone(tmp_path):
    path = make_zip(
        tmp_path / "mixed.zip", {"../evil.mid": stem_bytes(3), f"{TITLE}/{TITLE} (Bass).mid": stem_bytes(10)}
    )
    result = run("convert", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "points outside the archive" in result.stderr
    [written] = (tmp_path / "out").iterdir()
    assert (
        written.name == f"{TITLE} (Bass).mid"  # its song's only stem (the other member is no stem of it)
        and written_notes(written) == {"Bass": 10}
        and not (tmp_path / "evil.mid").exists()
    )


def test_read_archive_gives_each_member_its_bytes_or_its_error(tmp_path):
    small, big = stem_bytes(5), stem_bytes(500)
    path = make_zip(tmp_path / "s.zip", {"a.mid": small, "b.mid": big, "c.json": b"{}"})
    members = read_archive(InputFile(str(path), "s.zip", False), max_mb=len(big) / MB / 2).members
    assert [(m.name, m.data, m.error is None) for m in members] == [
        ("a.mid", small, True),
        ("b.mid", b"", False),
        ("c.json", b"{}", True),
    ]
    assert isinstance(members[1].error, InputError) and members[1].error.input == "s.zip: b.mid"


def test_info_reads_members_within_its_max_input_mb(tmp_path):
    big = stem_bytes(2000)
    path = make_zip(tmp_path / "stems.zip", {f"{TITLE} (Bass).mid": big})
    limit_mb = len(big) / MB / 2
    refused = run("info", str(path), "--max-input-mb", f"{limit_mb:g}")
    assert refused.exit_code == 1 and f"(Bass).mid is larger than {limit_mb:g} MB" in refused.stderr
    shown = run("info", str(path), "--max-input-mb", f"{limit_mb * 4:g}")
    assert shown.exit_code == 0 and "2000" in shown.stdout


def test_a_stem_at_the_archives_root_is_named_by_its_own_file_name(tmp_path):
    # The song's title comes from "Song (Bass).mid", not from "stems.zip: Song (Bass).mid".
    archive = make_zip(
        tmp_path / "stems.zip", {f"{TITLE} (Bass).mid": stem_bytes(4), f"{TITLE} (Keys).mid": stem_bytes(4, program=4)}
    )
    out = tmp_path / "out"
    result = run("convert", str(archive), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{TITLE}.mid"]
    assert sorted(written_notes(out / f"{TITLE}.mid")) == ["Bass", "Keys"]
    info = run("info", str(archive))
    assert info.exit_code == 0, info.stderr
    assert info.stdout.count(f"title {TITLE},") == 2  # each member's title, not "stems.zip: Song"


def _forged(path: Path, member: str, data: bytes, *, claimed: int | None = None, damage: bool = False) -> Path:
    """Write a one-member-plus-a-good-one zip, then understate ``member``'s size or damage its stream."""
    make_zip(path, {member: data, f"{TITLE} (Keys).mid": stem_bytes(4, program=4)})
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zipped:
        info = zipped.getinfo(member)
    if claimed is not None:  # the uncompressed size, in the local header (offset 22) and the central directory (24)
        raw[info.header_offset + 22 : info.header_offset + 26] = claimed.to_bytes(4, "little")
        for start in [i for i in range(len(raw)) if raw[i : i + 4] == b"PK\x01\x02"]:
            name_len = int.from_bytes(raw[start + 28 : start + 30], "little")
            if raw[start + 46 : start + 46 + name_len].decode() == member:
                raw[start + 24 : start + 28] = claimed.to_bytes(4, "little")
    if damage:  # flip bytes in the middle of the compressed data
        data_start = info.header_offset + 30 + len(member.encode()) + len(info.extra)
        for k in range(data_start + 5, data_start + 25):
            raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def test_a_damaged_member_fails_alone_in_one_line(tmp_path):
    archive = _forged(tmp_path / "stems.zip", f"{TITLE} (Bass).mid", stem_bytes(400), damage=True)
    out = tmp_path / "out"
    result = run("convert", str(archive), "-o", str(out))
    assert result.exit_code == 1
    assert "damaged" in result.stderr and "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert written_notes(out / f"{TITLE}.mid") == {"Keys": 4}  # the good member still converts


def test_info_shows_the_good_members_and_names_a_damaged_one_in_one_line(tmp_path):
    archive = _forged(tmp_path / "stems.zip", f"{TITLE} (Bass).mid", stem_bytes(400), damage=True)
    for args in ((), ("--json",)):
        result = run("info", *args, str(archive))
        assert result.exit_code == 1  # as convert: the others are shown, the failure is named
        [line] = result.stderr.splitlines()
        assert line.startswith(f"{archive}: {TITLE} (Bass).mid is damaged (") and "Traceback" not in line
        shown = json.loads(result.stdout) if args else result.stdout
        if args:
            assert [(s["source"], s["notes"]) for s in shown] == [(f"{archive}: {TITLE} (Keys).mid", 4)]
        else:
            assert f"{archive}: {TITLE} (Keys).mid" in shown and "(Bass)" not in shown and "4 notes" in shown


def test_info_names_a_member_with_nothing_to_read_and_shows_the_others(tmp_path):
    archive = make_zip(
        tmp_path / "stems.zip", {f"{TITLE} (Bass).mid": b"MThd broken", "record.json": padded_record(200)}
    )
    result = run("info", "--json", str(archive))
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{archive}: {TITLE} (Bass).mid")
    assert [s["notes"] for s in json.loads(result.stdout)] == [1]


def test_a_member_that_understates_its_size_is_never_inflated_past_it(tmp_path):
    big = stem_bytes(4000)  # about 32 KB as inflated
    archive = _forged(tmp_path / "stems.zip", f"{TITLE} (Bass).mid", big, claimed=1000)
    members = read_archive(InputFile(str(archive), archive.name, False), max_mb=0.01).members
    bass = next(m for m in members if m.name.endswith("(Bass).mid"))
    assert bass.error is not None and not bass.data  # refused, with none of its bytes kept
    assert next(m for m in members if m.name.endswith("(Keys).mid")).error is None


def one_note_record(pitch: int, **data: object) -> bytes:
    """Return a one-line JSON record: one Piano note of ``pitch``, with ``data``'s fields (taskId, ...)."""
    return json.dumps({"data": {**data, "state": "complete", "instruments": [
        {"name": "Piano", "notes": [{"pitch": pitch, "start": 0, "end": 0.5, "velocity": 0.8}]}]}}).encode()  # fmt: skip


def song_title_of(path: Path) -> list[str]:
    """Return the track names of a written .mid's conductor track (the song's title)."""
    return [m.name for m in mido.MidiFile(path).tracks[0] if m.type == "track_name"]


def test_json_lines_in_a_zip_are_read_line_by_line_as_the_same_file_alone(tmp_path):
    # saved records: a .jsonl (line 2 broken, line 3 titled by its task id) and JSON Lines saved as .json
    saved = b"\n".join([one_note_record(60), b"{not json", one_note_record(62, taskId="5c79be8e")]) + b"\n"
    also = b"\n".join([one_note_record(64), one_note_record(65)]) + b"\n"
    members = {"saved.jsonl": saved, "also.json": also, "more.NDJSON": one_note_record(67) + b"\n"}
    for name, data in members.items():
        (tmp_path / name).write_bytes(data)
    archive = make_zip(tmp_path / "records.zip", members)
    for sources, out in (([tmp_path / name for name in members], "plain"), ([archive], "zipped")):
        result = run("convert", *map(str, sources), "-o", str(tmp_path / out))
        assert result.exit_code == 1, result.stderr  # the broken line fails alone, in one line
        [failure] = [line for line in result.stderr.splitlines() if "not valid JSON" in line]
        where = archive if out == "zipped" else tmp_path
        assert failure.startswith(f"{where}{': ' if out == 'zipped' else '/'}saved.jsonl: line 2 is not valid JSON")
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "also-1.mid", "also-2.mid", "more-1.mid", "saved-1.mid", "saved-3.mid"]  # fmt: skip
    # every record is there, named as alone by its line, the one with a task id too (titled by it inside)
    zipped = sorted(p.name for p in (tmp_path / "zipped").iterdir())
    assert zipped == sorted(p.name for p in (tmp_path / "plain").iterdir())
    for name in zipped:  # the same song, title and notes
        zipped_song, plain_song = tmp_path / "zipped" / name, tmp_path / "plain" / name
        assert song_title_of(zipped_song) == song_title_of(plain_song), name
        assert notes_by_track(zipped_song.read_bytes()) == notes_by_track(plain_song.read_bytes()), name
    shown = run("info", "--json", str(archive))
    assert shown.exit_code == 1
    assert [line.split(" is ")[0] for line in shown.stderr.splitlines()] == [f"{archive}: saved.jsonl: line 2"]
    assert [(s["source"], s["title"], s["parts"][0]["pitch_low"]) for s in json.loads(shown.stdout)] == [
        (f"{archive}: saved.jsonl: line 1", "saved", 60), (f"{archive}: saved.jsonl: line 3", "5c79be8e", 62),
        (f"{archive}: also.json: line 1", "also", 64), (f"{archive}: also.json: line 2", "also", 65),
        (f"{archive}: more.NDJSON: line 1", "more", 67),
    ]  # fmt: skip


def test_a_line_mended_in_a_zip_is_written_under_its_own_name_on_a_re_run(tmp_path):
    # three lines of one task (Suno's clips share it): names by position, as a plain .jsonl's, not by which failed
    lines = [one_note_record(60 + number, taskId="T1") for number in range(3)]
    broken = make_zip(tmp_path / "saved.zip", {"saved.jsonl": b"\n".join([lines[0], b"{not json", lines[2]])})
    first = run("convert", str(broken), "-o", str(tmp_path / "out"))
    assert first.exit_code == 1
    (tmp_path / "saved.jsonl").write_bytes(b"\n".join(lines))
    make_zip(broken, {"saved.jsonl": (tmp_path / "saved.jsonl").read_bytes()})  # line 2 mended
    again = run("convert", str(broken), "-o", str(tmp_path / "out"))
    assert again.exit_code == 0, again.stderr
    plain = run("convert", str(tmp_path / "saved.jsonl"), "-o", str(tmp_path / "plain"))
    assert plain.exit_code == 0, plain.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["saved-1.mid", "saved-2.mid",
                                                                                 "saved-3.mid"]  # fmt: skip
    pitches = [[n[1] for n in notes_by_track((tmp_path / "out" / name).read_bytes())["Piano"]] for name in written]
    assert pitches == [[60], [61], [62]]  # each line's song once, in its own file


def test_a_zip_of_several_songs_into_one_file_is_the_usage_error_of_a_jsonl_before_any_write(tmp_path):
    lines = b"\n".join(one_note_record(60 + number) for number in range(3))
    (tmp_path / "saved.jsonl").write_bytes(lines)
    several = make_zip(tmp_path / "several.zip", {"saved.jsonl": lines})
    out = tmp_path / "x.mid"
    plain, zipped = (
        run("convert", str(tmp_path / "saved.jsonl"), "-o", str(out)),
        run("convert", str(several), "-o", str(out)),
    )
    assert plain.exit_code == zipped.exit_code == 2
    assert zipped.stderr == plain.stderr and "one file but there are several results" in zipped.stderr
    assert not out.exists()  # nothing written, not even the first song
    one = make_zip(tmp_path / "one.zip", {"song.json": one_note_record(60), "notes.txt": b"x"})
    result = run("convert", str(one), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert notes_by_track(out.read_bytes())["Piano"][0][1] == 60


def test_convert_and_info_read_a_member_by_one_rule():
    from midiexport.jobs.json_input import read_member_records

    assert read_member_records(stem_bytes(2), "s.zip: a.json", "a.json") is None  # a .mid by its bytes
    assert read_member_records(b"", "s.zip: A.MIDI", "A.MIDI") is None  # or by its name
    lines = b"\n".join([one_note_record(60), one_note_record(61, title="Hit"), b'{"hello": 1}'])
    items, by_line = read_member_records(lines, "s.zip: saved.json", "dir/saved.json")  # JSON Lines by its lines
    assert by_line and [item.title for item in items] == ["saved", "Hit", None]  # titled after the member


def test_info_names_a_member_holding_no_record_as_it_names_the_same_file_alone(tmp_path):
    (tmp_path / "hello.json").write_bytes(b'{"hello": "world"}')
    archive = make_zip(tmp_path / "mixed.zip", {"hello.json": b'{"hello": "world"}', "song.json": padded_record(200)})
    alone, zipped = run("info", str(tmp_path / "hello.json")), run("info", "--json", str(archive))
    assert alone.exit_code == zipped.exit_code == 1
    assert zipped.stderr == alone.stderr.replace(str(tmp_path / "hello.json"), f"{archive}: hello.json")
    assert [s["title"] for s in json.loads(zipped.stdout)] == ["song"]  # not also an empty "hello" record


def test_files_of_a_zip_that_are_no_records_are_counted_and_named_in_one_line(tmp_path):
    members = {"notes.txt": b"saved on Monday", "record.json": padded_record(200), "cover.wav": b"RIFF",
               "__MACOSX/._record.json": b"\x00\x05\x16\x07", "docs/": b"", "docs/.DS_Store": b"\x00",
               ".git/HEAD": b"ref", "old.zip": b"PK"}  # fmt: skip
    archive = make_zip(tmp_path / "saved.zip", members)
    # Finder's litter (__MACOSX/, .DS_Store) is neither read nor counted; not "skipped", the summary's word for kept files
    said = (f"{archive}: 4 files not read (not .json, .jsonl, .ndjson, .mid or .midi, or hidden): "
            "notes.txt, cover.wav, .git/HEAD and 1 more")  # fmt: skip
    report = tmp_path / "report.json"
    result = run("convert", str(archive), "-o", str(tmp_path / "out"), "--report", str(report))
    assert result.exit_code == 0, result.stderr  # nothing that is a record was left out
    assert [line for line in result.stderr.splitlines() if "not read (not" in line] == [f"warning: {said}"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["record.mid"]
    assert [r["warnings"] for r in json.loads(report.read_text())["results"]] == [[said]]
    shown = run("info", str(archive))
    assert shown.exit_code == 0 and shown.stderr.splitlines() == [f"warning: {said}"]
    # said when the archive's first result is a failure too
    make_zip(archive, {**members, "broken.json": b'{"data": '})
    result = run("convert", str(archive), "-o", str(tmp_path / "again"))
    assert result.exit_code == 1
    assert f"warning: {said}" in result.stderr.splitlines() and f"{archive}: broken.json is not valid JSON" in (
        result.stderr)  # fmt: skip


def test_a_zip_with_no_record_file_names_what_it_holds(tmp_path):
    archive = make_zip(tmp_path / "photos.zip", {"a.txt": b"x", "__MACOSX/._b.json": b"x", "b.png": b"x"})
    for command in ("convert", "info"):
        result = run(command, str(archive))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == (
            f"{archive}: no .json, .jsonl, .ndjson, .mid or .midi files in this archive, "
            "only 2 files: a.txt, b.png")  # fmt: skip
    blank = make_zip(tmp_path / "blank.zip", {"a.txt": b"x", "saved.jsonl": b"\n\n"})  # no record in its JSON either
    alone = make_zip(tmp_path / "alone.zip", {"saved.jsonl": b"\n\n"})
    for command in ("convert", "info"):  # one rule: nothing to convert is a failure, in one line
        result = run(command, str(blank))
        assert result.exit_code == 1 and result.stderr.splitlines()[0] == (
            f"{blank}: 1 file not read (not .json, .jsonl, .ndjson, .mid or .midi, or hidden): a.txt; "
            "no records in the others")  # fmt: skip
        assert "warning" not in result.stderr  # said once, in the failure
        result = run(command, str(alone))
        assert result.exit_code == 1 and result.stderr.splitlines()[0] == f"{alone}: no records in its files (blank)"


def test_a_member_named_with_control_characters_is_named_escaped_in_one_line_by_the_library(tmp_path):
    # Found by bench/fuzz.py: a member named "\n.mid" made a library error of two lines.
    from midiexport import convert_file

    archive = make_zip(tmp_path / "odd.zip", {"\n.mid": b"not MIDI", "a\u202eb.txt": b"x"})
    with pytest.raises(InputError) as caught:
        convert_file(archive, tmp_path / "out")
    assert str(caught.value).startswith(f"{archive}: \\n.mid is not a MIDI file") and "\n" not in str(caught.value)
    found = read_archive(InputFile(str(archive), "odd.zip", False))
    line = found.settle("odd.zip", ["result"], lambda result, line: line)[0]
    assert line.startswith("odd.zip: 1 file not read (") and line.endswith("): a\\u202eb.txt")


ZIP_ON_STDIN = ("<stdin> is a .zip archive, not JSON; a .zip is read from a file whose name ends in .zip: "
                "save it as one and give that file")  # fmt: skip


@pytest.mark.parametrize("command", ["convert", "info"])
def test_a_zip_on_standard_input_says_what_it_is_and_what_to_do(tmp_path, command):
    data = make_zip(tmp_path / "stems.zip", {f"{TITLE} (Bass).mid": stem_bytes(4)}).read_bytes()
    args = ["-", "-o", str(tmp_path / "out")] if command == "convert" else ["-"]
    result = run(command, *args, input=data)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == ZIP_ON_STDIN
    assert result.stdout == ""
    named = run(command, *[str(tmp_path / "stems.zip") if arg == "-" else arg for arg in args])  # what the line advises
    assert named.exit_code == 0, named.stderr


def test_an_empty_zip_named_json_is_said_to_be_a_zip(tmp_path):
    zipfile.ZipFile(tmp_path / "saved.json", "w").close()  # an archive holding nothing: its end record alone
    result = run("convert", str(tmp_path / "saved.json"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == ZIP_ON_STDIN.replace("<stdin>", str(tmp_path / "saved.json"))
