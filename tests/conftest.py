"""Shared test fixtures: paths to fixtures and the sample, a clean environment, and
readers that look at written .mid files with mido and pretty_midi, never our writer."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import sys
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:
    from midiexport import model

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SAMPLE = ROOT / "samples" / "sample-song.json"
# Real files beside the clone (CI: shared/ next to it; a worktree under wt/ looks one level up).
REAL = next((p for p in (ROOT.parent / "shared" / "real", ROOT.parent.parent / "shared" / "real") if p.is_dir()),
            ROOT.parent / "shared" / "real")  # fmt: skip
SUNO_EXPORT = REAL / "suno-web-export"
# The evaluation corpus (bench/corpus; CORPUS_DATA names another folder): its "test" split is for tests.
CORPUS = Path(os.environ.get("CORPUS_DATA", ROOT / "bench" / "corpus" / "data"))
SUNO_STEMS = ("Bass", "Drums", "Keyboard")


def suno_stems() -> dict[str, bytes]:
    """Return the three real Suno web-export stems by stem name; skip the test when they are absent."""
    paths = {stem: SUNO_EXPORT / f"Midnight Concrete ({stem}).mid" for stem in SUNO_STEMS}
    if not all(p.is_file() for p in paths.values()):
        pytest.skip(f"the real Suno export is not at {SUNO_EXPORT} (shared/ beside the clone)")
    return {stem: p.read_bytes() for stem, p in paths.items()}


@functools.cache
def corpus_test_songs() -> tuple[dict, ...]:
    """The songs of the corpus's test split (drum styles, then real scores), read once (skips when absent)."""
    paths = [CORPUS / f"{kind}-test.jsonl.gz" for kind in ("styles", "real")]
    if not all(path.exists() for path in paths):
        pytest.skip(f"the evaluation corpus is not at {CORPUS}")
    sys.path.insert(0, str(CORPUS.parent))
    import schema  # the corpus's own loader

    return tuple(song for path in paths for song in schema.iter_songs(str(path)))


def corpus_test_song(song_id: str) -> dict:
    """One song of the corpus's test split, by its id (skips when the corpus is absent)."""
    [song] = [s for s in corpus_test_songs() if s["id"] == song_id]
    assert song["split"] == "test"
    return song


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real API key or base URL from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("MIDIEXPORT_"):
            monkeypatch.delenv(name)


