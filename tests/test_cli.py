from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest

from conftest import (
    SAMPLE,
    api_notes,
    channel_events,
    fixture_path,
    load_fixture,
    mido_file,
    names_a_flag,
    package_env,
    pretty,
    record_payload,
    run,
)
from midiexport.cli import START_UP_ALLOCATIONS, main


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "task.json"
    shutil.copy(fixture_path("record-info.json"), path)
    return path


def test_convert_writes_the_mid_beside_its_input(example):
    result = run("convert", str(example))
    assert result.exit_code == 0, result.stderr
    target = example.with_suffix(".mid")
    assert result.stderr.splitlines() == [
        f"wrote {target}",
        "1 converted (3 notes), 0 repaired (0 repairs), 0 skipped (exist), 0 failed",
    ]
    assert result.stdout == ""
    midi = pretty(target.read_bytes())
    assert [(i.name, i.is_drum, i.program) for i in midi.instruments] == [
        ("Drums", True, 0), ("Electric Bass (finger)", False, 33),
    ]  # fmt: skip


def test_existing_file_is_kept_without_overwrite(example):
    target = example.with_suffix(".mid")
    target.write_bytes(b"keep me")
    result = run("convert", str(example))
    assert result.exit_code == 0  # a finished input is skipped, not a failure
    assert result.stderr.splitlines() == [
        "0 converted (0 notes), 0 repaired (0 repairs), 1 skipped (exist), 0 failed",
        "1 input skipped: its files exist and were kept (--overwrite replaces them; -v names them)",
    ]  # not with -v, which names each file kept (below)
    assert run("convert", str(example), "-q").stderr == ""
    assert (
        run("convert", str(example), "-v").stderr.splitlines()[0] == f"{target} exists; kept (--overwrite replaces it)"
    )
    assert target.read_bytes() == b"keep me"
    assert run("convert", str(example), "--overwrite").exit_code == 0
    assert target.read_bytes().startswith(b"MThd")


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_o_naming_an_existing_folder_ending_in_mid_is_said_to_be_a_folder_before_any_work(example, tmp_path, overwrite):
    folder = tmp_path / "song.mid"
    folder.mkdir()
    result = run("convert", str(example), "-o", str(folder), *overwrite)
    assert result.exit_code == 2
    assert f"-o {folder} is a folder, not a file" in result.stderr
    assert "--overwrite replaces it" not in result.stderr
    assert list(folder.iterdir()) == []
    assert run("convert", str(example), "-o", f"{folder}/").exit_code == 0  # the hint works
    assert (folder / "task.mid").is_file()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_where_a_result_goes_is_one_failed_line_not_a_file_kept(example, overwrite):
    (example.with_suffix(".mid")).mkdir()
    result = run("convert", str(example), *overwrite)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"{example.with_suffix('.mid')}: cannot write (it is a folder, not a file)"
    assert "1 failed" in result.stderr


@pytest.mark.parametrize("command", ["convert", "info"])
@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_input_is_a_usage_error_not_the_current_folder(example, monkeypatch, command, blank):
    monkeypatch.chdir(example.parent)  # an unset shell variable: "" would name this folder
    result = run(command, str(example), blank)
    assert result.exit_code == 2
    line = f"Error: an input is empty ({blank!r}); give a file, a folder or - for standard input"
    assert result.stderr.splitlines()[-1] == line
    assert result.stdout == ""
    assert not example.with_suffix(".mid").exists()


def test_output_to_stdout_is_the_binary_midi(example):
    result = run("convert", str(example), "-o", "-", "-q")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert mido_file(result.stdout_bytes).type == 1
    run("convert", str(example), "-o", str(example.parent / "same.mid"))
    assert result.stdout_bytes == (example.parent / "same.mid").read_bytes()


def test_output_to_stdout_refuses_a_terminal(example):
    import pty

    terminal, child_end = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "midiexport", "convert", str(example), "-o", "-"], stdout=child_end,
                              stderr=subprocess.PIPE, env=package_env(), timeout=60, check=False)  # fmt: skip
    finally:
        os.close(child_end)
        os.close(terminal)
    assert done.returncode == 2
    assert b"-o - writes binary MIDI to standard output, which is a terminal" in done.stderr
    assert not list(example.parent.glob("*.mid"))


def test_stdin_needs_an_output(example):
    result = run("convert", "-", input=example.read_bytes())
    assert result.exit_code == 2
    line = "Error: reading standard input needs -o (a folder, a .mid path, or - for stdout)"
    assert result.stderr.splitlines()[-1] == line


def test_the_library_refuses_stdin_without_an_output_by_the_same_rule_in_its_own_words():
    from midiexport.errors import OutputError
    from midiexport.io.files import STDIN, InputFile
    from midiexport.jobs.runner import Destination

    problem = Destination().stdin_problem(["a.json", STDIN])
    assert problem == "reading standard input needs the output path (a folder, a .mid path, or - for stdout)"
    assert Destination("out").stdin_problem([STDIN]) is None and Destination().stdin_problem(["a.json"]) is None
    with pytest.raises(OutputError) as raised:  # a caller that skips the check meets it when the result is written
        Destination().write(InputFile(STDIN, "<stdin>", False), "song", b"MThd")
    assert raised.value.message == problem


def test_convert_file_refuses_stdin_without_an_output_before_reading_it(monkeypatch):
    import io
    import types

    import midiexport
    from midiexport.errors import OutputError

    stream = io.BytesIO(b'{"state": "complete", "instruments": []}')
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=stream))
    with pytest.raises(OutputError, match="^reading standard input needs the output path"):
        midiexport.convert_file("-")
    assert stream.tell() == 0  # refused before any work, as the batch's other refusals are


