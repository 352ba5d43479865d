"""Files: finding inputs, reading them, safe output names, atomic writes.

Every ``OSError`` is translated here, once, into InputError or OutputError. A .mid is
written to a temporary file in its target folder and then moved into place, so a
reader never sees half a file; an existing file is only replaced with ``overwrite``.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import InputError, OutputError

STDIN = "-"
INPUT_SUFFIXES = (".json", ".jsonl", ".ndjson")
LINE_SUFFIXES = (".jsonl", ".ndjson")
MAX_NAME_BYTES = 120  # leaves room for suffixes within the usual 255-byte file name limit
TEMP_PREFIX = ".midiexport-"
# Device names Windows refuses as file names, with or without an extension.
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$", re.IGNORECASE)
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]')


@dataclass(frozen=True)
class InputFile:
    """An input to read: a path (or STDIN), the name used in messages, and its kind."""

    path: str
    name: str
    lines: bool  # JSON Lines: one record per line


class FileExists(OutputError):
    """The target file exists and ``overwrite`` was not given."""


def find_inputs(paths: Sequence[str]) -> list[InputFile]:
    """Expand inputs: files as given, folders searched recursively for .json/.jsonl.

    Files inside a folder are sorted so a batch runs (and names files) the same way
    every time. Raises InputError for a path that does not exist or a folder with no
    JSON files.
    """
    found: list[InputFile] = []
    for raw in paths:
        if raw == STDIN:
            found.append(InputFile(STDIN, "<stdin>", False))
            continue
        path = Path(raw)
        if path.is_dir():
            inside = sorted(_walk(path))
            if not inside:
                raise InputError(f"{raw}: no .json or .jsonl files in this folder", input=raw)
            found += [_input_file(p, str(p)) for p in inside]
        elif path.exists():
            found.append(_input_file(path, raw))
        else:
            raise InputError(f"{raw}: no such file or folder", input=raw)
    return found


def _input_file(path: Path, name: str) -> InputFile:
    return InputFile(str(path), name, path.suffix.lower() in LINE_SUFFIXES)


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.lower().endswith(INPUT_SUFFIXES) and not name.startswith("."):
                yield Path(root) / name


def read_bytes(source: InputFile) -> bytes:
    """Return the whole content of an input (STDIN included). Raises InputError."""
    try:
        if source.path == STDIN:
            import sys

            return sys.stdin.buffer.read()
        return Path(source.path).read_bytes()
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read ({exc.strerror or exc})", input=source.name) from exc


def read_lines(source: InputFile) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, bytes) of a JSON Lines input, one line in memory at a time."""
    try:
        with open(source.path, "rb") as handle:
            yield from enumerate(handle, 1)
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read ({exc.strerror or exc})", input=source.name) from exc


def safe_name(text: str, *, fallback: str = "untitled") -> str:
    """Return a file name (no folder) made from any text: readable, safe everywhere.

    Path separators, control and reserved characters become "_", leading dots and
    trailing dots/spaces go, Windows device names (CON, NUL, ...) get a "_" prefix,
    and the result is cut to MAX_NAME_BYTES of UTF-8 on a character boundary.
    """
    name = unicodedata.normalize("NFC", text)
    name = _UNSAFE.sub("_", name)
    name = "".join(c if c.isprintable() else "_" for c in name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    name = re.sub(r"_+", "_", name)
    if not name.strip("_ "):
        name = fallback
    if _RESERVED.match(name):
        name = "_" + name
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        name = encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
    return name


class NamePlanner:
    """Hand out output paths unique within one run: "song.mid", then "song-2.mid", ...

    Names are compared case-insensitively, as on macOS and Windows file systems.
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._next: dict[str, int] = {}  # folder/stem+suffix -> the number to try next

    def claim(self, folder: Path, stem: str, suffix: str = ".mid") -> Path:
        """Return folder/stem+suffix, or with "-N" added when this run already used it.

        The next number to try is remembered per name, so N files of one name take
        time linear in N, not quadratic.
        """
        key = str(folder / (stem + suffix)).casefold()
        candidate, number = stem, self._next.get(key, 1)
        if number > 1:
            candidate = f"{stem}-{number}"
        while str(folder / (candidate + suffix)).casefold() in self._taken:
            number += 1
            candidate = f"{stem}-{number}"
        path = folder / (candidate + suffix)
        self._taken.add(str(path).casefold())
        self._next[key] = number + 1
        return path


def write_atomic(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    Without ``overwrite`` an existing file (or link) at ``path`` is never replaced:
    the final step is a hard link, which fails if the name exists, so two writers
    cannot race. Ctrl-C and SIGTERM wait until the write is done or undone, so an
    interruption never leaves a temporary file. Raises FileExists, or OutputError
    when the folder cannot be written.
    """
    with _signals_held():
        _write_atomic(path, data, overwrite=overwrite)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM (where the system can) until the block ends."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not overwrite and os.path.lexists(path):
            raise FileExists(f"{path} exists; pass --overwrite to replace it", path=str(path))
        handle, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)
    except FileExists:
        raise
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})", path=str(path)) from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        _move_into_place(temp, path, overwrite=overwrite)
    except FileExistsError as exc:
        raise FileExists(f"{path} exists; pass --overwrite to replace it", path=str(path)) from exc
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})", path=str(path)) from exc
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _move_into_place(temp: str, path: Path, *, overwrite: bool) -> None:
    os.chmod(temp, 0o666 & ~_umask())
    if overwrite:
        os.replace(temp, path)  # replaces a planted symlink itself, never its target
        return
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(path) from None
        os.rename(temp, path)


@cache
def _umask() -> int:
    # Read once: the only way to read the umask is to set it, which is not thread-safe.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_stdout(data: bytes) -> None:
    """Write bytes to standard output (for ``-o -``). Raises OutputError."""
    import sys

    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output ({exc.strerror or exc})", path="-") from exc
