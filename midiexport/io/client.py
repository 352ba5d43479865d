"""Fetch stage: the HTTP client for the record-info endpoints; knows nothing about MIDI.

It asks ``GET /api/v1/midi/record-info`` (and the music task's
``/api/v1/generate/record-info``) and hands on the raw JSON answer. What it knows is
the API's conventions (PRODUCT.md): the body's ``code``/``msg`` are read before the
HTTP status; some codes mean "try later" (rate limit, maintenance, server error, and
resellers' own numbers for "too many requests"); ``successFlag`` 0 or a running
``midiData`` means "not done yet".

Retries use exponential backoff with full jitter, honour ``Retry-After`` when present,
and never pass the overall deadline. The API key travels only in the Authorization
header: never in a URL, a message or a file; it is not sent over plain http (except
to loopback, for local testing) nor after a redirect to another host.

Every httpx exception is translated here, once, into NetworkError or ApiError.
"""

from __future__ import annotations

import ipaddress
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..defaults import DEFAULT_BASE_URL, DEFAULT_POLL_INTERVAL_S, DEFAULT_TIMEOUT_S
from ..errors import ApiError, FetchError, NetworkError
from ..model import api_int

if TYPE_CHECKING:
    import httpx

MIDI_RECORD_PATH = "/api/v1/midi/record-info"
MUSIC_RECORD_PATH = "/api/v1/generate/record-info"
RETENTION_HINT = "records are kept for 14 days"
MAX_REDIRECTS = 3

# Body codes that mean "try again later". 405/430 are resellers' "too many requests".
RETRY_CODES = frozenset({429, 455, 500, 502, 503, 504, 405, 430})
RETRY_HTTP = frozenset({429, 500, 502, 503, 504})
# What a final body code means, for the one-line message.
CODE_MEANINGS = {
    401: "the API key was rejected; check --api-key or MIDIEXPORT_API_KEY",
    402: "the account has no credits left",
    404: f"not found ({RETENTION_HINT})",
    422: "the request was refused as invalid",
    429: "rate limited: too many requests",
    455: "the API is under maintenance",
    500: "the API had a server error",
}
_RUNNING_STATES = frozenset({"running", "pending", "processing", "queued", "queueing", "generating", "wait"})


@dataclass(frozen=True)
class ClientSettings:
    """How to reach the API and how patient to be. Times are in seconds.

    ``not_found_grace_s``: just after a task is created, the API answers 422
    "recordInfo is null"; that is only "not found" once this long has passed.
    """

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    not_found_grace_s: float = 30.0

    def __post_init__(self) -> None:
        check_base_url(self.base_url)

    def __repr__(self) -> str:  # never show the key
        return f"ClientSettings(base_url={self.base_url!r}, api_key=<hidden>)"


