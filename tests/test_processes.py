"""Processes under hostile conditions: real batches, real worker processes, real signals.

Workers end when the main process dies (even by SIGKILL), a signal to the whole
process group ends the run quietly with the contract's status, and a batch never
starts more workers than it has work.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SAMPLE, children_of, mido_file, package_env
from midiexport.io.files import find_inputs
from midiexport.jobs.convert_files import run_batch
from midiexport.jobs.runner import Destination, start_worker
from midiexport.options import ConvertOptions

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find workers")


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a dead process not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_until(check, timeout_s: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``check`` until it is true (True) or ``timeout_s`` has passed (False): generous, for a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def start_batch(tmp_path: Path, inputs: int = 300, jobs: str = "2", **popen) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(inputs):
        shutil.copy(SAMPLE, folder / f"song{i:03d}.json")
    command = [sys.executable, "-m", "midiexport", "convert", str(folder), "-o", str(tmp_path / "out"), "-j", jobs]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=default_sigint, **popen)  # fmt: skip


def default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it
    # ignored; a suite run that way would see no Ctrl-C at all.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def workers_started(batch: subprocess.Popen[bytes], count: int) -> list[int]:
    assert wait_until(lambda: len(children_of(batch.pid)) >= count), "the batch started no workers"
    assert wait_until(lambda: (batch_out(batch) / "song001.mid").exists()), "the batch wrote nothing"
    return children_of(batch.pid)


def batch_out(batch: subprocess.Popen[bytes]) -> Path:
    return Path(batch.args[batch.args.index("-o") + 1])  # type: ignore[union-attr, index]


def test_workers_end_when_the_main_process_is_killed(tmp_path):
    batch = start_batch(tmp_path)
    workers = workers_started(batch, 2)
    assert len(workers) == 2
    batch.send_signal(signal.SIGKILL)
    batch.communicate(timeout=30)
    assert wait_until(lambda: not any(is_running(w) for w in workers), timeout_s=30), "orphaned workers"


def test_workers_end_when_the_main_process_is_killed_mid_way_again(tmp_path):
    batch = start_batch(tmp_path, jobs="3")
    workers = workers_started(batch, 3)
    # Later in the batch, with the workers busy, not idle: files past the first are written.
    assert wait_until(lambda: (batch_out(batch) / "song020.mid").exists()), "the batch went no further"
    batch.send_signal(signal.SIGKILL)
    batch.communicate(timeout=30)
    assert wait_until(lambda: not any(is_running(w) for w in workers), timeout_s=30), "orphaned workers"


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_whole_group_ends_quietly(tmp_path, sent, status):
    batch = start_batch(tmp_path, start_new_session=True)
    workers = workers_started(batch, 2)
    os.killpg(batch.pid, sent)
    _, stderr = batch.communicate(timeout=60)
    assert batch.returncode == status, stderr
    lines = [line for line in stderr.decode().splitlines() if not line.startswith("wrote ")]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), stderr.decode()
    assert wait_until(lambda: not any(is_running(w) for w in workers), timeout_s=30)


@pytest.mark.parametrize("gap_s", [0.0005, 0.002])
def test_a_second_sigterm_soon_after_the_first_ends_as_quietly(tmp_path, gap_s):
    # The second arrives while the first unwinds the batch: its generators' clean-up waits
    # for the workers, and a signal raised in there was printed as "Exception ignored in:
    # <generator object run_in_processes>" (14 of 15 runs at 0.5 ms, 11 of 15 at 2 ms).
    batch = start_batch(tmp_path, inputs=120)
    workers_started(batch, 2)
    batch.send_signal(signal.SIGTERM)
    time.sleep(gap_s)  # a chosen moment, not a wait
    batch.send_signal(signal.SIGTERM)
    _, stderr = batch.communicate(timeout=60)
    assert batch.returncode == 143, stderr
    lines = [line for line in stderr.decode().splitlines() if not line.startswith("wrote ")]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), stderr.decode()


def _worker_then_wait(parent_pid: int, prepared) -> None:  # type: ignore[no-untyped-def]
    start_worker(parent_pid)
    prepared.set()
    time.sleep(30)  # a worker waiting for work


def test_a_worker_ends_quietly_on_sigterm(tmp_path):
    # The main process holds SIGTERM while it forks, and its own handler raises an
    # exception: the worker must take the signal back and die of it, without a word.
    context = multiprocessing.get_context("fork")
    prepared = context.Event()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(RuntimeError("traceback")))
    try:
        worker = context.Process(target=_worker_then_wait, args=(os.getpid(), prepared))
        worker.start()
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    assert prepared.wait(timeout=60), "the worker never got past start_worker"  # the signal meets a prepared worker
    assert worker.is_alive()
    os.kill(worker.pid, signal.SIGTERM)  # type: ignore[arg-type]
    worker.join(timeout=10)
    assert worker.exitcode == -signal.SIGTERM


@pytest.mark.parametrize("delay_s", [0.0, 0.001, 0.01])
def test_a_signal_while_workers_start_is_not_lost(tmp_path, delay_s):
    batch = start_batch(tmp_path, inputs=40, jobs="4", start_new_session=True)
    assert wait_until(lambda: len(children_of(batch.pid)) >= 1)
    time.sleep(delay_s)  # a chosen moment, not a wait: the other workers may still be forking
    os.killpg(batch.pid, signal.SIGTERM)
    _, stderr = batch.communicate(timeout=60)
    assert batch.returncode == 143, stderr
    lines = [line for line in stderr.decode().splitlines() if not line.startswith("wrote ")]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), stderr.decode()


def test_a_worker_whose_parent_is_already_gone_exits_at_once():
    # The parent pid handed to the worker is not its parent: as if the parent had died
    # before the worker asked the kernel to follow it.
    worker = multiprocessing.get_context("fork").Process(target=start_worker, args=(os.getpid() + 10**6,))
    worker.start()
    worker.join(timeout=10)
    assert worker.exitcode == 1


def workers_of(batch) -> int:  # type: ignore[no-untyped-def]
    """Run a batch in this process; return how many worker processes it started."""
    before = {p.pid for p in multiprocessing.active_children()}  # workers of earlier tests may linger
    started: set[int] = set()
    for pending in batch:
        started |= {p.pid for p in multiprocessing.active_children()} - before
        assert all(o.error is None for o in pending.result())
    return len(started)


@pytest.mark.parametrize(("inputs", "jobs", "most"), [(3, 64, 3), (2, 8, 2), (5, 2, 2), (1, 64, 0)])
def test_never_more_workers_than_inputs(tmp_path, inputs, jobs, most):
    for i in range(inputs):
        shutil.copy(SAMPLE, tmp_path / f"s{i}.json")
    sources = find_inputs([str(tmp_path / f"s{i}.json") for i in range(inputs)])
    seen = workers_of(run_batch(sources, ConvertOptions(), Destination(str(tmp_path / "out")), jobs=jobs))
    assert seen <= most
    if most:
        assert seen >= 1  # the pool did run
    assert len(list((tmp_path / "out").iterdir())) == inputs


def test_never_more_workers_than_lines_of_a_json_lines_input(tmp_path):
    line = SAMPLE.read_bytes().replace(b"\n", b" ")
    (tmp_path / "songs.jsonl").write_bytes(b"\n".join([line] * 3) + b"\n")
    sources = find_inputs([str(tmp_path / "songs.jsonl")])
    seen = workers_of(run_batch(sources, ConvertOptions(), Destination(str(tmp_path / "out")), jobs=64))
    assert 1 <= seen <= 3


# A worker killed while it sends a result. The kill is timed from inside the worker:
# its result's first write (the 4-byte length header of a message too big to go in
# one write) is let through, then the worker SIGKILLs itself, leaving half a message
# in the pipe. The pool is the real one, run by a real batch in a child process.
KILLED_WHILE_SENDING = """
import os, signal, sys
from multiprocessing.connection import Connection
from midiexport.jobs.runner import run_in_processes

