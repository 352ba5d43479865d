"""Serve: receive the API's callbacks over HTTP, store them durably, convert them off the request path.

An ASGI application (Starlette) for uvicorn, from the optional extra
``midiexport[serve]``. A callback is answered only after its raw body is on disk
(``io.receiver``): 200 then means it survives a crash. Conversion runs in worker
processes (``ConversionPool``); the request never waits for it. A worker that dies
(SIGKILL, the out-of-memory killer) costs the callback it was converting: that one is
logged as failed and converted again at the next start; a new worker takes the rest.
On start, bodies stored but not yet handled (a crash, a lost worker, a full queue at
shutdown) are converted first.

Answers: 200 stored (or a repeat), 400 not JSON or no task id, 401 unsigned, wrongly
signed or replayed (when a key is set), 404 unknown path, 405 wrong method, 413 body
over the limit, 415 not JSON, 503 with Retry-After when the queue is full. GET /healthz:
200 "ok", or 503 "not ready" while no conversion worker can start. One
structured log line per request (task id, outcome, status, duration), never the key,
the signature or the body. A report line that cannot be appended (``ServeOptions.report``)
is one log line; conversions go on. A name holding bytes that are not UTF-8 (an output
folder named so) is written in the log, the report and the outcome marker with each such
byte as ``\\xNN``, as ``--report`` and ``info --json`` spell it (``display.json_text``): every
line stays valid JSON, and no conversion fails for a name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..defaults import DEFAULT_MAX_BODY_BYTES, HEALTH_PATH
from ..display import json_text
from ..errors import MidiExportError, WorkerLost, internal_error
from ..io import files
from ..io.receiver import DEFAULT_WINDOW_S, CallbackStore, SignatureError, check_signature, done_path
from ..model import Record
from ..options import ConvertOptions
from ..protocol import callback_task_id, is_separation_callback
from . import naming
from .render import render_record
from .runner import WorkerPool, raising

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

LOG = logging.getLogger("midiexport.serve")
DEFAULT_QUEUE = 1024  # callbacks waiting for conversion before new ones get 503
RETRY_AFTER_S = 5  # told to the API when the queue is full: it retries callbacks
IN_FLIGHT_PER_WORKER = 2  # conversions handed to each worker at once
CONVERSION_NICENESS = 10  # workers yield the CPU to the request path: answers first, conversions after
MAX_NICENESS = 19  # the lowest CPU priority (POSIX setpriority)
SHUTDOWN_GRACE_S = 30.0  # on SIGTERM: how long running conversions may finish; the rest stays backlog
JSON_TYPES = ("application/json", "text/json")  # and any "+json" type


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How ``midiexport serve`` runs: where files go, the key, the limits. Sizes in bytes."""

    out_dir: Path
    path: str = "/callback"
    hmac_key: str | None = None
    window_s: float = DEFAULT_WINDOW_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    queue_size: int = DEFAULT_QUEUE
    workers: int = 1
    report: Path | None = None
    options: ConvertOptions = field(default_factory=ConvertOptions)

    def __post_init__(self) -> None:
        if self.hmac_key == "":  # a signature made with an empty key is one anyone can make
            raise ValueError("hmac_key is empty: give the webhook key, or None to accept unsigned callbacks")
        if self.path == HEALTH_PATH:  # the health route would answer its GET, and its POST nothing
            raise ValueError(f"path {self.path} is the health route; give the callbacks another path")

    def __repr__(self) -> str:  # never show the key
        return f"ServeOptions(out_dir={str(self.out_dir)!r}, path={self.path!r}, hmac_key=<hidden>)"


class _Refused(Exception):
    """A request answered with an error status; ``outcome`` names why in the log."""

    def __init__(self, status: int, outcome: str, task_id: str | None = None) -> None:
        super().__init__(outcome)
        self.status, self.outcome, self.task_id = status, outcome, task_id