def check_base_url(base_url: str) -> None:
    """Raise ValueError unless the URL is https, or http to a loopback address."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL must look like https://host, got {base_url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"refusing to send the API key over plain http to {parts.hostname}; use https:// (http only for loopback)"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Progress = Callable[[str, str, float], None]
"""Called as progress(task_id, what is happening, seconds waited so far)."""


class ApiClient:
    """A connection to the API: ``get_record`` with retries, ``wait_for_record`` with polling.

    Use as a context manager, or call ``close()``. Thread-safe: one client may serve
    several tasks at once.
    """

    def __init__(self, settings: ClientSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        import httpx

        self.settings = settings
        self._origin = _origin(settings.base_url)
        self._closed = threading.Event()  # set by close(): waits end at once
        self._http = httpx.Client(
            base_url=settings.base_url,
            headers={"Authorization": f"Bearer {settings.api_key}", "Accept": "application/json",
                     "User-Agent": "midiexport"},
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=False,
            transport=transport,
        )  # fmt: skip

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        self._http.close()

    def _sleep(self, seconds: float, task_id: str) -> None:
        if self._closed.wait(seconds):
            raise NetworkError(f"task {task_id}: cancelled", task_id=task_id)

    def get_record(self, path: str, task_id: str, *, deadline: float | None = None) -> dict[str, Any]:
        """Return the JSON answer for ``task_id`` at ``path``, retrying what may pass.

        ``deadline`` is a time.monotonic() value the retries never pass. Raises ApiError
        for a final error code, NetworkError when no usable answer came in time.
        """
        start = time.monotonic()
        deadline = deadline if deadline is not None else start + DEFAULT_TIMEOUT_S
        last: FetchError | None = None
        for attempt in range(self.settings.max_attempts):
            try:
                return self._ask(path, task_id, deadline, waited_s=time.monotonic() - start)
            except _Retry as retry:
                last = retry.error
                pause = retry.after_s if retry.after_s is not None else self._backoff_s(attempt)
                if attempt + 1 == self.settings.max_attempts or time.monotonic() + pause > deadline:
                    break
                self._sleep(pause, task_id)
        assert last is not None
        raise last

    def wait_for_record(
        self,
        task_id: str,
        *,
        wait: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Return the MIDI record-info answer once the task has ended (or at once, no ``wait``).

        Polls every ``poll_interval_s`` while the task is pending, for at most
        ``timeout_s`` in all. Raises NetworkError when the time runs out, and what
        ``get_record`` raises. A pending answer is returned as is when not waiting.
        """
        start = time.monotonic()
        deadline = start + timeout_s
        while True:
            answer = self.get_record(MIDI_RECORD_PATH, task_id, deadline=deadline)
            state = task_state(answer)
            waited_s = time.monotonic() - start
            if state != "pending" or not wait:
                return answer
            if progress:
                progress(task_id, "pending", waited_s)
            if time.monotonic() + poll_interval_s > deadline:
                raise NetworkError(
                    f"task {task_id}: still pending after {waited_s:.0f} s; raise --timeout or fetch it later",
                    task_id=task_id,
                )
            self._sleep(poll_interval_s, task_id)

    def _backoff_s(self, attempt: int) -> float:
        # Full jitter: spreads retries of concurrent tasks so they do not arrive together.
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_s * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    def _ask(self, path: str, task_id: str, deadline: float, *, waited_s: float) -> dict[str, Any]:
        response = self._send(path, task_id, deadline)
        body = _json_body(response)
        if body is None:
            error = NetworkError(
                f"task {task_id}: the server answered something that is not the API "
                f"(HTTP {response.status_code}, {_content_kind(response)}); check --base-url",
                task_id=task_id,
            )
            if response.status_code in RETRY_HTTP or response.status_code < 300:
                raise _Retry(error, _retry_after_s(response))
            raise error
        code = _body_code(body, response.status_code)
        if code == 200 and response.status_code < 300:
            return body
        if code == 200:  # a success body with an error status: trust neither, report the status
            code = response.status_code
        raise self._code_error(task_id, code, response, body, waited_s)

    def _code_error(
        self, task_id: str, code: int, response: httpx.Response, body: dict[str, Any], waited_s: float
    ) -> Exception:
        msg = str(body.get("msg") or "").strip()[:200]
        error = ApiError(
            f"task {task_id}: {_meaning(code, msg)} ({code}: {msg or 'no message'})",
            task_id=task_id, code=code, http_status=response.status_code, api_message=msg,
        )  # fmt: skip
        if code == 422 and "recordinfo is null" in msg.lower():
            if waited_s < self.settings.not_found_grace_s:  # just created: not stored yet
                return _Retry(error, None)
            return ApiError(
                f"task {task_id}: not found ({RETENTION_HINT}; the API says {msg!r})",
                task_id=task_id, code=code, http_status=response.status_code, api_message=msg,
            )  # fmt: skip
        if code in RETRY_CODES or (code == response.status_code and code in RETRY_HTTP):
            return _Retry(error, _retry_after_s(response))
        return error

    def _send(self, path: str, task_id: str, deadline: float) -> httpx.Response:
        import httpx

        url: str = path
        params: dict[str, str] | None = {"taskId": task_id}
        for _ in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NetworkError(f"task {task_id}: no answer before the deadline (--timeout)", task_id=task_id)
            timeout = httpx.Timeout(min(self.settings.read_timeout_s, remaining),
                                    connect=min(self.settings.connect_timeout_s, remaining))  # fmt: skip
            try:
                response = self._http.get(url, params=params, timeout=timeout)
            except httpx.TimeoutException as exc:
                raise _Retry(
                    NetworkError(f"cannot reach {self._host}: no answer within {timeout.read:.3g} s", task_id=task_id),
                    None,
                ) from exc
            except httpx.HTTPError as exc:  # connection refused, reset, DNS, protocol errors
                raise _Retry(NetworkError(
                    f"cannot reach {self._host}: {_describe(exc)}", task_id=task_id), None) from exc  # fmt: skip
            if not response.is_redirect:
                return response
            target = urljoin(str(response.url), response.headers.get("location", ""))
            if _origin(target) != self._origin:
                raise NetworkError(
                    f"task {task_id}: the server redirected to {urlsplit(target).hostname or target}, another "
                    "host; not following it with the API key (check --base-url)",
                    task_id=task_id,
                )
            url, params = target, None
        raise NetworkError(f"task {task_id}: too many redirects from {self._host}", task_id=task_id)

    @property
    def _host(self) -> str:
        return urlsplit(self.settings.base_url).netloc


class _Retry(Exception):
    """Internal: this attempt failed in a way that may pass; ``error`` if it does not."""

    def __init__(self, error: FetchError, after_s: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.after_s = after_s


def task_state(answer: dict[str, Any]) -> str:
    """Return "pending" while the MIDI task runs, else "done" (success, failure or empty)."""
    data = answer.get("data")
    if not isinstance(data, dict):
        return "done"
    if data.get("successFlag") in (0, "0"):
        return "pending"
    midi = data.get("midiData")
    if isinstance(midi, dict) and "instruments" not in midi:
        return "pending" if str(midi.get("state", "")).casefold() in _RUNNING_STATES else "done"
    return "done"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _json_body(response: httpx.Response) -> dict[str, Any] | None:
    import orjson

    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _body_code(body: dict[str, Any], http_status: int) -> int:
    code = api_int(body.get("code"))
    return code if code is not None else http_status


def _meaning(code: int, msg: str) -> str:
    return CODE_MEANINGS.get(code) or f"the API answered code {code}"


def _content_kind(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    if not response.content:
        return "an empty body"
    return f"{kind or 'unknown content'}, {len(response.content)} bytes"


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]


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

    Raises ApiError, NetworkError, or ValueError for a base URL that would expose the key.
    """
    with ApiClient(ClientSettings(api_key=api_key, base_url=base_url)) as client:
        return client.wait_for_record(
            task_id, wait=wait, timeout_s=timeout_s, poll_interval_s=poll_interval_s, progress=progress
        )


def fetch_music_record(task_id: str, *, api_key: str, base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """Download a music task's record-info answer (title, tags, duration of its songs).

    Raises ApiError, NetworkError, or ValueError for a base URL that would expose the key.
    """
    with ApiClient(ClientSettings(api_key=api_key, base_url=base_url)) as client:
        return client.get_record(MUSIC_RECORD_PATH, task_id)
