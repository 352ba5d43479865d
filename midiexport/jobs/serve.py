"""Serve: receive the API's callbacks over HTTP, store them durably, convert them off the request path.

An ASGI application (Starlette) for uvicorn, from the optional extra
``midiexport[serve]``. A callback is answered only after its raw body is on disk
(``io.receiver``): 200 then means it survives a crash. Conversion runs in worker
processes; the request never waits for it. On start, bodies stored but not yet
handled (a crash, a full queue at shutdown) are converted first.

Answers: 200 stored (or a repeat), 400 not JSON or no task id, 401 unsigned, wrongly
signed or replayed (when a key is set), 404 unknown path, 405 wrong method, 413 body
over the limit, 415 not JSON, 503 with Retry-After when the queue is full. One
structured log line per request (task id, outcome, status, duration), never the key,
the signature or the body.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..defaults import DEFAULT_MAX_BODY_BYTES
from ..errors import MidiExportError
from ..io import files
from ..io.receiver import DEFAULT_WINDOW_S, CallbackStore, SignatureError, check_signature, done_path
from ..model import Record
from ..options import ConvertOptions
from ..protocol import callback_task_id, is_separation_callback
from . import naming
from .render import render_record
from .runner import start_worker

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

LOG = logging.getLogger("midiexport.serve")
DEFAULT_QUEUE = 1024  # callbacks waiting for conversion before new ones get 503
RETRY_AFTER_S = 5  # told to the API when the queue is full: it retries callbacks
IN_FLIGHT_PER_WORKER = 2  # conversions handed to each worker at once
CONVERSION_NICENESS = 10  # workers yield the CPU to the request path: answers first, conversions after
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


class Converter:
    """Conversions in worker processes: new callbacks first, then the backlog found at start."""

    def __init__(self, settings: ServeOptions, pool: Executor) -> None:
        self.settings, self.pool = settings, pool
        self.waiting: deque[Path] = deque()
        self.backlog: deque[Path] = deque()
        self.running: set[asyncio.Future[dict[str, Any]]] = set()
        self.counts = {"stored": 0, "repeats": 0, "converted": 0, "failed": 0}

    async def start_workers(self) -> None:
        """Start every worker process now, so no request waits for one to start."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self.pool, int) for _ in range(max(1, self.settings.workers))))

    @property
    def full(self) -> bool:
        return len(self.waiting) >= self.settings.queue_size

    def submit(self, raw_path: Path) -> None:
        self.waiting.append(raw_path)
        self.pump()

    def pump(self) -> None:
        limit = max(1, self.settings.workers) * IN_FLIGHT_PER_WORKER
        loop = asyncio.get_running_loop()
        while len(self.running) < limit and (self.waiting or self.backlog):
            raw_path = (self.waiting or self.backlog).popleft()
            future = loop.run_in_executor(
                self.pool, handle_stored, str(raw_path), str(self.settings.out_dir), self.settings.options
            )
            self.running.add(future)
            future.add_done_callback(self._finished)

    def _finished(self, future: asyncio.Future[dict[str, Any]]) -> None:
        self.running.discard(future)
        if not future.cancelled():
            error = future.exception()
            outcome = {"outcome": "failed", "error": f"internal error: {error!r}"} if error else future.result()
            self.counts["failed" if outcome.get("outcome") == "failed" else "converted"] += 1
            LOG.info("converted", extra={"fields": outcome})
            _append_report(self.settings.report, outcome)
        self.pump()

    async def drain(self, grace_s: float) -> None:
        """Wait up to ``grace_s`` for running conversions; what is left stays on disk as backlog."""
        self.waiting.clear()
        self.backlog.clear()
        if self.running:
            await asyncio.wait(set(self.running), timeout=grace_s)