class GroupCommit:
    """Flush stored bodies to the disk in rounds: one round covers every body written before it began.

    A request waits for the round after its write; while one round runs, the next
    gathers. Throughput then grows with concurrency instead of paying two fsyncs per
    request (measured here: ~20 ms a request when each flushed alone).
    """

    def __init__(self) -> None:
        self._batch: list[Path] = []
        self._waiter: asyncio.Future[None] | None = None
        self._running: asyncio.Task[None] | None = None

    async def durable(self, path: Path) -> None:
        """Return once ``path`` and its name are on the disk. Raises OutputError."""
        self._batch.append(path)
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        waiter = self._waiter
        if self._running is None:
            self._running = asyncio.ensure_future(self._rounds())
        await asyncio.shield(waiter)

    async def _rounds(self) -> None:
        from starlette.concurrency import run_in_threadpool

        try:
            while self._batch:
                batch, waiter = self._batch, self._waiter
                self._batch, self._waiter = [], None
                assert waiter is not None
                try:
                    await run_in_threadpool(files.make_durable, batch)
                except MidiExportError as exc:
                    waiter.set_exception(exc)
                else:
                    waiter.set_result(None)
        finally:
            self._running = None


class ConversionPool:
    """The runner's WorkerPool, run by a thread of its own: ``submit`` returns an asyncio future.

    Why the runner's pool and not ProcessPoolExecutor: there one worker killed (SIGKILL,
    out of memory) breaks the whole executor, every later conversion fails until a
    restart, and one killed half-way through sending its result leaves the executor's
    reader waiting for ever (Python 3.11). In WorkerPool each worker has its own pipes:
    a death costs the job it was on (WorkerLost) and a new worker takes the next ones.

    Why a thread: WorkerPool waits with blocking calls (for an answer, a worker's
    death), which the event loop must not make. This thread alone touches the pool; it
    waits on the workers' pipes and on a wake-up pipe written when a job arrives, and
    settles each future on the loop (``call_soon_threadsafe``). Linux sends a worker its
    parent-death signal when the *thread* that started it ends: the thread closes the
    pool before it ends, so no worker is killed early and none outlives the server.

    Why spawn: uvicorn and Starlette's thread pool run threads, and fork copies locks
    another thread may hold (the child can deadlock); a spawned worker starts a fresh
    interpreter and gets only its two pipes, not the listening socket. It costs per
    worker ~0.1 s to start and ~0.06 s of imports at its first conversion (measured
    here, 2 cores), at the server's start (before the first request) and after a death.
    Not forkserver: its workers are children of the fork server, so the parent checks
    of ``start_worker`` (PR_SET_PDEATHSIG, getppid) would watch the wrong process.
    """

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.size = max(1, workers)
        self._context = multiprocessing.get_context("spawn")
        # Workers run this much below the server (MAX_NICENESS at most): answers first.
        self._niceness = min(os.getpriority(os.PRIO_PROCESS, 0) + CONVERSION_NICENESS, MAX_NICENESS)
        self._inbox: deque[tuple[tuple[Any, ...], asyncio.Future[Any]] | None] = deque()  # None: stop
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        # A daemon: an exit that skipped close() never waits for it (the workers die with the process).
        self._thread = threading.Thread(target=self._run, name="midiexport-conversions", daemon=True)
        self._failure: str | None = None
        self._closed = False
        self._unstarted = 0  # WorkerPool.unstarted_losses, copied by the thread (an int: read safely)

    def start(self) -> None:
        """Start the thread (workers start with the first jobs)."""
        self._thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``function(*args)`` in a worker; return the future of its result (or its error, or WorkerLost).

        Call from the event loop. ``function`` and ``args`` must pickle.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            future.set_exception(RuntimeError(self._failure))
            return future
        self._inbox.append(((self._niceness, function, args), future))
        self._wake()
        return future

    def not_ready(self) -> str | None:
        """Return why no conversion can run now (the thread stopped, no worker could start), else None."""
        if self._failure is not None:
            return self._failure
        if not self._thread.is_alive():
            return "conversions stopped; restart the server"
        if self._unstarted:
            return (f"no conversion worker could be started ({self._unstarted} ended before their first answer); "
                    "callbacks are still stored, and converted once a worker starts")  # fmt: skip
        return None

    def close(self) -> None:
        """Stop the workers (busy ones get SIGTERM) and the thread; futures not settled stay so. Idempotent."""
        if self._closed:
            return
        if self._thread.is_alive():
            self._inbox.append(None)
            self._wake()
            self._thread.join()
        self._closed = True
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"!")
        except BlockingIOError:  # the pipe is full of wake-ups: the thread will look anyway
            pass

    def _run(self) -> None:
        pool = WorkerPool(_in_worker, self.size, context=self._context)
        waiting: dict[int, asyncio.Future[Any]] = {}
        try:
            while True:
                for ticket in pool.ready(wake=self._wake_read):
                    _settle(waiting.pop(ticket), partial(pool.result, ticket))
                try:
                    os.read(self._wake_read, 4096)
                except BlockingIOError:
                    pass
                while self._inbox:
                    item = self._inbox.popleft()
                    if item is None:
                        return
                    job, future = item
                    waiting[pool.submit(job)] = future
                self._unstarted = pool.unstarted_losses
        except Exception as exc:  # noqa: BLE001 - a bug, or no process can start: say so, fail what waits
            self._failure = f"conversions stopped: {type(exc).__name__}: {exc}; restart the server"
            LOG.error("conversions stopped", extra={"fields": {"outcome": self._failure}})
            queued = [item[1] for item in self._inbox if item is not None]
            for future in [*waiting.values(), *queued]:  # their bodies stay on disk: converted at the next start
                _settle(future, raising(RuntimeError(self._failure)))
        finally:
            pool.close()


