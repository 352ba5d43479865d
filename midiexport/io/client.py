"""API client: the policies on top of the transport (``http``): retry, poll, give up.

It asks ``GET /api/v1/midi/record-info`` (and the music task's
``/api/v1/generate/record-info``), and POSTs for the endpoints that create tasks,
and hands on the raw JSON answer. What an answer means (pending, "try later",
refused) is ``protocol``'s; this module decides what to do about it:

- Retries use exponential backoff with full jitter, honour ``Retry-After``, and never
  pass the caller's deadline or ``max_attempts``.
- Only idempotent requests are retried blindly. A POST may create a paid task: when
  it was sent and no answer says what became of it (a read timeout, a dropped
  connection, a 500), it is never sent again, and ``UnconfirmedRequest`` says so.
- Polling runs until the deadline: the last wait is shortened so that one last poll
  goes out just before it.
- 422 "recordInfo is null" is retried during ``not_found_grace_s`` (a new task is not
  stored at once), then the task is "not found".
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import protocol
from ..defaults import DEFAULT_BASE_URL, DEFAULT_POLL_INTERVAL_S, DEFAULT_TIMEOUT_S, MAX_ANSWER_BYTES
from ..display import plural
from ..errors import ApiError, FetchError, NetworkError, StillPending, UnconfirmedRequest, say, without_prefix
from ..model import PENDING
from .http import BASE_URL_HINT, TIMEOUT, Answer, Transport, check_api_key, check_base_url

if TYPE_CHECKING:
    import httpx

MIDI_RECORD_PATH = "/api/v1/midi/record-info"
MUSIC_RECORD_PATH = "/api/v1/generate/record-info"
TIMEOUT_HINT = say("raise ", TIMEOUT, " or fetch it later")  # a task still pending at the deadline
LATER_HINT = "try again later"  # a server error or an answer cut short, still so after the retries: passing faults
FINAL_POLL_LEAD_S = 1.0  # the last poll goes out this long before the deadline, so its answer fits
FINAL_POLL_LEAD_SHARE = 0.25  # ... or this share of the poll interval, when that is shorter (tests)


@dataclass(frozen=True)
class ClientSettings:
    """How to reach the API and how patient to be. Times are in seconds.

    ``not_found_grace_s``: just after a task is created, the API answers 422
    "recordInfo is null"; that is only "not found" once this long has passed.
    ``max_answer_bytes``: answers larger than this once decoded are refused.
    """

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    not_found_grace_s: float = 30.0
    max_answer_bytes: int = MAX_ANSWER_BYTES

    def __post_init__(self) -> None:
        check_api_key(self.api_key)
        check_base_url(self.base_url)

    def __repr__(self) -> str:  # never show the key
        return f"ClientSettings(base_url={self.base_url!r}, api_key=<hidden>)"


Progress = Callable[[str, str, float], None]
"""Called as progress(task_id, what is happening, seconds waited so far)."""


@dataclass(frozen=True)
class _Failure:
    """One attempt that gave no usable answer: the error to raise if no later attempt passes.

    ``retry_until``: a time.monotonic() value after which it is not tried again (None:
    do not retry at all).
    """

    error: FetchError
    retry_until: float | None
    after_s: float | None = None


class ApiClient:
    """A connection to the API: ``get_record`` and ``post_json`` with retries, ``wait_for_record`` polls.

    Use as a context manager, or call ``close()``. Thread-safe: one client may serve
    several tasks at once.
    """

    def __init__(self, settings: ClientSettings, *, httpx_transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._closed = threading.Event()  # set by close(): waits end at once
        self._http = Transport(
            settings.api_key, settings.base_url, connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s, max_answer_bytes=settings.max_answer_bytes,
            httpx_transport=httpx_transport,
        )  # fmt: skip

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        self._http.close()

    def get_record(self, path: str, task_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """Return the JSON answer of ``GET path?taskId=task_id``, retrying what may pass.

        ``deadline`` is a time.monotonic() value the retries never pass (default: now
        + DEFAULT_TIMEOUT_S). Raises ApiError for a final error code, NetworkError when
        no usable answer came in time.
        """
        return self._call("GET", path, task_id, deadline, params={"taskId": task_id})

    def post_json(
        self, path: str, body: dict[str, Any], *, task_id: str | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        """POST ``body`` as JSON to ``path`` and return the JSON answer.

        ``task_id`` names the task the request is about in messages (default: the
        body's ``taskId``). Retried only when the server cannot have acted on it (no
        connection; a "try later" code that says it was not carried out). Raises
        UnconfirmedRequest when it was sent and no answer said what became of it (it
        is then never sent again), ApiError for a final error code, NetworkError.
        """
        import orjson

        label = task_id or str(body.get("taskId") or path)
        return self._call("POST", path, label, deadline, json_body=orjson.dumps(body))

    def wait_for_record(
        self,
        task_id: str,
        *,
        wait: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        progress: Progress | None = None,
        path: str = MIDI_RECORD_PATH,
        status: Callable[[dict[str, Any]], str] = protocol.task_status,
    ) -> dict[str, Any]:
        """Return the MIDI record-info answer once the task has ended (or at once, no ``wait``).

        ``path`` and ``status`` poll another record the same way (a separation task:
        ``/api/v1/vocal-removal/record-info`` and ``protocol.separation_status``).
        Polls at 0, ``poll_interval_s``, 2 × ``poll_interval_s``, ... while the task is
        pending, and once more just before ``timeout_s`` (the last wait shortened).
        Raises StillPending (a TaskPending and a NetworkError) when the time runs out
        with the task pending, and what ``get_record`` raises. A
        pending answer is returned as is when not waiting.
        """
        start = time.monotonic()
        deadline = start + timeout_s
        last_poll = deadline - min(FINAL_POLL_LEAD_S, poll_interval_s * FINAL_POLL_LEAD_SHARE)
        polls = 0
        while True:
            answer = self.get_record(path, task_id, deadline=deadline)
            polls += 1
            if status(answer) != PENDING or not wait:
                return answer
            now = time.monotonic()
            if progress:
                progress(task_id, "pending", now - start)
            if now >= last_poll:
                message = say(f"task {task_id}: still pending after {timeout_s:g} s; ", TIMEOUT_HINT)
                raise StillPending(message, task_id=task_id, timeout_s=timeout_s, hint=TIMEOUT_HINT)
            # Polls keep to their schedule from the start, whatever each request took.
            self._sleep(min(start + polls * poll_interval_s, last_poll) - now, task_id)

    def _call(
        self,
        method: str,
        path: str,
        task_id: str,
        deadline: float | None,
        *,
        params: dict[str, str] | None = None,
        json_body: bytes | None = None,
    ) -> dict[str, Any]:
        start = time.monotonic()
        deadline = deadline if deadline is not None else start + DEFAULT_TIMEOUT_S
        for attempt in range(self.settings.max_attempts):
            outcome = self._attempt(method, path, task_id, deadline, start, params, json_body)
            if not isinstance(outcome, _Failure):
                return outcome
            pause = outcome.after_s if outcome.after_s is not None else self._backoff_s(attempt)
            last_try = attempt + 1 == self.settings.max_attempts
            if outcome.retry_until is None or last_try or time.monotonic() + pause > outcome.retry_until:
                raise outcome.error
            self._sleep(pause, task_id)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        path: str,
        task_id: str,
        deadline: float,
        start: float,
        params: dict[str, str] | None,
        json_body: bytes | None,
    ) -> dict[str, Any] | _Failure:
        """Make one request; return the usable body, or the failure and until when to retry it."""
        idempotent = method == "GET"
        try:
            answer = self._http.request(method, path, task_id=task_id, deadline=deadline, params=params,
                                        json_body=json_body)  # fmt: skip
        except NetworkError as failed:
            if failed.sent and not idempotent:
                raise self._unconfirmed(
                    method, path, task_id, without_prefix(failed.message, f"task {task_id}: ")
                ) from failed
            return _Failure(failed, deadline if failed.retry else None)
        body, parsed = _json_body(answer.body)
        if body is None:
            return self._not_the_api(method, path, task_id, answer, deadline, parsed=parsed)
        verdict = protocol.read_code(body, answer.status)
        if verdict.action == protocol.OK:
            return body
        if verdict.action == protocol.NOT_STORED_YET:
            error = ApiError(say(f"task {task_id}: ", verdict.meaning), task_id=task_id, code=verdict.code,
                             http_status=answer.status, api_message=verdict.message)  # fmt: skip
            return _Failure(error, min(deadline, start + self.settings.not_found_grace_s))
        error = ApiError(
            say(f"task {task_id}: ", verdict.meaning, f" ({verdict.code}: {verdict.message or 'no message'})"),
            task_id=task_id, code=verdict.code, http_status=answer.status, api_message=verdict.message,
            hint=protocol.CODE_HINTS.get(verdict.code, ""),
        )  # fmt: skip
        if verdict.action != protocol.RETRY:
            return _Failure(error, None)
        if not idempotent and verdict.code not in protocol.NOT_PROCESSED_CODES:
            raise self._unconfirmed(method, path, task_id, f"the API answered {verdict.code} ({verdict.message})")
        return _Failure(error, deadline, _retry_after_s(answer))

    def _not_the_api(self, method: str, path: str, task_id: str, answer: Answer, deadline: float, *,
                     parsed: bool) -> _Failure:  # fmt: skip
        """The failure of an answer whose body is no JSON object; ``parsed``: it is valid JSON all the same."""
        what = f"HTTP {answer.status}, {_content_kind(answer)}"
        if method != "GET" and answer.status not in protocol.NOT_PROCESSED_CODES:
            raise self._unconfirmed(method, path, task_id, f"the answer was not the API's ({what})")
        hint: str = LATER_HINT
        retry = answer.status in protocol.RETRY_HTTP  # 5xx, 429: passing, whatever the body
        if answer.status >= 500:  # the server (or a proxy before it) failed: not a wrong address
            said = say(f"task {task_id}: the server failed ({what}); ", LATER_HINT)
        elif not parsed and _meant_as_json(answer):  # the API's kind of answer, cut short or garbled: passing
            said = say(f"task {task_id}: the answer was broken: not valid JSON ({what}); ", LATER_HINT)
            retry = retry or answer.status < 300
        else:  # a whole answer of another shape (a web page, JSON that is no record): asking again gives it again
            hint = BASE_URL_HINT
            said = say(f"task {task_id}: the server answered something that is not the API ({what}); ", hint)
        error = NetworkError(said, task_id=task_id, hint=hint)
        return _Failure(error, deadline if retry else None, _retry_after_s(answer))

    def _unconfirmed(self, method: str, path: str, task_id: str, why: str) -> UnconfirmedRequest:
        return UnconfirmedRequest(
            say(f"task {task_id}: {method} {path} was sent, but ", why, "; it may have created a new task (and used "
                "credits), so it was not sent again: look for that task (its callback, or the account's task list) "
                "before asking again"),
            task_id=task_id, method=method, path=path, reason=why,
        )  # fmt: skip

    def _sleep(self, seconds: float, task_id: str) -> None:
        if self._closed.wait(max(0.0, seconds)):
            raise NetworkError(f"task {task_id}: cancelled", task_id=task_id)

    def _backoff_s(self, attempt: int) -> float:
        # Full jitter: spreads retries of concurrent tasks so they do not arrive together.
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_s * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


def _json_body(data: bytes) -> tuple[dict[str, Any] | None, bool]:
    """Return the body's JSON object (None when it is none) and whether it is valid JSON at all; parsed once."""
    import orjson

    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None, False
    return (body if isinstance(body, dict) else None), True


