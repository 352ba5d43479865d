"""``midiexport serve`` as a running uvicorn process, hit by real HTTP clients on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
import pytest

from conftest import ROOT, children_of, mido_file, package_env, record_payload, run
from midiexport.io.receiver import CallbackStore, done_path, sign
from midiexport.jobs.serve import handle_stored
from midiexport.options import ConvertOptions

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

KEY = "webhook-key-Zq81"
STARTUP_S = 30.0


@dataclass
class Server:
    url: str
    out: Path
    process: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


def start_server(out: Path, *args: str, python_path: tuple[str, ...] = (), healthy: bool = True) -> Server:
    log = out.parent / f"{out.name}-stderr-{time.monotonic_ns()}.log"  # one log per start
    command = [sys.executable, "-m", "midiexport", "serve", "--port", "0", "-o", str(out), "-j", "2", *args]
    env = package_env(*python_path)
    with open(log, "ab") as stream:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=stream, env=env)  # fmt: skip
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        text = log.read_text()
        if "listening on " in text:
            url = text.split("listening on ", 1)[1].split()[0]
            if healthy:
                _wait_healthy(url)
            return Server(url, out, process, log)
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {text}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"serve did not start: {log.read_text()}")


def _wait_healthy(url: str) -> None:
    health = url.rsplit("/", 1)[0] + "/healthz"

    def healthy() -> bool:
        try:
            return httpx.get(health, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout_s=STARTUP_S)


def stop(server: Server) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = start_server(tmp_path / "out", "--hmac-key", KEY)
    yield running
    stop(running)


def callback(task_id: str, pitch: int = 60) -> dict[str, object]:
    midi = record_payload({"Piano": [(pitch, 0.5, 1.0, 0.8), (pitch + 4, 1.0, 1.5, 0.8)]})["data"]["midiData"]
    return {"task_id": task_id, "code": 200, "msg": "success", "data": midi}


def signed_headers(task_id: str, *, key: str = KEY, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": sign(key, task_id, stamp)}


def post(server: Server, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(server.url, json=body, headers=headers or {}, timeout=10)


def wait_for(predicate, timeout_s: float = 30.0, poll_s: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(poll_s)


def test_signed_callback_is_stored_then_converted_into_a_readable_mid(server: Server):
    answer = post(server, callback("task-1"), signed_headers("task-1"))
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "stored"
    wait_for(lambda: (server.out / "task-1.mid").exists())
    notes = [m for t in mido_file((server.out / "task-1.mid").read_bytes()).tracks for m in t if m.type == "note_on"]
    assert sorted(m.note for m in notes) == [60, 64]
    raws = list((server.out / "callbacks" / "task-1").glob("*.json"))
    assert len(raws) == 1 and json.loads(raws[0].read_bytes())["task_id"] == "task-1"


def test_a_repeated_callback_is_counted_and_gives_one_set_of_files(server: Server):
    for _ in range(3):
        assert post(server, callback("again"), signed_headers("again")).status_code == 200
    wait_for(lambda: (server.out / "again.mid").exists())
    health = httpx.get(server.url.rsplit("/", 1)[0] + "/healthz").json()
    assert health["repeats"] == 2
    assert sorted(p.name for p in server.out.glob("again*")) == ["again.mid"]
    assert len(list((server.out / "callbacks" / "again").glob("*.json"))) == 1


def test_a_later_different_callback_is_kept_beside_the_first(server: Server):
    assert post(server, callback("twice", 60), signed_headers("twice")).json()["outcome"] == "stored"
    wait_for(lambda: (server.out / "twice.mid").exists())
    first = (server.out / "twice.mid").read_bytes()
    assert post(server, callback("twice", 70), signed_headers("twice")).json()["outcome"] == "stored (variant)"
    wait_for(lambda: len(list(server.out.glob("twice-*.mid"))) == 1)
    assert (server.out / "twice.mid").read_bytes() == first
    assert len(list((server.out / "callbacks" / "twice").glob("*.json"))) == 2


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unsigned", 401),
        ("wrong signature", 401),
        ("signed with another key", 401),
        ("old timestamp", 401),
        ("future timestamp", 401),
        ("not JSON", 400),
        ("no task id", 400),
        ("text/plain", 415),
        ("10 MB body", 413),
        ("unknown path", 404),
        ("GET on the callback path", 405),
    ],
)
def test_bad_requests_get_their_status_and_leave_nothing_but_a_log_line(server: Server, case: str, status: int):
    body = callback("bad-1")
    good = signed_headers("bad-1")
    requests = {
        "unsigned": lambda: post(server, body),
        "wrong signature": lambda: post(
            server, body, {**good, "X-Webhook-Signature": "AAAA" + good["X-Webhook-Signature"][4:]}
        ),
        "signed with another key": lambda: post(server, body, signed_headers("bad-1", key="other")),
        "old timestamp": lambda: post(server, body, signed_headers("bad-1", at=time.time() - 301)),
        "future timestamp": lambda: post(server, body, signed_headers("bad-1", at=time.time() + 302)),
        "not JSON": lambda: httpx.post(
            server.url, content=b"{not json", headers={**good, "Content-Type": "application/json"}
        ),
        "no task id": lambda: post(server, {"code": 200, "data": body["data"]}, good),
        "text/plain": lambda: httpx.post(
            server.url, content=json.dumps(body), headers={**good, "Content-Type": "text/plain"}
        ),
        "10 MB body": lambda: httpx.post(
            server.url, content=b" " * (10 * 2**20), headers={**good, "Content-Type": "application/json"}
        ),
        "unknown path": lambda: httpx.post(server.url + "/../other", json=body, headers=good),
        "GET on the callback path": lambda: httpx.get(server.url),
    }
    assert requests[case]().status_code == status
    if status not in (404, 405):  # starlette answers those before our handler, which logs the rest
        wait_for(lambda: any(line.get("status") == status for line in server.lines()))  # handled in full
    assert [p for p in server.out.rglob("*") if p.is_file()] == []
    log = server.log.read_text()
    assert KEY not in log and good["X-Webhook-Signature"] not in log and "Piano" not in log


def test_a_task_id_with_dot_dot_names_nothing_outside_the_folder(server: Server):
    task = "../../escaped"
    assert post(server, callback(task), signed_headers(task)).status_code == 200
    wait_for(lambda: any(server.out.glob("*.mid")))
    written = [p.resolve() for p in server.out.parent.rglob("*") if p.is_file() and not p.name.endswith(".log")]
    assert written and all(server.out.resolve() in p.parents for p in written)


def test_a_failure_callback_is_stored_and_logged_without_a_mid(server: Server):
    failure = {"task_id": "failed-1", "code": 500, "msg": "MIDI generation failed", "data": None}
    assert post(server, failure, signed_headers("failed-1")).status_code == 200
    wait_for(lambda: any(line.get("event") == "converted" for line in server.lines()))
    [converted] = [line for line in server.lines() if line.get("event") == "converted"]
    assert converted["outcome"] == "failed" and "MIDI generation failed" in str(converted["errors"])
    assert not list(server.out.glob("*.mid"))


def test_sigterm_ends_the_server_quietly(tmp_path: Path):
    running = start_server(tmp_path / "out")
    assert post(running, callback("t1")).status_code == 200  # no key: unsigned is accepted on loopback
    assert stop(running) in (-signal.SIGTERM, 128 + signal.SIGTERM)  # uvicorn ends by re-raising the signal
    assert "Traceback" not in running.log.read_text()
    assert (running.out / "t1.mid").exists()  # accepted work was finished before the exit


def send_many(server: Server, bodies: list[tuple[str, dict[str, object]]], concurrency: int) -> list[int]:
    """POST every body with ``concurrency`` clients at once; return the statuses (0: no answer)."""
    from concurrent.futures import ThreadPoolExecutor

    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:

        def send(item: tuple[str, dict[str, object]]) -> int:
            task, body = item
            try:
                return client.post(server.url, json=body, headers=signed_headers(task)).status_code
            except httpx.TransportError:
                return 0

        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(send, bodies))


def test_load_with_repeats_loses_nothing_and_duplicates_nothing(server: Server):
    tasks = [f"load-{i}" for i in range(150)]
    bodies = [(t, callback(t)) for t in tasks] + [(t, callback(t)) for t in tasks[::3]]  # a third sent twice
    statuses = send_many(server, bodies, concurrency=32)
    assert statuses.count(200) == len(bodies)
    wait_for(lambda: len(list(server.out.glob("*.mid"))) >= len(tasks), timeout_s=120)
    assert sorted(p.stem for p in server.out.glob("*.mid")) == sorted(tasks)


def test_sigkill_during_load_then_restart_converts_every_accepted_callback(tmp_path: Path):
    out = tmp_path / "out"
    first = start_server(out, "--hmac-key", KEY)
    tasks = [f"crash-{i}" for i in range(200)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as background:
        sending = background.submit(send_many, first, [(t, callback(t)) for t in tasks], 16)
        wait_for(
            lambda: len(list((out / "callbacks").glob("*/*.json"))) >= 40 if (out / "callbacks").exists() else False
        )
        first.process.kill()
        first.process.wait(timeout=30)
        statuses = sending.result()
    accepted = [t for t, status in zip(tasks, statuses) if status == 200]
    assert accepted, "some callbacks were answered before the kill"
    second = start_server(out, "--hmac-key", KEY)
    try:
        wait_for(lambda: {p.stem for p in out.glob("*.mid")} >= set(accepted), timeout_s=120)
    finally:
        stop(second)
    assert not [p for p in out.rglob("*.tmp")]


def test_name_template_names_the_mid_files(tmp_path: Path):
    server = start_server(tmp_path / "out", "--hmac-key", KEY, "--name", "{task_id} take {audio_id}")
    try:
        assert post(server, callback("alpha"), signed_headers("alpha")).status_code == 200
        wait_for(lambda: (server.out / "alpha take.mid").exists())
    finally:
        stop(server)
    assert sorted(p.name for p in server.out.glob("*.mid")) == ["alpha take.mid"]


def test_a_name_template_shared_by_two_tasks_never_lets_one_replace_the_other(tmp_path: Path):
    server = start_server(tmp_path / "out", "--hmac-key", KEY, "--name", "song")
    try:
        assert post(server, callback("first", pitch=60), signed_headers("first")).status_code == 200
        wait_for(lambda: (server.out / "song.mid").exists())
        assert post(server, callback("second", pitch=70), signed_headers("second")).status_code == 200
        wait_for(lambda: (server.out / "song-2.mid").exists())
        assert post(server, callback("first", pitch=60), signed_headers("first")).json()["outcome"] == "repeat"
        wait_for(lambda: any(line.get("outcome") == "repeat" for line in server.lines()))
    finally:
        stop(server)
    assert sorted(p.name for p in server.out.glob("*.mid")) == ["song-2.mid", "song.mid"]
    pitches = {p.name: {m.note for t in mido_file(p.read_bytes()).tracks for m in t if m.type == "note_on"}
               for p in server.out.glob("*.mid")}  # fmt: skip
    assert pitches == {"song.mid": {60, 64}, "song-2.mid": {70, 74}}


def records_titled(task_id: str, *titles: str) -> dict[str, object]:
    """A callback holding one record per title (a reseller's list of ``{state, instruments}``), pitches 60, 61..."""
    records = [{"state": "complete", "title": title, "instruments": [
        {"name": "Piano", "notes": [{"pitch": 60 + n, "start": 0.5, "end": 1.0, "velocity": 0.8}]}]}
        for n, title in enumerate(titles)]  # fmt: skip
    return {"task_id": task_id, "code": 200, "msg": "success", "data": records}


def test_serve_names_the_records_of_a_callback_by_the_same_rule_as_convert(tmp_path: Path):
    body = json.dumps(records_titled("t1", "Song", "SONG", "Song")).encode()
    (tmp_path / "cb.json").write_bytes(body)
    result = run("convert", str(tmp_path / "cb.json"), "-o", str(tmp_path / "convert"), "--name", "{title}")
    assert result.exit_code == 0, result.stderr
    stored = CallbackStore(tmp_path / "serve").store("t1", body)
    outcome = handle_stored(str(stored.path), str(tmp_path / "serve"), ConvertOptions(name="{title}"))
    assert sorted(Path(p).name for p in outcome["files"]) == sorted(p.name for p in (tmp_path / "convert").iterdir())

    def pitches(folder: Path) -> dict[str, set[int]]:  # each name holds the same record's note, not only the names
        return {p.name: {m.note for t in mido_file(p.read_bytes()).tracks for m in t if m.type == "note_on"}
                for p in folder.glob("*.mid")}  # fmt: skip

    assert pitches(tmp_path / "serve") == pitches(tmp_path / "convert") and len(pitches(tmp_path / "serve")) == 3
    # A crash after the files, before the outcome marker: done again, it writes nothing twice.
    done_path(stored.path).unlink()
    again = handle_stored(str(stored.path), str(tmp_path / "serve"), ConvertOptions(name="{title}"))
    assert again["files"] == outcome["files"]
    assert sorted(p.name for p in (tmp_path / "serve").glob("*.mid")) == sorted(Path(p).name for p in outcome["files"])


def test_a_record_that_fails_once_read_still_claims_its_name_so_a_resumed_conversion_writes_it_under_it(
    tmp_path: Path,
):
    payload = records_titled("t1", "Song", "Song", "Song")  # pitches 60, 61, 62
    first = payload["data"][0]["instruments"][0]["notes"]  # type: ignore[index]
    first.append({"pitch": 200, "start": 0.5, "end": 1.0, "velocity": 0.8})  # refused under --strict, else left out
    stored = CallbackStore(tmp_path / "serve").store("t1", json.dumps(payload).encode())

    def pitches() -> dict[str, set[int]]:
        return {p.name: {m.note for t in mido_file(p.read_bytes()).tracks for m in t if m.type == "note_on"}
                for p in (tmp_path / "serve").glob("*.mid")}  # fmt: skip

    # Named by a template, alike: "Song", "Song-2", "Song-3" (by default each is named by its place, "t1-2").
    strict = handle_stored(str(stored.path), str(tmp_path / "serve"), ConvertOptions(strict=True, name="{title}"))
    assert strict["outcome"] == "converted" and len(strict["errors"]) == 1
    assert pitches() == {"Song-2.mid": {61}, "Song-3.mid": {62}}  # the names they have when the first converts too
    # The server restarted without --strict before the outcome marker was written: the
    # callback is converted again, and the first record takes its own name, once.
    done_path(stored.path).unlink()
    again = handle_stored(str(stored.path), str(tmp_path / "serve"), ConvertOptions(name="{title}"))
    assert again["outcome"] == "converted" and not again["errors"]
    assert pitches() == {"Song.mid": {60}, "Song-2.mid": {61}, "Song-3.mid": {62}}


# A conversion worker killed (SIGKILL, the out-of-memory killer) costs at most the callback
# it was converting: the server goes on answering, and later callbacks convert.


def conversion_workers(server: Server) -> list[int]:
    """The pids of the server's conversion workers (spawned: their command line says so)."""

    def spawned(pid: int) -> bool:
        try:
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # it has just ended
            return False

    return [pid for pid in children_of(server.process.pid) if spawned(pid)]


def exited(pid: int) -> bool:
    """Whether a process has ended with its files closed: reaped, or a zombie (Linux closes a dying
    process's files before it becomes one; its command line reads empty earlier, while they are open)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # reaped
        return True
    return state in (b"Z", b"X")


def converted_lines(server: Server) -> list[dict[str, object]]:
    return [line for line in server.lines() if line.get("event") == "converted"]


# Spawned conversion workers run this sitecustomize (the server itself does not): the
# .mid named ``name`` is held half-written (in its temporary file, before the hard link
# that names it), after the marker file is made, until its worker is killed.
HOLD_WRITE = """
import os, sys
if any("spawn_main" in arg for arg in sys.orig_argv):
    import threading
    from pathlib import Path

    link = os.link

    def held(source, target, *args, **kwargs):
        if os.path.basename(target) == {name!r}:
            Path({marker!r}).touch()
            threading.Event().wait()  # no further
        return link(source, target, *args, **kwargs)

    os.link = held
"""


def holding_site(tmp_path: Path, name: str, marker: Path) -> Path:
    """Return a folder whose sitecustomize holds the write of the .mid ``name`` half-way (see HOLD_WRITE)."""
    site = tmp_path / "hold"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HOLD_WRITE.format(name=name, marker=str(marker)))
    return site


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find workers")


@linux_only
def test_conversion_workers_killed_between_callbacks_cost_nothing(server: Server):
    assert post(server, callback("before"), signed_headers("before")).status_code == 200
    wait_for(lambda: converted_lines(server))  # its worker has answered: it is idle now
    workers = conversion_workers(server)
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: all(exited(pid) for pid in workers))  # dead with its pipes closed: between callbacks
    for task in ("after-1", "after-2", "after-3"):
        assert post(server, callback(task), signed_headers(task)).status_code == 200
    wait_for(lambda: len(converted_lines(server)) == 4)
    assert [line["outcome"] for line in converted_lines(server)] == ["converted"] * 4
    assert sorted(p.stem for p in server.out.glob("*.mid")) == ["after-1", "after-2", "after-3", "before"]
    health = httpx.get(server.url.rsplit("/", 1)[0] + "/healthz").json()
    assert (health["converted"], health["failed"]) == (4, 0)


@linux_only
def test_a_worker_killed_during_a_conversion_fails_that_callback_alone_until_the_next_start(tmp_path: Path):
    out, begun = tmp_path / "out", tmp_path / "begun"
    hold = holding_site(tmp_path, "doomed.mid", begun)
    server = start_server(out, "--hmac-key", KEY, "-j", "1", python_path=(str(hold),))
    try:
        [worker] = conversion_workers(server)
        assert post(server, callback("doomed"), signed_headers("doomed")).status_code == 200
        wait_for(begun.exists, timeout_s=60)  # its worker is held half-way through writing the .mid
        assert list(out.glob(".midiexport-*.tmp")) and not (out / "doomed.mid").exists()
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: converted_lines(server))
        [lost] = converted_lines(server)
        assert (lost["task_id"], lost["outcome"]) == ("doomed", "failed")
        assert "killed by SIGKILL" in str(lost["error"]) and "converted again" in str(lost["error"])
        for task in ("next-1", "next-2"):  # a new worker takes the next callbacks
            assert post(server, callback(task), signed_headers(task)).status_code == 200
        wait_for(lambda: len(converted_lines(server)) == 3)
        assert [line["outcome"] for line in converted_lines(server)] == ["failed", "converted", "converted"]
        assert sorted(p.name for p in out.glob("*.mid")) == ["next-1.mid", "next-2.mid"]  # nothing for the lost one
    finally:
        stop(server)
    again = start_server(out, "--hmac-key", KEY, "-j", "1")  # its body was kept: converted now
    try:
        wait_for(lambda: (out / "doomed.mid").exists(), timeout_s=60)
    finally:
        stop(again)
    assert not list(out.rglob(".midiexport-*"))  # the killed worker's temporary file is swept at the start


def health(server: Server) -> httpx.Response:
    return httpx.get(server.url.rsplit("/", 1)[0] + "/healthz", timeout=10)


def health_status(server: Server) -> int:
    """/healthz's status, 0 while the server does not answer yet (it starts its workers first)."""
    try:
        return health(server).status_code
    except httpx.TransportError:
        return 0


def test_healthz_is_503_while_no_conversion_worker_can_start(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()  # every spawned worker ends as it starts; the server itself runs as ever
    (site / "sitecustomize.py").write_text("import os, sys\nif any('spawn_main' in a for a in sys.orig_argv):\n"
                                           "    os._exit(3)\n")  # fmt: skip
    server = start_server(tmp_path / "out", python_path=(str(site),), healthy=False)
    try:
        wait_for(lambda: health_status(server) == 503)
        answer = health(server)
        assert answer.json()["status"] == "not ready"
        assert "no conversion worker could be started" in answer.json()["reason"]
        assert post(server, callback("kept")).status_code == 200  # still stored: converted at a later start
        assert health(server).status_code == 503
    finally:
        stop(server)
    again = start_server(tmp_path / "out")  # workers start now: ready, and the stored callback converts
    try:
        assert health(again).json()["status"] == "ok"
        wait_for(lambda: (again.out / "kept.mid").exists(), timeout_s=60)
    finally:
        stop(again)


def test_a_public_host_without_a_key_is_refused_and_the_cli_names_the_flags(tmp_path):
    from midiexport.cli.serve import check_host

    with pytest.raises(click.UsageError):
        check_host("0.0.0.0", hmac_key=None, insecure_public=False)
    check_host("0.0.0.0", hmac_key="k", insecure_public=False)  # a key, or the flag, lets it listen
    check_host("0.0.0.0", hmac_key=None, insecure_public=True)
    check_host("::1", hmac_key=None, insecure_public=False)  # loopback needs neither
    result = run("serve", "--host", "0.0.0.0", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "set --hmac-key (or MIDIEXPORT_WEBHOOK_KEY), or pass --insecure-public" in result.stderr


def test_a_report_that_stops_taking_lines_costs_a_log_line_per_callback_and_conversions_go_on(tmp_path: Path):
    report = tmp_path / "report.jsonl"
    server = start_server(tmp_path / "out", "-j", "1", "--report", str(report))
    try:
        report.unlink(missing_ok=True)  # made at start-up, when it is checked
        report.mkdir()  # appending now fails (IsADirectoryError) for every outcome
        tasks = [f"on-{i}" for i in range(12)]
        bodies = [(t, callback(t)) for t in tasks]
        assert send_many(server, bodies, concurrency=12) == [200] * len(tasks)
        wait_for(lambda: all((server.out / f"{t}.mid").exists() for t in tasks), timeout_s=60)
        wait_for(lambda: health(server).json()["converted"] == len(tasks))
        assert health(server).json()["waiting"] == 0
        failures = [line for line in server.lines() if line.get("event") == "report not written"]
        assert sorted(str(line["task_id"]) for line in failures) == sorted(tasks)
        assert all(str(report) in str(line["outcome"]) for line in failures)
    finally:
        stop(server)
    assert "Traceback" not in server.log.read_text()


def serve_refused(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``serve --port 0 ARGS`` as its own process, expected to refuse at start-up (killed after 30 s if not)."""
    command = [sys.executable, "-m", "midiexport", "serve", "--port", "0", *args]
    return subprocess.run(command, cwd=ROOT, env=package_env(), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)  # fmt: skip


@pytest.mark.parametrize("where", ["folder", "under a file", "proc"])
def test_a_report_path_that_cannot_be_appended_to_is_a_usage_error_naming_report(tmp_path: Path, where: str):
    plain = tmp_path / "plain"
    plain.write_text("x")
    report = {"folder": tmp_path, "under a file": plain / "report.jsonl", "proc": Path("/proc/x")}[where]
    done = serve_refused("-o", str(tmp_path / "out"), "--report", str(report))
    assert done.returncode == 2, done.stderr
    assert "listening on" not in done.stderr
    assert f"--report {report}" in done.stderr.splitlines()[-1]


def test_serve_starts_again_on_the_report_it_appended_to(tmp_path: Path):
    report = tmp_path / "report.jsonl"
    for task_id in ("first", "second"):  # the second start appends to the first start's lines
        running = start_server(tmp_path / "out", "--report", str(report))
        try:
            assert post(running, callback(task_id)).status_code == 200
            wait_for(lambda task_id=task_id: task_id in report.read_text())
        finally:
            stop(running)
    assert [json.loads(line)["task_id"] for line in report.read_text().splitlines()] == ["first", "second"]


def test_an_empty_hmac_key_is_no_key(tmp_path: Path):
    from midiexport.cli.serve import check_host

    with pytest.raises(click.UsageError):
        check_host("0.0.0.0", hmac_key="", insecure_public=False)
    refused = run("serve", "--host", "0.0.0.0", "--hmac-key", "", "-o", str(tmp_path))
    assert refused.exit_code == 2
    assert "set --hmac-key (or MIDIEXPORT_WEBHOOK_KEY), or pass --insecure-public" in refused.stderr
    server = start_server(tmp_path / "out", "--hmac-key", "")  # loopback: allowed, and unsigned as without a key
    try:
        assert post(server, callback("no-key")).status_code == 200
    finally:
        stop(server)


@pytest.mark.parametrize("path", ["callback", ""])
def test_a_callback_path_without_a_leading_slash_is_a_usage_error(tmp_path: Path, path: str):
    done = serve_refused("-o", str(tmp_path / "out"), "--path", path)
    assert done.returncode == 2, done.stderr
    assert "listening on" not in done.stderr and "Traceback" not in done.stderr
    assert "--path" in done.stderr.splitlines()[-1]


def test_an_output_folder_that_is_a_file_or_cannot_be_made_blames_o(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    for out, status, words in [(plain, 2, "is a file, not a folder"),
                               (Path("/proc/sv"), 1, "No such file or directory")]:  # fmt: skip
        done = serve_refused("-o", str(out))
        assert done.returncode == status, done.stderr
        last = done.stderr.splitlines()[-1]
        assert f"-o {out}" in last and words in last and "listen" not in last


def test_a_new_output_path_with_a_suffix_is_refused_as_convert_refuses_it_and_made_with_a_slash(tmp_path: Path):
    out = tmp_path / "out.txt"
    # --report a folder: refused too, after -o, so that no server would listen in this process if -o were taken.
    refused = run("serve", "--port", "0", "-o", str(out), "--report", str(tmp_path))
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.splitlines()[-1] == (f"Error: -o {out} names a file, not a folder; serve writes many files "
                                              f"into a folder: give {out}/ (a trailing /) for a folder of that name")  # fmt: skip
    assert not out.exists()
    # With the slash it is a folder, made before --report is checked.
    made = run("serve", "--port", "0", "-o", f"{out}/", "--report", str(tmp_path))
    assert made.exit_code == 2 and f"--report {tmp_path}" in made.stderr.splitlines()[-1], made.output
    assert out.is_dir()


def test_ctrl_c_ends_the_server_with_130_and_no_abort_line(tmp_path: Path):
    running = start_server(tmp_path / "out")
    assert post(running, callback("before-c")).status_code == 200
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=60) == 130
    text = running.log.read_text()
    assert "Aborted" not in text and "Traceback" not in text
    assert (running.out / "before-c.mid").exists()


def test_serve_help_says_what_serve_does_with_the_shared_options():
    text = " ".join(run("serve", "--help").output.split())
    assert "for stdout" not in text and "for fetch" not in text
    assert "Conversion worker processes" in text and "one JSON line per converted callback" in text
    convert = " ".join(run("convert", "--help").output.split())  # the shared options keep their help elsewhere
    assert "- for stdout" in convert and "for fetch, tasks asked at once" in convert


def test_the_library_refuses_an_empty_webhook_key(tmp_path: Path):
    from midiexport.jobs.serve import ServeOptions

    with pytest.raises(ValueError, match="hmac_key is empty"):
        ServeOptions(out_dir=tmp_path, hmac_key="")
    assert ServeOptions(out_dir=tmp_path, hmac_key=None).hmac_key is None


def test_serve_help_says_tempo_map_and_max_input_mb_are_not_used_by_serve():
    text = " ".join(run("serve", "--help").output.split())
    assert "For .mid input" not in text and "Largest input file" not in text
    assert "--tempo-map [bpm|keep] Not used by serve" in text
    assert "--max-input-mb MB Not used by serve: a callback's size is limited by --max-body-mb" in text


def test_serve_help_of_verbose_says_what_serve_does_with_it_given_with_quiet():
    text = " ".join(run("serve", "--help").output.split())
    assert "-v, --verbose Not used by serve: its log has every field already. Refused with -q" in text
    refused = run("serve", "-q", "-v")
    assert refused.exit_code == 2 and "-q (only errors) and -v (every warning)" in refused.stderr


def test_a_callback_path_equal_to_the_health_route_is_refused_at_start_up(tmp_path: Path):
    from midiexport.jobs.serve import ServeOptions

    path = "/healthz"
    done = serve_refused("-o", str(tmp_path / "out"), "--path", path)
    assert done.returncode == 2, done.stderr
    assert "listening on" not in done.stderr and "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert "--path" in last and "health route" in last
    with pytest.raises(ValueError, match="health route"):
        ServeOptions(out_dir=tmp_path, path=path)


def test_with_q_a_report_that_cannot_take_a_line_is_logged_with_its_fields_and_no_request_log(tmp_path: Path):
    report = tmp_path / "report.jsonl"
    server = start_server(tmp_path / "out", "-q", "--report", str(report))
    try:
        report.unlink(missing_ok=True)
        report.mkdir()  # appending now fails (IsADirectoryError)
        assert post(server, callback("quiet-1")).status_code == 200
        wait_for(lambda: (server.out / "quiet-1.mid").exists())
        wait_for(lambda: any(line.get("event") == "report not written" for line in server.lines()))
    finally:
        stop(server)
    text = server.log.read_text()
    [failure] = server.lines()
    assert failure["event"] == "report not written" and failure["task_id"] == "quiet-1"
    assert str(report) in str(failure["outcome"])
    assert "\nreport not written\n" not in f"\n{text}"  # never the bare message
    assert not [line for line in server.lines() if line.get("event") in ("request", "converted")]


def test_an_empty_key_from_the_environment_is_no_key(tmp_path: Path):
    refused = run("serve", "--host", "0.0.0.0", "-o", str(tmp_path), env={"MIDIEXPORT_WEBHOOK_KEY": ""})
    assert refused.exit_code == 2
    assert "set --hmac-key (or MIDIEXPORT_WEBHOOK_KEY), or pass --insecure-public" in refused.stderr


def test_serve_makes_a_missing_output_folder_and_a_report_inside_it(tmp_path: Path):
    out = tmp_path / "midi"  # made by serve, as its parent holds the server's log
    report = out / "report.jsonl"  # inside the folder serve makes: checked after it is made
    server = start_server(out, "--report", str(report))
    try:
        assert post(server, callback("made-1")).status_code == 200
        wait_for(lambda: "made-1" in (report.read_text() if report.exists() else ""))
    finally:
        stop(server)
    assert (out / "made-1.mid").exists()


def test_an_output_folder_named_with_bytes_that_are_not_utf8_gives_valid_json_log_and_report_lines(tmp_path: Path):
    out = Path(os.fsdecode(bytes(tmp_path) + b"/out-\xe9\xff"))  # a Latin-1 name: not UTF-8
    server = start_server(out, "--hmac-key", KEY, "--report", str(out / "report.jsonl"))
    try:
        assert post(server, callback("latin"), signed_headers("latin")).status_code == 200
        wait_for(lambda: any(line.get("event") == "converted" for line in server.lines()))
    finally:
        stop(server)
    shown = f"{os.fsdecode(bytes(tmp_path))}/out-\\xe9\\xff/latin.mid"  # each byte as \xNN, as --report spells it
    [converted] = [line for line in server.lines() if line.get("event") == "converted"]
    assert (converted["outcome"], converted["files"]) == ("converted", [shown])
    assert [json.loads(line)["files"] for line in (out / "report.jsonl").read_text().splitlines()] == [[shown]]
    assert "Traceback" not in server.log.read_text() and "Logging error" not in server.log.read_text()
    assert (out / "latin.mid").is_file()
