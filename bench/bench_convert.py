"""Benchmark midiexport against the conversions a user would otherwise write.

Prints, measured in one run on this machine: end-to-end conversion time (JSON bytes
in, .mid bytes out, in-process) for midiexport, a plain pretty_midi conversion and a
plain mido conversion; the time to parse the same bytes with orjson alone (the floor);
the ratios; a batch of 400 records with --jobs 1 and 2; start-up time; peak memory.
Every time is the median of several runs. The peers parse with orjson too, so the
ratios compare conversion work, not JSON parsers.

    python bench/bench_convert.py            # the full run (~10 minutes)
    python bench/bench_convert.py --quick    # smaller: no 1M-note peers, fewer runs
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import orjson

import midiexport
from midiexport.outputs.smf import write_midi
from midiexport.stages.convert import convert_record
from midiexport.stages.normalize import normalize_payload

PARTS = (  # name, share of notes, pitch range, notes per chord
    ("Drums", 0.40, (35, 59), 1),
    ("Electric Bass (finger)", 0.12, (28, 52), 1),
    ("Acoustic Grand Piano", 0.20, (48, 84), 3),
    ("Synth Voice", 0.08, (60, 84), 1),
    ("String Ensembles 1", 0.12, (48, 79), 4),
    ("Electric Guitar (clean)", 0.08, (40, 76), 2),
)
PROGRAMS = {
    "Electric Bass (finger)": 33,
    "Acoustic Grand Piano": 0,
    "Synth Voice": 54,
    "String Ensembles 1": 48,
    "Electric Guitar (clean)": 27,
}  # the peers' own lookup; Drums go to channel 10
NOTES_PER_S = 40  # a dense song: the record's length grows with its note count


def make_record(notes: int, seed: int = 1) -> bytes:
    """Return a record-info answer of about ``notes`` notes, times on the 1/192 s grid."""
    rng = np.random.default_rng(seed)
    seconds = max(60, notes // NOTES_PER_S)
    instruments = []
    for name, share, (low, high), chord in PARTS:
        onsets = np.sort(rng.integers(0, seconds * 192, max(1, int(notes * share) // chord)))
        items = []
        for onset in onsets.tolist():
            length = int(rng.integers(12, 192))
            velocity = int(rng.integers(40, 128)) / 127
            for pitch in rng.choice(np.arange(low, high), chord, replace=False).tolist():
                items.append(
                    {"pitch": pitch, "start": onset / 192, "end": (onset + length) / 192, "velocity": velocity}
                )
        instruments.append({"name": name, "notes": items})
    data = {"taskId": f"bench{notes}", "successFlag": 1, "midiData": {"state": "complete", "instruments": instruments}}
    return orjson.dumps({"code": 200, "msg": "success", "data": data})


def convert_midiexport(raw: bytes) -> bytes:
    [record] = normalize_payload(raw)
    return write_midi(convert_record(record))


def convert_pretty_midi(raw: bytes) -> bytes:
    import pretty_midi

    answer = orjson.loads(raw)
    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    for part in answer["data"]["midiData"]["instruments"]:
        drum = part["name"] == "Drums"
        program = 0 if drum else PROGRAMS[part["name"]]
        instrument = pretty_midi.Instrument(program=program, is_drum=drum, name=part["name"])
        for note in part["notes"]:
            velocity = max(1, round(float(note["velocity"]) * 127))
            instrument.notes.append(
                pretty_midi.Note(velocity, int(note["pitch"]), float(note["start"]), float(note["end"]))
            )
        midi.instruments.append(instrument)
    out = io.BytesIO()
    midi.write(out)
    return out.getvalue()


def convert_mido(raw: bytes) -> bytes:
    import mido

    answer = orjson.loads(raw)
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)]))
    channels = iter(c for c in range(16) if c != 9)
    for part in answer["data"]["midiData"]["instruments"]:
        channel = 9 if part["name"] == "Drums" else next(channels)
        events = []
        for note in part["notes"]:
            on, off = round(float(note["start"]) * 960), round(float(note["end"]) * 960)
            velocity = max(1, round(float(note["velocity"]) * 127))
            events.append((on, 1, mido.Message("note_on", channel=channel, note=int(note["pitch"]), velocity=velocity)))
            events.append((off, 0, mido.Message("note_off", channel=channel, note=int(note["pitch"]), velocity=64)))
        events.sort(key=lambda e: (e[0], e[1]))
        track, last = mido.MidiTrack([mido.MetaMessage("track_name", name=part["name"])]), 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - last))
            last = tick
        midi.tracks.append(track)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def parse_only(raw: bytes) -> object:
    return orjson.loads(raw)


def median_s(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def wall_s(command: list[str], runs: int, **kwargs: object) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure_sizes(sizes: list[int], quick: bool) -> list[dict[str, float]]:
    rows = []
    for notes in sizes:
        raw = make_record(notes)
        runs = {1_000: 21, 10_000: 11, 100_000: 7}.get(notes, 3)
        peer_runs = 1 if notes >= 1_000_000 else min(runs, 5)
        row = {"notes": notes, "mb": len(raw) / 1e6}
        row["parse"] = median_s(lambda raw=raw: parse_only(raw), runs)
        row["midiexport"] = median_s(lambda raw=raw: convert_midiexport(raw), runs)
        if quick and notes >= 1_000_000:
            row["pretty_midi"] = row["mido"] = float("nan")
        else:
            row["pretty_midi"] = median_s(lambda raw=raw: convert_pretty_midi(raw), peer_runs)
            row["mido"] = median_s(lambda raw=raw: convert_mido(raw), peer_runs)
        rows.append(row)
        print(f"  measured {notes:,} notes", file=sys.stderr)
    return rows


def midiexport_command() -> list[str]:
    # The console script beside this interpreter: a `midiexport` found on PATH may be a
    # version manager's shim (pyenv's costs ~60 ms a start), which would blur the figures.
    script = Path(sys.executable).with_name("midiexport")
    return [str(script)] if script.exists() else [sys.executable, "-m", "midiexport"]


def measure_batch(folder: Path, records: int, notes: int, runs: int) -> dict[str, float]:
    """Median wall time of a batch with --jobs 1 and 2, runs interleaved (1, 2, 1, 2, ...)
    so that a change in the machine's load during the measurement hits both alike."""
    inputs = folder / "batch"
    inputs.mkdir()
    for i in range(records):
        (inputs / f"r{i:03d}.json").write_bytes(make_record(notes, seed=i))
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(runs):
        for jobs in (1, 2):
            out = folder / f"out{jobs}"
            command = [*midiexport_command(), "convert", str(inputs), "-o", str(out), "--jobs", str(jobs), "-q"]
            times[jobs].append(wall_s([*command, "--overwrite"], 1))
    return {f"jobs{jobs}": statistics.median(values) for jobs, values in times.items()}


