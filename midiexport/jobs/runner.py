"""Runner: run jobs with N workers and hand back their results in order, then write them.

What a job is lives elsewhere (``convert_files``, ``fetch_tasks``); here is only how
jobs run (in this process, in worker processes, or in threads), how a job's result is
described (``Rendered``: the bytes of each file to write, or the error), and how results
become files (``Destination``, ``Pending``). Results are written by the main process in
input order, so output names are the same on every run (a re-run after an interruption
finds the finished files under the same names); work whose names are all claimed before
it runs may be written as it ends instead (``run_in_threads(ordered=False)``: fetch); a
record that failed once it was read claims its name all the same (``Destination.reserve``),
so the names of the others do not depend on which failed. Errors of one record are data in
its Outcome; the batch always goes on.

Re-runs: a job may *plan* a unit's output paths before any work (from the input's
name, a JSON Lines line number, a task id). When every planned file exists and
``overwrite`` is off, the unit is skipped without reading, converting or downloading
anything (``Pending.skip``). A file found to exist only when it is written (an output
that could not be planned) is kept too and listed in ``Outcome.existing``: neither
case is a failure.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ..errors import MidiExportError, OutputError, Phrase, WorkerLost, say
from ..io import files
from ..io.files import InputFile
from ..model import Report

WINDOW_PER_JOB = 4  # jobs in flight per worker: keeps workers busy, memory bounded
PREFETCH = WINDOW_PER_JOB  # jobs sent to a worker at once: the next ones wait in its pipe, no idle gap
MAX_REFUSALS = 3  # a job that finds this many workers dead when sent is lost: they die as they start
PREFETCH_MAX_BYTES = 8192  # jobs sent ahead fit in a pipe's buffer (16 KiB on macOS, 64 KiB Linux): never blocks
COMPANION = ".json"  # a file written beside the first .mid of a result, under its name
STARTED = b"started"  # a worker's first message, before it reads a job (never a pickled answer's first bytes)
INPUT_CLEAR_SUFFIX = "-midiexport"  # added to a result that would take an input's own path (``Destination.protect``)
OUTPUT_PATH = Phrase("the output path")  # the setting of where results go, in ``Destination``'s refusals
# Standard input has no folder for its results to go beside (``Destination.stdin_problem``).
STDIN_NEEDS_OUTPUT = say("reading standard input needs ", OUTPUT_PATH, " (a folder, a .mid path, or - for stdout)")

Job = TypeVar("Job")


class OutputFile(NamedTuple):
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


class Rendered(NamedTuple):
    """One record encoded: the files to write, or the error that stopped it.

    A failed one keeps the ``stem`` it would have been written under, when known (it was
    read; not with --split, whose names come from the converted instruments), so its
    name is claimed all the same (``Destination.reserve``); else ``stem`` is "".
    """

    place: str
    stem: str
    files: tuple[OutputFile, ...] = ()
    report: Report | None = None
    error: MidiExportError | None = None
    notes: int = 0


class Outcome(NamedTuple):
    """What became of one record: the files written, the report, or the error."""

    place: str
    paths: tuple[str, ...] = ()
    report: Report | None = None
    error: MidiExportError | None = None
    notes: int = 0
    existing: tuple[str, ...] = ()  # files that existed and were kept (no ``overwrite``)
    kept_other: tuple[str, ...] = ()  # lines saying a kept file holds another song's making (``Pending``'s ``other``)

    @property
    def skipped(self) -> bool:
        """True when every file of this result existed and was kept: nothing written, no error."""
        return bool(self.existing) and not self.paths and self.error is None


def names_one_file(out: str | None) -> bool:
    """True when ``out`` (an ``-o`` value) names one file: a .mid path or "-"."""
    return out == "-" or (out is not None and files.names_midi(out))


def names_new_file(out: str) -> bool:
    """True when ``out``, an output path that names no .mid, looks like another kind of file: it is taken for neither.

    A path that does not exist, whose last part has a suffix (``out.txt``, ``song.json``)
    and no trailing slash: made a folder, it would surprise whoever meant a file. An
    existing folder with a dot in its name, and ``name.d/``, are folders as given.
    """
    return not out.endswith(("/", os.sep)) and bool(Path(out).suffix) and not os.path.lexists(out)


def _is_file_there(path: Path) -> bool:
    """Whether something that is no folder is at ``path`` itself (one lstat: a link counts, whatever it leads to)."""
    info = files.lstat_or_none(path)
    return info is not None and not stat.S_ISDIR(info.st_mode)


class Destination:
    """Where files go: ``out`` None (beside each input), "-" (stdout), a .mid, or a folder.

    ``default_folder`` replaces "beside each input" when there is no input file (fetch).
    ``planner`` keeps the names claimed so far; ``single_used`` is set once ``out``'s one
    file is taken. No file is ever written over an input of the run (``protect``), not
    even with ``overwrite``.
    """

    def __init__(self, out: str | None = None, overwrite: bool = False, default_folder: Path | None = None) -> None:
        self.out = out
        self.overwrite = overwrite
        self.default_folder = default_folder
        self.planner = files.NamePlanner()
        self.single_used = False
        self._inputs: set[str] = set()  # the run's input files, resolved and case-folded (``_same_file_key``)

    def protect(self, paths: Iterable[str]) -> None:
        """Keep the files at ``paths`` (the inputs of the run) from being written over.

        A result whose name would be one of them, whichever input it comes from, takes
        ``INPUT_CLEAR_SUFFIX`` ("b.mid" becomes "b-midiexport.mid"), numbered on when that
        is an input too.
        """
        self._inputs.update(_same_file_key(path) for path in paths if path != files.STDIN)

    def input_problem(self) -> str | None:
        """Return why ``out``, one named file, cannot be written (it is an input of the run), or None."""
        if self.single and self.out != "-" and self.out is not None and _same_file_key(self.out) in self._inputs:
            return say(OUTPUT_PATH, f" {self.out} is an input of this run, which is never replaced; give another path")
        return None

    def stdin_problem(self, paths: Iterable[str]) -> str | None:
        """Return why standard input, when among ``paths``, cannot be written (no ``out``), or None.

        The one rule of standard input's output: its results have no input file to go
        beside (``folder``). Asked by the command before any work; ``write`` says the same.
        """
        return STDIN_NEEDS_OUTPUT if self.out is None and files.STDIN in paths else None

    def _claim(self, folder: Path, stem: str) -> Path:
        """Claim folder/stem.mid (``NamePlanner``), clear of every input of the run (``protect``)."""
        path = self.planner.claim(folder, stem)
        # no input of the run: no path to resolve; the cleared name may be an input too (the
        # planner gives a new name on each claim, so this ends)
        while self._inputs and _same_file_key(str(path)) in self._inputs:
            path = self.planner.claim(folder, files.safe_name(stem + INPUT_CLEAR_SUFFIX))
        return path

    @property
    def single(self) -> bool:
        """True when ``out`` names one file (a .mid path or "-")."""
        return names_one_file(self.out)

    def problem(self, *, several: bool) -> str | None:
        """Return why ``out`` cannot take the results (a usage error, found before any work), or None.

        A path that names no .mid is a folder: an existing one, or one to make whose name
        has no suffix or ends in a slash (``names_new_file``). ``several``: more than one
        result is coming (several inputs, a JSON Lines file of several lines, one file per
        instrument).
        """
        if several and self.single:
            return self.too_many(2)
        if self.single and self.out != "-" and self.out is not None and os.path.isdir(self.out):
            return say(OUTPUT_PATH, f" {self.out} is a folder, not a file; give a .mid path that is no folder, or "
                       f"{self.out}/ (a trailing /) to write into that folder")  # fmt: skip
        if self.out is not None and not self.single and os.path.exists(self.out) and not os.path.isdir(self.out):
            return say(OUTPUT_PATH, f" {self.out} is a file, not a folder; give a folder, or a path ending in .mid "
                       "for one result")  # fmt: skip
        if self.out is not None and not self.single and names_new_file(self.out):
            return say(OUTPUT_PATH, f" {self.out} names a file that is no .mid; give a path ending in .mid for one "
                       f"result, or {self.out}/ (a trailing /) for a folder of that name")  # fmt: skip
        return None

    def too_many(self, results: int) -> str | None:
        """Return why ``out``, when it names one file, cannot take ``results`` more .mid files, or None.

        The one check of "one named file, several results", made before anything is
        written: by the command (``--split``, several task ids), by ``run_batch`` (several
        units, or a lone unit of several songs: usage errors, before any work), and by
        ``Pending.refusal`` before a unit's files are written (a task of several songs; a
        lone unit of several songs, which ``run_batch`` asks first), the file already
        written counting (``single_used``).
        """
        if not self.single or results + self.single_used <= 1:
            return None
        where = "standard output takes" if self.out == "-" else say(OUTPUT_PATH, f" {self.out} names")
        return say(where, " one file but there are several results; give a folder instead")

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
            main = self._claim(folder, stem)
        return (main,) if companion is None else (main, main.with_suffix(companion))

    def reserve(self, source: InputFile | None, stem: str) -> None:
        """Claim the name of a result that failed, as its write would have: nothing is written.

        The results after it are so named as if it had not failed (``T1-2.mid`` for the
        second song titled T1 whether the first converted or not), and a re-run after
        mending it writes it under its own name, not over the name another song took.
        Nothing to claim for one named file or stdout.
        """
        folder = self.folder(source)
        if folder is not None:
            self._claim(folder, stem)

    def finished(self, planned: tuple[Path, ...] | None) -> bool:
        """True when every planned file exists and may not be replaced: the unit can be skipped.

        A folder in a planned file's place is no finished file: writing there says it is a folder.
        """
        return bool(planned) and not self.overwrite and all(_is_file_there(p) for p in planned or ())

    def write(self, source: InputFile | None, stem: str, data: bytes, planned: Path | None = None) -> str:
        """Write one .mid (to ``planned`` when the path was planned); return its path ("-" for stdout).

        Raises OutputError (FileExists when the file exists and ``overwrite`` is off), and
        when ``out`` names one file already written: a backstop, as ``Pending`` checks
        ``too_many`` before a unit's first write.
        """
        problem = self.too_many(1)
        if problem is not None:
            raise OutputError(problem)
        if planned is not None:
            self.single_used = self.single_used or self.single
            files.write_atomic(planned, data, overwrite=self.overwrite)
            return str(planned)
        if self.single:
            self.single_used = True
            if self.out == "-":
                files.write_stdout(data)
                return "-"
            assert self.out is not None
            files.write_atomic(Path(self.out), data, overwrite=self.overwrite)
            return self.out
        folder = self.folder(source)
        if folder is None:  # not one named file, so standard input without ``out`` (``stdin_problem``)
            raise OutputError(STDIN_NEEDS_OUTPUT)
        path = self._claim(folder, stem)
        files.write_atomic(path, data, overwrite=self.overwrite)
        return str(path)


def _same_file_key(path: str) -> str:
    """Return what tells two paths of one file apart from others: resolved (links, ``..``), case-folded as names are.

    ``os.path.realpath``, not ``Path.resolve``: a path that cannot be resolved (a symlink loop,
    a folder that cannot be searched) is kept as far as it resolves instead of raising; reading
    or writing it says what is wrong, for that input alone.
    """
    return os.path.realpath(path).casefold()


class Pending:
    """The outcomes of one unit, available through ``result()``, which may raise.

    ``result()`` re-raises an error that stopped the whole unit (an InputError, a
    FetchError, or a bug in a worker), and raises OutputError, before writing any of
    them, when its files are too many for one named file (``refusal``);
    per-record errors are in the Outcomes instead.
    """

    def __init__(self, name: str, get: Callable[[], list[Rendered]], destination: Destination,
                 source: InputFile | None = None, planned: tuple[Path, ...] | None = None,
                 stem: str | None = None, skipped: bool = False, inputs: tuple[str, ...] = (),
                 partial: bool = False, other: Callable[[str, str], str | None] | None = None,
                 size: int = 0) -> None:  # fmt: skip
        self.name = name
        # other(kept file's path, result's place): a line when the kept file was made from other inputs
        self._other = other
        # For the progress bar: the input files this unit reads (none: the unit is an input of its own, a
        # task), and whether it is only part of its input (one line of a JSON Lines file: more may follow).
        # ``size``: the bytes of its input the unit was read from (a JSON Lines line; 0: not counted).
        self.inputs, self.partial, self.size = inputs, partial, size
        self._get = get
        self._destination = destination
        self._source = source
        self._planned = planned  # the paths planned for the result named ``stem``
        self._stem = stem
        self._skipped = skipped
        self._planned_taken = False  # the planned paths went to the first result named ``stem``
        self._rendered: list[Rendered] | None = None  # the unit's results, once got (``_results``)

    @classmethod
    def skip(cls, name: str, planned: tuple[Path, ...], destination: Destination, *, inputs: tuple[str, ...] = (),
             partial: bool = False, size: int = 0) -> Pending:  # fmt: skip
        """A unit whose planned files all exist: its result says so, and nothing runs."""
        return cls(name, list, destination, planned=planned, skipped=True, inputs=inputs, partial=partial, size=size)

    def result(self) -> list[Outcome]:
        if self._skipped and self._planned:
            return [Outcome(self.name, existing=tuple(str(p) for p in self._planned))]
        problem = self.refusal()
        if problem is not None:  # nothing of the unit is written
            raise OutputError(say(f"{self.name}: ", problem))
        return [self._write(r) for r in self._results()]

    def refusal(self) -> str | None:
        """Return why the unit's files cannot all go to ``out``'s one file, or None: the one check of a unit.

        ``Destination.too_many`` of the .mid files its results would write (one per
        instrument with --split; a failure or a companion writes none), the file already
        written counting. The results are got on the first call (raising what stopped the
        unit) and kept for ``result``, so ``run_batch`` can ask before it hands a lone unit
        over, and refuse it as a usage error.
        """
        return self._destination.too_many(sum(_main_files(r) for r in self._results() if r.error is None))

    def _results(self) -> list[Rendered]:
        """Return the unit's results, got on the first call (raising what stopped the unit) and kept."""
        if self._rendered is None:
            try:
                self._rendered = self._get()
            except WorkerLost as exc:  # the runner knows the job, not its name
                raise WorkerLost(say(f"{self.name}: ", exc.message), signal=exc.signal, how=exc.how) from None
        return self._rendered

    def _write(self, rendered: Rendered) -> Outcome:
        if rendered.error is not None:  # its report, when it has one, says what else there is to know
            if rendered.stem and self._take_planned(rendered.stem) is None:  # a planned name is claimed
                self._destination.reserve(self._source, rendered.stem)
            return Outcome(rendered.place, report=rendered.report, error=rendered.error, notes=rendered.notes)
        paths: list[str] = []
        existing: list[str] = []
        main: str | None = None
        try:
            for output in sorted(rendered.files, key=lambda f: f.companion):
                if not output.companion:
                    planned = None if output.suffix else self._take_planned(rendered.stem)
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
        other = [] if self._other is None else [self._other(path, rendered.place) for path in existing]
        return Outcome(rendered.place, tuple(paths), rendered.report, None, rendered.notes, tuple(existing),
                       tuple(line for line in other if line is not None))  # fmt: skip

    def _take_planned(self, stem: str) -> Path | None:
        """Return the planned .mid path for the first result named ``stem`` as planned; None for any other.

        A file planned as one record that holds several a name template names alike
        ("{stem}" for each record of an array): the second is named as any other (``-2``).
        """
        if not self._planned or stem != self._stem or self._planned_taken:
            return None
        self._planned_taken = True
        return self._planned[0]

    def _write_kept(self, stem: str, data: bytes, planned: Path | None, existing: list[str]) -> str:
        """Write one .mid; an existing file is kept and listed in ``existing``. Return its path."""
        try:
            return self._destination.write(self._source, stem, data, planned)
        except files.FileExists as exc:
            existing.append(exc.path or stem)
            return existing[-1]


