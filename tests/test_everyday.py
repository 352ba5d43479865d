"""Everyday use: re-runs, messages on a terminal, options that say what they do, and the developer API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from conftest import API_KEY, SAMPLE, fixture_path, package_env, record_payload, run

SUMMARY_SKIPPED = "0 converted (0 notes), 0 repaired (0 repairs), {n} skipped (exist), 0 failed"
KEPT = "{n} {inputs} skipped: {whose} files exist and were kept (--overwrite replaces them; -v names them)"


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """A folder of five one-record inputs."""
    folder = tmp_path / "in"
    folder.mkdir()
    for number in range(5):
        shutil.copy(fixture_path("record-info.json"), folder / f"song{number}.json")
    return folder


# Re-runs


def test_rerun_of_a_finished_batch_skips_every_input_and_exits_0(batch, tmp_path):
    out = tmp_path / "out"
    assert run("convert", str(batch), "-o", str(out)).exit_code == 0
    again = run("convert", str(batch), "-o", str(out))
    assert again.exit_code == 0
    assert again.stderr.splitlines() == [SUMMARY_SKIPPED.format(n=5), KEPT.format(n=5, inputs="inputs", whose="their")]


def test_finished_inputs_are_skipped_before_they_are_read(batch, tmp_path):
    out = tmp_path / "out"
    assert run("convert", str(batch), "-o", str(out)).exit_code == 0
    for path in batch.iterdir():
        path.write_text("not json at all")  # reading any of them would fail
    again = run("convert", str(batch), "-o", str(out), "-v")
    assert again.exit_code == 0
    assert again.stderr.splitlines()[:1] == [f"{out / 'song0.mid'} exists; kept (--overwrite replaces it)"]
    assert again.stderr.splitlines()[-1] == SUMMARY_SKIPPED.format(n=5)


def test_only_missing_outputs_are_made_on_a_rerun(batch, tmp_path):
    out = tmp_path / "out"
    run("convert", str(batch), "-o", str(out))
    (out / "song3.mid").unlink()
    again = run("convert", str(batch), "-o", str(out))
    assert again.exit_code == 0
    assert again.stderr.splitlines() == [
        f"wrote {out / 'song3.mid'}",
        "1 converted (3 notes), 0 repaired (0 repairs), 4 skipped (exist), 0 failed",
        KEPT.format(n=4, inputs="inputs", whose="their"),
    ]


def test_json_lines_are_skipped_line_by_line(tmp_path):
    lines = tmp_path / "songs.jsonl"
    record = fixture_path("record-info.json").read_text().replace("\n", " ")
    lines.write_text(f"{record}\n{record}\n")
    assert run("convert", str(lines)).exit_code == 0
    (tmp_path / "songs-2.mid").unlink()
    again = run("convert", str(lines))
    assert again.stderr.splitlines() == [
        f"wrote {tmp_path / 'songs-2.mid'}",
        "1 converted (3 notes), 0 repaired (0 repairs), 1 skipped (exist), 0 failed",
        KEPT.format(n=1, inputs="record", whose="its"),  # a line of JSON Lines is a record
    ]


def test_an_explicit_output_file_that_exists_is_named_in_one_line(tmp_path):
    target = tmp_path / "song.mid"
    target.write_bytes(b"keep me")
    result = run("convert", str(fixture_path("record-info.json")), "-o", str(target))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"{target} exists; kept (--overwrite replaces it)",
        SUMMARY_SKIPPED.format(n=1),
    ]
    assert target.read_bytes() == b"keep me"
    assert run("convert", str(fixture_path("record-info.json")), "-o", str(target), "--overwrite").exit_code == 0
    assert target.read_bytes().startswith(b"MThd")


def test_fetch_of_a_finished_task_asks_the_api_nothing(fake_api, task, tmp_path):
    env = {"MIDIEXPORT_API_KEY": API_KEY, "MIDIEXPORT_BASE_URL": fake_api.url}
    task_id = task("complete")
    assert run("fetch", task_id, "-o", str(tmp_path), env=env).exit_code == 0
    asked = len(fake_api.seen(task_id))
    again = run("fetch", task_id, "-o", str(tmp_path), env=env)
    assert again.exit_code == 0
    assert again.stderr.splitlines() == [SUMMARY_SKIPPED.format(n=1), KEPT.format(n=1, inputs="task", whose="its")]
    assert len(fake_api.seen(task_id)) == asked


# Usage errors found before any work


@pytest.mark.parametrize("out", ["-", "x.mid"])
def test_several_inputs_into_one_file_is_a_usage_error_before_any_work(batch, tmp_path, out):
    result = run("convert", str(batch), "-o", out if out == "-" else str(tmp_path / out))
    assert result.exit_code == 2
    assert "one file but there are several results; give a folder instead" in result.stderr
    assert result.stdout == "" and not (tmp_path / "x.mid").exists()


def test_an_existing_file_as_output_folder_is_a_usage_error(tmp_path):
    existing = tmp_path / "existing.json"
    existing.write_text("{}")
    for several in ([], ["--split"]):  # several results for it too: the same words
        result = run("convert", str(fixture_path("record-info.json")), "-o", str(existing), *several)
        assert result.exit_code == 2
        assert f"-o {existing} is a file, not a folder" in result.stderr


def test_info_refuses_json_that_holds_no_record(tmp_path):
    path = tmp_path / "hello.json"
    path.write_text('{"hello": "world"}')
    result = run("info", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"{path}: holds no MIDI data (none of instruments, midiData, data)"]


def test_info_describes_a_format_0_file_per_channel(tmp_path):
    target = tmp_path / "song0.mid"
    assert run("convert", str(SAMPLE), "--format", "0", "-o", str(target)).exit_code == 0
    parts = json.loads(run("info", "--json", str(target)).stdout)[0]["parts"]
    assert [(p["name"], p["channel"], p["program"]) for p in parts] == [
        ("Electric Bass (finger)", 0, 33), ("String Ensembles 1", 1, 48), ("Synth Voice", 2, 54), ("Drums", 9, 0),
    ]  # fmt: skip


# Programs


@pytest.mark.parametrize("name", ["Bass", "Bas"])  # a word of the name, or a typo of one
def test_a_program_for_no_instrument_warns_with_the_closest_name(tmp_path, name):
    result = run("convert", str(fixture_path("record-info.json")), "-o", str(tmp_path), "--program", f"{name}=38")
    assert result.exit_code == 0
    said = (
        f'a program was given for "{name}", but no instrument has that '
        'name (instruments: "Drums", "Electric Bass (finger)"); did you mean "Electric Bass (finger)"?'
    )
    assert f"warning: {fixture_path('record-info.json')}: {said}" in result.stderr.splitlines()
    import midiexport  # the library says the same

    record = midiexport.normalize_payload(fixture_path("record-info.json").read_bytes())[0]
    warnings = midiexport.convert_record(record, midiexport.ConvertOptions(programs={name: 38})).report.warnings
    assert warnings == (f"<payload>: {said}",)


def test_python_programs_for_no_instrument_warn_in_the_report():
    import midiexport

    record = midiexport.normalize_payload(fixture_path("record-info.json").read_bytes())[0]
    song = midiexport.convert_record(record, midiexport.ConvertOptions(programs={"Synt Voice": 38}))
    assert any('"Synt Voice", but no instrument has that name' in w for w in song.report.warnings)


def test_a_program_value_read_by_its_stem_word_beside_a_typo_warns_once(tmp_path):
    target = tmp_path / "x.mid"
    result = run("convert", str(fixture_path("record-info.json")), "-o", str(target),
                 "--program", "Electric Bass (finger)=Fretles Bass", "--program", "Drums=Fretles Bass")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    said = 'program "Fretles Bass" read as 33 Electric Bass (finger) by its word "Bass"; did you mean "Fretless Bass"?'
    lines = result.stderr.splitlines()
    assert lines.count(f"warning: {fixture_path('record-info.json')}: {said}") == 1  # once per value, two names
    programs = [m.program for t in mido.MidiFile(target).tracks for m in t if m.type == "program_change"]
    assert programs == [33, 33]  # still read as the stem word Bass: a warning, no refusal
    import midiexport  # the library says the same

    record = midiexport.normalize_payload(fixture_path("record-info.json").read_bytes())[0]
    options = midiexport.ConvertOptions(programs={"Electric Bass (finger)": "Fretles Bass"})
    assert midiexport.convert_record(record, options).report.warnings == (f"<payload>: {said}",)


@pytest.mark.parametrize(
    ("value", "program"),
    [("Electric Guitar", 25), ("Synth Bass", 33), ("Backing Vocals", 54), ("Acoustic Guitar", 25), ("Strings 1", 48),
     ("Electric Piano 1 (Rhodes)", 4)],
)  # fmt: skip
def test_shortened_program_names_convert_as_before_without_a_warning(tmp_path, value, program):
    target = tmp_path / "x.mid"
    result = run("convert", str(fixture_path("record-info.json")), "-o", str(target),
                 "--program", f"Electric Bass (finger)={value}")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    programs = [m.program for t in mido.MidiFile(target).tracks for m in t if m.type == "program_change"]
    assert programs == [0, program]  # drums, then the bass


@pytest.mark.parametrize(("word", "program"), [("Piano", 0), ("Strings", 48), ("Rhodes", 4), ("Bass", 33)])
def test_stem_names_are_accepted_as_programs(tmp_path, word, program):
    target = tmp_path / "x.mid"
    result = run("convert", str(fixture_path("record-info.json")), "-o", str(target),
                 "--program", f"Electric Bass (finger)={word}")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    programs = [m.program for t in mido.MidiFile(target).tracks for m in t if m.type == "program_change"]
    assert programs == [0, program]  # drums, then the bass


def test_a_misspelt_program_is_a_usage_error_with_did_you_mean():
    result = run("convert", str(fixture_path("record-info.json")), "--program", "X=Pianno")
    assert result.exit_code == 2
    assert "unknown program 'Pianno': did you mean 'Piano'?" in result.stderr
    assert "'midiexport programs' lists the names" in result.stderr


def test_programs_command_lists_the_accepted_names():
    result = run("programs")
    assert result.exit_code == 0
    assert "   33  Electric Bass (finger)" in result.stdout.splitlines()
    assert any(line.strip().startswith("4  Rhodes") for line in result.stdout.splitlines())


def test_quantize_without_bpm_uses_the_songs_own_tempo(tmp_path):
    target = tmp_path / "q.mid"
    assert run("convert", str(SAMPLE), "--quantize", "1/16", "-o", str(target)).exit_code == 0
    tempos = [m.tempo for t in mido.MidiFile(target).tracks for m in t if m.type == "set_tempo"]
    assert abs(mido.tempo2bpm(tempos[-1]) - 100) < 1  # the sample is at 100 BPM, not the default 120
    fixed = tmp_path / "fixed.mid"
    assert run("convert", str(SAMPLE), "--quantize", "1/16", "--bpm", "120", "-o", str(fixed)).exit_code == 0
    assert [m.tempo for t in mido.MidiFile(fixed).tracks for m in t if m.type == "set_tempo"] == [500_000]


# Messages on a terminal


def run_in_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; return its exit status and what the terminal got."""
    import pty

    controller, terminal = pty.openpty()
    env = package_env()
    process = subprocess.Popen([sys.executable, "-m", "midiexport", *args], stderr=terminal,
                               stdout=subprocess.DEVNULL, cwd=cwd, env=env)  # fmt: skip
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(timeout=60), b"".join(chunks).decode()


