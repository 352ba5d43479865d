"""Shared test fixtures: paths to fixtures and the sample, a clean environment, and
readers that look at written .mid files with mido and pretty_midi, never our writer."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SAMPLE = ROOT / "samples" / "sample-song.json"
# Real files beside the clone (CI: shared/ next to it; a worktree under wt/ looks one level up).
REAL = next((p for p in (ROOT.parent / "shared" / "real", ROOT.parent.parent / "shared" / "real") if p.is_dir()),
            ROOT.parent / "shared" / "real")  # fmt: skip
SUNO_EXPORT = REAL / "suno-web-export"
SUNO_STEMS = ("Bass", "Drums", "Keyboard")


def suno_stems() -> dict[str, bytes]:
    """Return the three real Suno web-export stems by stem name; skip the test when they are absent."""
    paths = {stem: SUNO_EXPORT / f"Midnight Concrete ({stem}).mid" for stem in SUNO_STEMS}
    if not all(p.is_file() for p in paths.values()):
        pytest.skip(f"the real Suno export is not at {SUNO_EXPORT} (shared/ beside the clone)")
    return {stem: p.read_bytes() for stem, p in paths.items()}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real API key or base URL from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("MIDIEXPORT_"):
            monkeypatch.delenv(name)


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def load_fixture(name: str) -> Any:
    return json.loads(fixture_path(name).read_text())


def api_notes(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Return {instrument name: notes} from a record-info answer, as plain JSON values."""
    return {i["name"]: i["notes"] for i in payload["data"]["midiData"]["instruments"]}


def pretty(data: bytes) -> Any:
    """Read .mid bytes with pretty_midi (independent of our writer)."""
    import pretty_midi

    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def mido_file(data: bytes) -> Any:
    import mido

    return mido.MidiFile(file=io.BytesIO(data))


def channel_events(data: bytes) -> list[tuple[int, str, int, int, int]]:
    """Return every note event as (abs tick, type, channel, note, velocity), merged in file order."""
    events = []
    for track in mido_file(data).tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type in ("note_on", "note_off"):
                events.append((tick, message.type, message.channel, message.note, message.velocity))
    return events


def record_payload(instruments: dict[str, list[tuple[int, float, float, float]]], **data: Any) -> dict[str, Any]:
    """Build a record-info answer from {name: [(pitch, start_s, end_s, velocity), ...]}."""
    midi = {
        "state": "complete",
        "instruments": [
            {"name": name, "notes": [{"pitch": p, "start": s, "end": e, "velocity": v} for p, s, e, v in notes]}
            for name, notes in instruments.items()
        ],
    }
    body = {"taskId": "t123", "audioId": "a456", "successFlag": 1, "midiData": midi, **data}
    return {"code": 200, "msg": "success", "data": body}


# --- A real HTTP server on 127.0.0.1 playing the API --------------------------------
# Each task id names its scenario: "<scenario>~<anything>", so tests never share state.
# Routes are small functions (answer, headers, count) -> (HTTP status, headers, body).


API_KEY = "test-key-0123456789-SECRET"
HOSTILE_TITLE = '../../etc/passwd\x00CON: <b>"Neon"</b> | *?'


def _record(task_id: str, **data: Any) -> dict[str, Any]:
    body = load_fixture("record-info.json")
    body["data"]["taskId"] = task_id
    body["data"].update(data)
    return body


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _pending(task_id: str) -> dict[str, Any]:
    return _record(task_id, successFlag=0, midiData=None)