def _main_files(rendered: Rendered) -> int:
    """How many .mid files a result writes (one per instrument with --split; a companion is not one)."""
    return sum(not output.companion for output in rendered.files)


def run_in_processes(
    jobs: Iterable[Job], work: Callable[[Job], Any], *, workers: int, skip: Callable[[Job], bool] | None = None
) -> Iterator[tuple[Job, Callable[[], Any]]]:
    """Run ``work(job)`` for each job in ``workers`` processes; yield (job, get result), in order.

    Call each ``get`` before asking for the next: the workers stop when the iteration
    ends. Memory stays bounded: at most WINDOW_PER_JOB jobs per worker are in flight.
    A job for which ``skip(job)`` is true is not sent to a worker (its ``get`` returns
    None), so a batch of finished work starts no process at all. A job whose worker
    dies (killed, out of memory) gets WorkerLost from its ``get``; the others go on.
    """
    window: deque[tuple[Job, int | None]] = deque()
    pool: WorkerPool | None = None
    try:
        for job in jobs:
            if skip is not None and skip(job):
                window.append((job, None))
            else:
                pool = pool or WorkerPool(work, workers)  # started on the first job to run: none on a re-run
                window.append((job, pool.submit(job)))
            if len(window) >= workers * WINDOW_PER_JOB:
                yield _next_result(window, pool)
        while window:
            yield _next_result(window, pool)
    finally:
        if pool is not None:
            pool.close()


