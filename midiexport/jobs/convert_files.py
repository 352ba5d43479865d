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
from ..io.files import InputFile
from ..model import Record
from ..options import ConvertOptions
from ..stages.convert import song_title
from ..stages.normalize import normalize_lines, normalize_payload
from .render import render_record
from .runner import Destination, Pending, Rendered, run_in_processes


@dataclass(frozen=True)
class Unit:
    """One piece of work: a whole input, or one line of a JSON Lines input (with its bytes)."""

    source: InputFile
    line: int | None = None
    raw: bytes | None = None
    error: InputError | None = None  # the input could not be read: the unit reports it


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
    With ``jobs`` > 1 and more than one unit, units run in up to that many processes,
    never more than there are units; a single unit always runs here, so one record is
    never slowed down by a pool.
    """
    units = _units(inputs, options.max_input_mb)
    first = list(itertools.islice(units, jobs))  # at most `jobs` units read ahead to count the workers
    units = itertools.chain(first, units)
    if jobs <= 1 or len(first) < 2:
        for unit in units:
            yield Pending(_unit_name(unit), partial(render_unit, unit, options=options), destination, unit.source)
        return
    for unit, get in run_in_processes(units, partial(render_unit, options=options), workers=len(first)):
        yield Pending(_unit_name(unit), get, destination, unit.source)


def _units(inputs: Sequence[InputFile], max_mb: float) -> Iterator[Unit]:
    """Yield the units of every input; an input that cannot be read becomes a unit holding its error."""
    for source in inputs:
        try:
            if source.lines:
                for number, raw in files.read_lines(source, max_mb=max_mb):
                    if raw.strip():
                        yield Unit(source, number, raw)
            elif source.path == files.STDIN:
                yield Unit(source, None, files.read_bytes(source, max_mb=max_mb))
            else:
                yield Unit(source)
        except InputError as exc:
            yield Unit(source, error=exc)


def render_unit(unit: Unit, *, options: ConvertOptions) -> list[Rendered]:
    """Read, normalize, convert and encode one unit (runs in a worker process).

    Raises InputError when the unit as a whole cannot be read.
    """
    if unit.error is not None:
        raise unit.error
    raw = unit.raw if unit.raw is not None else files.read_bytes(unit.source, max_mb=options.max_input_mb)
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