def test_stdin_to_a_folder_is_named_after_the_task(example, tmp_path):
    result = run("convert", "-", "-o", str(tmp_path / "out"), input=example.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["5c79_be8e.mid"]


def test_folder_with_json_lines_converts_each_line_and_names_failures(tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    shutil.copy(fixture_path("records.jsonl"), folder / "songs.jsonl")
    shutil.copy(fixture_path("record-info.json"), folder / "one.json")
    result = run("convert", str(folder), "-o", str(tmp_path / "out"), "--jobs", "1")
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.mid", "songs-1.mid", "songs-3.mid"]
    lines = result.stderr.splitlines()
    assert (
        f"{folder / 'songs.jsonl'}: line 2, task 5c79****be8e: is still pending (successFlag 0); try again in a minute"
        in lines
    )
    assert lines[-1] == "3 converted (12 notes), 1 repaired (7 repairs), 0 skipped (exist), 1 failed"


@pytest.mark.parametrize("content", ["", "\n  \n\r\n"])
def test_a_blank_json_lines_file_fails_as_an_empty_json_does(tmp_path, content):
    blank = tmp_path / "saved.jsonl"
    blank.write_text(content)
    (tmp_path / "saved.mid").write_bytes(b"kept")  # the name its lines are numbered after: no reason to skip it
    result = run("convert", str(blank), "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{blank} holds no record (no line holds text)",
        "0 converted (0 notes), 0 repaired (0 repairs), 0 skipped (exist), 1 failed",
    ]
    [entry] = json.loads((tmp_path / "report.json").read_text())["results"]
    assert (entry["input"], entry["outcome"], entry["files"]) == (str(blank), "failed", [])
    shown = run("info", str(blank))
    assert (shown.exit_code, shown.stdout) == (1, "")
    assert shown.stderr.splitlines() == [f"{blank} holds no record (no line holds text)"]


def test_jobs_2_writes_the_same_files_as_jobs_1(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        shutil.copy(fixture_path("callback-string-times.json"), folder / f"r{i}.json")
    shutil.copy(fixture_path("records.jsonl"), folder / "z.jsonl")
    one = run("convert", str(folder), "-o", str(tmp_path / "one"), "--jobs", "1")
    two = run("convert", str(folder), "-o", str(tmp_path / "two"), "--jobs", "2")
    assert (one.exit_code, two.exit_code) == (1, 1)
    assert one.stderr.replace("/one/", "/two/") == two.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert all((tmp_path / "one" / n).read_bytes() == (tmp_path / "two" / n).read_bytes() for n in names)


def test_single_output_file_with_several_inputs_is_a_usage_error(example, tmp_path):
    other = shutil.copy(example, tmp_path / "other.json")
    result = run("convert", str(example), str(other), "-o", str(tmp_path / "x.mid"))
    assert result.exit_code == 2
    assert "names one file but there are several results; give a folder instead" in result.stderr


def test_the_library_refuses_the_files_of_split_into_one_named_file_before_any_write(example, tmp_path):
    from midiexport import ConvertOptions, convert_file
    from midiexport.errors import OutputError

    out = tmp_path / "x.mid"
    with pytest.raises(OutputError) as caught:
        convert_file(example, out, ConvertOptions(split=True))
    # the lone input's files are counted before any work, as several inputs are: the same words
    assert (
        str(caught.value)
        == f"the output path {out} names one file but there are several results; give a folder instead"
    )
    assert not out.exists()


def test_an_array_of_several_records_into_one_file_is_the_usage_error_of_a_jsonl_before_any_write(tmp_path):
    records = json.loads(fixture_path("records-array.json").read_text())
    assert len(records) > 1
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(record) for record in records))
    out = tmp_path / "x.mid"
    array = run("convert", str(fixture_path("records-array.json")), "-o", str(out))
    lines = run("convert", str(tmp_path / "lines.jsonl"), "-o", str(out))
    assert array.exit_code == lines.exit_code == 2
    assert array.stderr == lines.stderr
    assert f"-o {out} names one file but there are several results; give a folder instead" in array.stderr
    assert not out.exists()  # nothing written, not even the first song
    piped = run("convert", "-", "-o", "-", input=fixture_path("records-array.json").read_bytes())
    assert piped.exit_code == 2 and piped.stdout == ""  # standard output takes one song too
    (tmp_path / "one.json").write_text(json.dumps([records[0]]))  # an array of one record is one result
    one = run("convert", str(tmp_path / "one.json"), "-o", str(out))
    assert one.exit_code == 0, one.stderr
    assert pretty(out.read_bytes()).instruments


def test_split_writes_one_file_per_instrument(example, tmp_path):
    result = run("convert", str(example), "--split", "-o", str(tmp_path / "stems"))
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "stems").iterdir())
    assert names == ["task-Drums.mid", "task-Electric Bass (finger).mid"]
    drums = pretty((tmp_path / "stems" / "task-Drums.mid").read_bytes())
    assert [(i.is_drum, len(i.notes)) for i in drums.instruments] == [(True, 2)]
    assert drums.get_tempo_changes()[1].tolist() == [120.0]


def test_format_0_writes_one_track_with_all_notes(example, tmp_path):
    result = run("convert", str(example), "--format", "0", "-o", str(tmp_path / "f0.mid"))
    assert result.exit_code == 0
    midi = mido_file((tmp_path / "f0.mid").read_bytes())
    assert (midi.type, len(midi.tracks)) == (0, 1)
    notes = sum(1 for m in midi.tracks[0] if m.type == "note_on")
    assert notes == sum(len(n) for n in api_notes(load_fixture("record-info.json")).values())


def test_bpm_auto_writes_the_songs_tempo_and_info_shows_the_estimate(tmp_path):
    out = tmp_path / "auto.mid"
    result = run("convert", str(SAMPLE), "--bpm", "auto", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    midi = mido_file(out.read_bytes())
    assert midi.ticks_per_beat == 960
    [tempo] = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert abs(tempo - 600_000) <= 60  # the sample is at 100 BPM: within 0.01%, one tempo, no pickup
    assert "4/4, first downbeat at 0.000 s (confidence" in result.stderr
    table = run("info", str(SAMPLE), str(out))
    assert re.search(r"tempo estimated 100(\.0\d*)? BPM, 4/4, first downbeat at 0.000 s \(confidence", table.stdout)
    assert re.search(r"tempo written 100(\.0\d*)? BPM, first downbeat at 0.000 s", table.stdout)


def test_quantize_option_moves_notes_and_says_so(example, tmp_path):
    result = run("convert", str(SAMPLE), "--quantize", "1/8", "-o", str(tmp_path / "q.mid"))
    assert result.exit_code == 0, result.stderr
    assert "notes moved to the grid (--quantize)" in result.stderr
    ons = [e for e in channel_events((tmp_path / "q.mid").read_bytes()) if e[1] == "note_on"]
    assert all(tick % 240 == 0 for tick, *_ in ons)


def test_program_option_sets_the_program(example, tmp_path):
    result = run(
        "convert", str(example), "--program", "electric bass (finger)=Slap Bass 1", "-o", str(tmp_path / "p.mid")
    )
    assert result.exit_code == 0
    assert pretty((tmp_path / "p.mid").read_bytes()).instruments[1].program == 36


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--program", "Bass"], "'Bass' is not NAME=PROGRAM"),
        (["--program", "Bass=200"], "program must be in 0..127, got 200"),
        (["--bpm", "0"], "0.0 is not in the range 4<=x<=1000"),
        (["--bpm", "fast"], "'fast' is neither a number nor 'auto'"),
        (["--quantize", "1/12"], "quantize grid must be 1/N"),
        (["--ppq", "0"], "0 is not in the range 24<=x<=32767"),
        (["--ppq", "12"], "12 is not in the range 24<=x<=32767"),
        (
            ["--shift", "Keyboard=-28", "--shift", "keyboard=-10"],
            "'Keyboard=-28' and 'keyboard=-10' shift the same instrument twice; give one",
        ),
        (["--format", "2"], "'2' is not one of '0', '1'"),
    ],
)
def test_bad_options_are_usage_errors(example, args, message):
    result = run("convert", str(example), *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_each_failure_is_one_line_and_the_batch_goes_on(tmp_path):
    (tmp_path / "bad.json").write_text('{"data": ')
    shutil.copy(fixture_path("record-failed-generation.json"), tmp_path / "failed.json")
    shutil.copy(fixture_path("record-info.json"), tmp_path / "good.json")
    result = run("convert", str(tmp_path), "--jobs", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'bad.json'} is not valid JSON (unexpected end of data); check that the file is a saved record",
        f"{tmp_path / 'failed.json'}: task 5c79****be8e: failed: MIDI generation failed (500: MIDI generation failed)",
        f"wrote {tmp_path / 'good.mid'}",
        "1 converted (3 notes), 0 repaired (0 repairs), 0 skipped (exist), 2 failed",
    ]
    assert "Traceback" not in result.stderr


