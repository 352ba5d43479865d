"""Output names (jobs/naming.py): a name template, and the default names, for every kind of input.

Inputs are made here, small and by hand: .mid stems written with mido (one track, one
program, a tempo of 120 BPM, a few quarter notes), JSON records of one note. Written
files are read back with mido.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import mido
import pytest

from conftest import make_zip, run
from midiexport import convert_file
from midiexport.jobs.generate import ChainState

# The line after the summary of a re-run that skipped inputs (cli.report.skipped_line).
KEPT_ONE = "1 input skipped: its files exist and were kept (--overwrite replaces them; -v names them)"
KEPT = "{} inputs skipped: their files exist and were kept (--overwrite replaces them; -v names them)"


def stem_bytes(*, program: int = 33, notes: int = 4) -> bytes:
    """Return a .mid of one track, no track name: a tempo of 120 BPM, a program, ``notes`` quarter notes at PPQ 480."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                            mido.Message("program_change", program=program, time=0)])  # fmt: skip
    for index in range(notes):
        track += [mido.Message("note_on", note=40 + index, velocity=90, time=0),
                  mido.Message("note_off", note=40 + index, velocity=0, time=480)]  # fmt: skip
    buffer = io.BytesIO()
    mido.MidiFile(ticks_per_beat=480, tracks=[track]).save(file=buffer)
    return buffer.getvalue()


def record(**data: object) -> dict[str, object]:
    """Return a record-info answer of one note; ``data`` adds fields such as taskId or title."""
    notes = [{"pitch": 60, "start": 0, "end": 0.5, "velocity": 0.8}]
    return {"data": {**data, "state": "complete", "instruments": [{"name": "Piano", "notes": notes}]}}


def song_stems(folder: Path, title: str = "Song") -> list[Path]:
    """Write two stems of one song, Suno's way: ``Title (Bass).mid`` and ``Title (Keys).mid``."""
    folder.mkdir(exist_ok=True)
    paths = [folder / f"{title} (Bass).mid", folder / f"{title} (Keys).mid"]
    paths[0].write_bytes(stem_bytes(program=33))
    paths[1].write_bytes(stem_bytes(program=4))
    return paths


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def track_names(path: Path) -> list[str]:
    return [m.name for track in mido.MidiFile(path).tracks for m in track if m.type == "track_name"]


def test_a_name_template_names_the_song_of_mid_stems(tmp_path):
    stems = song_stems(tmp_path / "export")
    result = run("convert", *map(str, stems), "-o", str(tmp_path / "out"), "--name", "{title} [{stem}] {task_id}")
    assert result.exit_code == 0, result.stderr
    # {stem} is what the stems' names share; a .mid holds no task id, so {task_id} is empty
    assert names(tmp_path / "out") == ["Song [Song].mid"]
    assert track_names(tmp_path / "out" / "Song [Song].mid") == ["Song", "Bass", "Keys"]


def test_a_name_template_names_each_song_of_a_zip(tmp_path):
    members = {
        "Song (Bass).mid": stem_bytes(program=33),
        "Song (Keys).mid": stem_bytes(program=4),
        "task.json": json.dumps(record(taskId="5c79be8e")).encode(),
        "arr.json": json.dumps([record(), record()]).encode(),
    }
    archive = make_zip(tmp_path / "songs.zip", members)
    result = run("convert", str(archive), "-o", str(tmp_path / "out"), "--name", "{stem} - {title} {record} {task_id}")
    assert result.exit_code == 0, result.stderr
    # {stem} is the archive's name; {record} a record's number in a member of several, else empty
    assert names(tmp_path / "out") == ["songs - 5c79be8e 5c79be8e.mid", "songs - Song.mid",
                                       "songs - arr 1.mid", "songs - arr 2.mid"]  # fmt: skip


def test_a_template_that_comes_out_empty_gives_the_default_name(tmp_path):
    stems = song_stems(tmp_path / "export")
    result = run("convert", *map(str, stems), "-o", str(tmp_path / "out"), "--name", "{task_id}{audio_id}")
    assert result.exit_code == 0, result.stderr
    assert names(tmp_path / "out") == ["Song.mid"]  # as a JSON record without a task id is named


def test_a_template_splits_mid_stems_by_instrument(tmp_path):
    stems = song_stems(tmp_path / "export")
    result = run("convert", *map(str, stems), "-o", str(tmp_path / "out"), "--split", "--name", "{instrument} ({stem})")
    assert result.exit_code == 0, result.stderr
    assert names(tmp_path / "out") == ["Bass (Song).mid", "Keys (Song).mid"]