def _next_result(window: deque[tuple[Job, int | None]], pool: WorkerPool | None) -> tuple[Job, Callable[[], Any]]:
    job, ticket = window.popleft()
    if ticket is None or pool is None:
        return job, _nothing
    return job, partial(pool.result, ticket)


class WorkerPool:
    """Worker processes, each with its own pair of pipes, answering its jobs in order.

    Not concurrent.futures' ProcessPoolExecutor: there all workers share one result
    pipe, and a worker killed half-way through sending a result leaves half a message
    in it, which the pool's reading thread then waits for forever (Python 3.11). Here
    a worker's result pipe has one writer, the worker, so its death ends the pipe: a
    half-sent message reads as end of file. Of the jobs sent to that worker, only the
    one it was on is lost; those it had not begun go to another worker, and a
    replacement starts when there is more work. The pool runs no thread: it reads
    answers when a ``result`` is asked for (or ``ready``). One thread owns it (it is
    not thread-safe): the batch's main thread, or serve's conversion thread. ``context``
    is a multiprocessing context; by default fork where it is safe (``_context``).
    """

    def __init__(self, work: Callable[[Any], Any], size: int, *, context: Any = None) -> None:
        self._work = work
        self._size = size
        self._context = context or _context()  # a multiprocessing context: how workers start
        self._workers: list[_Worker] = []
        self._queue: deque[tuple[int, bytes]] = deque()  # (ticket, pickled job) not yet sent to a worker
        self._done: dict[int, tuple[Any, BaseException | None]] = {}
        self._refused: dict[int, int] = {}  # ticket -> workers found dead when it was sent to them
        self._tickets = 0
        # Workers in a row that died before they could start (before their STARTED message;
        # 0 once one starts): serve's /healthz says "not ready" while no worker can start.
        # A worker a job kills after it started (out of memory on one input) is not counted.
        self.unstarted_losses = 0

    def submit(self, job: Any) -> int:
        """Queue one job; return the ticket its ``result`` is asked for with."""
        from multiprocessing.reduction import ForkingPickler

        ticket = self._tickets
        self._tickets += 1
        try:
            self._queue.append((ticket, bytes(ForkingPickler.dumps(job))))
        except Exception as exc:  # noqa: BLE001 - a job that cannot be sent fails alone
            self._done[ticket] = (None, exc)
        self._dispatch()
        return ticket

    def result(self, ticket: int) -> Any:
        """Return the job's result, waiting for it; raise what the job raised, or WorkerLost."""
        while ticket not in self._done:
            self._dispatch()
            self._receive()
        value, error = self._done.pop(ticket)
        if error is not None:
            raise error
        return value

    def ready(self, *, wake: Any) -> list[int]:
        """Wait until a job ends or ``wake`` (a file descriptor) is readable; return the finished tickets.

        For a caller that waits on more than this pool (serve's thread, woken when a
        job arrives): each ticket returned has its ``result`` at once.
        """
        self._dispatch()
        if not self._done:
            self._receive(wake)
        return list(self._done)

    def close(self) -> None:
        """Stop every worker and wait for it: idle ones are told to, busy ones get SIGTERM."""
        for worker in self._workers:
            if worker.tickets:
                worker.process.terminate()
            else:
                worker.stop()
        for worker in self._workers:
            worker.end()
        self._workers = []

    def _dispatch(self) -> None:
        """Send queued jobs: to idle workers, to new ones, then a small second job to busy ones."""
        while self._queue:
            worker = self._free_worker(self._queue[0][1])
            if worker is None:
                return
            ticket, message = self._queue.popleft()
            if worker.send(ticket, message):
                self._refused.pop(ticket, None)  # sent: its refusals no longer matter
                continue
            self._lose(worker)  # it had died: the job never reached it
            self._refused[ticket] = self._refused.get(ticket, 0) + 1
            if self._refused[ticket] < MAX_REFUSALS:
                self._queue.appendleft((ticket, message))
            else:  # workers die as they start: do not fork forever
                del self._refused[ticket]
                self._done[ticket] = (None, _lost(worker.process.exitcode))

    def _free_worker(self, message: bytes) -> _Worker | None:
        idle = next((w for w in self._workers if not w.tickets), None)
        if idle is not None:
            return idle
        if len(self._workers) < self._size:
            # Signals are held from before the fork until the worker is in the list: one that
            # lands meanwhile (its handler raising) finds it there, and close() ends it.
            # See start_worker: a signal inside fork's callbacks would be lost.
            with files.signals_held():
                self._workers.append(_Worker(self._context, self._work))
            return self._workers[-1]
        # A job sent ahead waits in the worker's pipe while it works: the main process can
        # write files meanwhile. Only what the pipe holds without blocking: the worker may
        # itself be blocked sending a result that only we would read.
        ahead = [w for w in self._workers if len(w.tickets) < PREFETCH and w.ahead + len(message) <= PREFETCH_MAX_BYTES]
        return min(ahead, key=lambda w: len(w.tickets), default=None)

    def _receive(self, wake: Any = None) -> None:
        """Wait until a busy worker answers or dies (or ``wake`` is readable); keep its answer or the loss."""
        from multiprocessing.connection import wait

        busy = [w for w in self._workers if w.tickets]
        woken = [] if wake is None else [wake]
        ready = set(wait([w.results for w in busy] + [w.process.sentinel for w in busy] + woken))
        for worker in busy:
            if worker.results in ready or worker.process.sentinel in ready:
                if not worker.started:
                    if not worker.take_started():  # died before it could start
                        self._lose(worker)
                        continue
                    self.unstarted_losses = 0
                    if not worker.results.poll():  # only the start was there: its answer is to come
                        if worker.process.sentinel in ready:
                            self._lose(worker)
                        continue
                answer = worker.receive()
                if answer is None:
                    self._lose(worker)
                else:
                    self._done[worker.tickets.popleft()] = answer

    def _lose(self, worker: _Worker) -> None:
        """A worker died: its current job is lost; the jobs it had not begun are sent again."""
        self._workers.remove(worker)
        if not worker.started and worker.results.poll():
            worker.take_started()
        while worker.started and worker.tickets and worker.results.poll():  # answers it sent before it died count
            answer = worker.receive()
            if answer is None:
                break
            self._done[worker.tickets.popleft()] = answer
        worker.end()
        self.unstarted_losses = 0 if worker.started else self.unstarted_losses + 1
        if worker.tickets:
            self._done[worker.tickets.popleft()] = (None, _lost(worker.process.exitcode))
        self._queue.extendleft(reversed(worker.messages()))


