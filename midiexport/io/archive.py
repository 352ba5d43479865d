"""Archives: the members of a .zip of stems, read safely.

Suno's web export is often passed around as a .zip of ``Song Title (Stem).mid`` files.
A .zip is hostile input like any other: member names are only ever used as names
(never as paths to write to), only members a folder would give (.json, .jsonl, .ndjson,
.mid, .midi; no hidden ones) are read, a member that
claims more than its cap is refused without inflating it, and no read inflates more than
the cap (a member whose header understates its size, or whose data is damaged, ends in
a CRC or stream error: it fails alone, as "damaged").

Limits follow ``--max-input-mb`` (``ConvertOptions.max_input_mb``), so a stem meets the
same limit in a .zip as given alone:

- each member at most ``max_mb`` MB as inflated. A larger member, or one whose path
  leaves the archive, fails alone (its ``Member`` holds the InputError): the other
  members go on, as loose stems do;
- all members kept, together, at most ``ARCHIVE_TOTAL_FACTOR`` (defaults.py) times
  ``max_mb`` (512 MB by default). A song's stems are held in memory together, so this
  bounds the memory one archive takes against a zip bomb; past it the archive is
  refused whole, being no stem export.

Whatever fails the archive as a whole (not a readable .zip, too many members, the
total) is an InputError naming the archive.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import NamedTuple, TypeVar

from ..defaults import ARCHIVE_TOTAL_FACTOR, DEFAULT_MAX_INPUT_MB
from ..display import plural, printable
from ..errors import InputError, Phrase, say
from .files import ARCHIVE_SUFFIXES, INPUT_SUFFIXES, MB, InputFile, too_large

MEMBER_SUFFIXES = tuple(s for s in INPUT_SUFFIXES if s not in ARCHIVE_SUFFIXES)  # no .zip within a .zip
SIZE_LIMIT = Phrase("the input size limit")  # the setting the members' total is counted in
MAX_MEMBERS = 512  # a song has 2-12 stems; more members than this is not a stem export
Result = TypeVar("Result")


SHOWN_NOT_READ = 3  # files named in the line that counts the ones not read; the rest are only counted
FINDER_LITTER = ("__MACOSX", ".DS_Store")  # what macOS's Finder adds to every .zip: not read, and not said


class Archive(NamedTuple):
    """What a .zip gives: the members read (``MEMBER_SUFFIXES``), and the other files in it, not read."""

    members: list[Member]
    not_read: tuple[
        str, ...
    ] = ()  # names of the files not read (a .txt, a .wav, hidden ones), in order; no Finder litter

    def settle(self, name: str, results: list[Result], add_line: Callable[[Result, str], Result]) -> list[Result]:
        """Return the results of the archive ``name`` with its leftovers said: the one rule of ``convert`` and ``info``.

        Its files not read (a .txt, a .wav) are said in one line ("songs.zip: 2 files not
        read, ..."), which ``add_line(first, line)`` puts among the first result's warnings (a
        failure's too): not a failure. Raises InputError when its members yielded nothing,
        no record and no failure (blank .jsonl only): it fails whole, in one line naming
        the files not read, if any, so nothing converted is never exit 0.
        """
        line = _not_read_text(name, self.not_read)
        if not results:
            text = say(line, "; no records in the others") if line else f"{name}: no records in its files (blank)"
            raise InputError(text, input=name)
        return [add_line(results[0], line), *results[1:]] if line else results


class Member(NamedTuple):
    """One member of an archive: its name in the archive, and its bytes or why it was not read."""

    name: str
    data: bytes = b""
    error: InputError | None = None


def read_archive(source: InputFile, *, max_mb: float = DEFAULT_MAX_INPUT_MB) -> Archive:
    """Return every member of MEMBER_SUFFIXES, in the archive's order: its bytes, or its InputError.

    Each member is at most ``max_mb`` MB as inflated; one past it, or with a path that
    leaves the archive, holds an InputError naming ``"<archive>: <member>"``. Every other
    file (other suffixes, a .zip within, hidden ones) is not read and listed in
    ``Archive.not_read``, for the caller to say; folders are no files. What Finder adds to
    every .zip (``FINDER_LITTER``: ``__MACOSX/``, ``.DS_Store``) is not read and not listed.
    Raises InputError when the file is not a readable .zip, holds none of these members or
    more than MAX_MEMBERS, or when the members kept pass ``ARCHIVE_TOTAL_FACTOR * max_mb`` MB.
    """
    member_limit = int(max_mb * MB)
    left = ARCHIVE_TOTAL_FACTOR * member_limit
    try:
        with zipfile.ZipFile(source.path) as archive:
            files = [info for info in archive.infolist() if not info.filename.endswith("/")]
            infos = [info for info in files if _wanted(info.filename)]
            not_read = tuple(
                info.filename for info in files if not _wanted(info.filename) and not _litter(info.filename)
            )
            if len(infos) > MAX_MEMBERS:
                raise InputError(f"{source.name}: more than {MAX_MEMBERS} stems in one archive", input=source.name)
            members = []
            for info in infos:
                member = _read_member(archive, info, source, max_mb=max_mb, limit=member_limit, left=left)
                left -= len(member.data)
                members.append(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        raise InputError(f"{source.name} is not a readable .zip ({exc})", input=source.name) from exc
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read ({exc.strerror or exc})", input=source.name) from exc
    if not members:
        others = f", only {_counted(not_read)}" if not_read else ""
        raise InputError(f"{source.name}: no {_SUFFIX_LIST} files in this archive{others}", input=source.name)
    return Archive(members, not_read)


_SUFFIX_LIST = ", ".join(MEMBER_SUFFIXES[:-1]) + " or " + MEMBER_SUFFIXES[-1]


def _not_read_text(name: str, not_read: tuple[str, ...]) -> str | None:
    """Return "<name>: 2 files not read (not .json, ... or hidden): a.txt, b.wav", or None when all were."""
    if not not_read:
        return None
    return f"{name}: {_counted(not_read, ' not read (not ' + _SUFFIX_LIST + ', or hidden)')}"


def _counted(names: tuple[str, ...], what: str = "") -> str:
    """Return "2 files<what>: a, b" naming at most SHOWN_NOT_READ of them ("... and 4 more")."""
    more = len(names) - SHOWN_NOT_READ
    shown = ", ".join(map(printable, names[:SHOWN_NOT_READ])) + (f" and {more} more" if more > 0 else "")
    return f"{len(names)} {plural(len(names), 'file')}{what}: {shown}"


def _litter(name: str) -> bool:
    """True for what macOS's Finder adds to a .zip it makes (``FINDER_LITTER``)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return parts[:1] == ("__MACOSX",) or parts[-1:] == (".DS_Store",)


def _wanted(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    if any(part.startswith(".") and part != ".." or part == "__MACOSX" for part in path.parts):
        return False
    return path.name.lower().endswith(MEMBER_SUFFIXES)  # no .zip within a .zip


def member_place(source_name: str, member_name: str) -> str:
    """How messages name a member: ``songs.zip: a/b.json``, its name's control characters escaped.

    A member's name is any text the archive holds (a newline, a bidi override): escaped, a
    message naming it stays one line, as ``display.printable`` keeps the command line's.
    """
    return f"{source_name}: {printable(member_name)}"


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: InputFile, *, max_mb: float,
                 limit: int, left: int) -> Member:  # fmt: skip
    """Inflate one member: at most ``limit`` bytes (``max_mb`` MB), and at most ``left`` before the zip is refused."""
    where = member_place(source.name, info.filename)
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        return Member(info.filename, error=InputError(f"{where} points outside the archive", input=where))
    if info.file_size > limit:  # refused on its claim, without inflating it
        return Member(info.filename, error=too_large(where, max_mb, where))
    try:
        with archive.open(info) as stream:
            data = stream.read(min(limit, left) + 1)  # never more than this is inflated
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a damaged member (bad CRC, broken stream) fails alone
        return Member(info.filename, error=InputError(f"{where} is damaged ({exc})", input=where))
    if len(data) > limit:
        return Member(info.filename, error=too_large(where, max_mb, where))
    if len(data) > left:
        total_mb = ARCHIVE_TOTAL_FACTOR * max_mb
        raise InputError(say(f"{source.name}: more than {total_mb:g} MB inflated in all ({ARCHIVE_TOTAL_FACTOR} "
                             "times ", SIZE_LIMIT, "); not a stem export"), input=source.name)  # fmt: skip
    return Member(info.filename, data)