def _settle(future: asyncio.Future[Any], get: Callable[[], Any]) -> None:
    """Hand the result ``get`` returns (or raises) to ``future``, on its event loop (from any thread)."""
    try:
        value, error = get(), None
    except Exception as exc:  # noqa: BLE001 - the job's own error, raised where its future is awaited
        value, error = None, exc

    def apply() -> None:
        if future.done():  # cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    try:
        future.get_loop().call_soon_threadsafe(apply)
    except RuntimeError:  # the loop is closed: the server has stopped, nobody waits
        pass


def _in_worker(job: tuple[int, Callable[..., Any], tuple[Any, ...]]) -> Any:
    """Run one job in a conversion worker, first lowering the worker's CPU priority to ``niceness``.

    Set absolutely, so doing it for every job changes nothing after the first (os.nice adds up).
    """
    niceness, function, args = job
    if os.getpriority(os.PRIO_PROCESS, 0) < niceness:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    return function(*args)


class Converter:
    """Conversions in worker processes: new callbacks first, then the backlog found at start."""

    def __init__(self, settings: ServeOptions, pool: ConversionPool) -> None:
        self.settings, self.pool = settings, pool
        self.waiting: deque[Path] = deque()
        self.backlog: deque[Path] = deque()
        self.running: set[asyncio.Future[dict[str, Any]]] = set()
        self.counts = {"stored": 0, "repeats": 0, "converted": 0, "failed": 0}
        self.probe: asyncio.Future[Any] | None = None  # a no-op job sent by /healthz while not ready

    async def start_workers(self) -> None:
        """Start every worker process now, so no request waits for one to start."""
        # A worker lost meanwhile is replaced with the next job: the server starts all the same.
        await asyncio.gather(*(self.pool.submit(int) for _ in range(self.pool.size)), return_exceptions=True)

    def not_ready(self) -> str | None:
        """Return why conversions cannot run now, else None; while not ready, try to start a worker again."""
        reason = self.pool.not_ready()
        if reason is not None and not self.running and (self.probe is None or self.probe.done()):
            self.probe = self.pool.submit(int)  # its answer makes the pool ready again
            self.probe.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
        return reason

    @property
    def full(self) -> bool:
        return len(self.waiting) >= self.settings.queue_size

    def submit(self, raw_path: Path) -> None:
        self.waiting.append(raw_path)
        self.pump()

    def pump(self) -> None:
        limit = self.pool.size * IN_FLIGHT_PER_WORKER
        while len(self.running) < limit and (self.waiting or self.backlog):
            raw_path = (self.waiting or self.backlog).popleft()
            future = self.pool.submit(handle_stored, str(raw_path), str(self.settings.out_dir), self.settings.options)
            self.running.add(future)
            future.add_done_callback(partial(self._finished, raw_path))

    def _finished(self, raw_path: Path, future: asyncio.Future[dict[str, Any]]) -> None:
        self.running.discard(future)
        try:
            if not future.cancelled():
                error = future.exception()
                outcome = _failed(raw_path, error) if error else future.result()
                self.counts["failed" if outcome.get("outcome") == "failed" else "converted"] += 1
                LOG.info("converted", extra={"fields": outcome})
                self._report(outcome)
        finally:  # whatever happened above, the next callbacks are handed out
            self.pump()

    def _report(self, outcome: dict[str, Any]) -> None:
        """Append ``outcome`` to the report; a report that cannot take it costs one log line, not the work."""
        try:
            _append_report(self.settings.report, outcome)
        except OSError as exc:
            why = f"cannot append to the report {self.settings.report}: {exc.strerror or exc}"
            fields = {"task_id": outcome.get("task_id"), "callback": outcome.get("callback"), "outcome": why}
            LOG.error("report not written", extra={"fields": fields})

    async def drain(self, grace_s: float) -> None:
        """Wait up to ``grace_s`` for running conversions; what is left stays on disk as backlog."""
        self.waiting.clear()
        self.backlog.clear()
        if self.running:
            await asyncio.wait(set(self.running), timeout=grace_s)


