"""Benchmark a re-run: resuming a finished batch against converting it.

Makes 300 inputs (copies of the bundled sample song, 2,215 notes each), then times,
as a user runs them (``python -m midiexport``, a new process each time):

- convert: ``convert in/ -o out/ -q`` into an empty folder (every file converted);
- resume: the same command again, every output existing (every input skipped);
- listing: ``python -c`` that lists the inputs and checks each output exists: the floor.

Each time is the median of several runs (convert: 3, the others: 5).

    python bench/bench_resume.py                     # this worktree's code
    python bench/bench_resume.py --code /other/tree  # another checkout's code, for a before/after
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "sample-song.json"
INPUTS = 300
LISTING = (
    "import os, sys\n"
    "names = sorted(n for n in os.listdir(sys.argv[1]) if n.endswith('.json'))\n"
    "print(sum(os.path.exists(os.path.join(sys.argv[2], n[:-5] + '.mid')) for n in names))\n"
)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    # Run from an empty folder: "python -m" puts the current folder first on sys.path.
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False)
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose midiexport runs")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.code)}
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        inputs, out = folder / "in", folder / "out"
        inputs.mkdir()
        for number in range(INPUTS):
            shutil.copy(SAMPLE, inputs / f"song{number:03d}.json")
        command = [sys.executable, "-m", "midiexport", "convert", str(inputs), "-o", str(out), "-q"]
        converts = []
        for _ in range(3):
            shutil.rmtree(out, ignore_errors=True)
            seconds, done = timed(command, env)
            assert done.returncode == 0, done.stderr[-500:]
            converts.append(seconds)
        resumes, statuses = [], set()
        for _ in range(5):
            seconds, done = timed(command, env)
            resumes.append(seconds)
            statuses.add(done.returncode)
        listings = [timed([sys.executable, "-c", LISTING, str(inputs), str(out)], env)[0] for _ in range(5)]
    convert, resume, listing = (statistics.median(t) for t in (converts, resumes, listings))
    print(f"code: {args.code}; {INPUTS} inputs of 2,215 notes; cores: {len(os.sched_getaffinity(0))}")
    print(f"convert (all {INPUTS}):       {convert:6.2f} s")
    speed = convert / resume
    print(f"resume (all finished):     {resume:6.2f} s  exit status {sorted(statuses)}  ({speed:.0f}x faster)")
    print(f"listing alone (the floor): {listing:6.2f} s")


if __name__ == "__main__":
    main()
