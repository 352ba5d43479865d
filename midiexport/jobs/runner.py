"""Runner: run jobs with N workers and hand back their results in order, then write them.

What a job is lives elsewhere (``convert_files``, ``fetch_tasks``); here is only how
jobs run (in this process, in worker processes, or in threads), how a job's result is
described (``Rendered``: the bytes of each file to write, or the error), and how results
become files (``Destination``, ``Pending``). Results are written by the main process in
input order, so output names are the same on every run (a re-run after an interruption
finds the finished files under the same names). Errors of one record are data in its
Outcome; the batch always goes on.

Re-runs: a job may *plan* a unit's output paths before any work (from the input's
name, a JSON Lines line number, a task id). When every planned file exists and
``overwrite`` is off, the unit is skipped without reading, converting or downloading
anything (``Pending.skip``). A file found to exist only when it is written (an output
that could not be planned) is kept too and listed in ``Outcome.existing``: neither
case is a failure.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import MidiExportError, OutputError
from ..io import files
from ..io.files import InputFile
from ..model import Report

WINDOW_PER_JOB = 4  # jobs in flight per worker: keeps workers busy, memory bounded
COMPANION = ".json"  # a file written beside the first .mid of a result, under its name

Job = TypeVar("Job")


@dataclass(frozen=True)
class OutputFile:
    """One file a job made: ``suffix`` added to the result's stem, ``extension``, bytes.

    A companion (``.json``) is written beside the first .mid under the same name.
    """

    suffix: str
    extension: str
    data: bytes

    @property
    def companion(self) -> bool:
        """True for a file written beside the main one (the raw answer kept by fetch)."""
        return self.extension == COMPANION


@dataclass(frozen=True)
class Rendered:
    """One record encoded: the files to write, or the error that stopped it."""

    place: str
    stem: str
    files: tuple[OutputFile, ...] = ()
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
    existing: tuple[str, ...] = ()  # files that existed and were kept (no ``overwrite``)

    @property
    def skipped(self) -> bool:
        """True when every file of this result existed and was kept: nothing written, no error."""
        return bool(self.existing) and not self.paths and self.error is None


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

    def problem(self, *, several: bool) -> str | None:
        """Return why ``out`` cannot take the results (a usage error, found before any work), or None.

        ``several``: more than one result is coming (several inputs, a JSON Lines file
        of several lines, one file per instrument).
        """
        if self.single and several:
            where = "standard output takes" if self.out == "-" else f"-o {self.out} names"
            return f"{where} one file but there are several results; give a folder instead"
        if self.out is not None and not self.single and os.path.exists(self.out) and not os.path.isdir(self.out):
            return f"-o {self.out} is a file, not a folder; give a folder, or a path ending in .mid for one result"
        return None

    def folder(self, source: InputFile | None) -> Path | None:
        """Return the folder a result of ``source`` goes to; None for one named file or stdin."""
        if self.single:
            return None
        if self.out is not None:
            return Path(self.out)
        if source is None:
            return self.default_folder or Path(".")
        if source.path == files.STDIN:
            return None
        return Path(source.path).parent

    def plan(self, source: InputFile | None, stem: str, companion: str | None = None) -> tuple[Path, ...] | None:
        """Claim the path of a result named ``stem`` before any work; None when it cannot be known.

        Returns the .mid's path, then the companion's (``companion`` is its extension)
        beside it. Claims are made in input order, like the writes they stand for.
        """
        if self.out == "-" or (source is not None and source.path == files.STDIN):
            return None
        if self.single:
            assert self.out is not None
            main = Path(self.out)
        else:
            folder = self.folder(source)
            assert folder is not None
            main = self.planner.claim(folder, stem)
        return (main,) if companion is None else (main, main.with_suffix(companion))

    def finished(self, planned: tuple[Path, ...] | None) -> bool:
        """True when every planned file exists and may not be replaced: the unit can be skipped."""
        return bool(planned) and not self.overwrite and all(os.path.lexists(p) for p in planned or ())

    def write(self, source: InputFile | None, stem: str, data: bytes, planned: Path | None = None) -> str:
        """Write one .mid (to ``planned`` when the path was planned); return its path ("-" for stdout).

        Raises OutputError (FileExists when the file exists and ``overwrite`` is off).
        """
        if planned is not None:
            self.single_used = self.single_used or self.single
            files.write_atomic(planned, data, overwrite=self.overwrite)
            return str(planned)
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
                 source: InputFile | None = None, planned: tuple[Path, ...] | None = None,
                 stem: str | None = None, skipped: bool = False) -> None:  # fmt: skip
        self.name = name
        self._get = get
        self._destination = destination
        self._source = source
        self._planned = planned  # the paths planned for the result named ``stem``
        self._stem = stem
        self._skipped = skipped

    @classmethod
    def skip(cls, name: str, planned: tuple[Path, ...], destination: Destination) -> Pending:
        """A unit whose planned files all exist: its result says so, and nothing runs."""
        return cls(name, list, destination, planned=planned, skipped=True)

    def result(self) -> list[Outcome]:
        if self._skipped and self._planned:
            return [Outcome(self.name, existing=tuple(str(p) for p in self._planned))]
        return [self._write(r) for r in self._get()]

    def _write(self, rendered: Rendered) -> Outcome:
        if rendered.error is not None:
            return Outcome(rendered.place, error=rendered.error, notes=rendered.notes)
        paths: list[str] = []
        existing: list[str] = []
        main: str | None = None
        try:
            for output in sorted(rendered.files, key=lambda f: f.companion):
                if not output.companion:
                    planned = self._planned[0] if self._planned and rendered.stem == self._stem and not output.suffix \
                        else None  # fmt: skip
                    target = self._write_kept(rendered.stem + output.suffix, output.data, planned, existing)
                    main = main or target
                    if target != "" and target not in existing:
                        paths.append(target)
                elif main and main != "-":
                    beside = Path(main).with_suffix(output.extension)
                    try:
                        files.write_atomic(beside, output.data, overwrite=self._destination.overwrite)
                        paths.append(str(beside))
                    except files.FileExists:
                        existing.append(str(beside))
        except OutputError as exc:
            return Outcome(rendered.place, tuple(paths), rendered.report, exc, rendered.notes, tuple(existing))
        return Outcome(rendered.place, tuple(paths), rendered.report, None, rendered.notes, tuple(existing))

    def _write_kept(self, stem: str, data: bytes, planned: Path | None, existing: list[str]) -> str:
        """Write one .mid; an existing file is kept and listed in ``existing``. Return its path."""
        try:
            return self._destination.write(self._source, stem, data, planned)
        except files.FileExists as exc:
            existing.append(exc.path or stem)
            return existing[-1]


def run_in_processes(
    jobs: Iterable[Job], work: Callable[[Job], Any], *, workers: int, skip: Callable[[Job], bool] | None = None
) -> Iterator[tuple[Job, Callable[[], Any]]]:
    """Run ``work(job)`` for each job in ``workers`` processes; yield (job, get result), in order.

    Call each ``get`` before asking for the next: the workers stop when the iteration
    ends. Memory stays bounded: at most WINDOW_PER_JOB jobs per worker are in flight.
    A job for which ``skip(job)`` is true is not sent to a worker (its ``get`` returns
    None), so a batch of finished work starts no process at all.
    """
    in_flight: deque[tuple[Job, Any]] = deque()
    pool = None
    try:
        for job in jobs:
            if skip is not None and skip(job):
                in_flight.append((job, None))
            else:
                pool = pool or _process_pool(workers)  # started on the first job to run: none on a re-run
                in_flight.append((job, _submit(pool, work, job)))
            if len(in_flight) >= workers * WINDOW_PER_JOB:
                done, future = in_flight.popleft()
                yield done, _nothing if future is None else future.result
        while in_flight:
            done, future = in_flight.popleft()
            yield done, _nothing if future is None else future.result
        if pool is not None:
            # All work is done: wait for the idle workers, so no pool thread is left for
            # the interpreter's exit to wake through a closed pipe ("Bad file descriptor").
            pool.shutdown(wait=True)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _process_pool(workers: int) -> Any:
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    import numpy  # noqa: F401 - loaded once here, so forked workers start with it
    import orjson  # noqa: F401

    # fork: workers inherit the loaded modules (~0.1 s each otherwise). Not when other
    # threads run (forking them can deadlock), nor where there is no fork: the default.
    single_threaded = threading.active_count() == 1
    method = "fork" if single_threaded and "fork" in multiprocessing.get_all_start_methods() else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=start_worker, initargs=(os.getpid(),))  # fmt: skip


def _submit(pool: Any, work: Callable[[Job], Any], job: Job) -> Any:
    """Submit one job; a pool broken by a killed worker gives the job that error instead.

    Ctrl-C and SIGTERM are held meanwhile: a submit may fork workers, and a signal
    handled inside fork's callbacks would be lost ("Exception ignored"). Workers
    inherit the held signals and take them back in ``_start_worker``.
    """
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    try:
        with files.signals_held():
            return pool.submit(work, job)
    except BrokenProcessPool as exc:
        failed: Future[Any] = Future()
        failed.set_exception(exc)
        return failed


def run_in_threads(
    jobs: list[Job], work: Callable[[Job], Any], *, workers: int
) -> Iterator[tuple[Job, Callable[[], Any]]]:
    """Run ``work(job)`` for each job in ``workers`` threads (I/O-bound work); yield as above."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))))
    try:
        futures = [pool.submit(work, job) for job in jobs]
        for job, future in zip(jobs, futures):
            yield job, future.result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _nothing() -> None:
    return None


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>: a signal sent to this process when its parent dies


def start_worker(parent_pid: int) -> None:
    """Prepare a worker process: it ends with its parent and quietly on SIGTERM.

    Ctrl-C reaches every process of the group; only the main process handles it, so
    workers ignore SIGINT. SIGTERM ends a worker at once, without a traceback (the
    default action; the main process's own handler would be inherited by a fork).
    Workers write no files, so nothing is left half-done. On Linux the kernel sends
    SIGKILL to the worker when the main process dies, even by SIGKILL; the parent
    check after asking covers a parent that died before the request was made.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):  # held by the parent while it forked
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _die_with_parent()
    if os.getppid() != parent_pid:
        os._exit(1)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return  # no such request elsewhere: only the parent check in _start_worker
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def default_jobs() -> int:
    """Return the number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