def _failed(raw_path: Path, error: BaseException) -> dict[str, Any]:
    """The outcome of a conversion that ended without one: its worker died, or a bug."""
    if isinstance(error, WorkerLost):
        how = error.how if error.signal else "ended"  # said without the exit status
        # Its .mid may be written already (the worker died before its answer): the next
        # conversion keeps that file rather than write a second one (_write_new).
        message = (f"its worker process {how} before the conversion ended; the callback is kept "
                   "and converted again when the server next starts")  # fmt: skip
    else:
        message = internal_error(error)  # as the command line says a bug
    return {"task_id": raw_path.parent.name, "callback": raw_path.name, "outcome": "failed", "error": message,
            "files": []}  # fmt: skip


def handle_stored(raw_path: str, out_dir: str, options: ConvertOptions) -> dict[str, Any]:
    """Convert one stored callback body (in a worker process); write its outcome marker; return it.

    Idempotent: a body already handled returns its stored outcome; a .mid already
    written (a crash before the marker) is kept.
    """
    import orjson

    raw, done = Path(raw_path), done_path(Path(raw_path))
    if done.exists():
        return dict(orjson.loads(done.read_bytes()))
    outcome: dict[str, Any] = json_text(_convert_body(raw, Path(out_dir), options))  # paths: valid UTF-8
    files.write_atomic(done, orjson.dumps(outcome), overwrite=True, durable=True)
    return outcome


