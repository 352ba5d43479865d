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
from functools import partial
from pathlib import Path, PurePath
from typing import Any

from ..defaults import DEFAULT_BASE_URL, DEFAULT_POLL_INTERVAL_S, DEFAULT_TIMEOUT_S
from ..errors import FetchError, InputError, MidiExportError, OutputError
from ..io import files
from ..io.client import (
    MUSIC_RECORD_PATH,
    ApiClient,
    ClientSettings,
    Progress,
)
from ..io.files import InputFile
from ..model import Record, Report
from ..options import ConvertOptions
from ..outputs.smf import write_midi
from ..stages.convert import convert_record, song_title, split_song
from ..stages.normalize import normalize_lines, normalize_payload

WINDOW_PER_JOB = 4  # units in flight per worker: keeps workers busy, memory bounded


@dataclass(frozen=True)
class Rendered:
    """One record encoded: (name suffix, extension, bytes) per file, or the error.

    A ".json" file is written beside the .mid before it, under the same name.
    """

    place: str
    stem: str
    files: tuple[tuple[str, str, bytes], ...] = ()
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
    """Where files go: ``out`` None (beside each input), "-" (stdout), a .mid, or a folder.

    ``default_folder`` replaces "beside each input" when there is no input file (fetch).
    """

    out: str | None = None
    overwrite: bool = False
    default_folder: Path | None = None
    planner: files.NamePlanner = field(default_factory=files.NamePlanner)
    single_used: bool = False

    @property
    def single(self) -> bool:
        """True when ``out`` names one file (a .mid path or "-")."""
        return self.out == "-" or (self.out is not None and self.out.lower().endswith((".mid", ".midi")))

    def write(self, source: InputFile | None, stem: str, data: bytes) -> str:
        """Write one .mid; return its path ("-" for stdout). Raises OutputError."""
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
        elif source is None:
            folder = self.default_folder or Path(".")
        elif source.path == files.STDIN:
            raise OutputError("standard input needs -o (a folder, a .mid path, or - for stdout)")
        else:
            folder = Path(source.path).parent
        path = self.planner.claim(folder, stem)
        files.write_atomic(path, data, overwrite=self.overwrite)
        return str(path)


class Pending:
    """The outcomes of one unit, available through ``result()``, which may raise.

    ``result()`` re-raises an error that stopped the whole unit (an InputError, a
    FetchError, or a bug in a worker); per-record errors are in the Outcomes instead.
    """

    def __init__(self, name: str, get: Callable[[], list[Rendered]], destination: Destination,
                 source: InputFile | None = None) -> None:  # fmt: skip
        self.name = name
        self._get = get
        self._destination = destination
        self._source = source

    def result(self) -> list[Outcome]:
        return [self._write(r) for r in self._get()]

    def _write(self, rendered: Rendered) -> Outcome:
        if rendered.error is not None:
            return Outcome(rendered.place, error=rendered.error, notes=rendered.notes)
        paths: list[str] = []
        try:
            for suffix, extension, data in sorted(rendered.files, key=lambda f: f[1] == ".json"):
                if extension == ".json":
                    if paths and paths[0] != "-":
                        json_path = Path(paths[0]).with_suffix(".json")
                        files.write_atomic(json_path, data, overwrite=self._destination.overwrite)
                        paths.append(str(json_path))
                else:
                    paths.append(self._destination.write(self._source, rendered.stem + suffix, data))
        except OutputError as exc:
            return Outcome(rendered.place, tuple(paths), rendered.report, exc, rendered.notes)
        return Outcome(rendered.place, tuple(paths), rendered.report, None, rendered.notes)


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
            yield Pending(_unit_name(unit), partial(render_unit, unit, options), destination, unit.source)
        return
    yield from _run_parallel(units, options, destination, jobs)