def work(job):
    if job == 3:
        real = Connection._send
        def send_then_die(self, buf, *rest):
            real(self, buf, *rest)
            os.kill(os.getpid(), signal.SIGKILL)
        Connection._send = send_then_die
        return b"x" * 1_000_000
    return job * 10

for job, get in run_in_processes(range(8), work, workers=2):
    try:
        print(job, get() if job != 3 else len(get()), flush=True)
    except Exception as exc:
        print(job, "error:", type(exc).__name__, exc, flush=True)
"""


def test_a_worker_killed_while_sending_its_result_loses_that_job_only():
    run = subprocess.run([sys.executable, "-c", KILLED_WHILE_SENDING], capture_output=True, text=True, timeout=60,
                         start_new_session=True, env=package_env())  # fmt: skip
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stderr
    assert [line.split()[0] for line in lines] == [str(job) for job in range(8)]
    assert [line for line in lines if not line.startswith("3 ")] == [
        f"{job} {job * 10}" for job in range(8) if job != 3
    ]
    assert lines[3].startswith("3 error: WorkerLost "), lines[3]
    assert "killed by SIGKILL" in lines[3]


def test_a_batch_whose_worker_is_killed_reports_the_lost_input_and_keeps_the_rest(tmp_path):
    batch = start_batch(tmp_path, inputs=200, jobs="2")
    os.kill(workers_started(batch, 2)[0], signal.SIGKILL)  # a busy worker: each has a job and the next
    _, stderr = batch.communicate(timeout=120)
    lost = [line for line in stderr.decode().splitlines() if "worker process was killed by SIGKILL" in line]
    assert batch.returncode == 1, stderr.decode()
    assert len(lost) == 1, stderr.decode()
    assert lost[0].endswith("; nothing was written for it; run the same command again to convert it")
    written = {path.name: path.read_bytes() for path in batch_out(batch).iterdir()}
    lost_input = Path(lost[0].split(": ")[0])
    assert lost_input.parent == tmp_path / "in"
    assert set(written) == {f"song{i:03d}.mid" for i in range(200)} - {lost_input.with_suffix(".mid").name}
    assert len(set(written.values())) == 1  # every input is the same song: every file whole and alike
    assert mido_file(next(iter(written.values()))).tracks


def _fails_on_two(job: int) -> int:
    if job == 2:
        raise ValueError("two is a bad job")
    return job


def test_an_error_in_a_worker_is_raised_for_its_job_with_the_workers_traceback():
    from midiexport.jobs.runner import RemoteTraceback, run_in_processes

    answers = []
    for _job, get in run_in_processes(range(5), _fails_on_two, workers=2):
        try:
            answers.append(get())
        except ValueError as exc:
            assert isinstance(exc.__cause__, RemoteTraceback)
            assert "_fails_on_two" in str(exc.__cause__)
            answers.append(str(exc))
    assert answers == [0, 1, "two is a bad job", 3, 4]


def _echo(job: bytes) -> bytes:
    return job[::-1]


def test_jobs_and_results_larger_than_a_pipe_go_through_in_order():
    # Each job and each result is bigger than a pipe's buffer: a job is sent only to a
    # worker that will read it, never ahead to one that may be blocked sending its result.
    from midiexport.jobs.runner import run_in_processes

    jobs = [bytes([i]) * 200_000 + b"end" for i in range(12)]
    answers = [get() for _, get in run_in_processes(jobs, _echo, workers=2)]
    assert answers == [job[::-1] for job in jobs]


def _times_ten(job: int) -> int:
    return job * 10


def _times_ten_then_mark(job: tuple[int, str]) -> int:
    """Return ``number * 10``; once that answer is in the pipe, create the file ``marker`` (in the worker)."""
    from multiprocessing.connection import Connection

    number, marker = job
    real = Connection.send

    def send_then_mark(self, obj):  # type: ignore[no-untyped-def]
        real(self, obj)
        Path(marker).touch()

    Connection.send = send_then_mark  # type: ignore[method-assign] # in this worker process only
    return number * 10


def test_a_worker_killed_between_jobs_costs_nothing(tmp_path):
    # The worker answers job 0 and is killed while it waits for more. Its answer still
    # counts, and job 1, sent to it and refused by its closed pipe, goes to a new worker.
    from midiexport.jobs.runner import run_in_processes

    answered = tmp_path / "answered"

    def jobs():  # type: ignore[no-untyped-def]
        yield 0, str(answered)
        assert wait_until(lambda: len(multiprocessing.active_children()) == 1)
        worker = multiprocessing.active_children()[0]
        assert wait_until(answered.exists)  # its answer to job 0 waits in its pipe
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        worker.join(timeout=30)
        yield 1, str(tmp_path / "unused")

    assert [get() for _, get in run_in_processes(jobs(), _times_ten_then_mark, workers=1)] == [0, 10]


def test_a_refused_job_is_forgotten_once_it_is_sent():
    # A long-running pool (serve's) must not keep one entry per job a dead worker refused.
    from midiexport.jobs.runner import WorkerPool

    pool = WorkerPool(_times_ten, 1)
    try:
        assert pool.result(pool.submit(1)) == 10
        [worker] = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        worker.join(timeout=10)
        assert pool.result(pool.submit(2)) == 20  # refused by the dead worker's pipe, then sent to a new one
        assert pool._refused == {}
    finally:
        pool.close()


def _times_ten_or_die(job: int) -> int:
    if job < 0:
        os._exit(3)  # as a worker killed by one input (out of memory) ends
    return job * 10


def test_a_worker_a_job_kills_at_once_had_started():
    # serve's /healthz says "not ready" only while workers die before they can start: a
    # worker whose very first job kills it (an input too large) did start.
    from midiexport.errors import WorkerLost
    from midiexport.jobs.runner import WorkerPool

    pool = WorkerPool(_times_ten_or_die, 1)
    try:
        with pytest.raises(WorkerLost):
            pool.result(pool.submit(-1))
        assert pool.unstarted_losses == 0
        assert pool.result(pool.submit(4)) == 40
    finally:
        pool.close()


# Ctrl-C while a job larger than a pipe's buffer is half sent to a worker: the pool must
# still close. The worker, half-way through reading that job, cannot take a polite stop
# message (it would read it as the rest of the job and wait on for ever).
INTERRUPTED_WHILE_SENDING = """
from multiprocessing.connection import Connection
from midiexport.jobs.runner import run_in_processes

