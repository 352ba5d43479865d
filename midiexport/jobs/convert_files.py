"""Convert files: the job of ``midiexport convert``, one unit per input or JSON line.

Each unit (an input file, or one line of a JSON Lines input) is read, normalized,
converted and encoded, in worker processes when ``jobs`` > 1 (see ``runner``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath

from ..errors import InputError
from ..io import files
from ..io.archive import read_members
from ..io.files import InputFile
from ..model import Record
from ..options import ConvertOptions
from ..stages.convert import song_title
from ..stages.midifile import merge_stems, read_midi, stem_title
from ..stages.normalize import normalize_lines, normalize_payload
from .render import render_record
from .runner import Destination, Pending, Rendered, run_in_processes


@dataclass(frozen=True)
class Unit:
    """One piece of work: a whole input, or one line of a JSON Lines input (with its bytes)."""

    source: InputFile
    line: int | None = None
    raw: bytes | None = None
    stems: tuple[InputFile, ...] = ()  # .mid files of one song, read together (source is the first)


def _unit_name(unit: Unit) -> str:
    return unit.source.name if unit.line is None else f"{unit.source.name}: line {unit.line}"


def run_batch(
    inputs: Sequence[InputFile],
    options: ConvertOptions,
    destination: Destination,
    *,
    jobs: int = 1,
) -> Iterator[Pending]:
    """Convert every record of ``inputs``; yield one Pending per unit, in input order.

    Call each Pending's ``result()`` before asking for the next: the workers stop when
    the iteration ends.
    With ``jobs`` > 1 and more than one unit, units run in that many processes; a
    single unit always runs here, so one record is never slowed down by a pool.
    """
    units = _units(inputs)
    first = list(itertools.islice(units, 2))
    units = itertools.chain(first, units)
    if jobs <= 1 or len(first) < 2:
        for unit in units:
            yield Pending(_unit_name(unit), partial(render_unit, unit, options=options), destination, unit.source)
        return
    for unit, get in run_in_processes(units, partial(render_unit, options=options), workers=jobs):
        yield Pending(_unit_name(unit), get, destination, unit.source)


def _units(inputs: Sequence[InputFile]) -> Iterator[Unit]:
    stems = stem_groups(inputs)
    for source in inputs:
        if files.is_midi(source):
            if source.path in stems:  # the first stem of its song; the others come with it
                yield Unit(source, stems=stems[source.path])
        elif source.lines:
            for number, raw in files.read_lines(source):
                if raw.strip():
                    yield Unit(source, number, raw)
        elif source.path == files.STDIN:
            yield Unit(source, None, files.read_bytes(source))
        else:
            yield Unit(source)


def render_unit(unit: Unit, *, options: ConvertOptions) -> list[Rendered]:
    """Read, normalize, convert and encode one unit (runs in a worker process).

    Raises InputError when the unit as a whole cannot be read.
    """
    if unit.stems or files.is_archive(unit.source):
        return render_stems(unit, options=options)
    raw = unit.raw if unit.raw is not None else files.read_bytes(unit.source)
    if raw.startswith(b"MThd"):  # a .mid on standard input
        return render_stems(unit, options=options, raw=raw)
    try:
        records: list[Record | InputError] = list(normalize_payload(raw, source=unit.source.name, line=unit.line))
    except InputError:
        if unit.line is not None or not _looks_like_json_lines(raw):
            raise
        records = list(normalize_lines(enumerate(raw.splitlines(), 1), source=unit.source.name))
    many = len(records) > 1 or unit.line is not None
    return [
        Rendered(item.input or unit.source.name, "", error=item)
        if isinstance(item, InputError)
        else render_record(item, options, stem=record_stem(unit.source, item, many=many))
        for item in records
    ]


def record_stem(source: InputFile, record: Record, *, many: bool) -> str:
    """Return the base file name for a record's .mid, without suffix.

    From a file: the file's stem, plus the record's numbers when the file holds
    several ("songs-12" for line 12). From stdin: the title or task id.
    """
    if source.path == files.STDIN:
        return files.safe_name(song_title(record), fallback="stdin")
    stem = PurePath(source.name).stem
    if many:
        numbers = re.findall(r"\d+", record.locator)
        stem = "-".join([stem, *numbers])
    return files.safe_name(stem)


def _looks_like_json_lines(raw: bytes) -> bool:
    lines = [line for line in raw.splitlines() if line.strip()]
    return len(lines) > 1 and lines[0].lstrip().startswith((b"{", b"["))


# MIDI input (issue 14): Suno's web export gives one .mid per stem, "Song Title (Stem).mid".
# Stems of one song in one folder (or .zip) are read together and become one file.

MIDI_OUTPUT_SUFFIX = "-midiexport"  # added when the output would take the input's own name


def stem_groups(inputs: Sequence[InputFile]) -> dict[str, tuple[InputFile, ...]]:
    """Group .mid inputs by folder and song title (from the file name); key: the first one's path."""
    groups: dict[tuple[str, str], list[InputFile]] = {}
    for source in inputs:
        if files.is_midi(source):
            path = PurePath(source.path)
            split = stem_title(path.stem)
            key = (str(path.parent), split[0].casefold()) if split else (source.path, "")
            groups.setdefault(key, []).append(source)
    return {members[0].path: tuple(members) for members in groups.values()}


def render_stems(unit: Unit, *, options: ConvertOptions, raw: bytes | None = None) -> list[Rendered]:
    """Read the .mid stems (or .zip members) of a unit, join each song's stems, render each song.

    A member that cannot be read becomes its own failed Rendered; the others go on.
    Raises InputError when a .zip as a whole cannot be read.
    """
    if raw is not None:
        named = [(unit.source.name, raw)]
    elif files.is_archive(unit.source):
        named = [(f"{unit.source.name}: {member}", data) for member, data in read_members(unit.source)]
    else:
        named = [(stem.name, files.read_bytes(stem)) for stem in unit.stems]
    records: list[Record] = []
    failed: list[Rendered] = []
    for name, data in named:
        try:
            if data.startswith(b"MThd") or name.lower().endswith(files.MIDI_SUFFIXES):
                records.append(read_midi(data, source=name))
            else:
                records += normalize_payload(data, source=name)
        except InputError as exc:
            failed.append(Rendered(exc.input or name, "", error=exc))
    songs = merge_stems(records)
    return failed + [render_record(song, options, stem=_song_stem(unit.source, song)) for song in songs]


def _song_stem(source: InputFile, record: Record) -> str:
    """Name a song's file after its title; never after the input itself, which it would replace."""
    stem = files.safe_name(song_title(record))
    if source.path != files.STDIN and stem.casefold() == PurePath(source.path).stem.casefold():
        stem = files.safe_name(stem + MIDI_OUTPUT_SUFFIX)
    return stem
