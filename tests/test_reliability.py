"""Reliability: hostile inputs, bounds, interruptions, safe names.

Every file under tests/hostile/ has its expected outcome in CASES: refused with a
one-line message naming the place, or converted with the named repair. No input may
raise anything but the project's own error, nor leave a partial or temporary file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from conftest import SAMPLE, mido_file, run
from midiexport.errors import MidiExportError
from midiexport.io.files import TEMP_PREFIX, find_inputs, names_midi
from midiexport.outputs.smf import write_midi
from midiexport.stages.convert import convert_record
from midiexport.stages.midifile import read_midi
from midiexport.stages.normalize import normalize_payload

HOSTILE = Path(__file__).parent / "hostile"

# file -> (exit status, a line fragment stderr must hold, .mid files written with --split)
CASES: dict[str, tuple[int, str, int]] = {
    "not-json.json": (1, "not-json.json is not valid JSON", 0),
    "empty.json": (1, "empty.json is empty; expected a JSON record", 0),
    "truncated.json": (1, "truncated.json is not valid JSON (unexpected end of data)", 0),
    "bom.json": (0, "1 converted (2 notes)", 2),
    "invalid-utf8.json": (1, "invalid-utf8.json is not valid JSON (str is not valid UTF-8)", 0),
    "null.json": (1, "null.json holds null, not a MIDI record", 0),
    "number.json": (1, "number.json holds a number, not a MIDI record", 0),
    "string.json": (1, "string.json holds a string, not a MIDI record", 0),
    "empty-object.json": (1, "empty-object.json: holds no MIDI data", 0),
    "instruments-missing.json": (1, "instruments-missing.json: has no instruments: midiData is empty", 0),
    "instruments-not-list.json": (1, "instruments-not-list.json: has instruments that is a string, not a list", 0),
    "notes-not-list.json": (0, 'notes-not-list.json: "Bass": notes is an object, not a list; instrument left out', 1),
    "pitch-128.json": (0, 'pitch-128.json: "Piano", note 1: pitch 128 is outside 0-127', 1),
    "pitch-negative.json": (0, 'pitch-negative.json: "Piano", note 1: pitch -1 is outside 0-127', 1),
    "pitch-fraction.json": (0, 'pitch-fraction.json: "Piano", note 1: pitch 60.5 is not a whole number', 1),
    "pitch-string.json": (0, "pitch-string.json: 1 number read from strings", 1),
    "velocity-high.json": (0, "velocity-high.json: 1 velocity clamped to 0-1", 1),
    "velocity-negative.json": (0, "velocity-negative.json: 1 velocity clamped to 0-1", 1),
    "velocity-nan-string.json": (0, 'velocity-nan-string.json: "Piano", note 1: velocity "NaN" is not a finite number', 1),
    "velocity-infinity-string.json": (0, "1 number read from strings; 1 velocity clamped to 0-1", 1),
    "start-after-end.json": (0, 'start-after-end.json: "Piano", note 1: end 1.5 is before start 2.0', 1),
    "start-negative.json": (0, 'start-negative.json: "Piano", note 1: start -0.25 is negative', 1),
    "start-abc.json": (0, 'start-abc.json: "Piano", note 1: start "abc" is not a number', 1),
    "start-1e308.json": (0, 'start-1e308.json: "Piano", note 1: start 1e+308 is beyond 24 hours', 1),
    "missing-field.json": (0, 'missing-field.json: "Piano", note 1: end is missing', 1),
    "all-notes-invalid.json": (1, "all-notes-invalid.json: task hostile: has no valid notes to convert", 0),
    "twenty-melodic.json": (0, "twenty-melodic.json: 5 instruments sharing a channel", 20),
    "long-name.json": (0, "1 converted (1 note)", 1),
    "control-chars-name.json": (0, "control-chars-name.json: 1 unknown instrument name (program 0)", 1),
    "path-name.json": (0, "1 converted (2 notes)", 2),
    "reserved-names.json": (0, "1 converted (4 notes)", 4),
    "emoji-name.json": (0, "1 converted (1 note)", 1),
    "duplicate-notes.json": (0, "duplicate-notes.json: 2 duplicate notes merged", 1),
    "overlapping-notes.json": (0, "overlapping-notes.json: 1 overlapping note cut", 1),
    "zero-length.json": (0, "zero-length.json: 1 zero-length note lengthened to one tick", 1),
    "deep-nesting.json": (1, "deep-nesting.json is not valid JSON (nested more than 1024 levels deep)", 0),
    "success-flag-0.json": (1, "success-flag-0.json: task hostile: is still pending (successFlag 0)", 0),
    "success-flag-2.json": (1, "success-flag-2.json: task hostile: failed: the task could not be created (400: bad input)", 0),
    "success-flag-3.json": (1, "success-flag-3.json: task hostile: failed: MIDI generation failed (500: model failed)", 0),
    "midi-data-empty.json": (1, "midi-data-empty.json: task hostile: has no notes: midiData is empty (this is documented for separations of type split_stem)", 0),
    "midi-data-missing.json": (1, "midi-data-missing.json: task hostile: has no notes: midiData is empty", 0),
    "link-only.json": (1, "link-only.json: holds only a link to a MIDI file, no notes to convert", 0),
    "mixed-array.json": (1, "mixed-array.json: record 2: is a number, not a MIDI record", 2),
    "stray-end-time.json": (0, "1 converted (17 notes)", 2),
    "beat-map-behind.mid": (0, "1 converted (17 notes)", 1),
    "late-notes.mid": (0, "late-notes.mid: 1 note ending beyond 24 hours left out", 1),
}  # fmt: skip


def test_the_corpus_is_large_and_every_file_has_an_expected_outcome():
    files = sorted(Path(found.path).name for found in find_inputs([str(HOSTILE)]))  # what a folder search reads
    assert len(files) >= 30
    assert files == sorted(CASES)


def no_temporary_files(folder: Path) -> bool:
    return not any(p.name.startswith(TEMP_PREFIX) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_has_its_expected_outcome(name, tmp_path):
    status, fragment, written = CASES[name]
    out = tmp_path / "out"
    result = run("convert", str(HOSTILE / name), "-o", str(out), "--split", "--jobs", "1")
    assert result.exit_code == status, result.stderr
    assert fragment in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    produced = sorted(out.glob("*.mid")) if out.exists() else []
    assert len(produced) == written
    for path in produced:
        assert path.resolve().parent == out.resolve()
        assert mido_file(path.read_bytes()).type == 1
    assert not out.exists() or no_temporary_files(out)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_raises_only_our_error_through_the_library(name):
    data = (HOSTILE / name).read_bytes()
    try:
        for record in [read_midi(data, source=name)] if names_midi(name) else normalize_payload(data, source=name):
            try:
                write_midi(convert_record(record))
            except MidiExportError:
                pass
    except MidiExportError:
        pass


@pytest.mark.parametrize("name", sorted(filter(names_midi, CASES)))
@pytest.mark.parametrize("how", [["--bpm", "auto"], ["--clean", "strong", "--align"], ["--format", "0"]])
def test_a_damaged_midi_file_reads_the_same_with_every_analysis(name, how, tmp_path):
    status, fragment, _ = CASES[name]
    result = run("convert", str(HOSTILE / name), "-o", str(tmp_path / "out"), *how)
    assert result.exit_code == status, result.stderr
    assert fragment in result.stderr and "internal error" not in result.stderr


def test_hostile_names_become_safe_readable_files_inside_the_folder(tmp_path):
    out = tmp_path / "out"
    names = ["path-name.json", "reserved-names.json", "long-name.json", "emoji-name.json", "control-chars-name.json"]
    result = run("convert", *(str(HOSTILE / n) for n in names), "-o", str(out), "--split")
    assert result.exit_code == 0, result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert "emoji-name-🎸 ギター Guitar.mid" in files
    assert "path-name-_.._evil_.._bass.mid" in files and "path-name-a_b_c.mid" in files
    assert "reserved-names-_CON.mid" in files and "reserved-names-_nul.mid" in files
    assert all(len(name.encode()) <= 255 and "/" not in name and "\\" not in name for name in files)
    assert all(c.isprintable() for name in files for c in name)


def test_colliding_names_get_a_suffix(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(HOSTILE / "bom.json", tmp_path / folder / "song.json")
    result = run("convert", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["song-2.mid", "song.mid"]


def test_a_symlink_planted_at_the_target_is_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "bom.mid").symlink_to(secret)
    result = run("convert", str(HOSTILE / "bom.json"), "-o", str(out), "-v")
    assert result.exit_code == 0  # the name is taken: the input counts as done and is skipped
    assert f"{out / 'bom.mid'} exists; kept (--overwrite replaces it)" in result.stderr
    assert secret.read_text() == "keep"


def test_fifty_megabytes_of_whitespace_are_refused(tmp_path):
    path = tmp_path / "blank.json"
    path.write_bytes(b" \n\t" * 17_000_000)
    result = run("convert", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path} is empty; expected a JSON record")


def big_record(notes: int, instruments: int = 1) -> bytes:
    per = notes // instruments
    parts = [{"name": "Drums" if i == 0 else "Piano", "notes": [
        {"pitch": 36 + (k % 40), "start": k / 192, "end": (k + 1) / 192, "velocity": 1.0} for k in range(per)]}
        for i in range(instruments)]  # fmt: skip
    return orjson.dumps(
        {"data": {"taskId": "big", "successFlag": 1, "midiData": {"state": "complete", "instruments": parts}}}
    )


@pytest.mark.parametrize(("notes", "instruments"), [(200_000, 1), (1_000_000, 4)])
def test_huge_records_convert(notes, instruments):
    [record] = normalize_payload(big_record(notes, instruments))
    song = convert_record(record)
    assert song.note_count == notes
    midi = mido_file(write_midi(song))
    assert sum(1 for t in midi.tracks for m in t if m.type == "note_on") == notes


PEAK_RSS = (
    "import resource, sys\nfrom midiexport.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def peak_rss_kib(*args: str) -> int:
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", [["info"], ["convert", "--bpm", "auto", "--split", "-q"]])
def test_a_stray_end_time_hours_in_costs_the_tempo_estimate_little_memory(tmp_path, command):
    # 17 notes, one 23.9 hours in: the estimate once took 1.4 GB for its 10 ms frames over the span.
    args = [*command, str(HOSTILE / "stray-end-time.json")]
    args += ["-o", str(tmp_path / "out")] if command[0] == "convert" else []
    baseline = peak_rss_kib("info", str(HOSTILE / "bom.json"))  # the same imports, a record of two notes
    assert peak_rss_kib(*args) - baseline < 200 * 1024
    if command[0] == "convert":
        assert len(list((tmp_path / "out").glob("*.mid"))) == 2


def test_memory_of_a_json_lines_batch_stays_that_of_one_record(tmp_path):
    line = big_record(40_000) + b"\n"
    (tmp_path / "one.jsonl").write_bytes(line)
    (tmp_path / "many.jsonl").write_bytes(line * 40)  # 40 records, ~140 MB of JSON
    one = peak_rss_kib("convert", str(tmp_path / "one.jsonl"), "-o", str(tmp_path / "o1"), "-q", "--jobs", "1")
    many = peak_rss_kib("convert", str(tmp_path / "many.jsonl"), "-o", str(tmp_path / "o2"), "-q", "--jobs", "1")
    assert len(list((tmp_path / "o2").iterdir())) == 40
    assert many < one + 40 * 1024, (one, many)  # holding every record would add ~1 GB


def start_batch(folder: Path, out: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "midiexport", "convert", str(folder), "-o", str(out), "--jobs", "2", *args]
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # a background shell ignores it


def wait_for_files(out: Path, count: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if out.exists() and len(list(out.glob("*.mid"))) >= count:
            return
        time.sleep(0.005)
    raise AssertionError("the batch wrote no files")


def interrupt_a_batch(tmp_path: Path, sent: int, status: int, *args: str) -> tuple[Path, Path, bytes]:
    """Send ``sent`` to a batch of 300 songs once it wrote 3, check its exit ``status``; return in/, out/ and stderr."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(300):
        shutil.copy(SAMPLE, folder / f"song{i:03d}.json")
    batch = start_batch(folder, out, *args)
    wait_for_files(out, 3)
    batch.send_signal(sent)
    _, stderr = batch.communicate(timeout=60)
    assert batch.returncode == status, stderr
    return folder, out, stderr


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_batch_leaves_only_complete_files_and_resumes(tmp_path, sent, status):
    folder, out, stderr = interrupt_a_batch(tmp_path, sent, status)
    expected_notes = sum(len(i["notes"]) for i in json.loads(SAMPLE.read_text())["data"]["midiData"]["instruments"])
    assert b"interrupted:" in stderr and b"Traceback" not in stderr
    finished = sorted(out.glob("*.mid"))
    assert 3 <= len(finished) < 300, "the batch ended before the signal; make it longer"
    assert no_temporary_files(out)
    for path in finished:
        assert sum(1 for t in mido_file(path.read_bytes()).tracks for m in t if m.type == "note_on") == expected_notes
    stamps = {p.name: p.stat().st_mtime_ns for p in finished}
    rerun = subprocess.run([sys.executable, "-m", "midiexport", "convert", str(folder), "-o", str(out), "-q"],
                           capture_output=True, check=False)  # fmt: skip
    assert rerun.returncode == 0  # the finished files are kept and skipped; the rest are converted
    assert sorted(p.name for p in out.glob("*.mid")) == [f"song{i:03d}.mid" for i in range(300)]
    assert {p: (out / p).stat().st_mtime_ns for p in stamps} == stamps
    assert no_temporary_files(out)
    assert os.path.getsize(out / "song299.mid") == os.path.getsize(finished[0])


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_batch_still_writes_its_report_marked_interrupted(tmp_path, sent, status):
    report = tmp_path / "report.json"
    _, out, _ = interrupt_a_batch(tmp_path, sent, status, "--report", str(report))
    data = json.loads(report.read_text())  # whole JSON: written at once, never half
    assert data["interrupted"] is True
    written = {p for r in data["results"] for p in r["files"]}
    on_disk = {str(p) for p in out.glob("*.mid")}
    assert len(on_disk) < 300, "the batch ended before the signal; make it longer"
    assert written <= on_disk and len(written) >= len(on_disk) - 1  # at most the unit being written is missing
    assert data["summary"]["converted"] == len(data["results"]) == len(written)
    assert no_temporary_files(tmp_path)