def test_a_template_never_names_a_file_after_a_mid_input_of_its_own(tmp_path):
    stems = song_stems(tmp_path)
    lone = tmp_path / "lone.mid"
    lone.write_bytes(stem_bytes())
    before = {p: p.read_bytes() for p in (*stems, lone)}
    for template, split in (("{title}", []), ("{title} ({instrument})", ["--split"])):
        result = run("convert", *map(str, before), "--name", template, *split, "--overwrite")
        assert result.exit_code == 0, result.stderr
    assert {p: p.read_bytes() for p in before} == before  # every input as it was
    assert names(tmp_path) == ["Song (Bass)-midiexport.mid", "Song (Bass).mid", "Song (Keys)-midiexport.mid",
                               "Song (Keys).mid", "Song.mid", "lone (lone).mid", "lone-midiexport.mid", "lone.mid"]  # fmt: skip


def test_no_input_of_the_run_is_replaced_by_another_inputs_song(tmp_path):
    first, second = tmp_path / "a.mid", tmp_path / "b.mid"
    first.write_bytes(stem_bytes(program=33))
    second.write_bytes(stem_bytes(program=4, notes=6))
    task = tmp_path / "b.json"  # its default name is b.mid, an input too
    task.write_text(json.dumps(record()))
    before = {p: p.read_bytes() for p in (first, second, task)}
    result = run("convert", str(first), str(second), "--name", "b", "--overwrite")  # a.mid's song named b.mid
    assert result.exit_code == 0, result.stderr
    result = run("convert", str(task), str(second), "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert {p: p.read_bytes() for p in before} == before  # every input as it was
    # b.mid's own song is named "b" (b.mid taken by b.json's claim, cleared by path): b-2.mid, as in the first run
    assert names(tmp_path) == ["a.mid", "b-2.mid", "b-midiexport.mid", "b.json", "b.mid"]
    # -o naming an input is refused before any work
    result = run("convert", str(first), "-o", str(tmp_path / "." / "a.mid"), "--overwrite")
    assert result.exit_code == 2 and f"-o {tmp_path / '.' / 'a.mid'} is an input of this run" in result.stderr
    assert {p: p.read_bytes() for p in before} == before


def test_the_cleared_name_is_kept_off_an_input_too(tmp_path):
    song, cleared = tmp_path / "b.mid", tmp_path / "b-midiexport.mid"  # b.mid's cleared name is the second input
    song.write_bytes(stem_bytes(program=33))
    cleared.write_bytes(stem_bytes(program=4, notes=6))
    before = {p: p.read_bytes() for p in (song, cleared)}
    result = run("convert", str(song), str(cleared), "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert {p: p.read_bytes() for p in before} == before  # neither input written over, even with --overwrite
    assert names(tmp_path) == ["b-midiexport-2.mid", "b-midiexport-3.mid", "b-midiexport.mid", "b.mid"]


def test_a_song_is_kept_off_an_input_by_its_path_alone_not_by_its_name(tmp_path):
    archive = make_zip(tmp_path / "songs.zip", {"a.json": json.dumps(record(title="songs")).encode()})
    result = run("convert", str(archive))
    assert result.exit_code == 0, result.stderr
    assert names(tmp_path) == ["songs.mid", "songs.zip"]  # songs.mid is no input: the song keeps its own name
    lone = tmp_path / "lone.mid"  # a .mid's song is named after its file: lone.mid again
    lone.write_bytes(stem_bytes())
    beside = run("convert", str(lone))
    elsewhere = run("convert", str(lone), "-o", str(tmp_path / "out"))
    assert beside.exit_code == elsewhere.exit_code == 0, beside.stderr + elsewhere.stderr
    assert "lone-midiexport.mid" in names(tmp_path) and lone.read_bytes() == stem_bytes()  # beside: the input's path
    assert names(tmp_path / "out") == ["lone.mid"]  # in another folder no input is in the way


def test_untitled_records_of_a_zip_member_are_named_as_in_a_plain_file(tmp_path):
    untitled = json.dumps([record(), record(), record()]).encode()
    (tmp_path / "arr.json").write_bytes(untitled)
    archive = make_zip(tmp_path / "songs.zip", {"arr.json": untitled, "one.json": json.dumps([record()]).encode(),
                                               "titled.json": json.dumps([record(title="Hit"), record()]).encode()})  # fmt: skip
    for source, out in ((tmp_path / "arr.json", "plain"), (archive, "zipped")):
        result = run("convert", str(source), "-o", str(tmp_path / out))
        assert result.exit_code == 0, result.stderr
    assert names(tmp_path / "plain") == ["arr-1.mid", "arr-2.mid", "arr-3.mid"]  # <input name>-<record number>
    # the member's records as the plain file's, not "arr.mid", "arr-2.mid" (numbered as a clash); a member of one
    # record is named after the member; records of a member of several by their numbers, titled or not
    assert names(tmp_path / "zipped") == ["arr-1.mid", "arr-2.mid", "arr-3.mid", "one.mid", "titled-1.mid",
                                          "titled-2.mid"]  # fmt: skip
    assert track_names(tmp_path / "zipped" / "arr-2.mid")[0] == track_names(tmp_path / "plain" / "arr-2.mid")[0]


def one_note(pitch: int, **data: object) -> bytes:
    """Return a record (``record``) whose one note has ``pitch``: 200 is out of range, so the record fails."""
    answer = record(**data)
    answer["data"]["instruments"][0]["notes"][0]["pitch"] = pitch  # type: ignore[index]
    return json.dumps(answer).encode()


def pitches(path: Path) -> list[int]:
    return sorted({m.note for track in mido.MidiFile(path).tracks for m in track if m.type == "note_on"})


@pytest.mark.parametrize("kind", ["zip members", "plain files by --name"])
def test_a_failed_song_still_takes_its_name_so_a_re_run_after_mending_it_writes_it(tmp_path, kind):
    def convert(first: bytes) -> Any:
        second = one_note(62, title="T1")
        if kind == "zip members":  # each of one record: named after its title
            (tmp_path / "songs.zip").unlink(missing_ok=True)
            inputs = [str(make_zip(tmp_path / "songs.zip", {"a.json": first, "b.json": second}))]
        else:
            (tmp_path / "a.json").write_bytes(first)
            (tmp_path / "b.json").write_bytes(second)
            inputs = [str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--name", "{title}"]
        return run("convert", *inputs, "-o", str(tmp_path / "out"))

    broken = convert(one_note(200, title="T1"))  # its only note out of range: it fails once read
    assert broken.exit_code == 1 and "has no valid notes to convert" in broken.stderr
    assert names(tmp_path / "out") == ["T1-2.mid"]  # the second song's name, whether the first converts or not
    mended = convert(one_note(60, title="T1"))
    assert mended.exit_code == 0, mended.stderr
    assert names(tmp_path / "out") == ["T1-2.mid", "T1.mid"]
    assert [pitches(tmp_path / "out" / name) for name in ("T1.mid", "T1-2.mid")] == [[60], [62]]  # each song once


@pytest.mark.parametrize("where", ["json", "zip"])
def test_a_line_that_is_not_json_claims_the_name_it_would_have_had(tmp_path, where):
    lines = [json.dumps(record(taskId=f"t{n}")) for n in (1, 2, 3)]
    broken = "\n".join([lines[0], '{"data": ', lines[2]]).encode()
    mended = "\n".join(lines).encode()

    def save(data: bytes) -> Path:  # a .json holding JSON Lines, or a .jsonl member of a .zip
        if where == "zip":
            return make_zip(tmp_path / "songs.zip", {"saved.jsonl": data})
        (tmp_path / "saved.json").write_bytes(data)
        return tmp_path / "saved.json"

    out = tmp_path / "out"
    first = run("convert", str(save(broken)), "-o", str(out), "--name", "{stem}")
    assert first.exit_code == 1 and "line 2" in first.stderr
    stem = "songs" if where == "zip" else "saved"  # every line is named {stem}: taken in line order
    assert names(out) == [f"{stem}-3.mid", f"{stem}.mid"]  # line 3 leaves line 2's name to it
    # no --overwrite: a .json named by "{stem}" is not planned as one record ("saved.mid", which exists), so it is read
    again = run("convert", str(save(mended)), "-o", str(out), "--name", "{stem}")
    assert again.exit_code == 0, again.stderr
    assert names(out) == [f"{stem}-2.mid", f"{stem}-3.mid", f"{stem}.mid"]
    assert mido.MidiFile(out / f"{stem}-2.mid").length > 0


@pytest.mark.parametrize("planned", [False, True])
def test_one_named_file_never_takes_a_second_result_even_past_pending(tmp_path, planned):
    from midiexport.errors import OutputError
    from midiexport.jobs.runner import Destination

    out = tmp_path / "one.mid"
    destination = Destination(str(out))
    assert destination.write(None, "first", b"first") == str(out)
    with pytest.raises(OutputError, match="names one file but there are several results"):
        destination.write(None, "second", b"second", out if planned else None)
    assert out.read_bytes() == b"first"


def test_a_json_named_by_stem_alone_is_read_again_and_its_file_kept(tmp_path):
    # "{stem}" names every record of the file alike (one, one-2): the first one's name cannot stand for them all
    source = tmp_path / "one.json"
    source.write_text(json.dumps([record(taskId="t1"), record(taskId="t2")]))
    out = tmp_path / "out"
    assert run("convert", str(source), "-o", str(out), "--name", "{stem}").exit_code == 0
    assert names(out) == ["one-2.mid", "one.mid"]
    (out / "one.mid").write_bytes(b"kept")
    (out / "one-2.mid").unlink()  # as if the second record had failed, then been mended
    again = run("convert", str(source), "-o", str(out), "--name", "{stem}")
    assert again.exit_code == 0, again.stderr
    assert "skipped" in again.stderr and (out / "one.mid").read_bytes() == b"kept"  # read, then its file kept
    assert mido.MidiFile(out / "one-2.mid").length > 0  # not skipped whole because one.mid exists


@pytest.mark.parametrize("template", ["{task_id}{audio_id}", " - "])  # empty from the content; from the place alone
def test_a_template_that_fills_in_empty_gives_the_numbered_default_name(tmp_path, template):
    (tmp_path / "songs.jsonl").write_text("\n".join(json.dumps(record()) for _ in range(3)))
    (tmp_path / "one.json").write_text(json.dumps(record()))
    inputs = [str(tmp_path / "songs.jsonl"), str(tmp_path / "one.json")]
    result = run("convert", *inputs, "-o", str(tmp_path / "out"), "--name", template)
    assert result.exit_code == 0, result.stderr
    assert names(tmp_path / "out") == ["one.mid", "songs-1.mid", "songs-2.mid", "songs-3.mid"]


# Re-runs over a folder: a folder search leaves out the .mid files midiexport wrote (their first track
# opens with "@Isource: ..." at tick 0); Suno's exports carry no such text, and a file named alone is read.


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def left_out_line(count: int) -> str:
    files = "file" if count == 1 else "files"
    return f"{count} .mid {files} midiexport wrote left out of the folder search (name one to convert it again)"


@pytest.mark.parametrize("options", [[], ["--format", "0"], ["--split"], ["--bpm", "auto"], ["--name", "{title}"]])
def test_a_re_run_over_a_folder_writes_nothing_and_says_what_it_left_out(tmp_path, options):
    song_stems(tmp_path)
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    first = run("convert", str(tmp_path), *options)
    assert first.exit_code == 0, first.stderr
    written = sorted(set(names(tmp_path)) - {"Song (Bass).mid", "Song (Keys).mid", "task.json"})
    assert written and left_out_line(len(written)) not in first.stderr
    before = files_of(tmp_path)
    again = run("convert", str(tmp_path), *options)
    assert again.exit_code == 0, again.stderr
    assert files_of(tmp_path) == before  # no file added, none rewritten
    # the stems are read (--bpm auto says their tempo), and their song's file kept: both inputs count as skipped
    lines = again.stderr.splitlines()
    assert lines[0] == left_out_line(len(written))
    assert lines[-2:] == ["0 converted (0 notes), 0 repaired (0 repairs), 2 skipped (exist), 0 failed", KEPT.format(2)]


def test_the_report_and_convert_file_count_the_files_a_re_run_left_out(tmp_path):
    folder = tmp_path / "songs"
    song_stems(folder)
    (folder / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    report = tmp_path / "report.json"
    first = run("convert", str(folder), "--report", str(report))
    assert first.exit_code == 0, first.stderr
    assert json.loads(report.read_text())["written_mid_left_out"] == 0
    written = sorted(set(names(folder)) - {"Song (Bass).mid", "Song (Keys).mid", "task.json"})
    again = run("convert", str(folder), "--report", str(report))
    assert again.exit_code == 0, again.stderr
    data = json.loads(report.read_text())
    assert data["written_mid_left_out"] == len(written) == 2
    assert [result["outcome"] for result in data["results"]] == ["skipped", "skipped"]  # the outputs are no results
    paths = convert_file(folder, overwrite=True)  # the library's caller reads the same count
    assert paths.left_out == len(written) and sorted(p.name for p in paths) == written
    assert convert_file(folder / "task.json", overwrite=True).left_out == 0  # a file named alone: no search


SIDE_LINE = "midiexport wrote left out of the folder search (name one to read it as given)"


def test_a_report_and_a_generate_state_in_the_folder_are_left_out_and_read_when_named(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    (folder / "9f3a.generate.json").write_bytes(ChainState("9f3a", midi_task="5c79be8e").to_json())
    (folder / "song.generate.json").write_text(json.dumps(record(taskId="77aa")))  # a record by that name: an input
    report = folder / "report.json"
    first = run("convert", str(folder), "--report", str(report))
    assert first.exit_code == 0, first.stderr
    assert first.stderr.splitlines()[0] == f"1 report or generate state file {SIDE_LINE}"
    again = run("convert", str(folder), "--report", str(report))
    assert again.exit_code == 0, again.stderr
    lines = again.stderr.splitlines()
    assert lines[0] == f"2 .mid files and 2 report or generate state files {SIDE_LINE}"
    assert lines[-2:] == ["0 converted (0 notes), 0 repaired (0 repairs), 2 skipped (exist), 0 failed", KEPT.format(2)]
    data = json.loads(report.read_text())
    assert [result["input"] for result in data["results"]] == [
        str(folder / n) for n in ("song.generate.json", "task.json")
    ]
    assert data["written_mid_left_out"] == 2  # the .mid files only, as its name says
    named = run("convert", str(report))  # named alone: read as given, and no record
    assert named.exit_code == 1
    assert named.stderr.splitlines()[0].startswith(f"{report}: holds no MIDI data")


def test_a_folder_of_only_a_report_is_refused_as_one_of_only_outputs(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.json").write_bytes(run("convert", str(tmp_path / "none.json"), "--report", "-").stdout_bytes)
    result = run("convert", str(folder))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{folder}: only report or generate state files midiexport wrote in this folder (1), which a folder search "
        "leaves out; name one to read it as given"
    ]


def test_convert_file_re_run_over_a_folder_keeps_the_files_and_reads_what_it_left_out(tmp_path):
    folder = tmp_path / "songs"
    song_stems(folder)
    (folder / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    first = convert_file(folder)
    assert sorted(p.name for p in first) == ["Song.mid", "task.mid"] and first.left_out == 0
    before = files_of(folder)
    again = convert_file(folder)  # no overwrite: as `convert DIR` run again, the finished inputs are skipped
    assert again == [] and sorted(again.existing) == sorted(first)
    assert again.left_out == 2  # the outputs of the first call, left out of the search
    assert files_of(folder) == before


def test_outputs_under_an_earlier_versions_names_are_left_out_by_their_mark_not_their_name(tmp_path):
    # Earlier versions wrote names today's do not (before 32726fd, songs-midiexport.mid for a song titled
    # "songs" in songs.zip; before 447b236, a re-run over a folder read task.mid as an input and wrote the
    # JSON's song as task-midiexport.mid, task.mid's under its title). Their files carry the same mark.
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path)).exit_code == 0
    for old_name in ("task-midiexport.mid", "5c79be8e.mid"):
        shutil.copy(tmp_path / "task.mid", tmp_path / old_name)
    before = files_of(tmp_path)
    again = run("convert", str(tmp_path))
    assert again.exit_code == 0, again.stderr
    assert files_of(tmp_path) == before
    assert again.stderr.splitlines() == [
        left_out_line(3), "0 converted (0 notes), 0 repaired (0 repairs), 1 skipped (exist), 0 failed", KEPT_ONE,
    ]  # fmt: skip


def test_a_suno_style_mid_added_to_the_folder_is_read_and_the_outputs_are_not(tmp_path):
    song_stems(tmp_path)
    assert run("convert", str(tmp_path)).exit_code == 0
    assert names(tmp_path) == ["Song (Bass).mid", "Song (Keys).mid", "Song.mid"]
    (tmp_path / "Other (Bass).mid").write_bytes(stem_bytes(program=34, notes=3))  # a new export, with no text events
    again = run("convert", str(tmp_path), "-v")
    assert again.exit_code == 0, again.stderr
    other = "Other (Bass)-midiexport.mid"  # its song's only stem: named as it, clear of its own path
    assert names(tmp_path) == [other, "Other (Bass).mid", "Song (Bass).mid", "Song (Keys).mid", "Song.mid"]
    assert pitches(tmp_path / other) == [40, 41, 42]
    assert left_out_line(1) in again.stderr and f"wrote {tmp_path / other}" in again.stderr


def test_a_re_run_with_overwrite_rewrites_each_file_under_its_own_name(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path)).exit_code == 0
    (tmp_path / "task.mid").write_bytes((tmp_path / "task.mid").read_bytes() + b"stale")  # still marked as ours
    again = run("convert", str(tmp_path), "--overwrite")
    assert again.exit_code == 0, again.stderr
    assert names(tmp_path) == ["task.json", "task.mid"]  # not task-midiexport.mid: its own file is no input
    assert f"wrote {tmp_path / 'task.mid'}" in again.stderr
    assert not (tmp_path / "task.mid").read_bytes().endswith(b"stale")


def test_an_output_named_alone_or_in_a_zip_is_read(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path)).exit_code == 0
    output = tmp_path / "task.mid"
    named = run("convert", str(output), "-o", str(tmp_path / "named"))  # to clean an output again, on purpose
    assert named.exit_code == 0, named.stderr
    (tmp_path / "zipped").mkdir()
    make_zip(tmp_path / "zipped" / "outputs.zip", {"task.mid": output.read_bytes()})
    zipped = run("convert", str(tmp_path / "zipped"), "-o", str(tmp_path / "from-zip"))  # a member is read as always
    assert zipped.exit_code == 0, zipped.stderr
    for folder in ("named", "from-zip"):
        [name] = names(tmp_path / folder)
        assert pitches(tmp_path / folder / name) == [60]
    assert "left out" not in named.stderr + zipped.stderr


def test_a_folder_holding_only_outputs_is_refused_in_one_line_and_info_shows_them(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path), "-o", str(tmp_path / "out")).exit_code == 0
    result = run("convert", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr == (f"{tmp_path / 'out'}: only .mid files midiexport wrote in this folder (1), which a folder "
                             "search leaves out; name one to convert it again\n")  # fmt: skip
    assert names(tmp_path / "out") == ["task.mid"]
    shown = run("info", str(tmp_path / "out"))  # info writes nothing: it shows every file, outputs included
    assert shown.exit_code == 0 and str(tmp_path / "out" / "task.mid") in shown.stdout


def test_a_folder_holding_only_outputs_still_writes_the_report_asked_for(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path), "-o", str(tmp_path / "out")).exit_code == 0
    report = tmp_path / "report.json"
    result = run("convert", str(tmp_path / "out"), "--report", str(report))
    assert result.exit_code == 1  # refused, as README says: nothing converted is never a success
    refusal = (f"{tmp_path / 'out'}: only .mid files midiexport wrote in this folder (1), which a folder search "
               "leaves out; name one to convert it again")  # fmt: skip
    assert result.stderr == refusal + "\n"
    data = json.loads(report.read_text())
    assert data["written_mid_left_out"] == 1
    assert data["results"] == [{"input": str(tmp_path / "out"), "outcome": "failed", "files": [], "existing": [],
                                "notes": 0, "counts": {}, "notes_left_out": {}, "warnings": [], "error": refusal}]  # fmt: skip
    assert data["summary"]["converted"] == 0 and data["summary"]["failed"] == 1


@pytest.mark.parametrize("damage", ["cut in its header", "cut before the mark", "not MIDI at all"])
def test_a_damaged_mid_in_a_folder_still_fails_as_an_input(tmp_path, damage):
    task = tmp_path / "task.json"
    task.write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(task)).exit_code == 0
    output = (tmp_path / "task.mid").read_bytes()
    bad = {"cut in its header": output[:10], "cut before the mark": output[:20], "not MIDI at all": b"@Isource: x"}
    (tmp_path / "task.mid").write_bytes(bad[damage])  # damaged, it is no file midiexport wrote: an input
    result = run("convert", str(tmp_path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    wrote, failed, summary = result.stderr.splitlines()  # task.json's file, then task.mid's failure: no notice
    assert wrote == f"wrote {tmp_path / 'out' / 'task.mid'}"
    assert failed.startswith(f"{tmp_path / 'task.mid'} is not a") and "MIDI file" in failed
    assert summary == "1 converted (1 note), 0 repaired (0 repairs), 0 skipped (exist), 1 failed"


# A shell's glob (`convert *.mid`, `convert *`) names the outputs of the last run too: a .mid midiexport
# wrote from another input of the run is left out, so a re-run writes the same files as the first run.

OWN_LINE = "midiexport wrote from another input of this run left out"


def glob_of(folder: Path, pattern: str = "*") -> list[str]:
    """What a shell's ``folder/pattern`` names: the matching entries, sorted."""
    return sorted(str(p) for p in folder.glob(pattern))


@pytest.mark.parametrize("options", [[], ["--split"], ["--bpm", "auto"], ["--name", "{title} ({stem})"]])
def test_a_glob_of_a_download_folder_run_again_writes_the_same_files(tmp_path, options):
    song_stems(tmp_path)
    first = run("convert", *glob_of(tmp_path, "*.mid"), *options)
    assert first.exit_code == 0, first.stderr
    written = sorted(set(names(tmp_path)) - {"Song (Bass).mid", "Song (Keys).mid"})
    assert written and OWN_LINE not in first.stderr
    before = files_of(tmp_path)
    for _ in range(2):
        again = run("convert", *glob_of(tmp_path, "*.mid"), *options)
        assert again.exit_code == 0, again.stderr
        assert files_of(tmp_path) == before  # no "-2", no "-midiexport": the same files, none rewritten
        lines = again.stderr.splitlines()
        files = "file" if len(written) == 1 else "files"
        hint = (
            "it again or keeps it; name it alone" if len(written) == 1 else "them again or keeps them; name one alone"
        )
        assert lines[0] == f"{len(written)} .mid {files} {OWN_LINE} (this run writes {hint} to convert it)"  # kept
        assert lines[-2:] == ["0 converted (0 notes), 0 repaired (0 repairs), 1 skipped (exist), 0 failed", KEPT_ONE]


def test_a_glob_of_every_kind_of_input_run_again_writes_the_same_files(tmp_path):
    song_stems(tmp_path)
    (tmp_path / "lone.mid").write_bytes(stem_bytes(program=40, notes=2))  # no stem name: lone-midiexport.mid
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))  # its mark names the task
    (tmp_path / "plain.json").write_text(json.dumps(record()))  # no ids: its mark names the file
    (tmp_path / "songs.jsonl").write_text(json.dumps(record(taskId="a1")) + "\n" + json.dumps(record()) + "\n")
    make_zip(tmp_path / "pack.zip", {"Zipped (Bass).mid": stem_bytes(program=35)})
    first = run("convert", *glob_of(tmp_path))
    assert first.exit_code == 0, first.stderr
    assert sorted(set(names(tmp_path)) - {p.name for p in tmp_path.iterdir() if p.suffix != ".mid"}) == [
        "Song (Bass).mid", "Song (Keys).mid", "Song.mid", "Zipped (Bass).mid", "lone-midiexport.mid", "lone.mid",
        "plain.mid", "songs-1.mid", "songs-2.mid", "task.mid",
    ]  # fmt: skip
    before = files_of(tmp_path)
    again = run("convert", *glob_of(tmp_path))
    assert again.exit_code == 0, again.stderr
    assert files_of(tmp_path) == before
    assert again.stderr.splitlines()[0].startswith(f"7 .mid files {OWN_LINE} (")
    assert again.stderr.splitlines()[-2:] == [
        "0 converted (0 notes), 0 repaired (0 repairs), 7 skipped (exist), 0 failed",
        KEPT.format(7).replace("inputs", "records"),  # with JSON Lines in the batch, its units are records
    ]


