"""HTTP transport: one request to the API and its whole answer, or a NetworkError.

What is done here, once: the API key (checked for form, sent only in the
Authorization header, only over https or to loopback, never after a redirect to
another origin, never printed); redirects (same origin only, GET only); limits (the
connection and each read have a timeout, the whole exchange ends at the caller's
deadline, the answer is refused past ``max_answer_bytes`` counted after decoding, so a
gzip bomb or an endless body cannot fill the memory); and the translation of every
httpx exception into ``NetworkError``, which says whether another try may pass
(``retry``) and whether the request may have reached the server (``sent``).

What to do with a failure (retry, poll, give up) is the policies' job: ``client``.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urljoin, urlsplit

from ..defaults import MAX_ANSWER_BYTES
from ..errors import NetworkError, Phrase, say

if TYPE_CHECKING:
    import httpx

MAX_REDIRECTS = 3
READ_CHUNK_BYTES = 64 * 1024  # one read from the socket; decoded output is capped separately
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BASE_URL_HINT = Phrase("check the base URL")  # a redirect away from the API: the address given is likely wrong
TIMEOUT = Phrase("the timeout")  # the setting that bounds a task's wait (the deadline)
KEY_APART = Phrase("the API key is given on its own")  # not inside the base URL
# zlib's window bits: 32 + 15 detects a gzip or zlib header by itself (RFC 1952 / 1950).
_AUTO_GZIP_ZLIB_WBITS = 32 + zlib.MAX_WBITS
_ENCODINGS = {"": None, "identity": None, "gzip": _AUTO_GZIP_ZLIB_WBITS, "x-gzip": _AUTO_GZIP_ZLIB_WBITS,
              "deflate": _AUTO_GZIP_ZLIB_WBITS}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole: status, headers (lower-case names), decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def check_api_key(api_key: str) -> None:
    """Raise ValueError (never naming the key) unless it can travel in an HTTP header as it is."""
    if not api_key:
        raise ValueError("the API key is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in api_key):
        raise ValueError("the API key contains a control character (a line end copied with it?)")
    if not api_key.isascii():
        raise ValueError("the API key contains a character that is not ASCII; check that it was copied whole")
    if any(c.isspace() for c in api_key):
        raise ValueError("the API key contains a space; check that it was copied whole")


def split_http_url(url: str, *, what: str = "URL") -> SplitResult:
    """Return the parts of an http or https URL with a host; ValueError naming it as ``what`` when it is none.

    Not one: a URL that cannot be split (an unclosed IPv6 bracket, a port that is no
    number), another scheme, or no host. The one check of both the API's base URL and a
    callback URL (``cli.api``).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"{what} {redact_url(url)!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must look like https://host, got {redact_url(url)!r}")
    return parts


def check_base_url(base_url: str) -> None:
    """Raise ValueError unless the URL is https (or http to loopback) with no user name or password in it."""
    parts = split_http_url(base_url, what="base URL")
    hostname = parts.hostname or ""  # split_http_url refuses a URL without one
    if "@" in parts.netloc:
        raise ValueError(say(f"base URL {redact_url(base_url)!r} holds a user name or password; remove it (",
                             KEY_APART, ")"))  # fmt: skip
    if parts.scheme == "http" and not is_loopback(hostname):
        raise ValueError(
            f"refusing to send the API key over plain http to {hostname}; use https:// (http only for loopback)"
        )


def redact_url(url: str) -> str:
    """Return a URL fit to print: any user name and password before the host become ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{tail}"


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str, int | None]:
    """Return (scheme, host, port) of a URL: where a key may be sent."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port or default


