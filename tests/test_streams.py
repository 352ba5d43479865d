"""Files and streams under hostile conditions: real file-system objects and real processes.

Unreadable inputs among others, FIFOs, devices, size limits, an -o that is a file,
control characters in every printed name, and closed, full, broken or non-blocking
standard streams. Each ends in one line (on stderr) and the right exit status, and
success is reported only when every byte arrived.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from conftest import SAMPLE, mido_file, record_payload
from midiexport.display import printable
from midiexport.io.files import TEMP_PREFIX

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
BAD_OUTPUT = ("Traceback", "Exception ignored", "internal error")


def midiexport(*args: str, shell_tail: str = "", env: dict[str, str] | None = None,
               timeout_s: float = 60) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    """Run the CLI in a shell, so redirections such as ``<&-`` or ``>/dev/full`` are real."""
    command = " ".join([_quote(sys.executable), "-m", "midiexport", *map(_quote, args), shell_tail])
    return subprocess.run(["sh", "-c", command], capture_output=True, timeout=timeout_s, env=env, check=False)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def lines_of(stderr: bytes) -> list[str]:
    text = stderr.decode("utf-8", "replace")
    assert not any(bad in text for bad in BAD_OUTPUT), text
    return text.splitlines()


def big_payload(notes: int = 60_000) -> bytes:
    """A record whose .mid is ~480 KB: more than a pipe holds (64 KiB)."""
    parts = {"Piano": [(36 + k % 48, k / 96, k / 96 + 0.5, 0.8) for k in range(notes)]}
    return orjson.dumps(record_payload(parts))


# --- unreadable inputs among others -------------------------------------------------


def _dangling(folder: Path, name: str) -> None:
    (folder / name).symlink_to(folder / "nowhere")


def _through_a_file(folder: Path, name: str) -> None:
    (folder / name).symlink_to(SAMPLE / "inside")  # a path component is a file: ENOTDIR, even for root


def _unreadable(folder: Path, name: str) -> None:
    if IS_ROOT:
        pytest.skip("root reads files without read permission; the symlink cases give the same OSError")
    shutil.copy(SAMPLE, folder / name)
    (folder / name).chmod(0)


@pytest.mark.parametrize(
    ("make", "name", "reason"),
    [
        (_dangling, "b.json", "No such file or directory"),
        (_dangling, "b.jsonl", "No such file or directory"),
        (_through_a_file, "b.json", "Not a directory"),
        (_through_a_file, "b.jsonl", "Not a directory"),
        (_unreadable, "b.jsonl", "Permission denied"),
    ],
)
def test_an_unreadable_input_in_a_folder_is_one_line_and_the_batch_goes_on(tmp_path, make, name, reason):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "a.json")
    make(folder, name)
    shutil.copy(SAMPLE, folder / "c.json")
    for jobs in ("1", "2"):
        done = midiexport("convert", str(folder), "-o", str(tmp_path / f"out{jobs}"), "-j", jobs)
        assert done.returncode == 1
        errors = [line for line in lines_of(done.stderr) if not line.startswith(("wrote", "0 ", "2 "))]
        assert errors == [f"{folder / name}: cannot read ({reason})"]
        assert sorted(p.name for p in (tmp_path / f"out{jobs}").iterdir()) == ["a.mid", "c.mid"]


def test_a_dangling_symlink_named_alone_is_one_line_before_anything_is_written(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "ok.json")
    _dangling(tmp_path, "gone.jsonl")
    done = midiexport("convert", str(tmp_path / "ok.json"), str(tmp_path / "gone.jsonl"), "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    assert lines_of(done.stderr) == [f"{tmp_path / 'gone.jsonl'}: no such file or folder"]  # a typo: checked first
    assert not (tmp_path / "out").exists()


# --- FIFOs, devices and the size limit ----------------------------------------------


@pytest.mark.parametrize("name", ["pipe.json", "pipe.jsonl"])
def test_a_fifo_with_no_writer_in_a_folder_is_refused_without_waiting(tmp_path, name):
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / name)
    shutil.copy(SAMPLE, folder / "z.json")
    done = midiexport("convert", str(folder), "-o", str(tmp_path / "out"), timeout_s=30)
    assert done.returncode == 1
    assert (
        f"{folder / name}: is a FIFO, not a regular file; only regular files are read from folders"
        in (lines_of(done.stderr)[0])
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["z.mid"]


def test_a_fifo_named_alone_is_read_when_its_writer_comes(tmp_path):
    fifo = tmp_path / "song.json"
    os.mkfifo(fifo)

    def write_once_read() -> None:
        with os.fdopen(_open_when_a_reader_waits(fifo), "wb") as writer:
            writer.write(SAMPLE.read_bytes())

    writer = threading.Thread(target=write_once_read)
    writer.start()
    done = midiexport("convert", str(fifo), "-o", str(tmp_path / "song.mid"), timeout_s=30)
    writer.join()
    assert done.returncode == 0, done.stderr
    assert mido_file((tmp_path / "song.mid").read_bytes()).tracks


def _open_when_a_reader_waits(fifo: Path, timeout_s: float = 30) -> int:
    """Open ``fifo`` for writing once a reader has opened it and waits (a blocking descriptor).

    Opening for writing without waiting fails (ENXIO) while no reader has the FIFO open, and
    succeeds once one is blocked in its own open: so the reader surely came first, however
    slowly it started, and waited for its writer.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # a poll interval, not a wait for something to happen
            continue
        os.set_blocking(fd, True)
        return fd