def test_many_failures_print_the_first_lines_and_count_the_rest_the_report_keeps_all(tmp_path):
    from midiexport.cli.report import SHOWN_FAILURES

    lines = SHOWN_FAILURES + 7
    (tmp_path / "bad.jsonl").write_text("[]\n" * lines)
    result = run("convert", str(tmp_path / "bad.jsonl"), "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 1
    said = result.stderr.splitlines()
    assert said[:SHOWN_FAILURES] == [f"{tmp_path / 'bad.jsonl'}: line {n} is an empty list; it holds no records"
                                     for n in range(1, SHOWN_FAILURES + 1)]  # fmt: skip
    assert said[SHOWN_FAILURES:] == [
        "... and 7 more failed (see --report)",
        f"0 converted (0 notes), 0 repaired (0 repairs), 0 skipped (exist), {lines} failed",
    ]
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [entry["outcome"] for entry in results] == ["failed"] * lines


def test_many_failed_inputs_without_a_report_name_v_and_report_and_v_prints_every_line(tmp_path):
    from midiexport.cli.report import SHOWN_FAILURES

    for n in range(SHOWN_FAILURES + 2):
        (tmp_path / f"bad{n:02}.json").write_text("[]")
    result = run("convert", str(tmp_path), "--jobs", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[SHOWN_FAILURES:] == [
        "... and 2 more failed (-v shows all, --report lists them)",
        f"0 converted (0 notes), 0 repaired (0 repairs), 0 skipped (exist), {SHOWN_FAILURES + 2} failed",
    ]
    verbose = run("convert", str(tmp_path), "--jobs", "1", "-v")
    assert all(f"bad{n:02}.json is an empty list" in verbose.stderr for n in range(SHOWN_FAILURES + 2))
    assert "more failed" not in verbose.stderr


def test_verbose_keeps_a_data_error_to_its_one_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{\n" * 3)
    result = run("convert", str(path), "-v", "-j", "2")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        *(f"{path}: line {n} is not valid JSON (unexpected end of data); check that the file is a saved record"
          for n in (1, 2, 3)),
        "0 converted (0 notes), 0 repaired (0 repairs), 0 skipped (exist), 3 failed",
    ]  # fmt: skip


def test_verbose_adds_the_traceback_of_an_internal_error_only():
    from midiexport.cli.report import fail_line
    from midiexport.errors import InputError

    def broken() -> None:
        raise KeyError("end")

    try:
        broken()
    except KeyError as exc:
        bug = exc
    for verbose in (False, True):
        said: list[str] = []
        fail_line(bug, verbose, said.append)
        fail_line(InputError("a.json is empty; expected a JSON record"), verbose, said.append)
        hint = "" if verbose else "; run with -v for the traceback"  # with -v the traceback is above it
        assert said[-2:] == [f"internal error: KeyError 'end'{hint}", "a.json is empty; expected a JSON record"]
        assert len(said) == 2 + verbose
    assert said[0].startswith("Traceback (most recent call last)") and "in broken" in said[0]


def test_an_internal_error_names_its_input_in_the_line_and_the_report(tmp_path, monkeypatch):
    from midiexport.jobs import json_input

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(json_input, "normalize_payload", broken)  # workers fork: they break alike
    record = fixture_path("record-info.json").read_bytes()
    names = [tmp_path / f"{n}.json" for n in "ab"]
    for name in names:
        name.write_bytes(record)
    report = tmp_path / "report.json"
    result = run("convert", *map(str, names), "-o", str(tmp_path / "out"), "--report", str(report))
    assert result.exit_code == 1
    said = [f"{name}: internal error: KeyError 'boom'" for name in names]
    assert result.stderr.splitlines()[:2] == [f"{line}; run with -v for the traceback" for line in said]
    assert [entry["error"] for entry in json.loads(report.read_text())["results"]] == said


def test_missing_input_is_one_line(tmp_path):
    result = run("convert", str(tmp_path / "missing.json"))
    assert (result.exit_code, result.stderr.strip()) == (1, f"{tmp_path / 'missing.json'}: no such file or folder")


def test_a_symlink_loop_in_a_folder_is_one_failed_input_and_the_rest_is_converted(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(fixture_path("record-info.json"), folder / "good.json")
    (folder / "loop1.json").symlink_to("loop2.json")
    (folder / "loop2.json").symlink_to("loop1.json")
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = run("convert", str(folder), "-o", str(out), "--jobs", jobs)
        assert result.exit_code == 1, result.stderr
        assert f"{folder / 'loop1.json'}: cannot read (a symlink loop)" in result.stderr.splitlines()
        assert f"{folder / 'loop2.json'}: cannot read (a symlink loop)" in result.stderr.splitlines()
        assert (out / "good.mid").is_file()
        assert "1 converted (3 notes), 0 repaired (0 repairs), 0 skipped (exist), 2 failed" in result.stderr


def test_an_output_folder_that_is_a_symlink_loop_is_said_to_be_one(tmp_path):
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    result = run("convert", str(SAMPLE), "-o", str(tmp_path / "loop1"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{tmp_path / 'loop1' / 'sample-song.mid'}: cannot write ({tmp_path / 'loop1'} is a symlink loop)"
    )


def test_a_symlink_loop_named_alone_is_said_to_be_one(tmp_path):
    (tmp_path / "loop1.json").symlink_to("loop2.json")
    (tmp_path / "loop2.json").symlink_to("loop1.json")
    result = run("convert", str(tmp_path / "loop1.json"))
    assert (result.exit_code, result.stderr.strip()) == (1, f"{tmp_path / 'loop1.json'}: cannot read (a symlink loop)")


def test_repairs_and_warnings_are_reported(tmp_path):
    record = load_fixture("record-info.json")
    record["data"]["midiData"]["instruments"][0]["notes"].append({"pitch": 200, "start": 0, "end": 1, "velocity": 1})
    record["data"]["midiData"]["instruments"][1]["notes"][0]["velocity"] = 1.5
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    result = run("convert", str(path))
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert f"{path}: 1 invalid note left out; 1 velocity clamped to 0-1" in lines
    assert f'warning: {path}: "Drums", note 2: pitch 200 is outside 0-127' in lines
    assert lines[-1] == (
        "1 converted (3 notes), 1 repaired (1 repair), 1 note left out (pitch: 1), 0 skipped (exist), 0 failed"
    )


def test_an_input_whose_file_exists_and_is_kept_says_nothing_of_its_repairs(tmp_path):
    record = load_fixture("record-info.json")
    record["data"]["midiData"]["instruments"][0]["notes"].append({"pitch": 200, "start": 0, "end": 1, "velocity": 1})
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    args = ("convert", str(path), "--name", "{title}")  # the name is known only once read: converted, then kept
    first = run(*args)
    assert first.exit_code == 0 and f"{path}: 1 invalid note left out" in first.stderr.splitlines()
    again = run(*args)
    assert again.exit_code == 0
    assert again.stderr.splitlines() == [
        "0 converted (0 notes), 0 repaired (0 repairs), 1 skipped (exist), 0 failed",
        "1 input skipped: its files exist and were kept (--overwrite replaces them; -v names them)",
    ]


def _count_kinds() -> list[str]:
    """Every kind of count the library makes: model's labels and the .mid reader's (its own constants)."""
    from midiexport import model
    from midiexport.stages import midifile, normalize

    kinds = [v for k, v in vars(model).items() if k.isupper() and isinstance(v, str) and " " in v]
    return kinds + [v for k, v in vars(midifile).items() if k.isupper() and isinstance(v, str) and " " in v
                    and getattr(normalize, k, None) is not v]  # fmt: skip


@pytest.mark.parametrize("kind", _count_kinds())
def test_each_kind_of_count_reads_in_the_singular_after_1_by_one_word(kind):
    from midiexport.display import plural

    assert plural(2, kind) == plural(0, kind) == kind
    one, many = plural(1, kind).split(), kind.split()
    changed = [(a, b) for a, b in zip(one, many) if a != b]
    assert len(one) == len(many) and len(changed) == 1, (kind, plural(1, kind))
    [(singular, plural_word)] = changed
    assert plural_word in (singular + "s", singular[:-1] + "ies")


def test_a_count_of_1_is_printed_in_the_singular_and_the_report_keeps_its_key(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8), (40, 0.5, 1.5, 0.8)]})))
    report = tmp_path / "report.json"
    result = run("convert", str(path), "--report", str(report))
    assert result.exit_code == 0, result.stderr
    assert f"{path}: 1 overlapping note cut" in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1] == (
        "1 converted (2 notes), 1 repaired (1 repair), 0 skipped (exist), 0 failed"
    )
    assert json.loads(report.read_text())["results"][0]["counts"] == {"overlapping notes cut": 1}


