"""Fetch tasks: the job of ``midiexport fetch``: download a task, convert it, keep the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..defaults import (
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_TIMEOUT_S,
    MAX_CONCURRENCY,
)
from ..errors import FetchError
from ..io import files
from ..io.client import MUSIC_RECORD_PATH, ApiClient, ClientSettings, Progress
from ..options import ConvertOptions
from ..stages.convert import song_title
from ..stages.normalize import normalize_payload
from . import naming
from .render import render_record
from .runner import COMPANION, Destination, Pending, Rendered, raising, run_in_threads


@dataclass(frozen=True)
class FetchOptions:
    """How ``midiexport fetch`` asks the API. Times in seconds.

    ``concurrency``: tasks asked at once, kept within 1..MAX_CONCURRENCY whatever is asked.
    """

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    wait: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    music_task: str | None = None
    save_json: bool = True
    concurrency: int = DEFAULT_CONCURRENCY

    def __post_init__(self) -> None:
        object.__setattr__(self, "concurrency", max(1, min(self.concurrency, MAX_CONCURRENCY)))

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
    A task given twice is fetched once (``unique_tasks``). When every task's names are
    known before its download (``plan_task``: the default), the tasks whose files all exist
    come first, then each task as soon as its download ends, so a finished task is written
    (and kept by Ctrl-C) while one before it is still pending. Names from the downloaded
    song (``music_task``, a template of the song's fields, ``split``) are claimed in the
    order given, so each task waits for the ones before it.
    """
    task_ids = unique_tasks(task_ids)[0]
    settings = settings or ClientSettings(api_key=fetch.api_key, base_url=fetch.base_url)
    client = ApiClient(settings)
    try:
        music: dict[str, Any] | None = None
        if fetch.music_task:
            try:
                music = client.get_record(MUSIC_RECORD_PATH, fetch.music_task)
            except FetchError as exc:
                yield Pending(f"music task {fetch.music_task}", raising(exc), destination)
        wait = partial(client.wait_for_record, wait=fetch.wait, timeout_s=fetch.timeout_s,
                       poll_interval_s=fetch.poll_interval_s, progress=progress)  # fmt: skip
        plans = {task_id: plan_task(task_id, fetch, options, destination) for task_id in task_ids}
        done = {task_id: plans[task_id][1] for task_id in task_ids if destination.finished(plans[task_id][1])}
        todo = [task_id for task_id in task_ids if task_id not in done]
        planned = all(paths is not None for _, paths in plans.values())  # names are planned for all or for none
        for task_id, paths in done.items():  # finished: its paths are planned (``or``: for mypy)
            yield Pending.skip(f"task {task_id}", paths or (), destination)
        for task_id, get_answer in run_in_threads(todo, wait, workers=fetch.concurrency, ordered=not planned):
            stem, paths = plans[task_id]
            yield Pending(f"task {task_id}", _fetched(task_id, get_answer, music, fetch.save_json, options),
                          destination, planned=paths, stem=stem)  # fmt: skip
    finally:
        client.close()


def unique_tasks(task_ids: Sequence[str]) -> tuple[list[str], int]:
    """Return the task ids in order, each once, and how many were given again (fetched once)."""
    unique = list(dict.fromkeys(task_ids))
    return unique, len(task_ids) - len(unique)


def plan_task(
    task_id: str, fetch: FetchOptions, options: ConvertOptions, destination: Destination
) -> tuple[str | None, tuple[Path, ...] | None]:
    """Name a task's files before downloading it, when the task id alone tells; else (None, None).

    By default a task is named by its id (the music task's title names it with
    ``music_task``: not known before the download). A name template is planned when
    its fields are ``task_id`` and ``stem`` only. Not with ``split`` (one file per
    instrument inside). The raw answer (``save_json``) is one of the files.
    """
    if options.split or (options.name is None and fetch.music_task):
        return None, None
    stem = naming.place_name(options.name, files.safe_name(task_id), fallback=task_id, task_id=task_id, stem=task_id)
    if stem is None:
        return None, None
    return stem, destination.plan(None, stem, COMPANION if fetch.save_json else None)


def _fetched(
    task_id: str, get_answer: Callable[[], Any], music: dict[str, Any] | None, save_json: bool, options: ConvertOptions
) -> Callable[[], list[Rendered]]:
    def get() -> list[Rendered]:
        answer = get_answer()
        payload = {"midiRecord": answer, "musicRecord": music} if music is not None else answer
        return render_answer(task_id, payload, save_json=save_json, options=options)

    return get


def render_answer(task_id: str, payload: Any, *, save_json: bool, options: ConvertOptions) -> list[Rendered]:
    """Convert a downloaded answer (or a saved envelope holding it) as ``fetch`` does; keep it as JSON.

    Files are named by the song's title when the payload carries the music record,
    else by ``task_id``; ``save_json`` keeps ``payload`` itself beside the first .mid.
    """
    import orjson

    keep = orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n" if save_json else None
    records = normalize_payload(payload, source=f"task {task_id}")
    rendered = []
    for record in records:
        stem = files.safe_name(song_title(record), fallback=task_id)
        values = None
        if options.name is not None:
            stem, values = naming.name_record(options.name, record, fallback=stem, stem=task_id, number="")
        rendered.append(render_record(record, options, stem=stem, keep=keep, values=values))
    return rendered