def test_terminal_shows_a_progress_bar_and_every_warning_above_it(batch, tmp_path):
    bad = record_payload({"Drums": [(128, 0.0, 0.5, 0.8), (36, 0.5, 1.0, 0.8)]})
    (batch / "song2.json").write_text(json.dumps(bad))
    status, screen = run_in_terminal(["convert", str(batch), "-o", str(tmp_path / "out"), "-j", "1"], tmp_path)
    assert status == 0
    assert "[########################] 5/5" in screen and "/s  ETA 0:00" in screen
    lines = [line.split("\r")[-1].replace("\x1b[K", "") for line in screen.splitlines()]
    assert any(line.startswith("warning: ") and "pitch 128 is outside 0-127" in line for line in lines)
    assert lines[-1] == (
        "5 converted (13 notes), 0 repaired (0 repairs), 1 note left out (pitch: 1), 0 skipped (exist), 0 failed"
    )


def test_terminal_bar_counts_the_inputs_found_and_records_beside_them_with_json_lines(batch, tmp_path):
    (batch / "songs.jsonl").write_text("\n".join([json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8)]}))] * 3))
    status, screen = run_in_terminal(["convert", str(batch), "-o", str(tmp_path / "out"), "-j", "1"], tmp_path)
    assert status == 0
    bars = [part.replace("\x1b[K", "") for part in screen.split("\r") if part.replace("\x1b[K", "").startswith("[")]
    assert bars and all(" inputs  " in bar and "/s  ETA " in bar for bar in bars)
    assert bars[0].startswith("[####--------------------] 1/6 inputs  1 record  ")  # 5 files and the .jsonl