class _Worker:
    """One worker process and its pipes: jobs go down ``tasks``, answers come up ``results``."""

    def __init__(self, context: Any, work: Callable[[Any], Any]) -> None:
        tasks_in, self.tasks = context.Pipe(duplex=False)
        self.results, results_out = context.Pipe(duplex=False)
        self.process = context.Process(target=_serve, args=(work, tasks_in, results_out, os.getpid()), daemon=True)
        self.process.start()  # with signals held by the pool (WorkerPool._free_worker)
        tasks_in.close()  # the worker's ends: ours closed, so the worker's death ends the pipes
        results_out.close()
        self.tickets: deque[int] = deque()  # the jobs sent, not yet answered, in order
        self._sent: dict[int, bytes] = {}
        self.started = False  # its STARTED message was read: it runs, whatever its jobs do

    def send(self, ticket: int, message: bytes) -> bool:
        """Send one pickled job; False when the worker is gone.

        The job counts as sent from the first byte: a send cut short (Ctrl-C, SIGTERM)
        leaves the worker busy reading the rest, so ``close`` ends it rather than send it a
        stop message it would read as more of the job.
        """
        self.tickets.append(ticket)
        self._sent[ticket] = message
        try:
            self.tasks.send_bytes(message)
        except OSError:  # BrokenPipeError: nobody reads
            self.tickets.pop()
            del self._sent[ticket]
            return False
        return True

    def take_started(self) -> bool:
        """Read the worker's first message, STARTED; False when it died before sending it."""
        try:
            self.started = self.results.recv_bytes() == STARTED
        except (EOFError, OSError):
            return False
        return self.started

    def receive(self) -> tuple[Any, BaseException | None] | None:
        """Read the answer to the oldest job sent: (result, error); None when the worker died.

        An answer read whole but that cannot be unpickled here (an exception class whose
        ``__init__`` does not take its own ``args``) is that job's error: the next answer
        still goes to the next job.
        """
        from multiprocessing.reduction import ForkingPickler

        try:
            data = self.results.recv_bytes()
        except (EOFError, OSError):  # died before or while sending
            return None
        self._sent.pop(self.tickets[0], None)
        try:
            value, error, trace = ForkingPickler.loads(data)
        except Exception as exc:  # noqa: BLE001 - one job's answer, not the pool's state
            return None, RuntimeError(f"the worker's answer cannot be read ({type(exc).__name__}: {exc})")
        if error is not None and trace:
            error.__cause__ = RemoteTraceback(trace)
        return value, error

    @property
    def ahead(self) -> int:
        """Bytes of the jobs sent and not begun (all but the current one): they wait in the pipe."""
        return sum(len(self._sent[ticket]) for ticket in list(self.tickets)[1:])

    def messages(self) -> list[tuple[int, bytes]]:
        """The jobs sent and not begun (all but the current one), to send elsewhere."""
        return [(ticket, self._sent[ticket]) for ticket in self.tickets]

    def stop(self) -> None:
        try:
            self.tasks.send_bytes(b"")
        except OSError:
            pass

    def end(self) -> None:
        """Wait for the process to end (it was told to, or died); close our ends of its pipes."""
        self.process.join()
        self.tasks.close()
        self.results.close()


