"""Benchmark midiexport against the parsers alone and the conversions a user would otherwise write.

One run prints, as ratios of medians of interleaved rounds (every contender once per
round, the order rotated each round, so a change in the machine's load hits all alike):
- per size (10k, 100k, 1M notes; each size in a fresh process): midiexport in-process
  and as the CLI, against the parse floors (``orjson.loads``, ``msgspec.json.decode``;
  their timers stop before the parsed tree is freed) and against plain conversions with
  pretty_midi, mido, miditoolkit and symusic, each parsing with orjson as a user would;
- peak memory (max RSS of a fresh process per contender and size) against parsing alone;
- a batch of 1,000 records x 5,000 notes with --jobs 1 and --jobs 2;
- start-up: the CLI converting a 10k-note song against ``python -c "import numpy"``, and
  the import table (``python -X importtime``, medians of several runs); the package's
  .pyc files are compiled first, as pip does at install.

    pip install -e '.[bench]'
    python bench/bench_convert.py            # the full run (~15 minutes on 2 busy cores)
    python bench/bench_convert.py --quick    # 10k and 100k only, fewer rounds, a smaller batch
    python bench/bench_convert.py --startup  # only the start-up comparison and the import table
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import orjson

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
TICKS_PER_S = 960  # the peers write 480 ticks per quarter at 120 BPM, as midiexport does
SIZES = (10_000, 100_000, 1_000_000)
ROUNDS = {10_000: 9, 100_000: 5, 1_000_000: 3}  # interleaved rounds per size
PEER_ROUNDS_1M = 1  # the pure-Python peers take 30-60 s each at 1M notes on this host
BATCH_RECORDS, BATCH_NOTES, BATCH_ROUNDS = 1_000, 5_000, 3
STARTUP_ROUNDS, IMPORTTIME_RUNS = 15, 9


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


# --- the contenders: JSON bytes in, .mid bytes out ----------------------------------------


def convert_midiexport(raw: bytes) -> bytes:
    from midiexport.jobs.api import convert_payload

    return convert_payload(raw)


def parse_orjson(raw: bytes) -> object:
    return orjson.loads(raw)


def parse_msgspec(raw: bytes) -> object:
    import msgspec

    return msgspec.json.decode(raw)


def _parts(raw: bytes) -> list[dict[str, Any]]:
    return list(orjson.loads(raw)["data"]["midiData"]["instruments"])


def _program(name: str) -> tuple[int, bool]:
    return (0, True) if name == "Drums" else (PROGRAMS[name], False)


def convert_pretty_midi(raw: bytes) -> bytes:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    for part in _parts(raw):
        program, drum = _program(part["name"])
        instrument = pretty_midi.Instrument(program=program, is_drum=drum, name=part["name"])
        instrument.notes = [
            pretty_midi.Note(max(1, round(n["velocity"] * 127)), n["pitch"], n["start"], n["end"])
            for n in part["notes"]
        ]
        midi.instruments.append(instrument)
    out = io.BytesIO()
    midi.write(out)
    return out.getvalue()


def convert_mido(raw: bytes) -> bytes:
    import mido

    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)]))
    channels = iter(c for c in range(16) if c != 9)
    for part in _parts(raw):
        channel = 9 if part["name"] == "Drums" else next(channels)
        events = []
        for n in part["notes"]:
            on, off = round(n["start"] * TICKS_PER_S), round(n["end"] * TICKS_PER_S)
            velocity = max(1, round(n["velocity"] * 127))
            events.append((on, 1, mido.Message("note_on", channel=channel, note=n["pitch"], velocity=velocity)))
            events.append((off, 0, mido.Message("note_off", channel=channel, note=n["pitch"], velocity=64)))
        events.sort(key=lambda e: (e[0], e[1]))
        track, last = mido.MidiTrack([mido.MetaMessage("track_name", name=part["name"])]), 0
        for tick, _, message in events:
            message.time = tick - last
            track.append(message)
            last = tick
        midi.tracks.append(track)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def convert_miditoolkit(raw: bytes) -> bytes:
    import miditoolkit

    midi = miditoolkit.MidiFile(ticks_per_beat=480)
    midi.tempo_changes = [miditoolkit.TempoChange(120.0, 0)]
    for part in _parts(raw):
        program, drum = _program(part["name"])
        instrument = miditoolkit.Instrument(program=program, is_drum=drum, name=part["name"])
        instrument.notes = [
            miditoolkit.Note(
                max(1, round(n["velocity"] * 127)),
                n["pitch"],
                round(n["start"] * TICKS_PER_S),
                round(n["end"] * TICKS_PER_S),
            )
            for n in part["notes"]
        ]
        midi.instruments.append(instrument)
    out = io.BytesIO()
    midi.dump(file=out)
    return out.getvalue()


def convert_symusic(raw: bytes) -> bytes:
    """symusic fed numpy columns: the fastest a user gets from a C++ writer (it repairs nothing)."""
    import symusic

    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, 120.0))
    for part in _parts(raw):
        program, drum = _program(part["name"])
        notes = part["notes"]
        start = np.rint(np.array([n["start"] for n in notes]) * TICKS_PER_S).astype(np.int32)
        end = np.rint(np.array([n["end"] for n in notes]) * TICKS_PER_S).astype(np.int32)
        pitch = np.array([n["pitch"] for n in notes], dtype=np.int8)
        velocity = np.maximum(1, np.rint(np.array([n["velocity"] for n in notes]) * 127)).astype(np.int8)
        track = symusic.Track(part["name"], program, drum)
        track.notes = symusic.Note.from_numpy(time=start, duration=end - start, pitch=pitch, velocity=velocity)
        score.tracks.append(track)
    return bytes(score.dumps_midi())


CONTENDERS: dict[str, Callable[[bytes], object]] = {
    "orjson": parse_orjson,
    "msgspec": parse_msgspec,
    "midiexport": convert_midiexport,
    "symusic": convert_symusic,
    "pretty_midi": convert_pretty_midi,
    "mido": convert_mido,
    "miditoolkit": convert_miditoolkit,
}
PEERS = ("pretty_midi", "mido", "miditoolkit")  # pure Python per note: few rounds at 1M


def midiexport_command() -> list[str]:
    # The console script beside this interpreter: a `midiexport` found on PATH may be a
    # version manager's shim (pyenv's costs ~60 ms a start), which would blur the figures.
    script = Path(sys.executable).with_name("midiexport")
    return [str(script)] if script.exists() else [sys.executable, "-m", "midiexport"]


# Child processes may write and use .pyc files, as a pip-installed package does (pip compiles
# them at install); with PYTHONDONTWRITEBYTECODE set every start would compile our sources.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_package() -> None:
    import importlib.util

    spec = importlib.util.find_spec("midiexport")
    assert spec is not None and spec.submodule_search_locations
    for folder in spec.submodule_search_locations:
        subprocess.run([sys.executable, "-m", "compileall", "-q", folder], check=True, env=ENV)


def run_quiet(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - began


# --- workers: each runs in a fresh process ---------------------------------------------


def worker_times(path: Path, rounds: int, peer_rounds: int) -> dict[str, list[float]]:
    """Time every contender once per round, the order rotated each round."""
    raw = path.read_bytes()
    for work in CONTENDERS.values():  # imports and first-call costs outside the timers
        work(make_record(200))
    names = [*CONTENDERS, "midiexport CLI"]
    cli = [*midiexport_command(), "convert", str(path), "-o", str(path.with_suffix(".mid")), "--overwrite", "-q"]
    times: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if name in PEERS and r >= peer_rounds:
                continue
            if name == "midiexport CLI":
                times[name].append(run_quiet(cli))
                continue
            began = time.perf_counter()
            result = CONTENDERS[name](raw)
            times[name].append(time.perf_counter() - began)  # before the result is freed
            del result
    return dict(times)


def worker_peak(path: Path, name: str) -> int:
    """Return the max RSS in KiB of reading the file and running one contender on it."""
    import resource

    CONTENDERS[name](path.read_bytes())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def in_fresh_process(*args: str) -> Any:
    done = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True, env=ENV)
    return json.loads(done.stdout)


# --- the sections ---------------------------------------------------------------------


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def measure_size(folder: Path, notes: int, quick: bool) -> dict[str, Any]:
    path = folder / f"song{notes}.json"
    path.write_bytes(make_record(notes))
    rounds = max(2, ROUNDS[notes] // 2) if quick else ROUNDS[notes]
    peer_rounds = PEER_ROUNDS_1M if notes >= 1_000_000 else rounds
    times = in_fresh_process("--worker-times", str(path), str(rounds), str(peer_rounds))
    peaks = {name: in_fresh_process("--worker-peak", str(path), name) for name in CONTENDERS}
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"notes": notes, "mb": path.stat().st_size / 1e6, "rounds": rounds, "peer_rounds": peer_rounds,
            "median": median, "times": times, "peak_kib": peaks}  # fmt: skip


def _ratio(row: dict[str, Any], a: str, b: str, digits: int = 2) -> str:
    """Ratio of medians, and the range of the ratios of the rounds that ran both."""
    paired = [x / y for x, y in zip(row["times"][a], row["times"][b])]
    spread = f" [{min(paired):.{digits}f}–{max(paired):.{digits}f}]" if len(paired) > 1 else ""
    return f"{row['median'][a] / row['median'][b]:.{digits}f}×{spread}"


def print_sizes(rows: list[dict[str, Any]]) -> None:
    print("\nTime, ratio of medians (per-round range in brackets where rounds were paired):")
    print("| notes | JSON MB | rounds | midiexport / orjson.loads | midiexport / msgspec decode | msgspec / orjson "
          "| CLI / in-process | pretty_midi / midiexport | mido / midiexport | miditoolkit / midiexport "
          "| symusic / midiexport |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = partial(_ratio, r)
        print(f"| {r['notes']:,} | {r['mb']:.1f} | {r['rounds']} (peers {r['peer_rounds']}) "
              f"| {ratio('midiexport', 'orjson')} | {ratio('midiexport', 'msgspec')} | {ratio('msgspec', 'orjson')} "
              f"| {ratio('midiexport CLI', 'midiexport')} | {ratio('pretty_midi', 'midiexport', 0)} "
              f"| {ratio('mido', 'midiexport', 0)} | {ratio('miditoolkit', 'midiexport', 0)} "
              f"| {ratio('symusic', 'midiexport')} |")  # fmt: skip
    print("\nPeak memory (max RSS of a fresh process that reads the file and runs one contender), "
          "ratio to parsing alone with orjson:")  # fmt: skip
    print("| notes | " + " | ".join(CONTENDERS) + " |")
    print("|---:|" + "---:|" * len(CONTENDERS))
    for r in rows:
        base = r["peak_kib"]["orjson"]
        print(f"| {r['notes']:,} | " + " | ".join(f"{r['peak_kib'][n] / base:.2f}×" for n in CONTENDERS) + " |")


BURN = "s = 0\nfor i in range(10_000_000):\n    s += i"  # pure CPU work, about 0.7 s a process on an idle core


def burn_s(processes: int) -> float:
    """Wall time of two CPU-bound processes run one after the other (1) or side by side (2):
    the speed-up the machine itself gives a second process at this moment (its ceiling)."""
    began = time.perf_counter()
    for group in [1, 1] if processes == 1 else [2]:
        running = [subprocess.Popen([sys.executable, "-c", BURN], env=ENV) for _ in range(group)]
        for process in running:
            process.wait()
    return time.perf_counter() - began


def measure_batch(folder: Path, records: int, notes: int, rounds: int) -> dict[str, list[float]]:
    """Wall time of one batch with --jobs 1 and --jobs 2, interleaved (1, 2, 2, 1, ...), each
    round also timing the machine's own two-process ceiling (``burn_s``)."""
    inputs = folder / "batch"
    inputs.mkdir()
    distinct = [make_record(notes, seed=i) for i in range(50)]  # 50 songs, written 20 times each
    for i in range(records):
        (inputs / f"r{i:04d}.json").write_bytes(distinct[i % len(distinct)])
    times: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        for jobs in (1, 2) if r % 2 == 0 else (2, 1):
            out = folder / f"out{jobs}"
            times[f"jobs{jobs}"].append(run_quiet([*midiexport_command(), "convert", str(inputs), "-o", str(out),
                                                   "--jobs", str(jobs), "-q", "--overwrite"]))  # fmt: skip
            times[f"burn{jobs}"].append(burn_s(jobs))
    return times


