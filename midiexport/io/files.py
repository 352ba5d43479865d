"""Files: finding inputs, reading them, safe output names, atomic writes.

Every ``OSError`` is translated here, once, into InputError or OutputError. A .mid is
written to a temporary file in its target folder and then moved into place, so a
reader never sees half a file; an existing file is only replaced with ``overwrite``.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path, PurePath
from typing import BinaryIO, NamedTuple

from ..defaults import DEFAULT_MAX_INPUT_MB
from ..errors import InputError, OutputError, Phrase, say

STDIN = "-"
MIDI_SUFFIXES = (".mid", ".midi")  # Standard MIDI Files, such as Suno's web export
ARCHIVE_SUFFIXES = (".zip",)  # a .zip of stems (io/archive.py)
LINE_SUFFIXES = (".jsonl", ".ndjson")
INPUT_SUFFIXES = (".json", *LINE_SUFFIXES, *MIDI_SUFFIXES, *ARCHIVE_SUFFIXES)
MAX_NAME_BYTES = 120  # leaves room for suffixes within the usual 255-byte file name limit
TEMP_PREFIX = ".midiexport-"
# Device names Windows refuses as file names, with or without an extension.
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$", re.IGNORECASE)
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]')
MB = 1_000_000  # --max-input-mb counts decimal megabytes
# First read of an input of unknown size (a pipe, stdin, a FIFO, a /proc file): what the default
# limit always asked at once. Its untouched pages cost no memory, and one read of an input within
# it is never copied (read in doubling chunks and joined, an 89 MB pipe took 105 ms instead of 65).
# Each read after it asks for as much again as read so far: memory follows the input, not the limit.
FIRST_READ_BYTES = int(DEFAULT_MAX_INPUT_MB * MB) + 1
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))  # fmt: skip


class InputFile(NamedTuple):
    """An input to read: a path (or STDIN), the name used in messages, and its kind."""

    path: str
    name: str
    lines: bool  # JSON Lines: one record per line
    from_folder: bool = False  # found by searching a folder: only a regular file is read
    file_id: str | None = None  # a named file's "device:inode" from the search's own stat (``file_id``)
    size: int | None = None  # a named regular file's bytes, from that stat (the progress bar follows them)


class FileExists(OutputError):
    """The target file exists and ``overwrite`` was not given."""


OVERWRITE_HINT = Phrase("allow overwriting to replace it")
SIZE_LIMIT_HINT = Phrase("raise the input size limit")  # an input, a line or a member past it


def find_inputs(paths: Sequence[str]) -> list[InputFile]:
    """Expand inputs: files as given, folders searched recursively for .json/.jsonl/.mid/.zip.

    Files inside a folder are sorted so a batch runs (and names files) the same way
    every time. A path named is looked at with one stat, kept as its ``file_id``. Raises
    InputError for a path that does not exist, a folder with no JSON files, or an empty
    one (``blank_inputs``).
    """
    found: list[InputFile] = []
    for raw in paths:
        problem = blank_inputs([raw])
        if problem is not None:
            raise InputError(problem, input=raw)
        if raw == STDIN:
            found.append(InputFile(STDIN, "<stdin>", False))
            continue
        path = Path(raw)
        try:
            info = _stat_or_none(raw)
        except OSError as exc:  # a symlink loop, a folder on the way that cannot be searched, a name too long
            raise InputError(f"{raw}: cannot read ({os_reason(exc)})", input=raw) from exc
        if info is None:
            raise InputError(f"{raw}: no such file or folder", input=raw)
        if stat.S_ISDIR(info.st_mode):
            inside = sorted(_walk(path))
            if not inside:
                raise InputError(f"{raw}: no .json, .jsonl, .mid or .zip files in this folder", input=raw)
            found += [_input_file(p, str(p), from_folder=True) for p in inside]
        else:
            found.append(_input_file(path, raw, info=info))
    return found


def file_id(info: os.stat_result) -> str:
    """Return what tells a file from every other, whatever path or link reaches it: "device:inode"."""
    return f"{info.st_dev}:{info.st_ino}"


def _stat_or_none(raw: str) -> os.stat_result | None:
    """Stat a path named (following links), None when there is none; other errors (ELOOP, EACCES) raise."""
    try:
        return os.stat(raw)
    except ValueError:  # a NUL byte in it
        return None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF):
            return None
        raise


def os_reason(exc: OSError) -> str:
    """Return why a file could not be reached, for messages: the system's words, a symlink loop named as one."""
    if exc.errno == errno.ELOOP:  # "Too many levels of symbolic links" is how the system says it
        return "a symlink loop"
    return exc.strerror or str(exc)