class RemoteTraceback(Exception):
    """The traceback of an error raised in a worker process (shown with -v, as the cause)."""

    def __str__(self) -> str:
        return str(self.args[0])


def signal_name(number: int) -> str:
    """Return a signal's name for messages: 9 -> 'SIGKILL' ('signal 99' for one the system does not know)."""
    import signal

    return signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"


def raising(error: BaseException) -> Callable[[], Any]:
    """Return a function that raises ``error``: a result getter for work that failed before it ran."""

    def get() -> Any:
        raise error

    return get


def _lost(exitcode: int | None) -> WorkerLost:
    if exitcode is not None and exitcode < 0:
        how, number = f"was killed by {signal_name(-exitcode)}", -exitcode
    else:
        how, number = f"ended (status {exitcode})", None
    return WorkerLost(f"its worker process {how} before it returned the result; nothing was written for it; "
                      "run the same command again to convert it", signal=number, how=how)  # fmt: skip


def _trace(exc: BaseException) -> str:
    """A bug's traceback, shown with -v (an error raised on purpose is its one line: ``cli.report.fail_line``)."""
    import traceback

    return "".join(traceback.format_exception(exc))


def _serve(work: Callable[[Any], Any], tasks: Any, results: Any, parent_pid: int) -> None:
    """A worker's life: take a job, send back (result, error, a bug's traceback), until told to stop."""
    from multiprocessing.reduction import ForkingPickler

    start_worker(parent_pid)
    results.send_bytes(STARTED)
    while True:
        try:
            message = tasks.recv_bytes()
        except EOFError:  # the main process is gone
            return
        if not message:
            return
        try:
            answer: tuple[Any, BaseException | None, str] = (work(ForkingPickler.loads(message)), None, "")
        except Exception as exc:  # noqa: BLE001 - sent back, raised where the result is asked for
            answer = (None, exc, "" if isinstance(exc, MidiExportError) else _trace(exc))
        try:
            results.send(answer)
        except Exception as exc:  # noqa: BLE001 - the result (or the error) does not pickle
            results.send((None, RuntimeError(f"{type(exc).__name__}: {exc}"), ""))