def measure_startup(folder: Path, rounds: int) -> dict[str, list[float]]:
    song = folder / "song10000.json"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
        "midiexport --help": [*midiexport_command(), "--help"],
        "midiexport convert (10k notes)": [
            *midiexport_command(),
            "convert",
            str(song),
            "-o",
            str(folder / "startup.mid"),
            "--overwrite",
            "-q",
        ],  # fmt: skip
    }
    times: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        names = list(commands)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(run_quiet(commands[name]))
    return dict(times)


def import_table(folder: Path, runs: int) -> list[tuple[str, int, float, float]]:
    """Medians over ``runs`` of ``-X importtime`` while the CLI converts the 10k-note song:
    (module, depth, self ms, cumulative ms), the import order kept."""
    command = [sys.executable, "-X", "importtime", "-m", "midiexport", "convert", str(folder / "song10000.json"),
               "-o", str(folder / "startup.mid"), "--overwrite", "-q"]  # fmt: skip
    own: dict[str, list[int]] = defaultdict(list)
    total: dict[str, list[int]] = defaultdict(list)
    depth: dict[str, int] = {}
    for _ in range(runs):
        err = subprocess.run(command, capture_output=True, text=True, check=True, env=ENV).stderr
        for line in err.splitlines():
            if not line.startswith("import time:") or "[us]" in line:
                continue
            self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
            module = name.strip()
            depth.setdefault(module, (len(name) - len(name.lstrip()) - 1) // 2)
            own[module].append(int(self_us))
            total[module].append(int(cumulative_us))
    return [(m, depth[m], statistics.median(own[m]) / 1e3, statistics.median(total[m]) / 1e3) for m in depth]


def print_startup(startup: dict[str, list[float]], table: list[tuple[str, int, float, float]]) -> None:
    m = {k: statistics.median(v) for k, v in startup.items()}
    numpy_s = m['python -c "import numpy"']
    print(f"\nStart-up ({len(startup['python -c pass'])} interleaved rounds), ratio to "
          f'`python -c "import numpy"`:')  # fmt: skip
    for name, value in m.items():
        print(f"- {name}: {value / numpy_s:.2f}×")
    print("\nImports while the CLI converts the 10k-note song (python -X importtime, medians; top level and "
          "our own modules, cumulative ≥ 1 ms):")  # fmt: skip
    print("| module | self ms | cumulative ms |")
    print("|---|---:|---:|")
    for module, level, own, cumulative in table:
        if cumulative >= 1.0 and (level == 0 or module.startswith("midiexport") or (level <= 2 and cumulative >= 5)):
            print(f"| {'&nbsp;&nbsp;' * level}{module} | {own:.1f} | {cumulative:.1f} |")
    loaded = {module for module, *_ in table}
    absent = [m for m in ("httpx", "mido", "orjson", "uvicorn", "midiexport.stages.tempo") if m not in loaded]
    print(f"not imported: {', '.join(absent)}")


def header() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                   if x.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    names = ("numpy", "orjson", "msgspec", "pretty_midi", "mido", "miditoolkit", "symusic")
    return (f"machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
            + ", ".join(f"{n} {version(n)}" for n in names))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k notes, fewer rounds, 200 records")
    parser.add_argument("--startup", action="store_true", help="only the start-up comparison and the import table")
    parser.add_argument("--worker-times", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--worker-peak", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_times:
        path, rounds, peer_rounds = args.worker_times
        print(json.dumps(worker_times(Path(path), int(rounds), int(peer_rounds))))
        return
    if args.worker_peak:
        print(json.dumps(worker_peak(Path(args.worker_peak[0]), args.worker_peak[1])))
        return
    print(header())
    compile_package()
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {load()}")
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        if args.startup:
            (folder / "song10000.json").write_bytes(make_record(10_000))
            print_startup(measure_startup(folder, STARTUP_ROUNDS), import_table(folder, IMPORTTIME_RUNS))
            print(f"\nend: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {load()}")
            return
        rows = []
        for notes in SIZES[:2] if args.quick else SIZES:
            rows.append(measure_size(folder, notes, args.quick))
            print(f"  measured {notes:,} notes; {load()}", file=sys.stderr)
        print_sizes(rows)
        records = 200 if args.quick else BATCH_RECORDS
        batch = measure_batch(folder, records, BATCH_NOTES, BATCH_ROUNDS)
        one, two = statistics.median(batch["jobs1"]), statistics.median(batch["jobs2"])
        ceiling = statistics.median(batch["burn1"]) / statistics.median(batch["burn2"])
        print(f"\nBatch of {records:,} records x {BATCH_NOTES:,} notes ({BATCH_ROUNDS} interleaved rounds, "
              f"{os.cpu_count()} cores): --jobs 2 speed-up over --jobs 1 {one / two:.2f}× "
              f"(per round {', '.join(f'{a / b:.2f}×' for a, b in zip(batch['jobs1'], batch['jobs2']))}); "
              f"the machine's own two-process speed-up in the same rounds (pure CPU work) {ceiling:.2f}× "
              f"(per round {', '.join(f'{a / b:.2f}×' for a, b in zip(batch['burn1'], batch['burn2']))}); "
              f"{load()}")  # fmt: skip
        startup = measure_startup(folder, STARTUP_ROUNDS)
        print_startup(startup, import_table(folder, IMPORTTIME_RUNS))
    print(f"\nend: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {load()}")


if __name__ == "__main__":
    main()