def handle_stored(raw_path: str, out_dir: str, options: ConvertOptions) -> dict[str, Any]:
    """Convert one stored callback body (in a worker process); write its outcome marker; return it.

    Idempotent: a body already handled returns its stored outcome; a .mid already
    written (a crash before the marker) is kept.
    """
    import orjson

    raw, done = Path(raw_path), done_path(Path(raw_path))
    if done.exists():
        return dict(orjson.loads(done.read_bytes()))
    outcome = _convert_body(raw, Path(out_dir), options)
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
    for index, record in enumerate(records):
        stem, values = _callback_stem(task_id, record, options, index=index, several=len(records) > 1, variant=variant)
        rendered = render_record(record, options, stem=stem, values=values)
        if rendered.error is not None:
            errors.append(str(rendered.error))
            continue
        notes += rendered.notes
        for output in rendered.files:
            written.append(str(_write_new(out_dir / (rendered.stem + output.suffix + output.extension), output.data)))
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
    values = naming.record_values(record, stem=task_id, number=str(index + 1) if several else "")
    return naming.fill(options.name, fallback=stem, **values) + variant, values


def _write_new(path: Path, data: bytes) -> Path:
    """Write a file that replaces none: an existing one with other bytes moves this to ``-2``, ``-3``...

    An existing one with the same bytes is this file, written before a crash that came
    before its outcome marker: kept. Two tasks that a name template names alike thus
    both keep their file, and a conversion done again writes nothing twice.
    """
    for count in itertools.count(1):
        candidate = path if count == 1 else path.with_name(f"{path.stem}-{count}{path.suffix}")
        try:
            files.write_atomic(candidate, data)
            return candidate
        except files.FileExists:
            if candidate.read_bytes() == data:
                return candidate
    raise AssertionError("unreachable")  # pragma: no cover - count() never ends


def _append_report(report: Path | None, outcome: dict[str, Any]) -> None:
    if report is None:
        return
    import orjson

    with open(report, "ab") as stream:  # one write per line: appends from one process do not interleave
        stream.write(orjson.dumps(outcome) + b"\n")


def create_app(settings: ServeOptions, pool: Executor) -> Starlette:
    """Return the ASGI application: POST ``settings.path`` and GET /healthz."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
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

    async def callback(request: Request) -> Response:
        return await _logged(request, lambda: _receive(request, settings, store, converter, commit))

    async def healthz(request: Request) -> Response:
        from starlette.responses import JSONResponse

        waiting = len(converter.waiting) + len(converter.backlog)
        return JSONResponse({"status": "ok", "waiting": waiting, "running": len(converter.running), **converter.counts})

    routes = [Route(settings.path, callback, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
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


def check_host(host: str, *, hmac_key: str | None, insecure_public: bool) -> None:
    """Raise ValueError when the server would listen beyond loopback without a key."""
    import ipaddress

    if hmac_key is not None or insecure_public or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"listening on {host} without a webhook key lets anyone post; set --hmac-key "
            "(or MIDIEXPORT_WEBHOOK_KEY), or pass --insecure-public"
        )


def run_server(settings: ServeOptions, *, host: str, port: int, announce: Any = None) -> None:
    """Listen on ``host``:``port`` (0 picks a free port) until SIGTERM or Ctrl-C.

    ``announce(url)`` is called once the socket is bound. Raises OutputError when the
    output folder cannot be made, OSError when the address cannot be bound.
    """
    import multiprocessing
    import os
    import socket
    from concurrent.futures import ProcessPoolExecutor

    import uvicorn

    settings.out_dir.mkdir(parents=True, exist_ok=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    if announce is not None:
        bound = sock.getsockname()[1]
        announce(f"http://{host if ':' not in host else f'[{host}]'}:{bound}{settings.path}")
    # spawn: uvicorn runs threads, and forking a threaded process can deadlock. Workers
    # start once, before the first request (lifespan), and die with the server.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=max(1, settings.workers),
        mp_context=context,
        initializer=_conversion_worker,
        initargs=(os.getpid(),),
    )
    with pool:
        app = create_app(settings, pool)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S))  # fmt: skip
        uvicorn.Server(config).run(sockets=[sock])


def _conversion_worker(parent_pid: int) -> None:
    import os

    start_worker(parent_pid)
    os.nice(CONVERSION_NICENESS)


class LogFormatter(logging.Formatter):
    """One JSON object a line: the time, the event, and its fields (never a key or a body)."""

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        fields = getattr(record, "fields", {})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        return orjson.dumps({"time": stamp, "event": record.getMessage(), **fields}).decode()