def _context() -> Any:
    import multiprocessing
    import threading

    import numpy  # noqa: F401 - loaded once here, so forked workers start with it
    import orjson  # noqa: F401

    # fork: workers inherit the loaded modules (~0.1 s each otherwise). Not when other
    # threads run (forking them can deadlock), nor where there is no fork: the default.
    single_threaded = threading.active_count() == 1
    method = "fork" if single_threaded and "fork" in multiprocessing.get_all_start_methods() else None
    return multiprocessing.get_context(method)


def run_in_threads(
    jobs: list[Job], work: Callable[[Job], Any], *, workers: int, ordered: bool = True
) -> Iterator[tuple[Job, Callable[[], Any]]]:
    """Run ``work(job)`` for each job in ``workers`` threads (I/O-bound work); yield as above.

    ``ordered`` False: yield each job as soon as its work ends (a job's ``get`` then returns
    at once), so a caller can write it while the jobs before it still wait.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))), initializer=_hold_signals)
    try:
        futures = {pool.submit(work, job): job for job in jobs}
        for future in futures if ordered else as_completed(futures):
            yield futures[future], future.result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _hold_signals() -> None:
    """Keep SIGINT and SIGTERM from a worker thread: the kernel then gives them to the main
    thread, whose ``files.signals_held`` can hold them (a thread's mask is its own)."""
    import signal

    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


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