def _convert_body(raw: Path, out_dir: Path, options: ConvertOptions) -> dict[str, Any]:
    import orjson

    from ..stages.normalize import normalize_payload

    body = raw.read_bytes()
    payload = orjson.loads(body)
    task_id = callback_task_id(payload) or raw.parent.name
    outcome: dict[str, Any] = {"task_id": task_id, "callback": raw.name}
    if is_separation_callback(payload):
        return {**outcome, "outcome": "separation", "files": []}
    variant = "" if CallbackStore(out_dir).first_body(raw) else f"-{raw.stem[:8]}"  # beside the first, never over it
    try:
        records = normalize_payload(payload, source=f"callback {task_id}")
    except MidiExportError as exc:
        return {**outcome, "outcome": "failed", "error": str(exc), "files": []}
    written: list[str] = []
    errors: list[str] = []
    notes = 0
    # The naming rule of convert and fetch (``files.NamePlanner``): records named alike get
    # -2, -3; a record that failed once read keeps its claim (as ``Destination.reserve``
    # claims it for convert), so the others' names do not depend on which failed, and the
    # callback converted again (a restart that resumes it) writes the mended one under its
    # own name, not over another's. One planner both claims and names the writes.
    planner = files.NamePlanner()
    for index, record in enumerate(records):
        stem, values = _callback_stem(task_id, record, options, index=index, several=len(records) > 1, variant=variant)
        rendered = render_record(record, options, stem=stem, values=values)
        if rendered.error is not None:
            errors.append(str(rendered.error))
            if rendered.stem:  # read, then failed: its name is claimed all the same, as convert does
                planner.claim(out_dir, rendered.stem)
            continue
        notes += rendered.notes
        for output in rendered.files:
            written.append(
                str(_write_new(planner, out_dir, rendered.stem + output.suffix, output.extension, output.data))
            )
    result = "converted" if written else "failed"
    return {**outcome, "outcome": result, "files": written, "notes": notes, "errors": errors}


def _callback_stem(
    task_id: str, record: Record, options: ConvertOptions, *, index: int, several: bool, variant: str
) -> tuple[str, dict[str, str | None] | None]:
    """Name a callback's record, then its name-template fields (None without ``options.name``).

    By default the task id (``-2`` for a second record); with ``options.name``, the
    template, whose fields are those of ``fetch`` (``stem`` is the task id, ``record``
    the record's number when the callback holds several). ``variant`` marks a later,
    different body of the task.
    """
    stem = files.safe_name(task_id, fallback="task") + variant + (f"-{index + 1}" if index else "")
    if options.name is None:
        return stem, None
    number = str(index + 1) if several else ""
    named, values = naming.name_record(options.name, record, fallback=stem, stem=task_id, number=number)
    return named + variant, values


def _write_new(planner: files.NamePlanner, folder: Path, stem: str, extension: str, data: bytes) -> Path:
    """Write a file that replaces none, under the next name ``planner`` hands out for ``stem``.

    One naming rule with convert and fetch (``files.NamePlanner``: ``stem``, then
    ``stem-2``, ``stem-3``..., compared case-insensitively). A name taken on disk by
    other bytes passes on to the next one; one taken by the same bytes is this file,
    written before a crash that came before its outcome marker: kept. Two tasks that a
    name template names alike thus both keep their file, and a conversion done again
    (the same names claimed in the same order) writes nothing twice.
    """
    while True:
        candidate = planner.claim(folder, stem, extension)
        try:
            files.write_atomic(candidate, data)
            return candidate
        except files.FileExists:
            if candidate.read_bytes() == data:
                return candidate


def _append_report(report: Path | None, outcome: dict[str, Any]) -> None:
    if report is None:
        return
    import orjson

    with open(report, "ab") as stream:  # one write per line: appends from one process do not interleave
        stream.write(orjson.dumps(outcome) + b"\n")