def _meant_as_json(answer: Answer) -> bool:
    """True when a body is meant as JSON: its type says so, or it opens as JSON does (not parsing: cut short)."""
    kind = answer.headers.get("content-type", "").casefold()
    return "json" in kind or answer.body.lstrip()[:1] in (b"{", b"[")


def _content_kind(answer: Answer) -> str:
    kind = answer.headers.get("content-type", "").split(";")[0].strip()
    if not answer.body:
        return "an empty body"
    return f"{kind[:60] or 'unknown content'}, {len(answer.body)} {plural(len(answer.body), 'byte')}"


def _retry_after_s(answer: Answer) -> float | None:
    value = answer.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no advice


def fetch_record(
    task_id: str,
    *,
    api_key: str,
    base_url: str = DEFAULT_BASE_URL,
    wait: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Download one MIDI task's record-info answer (raw JSON), waiting while it is pending.

    Raises ApiError, NetworkError (StillPending, also a TaskPending, for a task pending
    past ``timeout_s``), or ValueError for a key or base URL unfit to send.
    """
    with ApiClient(ClientSettings(api_key=api_key, base_url=base_url)) as client:
        return client.wait_for_record(
            task_id, wait=wait, timeout_s=timeout_s, poll_interval_s=poll_interval_s, progress=progress
        )


def fetch_music_record(task_id: str, *, api_key: str, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """Download a music task's record-info answer (title, tags, duration of its songs).

    Raises ApiError, NetworkError, or ValueError for a key or base URL unfit to send.
    """
    with ApiClient(ClientSettings(api_key=api_key, base_url=base_url)) as client:
        return client.get_record(MUSIC_RECORD_PATH, task_id)