def blank_inputs(paths: Sequence[str]) -> str | None:
    """Return the message refusing the empty or blank ``paths`` (an unset shell variable), or None when none is.

    As a path, "" would name the current folder, and a whole folder would be read.
    """
    blank = [repr(raw) for raw in paths if not raw.strip()]
    if not blank:
        return None
    return f"an input is empty ({', '.join(blank)}); give a file, a folder or - for standard input"


def _input_file(path: Path, name: str, *, from_folder: bool = False, info: os.stat_result | None = None) -> InputFile:
    """The InputFile of ``path``; ``info``: a named file's stat, kept as its ``file_id`` and ``size``."""
    if info is None:
        return InputFile(str(path), name, names_json_lines(str(path)), from_folder)
    size = info.st_size if stat.S_ISREG(info.st_mode) else None
    return InputFile(str(path), name, names_json_lines(str(path)), from_folder, file_id(info), size)


def _walk(folder: Path) -> Iterator[Path]:
    """Yield the input files in ``folder`` and below; a folder that cannot be listed is yielded as itself.

    So it is one failed input that says why (reading it fails: "cannot read (Permission
    denied)"), not left out in silence, and the rest of the search goes on. A link found
    in a folder is yielded by its name whatever it leads to: reading a symlink loop says so.
    """
    unlisted: list[Path] = []
    for root, dirs, names in os.walk(folder, onerror=lambda exc: unlisted.append(Path(exc.filename or folder))):
        yield from unlisted
        unlisted.clear()
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if names_input(name) and not name.startswith("."):
                yield Path(root) / name
    yield from unlisted


def names_input(name: str) -> bool:
    """True for a name of what a folder search reads (``INPUT_SUFFIXES``, any case): .json, JSON Lines, .mid, .zip."""
    return name.lower().endswith(INPUT_SUFFIXES)


def names_archive(name: str) -> bool:
    """True for a .zip's name (``ARCHIVE_SUFFIXES``, any case): an input read as an archive."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def names_json_lines(name: str) -> bool:
    """True for a file name of JSON Lines (``LINE_SUFFIXES``, any case): ``InputFile.lines``, a .zip member's too."""
    return PurePath(name).suffix.lower() in LINE_SUFFIXES


def names_midi(name: str) -> bool:
    """True for a Standard MIDI File's name (``MIDI_SUFFIXES``, any case): an input, a .zip member, ``-o``."""
    return name.lower().endswith(MIDI_SUFFIXES)


def is_midi(source: InputFile) -> bool:
    """True for a .mid/.midi input (by its name; stdin is recognised by its bytes instead)."""
    return names_midi(source.path)


def is_archive(source: InputFile) -> bool:
    """True for a .zip input (stems of Suno's web export)."""
    return names_archive(source.path)