def children_of(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid`` (from /proc on Linux, no extra tools)."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found


def package_env(*extra_paths: str | Path, **variables: str) -> dict[str, str]:
    """This process's environment for a child that imports midiexport from this repository (no install).

    PYTHONPATH: the repository first, then ``extra_paths``, then the PYTHONPATH this process had;
    ``variables`` are set on top.
    """
    import os

    path = os.pathsep.join(filter(None, [str(ROOT), *map(str, extra_paths), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **variables, "PYTHONPATH": path}


# A command-line flag (--name, -x) or an environment variable the command line reads (MIDIEXPORT_...).
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z]\b)|MIDIEXPORT_[A-Z_]+")


def names_a_flag(text: str) -> bool:
    """True when ``text`` names a command-line flag or a MIDIEXPORT_ variable (``FLAG``)."""
    return FLAG.search(text) is not None


def run(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None) -> Any:
    """Run the command line in this process (click's CliRunner): ``run("convert", "a.json", "-o", "out")``."""
    from click.testing import CliRunner

    from midiexport.cli import main

    return CliRunner().invoke(main, list(args), input=input, env=env)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    """Write a deflated .zip of ``members`` (name -> bytes) at ``path`` and return the path."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


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


def notes_by_track(data: bytes) -> dict[str, list[tuple[int, int, int, int]]]:
    """Return {track name: [(channel, pitch, on tick, off tick), ...]} read with mido."""
    tracks = {}
    for track in mido_file(data).tracks:
        tick, name, sounding, notes = 0, "", {}, []
        for message in track:
            tick += message.time
            if message.type == "track_name":
                name = message.name
            elif message.type == "note_on" and message.velocity > 0:
                sounding[message.channel, message.note] = tick
            elif message.type in ("note_on", "note_off"):
                on = sounding.pop((message.channel, message.note))
                notes.append((message.channel, message.note, on, tick))
        if notes:
            tracks[name] = sorted(notes, key=lambda n: (n[2], n[1]))
    return tracks


def written_seconds(tempos: Any, ticks: Any, ppq: int = 960) -> Any:
    """Seconds of absolute ticks through (tick, µs per quarter) tempos: an independent little reader."""
    import numpy as np

    at = np.asarray(ticks, dtype=np.float64)
    out = np.zeros_like(at)
    for (tick, tempo_us), following in zip(tempos, [t for t, _ in tempos[1:]] + [np.inf]):
        span = np.clip(at, tick, following) - tick
        out += span * tempo_us / 1e6 / ppq
    return out


CHORDS = ([60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62])  # C Am F G


def rock_song(bpm: float, downbeat_s: float, *, bars: int = 48, drums: bool = True, jitter_s: float = 0.008,
              seed: int = 1, tags: str | None = None) -> model.Record:  # fmt: skip
    """A backbeat song: kick 1 and 3, snare 2 and 4, 8th hats, bass 8ths, a chord a bar, pickup notes."""
    import dataclasses

    import numpy as np

    from midiexport.stages.normalize import normalize_payload

    rng = np.random.default_rng(seed)
    beat = 60 / bpm
    parts: dict[str, list[dict[str, float]]] = {}

    def add(part: str, at_beat: float, beats: float, pitch: int, velocity: float = 0.8) -> None:
        start = max(0.0, downbeat_s + at_beat * beat + rng.uniform(-jitter_s, jitter_s))
        start = round(start * 192) / 192
        end = max(start + 1 / 192, round((start + beats * beat) * 192) / 192)
        parts.setdefault(part, []).append({"pitch": pitch, "start": start, "end": end, "velocity": velocity})

    for b in (-2, -1):  # a pickup before bar 1
        if downbeat_s + b * beat >= 0:
            add("Synth Voice", b, 0.9, 72 + b)
    for bar in range(bars):
        chord = CHORDS[bar % 4]
        for pitch in chord:
            add("String Ensemble 1", bar * 4, 3.9, pitch, 0.6)
        for eighth in range(8):
            add("Electric Bass (finger)", bar * 4 + eighth / 2, 0.45, chord[0] - 24)
            if drums:
                add("Drums", bar * 4 + eighth / 2, 0.1, 42, 0.5)
        if drums:
            for b in (0, 2):
                add("Drums", bar * 4 + b, 0.2, 36, 0.95)
            for b in (1, 3):
                add("Drums", bar * 4 + b, 0.2, 38, 0.9)
    instruments = [{"name": name, "notes": sorted(notes, key=lambda n: n["start"])} for name, notes in parts.items()]
    [record] = normalize_payload({"data": {"taskId": "t", "successFlag": 1,
                                           "midiData": {"state": "complete", "instruments": instruments}}})  # fmt: skip
    if tags:
        record = dataclasses.replace(record, tags=tags)
    return record


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
URL_PASSWORD = "PASSWORD-in-the-URL-42"
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
    "html-200": lambda t, n: (200, {"Content-Type": "text/html"}, b"<html><body><h1>Welcome</h1></body></html>"),
    "json-list": lambda t, n: _json(200, [_record(t)]),
    "redirect-away": lambda t, n: (302, {"Location": f"http://elsewhere.invalid/api/v1/midi/record-info?taskId={t}"}, b""),
    "redirect-home": lambda t, n: (302, {"Location": f"/moved/record-info?taskId={t}"}, b"") if n <= 1 else _json(200, _record(t)),
    "slow": lambda t, n: (time.sleep(1.0), _json(200, _record(t)))[1],
    "redirect-userinfo": lambda t, n: (302, {"Location": f"http://bob:{URL_PASSWORD}@elsewhere.invalid/x?taskId={t}"}, b""),
    "uploading-then-complete": lambda t, n: _json(200, _record(t, midiData={"state": "uploading"}) if n <= 2 else _record(t)),
    "reseller-code-0": lambda t, n: _json(200, {**load_fixture("reseller-code-0-ok.json"), "data": {**load_fixture("reseller-code-0-ok.json")["data"], "taskId": t}}),
    "unknown-code-notes": lambda t, n: _json(200, {**_record(t), "code": 209, "msg": "partial content"}),
    "hostile-id": lambda t, n: _json(200, _record("x/../../escaped")),
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
class RequestLog:
    """The requests a test server saw, by key (the task id, or a POST's last path segment)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, key: str, **request: Any) -> int:
        """Keep one request; return how many this key has seen, this one included."""
        with self.lock:
            self.requests.append({"key": key, "task_id": key, **request})
            self.counts[key] += 1
            return self.counts[key]

    def seen(self, key: str, method: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["key"] == key and method in (None, r.get("method"))]


@dataclass
class FakeApi(RequestLog):
    def answer(self, path: str, query: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        task_id = parse_qs(query).get("taskId", [""])[0]
        count = self.log(task_id, path=path, headers=headers)
        routes = MUSIC_ROUTES if path.endswith("/generate/record-info") else ROUTES
        route = routes.get(task_id.split("~")[0])
        if route is None:
            return _json(200, {"code": 404, "msg": "no such scenario"})
        return route(task_id, count)


def _send(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    try:
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (read timeout): that is the scenario


@pytest.fixture(scope="session")
def fake_api() -> Any:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            _send(self, *api.answer(parts.path, parts.query, dict(self.headers)))

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


# --- A raw-socket server that misbehaves below HTTP ------------------------------------
# The scenario is the taskId's prefix (GET) or the last path segment (POST). Each
# behaviour gets the connected socket after the request was read, and may do anything.


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def _drip(sock: Any) -> None:
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": "100000"}))
    for _ in range(1000):  # 1 byte every 0.3 s: each read arrives well inside any read timeout
        sock.sendall(b" ")
        time.sleep(0.3)


def _drip_headers(sock: Any) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(1000):  # a header line that never ends, 1 byte every 0.3 s
        sock.sendall(b"X")
        time.sleep(0.3)


def _drip_then_stall(sock: Any) -> None:
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": "100000"}) + b"{")
    time.sleep(60)


def _reset(sock: Any) -> None:
    import socket
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST


def _endless_chunks(sock: Any) -> None:
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
    chunk = b" " * 65536
    while True:
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def _gzip_bomb(sock: Any) -> None:
    import zlib

    # A gzip stream of zeros without end: each 16 MiB of zeros is ~16 KiB on the wire.
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Encoding": "gzip",
                                  "Connection": "close"}))  # fmt: skip
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(16 * 2**20)
    for _ in range(256):  # 4 GiB once inflated
        sock.sendall(packer.compress(zeros))
    sock.sendall(packer.flush())


def _huge_declared(sock: Any) -> None:
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": str(10 * 2**30)}))
    sock.sendall(b" " * 65536)


def _slow_answer(sock: Any) -> None:
    time.sleep(1.0)  # longer than the client's read timeout in the tests
    body = json.dumps({"code": 200, "msg": "success", "data": {"taskId": "created-1"}}).encode()
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))}) + body)