def test_terminal_bar_of_one_json_lines_file_follows_its_bytes(tmp_path):
    line = json.dumps(record_payload({"Bass": [(40, 0.0, 1.0, 0.8)]})) + "\n"
    (tmp_path / "songs.jsonl").write_text(line * 4)
    status, screen = run_in_terminal(["convert", str(tmp_path / "songs.jsonl"), "-o", str(tmp_path / "out"), "-j", "1"],
                                     tmp_path)  # fmt: skip
    assert status == 0
    bars = [part.replace("\x1b[K", "") for part in screen.split("\r") if part.replace("\x1b[K", "").startswith("[")]
    size = f"{len(line) * 4 / 1000:.1f} kB"
    assert bars[0].startswith(f"[######------------------] {len(line) / 1000:.1f}/{size}  1 record  "), bars
    assert all("/1 inputs" not in bar for bar in bars)  # no "0/1 inputs" for the whole run


def test_bar_text_counts_inputs_and_their_pace():
    from midiexport.jobs.console import ProgressBar

    now = [0.0]
    bar = ProgressBar(4, lambda text: None, enabled=False, clock=lambda: now[0])
    now[0] = 2.0
    bar.step(["a.json"])
    assert bar.line(now[0]) == "[######------------------] 1/4  0.5/s  ETA 0:06"
    lines = ProgressBar(2, lambda text: None, enabled=False, clock=lambda: now[0], records=True)
    for _ in range(3):
        lines.step(["a.jsonl"], partial=True)
    assert lines.line(now[0]).startswith("[------------------------] 0/2 inputs  3 records  ")
    assert lines.line(now[0]).endswith("ETA -:--")  # no input finished yet: no pace to tell
    lines.step(["b.jsonl"], partial=True)  # a line of the next input: a.jsonl is done
    assert lines.line(now[0] + 1).startswith("[############------------] 1/2 inputs  4 records  ")
    stems = ProgressBar(3, lambda text: None, enabled=False, clock=lambda: now[0])
    stems.step(["S (Bass).mid", "S (Drums).mid"])  # one song of two stems: two inputs done
    assert " 2/3 " in stems.line(now[0] + 1)