def read_bytes(source: InputFile, *, max_mb: float = DEFAULT_MAX_INPUT_MB) -> bytes:
    """Return the whole content of an input (STDIN included), at most ``max_mb`` MB.

    A named FIFO or device is read up to the limit; inside a folder only regular
    files are read. Raises InputError when the input cannot be read (memory running
    out included), is not a regular file found in a folder, or is larger than the limit.
    """
    limit = int(max_mb * MB)
    try:
        if source.path == STDIN:
            if sys.stdin is None:
                raise InputError("<stdin>: standard input is closed", input=source.name)
            data = _read_within(sys.stdin.buffer, limit)
        else:
            with _open_input(source, limit) as handle:
                data = _read_within(handle, limit)
    except (OSError, ValueError) as exc:  # ValueError: a closed stream
        raise _cannot_read(source, exc) from exc
    except MemoryError as exc:  # an endless stream (/dev/zero) under a limit past the machine's memory
        message = f"{source.name}: cannot read (memory ran out before its end, within the {max_mb:g} MB limit)"
        raise InputError(message, input=source.name) from exc
    if len(data) > limit:
        raise too_large(source.name, max_mb, source.name)
    return data


def _read_within(handle: BinaryIO, limit: int) -> bytes:
    """Read ``handle`` to its end, or ``limit`` + 1 bytes when it is longer (the caller refuses those).

    Never asks for the limit at once: a read allocates what it asks for, and a limit of
    1e9 MB would be a MemoryError. A regular file is read in one go by its size (fstat);
    a stream in one read of at most ``FIRST_READ_BYTES``, and a longer stream (or a file
    that grew) in reads that double what was read, so memory follows the input's size.
    """
    try:
        info = os.fstat(handle.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else 0
    except (OSError, io.UnsupportedOperation):  # no file descriptor (a test runner's stream)
        size = 0
    want = min(limit + 1, size + 1 if size else FIRST_READ_BYTES)
    data = handle.read(want)
    if len(data) < want or len(data) > limit:  # a short read is the end (blocking reads)
        return data
    parts, total = [data], len(data)
    while total <= limit:
        part = handle.read(min(total, limit + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)


def read_head(source: InputFile, size: int) -> bytes:
    """Return the first ``size`` bytes of an input file (all of it when shorter). Raises InputError.

    Opened as ``read_bytes`` opens it: a file found in a folder only when it is a regular file.
    """
    try:
        fd = _open_descriptor(source, None)
        try:  # no file object: a folder search reads the head of each file it finds
            parts: list[bytes] = []
            while size > 0 and (part := os.read(fd, size)):
                parts.append(part)
                size -= len(part)
            return b"".join(parts)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _cannot_read(source, exc) from exc


def read_lines(source: InputFile, *, max_mb: float = DEFAULT_MAX_INPUT_MB) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, bytes) of a JSON Lines input, one line in memory at a time.

    The file may be of any size; one line may not pass ``max_mb`` MB. Raises InputError.
    """
    limit = int(max_mb * MB)
    try:
        with _open_input(source, None) as handle:
            for number, line in enumerate(iter(lambda: handle.readline(limit + 1), b""), 1):
                if len(line) > limit:
                    raise too_large(f"{source.name}: line {number}", max_mb, source.name)
                yield number, line
    except OSError as exc:
        raise _cannot_read(source, exc) from exc


def _open_input(source: InputFile, limit: int | None) -> BinaryIO:
    """Open an input file for reading, checking what it is before a byte is read (``_open_descriptor``)."""
    return os.fdopen(_open_descriptor(source, limit), "rb")


def _open_descriptor(source: InputFile, limit: int | None) -> int:
    """Open an input file's descriptor for reading, checking what it is before a byte is read.

    A file found in a folder is opened without waiting (a FIFO with no writer would
    block forever) and refused unless it is a regular file; a regular file larger
    than ``limit`` bytes is refused before it is read.
    """
    no_wait = getattr(os, "O_NONBLOCK", 0) if source.from_folder else 0  # POSIX only
    fd = os.open(source.path, os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0) | no_wait)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) and source.from_folder:
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise InputError(f"{source.name}: is {kind}, not a regular file; only regular files are read "
                             "from folders (name it alone to read it)", input=source.name)  # fmt: skip
        if limit is not None and stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise too_large(source.name, limit / MB, source.name)
        if no_wait:
            os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write ({os_reason(exc)})", path=str(path))


def _cannot_read(source: InputFile, exc: OSError | ValueError) -> InputError:
    reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
    return InputError(f"{source.name}: cannot read ({reason})", input=source.name)


def too_large(where: str, max_mb: float, name: str) -> InputError:
    """Return the InputError for ``where`` (an input, a line, a member) past ``max_mb`` MB; ``name`` is its input."""
    return InputError(say(f"{where} is larger than {max_mb:g} MB; ", SIZE_LIMIT_HINT), input=name, hint=SIZE_LIMIT_HINT)


def safe_name(text: str, *, fallback: str = "untitled") -> str:
    """Return a file name (no folder) made from any text: readable, safe everywhere.

    Path separators, control and reserved characters become "_", leading dots and
    trailing dots/spaces go, Windows device names (CON, NUL, ...) get a "_" prefix,
    and the result is cut to MAX_NAME_BYTES of UTF-8 on a character boundary.
    """
    name = text
    if not name.isascii():  # NFC changes no ASCII text; unicodedata costs ~1 ms to import
        import unicodedata

        name = unicodedata.normalize("NFC", name)
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


def write_atomic(path: Path, data: bytes, *, overwrite: bool = False, durable: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    ``durable``: the data and the new name reach the disk before this returns, so they
    survive a crash of the machine too, flushed as ``make_durable`` flushes them; the
    data goes first, while the file is still nameless, so its name never points to
    data that was lost.

    With ``overwrite``, a device or a FIFO at ``path`` (``/dev/null``) is written into, not
    replaced. Without ``overwrite`` an existing file (or link) at ``path`` is never replaced:
    the final step is a hard link, which fails if the name exists, so two writers
    cannot race. Ctrl-C and SIGTERM wait until the write is done or undone, so an
    interruption never leaves a temporary file. Raises FileExists, or OutputError
    when the folder cannot be written.
    """
    with signals_held():
        _write_atomic(path, data, overwrite=overwrite, durable=durable)


@contextmanager
def signals_held() -> Iterator[None]:
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


def _write_atomic(path: Path, data: bytes, *, overwrite: bool, durable: bool) -> None:
    if overwrite and _is_stream(path):  # /dev/null, a FIFO: written into; a file put in its place would break it
        try:
            with open(path, "wb") as stream:
                stream.write(data)
        except OSError as exc:
            raise _cannot_write(path, exc) from exc
        return
    folder = path.parent
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocking = next((p for p in (folder, *folder.parents) if os.path.exists(p) and not os.path.isdir(p)), None)
            # a file in the way, else a link on the way that leads nowhere (a symlink loop, say)
            reason = f"{blocking} is a file, not a folder" if blocking is not None else _unreachable_folder(folder)
            if reason is None:
                raise
            raise OutputError(f"{path}: cannot write ({reason})", path=str(path)) from None
        there = lstat_or_none(path)  # one look: a folder, or anything else in the way
        if there is not None and stat.S_ISDIR(there.st_mode):  # never "exists; kept": replacing it would not work
            raise OutputError(f"{path}: cannot write (it is a folder, not a file)", path=str(path))
        if not overwrite and there is not None:
            raise FileExists(say(f"{path} exists; ", OVERWRITE_HINT), path=str(path), hint=OVERWRITE_HINT)
        handle, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)
    except OutputError:
        raise
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fdatasync(stream.fileno())  # the data; the name is made durable by the folder's fsync
        _move_into_place(temp, path, overwrite=overwrite)
        if durable:
            _sync_names([path])
    except FileExistsError as exc:
        raise FileExists(say(f"{path} exists; ", OVERWRITE_HINT), path=str(path), hint=OVERWRITE_HINT) from exc
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _unreachable_folder(folder: Path) -> str | None:
    """Say which link among ``folder`` and its parents cannot be followed, and why ("d is a symlink loop"); or None."""
    for place in (folder, *folder.parents):
        if os.path.lexists(place):
            try:
                os.stat(place)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    return f"{place} is a symlink loop"
                return f"{place} is a link that leads nowhere: {os_reason(exc)}"
    return None