def measure_startup(folder: Path, runs: int) -> dict[str, float]:
    small = folder / "small.json"
    small.write_bytes(make_record(50))
    bare = wall_s([sys.executable, "-c", "pass"], runs)
    command = midiexport_command()
    return {
        "bare": bare,
        "help": wall_s([*command, "--help"], runs) - bare,
        "convert50": wall_s(
            [*command, "convert", str(small), "-o", str(folder / "small.mid"), "--overwrite", "-q"], runs
        )
        - bare,
    }


PEAK = "import resource, sys; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def measure_memory(folder: Path, notes: int) -> dict[str, float]:
    path = folder / "big.json"
    path.write_bytes(make_record(notes))
    parse = f"import orjson; data = open({str(path)!r}, 'rb').read(); tree = orjson.loads(data); {PEAK}"
    convert = (
        f"from midiexport.jobs.api import convert_payload; data = open({str(path)!r}, 'rb').read(); "
        f"out = convert_payload(data); {PEAK}"
    )
    kib = {}
    for name, code in (("parse", parse), ("convert", convert)):
        runs = [int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
                for _ in range(3)]  # fmt: skip
        kib[name] = statistics.median(runs)
    return {"parse_mib": kib["parse"] / 1024, "convert_mib": kib["convert"] / 1024}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 1M-note peers")
    args = parser.parse_args()
    sizes = [1_000, 10_000, 100_000, 1_000_000]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
          f"midiexport {midiexport.__version__}, numpy {np.__version__}, orjson {version('orjson')}, "
          f"pretty_midi {version('pretty_midi')}, mido {version('mido')}")  # fmt: skip
    rows = measure_sizes(sizes, args.quick)
    print(
        "\n| notes | JSON MB | parse (floor) | midiexport | notes/s | pretty_midi | mido "
        "| pretty_midi / midiexport | mido / midiexport | midiexport / parse |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['notes']:,} | {r['mb']:.1f} | {r['parse'] * 1e3:.1f} ms | {r['midiexport'] * 1e3:.1f} ms "
              f"| {r['notes'] / r['midiexport'] / 1e6:.2f} M | {r['pretty_midi']:.2f} s | {r['mido']:.2f} s "
              f"| {r['pretty_midi'] / r['midiexport']:.0f}× | {r['mido'] / r['midiexport']:.0f}× "
              f"| {r['midiexport'] / r['parse']:.2f}× |")  # fmt: skip
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        batch = measure_batch(folder, 400 if not args.quick else 100, 5_000, 5)
        startup = measure_startup(folder, 15)
        memory = measure_memory(folder, 1_000_000)
    print(
        f"\nbatch of {400 if not args.quick else 100} records x 5,000 notes: --jobs 1 {batch['jobs1']:.2f} s, "
        f"--jobs 2 {batch['jobs2']:.2f} s, speed-up {batch['jobs1'] / batch['jobs2']:.2f}×"
    )
    print(
        f"start-up above `python -c pass` ({startup['bare'] * 1e3:.0f} ms): `midiexport --help` "
        f"{startup['help'] * 1e3:.0f} ms, converting a 50-note record {startup['convert50'] * 1e3:.0f} ms"
    )
    print(f"peak RSS, 1M-note record: parse alone {memory['parse_mib']:.0f} MiB, "
          f"convert {memory['convert_mib']:.0f} MiB, "
          f"ratio {memory['convert_mib'] / memory['parse_mib']:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