def test_the_bar_of_a_single_json_lines_input_follows_the_bytes_its_records_were_read_from():
    from midiexport.jobs.console import ProgressBar

    now = [0.0]
    bar = ProgressBar(1, lambda text: None, enabled=False, clock=lambda: now[0], records=True, size=4_000_000)
    assert bar.line(now[0]).endswith("ETA -:--")
    now[0] = 10.0
    for _ in range(100):
        bar.step(["big.jsonl"], partial=True, size=10_000)  # 1 MB of 4 read in 10 s: 30 s left
    assert bar.line(now[0]) == "[######------------------] 1.0/4.0 MB  100 records  10.0/s  ETA 0:30"


def test_the_bar_follows_bytes_only_for_a_batch_of_one_json_lines_file(tmp_path):
    from midiexport.cli.convert import _lines_size
    from midiexport.io.files import find_inputs

    for name in ("a.jsonl", "b.jsonl", "c.json"):
        (tmp_path / name).write_text('{"x": 1}\n')
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "d.jsonl").write_text('{"x": 1}\n{"x": 2}\n')
    assert _lines_size(find_inputs([str(tmp_path / "a.jsonl")])) == 9  # named: sized by the search's own stat
    assert _lines_size(find_inputs([str(tmp_path / "in")])) == 18  # found in a folder
    assert _lines_size(find_inputs([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])) is None  # inputs counted
    assert _lines_size(find_inputs([str(tmp_path / "c.json")])) is None


# For developers


def test_json_report_lists_each_input_and_the_totals(batch, tmp_path):
    report = tmp_path / "report.json"
    out = tmp_path / "out"
    run("convert", str(batch / "song0.json"), "-o", str(out))
    result = run("convert", str(batch), "-o", str(out), "--report", str(report))
    assert result.exit_code == 0
    data = json.loads(report.read_text())
    assert data["command"] == "convert"
    assert [(r["input"], r["outcome"]) for r in data["results"]][:2] == [
        (str(batch / "song0.json"), "skipped"), (str(batch / "song1.json"), "converted"),
    ]  # fmt: skip
    assert data["results"][1]["files"] == [str(out / "song1.mid")] and data["results"][1]["notes"] == 3
    assert data["summary"] == {"converted": 4, "notes": 12, "repaired": 0, "repairs": 0, "notes_left_out": {},
                               "skipped_exist": 1, "failed": 0}  # fmt: skip