def _server_error(sock: Any) -> None:
    body = json.dumps({"code": 500, "msg": "internal error"}).encode()
    sock.sendall(_head("500 Internal Server Error", {"Content-Type": "application/json",
                                                     "Content-Length": str(len(body))}) + body)  # fmt: skip


def _rate_limited_once(sock: Any, count: int) -> None:
    if count > 1:
        body = json.dumps({"code": 200, "msg": "success", "data": {"taskId": "created-1"}}).encode()
        sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))}) + body)
        return
    body = json.dumps({"code": 429, "msg": "too many requests"}).encode()
    sock.sendall(_head("429 Too Many Requests", {"Content-Type": "application/json", "Retry-After": "0",
                                                 "Content-Length": str(len(body))}) + body)  # fmt: skip


def _complete(sock: Any, key: str) -> None:
    body = json.dumps(_record(key)).encode()
    sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))}) + body)


RAW_BEHAVIOURS: dict[str, Any] = {
    "drip": _drip,
    "drip-then-stall": _drip_then_stall,
    "drip-headers": _drip_headers,
    "reset": _reset,
    "endless-chunks": _endless_chunks,
    "gzip-bomb": _gzip_bomb,
    "huge-declared": _huge_declared,
    "slow-answer": _slow_answer,
    "server-error": _server_error,
}
COUNTED_BEHAVIOURS: dict[str, Any] = {"rate-limited-once": _rate_limited_once}
KEYED_BEHAVIOURS: dict[str, Any] = {"complete": _complete}


@dataclass
class RawServer(RequestLog):
    def handle(self, sock: Any) -> None:
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                return
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            more = sock.recv(65536)
            if not more:
                break
            rest += more
        parts = urlsplit(target)
        key = parse_qs(parts.query).get("taskId", [""])[0] if method == "GET" else parts.path.rsplit("/", 1)[-1]
        count = self.log(key, method=method, path=parts.path, headers=headers, body=rest)
        scenario = key.split("~")[0]
        if scenario in KEYED_BEHAVIOURS:
            KEYED_BEHAVIOURS[scenario](sock, key)
        elif scenario in COUNTED_BEHAVIOURS:
            COUNTED_BEHAVIOURS[scenario](sock, count)
        else:
            RAW_BEHAVIOURS[scenario](sock)


@pytest.fixture(scope="session")
def raw_api() -> Any:
    """A socket server on 127.0.0.1 that drips, resets, never ends, bombs, or answers late."""
    import socket

    server = RawServer()
    listener = socket.create_server(("127.0.0.1", 0))
    server.url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def serve(sock: Any) -> None:
        try:
            server.handle(sock)
        except OSError:
            pass  # the client hung up: that is how most of these scenarios end
        finally:
            sock.close()

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server
    listener.close()


# --- A fake of the whole generate chain ------------------------------------------------
# music task -> split_stem separation (POST, record-info) -> MIDI task (POST, record-info).
# One server per test (the chain has state); each test sets the behaviour it needs.