def test_a_report_that_cannot_be_written_is_one_line_and_fails_the_command(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8)]})))
    result = run("convert", str(path), "--report", str(path / "report.json"))  # under a file: no such folder
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert f"{path / 'report.json'}: cannot write" in result.stderr
    assert result.stderr.splitlines()[-1] == "1 converted (1 note), 0 repaired (0 repairs), 0 skipped (exist), 0 failed"
    assert path.with_suffix(".mid").exists()  # the conversion itself is kept


def test_a_report_never_replaces_an_input_before_the_batch(tmp_path):
    path = tmp_path / "r.json"
    data = json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8)]}))
    path.write_text(data)
    result = run("convert", str(path), "-o", str(tmp_path / "out"), "--report", str(path))
    assert result.exit_code == 2
    assert f"--report {path}: holds something other than a midiexport report (kept)" in result.stderr
    assert path.read_text() == data
    assert not (tmp_path / "out").exists()  # refused before any work


def test_a_report_never_replaces_a_file_the_run_wrote_and_fails_the_command(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8)]})))
    result = run("convert", str(path), "--report", str(tmp_path / "r.mid"))
    assert result.exit_code == 1
    assert f"{tmp_path / 'r.mid'}: holds something other than a midiexport report; kept" in result.stderr
    assert len(pretty((tmp_path / "r.mid").read_bytes()).instruments[0].notes) == 1  # the .mid, not a report


def test_a_report_replaces_an_earlier_report_and_writes_into_a_device(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8)]})))
    report = tmp_path / "report.json"
    for _ in range(2):  # the second run replaces the first run's report
        assert run("convert", str(path), "--overwrite", "--report", str(report)).exit_code == 0
        assert json.loads(report.read_text())["summary"]["converted"] == 1
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    read = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_bytes()))
    reader.start()
    result = run("convert", str(path), "--overwrite", "--report", str(fifo))
    reader.join(10)
    assert result.exit_code == 0, result.stderr
    assert fifo.is_fifo()  # written into, not replaced by a file (as /dev/null must not be)
    assert json.loads(read[0])["summary"]["converted"] == 1


def test_strict_refuses_the_record(tmp_path):
    record = load_fixture("record-info.json")
    record["data"]["midiData"]["instruments"][0]["notes"][0]["end"] = -1
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    result = run("convert", str(path), "--strict")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f'{path}: "Drums", note 0: end -1 is negative; refused under --strict'
    assert not path.with_suffix(".mid").exists()


def test_info_prints_a_table_on_stdout_and_json_with_json(example):
    run("convert", str(example))
    table = run("info", str(example.with_suffix(".mid")), str(example))
    assert table.exit_code == 0
    assert "Electric Bass (finger)  33 Electric Bass (finger)" in table.stdout
    as_json = run("info", "--json", str(example.with_suffix(".mid")))
    assert json.loads(as_json.stdout)[0]["parts"][0]["channel"] == 9


def test_a_file_name_that_is_not_utf8_is_written_in_json_as_valid_utf8_that_gives_its_bytes_back(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9.json"  # Latin-1 "café": no UTF-8 name
    with open(raw, "wb") as handle:
        handle.write(json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8)]})).encode())
    report = tmp_path / "report.json"
    result = run("convert", str(folder), "--report", str(report))
    assert result.exit_code == 0, result.stderr
    name = json.loads(report.read_bytes().decode("utf-8"))["results"][0]["input"]
    info = run("info", "--json", os.fsdecode(raw))
    assert info.exit_code == 0, info.stderr
    assert json.loads(info.stdout_bytes.decode("utf-8"))[0]["source"] == name
    back = re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(0xDC00 + int(m.group(1), 16)), name)
    assert os.fsencode(back) == raw


