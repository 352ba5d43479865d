"""Archives: the members of a .zip of stems, read safely.

Suno's web export is often passed around as a .zip of ``Song Title (Stem).mid`` files.
A .zip is hostile input like any other: member names are only ever used as names
(never as paths to write to), members with absolute or parent paths are refused,
only .mid/.midi/.json members are read, and sizes are capped on the bytes actually
inflated, not on what the archive claims. Every failure is an InputError naming the
archive (and member).
"""

from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from ..errors import InputError
from .files import MIDI_SUFFIXES, InputFile

MEMBER_SUFFIXES = (*MIDI_SUFFIXES, ".json")
MAX_MEMBERS = 512  # a song has 2-12 stems; more members than this is not a stem export
MAX_MEMBER_BYTES = 16 * 1024 * 1024  # a stem .mid is a few kB; 16 MiB holds any real one
MAX_TOTAL_BYTES = 64 * 1024 * 1024  # inflated in all: bounds memory against zip bombs


def read_members(source: InputFile) -> list[tuple[str, bytes]]:
    """Return (member name, bytes) of every .mid/.midi/.json member, in the archive's order.

    Hidden members and folders (``__MACOSX/``, ``.DS_Store``) are skipped. Raises
    InputError when the file is not a readable .zip, a member's path leaves the archive,
    or a size limit is passed.
    """
    try:
        with zipfile.ZipFile(source.path) as archive:
            infos = [info for info in archive.infolist() if _wanted(info.filename)]
            if len(infos) > MAX_MEMBERS:
                raise InputError(f"{source.name}: more than {MAX_MEMBERS} stems in one archive", input=source.name)
            members, total = [], 0
            for info in infos:
                data = _read_member(archive, info, source)
                total += len(data)
                if total > MAX_TOTAL_BYTES:
                    raise InputError(f"{source.name}: more than {MAX_TOTAL_BYTES // 2**20} MiB inflated; "
                                     "not a stem export", input=source.name)  # fmt: skip
                members.append((info.filename, data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        raise InputError(f"{source.name} is not a readable .zip ({exc})", input=source.name) from exc
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read ({exc.strerror or exc})", input=source.name) from exc
    if not members:
        raise InputError(f"{source.name}: no .mid, .midi or .json files in this archive", input=source.name)
    return members


def _wanted(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    if name.endswith("/") or any(part.startswith(".") and part != ".." or part == "__MACOSX" for part in path.parts):
        return False
    return path.suffix.lower() in MEMBER_SUFFIXES


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: InputFile) -> bytes:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        raise InputError(f"{source.name}: member {info.filename!r} points outside the archive", input=source.name)
    with archive.open(info) as stream:
        data = stream.read(MAX_MEMBER_BYTES + 1)  # the bytes inflated, whatever the header claims
    if len(data) > MAX_MEMBER_BYTES:
        raise InputError(f"{source.name}: member {info.filename!r} is larger than {MAX_MEMBER_BYTES // 2**20} MiB",
                         input=source.name)  # fmt: skip
    return data