real = Connection._send

def half_then_interrupt(self, buf, *rest):
    if len(buf) > 100_000:  # the job's bytes, after its length header
        real(self, buf[: len(buf) // 2], *rest)
        raise KeyboardInterrupt
    real(self, buf, *rest)

Connection._send = half_then_interrupt
try:
    for job, get in run_in_processes([b"x" * 1_000_000, b"y"], len, workers=1):
        get()
except KeyboardInterrupt:
    print("closed", flush=True)
"""


def test_a_pool_interrupted_while_it_sends_a_job_still_closes():
    run = subprocess.run([sys.executable, "-c", INTERRUPTED_WHILE_SENDING], capture_output=True, text=True,
                         timeout=60, start_new_session=True,
                         env=package_env())  # fmt: skip
    assert run.returncode == 0 and run.stdout == "closed\n", run.stderr


class NeedsTwoArguments(Exception):
    """An exception that pickles but cannot be rebuilt (its __init__ wants two arguments, args holds one)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def _unreadable_on_one(job: int) -> int:
    if job == 1:
        raise NeedsTwoArguments("one", "detail")
    return job * 10


def test_an_answer_that_cannot_be_read_fails_its_job_alone_and_the_others_keep_their_results():
    # The answer is read off the pipe whole; only rebuilding it fails. Each later result
    # must still go to its own job, not to the one before it.
    from midiexport.jobs.runner import run_in_processes

    for job, get in run_in_processes(range(5), _unreadable_on_one, workers=1):
        if job == 1:
            with pytest.raises(RuntimeError, match="answer cannot be read"):
                get()
        else:
            assert get() == job * 10  # checked as they come: a shifted answer fails here, never hangs


# A signal that lands while a worker is forked is held until the fork is over; its handler
# (here raising, as a library user's might) then runs. The pool must already know that
# worker, so that close() stops and joins it rather than leave it running until exit.
# The signal is sent from a real fork callback, in the parent, while signals are held.
SIGNAL_DURING_FORK = """
import multiprocessing, os, signal
from midiexport.jobs.runner import run_in_processes

class Stop(Exception):
    pass

def stop(*_):
    raise Stop

signal.signal(signal.SIGTERM, stop)
os.register_at_fork(after_in_parent=lambda: os.kill(os.getpid(), signal.SIGTERM))
try:
    for job, get in run_in_processes(range(4), abs, workers=2):
        get()
except Stop:
    print("stopped", flush=True)
print("left running:", len(multiprocessing.active_children()), flush=True)
"""


def test_a_signal_while_a_worker_is_forked_leaves_no_worker_behind_after_close():
    run = subprocess.run([sys.executable, "-c", SIGNAL_DURING_FORK], capture_output=True, text=True, timeout=60,
                         start_new_session=True, env=package_env())  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["stopped", "left running: 0"], run.stderr