def test_a_glob_run_again_with_overwrite_replaces_the_songs_file_under_its_own_name(tmp_path):
    song_stems(tmp_path)
    assert run("convert", *glob_of(tmp_path, "*.mid")).exit_code == 0
    (tmp_path / "Song.mid").write_bytes((tmp_path / "Song.mid").read_bytes() + b"stale")  # still marked as ours
    again = run("convert", *glob_of(tmp_path, "*.mid"), "--overwrite")
    assert again.exit_code == 0, again.stderr
    assert names(tmp_path) == ["Song (Bass).mid", "Song (Keys).mid", "Song.mid"]
    assert f"wrote {tmp_path / 'Song.mid'}" in again.stderr
    assert not (tmp_path / "Song.mid").read_bytes().endswith(b"stale")
    assert pitches(tmp_path / "Song.mid") == [40, 41, 42, 43]


def test_a_mid_midiexport_wrote_from_no_input_of_the_run_is_read_as_given(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path / "old" / "task.json")).exit_code == 0
    (tmp_path / "new.json").write_text(json.dumps(record(taskId="77aa")))
    output = tmp_path / "old" / "task.mid"  # beside no input of the next run, and from none of them
    result = run("convert", str(tmp_path / "new.json"), str(output), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert "left out" not in result.stderr
    assert names(tmp_path / "out") == ["5c79be8e.mid", "new.mid"]  # the output, cleaned again: named by its title


def test_a_users_dashed_name_beside_a_json_is_converted_unless_this_run_writes_that_name(tmp_path):
    (tmp_path / "song.json").write_text(json.dumps(record(taskId="5c79be8e")))  # its file: song.mid
    (tmp_path / "other.json").write_text(json.dumps(record(taskId="77aa")))
    assert run("convert", str(tmp_path / "other.json")).exit_code == 0
    (tmp_path / "other.mid").rename(tmp_path / "song-live.mid")  # a user's name: the mark names task 77aa
    shutil.copy(tmp_path / "song-live.mid", tmp_path / "song-2.mid")  # a name this run could write
    result = run("convert", *glob_of(tmp_path, "song*"), "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert (
        result.stderr.splitlines()[0]
        == f"1 .mid file {OWN_LINE} (this run writes it again or keeps it; name it alone to convert it)"
    )
    assert f"wrote {tmp_path / '77aa.mid'}" in result.stderr  # song-live.mid converted, named by its title
    assert names(tmp_path) == ["77aa.mid", "other.json", "song-2.mid", "song-live.mid", "song.json", "song.mid"]


def test_the_report_counts_the_outputs_a_glob_named(tmp_path):
    song_stems(tmp_path / "dl")
    report = tmp_path / "report.json"
    assert run("convert", *glob_of(tmp_path / "dl")).exit_code == 0
    again = run("convert", *glob_of(tmp_path / "dl"), "--report", str(report))
    assert again.exit_code == 0, again.stderr
    data = json.loads(report.read_text())
    assert data["written_mid_left_out"] == 1
    assert [result["input"] for result in data["results"]] == [str(tmp_path / "dl" / "Song (Bass).mid and 1 more stem")]


# The same input reached twice is read once.


@pytest.mark.parametrize("second", ["the same path", "another spelling", "its folder", "a link to it"])
def test_an_input_reached_twice_is_converted_once_and_said(tmp_path, second):
    task = tmp_path / "in" / "task.json"
    task.parent.mkdir()
    task.write_text(json.dumps(record(taskId="5c79be8e")))
    (tmp_path / "link.json").symlink_to(task)
    again = {"the same path": str(task), "another spelling": str(tmp_path / "in" / ".." / "in" / "task.json"),
             "its folder": str(task.parent), "a link to it": str(tmp_path / "link.json")}[second]  # fmt: skip
    result = run("convert", str(task), again, "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert names(tmp_path / "out") == ["task.mid"]  # no task-2.mid
    lines = result.stderr.splitlines()
    assert lines[0] == "1 input given again (the same file named twice, or named and in a folder searched) read once"
    assert lines[-1] == "1 converted (1 note), 0 repaired (0 repairs), 0 skipped (exist), 0 failed"


def test_a_named_output_found_again_in_its_folder_is_said_once_as_left_out(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "a.json").write_text(json.dumps(record()))  # no ids: its file's mark names a.json
    assert run("convert", str(tmp_path / "e" / "a.json")).exit_code == 0
    result = run("convert", str(tmp_path / "e" / "a.mid"), str(tmp_path / "e"))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()  # a.json's file exists: kept, so the line must not say it is written
    assert lines == [f"1 .mid file {OWN_LINE} (this run writes it again or keeps it; name it alone to convert it)",
                     "0 converted (0 notes), 0 repaired (0 repairs), 1 skipped (exist), 0 failed", KEPT_ONE]  # fmt: skip


def test_one_input_given_twice_may_go_to_one_named_file(tmp_path):
    task = tmp_path / "task.json"
    task.write_text(json.dumps(record(taskId="5c79be8e")))
    result = run("convert", str(task), str(task), "-o", str(tmp_path / "song.mid"))
    assert result.exit_code == 0, result.stderr
    assert pitches(tmp_path / "song.mid") == [60]


def test_a_folder_given_twice_is_searched_once_and_its_outputs_counted_once(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path)).exit_code == 0  # writes task.mid, which a search leaves out
    result = run("convert", str(tmp_path), str(tmp_path) + "/", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert names(tmp_path / "out") == ["task.mid"]
    assert result.stderr.splitlines()[:2] == [
        left_out_line(1), "1 input given again (the same file named twice, or named and in a folder searched) read once"
    ]  # fmt: skip


def test_an_output_named_after_its_folder_is_left_out_there_and_refuses_nothing(tmp_path):
    # The named .mid was met (and left out) in the folder before: no path "holding only outputs".
    (tmp_path / "task.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path)).exit_code == 0
    result = run("convert", str(tmp_path), str(tmp_path / "task.mid"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert names(tmp_path / "out") == ["task.mid"]
    assert result.stderr.splitlines()[0] == left_out_line(1)


def test_a_folder_of_outputs_after_one_of_reports_gets_its_own_hint(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "song.json").write_text(json.dumps(record(taskId="5c79be8e")))
    assert run("convert", str(tmp_path / "a"), "--report", str(tmp_path / "a" / "report.json")).exit_code == 0
    assert run("convert", str(tmp_path / "a"), "-o", str(tmp_path / "b")).exit_code == 0
    result = run("convert", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "c"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].endswith("which a folder search leaves out; name one to convert it again")


def test_a_glob_of_records_with_ids_split_per_instrument_run_again_writes_the_same_files(tmp_path):
    drums = {"name": "Drums", "notes": [{"pitch": 36, "start": 0, "end": 0.25, "velocity": 1}]}
    data = record(taskId="5c79be8e")
    data["data"]["instruments"].append(drums)  # type: ignore[index]
    (tmp_path / "task.json").write_text(json.dumps(data))  # its files' marks name the task, not the file
    first = run("convert", *glob_of(tmp_path), "--split")
    assert first.exit_code == 0, first.stderr
    assert names(tmp_path) == ["task-Drums.mid", "task-Piano.mid", "task.json"]
    before = files_of(tmp_path)
    again = run("convert", *glob_of(tmp_path), "--split")
    assert again.exit_code == 0, again.stderr
    assert files_of(tmp_path) == before
    assert again.stderr.splitlines()[0].startswith(f"2 .mid files {OWN_LINE} (")


def test_split_files_named_by_a_gm_name_with_a_parenthesis_are_no_suno_stems(tmp_path):
    notes = [{"pitch": 40, "start": 0, "end": 0.5, "velocity": 0.8}]
    parts = [{"name": name, "notes": notes} for name in ("Electric Bass (finger)", "Electric Bass (pick)")]
    (tmp_path / "two.json").write_text(json.dumps({"data": {"taskId": "5c79be8e", "state": "complete",
                                                            "instruments": parts}}))  # fmt: skip
    assert run("convert", str(tmp_path / "two.json"), "--split", "-o", str(tmp_path / "split")).exit_code == 0
    assert names(tmp_path / "split") == ["two-Electric Bass (finger).mid", "two-Electric Bass (pick).mid"]
    shown = run("info", "--json", *glob_of(tmp_path / "split"))
    assert [summary["title"] for summary in json.loads(shown.stdout)] == [
        "5c79be8e - Electric Bass (finger)", "5c79be8e - Electric Bass (pick)"]  # fmt: skip
    again = run("convert", *glob_of(tmp_path / "split"), "-o", str(tmp_path / "again"))
    assert again.exit_code == 0, again.stderr
    assert len(names(tmp_path / "again")) == 2  # two songs' files, not "(finger)" and "(pick)" stems joined