def test_a_device_named_alone_is_read_only_up_to_the_limit(tmp_path):
    started = time.monotonic()
    done = midiexport("convert", "/dev/zero", "-o", str(tmp_path / "z.mid"), "--max-input-mb", "2")
    assert done.returncode == 1
    assert lines_of(done.stderr)[0] == ("/dev/zero is larger than 2 MB; raise the limit with --max-input-mb")
    assert time.monotonic() - started < 30  # not the unbounded read of before (no timing claim beyond "ends")
    assert not (tmp_path / "z.mid").exists()


def test_a_regular_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(3_000_001)  # sparse: 3 MB that were never written
    done = midiexport("convert", str(huge), "-o", str(tmp_path / "out"), "--max-input-mb", "3")
    assert done.returncode == 1
    assert lines_of(done.stderr)[0].startswith(f"{huge} is larger than 3 MB; raise the limit with --max-input-mb")
    raised = midiexport("convert", str(huge), "-o", str(tmp_path / "out"), "--max-input-mb", "3.1")
    assert "is neither JSON nor a .mid file" in lines_of(raised.stderr)[0]  # read now, refused for what it holds


def test_a_json_lines_line_over_the_limit_is_refused_naming_the_line(tmp_path):
    line = SAMPLE.read_bytes().replace(b"\n", b" ") + b"\n"
    jsonl = tmp_path / "songs.jsonl"
    jsonl.write_bytes(line + b" " * 1_100_000 + line)
    done = midiexport("convert", str(jsonl), "-o", str(tmp_path / "out"), "--max-input-mb", "1")
    assert done.returncode == 1
    assert f"{jsonl}: line 2 is larger than 1 MB; raise the limit with --max-input-mb" in done.stderr.decode()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["songs-1.mid"]


def test_standard_input_is_read_only_up_to_the_limit(tmp_path):
    done = midiexport("convert", "-", "-o", str(tmp_path / "x.mid"), "--max-input-mb", "1", shell_tail="< /dev/zero")
    assert done.returncode == 1
    assert lines_of(done.stderr)[0].startswith("<stdin> is larger than 1 MB")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "many"])
def test_max_input_mb_must_be_a_size_above_zero(tmp_path, value):
    done = midiexport("convert", str(SAMPLE), "-o", str(tmp_path / "x.mid"), "--max-input-mb", value)
    assert done.returncode == 2
    assert "--max-input-mb" in done.stderr.decode()


def test_info_takes_the_size_limit_too(tmp_path):
    done = midiexport("info", "/dev/zero", "--max-input-mb", "1")
    assert done.returncode == 1
    assert lines_of(done.stderr) == ["/dev/zero is larger than 1 MB; raise the limit with --max-input-mb"]


# --- -o that names a file -----------------------------------------------------------


@pytest.mark.parametrize("name", ["notes.txt", "folder-like", "x.json"])
def test_output_that_is_an_existing_file_says_it_is_not_a_folder(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"keep me")
    done = midiexport("convert", str(SAMPLE), "-o", str(target))
    assert done.returncode == 2
    assert f"-o {target} is a file, not a folder" in done.stderr.decode()
    assert target.read_bytes() == b"keep me"