ROUTES: dict[str, Any] = {
    "complete": lambda t, n: _json(200, _record(t)),
    "pending-then-complete": lambda t, n: _json(200, _pending(t) if n <= 2 else _record(t)),
    "running-then-complete": lambda t, n: _json(200, _record(t, midiData={"state": "running"}) if n <= 1 else _record(t)),
    "pending-forever": lambda t, n: _json(200, _pending(t)),
    "rate-limited-retry-after": lambda t, n: _json(429, {"code": 429, "msg": "slow down"}, {"Retry-After": "0"}) if n <= 1 else _json(200, _record(t)),
    "rate-limited": lambda t, n: _json(429, {"code": 429, "msg": "slow down"}) if n <= 2 else _json(200, _record(t)),
    "server-error-twice": lambda t, n: _json(500, {"code": 500, "msg": "internal"}) if n <= 2 else _json(200, _record(t)),
    "maintenance": lambda t, n: _json(200, {"code": 455, "msg": "system maintenance"}),
    "bad-key": lambda t, n: _json(401, {"code": 401, "msg": "Unauthorized"}),
    "no-credits": lambda t, n: _json(200, {"code": 402, "msg": "insufficient credits"}),
    "not-found": lambda t, n: _json(200, {"code": 404, "msg": "task not found"}),
    "record-null": lambda t, n: _json(200, {"code": 422, "msg": "recordInfo is null"}),
    "failed-create": lambda t, n: _json(200, _record(t, successFlag=2, midiData=None, errorCode="400", errorMessage="bad audio")),
    "failed-generation": lambda t, n: _json(200, _record(t, successFlag=3, midiData=None, errorCode="500", errorMessage="model crashed")),
    "empty": lambda t, n: _json(200, _record(t, midiData={})),
    "missing": lambda t, n: _json(200, {"code": 200, "msg": "success", "data": {"taskId": t, "successFlag": 1}}),
    "truncated": lambda t, n: (200, {"Content-Type": "application/json"}, json.dumps(_record(t)).encode()[:150]),
    "html-502": lambda t, n: (502, {"Content-Type": "text/html"}, b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "redirect-away": lambda t, n: (302, {"Location": f"http://elsewhere.invalid/api/v1/midi/record-info?taskId={t}"}, b""),
    "redirect-home": lambda t, n: (302, {"Location": f"/moved/record-info?taskId={t}"}, b"") if n <= 1 else _json(200, _record(t)),
    "slow": lambda t, n: (time.sleep(1.0), _json(200, _record(t)))[1],
}  # fmt: skip

MUSIC_ROUTES: dict[str, Any] = {
    "music-hostile": lambda t, n: _json(200, {"code": 200, "msg": "success", "data": {"taskId": t, "status": "SUCCESS",
        "response": {"sunoData": [
            {"id": "other-song", "title": "Not this one", "duration": 10.0},
            {"id": "e231****-****-****-****-****8cadc7dc", "title": HOSTILE_TITLE, "tags": "synthwave, 128 bpm",
             "modelName": "chirp-v4", "duration": 200.5}]}}}),
    "music-nomatch": lambda t, n: _json(200, {"code": 200, "msg": "success", "data": {"taskId": t,
        "response": {"sunoData": [{"id": "other-song", "title": "Not this one"}]}}}),
}  # fmt: skip


@dataclass
class FakeApi:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, task_id: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["task_id"] == task_id]

    def answer(self, path: str, query: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        task_id = parse_qs(query).get("taskId", [""])[0]
        with self.lock:
            self.requests.append({"path": path, "task_id": task_id, "headers": headers})
            self.counts[task_id] += 1
            count = self.counts[task_id]
        routes = MUSIC_ROUTES if path.endswith("/generate/record-info") else ROUTES
        route = routes.get(task_id.split("~")[0])
        if route is None:
            return _json(200, {"code": 404, "msg": "no such scenario"})
        return route(task_id, count)


@pytest.fixture(scope="session")
def fake_api() -> Any:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, headers, body = api.answer(parts.path, parts.query, dict(self.headers))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (read timeout): that is the scenario

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture
def task(request: pytest.FixtureRequest) -> Any:
    """Return a function making a task id unique to this test for a scenario."""
    counter = iter(range(1000))
    return lambda scenario: f"{scenario}~{request.node.name[:40]}-{next(counter)}"