def lstat_or_none(path: Path) -> os.stat_result | None:
    """Return what is at ``path`` itself (``os.lstat``: a link, not its target); None when nothing can be seen there.

    None as ``os.path.lexists`` says False: for any OSError.
    """
    try:
        return os.lstat(path)
    except OSError:
        return None


def _is_stream(path: Path) -> bool:
    """Whether ``path`` itself (not a link's target) is a character device or a FIFO."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


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


def make_durable(paths: Sequence[Path]) -> None:
    """Flush files written by ``write_atomic`` to the disk, with their names.

    Each file's data, then the names: each folder, and the folder's parent (where a new
    folder's own name lives). One call covers many files: a journaling file system
    commits their names in one go, so a server can answer many writers with one round
    of flushes (group commit). Raises OutputError when a file or folder cannot be flushed.
    """
    try:
        for path in dict.fromkeys(paths):
            _flush(path, os.fdatasync)  # the data; the names follow
        _sync_names(paths)
    except OSError as exc:
        raise OutputError(f"cannot flush to disk ({exc.strerror or exc})", path=str(exc.filename or "")) from exc


def _sync_names(paths: Sequence[Path]) -> None:
    """Flush the names of files: their folders, and the folders' parents."""
    for folder in dict.fromkeys(folder for path in paths for folder in (path.parent, path.parent.parent)):
        _flush(folder, os.fsync)


def _flush(path: Path, sync: Callable[[int], None]) -> None:
    """Open ``path`` (a file or a folder) read-only and ``sync`` it: ``os.fdatasync`` or ``os.fsync``."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        sync(descriptor)
    finally:
        os.close(descriptor)


@cache
def _umask() -> int:
    # Read once: the only way to read the umask is to set it, which is not thread-safe.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_stdout(data: bytes) -> None:
    """Write every byte of ``data`` to standard output (``-o -``, ``info``). Raises OutputError.

    Written straight to the file descriptor, looping over partial writes and waiting
    while a non-blocking pipe is full, so success means every byte arrived. When
    standard output is closed or fails (a full disk, a closed pipe), it is pointed at
    the null device, so nothing fails again when the interpreter exits.
    """
    try:
        if sys.stdout is None:
            raise OSError("it is closed")
        sys.stdout.flush()  # text printed before stays ahead of these bytes
        try:
            fd = sys.stdout.fileno()
        except io.UnsupportedOperation:  # not a file (a test runner's buffer): it takes all at once
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        _write_all(fd, memoryview(data))
    except (OSError, ValueError) as exc:  # ValueError: stdout was closed in Python
        _abandon_stdout()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write to standard output ({reason})", path="-") from exc


def _write_all(fd: int, data: memoryview) -> None:
    import select

    while data:
        try:
            written = os.write(fd, data)
        except BlockingIOError:  # a non-blocking pipe is full: wait until it drains
            select.select([], [fd], [])
            continue
        data = data[written:]


def _abandon_stdout() -> None:
    """Point standard output at the null device (the recipe in Python's signal docs for EPIPE)."""
    try:
        if sys.stdout is not None:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
    except (OSError, ValueError):
        pass


def hold_closed_standard_fds() -> None:
    """Open the null device on standard descriptors 0-2 that are closed.

    Otherwise the next file opened (an input, a temporary .mid) would get that number,
    and a message meant for stderr could land in it. ``sys.stdin``/``sys.stdout`` stay
    None when Python found them closed, so reading or writing them still says so;
    messages to a closed (or read-only) stderr are dropped, not an error.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _null_on(fd)
    if _read_only(2):
        _null_on(2)  # e.g. a launcher script's own descriptor leaked through 2>&-
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process


def _null_on(fd: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _read_only(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # not POSIX
        return False
    try:
        return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
    except OSError:
        return False