def test_output_below_a_file_says_which_part_is_a_file(tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    done = midiexport("convert", str(SAMPLE), "-o", str(tmp_path / "plain" / "sub"))
    assert done.returncode == 1
    assert lines_of(done.stderr)[0] == (
        f"{tmp_path / 'plain' / 'sub' / 'sample-song.mid'}: cannot write ({tmp_path / 'plain'} is a file, not a folder)"
    )


# --- control characters in everything printed ---------------------------------------

HOSTILE_TEXT = "x\x1b]0;owned\x07\x1b[2J\nfake: 0 failed\x9b31m\u202egnp.exe"


def test_printable_escapes_controls_bidi_and_undecodable_bytes():
    assert printable("plain é ü 日本") == "plain é ü 日本"
    assert printable(HOSTILE_TEXT) == "x\\x1b]0;owned\\x07\\x1b[2J\\nfake: 0 failed\\x9b31m\\u202egnp.exe"
    assert printable("\t\r\x00\x7f\u2028\u2066\u200f") == "\\t\\r\\x00\\x7f\\u2028\\u2066\\u200f"
    assert printable(os.fsdecode(b"bad\xff.json")) == "bad\\xff.json"


def _no_raw_controls(data: bytes) -> None:
    text = data.decode("utf-8")  # also proves every line could be encoded
    for char in ("\x1b", "\x07", "\x9b", "\u202e", "\r"):
        assert char not in text


def test_a_file_name_with_control_characters_is_printed_escaped(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    evil = folder / "a\x1b[31m\x07\nb\u202e.json"
    evil.write_bytes(b"not json")
    (folder / os.fsdecode(b"c\xff.json")).write_bytes(b"[]")
    done = midiexport("convert", str(folder), "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    _no_raw_controls(done.stderr)
    lines = lines_of(done.stderr)
    assert len(lines) == 3  # two one-line errors and the summary: the newline did not split a line
    assert lines[0].startswith(f"{folder}/a\\x1b[31m\\x07\\nb\\u202e.json is not valid JSON")
    assert lines[1] == f"{folder}/c\\xff.json is an empty list; it holds no records"


def test_server_messages_and_instrument_names_are_printed_escaped(tmp_path):
    failed = tmp_path / "failed.json"
    failed.write_bytes(orjson.dumps({"code": 200, "data": {"taskId": "t\x1b[1A", "successFlag": 3,
                                                          "errorCode": 500, "errorMessage": HOSTILE_TEXT}}))  # fmt: skip
    bad_code = tmp_path / "code.json"
    bad_code.write_bytes(orjson.dumps({"code": 451, "msg": HOSTILE_TEXT}))
    named = tmp_path / "named.json"
    named.write_bytes(orjson.dumps(record_payload({HOSTILE_TEXT: [(60, 0.0, 1.0, 0.8)]}, title=HOSTILE_TEXT)))
    done = midiexport("convert", str(failed), str(bad_code), str(named), "-o", str(tmp_path / "out"), "-v")
    _no_raw_controls(done.stderr)
    text = done.stderr.decode()
    assert "failed (500: x\\x1b]0;owned\\x07\\x1b[2J\\nfake: 0 failed" in text
    assert "failed: x\\x1b]0;owned" in text
    assert "is not a known instrument name" in text and "\\u202egnp.exe" in text
    info = midiexport("info", str(named), str(failed))
    _no_raw_controls(info.stdout)
    assert "x\\x1b]0;owned\\x07" in info.stdout.decode()


# --- closed, full, broken and non-blocking standard streams -------------------------


def test_closed_standard_input_is_one_line(tmp_path):
    done = midiexport("convert", "-", "-o", str(tmp_path / "x.mid"), shell_tail="<&-")
    assert done.returncode == 1
    assert lines_of(done.stderr)[0] == "<stdin>: standard input is closed"


@pytest.mark.parametrize(
    "args",
    [("convert", str(SAMPLE), "-o", "-"), ("info", str(SAMPLE)), ("info", "--json", str(SAMPLE))],
)
@pytest.mark.parametrize(("tail", "reason"), [(">&-", "it is closed"), ("> /dev/full", "No space left on device")])
def test_closed_or_full_standard_output_is_one_line_and_exit_1(args, tail, reason):
    done = midiexport(*args, shell_tail=tail)
    assert done.returncode == 1
    assert lines_of(done.stderr)[0] == f"cannot write to standard output ({reason})"


def test_a_reader_that_goes_away_is_one_line_not_a_success(tmp_path):
    (tmp_path / "big.json").write_bytes(big_payload())
    done = midiexport("convert", str(tmp_path / "big.json"), "-o", "-", shell_tail="| head -c 10 >/dev/null")
    # sh reports the last command's status; the CLI's own line tells what happened to it
    assert lines_of(done.stderr) == [
        "cannot write to standard output (Broken pipe)",
        "0 converted (0 notes), 0 repaired (0 repairs), 0 skipped (exist), 1 failed",
    ]


def test_every_byte_reaches_a_slow_reader_of_a_non_blocking_pipe(tmp_path):
    source = tmp_path / "big.json"
    source.write_bytes(big_payload())
    expected = subprocess.run([sys.executable, "-m", "midiexport", "convert", str(source), "-o", "-"],
                              capture_output=True, check=True).stdout  # fmt: skip
    assert len(expected) > 4 * 65536
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "midiexport", "convert", str(source), "-o", "-"],
                               stdout=write_end, stderr=subprocess.PIPE, env=env)  # fmt: skip
    os.close(write_end)
    received = bytearray()
    with os.fdopen(read_end, "rb", buffering=0) as reader:
        _wait_until_full(read_end, process)  # the writer has more to write: it meets EAGAIN
        while chunk := reader.read(4096):
            received += chunk
            time.sleep(0.0005)  # the slow reader under test, not a wait
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert bytes(received) == expected
    assert lines_of(stderr)[-1].startswith("1 converted")


def _wait_until_full(read_end: int, writer: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Wait until the pipe of ``read_end`` holds all it can (Linux: F_GETPIPE_SZ), or ``writer`` has ended.

    Elsewhere the pipe's size cannot be asked: wait for 16 KiB, the least a BSD or macOS pipe holds.
    """
    import array
    import fcntl
    import termios

    size = fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ) if hasattr(fcntl, "F_GETPIPE_SZ") else 16 * 1024
    held = array.array("i", [0])
    deadline = time.monotonic() + timeout_s
    while writer.poll() is None:
        fcntl.ioctl(read_end, termios.FIONREAD, held)
        if held[0] >= size:
            return
        assert time.monotonic() < deadline, f"the pipe holds {held[0]} bytes of {size} after {timeout_s:g} s"
        time.sleep(0.01)  # a poll interval, not a wait for something to happen


def test_a_full_output_disk_is_one_line_and_leaves_no_file(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"mounting a 64 KiB tmpfs needs root ({exc})")
    try:
        (tmp_path / "big.json").write_bytes(big_payload())
        shutil.copy(SAMPLE, tmp_path / "small.json")
        done = midiexport("convert", str(tmp_path / "big.json"), str(tmp_path / "small.json"), "-o", str(mount))
        assert done.returncode == 1
        lines = lines_of(done.stderr)
        assert lines[0] == f"{mount / 'big.mid'}: cannot write (No space left on device)"
        assert sorted(p.name for p in mount.iterdir()) == ["small.mid"]  # no half file, no temporary file
        assert not any(p.name.startswith(TEMP_PREFIX) for p in mount.iterdir())
        assert mido_file((mount / "small.mid").read_bytes()).tracks
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("args", [("-o", "x.mid"), ("-o", "-"), ("--split", "-o", "stems")])
def test_a_closed_standard_error_drops_messages_and_never_lands_in_a_file(tmp_path, args):
    shutil.copy(SAMPLE, tmp_path / "song.json")
    done = subprocess.run(["sh", "-c", " ".join([_quote(sys.executable), "-m", "midiexport", "convert", "song.json",
                                                 *args, "2>&-"])],
                          cwd=tmp_path, capture_output=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0
    outputs = [done.stdout] if "-" in args else [p.read_bytes() for p in tmp_path.rglob("*.mid")]
    assert outputs
    for data in outputs:
        assert b"wrote" not in data and b"converted" not in data
        assert mido_file(data).tracks


def test_the_tempo_line_of_a_file_with_control_characters_in_its_name_is_printed_escaped(tmp_path):
    evil = tmp_path / "a\x1b[2J\u202eb.json"
    shutil.copy(SAMPLE, evil)
    done = midiexport("convert", str(evil), "-o", str(tmp_path / "out"), "--bpm", "auto")
    assert done.returncode == 0, done.stderr
    _no_raw_controls(done.stderr)
    assert any(line.startswith(f"{tmp_path}/a\\x1b[2J\\u202eb.json: tempo ") for line in lines_of(done.stderr))
