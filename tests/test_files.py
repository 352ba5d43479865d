from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest

from midiexport.errors import InputError, OutputError
from midiexport.io import files
from midiexport.io.files import FileExists, NamePlanner, find_inputs, safe_name, write_atomic


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("My Song", "My Song"),
        ("a/b\\c", "a_b_c"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..", "untitled"),
        ("", "untitled"),
        ("tab\there\x00nul\x1b[31m", "tab_here_nul_[31m"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("Com1", "_Com1"),
        ('what?*:"<>|', "what_"),
        ("钢铁侠 🎸 Ünïcode", "钢铁侠 🎸 Ünïcode"),
        ("trailing dots... ", "trailing dots"),
    ],
)
def test_safe_name_makes_readable_safe_names(text, name):
    assert safe_name(text) == name


def test_safe_name_is_bounded_in_utf8_bytes_on_a_character_boundary():
    name = safe_name("🎸" * 1000)
    assert len(name.encode()) <= 120
    assert name == "🎸" * 30


def test_name_planner_adds_a_suffix_to_names_used_in_this_run(tmp_path):
    planner = NamePlanner()
    assert [planner.claim(tmp_path, s).name for s in ("song", "Song", "song", "other")] == [
        "song.mid", "Song-2.mid", "song-3.mid", "other.mid",
    ]  # fmt: skip


def test_write_atomic_writes_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "deep" / "out.mid"
    write_atomic(target, b"MThd")
    assert target.read_bytes() == b"MThd"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.mid"]


def test_write_atomic_never_replaces_without_overwrite(tmp_path):
    target = tmp_path / "out.mid"
    target.write_bytes(b"old")
    with pytest.raises(FileExists, match=r"out.mid exists; allow overwriting to replace it$"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    write_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mid"]


def test_a_planted_symlink_is_never_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "song.mid").symlink_to(outside)
    with pytest.raises(FileExists):
        write_atomic(folder / "song.mid", b"MThd")
    write_atomic(folder / "song.mid", b"MThd", overwrite=True)
    assert outside.read_bytes() == b"precious"
    assert not (folder / "song.mid").is_symlink()


def test_output_path_under_a_file_is_an_output_error(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="cannot write"):
        write_atomic(tmp_path / "file" / "x.mid", b"MThd")


def test_find_inputs_searches_folders_recursively_in_sorted_order(tmp_path):
    for name in ("b/2.json", "b/1.jsonl", "a.json", "c/readme.txt", ".hidden/x.json", "d/.x.json"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    found = find_inputs([str(tmp_path)])
    assert [Path(f.path).relative_to(tmp_path).as_posix() for f in found] == ["a.json", "b/1.jsonl", "b/2.json"]
    assert [f.lines for f in found] == [False, True, False]


def test_a_batch_looks_at_each_named_input_once_and_tells_two_spellings_of_it_apart_from_none(tmp_path, monkeypatch):
    from midiexport.jobs.convert_files import find_batch_inputs

    task = tmp_path / "task.json"
    task.write_text("{}")
    (tmp_path / "other.json").write_text("{}")
    looked: list[str] = []
    real_stat = os.stat

    def counted(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        looked.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counted)
    spelt = f"{tmp_path}/./task.json"  # another spelling of the same file
    found = find_batch_inputs([str(task), spelt, str(tmp_path / "other.json")])
    assert [source.path for source in found.sources] == [str(task), str(tmp_path / "other.json")]
    assert found.repeated == 1
    assert looked.count(str(task)) == looked.count(spelt) == 1  # the search's stat tells which file it is


def test_a_folder_the_search_cannot_list_is_an_input_that_fails_not_one_left_out_in_silence(tmp_path, monkeypatch):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.json").write_text("{}")
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]  # root reads any folder: refuse this one as a user's system would
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = [source.path for source in find_inputs([str(tmp_path)])]
    assert found == [str(tmp_path / "a.json"), str(tmp_path / "locked")]