def create_app(settings: ServeOptions, pool: ConversionPool) -> Starlette:
    """Return the ASGI application: POST ``settings.path`` and GET /healthz."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.routing import Route

    store = CallbackStore(settings.out_dir)
    converter = Converter(settings, pool)
    commit = GroupCommit()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await converter.start_workers()  # not on the first request's path
        swept = store.sweep()
        if swept:
            LOG.info("swept", extra={"fields": {"outcome": "temporary files of a killed run removed", "count": swept}})
        converter.backlog.extend(store.backlog())
        if converter.backlog:
            LOG.info("backlog", extra={"fields": {"outcome": "backlog", "count": len(converter.backlog)}})
        converter.pump()
        yield
        await converter.drain(grace_s=SHUTDOWN_GRACE_S)
        await run_in_threadpool(pool.close)  # before uvicorn re-raises SIGTERM: workers end here, not killed

    async def callback(request: Request) -> Response:
        return await _logged(request, lambda: _receive(request, settings, store, converter, commit))

    async def healthz(request: Request) -> Response:
        from starlette.responses import JSONResponse

        waiting = len(converter.waiting) + len(converter.backlog)
        counts = {"waiting": waiting, "running": len(converter.running), **converter.counts}
        reason = converter.not_ready()
        if reason is not None:  # 503: a load balancer or the operator sees that nothing converts
            return JSONResponse({"status": "not ready", "reason": reason, **counts}, status_code=503)
        return JSONResponse({"status": "ok", **counts})

    routes = [Route(settings.path, callback, methods=["POST"]), Route(HEALTH_PATH, healthz, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


async def _logged(request: Request, handle: Any) -> Response:
    from starlette.responses import JSONResponse

    started = time.perf_counter()
    try:
        status, outcome, task_id = await handle()
    except _Refused as refused:
        status, outcome, task_id = refused.status, refused.outcome, refused.task_id
    fields = {"method": request.method, "path": request.url.path, "status": status, "task_id": task_id,
              "outcome": outcome, "ms": round((time.perf_counter() - started) * 1000, 2)}  # fmt: skip
    LOG.info("request", extra={"fields": fields})
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"status": status, "outcome": outcome, "task_id": task_id}, status_code=status, headers=headers)


async def _receive(
    request: Request, settings: ServeOptions, store: CallbackStore, converter: Converter, commit: GroupCommit
) -> tuple[int, str, str | None]:
    from starlette.concurrency import run_in_threadpool

    body = await _read_body(request, settings.max_body_bytes)
    task_id = _task_id(body)
    if settings.hmac_key is not None:
        timestamp, signature = request.headers.get("x-webhook-timestamp"), request.headers.get("x-webhook-signature")
        try:
            check_signature(
                settings.hmac_key, task_id, timestamp, signature, now_s=time.time(), window_s=settings.window_s
            )
        except SignatureError as exc:
            raise _Refused(401, str(exc), task_id) from None
    if converter.full:
        raise _Refused(503, "queue full", task_id)
    stored = await run_in_threadpool(store.store, task_id, body)
    await commit.durable(stored.path)  # a repeat too: the first copy may still be on its way to the disk
    if stored.repeat:
        converter.counts["repeats"] += 1
        return 200, "repeat", task_id
    converter.counts["stored"] += 1
    converter.submit(stored.path)
    return 200, "stored (variant)" if stored.variant else "stored", task_id


async def _read_body(request: Request, limit: int) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSON_TYPES and not kind.endswith("+json"):
        raise _Refused(415, "not JSON (Content-Type)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _task_id(body: bytes) -> str:
    import orjson

    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Refused(400, "not valid JSON") from None
    task_id = callback_task_id(payload)
    if task_id is None:
        raise _Refused(400, "no task id (task_id, data.task_id, taskId or data.taskId)")
    return task_id


def run_server(settings: ServeOptions, *, host: str, port: int, announce: Any = None) -> None:
    """Listen on ``host``:``port`` (0 picks a free port) until SIGTERM or Ctrl-C.

    ``settings.out_dir`` must exist: the caller makes it (the command line does, before it
    checks a ``--report`` that may lie inside it). ``announce(url)`` is called once the
    socket is bound. Raises OSError when the address cannot be bound.
    """
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    if announce is not None:
        bound = sock.getsockname()[1]
        announce(f"http://{host if ':' not in host else f'[{host}]'}:{bound}{settings.path}")
    # Workers start before the first request (lifespan) and end with the server: a
    # conversion still running after the grace time is stopped and stays backlog.
    pool = ConversionPool(settings.workers)
    pool.start()
    try:
        app = create_app(settings, pool)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S))  # fmt: skip
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        pool.close()


class LogFormatter(logging.Formatter):
    """One JSON object a line: the time, the event, and its fields (never a key or a body)."""

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        fields = getattr(record, "fields", {})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        return orjson.dumps(json_text({"time": stamp, "event": record.getMessage(), **fields})).decode()
