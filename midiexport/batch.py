"""Batch: run the pipeline over many inputs and write the files.

Each unit of work (an input file, or one line of a JSON Lines file) is read,
normalized, converted and encoded, in worker processes when ``jobs`` > 1; the main
process then writes the files in input order, so output names are the same on every
run (a re-run after an interruption finds the finished files under the same names).
Errors of one record are data in its Outcome; the batch always goes on.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from . import files
from .convert import DEFAULT_BPM, DEFAULT_PPQ, convert_record, song_title, split_song
from .errors import InputError, MidiExportError, OutputError
from .files import InputFile
from .model import Record, Report
from .normalize import normalize_lines, normalize_payload
from .write import write_midi

WINDOW_PER_JOB = 4  # units in flight per worker: keeps workers busy, memory bounded


@dataclass(frozen=True)
class ConvertOptions:
    """How records become files: the options of ``midiexport convert`` as data."""

    bpm: float = DEFAULT_BPM
    ppq: int = DEFAULT_PPQ
    format: int = 1
    split: bool = False
    strict: bool = False
    programs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Rendered:
    """One record encoded: the .mid bytes per file name suffix, or the error."""

    place: str
    stem: str
    files: tuple[tuple[str, bytes], ...] = ()
    report: Report | None = None
    error: MidiExportError | None = None
    notes: int = 0


@dataclass(frozen=True)
class Outcome:
    """What became of one record: the files written, the report, or the error."""

    place: str
    paths: tuple[str, ...] = ()
    report: Report | None = None
    error: MidiExportError | None = None
    notes: int = 0

    @property
    def skipped(self) -> bool:
        """True when the file existed and was kept (no ``--overwrite``)."""
        return isinstance(self.error, files.FileExists)


@dataclass(frozen=True)
class Unit:
    """One piece of work: a whole input, or one line of a JSON Lines input (with its bytes)."""

    source: InputFile
    line: int | None = None
    raw: bytes | None = None


@dataclass
class Destination:
    """Where files go: ``out`` None (beside each input), "-" (stdout), a .mid, or a folder."""

    out: str | None = None
    overwrite: bool = False
    planner: files.NamePlanner = field(default_factory=files.NamePlanner)
    single_used: bool = False

    @property
    def single(self) -> bool:
        """True when ``out`` names one file (a .mid path or "-")."""
        return self.out == "-" or (self.out is not None and self.out.lower().endswith((".mid", ".midi")))

    def write(self, source: InputFile, stem: str, data: bytes) -> str:
        """Write one file; return its path ("-" for stdout). Raises OutputError."""
        if self.single:
            if self.single_used:
                raise OutputError(f"-o {self.out} names one file but there are more; give a folder instead")
            self.single_used = True
            if self.out == "-":
                files.write_stdout(data)
                return "-"
            assert self.out is not None
            files.write_atomic(Path(self.out), data, overwrite=self.overwrite)
            return self.out
        if self.out is not None:
            folder = Path(self.out)
        elif source.path == files.STDIN:
            raise OutputError("standard input needs -o (a folder, a .mid path, or - for stdout)")
        else:
            folder = Path(source.path).parent
        path = self.planner.claim(folder, stem)
        files.write_atomic(path, data, overwrite=self.overwrite)
        return str(path)


class Pending:
    """The outcomes of one unit, available through ``result()``, which may raise.

    ``result()`` re-raises an error that stopped the whole unit (an InputError, or a
    bug in a worker); per-record errors are in the Outcomes instead.
    """

    def __init__(self, unit: Unit, get: Callable[[], list[Rendered]], destination: Destination) -> None:
        self.unit = unit
        self._get = get
        self._destination = destination

    @property
    def name(self) -> str:
        return self.unit.source.name if self.unit.line is None else f"{self.unit.source.name}: line {self.unit.line}"

    def result(self) -> list[Outcome]:
        return [self._write(r) for r in self._get()]

    def _write(self, rendered: Rendered) -> Outcome:
        if rendered.error is not None:
            return Outcome(rendered.place, error=rendered.error, notes=rendered.notes)
        paths = []
        try:
            for suffix, data in rendered.files:
                paths.append(self._destination.write(self.unit.source, rendered.stem + suffix, data))
        except OutputError as exc:
            return Outcome(rendered.place, tuple(paths), rendered.report, exc, rendered.notes)
        return Outcome(rendered.place, tuple(paths), rendered.report, None, rendered.notes)


def run_batch(
    inputs: Sequence[InputFile],
    options: ConvertOptions,
    destination: Destination,
    *,
    jobs: int = 1,
) -> Iterator[Pending]:
    """Convert every record of ``inputs``; yield one Pending per unit, in input order.

    With ``jobs`` > 1 and more than one unit, units run in that many processes; a
    single unit always runs here, so one record is never slowed down by a pool.
    """
    units = _units(inputs)
    first = list(itertools.islice(units, 2))
    units = itertools.chain(first, units)
    if jobs <= 1 or len(first) < 2:
        for unit in units:
            yield Pending(unit, lambda unit=unit: render_unit(unit, options), destination)
        return
    yield from _run_parallel(units, options, destination, jobs)


def _run_parallel(units: Iterable[Unit], options: ConvertOptions, destination: Destination, jobs: int) -> Iterator[Pending]:
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_ignore_interrupts)
    in_flight: deque[tuple[Unit, Any]] = deque()
    try:
        for unit in units:
            in_flight.append((unit, pool.submit(render_unit, unit, options)))
            if len(in_flight) >= jobs * WINDOW_PER_JOB:
                done, future = in_flight.popleft()
                yield Pending(done, future.result, destination)
        while in_flight:
            done, future = in_flight.popleft()
            yield Pending(done, future.result, destination)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches every process of the group; only the main process handles it.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _units(inputs: Sequence[InputFile]) -> Iterator[Unit]:
    for source in inputs:
        if source.lines:
            for number, raw in files.read_lines(source):
                if raw.strip():
                    yield Unit(source, number, raw)
        elif source.path == files.STDIN:
            yield Unit(source, None, files.read_bytes(source))
        else:
            yield Unit(source)


def render_unit(unit: Unit, options: ConvertOptions) -> list[Rendered]:
    """Read, normalize, convert and encode one unit (runs in a worker process).

    Raises InputError when the unit as a whole cannot be read.
    """
    raw = unit.raw if unit.raw is not None else files.read_bytes(unit.source)
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


def render_record(record: Record, options: ConvertOptions, *, stem: str) -> Rendered:
    """Convert and encode one record; a MidiExportError becomes the Rendered's error."""
    try:
        song = convert_record(
            record, bpm=options.bpm, ppq=options.ppq, programs=dict(options.programs), strict=options.strict
        )
        songs = split_song(song) if options.split else [song]
        suffixes = _split_suffixes(song) if options.split else [""]
        encoded = tuple((suffix, write_midi(s, format=options.format)) for suffix, s in zip(suffixes, songs))
    except MidiExportError as exc:
        return Rendered(record.place(), stem, error=exc, notes=record.note_count)
    return Rendered(record.place(), stem, encoded, song.report, notes=song.note_count)


def _split_suffixes(song: Any) -> list[str]:
    return ["-" + files.safe_name(track.name, fallback="track") for track in song.tracks]


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


def default_jobs() -> int:
    """Return the number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