def _run_parallel(
    units: Iterable[Unit], options: ConvertOptions, destination: Destination, jobs: int
) -> Iterator[Pending]:
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    import numpy  # noqa: F401 - loaded once here, so forked workers start with it
    import orjson  # noqa: F401

    # fork: workers inherit the loaded modules (~0.1 s each otherwise). Not when other
    # threads run (forking them can deadlock), nor where there is no fork: the default.
    single_threaded = threading.active_count() == 1
    method = "fork" if single_threaded and "fork" in multiprocessing.get_all_start_methods() else None
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method),
                               initializer=_ignore_interrupts)  # fmt: skip
    in_flight: deque[tuple[Unit, Any]] = deque()
    try:
        for unit in units:
            in_flight.append((unit, pool.submit(render_unit, unit, options)))
            if len(in_flight) >= jobs * WINDOW_PER_JOB:
                done, future = in_flight.popleft()
                yield Pending(_unit_name(done), future.result, destination, done.source)
        while in_flight:
            done, future = in_flight.popleft()
            yield Pending(_unit_name(done), future.result, destination, done.source)
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


def render_record(record: Record, options: ConvertOptions, *, stem: str, keep: bytes | None = None) -> Rendered:
    """Convert and encode one record; a MidiExportError becomes the Rendered's error.

    ``keep``: JSON bytes to save beside the .mid (fetch keeps the raw answer).
    """
    try:
        song = convert_record(record, options)
        songs = split_song(song) if options.split else [song]
        suffixes = _split_suffixes(song) if options.split else [""]
        encoded = tuple((suffix, ".mid", write_midi(s, format=options.format)) for suffix, s in zip(suffixes, songs))
    except MidiExportError as exc:
        return Rendered(record.place(), stem, error=exc, notes=record.note_count)
    if keep is not None:
        encoded += (("", ".json", keep),)
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


@dataclass(frozen=True)
class FetchOptions:
    """How ``midiexport fetch`` asks the API. Times in seconds."""

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    wait: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    music_task: str | None = None
    save_json: bool = True
    concurrency: int = 3  # tasks asked at once: gentle with the API's rate limit

    def __repr__(self) -> str:  # never show the key
        return f"FetchOptions(base_url={self.base_url!r}, api_key=<hidden>)"


def run_fetch(
    task_ids: Sequence[str],
    fetch: FetchOptions,
    options: ConvertOptions,
    destination: Destination,
    *,
    progress: Progress | None = None,
    settings: ClientSettings | None = None,
) -> Iterator[Pending]:
    """Download each task (a few at a time), convert it, and yield one Pending per task.

    Call each Pending's ``result()`` before asking for the next: the downloads stop
    when the iteration ends. ``settings`` overrides the client's timeouts and retries (tests make them short).
    The music task, when given, is read once and names every song it matches.
    """
    from concurrent.futures import ThreadPoolExecutor

    settings = settings or ClientSettings(api_key=fetch.api_key, base_url=fetch.base_url)
    client = ApiClient(settings)
    pool = ThreadPoolExecutor(max_workers=max(1, min(fetch.concurrency, len(task_ids))))
    try:
        music: dict[str, Any] | None = None
        if fetch.music_task:
            try:
                music = client.get_record(MUSIC_RECORD_PATH, fetch.music_task)
            except FetchError as exc:
                yield Pending(f"music task {fetch.music_task}", _raiser(exc), destination)
        futures = [
            pool.submit(client.wait_for_record, task_id, wait=fetch.wait, timeout_s=fetch.timeout_s,
                        poll_interval_s=fetch.poll_interval_s, progress=progress)
            for task_id in task_ids
        ]  # fmt: skip
        for task_id, future in zip(task_ids, futures):
            get = _fetched(task_id, future, music, fetch.save_json, options)
            yield Pending(f"task {task_id}", get, destination)
    finally:
        client.close()
        pool.shutdown(wait=False, cancel_futures=True)


def _raiser(error: Exception) -> Callable[[], list[Rendered]]:
    def get() -> list[Rendered]:
        raise error

    return get


def _fetched(
    task_id: str, future: Any, music: dict[str, Any] | None, save_json: bool, options: ConvertOptions
) -> Callable[[], list[Rendered]]:
    def get() -> list[Rendered]:
        import orjson

        answer = future.result()
        payload = {"midiRecord": answer, "musicRecord": music} if music is not None else answer
        keep = orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n" if save_json else None
        records = normalize_payload(payload, source=f"task {task_id}")
        return [
            render_record(record, options, stem=files.safe_name(song_title(record), fallback=task_id), keep=keep)
            for record in records
        ]

    return get