def test_info_on_a_broken_file_is_one_line(tmp_path):
    (tmp_path / "x.mid").write_bytes(b"MThd\x00\x00")
    result = run("info", str(tmp_path / "x.mid"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path / 'x.mid'} is not a valid MIDI file")


def test_info_on_json_lines_shows_the_good_lines_and_names_a_bad_one_in_one_line(tmp_path):
    first, _, third = fixture_path("records.jsonl").read_bytes().splitlines()
    path = tmp_path / "songs.jsonl"
    path.write_bytes(b"\n".join([first, b'{"code": 200, "data": {', third]) + b"\n")
    for args in ((), ("--json",)):
        result = run("info", *args, str(path))
        assert result.exit_code == 1  # as convert: the other lines are shown, the bad one is named
        [line] = result.stderr.splitlines()
        assert line.startswith(f"{path}: line 2 is not valid JSON (") and "Traceback" not in line
        if args:
            assert [s["source"] for s in json.loads(result.stdout)] == [f"{path}: line 1", f"{path}: line 3"]
        else:
            assert f"{path}: line 1\n" in result.stdout and f"{path}: line 3\n" in result.stdout
            assert "line 2" not in result.stdout


def test_info_fails_a_json_lines_line_holding_no_record_in_its_place_as_convert_does(tmp_path):
    first = fixture_path("records.jsonl").read_bytes().splitlines()[0]
    path = tmp_path / "songs.jsonl"
    path.write_bytes(b"\n".join([b'{"hello": 1}', first]) + b"\n")
    converted = run("convert", str(path), "-o", str(tmp_path / "out"))
    [failure] = [line for line in converted.stderr.splitlines() if line.startswith(f"{path}: line 1")]
    shown = run("info", "--json", str(path))
    assert converted.exit_code == shown.exit_code == 1
    assert shown.stderr.splitlines() == [failure]  # the same line, not a record of "status empty"
    assert [s["source"] for s in json.loads(shown.stdout)] == [f"{path}: line 2"]


def test_info_reads_json_lines_saved_as_json_line_by_line_as_convert_does(tmp_path):
    lines = fixture_path("records.jsonl").read_bytes()
    path = tmp_path / "saved.json"  # JSON Lines under a .json name: convert reads them line by line
    path.write_bytes(lines)
    run("convert", str(path), "-o", str(tmp_path / "out"))
    shown = run("info", "--json", str(path))
    assert shown.exit_code == 0, shown.stderr  # not "is not valid JSON"
    summaries = json.loads(shown.stdout)
    count = len([line for line in lines.splitlines() if line.strip()])
    assert [s["source"] for s in summaries] == [f"{path}: line {n}" for n in range(1, count + 1)]
    complete = [s["source"].rsplit(" ", 1)[1] for s in summaries if s["status"] == "complete"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"saved-{n}.mid" for n in complete]


def test_a_pretty_printed_json_with_one_syntax_error_fails_once_not_line_by_line(tmp_path):
    text = json.dumps(load_fixture("record-info.json"), indent=2).replace('"msg"', '"msg",,', 1)
    path = tmp_path / "broken.json"  # its first line is "{": no JSON Lines
    path.write_text(text)
    for command in ("info", "convert"):
        result = run(command, str(path))
        assert result.exit_code == 1
        failures = [line for line in result.stderr.splitlines() if "not valid JSON" in line]
        assert failures == [line for line in failures if line.startswith(f"{path} is not valid JSON (")]
        assert len(failures) == 1, result.stderr


@pytest.mark.parametrize("command", main.list_commands(click.Context(main)))
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout and "Options:" in result.stdout
    assert main.get_command(click.Context(main), command).get_short_help_str()  # a line in `midiexport --help`


def test_every_command_a_cli_module_defines_is_listed():
    # Commands are loaded by name (cli.COMMANDS): one defined but not listed would never run.
    import importlib
    import pkgutil

    import midiexport.cli

    defined = set()
    for module in pkgutil.iter_modules(midiexport.cli.__path__):
        loaded = importlib.import_module(f"midiexport.cli.{module.name}")
        defined |= {name for name, value in vars(loaded).items() if isinstance(value, click.Command)}
    assert defined == set(main.list_commands(click.Context(main)))


def test_python_m_reads_real_stdin_and_writes_binary_stdout(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "midiexport", "convert", "-", "-o", "-", "-q"],
        input=fixture_path("callback-string-times.json").read_bytes(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    midi = pretty(done.stdout)
    assert sorted(len(i.notes) for i in midi.instruments) == [3, 3]


def test_python_m_sample_conversion_matches_the_record(tmp_path):
    out = tmp_path / "sample.mid"
    done = subprocess.run([sys.executable, "-m", "midiexport", "convert", str(SAMPLE), "-o", str(out)],
                          capture_output=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(SAMPLE.read_text())
    expected = api_notes(payload)
    midi = pretty(out.read_bytes())
    for instrument in midi.instruments:
        got = sorted((n.pitch, n.start, n.end) for n in instrument.notes)
        assert got == sorted((n["pitch"], n["start"], n["end"]) for n in expected[instrument.name])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_json_lines_input_is_read_once_when_o_names_one_file(tmp_path):
    # A named pipe can be read only once: checking that it holds one record must not consume it.
    fifo = tmp_path / "one.jsonl"
    os.mkfifo(fifo)
    line = SAMPLE.read_bytes().replace(b"\n", b" ") + b"\n"
    writer = threading.Thread(target=fifo.write_bytes, args=(line,), daemon=True)
    writer.start()
    done = subprocess.run([sys.executable, "-m", "midiexport", "convert", str(fifo), "-o", str(tmp_path / "x.mid")],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [m.note for m in mido_file((tmp_path / "x.mid").read_bytes()).tracks[1] if m.type == "note_on"]


def test_serve_with_a_log_file_it_cannot_open_says_so_in_one_line(tmp_path, monkeypatch):
    def never(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the server must not start")

    monkeypatch.setattr("midiexport.jobs.serve.run_server", never)
    log = tmp_path / "missing" / "log.jsonl"
    result = run("serve", "-o", str(tmp_path / "out"), "--log", str(log))
    assert result.exit_code == 1 and not isinstance(result.exception, OSError), result.exception
    assert result.stderr.strip().splitlines() == [f"Error: cannot open the log {log}: No such file or directory"]


# --- the console script's quick exit (cli.run) ------------------------------------------


def _script(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``body`` then ``cli.run()`` with ``args`` in a fresh interpreter, as the console script does."""
    code = f"import sys\n{body}\nsys.argv = ['midiexport', *{list(args)!r}]\nfrom midiexport.cli import run\nrun()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=tmp_path, env=package_env(), check=False,
                          timeout=120)  # fmt: skip


def test_run_flushes_a_whole_mid_to_stdout_and_runs_atexit_handlers(tmp_path):
    hook = "import atexit\natexit.register(lambda: sys.stderr.write('atexit handler ran\\n'))"
    piped = _script(tmp_path, hook, "convert", str(SAMPLE), "-o", "-", "-q")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr.decode().splitlines()[-1] == "atexit handler ran"
    written = _script(tmp_path, "", "convert", str(SAMPLE), "-o", str(tmp_path / "x.mid"), "-q")
    assert written.returncode == 0, written.stderr
    assert piped.stdout == (tmp_path / "x.mid").read_bytes()
    assert len(mido_file(piped.stdout).tracks) > 1


def test_run_keeps_the_exit_status_of_a_failure_and_of_a_usage_error(tmp_path):
    missing = _script(tmp_path, "", "convert", str(tmp_path / "absent.json"))
    assert missing.returncode == 1
    assert "absent.json" in missing.stderr.decode()
    usage = _script(tmp_path, "", "convert", "--no-such-option")
    assert usage.returncode == 2
    assert "--no-such-option" in usage.stderr.decode()


def test_run_waits_for_other_threads_as_a_normal_exit_does(tmp_path):
    late = tmp_path / "late.txt"
    # The thread writes only once the main thread has ended (the interpreter's normal exit
    # releases it before waiting for the other threads), so it is still running when the
    # command is done however slow the machine, and a quick os._exit would leave no file.
    body = (
        "import threading\n"
        f"write = lambda: (threading.main_thread().join(), open({str(late)!r}, 'w').write('done'))\n"
        "threading.Thread(target=write).start()"
    )
    done = _script(tmp_path, body, "programs")
    assert done.returncode == 0, done.stderr
    assert late.read_text() == "done"


def test_run_leaves_a_profiler_around_it_its_normal_exit(tmp_path):
    profile = tmp_path / "run.prof"
    code = "import sys\nfrom midiexport.cli import run\nsys.argv = ['midiexport', 'programs']\nrun()\n"
    script = tmp_path / "entry.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), str(script)], capture_output=True,
                          cwd=tmp_path, env=package_env(), check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0  # cProfile writes its file after the program ends


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers only where there is fork")
def test_run_puts_off_only_the_first_collection_and_a_fork_starts_with_pythons_thresholds(tmp_path):
    # At the end of a short run no collection has come yet: the threshold is still raised. A
    # forked child starts with the thresholds there were; the first collection restores them.
    body = (
        "import atexit, gc, os\n"
        "before, callbacks = gc.get_threshold(), len(gc.callbacks)\n"
        "def check():\n"
        "    raised = gc.get_threshold()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os._exit(0 if gc.get_threshold() == before else 3)\n"
        "    child = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n"
        "    gc.collect()\n"
        "    print(raised[0], raised[1:] == before[1:], child, gc.get_threshold() == before, len(gc.callbacks) - callbacks)\n"
        "atexit.register(check)"
    )
    done = _script(tmp_path, body, "programs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines()[-1] == f"{START_UP_ALLOCATIONS} True 0 True 0"


def test_records_of_one_json_a_template_names_alike_each_get_a_file(tmp_path):
    records = json.loads(fixture_path("records-array.json").read_text())
    assert len(records) > 1
    (tmp_path / "saved.json").write_text(json.dumps(records))
    out = tmp_path / "out"
    result = run("convert", str(tmp_path / "saved.json"), "-o", str(out), "--name", "{stem}")
    assert result.exit_code == 0, result.stderr
    expected = ["saved.mid"] + [f"saved-{n}.mid" for n in range(2, len(records) + 1)]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # the planned name went to the first alone
    assert "0 skipped (exist)" in result.stderr


# --- the library's words, the command line's flags (cli/report.py's HINTS) -----------------


def test_cli_words_reword_only_the_marked_phrases():
    from midiexport import model
    from midiexport.cli.report import cli_words, kind_words
    from midiexport.errors import say
    from midiexport.io.files import SIZE_LIMIT_HINT
    from midiexport.jobs.generate import SEPARATION_FOLLOW

    assert cli_words(say("a.json: 2 is larger than 1 MB; ", SIZE_LIMIT_HINT)) == (
        "a.json: 2 is larger than 1 MB; raise the limit with --max-input-mb"
    )
    # the same words unmarked (a path, a name, a message made without say) are left as they are
    plain = "raise the input size limit/a.json: 2 is larger than 1 MB; raise the input size limit"
    assert cli_words(plain) == plain
    assert cli_words(say("raise the input size limit/a.json: ", SIZE_LIMIT_HINT)) == (
        "raise the input size limit/a.json: raise the limit with --max-input-mb"
    )
    advice = say("find it and ", SEPARATION_FOLLOW)
    assert cli_words(advice, task_id="9f3a") == (
        "find it and continue with `midiexport generate 9f3a --resume --separation-task ID`"
    )
    # a kind of change is a whole count key, shown with its option
    assert kind_words(model.SHORT_DROPPED) == "short notes dropped (--clean)"
    assert kind_words(model.STRING_NUMBER) == model.STRING_NUMBER


def test_marks_survive_the_places_and_the_pickling_a_message_goes_through():
    import pickle

    from midiexport.cli.report import cli_words
    from midiexport.errors import InputError, say
    from midiexport.io.files import OVERWRITE_HINT
    from midiexport.model import Record

    record = Record(source="allow overwriting to replace it.json", status="complete", locator="line 2")
    placed = record.place(say("x; ", OVERWRITE_HINT))
    assert cli_words(placed) == "allow overwriting to replace it.json: line 2, x; pass --overwrite to replace it"
    error = pickle.loads(pickle.dumps(InputError(placed, hint=OVERWRITE_HINT)))  # from a worker process
    assert cli_words(error.message) == cli_words(placed) and error.hint == OVERWRITE_HINT


def test_marks_pass_through_joined_stems_a_lost_worker_and_an_archive_of_blank_files(monkeypatch):
    from midiexport.cli.report import cli_words
    from midiexport.errors import WorkerLost, say
    from midiexport.io import archive
    from midiexport.io.files import OVERWRITE_HINT, SIZE_LIMIT_HINT
    from midiexport.jobs.runner import Destination, Pending, raising
    from midiexport.model import Record
    from midiexport.stages.midifile import join_stems

    stems = [Record(source=f"Song ({name}).mid", status="complete", warnings=(say("x; ", OVERWRITE_HINT),))
             for name in ("Bass", "Keys")]  # fmt: skip
    joined = join_stems(stems)
    assert joined.source == "Song (Bass).mid and 1 more stem"  # the place its lines name
    assert [cli_words(w) for w in joined.warnings] == [
        "Song (Bass).mid: x; pass --overwrite to replace it", "Song (Keys).mid: x; pass --overwrite to replace it",
    ]  # fmt: skip
    lost = Pending("a.json", raising(WorkerLost(say("lost; ", OVERWRITE_HINT))), Destination())
    with pytest.raises(WorkerLost) as caught:
        lost.result()
    assert cli_words(caught.value.message) == "a.json: lost; pass --overwrite to replace it"
    monkeypatch.setattr(archive, "_not_read_text", lambda name, not_read: say(f"{name}: big; ", SIZE_LIMIT_HINT))
    with pytest.raises(archive.InputError) as refused:
        archive.Archive([], ("a.txt",)).settle("s.zip", [], lambda first, line: first)
    assert cli_words(refused.value.message) == (
        "s.zip: big; raise the limit with --max-input-mb; no records in the others"
    )


def test_an_option_the_library_refuses_is_said_in_the_command_lines_words(example, monkeypatch):
    from midiexport import options
    from midiexport.errors import say
    from midiexport.jobs.runner import OUTPUT_PATH

    def refuse(template: str) -> set[str]:
        raise ValueError(say("a template that names ", OUTPUT_PATH, " is refused"))

    monkeypatch.setattr(options, "name_fields", refuse)
    result = run("convert", str(example), "--name", "{stem}")
    assert result.exit_code == 2
    assert "Invalid value for '--name': a template that names -o is refused" in result.stderr


def test_marks_read_back_from_a_file_stand_only_where_their_words_are():
    from midiexport.cli.report import cli_words
    from midiexport.errors import saved_marks, say, with_marks
    from midiexport.io.http import TIMEOUT

    said = say("no answer (", TIMEOUT, ")")
    assert cli_words(with_marks(str(said), saved_marks(said))) == "no answer (--timeout)"
    assert with_marks("no answer (the timeout)", [[0, "the timeout"], [11, "the timeout"], "x", [-1, "a"]]).phrases == (
        (11, "the timeout"),
    )  # an edited file: a mark whose words are not where it says is dropped
    assert with_marks("plain", None).phrases == ()


def test_every_phrase_of_the_library_has_the_command_lines_words_and_names_a_flag():
    import importlib
    import pkgutil

    import midiexport
    from midiexport.cli.report import _kind_flags, hints
    from midiexport.errors import Phrase

    phrases = set()
    for module in pkgutil.walk_packages(midiexport.__path__, "midiexport."):
        if module.name.endswith("__main__"):
            continue
        loaded = importlib.import_module(module.name)
        phrases |= {value for value in vars(loaded).values() if type(value) is Phrase}
    assert phrases == set(hints())
    for words, flags in [*hints().items(), *_kind_flags().items()]:
        assert not names_a_flag(words), words
        assert names_a_flag(flags) or "`midiexport " in flags, flags  # a flag, a variable, a command


def test_an_output_path_holding_a_phrases_words_is_printed_as_it_is(tmp_path):
    out = tmp_path / "the output path x.json"  # a file where a folder is wanted
    out.write_text("{}")
    result = run("convert", str(SAMPLE), "-o", str(out))
    line = f"Error: -o {out} is a file, not a folder; give a folder, or a path ending in .mid for one result"
    assert line in result.stderr.splitlines(), result.stderr


def test_an_input_path_holding_phrases_words_is_printed_as_it_is_beside_the_reworded_hint(tmp_path):
    folder = tmp_path / "raise the input size limit" / "allow overwriting to replace it"
    folder.mkdir(parents=True)
    source = folder / "raise the timeout.json"
    shutil.copy(SAMPLE, source)
    result = run("convert", str(source), "-o", str(tmp_path / "out"), "--max-input-mb", "0.001")
    line = f"{source} is larger than 0.001 MB; raise the limit with --max-input-mb"
    assert line in result.stderr.splitlines(), result.stderr


def test_a_name_holding_a_phrases_words_is_printed_as_it_is_in_warnings_and_notices(tmp_path):
    source = tmp_path / "as asked.json"
    name = "the shift for x ms (as asked)"  # the words of two phrases of the clean-up's lines
    source.write_text(json.dumps(record_payload({name: [(60, 1.0, 1.5, 0.5)], "Drums": [(36, 1.0, 1.1, 0.5)]})))
    result = run("convert", str(source), "-o", str(tmp_path / "a.mid"), f"--shift={name}=10", "--shift=Banjo=5")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert f'{source}: "{name}" shifted by +10.0 ms (--shift)' in lines
    assert (f'warning: {source}: --shift "Banjo" names no instrument, so nothing shifted for it '
            f'(instruments: "{name}", "Drums")') in lines  # fmt: skip
    assert (f'warning: {source}: "{name}" is not a known instrument name; written as program 0 (Acoustic Grand '
            "Piano), choose another with --program NAME=PROGRAM") in lines  # fmt: skip


def test_a_library_hint_is_flag_free_and_the_cli_line_names_the_flag(tmp_path):
    from midiexport.cli.report import fail_line
    from midiexport.errors import MidiExportError
    from midiexport.io.files import too_large, write_atomic

    target = tmp_path / "out.mid"
    target.write_bytes(b"old")
    with pytest.raises(MidiExportError) as exists:
        write_atomic(target, b"new")
    cases = [
        (too_large("a.json", 1, "a.json"), "a.json is larger than 1 MB; raise the limit with --max-input-mb"),
        (exists.value, f"{target} exists; pass --overwrite to replace it"),
    ]
    for error, line in cases:
        assert error.hint and str(error).endswith(error.hint) and "--" not in str(error)
        lines: list[str] = []
        fail_line(error, False, lines.append)
        assert lines == [line]


def test_every_command_with_the_conversion_options_reads_a_bare_clean_as_light():
    """``--clean`` takes a value; only ``ConversionCommand`` lets it stand alone before an input."""
    from midiexport.cli import COMMANDS
    from midiexport.cli.common import ConversionCommand

    with_clean = [
        n for n in COMMANDS if any(p.name == "clean" for p in main.get_command(click.Context(main), n).params)
    ]
    assert set(with_clean) == {"convert", "fetch", "generate", "serve"}
    for name in with_clean:
        assert isinstance(main.get_command(click.Context(main), name), ConversionCommand), name


# --- option checks and the summary's causes (stop s11) ------------------------------------


@pytest.mark.parametrize("command", [["convert", "task.json"], ["fetch", "t1"], ["generate", "m1"], ["serve"]])
@pytest.mark.parametrize("flags", [["-q", "-v"], ["--verbose", "--quiet"]])
def test_quiet_and_verbose_together_are_a_usage_error_on_every_command(command, flags):
    result = run(*command, *flags)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: -q (only errors) and -v (every warning) ask for opposite things; give one"
    ]


def test_help_of_the_options_says_what_their_checks_accept():
    from midiexport.options import GRID_CHOICES

    convert_help = " ".join(run("convert", "--help").output.split())
    assert f"grid: {GRID_CHOICES}" in convert_help  # the list the error gives (test_bad_options_are_usage_errors)
    assert "a stem name (Bass, Piano, ...) or Drums (channel 10)" in convert_help
    assert "Ticks per quarter note, 24-32767" in convert_help
    result = run("convert", str(SAMPLE), "--quantize", "1/3")
    assert f"quantize grid must be {GRID_CHOICES}, got '1/3'" in result.stderr


def test_top_level_help_names_what_a_folder_search_reads_and_every_exit_status(tmp_path):
    import mido

    from conftest import make_zip

    said = " ".join(run("--help").output.split())
    assert "every .json/.jsonl/.mid/.zip in a folder" in said
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "a.json").write_bytes(fixture_path("record-info.json").read_bytes())
    (folder / "b.jsonl").write_bytes(json.dumps(load_fixture("record-info.json")).encode() + b"\n")
    song = mido.MidiFile()
    song.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=90),
                                       mido.Message("note_off", note=60, time=480)]))  # fmt: skip
    song.save(folder / "c.mid")
    make_zip(folder / "d.zip", {"Bass.mid": (folder / "c.mid").read_bytes()})
    first = run("convert", str(folder), "-o", str(tmp_path / "midi"))
    assert first.exit_code == 0, first.stderr
    read = sorted(path.name for path in (tmp_path / "midi").iterdir())
    assert read == ["Bass.mid", "a.mid", "b-1.mid", "c.mid"], read  # each kind the line names is read (d.zip's Bass)
    again = run("convert", str(folder), "-o", str(tmp_path / "midi"))
    assert again.exit_code == 0 and " 0 converted" not in again.stderr  # all skipped (exist): 0, as said
    assert "0 when every input became a .mid or was skipped (its files exist)" in said
    assert "130/143 when interrupted" in said


def test_generate_help_speaks_of_generate():
    command = main.get_command(click.Context(main), "generate")
    options = {p.name: p.help or "" for p in command.params if isinstance(p, click.Option)}
    assert "fetch" not in options["out"] and "input" not in options["out"]
    assert "generate.json" in options["out"]
    assert "batch" not in options["jobs"] and "Not used by generate" in options["jobs"]


def test_serve_without_its_extra_fails_before_making_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn: ImportError, as when it is not installed
    folder = tmp_path / "made"
    result = run("serve", "-o", str(folder))
    assert result.exit_code == 1
    assert "serve needs its extra: pip install 'midiexport[serve]'" in result.stderr
    assert not folder.exists()


def test_one_instrument_given_two_programs_is_a_usage_error_naming_both(example, tmp_path):
    out = tmp_path / "p.mid"
    result = run("convert", str(example), "--program", "Bass=33", "--program", "bass=Slap Bass 1", "-o", str(out))
    assert result.exit_code == 2
    assert ("'Bass=33' and 'bass=Slap Bass 1' give the same instrument two programs; give one"
            in result.stderr.splitlines()[-1])  # fmt: skip
    assert not out.exists()


def test_one_instrument_given_the_same_program_twice_in_two_spellings_is_accepted(example, tmp_path):
    out = tmp_path / "p.mid"
    name = "electric bass (finger)"
    result = run("convert", str(example), "--program", f"{name}=36", "--program", f"{name}=Slap Bass 1",
                 "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert pretty(out.read_bytes()).instruments[1].program == 36


def _late_bass(tmp_path: Path) -> Path:
    """Drums on every half beat at 120 BPM and a bass 25 ms behind them: what --align measures and shifts."""
    beats = [0.5 + 0.25 * k for k in range(64)]
    drums = [(36 if k % 2 else 42, t, t + 1 / 192, 0.8) for k, t in enumerate(beats)]
    bass = [(40 + k % 3, t + 0.025, t + 0.225, 0.6) for k, t in enumerate(beats)]
    path = tmp_path / "late.json"
    path.write_text(json.dumps(record_payload({"Drums": drums, "Bass": bass})))
    return path


@pytest.mark.parametrize(
    ("args", "causes"),
    [(["--shift", "Bass=-10"], "--shift"), (["--align"], "--align"), (["--align", "--shift", "5"], "--align, --shift"),
     (["--clean", "strong", "--align"], "--align")],
)  # fmt: skip
def test_the_summary_names_only_the_causes_of_shifted_notes_in_effect(tmp_path, args, causes):
    source = _late_bass(tmp_path)
    result = run("convert", str(source), "-o", str(tmp_path / "late.mid"), *args)
    assert result.exit_code == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "shifted in time" in line]
    assert line.endswith(f"notes shifted in time ({causes})"), line


def test_o_naming_a_new_file_of_another_kind_is_a_usage_error_and_a_trailing_slash_makes_the_folder(example, tmp_path):
    result = run("convert", str(example), "-o", str(tmp_path / "out.txt"))
    assert result.exit_code == 2
    assert f"-o {tmp_path / 'out.txt'} names a file that is no .mid; give a path ending in .mid" in result.stderr
    assert not (tmp_path / "out.txt").exists()
    assert run("convert", str(example), "-o", f"{tmp_path / 'out.txt'}/").exit_code == 0  # the hint works
    assert (tmp_path / "out.txt" / "task.mid").is_file()
    (tmp_path / "v1.2").mkdir()  # an existing folder with a dot stays a folder
    assert run("convert", str(example), "-o", str(tmp_path / "v1.2")).exit_code == 0
    assert (tmp_path / "v1.2" / "task.mid").is_file()
    assert run("convert", str(example), "-o", str(tmp_path / "song.midi")).exit_code == 0
    assert (tmp_path / "song.midi").is_file()


def test_a_file_that_is_no_json_at_all_is_said_so_alike_by_info_and_convert(tmp_path):
    text = tmp_path / "README.md"
    text.write_text("# midiexport\n\nTurn MIDI note data into files.\n")
    image = tmp_path / "cover.json"
    image.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    for path in (text, image):
        line = f"{path} is neither JSON nor a .mid file; give a saved record (.json or .jsonl) or a .mid"
        assert run("info", str(path)).stderr.splitlines() == [line]
        assert run("convert", str(path)).stderr.splitlines()[0] == line
    utf16 = tmp_path / "notepad.json"  # Notepad's "Unicode", PowerShell 5's >: JSON in another encoding
    utf16.write_bytes(SAMPLE.read_text().encode("utf-16"))
    assert run("info", str(utf16)).stderr.startswith(f"{utf16} is not valid JSON (str is not valid UTF-8)")
    broken = tmp_path / "cut.json"
    broken.write_text('{"data": ')  # JSON cut short: a fault in JSON, said where it is
    assert run("info", str(broken)).stderr.startswith(f"{broken} is not valid JSON (unexpected end of data)")
