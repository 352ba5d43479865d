"""Load and crash figures for ``midiexport serve``, printed from one run.

    python bench/bench_serve.py [--callbacks 2000] [--concurrency 64] [--repeat-share 0.1]

Starts the real server (uvicorn, 2 conversion workers, a webhook key) on 127.0.0.1,
sends signed callbacks of a 2,215-note song (the bundled sample) from ``concurrency``
clients at once, some of them twice, and reports requests per second, p50/p99
response times, conversions per second (until the last .mid is written), lost
callbacks (answered 200 but never converted), duplicated files and the server's peak
memory (VmHWM of the server and its workers). Then the same load
again, with the server killed (SIGKILL) halfway and restarted: every callback answered
200 before the kill must be converted after the restart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from midiexport.io.receiver import sign  # noqa: E402

KEY = "bench-webhook-key"
SAMPLE = ROOT / "samples" / "sample-song.json"


def start(out: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server; return it and its callback URL."""
    command = [sys.executable, "-m", "midiexport", "serve", "--port", "0", "-o", str(out), "-j", "2",
               "--hmac-key", KEY, "--log", str(log)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline().decode()
    url = line.split("listening on ", 1)[1].split()[0]
    health = url.rsplit("/", 1)[0] + "/healthz"
    while True:
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)


def peak_memory_kib(pid: int) -> int:
    """VmHWM of a process and its children (started by any of its threads), in KiB."""
    threads = Path(f"/proc/{pid}/task").iterdir()
    pids = [pid, *(int(child) for thread in threads for child in (thread / "children").read_text().split())]
    total = 0
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


async def send_all(url: str, items: list[tuple[str, bytes]], concurrency: int) -> list[tuple[str, int, float]]:
    """POST each body; return (task id, status or 0, seconds) per request."""
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    results: list[tuple[str, int, float]] = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def worker() -> None:
            while not queue.empty():
                task_id, body = queue.get_nowait()
                stamp = str(int(time.time()))
                headers = {"Content-Type": "application/json", "X-Webhook-Timestamp": stamp,
                           "X-Webhook-Signature": sign(KEY, task_id, stamp)}  # fmt: skip
                started = time.perf_counter()
                try:
                    status = (await client.post(url, content=body, headers=headers)).status_code
                except httpx.TransportError:
                    status = 0
                results.append((task_id, status, time.perf_counter() - started))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def bodies(count: int, repeat_share: float, seed: int) -> tuple[list[str], list[tuple[str, bytes]]]:
    song = json.loads(SAMPLE.read_text())
    midi = song["data"]["midiData"]
    tasks = [f"bench-{seed}-{i:05d}" for i in range(count)]
    items = [(t, json.dumps({"task_id": t, "code": 200, "msg": "success", "data": midi}).encode()) for t in tasks]
    rng = random.Random(seed)
    items += rng.sample(items, int(count * repeat_share))  # the API may send a callback more than once
    rng.shuffle(items)
    return tasks, items


def wait_converted(out: Path, expected: set[str], timeout_s: float) -> set[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = {p.stem for p in out.glob("*.mid")}
        if found >= expected:
            return found
        time.sleep(0.2)
    return {p.stem for p in out.glob("*.mid")}


def load_run(args: argparse.Namespace, folder: Path) -> None:
    out = folder / "load"
    tasks, items = bodies(args.callbacks, args.repeat_share, seed=1)
    process, url = start(out, folder / "load.log")
    started = time.perf_counter()
    results = asyncio.run(send_all(url, items, args.concurrency))
    elapsed = time.perf_counter() - started
    converted = wait_converted(out, {task for task, status, _ in results if status == 200}, timeout_s=600)
    converting_s = time.perf_counter() - started
    memory = peak_memory_kib(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    times = sorted(seconds for _, status, seconds in results if status == 200)
    ok = sum(1 for _, status, _ in results if status == 200)
    statuses = sorted({status for _, status, _ in results})
    shown = ", ".join(
        f"{sum(1 for _, s, _ in results if s == status)} x {status or 'no answer'}" for status in statuses
    )
    accepted = {task for task, status, _ in results if status == 200}
    lost = len(accepted - converted)
    duplicated = len([p for p in out.glob("*.mid") if p.stem not in tasks])
    print(f"load: {len(items)} callbacks ({len(items) - len(tasks)} repeats) at concurrency {args.concurrency}: "
          f"{ok} answered 200 ({shown}), {len(items) / elapsed:.0f} requests/s, "
          f"p50 {statistics.median(times) * 1e3:.1f} ms, "
          f"p99 {times[int(len(times) * 0.99) - 1] * 1e3:.1f} ms; {lost} lost, {duplicated} duplicated files; "
          f"peak memory {memory / 1024:.0f} MiB (server and 2 workers); every song converted "
          f"{converting_s:.1f} s after the first request ({len(converted) / converting_s:.1f} songs/s)")  # fmt: skip


def crash_run(args: argparse.Namespace, folder: Path) -> None:
    out = folder / "crash"
    tasks, items = bodies(args.callbacks, args.repeat_share, seed=2)
    process, url = start(out, folder / "crash-1.log")

    async def kill_halfway() -> list[tuple[str, int, float]]:
        sending = asyncio.ensure_future(send_all(url, items, args.concurrency))
        while len(list((out / "callbacks").glob("*/*.json"))) < len(tasks) // 2:
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        return await sending

    results = asyncio.run(kill_halfway())
    process.wait()
    accepted = {task for task, status, _ in results if status == 200}
    restarted, _ = start(out, folder / "crash-2.log")
    converted = wait_converted(out, accepted, timeout_s=600)
    restarted.send_signal(signal.SIGTERM)
    restarted.wait(timeout=120)
    print(f"crash: SIGKILL after {len(accepted)} of {len(tasks)} songs were answered 200; after the restart "
          f"{len(accepted & converted)} of them converted, {len(accepted - converted)} lost; "
          f"{len(list(out.rglob('*.tmp')))} temporary files left")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat-share", type=float, default=0.1)
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:
        load_run(args, Path(folder))
        crash_run(args, Path(folder))


if __name__ == "__main__":
    main()