class Transport:
    """A connection to the API host: ``request`` sends one request and reads its whole answer.

    Thread-safe (httpx's client is). ``close()`` ends the connections.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        httpx_transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        check_api_key(api_key)
        check_base_url(base_url)
        self.connect_timeout_s, self.read_timeout_s = connect_timeout_s, read_timeout_s
        self.max_answer_bytes = max_answer_bytes
        self._origin = origin(base_url)
        parts = urlsplit(base_url)
        self.host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json",
                     "Accept-Encoding": "gzip, deflate", "User-Agent": "midiexport"},
            follow_redirects=False,
            # No idle connections kept: each request connects anew, so its socket is known to the
            # deadline watchdog from the start. Polls are seconds apart; a reused connection saves little.
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=httpx_transport,
        )  # fmt: skip

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        task_id: str,
        deadline: float,
        params: dict[str, str] | None = None,
        json_body: bytes | None = None,
    ) -> Answer:
        """Send one request (following same-origin redirects of a GET) and return its answer.

        ``deadline`` is a time.monotonic() value: the exchange ends by then, body
        included. ``task_id`` names the task in every message. Raises NetworkError.
        """
        url = path
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._exchange(method, url, params, json_body, task_id, deadline)
            if answer.status not in REDIRECT_STATUSES:
                return answer
            target = urljoin(answer.url, answer.headers.get("location", ""))
            where = urlsplit(target).hostname or "an address it did not name"
            if origin(target) != self._origin:
                raise NetworkError(say(f"task {task_id}: the server redirected to {where}, another host; not "
                                       "following it with the API key (", BASE_URL_HINT, ")"),
                                   task_id=task_id, hint=BASE_URL_HINT)  # fmt: skip
            if method != "GET":  # a POST sent again elsewhere could create a second task
                shown = redact_url(target)[:200]
                raise NetworkError(say(f"task {task_id}: the server redirected the {method} to {shown!r}; not "
                                       "following it (", BASE_URL_HINT, ")"),
                                   task_id=task_id, hint=BASE_URL_HINT)  # fmt: skip
            url, params = target, None
        raise NetworkError(f"task {task_id}: too many redirects from {self.host}", task_id=task_id)

    def _exchange(
        self, method: str, url: str, params: dict[str, str] | None, body: bytes | None, task_id: str, deadline: float
    ) -> Answer:
        import httpx

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NetworkError(say(f"task {task_id}: no answer before the deadline (", TIMEOUT, ")"), task_id=task_id)
        read_s = min(self.read_timeout_s, remaining)
        timeout = httpx.Timeout(read_s, connect=min(self.connect_timeout_s, remaining))
        headers = {"Content-Type": "application/json"} if body is not None else None
        watchdog = _Watchdog(deadline)
        request = self._http.build_request(method, url, params=params, content=body, headers=headers, timeout=timeout,
                                           extensions={"trace": watchdog.trace})  # fmt: skip
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            watchdog.cancel()
            late = time.monotonic() >= deadline
            raise (self._past_deadline(task_id) if late else self._translate(exc, task_id, timeout)) from exc
        try:
            data = self._read_body(response, task_id, deadline, timeout)
        finally:
            watchdog.cancel()
            response.close()
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, data,
                      str(response.url))  # fmt: skip

    def _read_body(self, response: httpx.Response, task_id: str, deadline: float, timeout: httpx.Timeout) -> bytes:
        """Read the body, decoded, up to the size limit and the deadline; raise NetworkError past either."""
        import httpx

        declared = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in _ENCODINGS:
            raise NetworkError(f"task {task_id}: the server sent a body encoded as {encoding[:40]!r}, which "
                               "midiexport did not ask for", task_id=task_id)  # fmt: skip
        if not encoding and declared.isdigit() and int(declared) > self.max_answer_bytes:
            raise self._too_large(task_id)
        wbits = _ENCODINGS[encoding]
        decoder = zlib.decompressobj(wbits) if wbits is not None else None
        out = bytearray()
        try:
            for chunk in response.iter_raw(READ_CHUNK_BYTES):
                for piece in _decoded(decoder, chunk):
                    if len(out) + len(piece) > self.max_answer_bytes:
                        raise self._too_large(task_id)
                    out += piece
                if time.monotonic() >= deadline:
                    raise self._past_deadline(task_id)
        except httpx.HTTPError as exc:
            if time.monotonic() >= deadline:
                raise self._past_deadline(task_id) from exc
            raise self._translate(exc, task_id, timeout) from exc
        except zlib.error as exc:
            raise NetworkError(f"task {task_id}: the server sent a damaged {encoding} body", task_id=task_id,
                               retry=True, sent=True) from exc  # fmt: skip
        return bytes(out)

    def _too_large(self, task_id: str) -> NetworkError:
        limit_mb = self.max_answer_bytes / 2**20
        return NetworkError(
            f"task {task_id}: the answer from {self.host} is larger than {limit_mb:g} MiB once decoded; "
            "refused (no MIDI record is that large)",
            task_id=task_id,
            sent=True,
        )

    def _past_deadline(self, task_id: str) -> NetworkError:
        return NetworkError(
            say(f"task {task_id}: no complete answer from {self.host} before the deadline (", TIMEOUT, "); gave up"),
            task_id=task_id,
            sent=True,
        )

    def _translate(self, exc: Exception, task_id: str, timeout: httpx.Timeout) -> NetworkError:
        """Say what an httpx error means for the user and for the retry policy (``retry``, ``sent``)."""
        import httpx

        # Failing to connect means nothing was sent; any later failure may follow a request that arrived.
        not_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        if isinstance(exc, httpx.TimeoutException):
            what, limit_s = ("no connection", timeout.connect) if not_sent else ("no answer", timeout.read)
            detail = f"{what} within {limit_s or 0:.3g} s"
        else:
            detail = _describe(exc)
        return NetworkError(
            f"task {task_id}: cannot reach {self.host}: {detail}", task_id=task_id, retry=True, sent=not not_sent
        )


class _Watchdog:
    """Shut the exchange's socket down at the deadline, so no stalled or dripping answer outlasts it.

    A read timeout alone does not bound an exchange: it restarts with every byte, in
    the headers as in the body. The socket is learnt from httpx's documented ``trace``
    request extension when the connection is made (every request makes its own: the
    client keeps no idle connections, see ``Transport``).
    """

    def __init__(self, deadline: float) -> None:
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx trace hook: keep the socket of a new connection (plain, then TLS-wrapped)."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            sock = info["return_value"].get_extra_info("socket")
            self._sock = sock if isinstance(sock, socket.socket) else None

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the exchange ended on its own


def _decoded(decoder: Any, chunk: bytes) -> Iterator[bytes]:
    """Yield a raw chunk decoded, in pieces of at most READ_CHUNK_BYTES, however much it inflates."""
    if decoder is None:
        yield chunk
        return
    while chunk:
        yield decoder.decompress(chunk, READ_CHUNK_BYTES)
        chunk = decoder.unconsumed_tail


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]