def test_find_inputs_reports_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(InputError, match="nope.json: no such file or folder"):
        find_inputs([str(tmp_path / "nope.json")])
    with pytest.raises(InputError, match="no .json, .jsonl, .mid or .zip files in this folder"):
        find_inputs([str(tmp_path)])


@pytest.mark.parametrize("blank", ["", " \t"])
def test_find_inputs_refuses_an_empty_path_rather_than_read_the_current_folder(tmp_path, monkeypatch, blank):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(InputError, match=re.escape(f"an input is empty ({blank!r}); give a file, a folder or -")):
        find_inputs([blank])


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names descriptors through /proc")
def test_a_durable_write_and_make_durable_flush_the_same_things(tmp_path, monkeypatch):
    # Both go to the disk the same way: the file's data, its folder, and the folder's parent
    # (where a new folder's own name lives). The flushes are recorded, then really made.
    flushed: list[tuple[str, str]] = []

    def recording(kind, real):  # type: ignore[no-untyped-def]
        def flush(fd: int) -> None:
            flushed.append((kind, os.readlink(f"/proc/self/fd/{fd}")))
            real(fd)

        return flush

    monkeypatch.setattr(os, "fsync", recording("fsync", os.fsync))
    monkeypatch.setattr(os, "fdatasync", recording("fdatasync", os.fdatasync))
    (tmp_path / "a").mkdir()
    files.write_atomic(tmp_path / "a" / "one.mid", b"MThd", durable=True)
    by_write = [(kind, Path(name).parent if kind == "fdatasync" else Path(name)) for kind, name in flushed]
    flushed.clear()
    files.write_atomic(tmp_path / "a" / "two.mid", b"MThd")
    files.make_durable([tmp_path / "a" / "two.mid"])
    by_call = [(kind, Path(name).parent if kind == "fdatasync" else Path(name)) for kind, name in flushed]
    assert (
        sorted(by_write)
        == sorted(by_call)
        == sorted([("fdatasync", tmp_path / "a"), ("fsync", tmp_path / "a"), ("fsync", tmp_path)])
    )


PETABYTE_MB = 1e9  # a --max-input-mb no machine can allocate: asking for it at once is a MemoryError


@pytest.fixture
def pipe_as_stdin(monkeypatch):  # type: ignore[no-untyped-def]
    """Return a function that makes a pipe holding some bytes standard input (closed after the test)."""
    opened: list[io.TextIOWrapper] = []

    def pipe(data: bytes) -> None:
        read_end, write_end = os.pipe()
        os.write(write_end, data)  # within the pipe's buffer: no writer thread needed
        os.close(write_end)
        opened.append(io.TextIOWrapper(os.fdopen(read_end, "rb")))
        monkeypatch.setattr(sys, "stdin", opened[-1])

    yield pipe
    monkeypatch.undo()
    for stream in opened:
        stream.close()


def test_read_bytes_reads_a_file_whatever_the_limit(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b'{"x": 1}')
    assert files.read_bytes(find_inputs([str(path)])[0], max_mb=PETABYTE_MB) == b'{"x": 1}'


def test_read_bytes_reads_standard_input_whatever_the_limit(pipe_as_stdin):
    pipe_as_stdin(b'{"x": 1}\n')
    assert files.read_bytes(find_inputs([files.STDIN])[0], max_mb=PETABYTE_MB) == b'{"x": 1}\n'


@pytest.mark.parametrize(("size", "refused"), [(500, False), (501, True), (40, False)])
def test_a_stream_past_its_first_read_is_read_in_chunks_up_to_the_limit(monkeypatch, pipe_as_stdin, size, refused):
    monkeypatch.setattr(files, "FIRST_READ_BYTES", 7)  # so the doubling reads after the first one run
    data = bytes(range(256)) * 2
    pipe_as_stdin(data[:size])
    source = find_inputs([files.STDIN])[0]
    if refused:
        with pytest.raises(InputError, match=r"^<stdin> is larger than 0\.0005 MB; "):
            files.read_bytes(source, max_mb=0.0005)
    else:
        assert files.read_bytes(source, max_mb=0.0005) == data[:size]
