"""Benchmark one input with very many instruments: naming (--split) and channel assignment.

Prints the wall and CPU time of a whole ``midiexport convert`` run (a subprocess, as a user runs it)
for records of N one-note instruments: all named "Piano" with ``--split`` (every stem
must be named apart), and all with distinct programs without --split (channels are
shared past 15). Both used to grow with the square of N.

    python bench/bench_scale.py                 # 3,000 / 25,000 / 50,000 instruments
    python bench/bench_scale.py 3000            # one size
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

SIZES = (3_000, 25_000, 50_000)
GM_NAMES = ("Piano", "Electric Bass (finger)", "Violin", "Trumpet", "Flute", "Synth Voice", "Organ")


def make_record(instruments: int, *, same_name: bool) -> bytes:
    """Return a record of ``instruments`` instruments holding one note each."""
    parts = [
        {
            "name": "Piano" if same_name else GM_NAMES[i % len(GM_NAMES)],
            "notes": [{"pitch": 40 + i % 40, "start": (i % 100) * 0.1, "end": (i % 100) * 0.1 + 0.5, "velocity": 0.8}],
        }
        for i in range(instruments)
    ]
    return orjson.dumps({"state": "complete", "instruments": parts})


def time_run(args: list[str]) -> str:
    """Run midiexport convert; return "wall s (CPU s)": CPU time tells the work on a busy machine."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "midiexport", "convert", *args], capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"midiexport failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return f"{elapsed:.1f}s ({_children_cpu_s() - cpu_before:.1f}s CPU)"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    env_root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = env_root + os.pathsep + os.environ.get("PYTHONPATH", "")
    print(f"{'instruments':>12} {'--split, all Piano':>24} {'one file, channels':>24}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            same = Path(folder, "same.json")
            same.write_bytes(make_record(n, same_name=True))
            many = Path(folder, "many.json")
            many.write_bytes(make_record(n, same_name=False))
            split_s = time_run([str(same), "--split", "-q", "-o", str(Path(folder, "split"))])
            one_s = time_run([str(many), "-q", "-o", str(Path(folder, "one.mid"))])
        print(f"{n:>12,} {split_s:>24} {one_s:>24}")


if __name__ == "__main__":
    main()