CHAIN_MUSIC = "/api/v1/generate/record-info"
CHAIN_SEPARATE = "/api/v1/vocal-removal/generate"
CHAIN_SEPARATION = "/api/v1/vocal-removal/record-info"
CHAIN_MIDI_POST = "/api/v1/midi/generate"
CHAIN_MIDI = "/api/v1/midi/record-info"
CHAIN_SONG = {"id": "song-a", "title": "Neon Rain", "duration": 201.4, "tags": "synthwave"}
CHAIN_STEMS = [
    {"id": "stem-vocals", "stem_type_group_name": "Vocals", "audio_url": "https://x.invalid/v.mp3", "duration": 201.4},
    {"id": "stem-bass", "stem_type_group_name": "Bass", "audio_url": "https://x.invalid/b.mp3", "duration": 201.4},
    {"id": "stem-drums", "stem_type_group_name": "Drums", "audio_url": "https://x.invalid/d.mp3", "duration": 201.4},
]


@dataclass
class ChainApi(RequestLog):
    """The chain's endpoints. ``*_flags``: the successFlag of each poll in turn (the last repeats).

    ``*_post``: "ok", "timeout" (the task is created, the answer comes after
    ``post_sleep_s``), "rate-limited-once" (429 + Retry-After, then ok), "server-error"
    (500), "no-credits" (402: no task). ``faults``: HTTP statuses answered first to GETs of a path.
    Requests are logged by path: ``seen(CHAIN_SEPARATE, "POST")``.
    """

    songs: list[dict[str, Any]] = field(default_factory=lambda: [CHAIN_SONG])
    music_status: str = "SUCCESS"
    separation_flags: list[str] = field(default_factory=lambda: ["PENDING", "SUCCESS"])
    midi_flags: list[int] = field(default_factory=lambda: [0, 1])
    separation_post: str = "ok"
    midi_post: str = "ok"
    post_sleep_s: float = 2.0
    faults: dict[str, list[int]] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)  # path of the POST -> the task it made

    def answer(self, method: str, path: str, query: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        task_id = parse_qs(query).get("taskId", [""])[0]
        count = self.log(path, method=method, task_id=task_id, body=json.loads(body) if body else None)
        fault = self.faults.get(path, [])
        if method == "GET" and count <= len(fault):
            return _json(fault[count - 1], {"code": fault[count - 1], "msg": "try later"}, {"Retry-After": "0"})
        if method == "POST":
            return self._post(path, count)
        if path == CHAIN_MUSIC:
            return _json(200, {"code": 200, "msg": "success", "data": {
                "taskId": task_id, "status": self.music_status, "response": {"sunoData": self.songs}}})  # fmt: skip
        if task_id not in self.created.values():
            return _json(200, {"code": 422, "msg": "recordInfo is null"})
        if path == CHAIN_SEPARATION:
            return _json(
                200, self._separation(task_id, self.separation_flags[min(count, len(self.separation_flags)) - 1])
            )
        flag = self.midi_flags[min(count, len(self.midi_flags)) - 1]
        if flag == 1:
            return _json(200, _record(task_id, audioId=self.songs[-1]["id"]))
        return _json(200, _record(task_id, successFlag=flag, midiData=None, errorCode="500" if flag > 1 else None,
                                  errorMessage="model crashed" if flag > 1 else None))  # fmt: skip

    def _post(self, path: str, count: int) -> tuple[int, dict[str, str], bytes]:
        behaviour = self.separation_post if path == CHAIN_SEPARATE else self.midi_post
        if behaviour == "rate-limited-once" and count == 1:
            return _json(429, {"code": 429, "msg": "too many requests"}, {"Retry-After": "0"})
        if behaviour == "server-error":
            return _json(500, {"code": 500, "msg": "internal error"})
        if behaviour == "no-credits":
            return _json(200, {"code": 402, "msg": "insufficient credits"})
        task_id = ("sep-" if path == CHAIN_SEPARATE else "midi-") + str(count)
        self.created[path] = task_id
        if behaviour == "timeout":
            time.sleep(self.post_sleep_s)  # longer than the client waits: it never learns the id
        return _json(200, {"code": 200, "msg": "success", "data": {"taskId": task_id}})

    @staticmethod
    def _separation(task_id: str, flag: str) -> dict[str, Any]:
        data: dict[str, Any] = {"taskId": task_id, "successFlag": flag, "errorMessage": None, "response": None}
        if flag == "SUCCESS":
            data["response"] = {"originData": CHAIN_STEMS}
        elif flag.endswith(("FAILED", "EXCEPTION")):
            data["errorMessage"] = "audio too short"
        return {"code": 200, "msg": "success", "data": data}

    def posts(self, path: str) -> int:
        return len(self.seen(path, "POST"))


@pytest.fixture
def chain_api() -> Any:
    api = ChainApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            _send(self, *api.answer(method, parts.path, parts.query, self.rfile.read(length)))

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield api
    server.shutdown()
    server.server_close()