def test_json_report_to_stdout(tmp_path):
    result = run("convert", str(fixture_path("record-info.json")), "-o", str(tmp_path), "--report", "-", "-q")
    assert json.loads(result.stdout)["summary"]["converted"] == 1
    clash = run("convert", str(fixture_path("record-info.json")), "-o", "-", "--report", "-")
    assert clash.exit_code == 2


def test_name_template_names_split_files_by_instrument(tmp_path):
    result = run("convert", str(fixture_path("record-info.json")), "-o", str(tmp_path), "--split",
                 "--name", "{instrument} ({stem})")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Drums (record-info).mid",
                                                         "Electric Bass (finger) (record-info).mid"]  # fmt: skip


def test_name_template_for_fetch_is_planned_from_the_task_id(fake_api, task, tmp_path):
    env = {"MIDIEXPORT_API_KEY": API_KEY, "MIDIEXPORT_BASE_URL": fake_api.url}
    task_id = task("complete")
    assert run("fetch", task_id, "-o", str(tmp_path), "--name", "midi {task_id}", env=env).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"midi {task_id}.json", f"midi {task_id}.mid"]
    asked = len(fake_api.seen(task_id))
    assert run("fetch", task_id, "-o", str(tmp_path), "--name", "midi {task_id}", env=env).exit_code == 0
    assert len(fake_api.seen(task_id)) == asked


def test_an_unknown_name_field_is_a_usage_error():
    result = run("convert", str(fixture_path("record-info.json")), "--name", "{artist}")
    assert result.exit_code == 2
    assert "unknown field {artist}" in result.stderr


def test_convert_file_writes_beside_the_input_and_returns_the_paths(tmp_path):
    import midiexport

    source = tmp_path / "task.json"
    shutil.copy(fixture_path("record-info.json"), source)
    assert midiexport.convert_file(source) == [tmp_path / "task.mid"]
    again = midiexport.convert_file(source)  # as `convert` re-run: the existing file is kept, no error
    assert again == [] and again.existing == [tmp_path / "task.mid"]
    paths = midiexport.convert_file(source, tmp_path / "out", midiexport.ConvertOptions(split=True))
    assert [p.name for p in paths] == ["task-Drums.mid", "task-Electric Bass (finger).mid"]


def test_to_pretty_midi_gives_pretty_midi_the_notes():
    import midiexport

    record = midiexport.normalize_payload(fixture_path("record-info.json").read_bytes())[0]
    midi = midiexport.to_pretty_midi(record)
    assert [(i.name, i.is_drum, len(i.notes)) for i in midi.instruments] == [
        ("Drums", True, 2), ("Electric Bass (finger)", False, 1),
    ]  # fmt: skip


def test_to_pretty_midi_without_pretty_midi_says_how_to_install_it(monkeypatch):
    import midiexport

    monkeypatch.setitem(sys.modules, "pretty_midi", None)
    record = midiexport.normalize_payload(fixture_path("record-info.json").read_bytes())[0]
    with pytest.raises(ImportError, match=r"pip install 'midiexport\[pretty\]'"):
        midiexport.to_pretty_midi(record)


def test_fetch_writes_a_json_report_per_task(fake_api, task, tmp_path):
    env = {"MIDIEXPORT_API_KEY": API_KEY, "MIDIEXPORT_BASE_URL": fake_api.url}
    done, failed = task("complete"), task("not-found")
    result = run("fetch", done, failed, "-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json"), env=env)
    assert result.exit_code == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["command"] == "fetch"
    by_outcome = {r["outcome"]: r for r in data["results"]}  # each task as its download ends
    assert sorted(by_outcome) == ["converted", "failed"] and len(data["results"]) == 2
    assert by_outcome["converted"]["files"] == [
        str(tmp_path / "out" / f"{done}.mid"),
        str(tmp_path / "out" / f"{done}.json"),
    ]
    assert by_outcome["failed"]["input"] == f"task {failed}"
    assert data["summary"]["converted"] == 1 and data["summary"]["failed"] == 1


def test_json_lines_of_several_lines_into_one_file_is_a_usage_error(tmp_path):
    result = run("convert", str(fixture_path("records.jsonl")), "-o", str(tmp_path / "x.mid"))
    assert result.exit_code == 2
    assert "names one file but there are several results" in result.stderr
