"""Benchmark tempo and downbeat estimation against songs of known tempo.

Generates 5-minute songs in seven styles with a tempo drawn uniformly from 60-180 BPM and a
random first downbeat (0-4 s after the start, with pickup notes before it), human
timing jitter (±10 ms) and times on the API's 1/192 s grid; then prints, for
midiexport's estimate and for pretty_midi's ``estimate_tempo`` side by side: the
share within 1% of the true tempo, the share of metrical-level errors (×2, ×½, ×3/2,
×2/3) counted apart, the share of first downbeats within 30 ms (midiexport only:
pretty_midi does not estimate downbeats), per style and overall, and the mean time
per song.

Conventions of the generated music (what "the tempo" means here): 4/4; the chords
change on bar lines; drums follow each style's usual pattern at the written tempo
(half-time: snare on beat 3; funk: 16th-note hats, snare on 2 and 4).

    python bench/bench_tempo.py                 # 200 songs, seed 7
    python bench/bench_tempo.py --songs 50 --seed 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GRID = 192
JITTER_S = 0.010
STYLES = ("four-on-the-floor", "backbeat rock", "half-time", "shuffle", "funk", "piano ballad", "bass and chords")
DRUM_STYLES = STYLES[:5]
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, GHOST = 36, 38, 42, 46, 49, 38
PROGRESSIONS = ([0, 5, 7, 0], [0, 9, 5, 7], [9, 5, 0, 7], [0, 7, 9, 5], [2, 7, 0, 0], [0, 3, 8, 7])


@dataclass(frozen=True)
class Song:
    style: str
    bpm: float
    first_downbeat_s: float
    payload: dict


class Writer:
    """Collects notes in beats, then turns them into seconds with jitter, on the grid."""

    def __init__(self, rng: np.random.Generator, bpm: float, offset_s: float) -> None:
        self.rng, self.beat_s, self.offset_s = rng, 60.0 / bpm, offset_s
        self.parts: dict[str, list[dict]] = {}

    def add(self, part: str, beat: float, length_beats: float, pitch: int, level: float) -> None:
        start = self.offset_s + beat * self.beat_s + self.rng.uniform(-JITTER_S, JITTER_S)
        if start < 0:
            return
        start_tick = round(start * GRID)
        end_tick = max(start_tick + 1, round((start + length_beats * self.beat_s) * GRID))
        velocity = int(np.clip(round(level * 127 + self.rng.normal(0, 6)), 1, 127)) / 127
        self.parts.setdefault(part, []).append(
            {"pitch": int(pitch), "start": start_tick / GRID, "end": end_tick / GRID, "velocity": velocity}
        )


def drums(w: Writer, style: str, bar: int, swing: float) -> None:
    b = bar * 4
    if style == "four-on-the-floor":
        for beat in range(4):
            w.add("Drums", b + beat, 0.25, KICK, 0.95)
            w.add("Drums", b + beat + 0.5, 0.25, OPEN_HAT, 0.6)
        for beat in (1, 3):
            w.add("Drums", b + beat, 0.25, 39, 0.85)  # hand clap
        for eighth in range(8):
            w.add("Drums", b + eighth / 2, 0.1, CLOSED_HAT, 0.45)
    elif style == "backbeat rock":
        for beat in (0, 2):
            w.add("Drums", b + beat, 0.25, KICK, 0.95)
        if bar % 2:
            w.add("Drums", b + 2.5, 0.25, KICK, 0.8)
        for beat in (1, 3):
            w.add("Drums", b + beat, 0.25, SNARE, 0.9)
        for eighth in range(8):
            w.add("Drums", b + eighth / 2, 0.1, CLOSED_HAT, 0.7 if eighth % 2 == 0 else 0.5)
    elif style == "half-time":
        w.add("Drums", b, 0.25, KICK, 0.95)
        if bar % 2:
            w.add("Drums", b + 1.5, 0.25, KICK, 0.8)
        w.add("Drums", b + 2, 0.25, SNARE, 0.95)
        for eighth in range(8):
            w.add("Drums", b + eighth / 2, 0.1, CLOSED_HAT, 0.6 if eighth % 2 == 0 else 0.45)
    elif style == "shuffle":
        for beat in (0, 2):
            w.add("Drums", b + beat, 0.25, KICK, 0.9)
        for beat in (1, 3):
            w.add("Drums", b + beat, 0.25, SNARE, 0.9)
        for beat in range(4):
            w.add("Drums", b + beat, 0.1, 51, 0.6)  # ride
            w.add("Drums", b + beat + swing, 0.1, 51, 0.45)
    elif style == "funk":
        for position in (0, 0.75, 1.5, 2.5, 3.25):
            w.add("Drums", b + position, 0.2, KICK, 0.9)
        for beat in (1, 3):
            w.add("Drums", b + beat, 0.2, SNARE, 0.95)
        for position in (1.75, 2.25, 3.75):
            w.add("Drums", b + position, 0.1, GHOST, 0.3)
        for sixteenth in range(16):
            w.add("Drums", b + sixteenth / 4, 0.08, CLOSED_HAT, 0.55 if sixteenth % 2 == 0 else 0.35)
    if bar % 8 == 0:
        w.add("Drums", b, 1.0, CRASH, 0.9)


def bass(w: Writer, style: str, bar: int, root: int, swing: float) -> None:
    b, low = bar * 4, 36 + root
    if style == "four-on-the-floor":
        for beat in range(4):
            w.add("Electric Bass (finger)", b + beat + 0.5, 0.4, low, 0.8)
        w.add("Electric Bass (finger)", b, 0.4, low, 0.85)
    elif style in ("backbeat rock", "bass and chords"):
        for eighth in range(8):
            w.add("Electric Bass (finger)", b + eighth / 2, 0.45, low + (12 if eighth == 7 else 0), 0.8)
    elif style == "half-time":
        w.add("Electric Bass (finger)", b, 1.5, low, 0.9)
        w.add("Electric Bass (finger)", b + 1.5, 0.5, low, 0.75)
        w.add("Electric Bass (finger)", b + 2, 1.75, low + 7, 0.8)
    elif style == "shuffle":
        walk = [0, 4, 7, 9]
        for beat in range(4):
            w.add("Electric Bass (finger)", b + beat, swing * 0.9, low + walk[beat], 0.8)
            w.add("Electric Bass (finger)", b + beat + swing, 1 - swing, low + walk[beat], 0.6)
    elif style == "funk":
        for position, step in ((0, 0), (0.75, 12), (1.5, 0), (2.25, 10), (2.5, 12), (3.5, 7)):
            w.add("Electric Bass (finger)", b + position, 0.2, low + step, 0.85)
    elif style == "piano ballad":
        w.add("Acoustic Grand Piano", b, 3.8, low - 12, 0.7)
        w.add("Acoustic Grand Piano", b + 2, 1.8, low - 5, 0.55)


def chords(w: Writer, style: str, bar: int, root: int, rng: np.random.Generator) -> None:
    b = bar * 4
    minor = root in (2, 4, 9)
    triad = [60 + root, 60 + root + (3 if minor else 4), 60 + root + 7]
    if style in ("piano ballad",):
        for beat in (0, 1, 2, 3):
            for pitch in triad if beat == 0 else triad[1:]:
                w.add("Acoustic Grand Piano", b + beat, 0.9, pitch, 0.55 if beat else 0.65)
    elif style == "bass and chords":
        for position in (0, 1.5, 2.5) if bar % 2 else (0, 1, 2, 3):
            for pitch in triad:
                w.add("Electric Piano 1", b + position, 0.4, pitch, 0.6 if position else 0.7)
    elif style == "funk":
        for position in (0, 0.5, 1.75, 2.5, 3.5):
            for pitch in triad:
                w.add("Electric Guitar (clean)", b + position, 0.15, pitch + 12, 0.6)
    else:
        for pitch in triad:
            w.add("String Ensemble 1", b, 3.9, pitch, 0.6)


def melody(w: Writer, style: str, bar: int, root: int, rng: np.random.Generator, swing: float) -> None:
    if style not in ("piano ballad", "backbeat rock", "shuffle") or rng.random() < 0.3:
        return
    b, beat = bar * 4, 0.0
    name = "Acoustic Grand Piano" if style == "piano ballad" else "Synth Voice"
    while beat < 4:
        length = float(rng.choice([0.5, 1.0, 1.0, 1.5])) if style != "shuffle" else 1.0
        pitch = 72 + root + int(rng.choice([0, 2, 4, 7, 9, 12]))
        if rng.random() < 0.85:
            w.add(name, b + beat, min(length, 4 - beat) * 0.9, pitch, 0.7)
        beat += length


def make_song(style: str, rng: np.random.Generator) -> Song:
    bpm = float(rng.uniform(60, 180))
    bar_s = 240 / bpm
    first_downbeat_s = float(rng.uniform(0, 4))
    bars = int(np.ceil(300 / bar_s))  # 5 minutes: the mean time per song is the 5-minute figure
    swing = 2 / 3 if style == "shuffle" else 0.5
    w = Writer(rng, bpm, first_downbeat_s)
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    pickup = int(first_downbeat_s // (60 / bpm))  # whole beats that fit before the first downbeat
    for beat in range(-min(pickup, 3), 0):  # pickup notes on the beats before bar 1
        w.add("Synth Voice" if style != "piano ballad" else "Acoustic Grand Piano", beat, 0.9, 76 + beat, 0.6)
    for bar in range(bars):
        root = progression[bar % 4]
        if style in DRUM_STYLES:
            drums(w, style, bar, swing)
        bass(w, style, bar, root, swing)
        chords(w, style, bar, root, rng)
        melody(w, style, bar, root, rng, swing)
    instruments = [{"name": name, "notes": sorted(notes, key=lambda n: n["start"])} for name, notes in w.parts.items()]
    payload = {"code": 200, "msg": "success", "data": {"taskId": f"{style}-{bpm:.2f}", "successFlag": 1,
               "midiData": {"state": "complete", "instruments": instruments}}}  # fmt: skip
    return Song(style, bpm, first_downbeat_s, payload)


def pretty_midi_estimate(payload: dict) -> float:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    for part in payload["data"]["midiData"]["instruments"]:
        instrument = pretty_midi.Instrument(0, is_drum=part["name"] == "Drums")
        instrument.notes = [pretty_midi.Note(max(1, round(n["velocity"] * 127)), n["pitch"], n["start"], n["end"])
                            for n in part["notes"]]  # fmt: skip
        midi.instruments.append(instrument)
    return float(midi.estimate_tempo())


RATIOS = {"×2": 2.0, "×½": 0.5, "×3/2": 1.5, "×2/3": 2 / 3}


def classify(estimate: float, truth: float) -> str:
    if abs(estimate / truth - 1) <= 0.01:
        return "ok"
    for name, ratio in RATIOS.items():
        if abs(estimate / (truth * ratio) - 1) <= 0.01:
            return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    from midiexport.stages.normalize import normalize_payload
    from midiexport.stages.tempo import estimate_tempo

    rng = np.random.default_rng(args.seed)
    songs = [make_song(STYLES[i % len(STYLES)], rng) for i in range(args.songs)]
    rows: dict[str, list[tuple[str, str, bool]]] = {}
    ours_s, theirs_s = [], []
    for song in songs:
        [record] = normalize_payload(song.payload)
        began = time.perf_counter()
        found = estimate_tempo(record)
        ours_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        theirs = pretty_midi_estimate(song.payload)
        theirs_s.append(time.perf_counter() - began)
        downbeat_ok = (
            found.first_downbeat_s is not None and abs(found.first_downbeat_s - song.first_downbeat_s) <= 0.030
        )
        rows.setdefault(song.style, []).append((classify(found.bpm, song.bpm), classify(theirs, song.bpm), downbeat_ok))
    print(f"{args.songs} songs, seed {args.seed}; tempo uniform 60-180 BPM, jitter ±{JITTER_S * 1e3:.0f} ms\n")
    print(
        "| style | songs | midiexport within 1% | metrical errors (×2 ×½ ×3/2 ×2/3) | downbeat within 30 ms "
        "| pretty_midi within 1% | pretty_midi metrical errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    groups = [(s, rows.get(s, [])) for s in STYLES]
    groups += [("with drums", [r for s in DRUM_STYLES for r in rows.get(s, [])]),
               ("without drums", [r for s in STYLES[5:] for r in rows.get(s, [])]),
               ("all", [r for s in STYLES for r in rows.get(s, [])])]  # fmt: skip
    for name, items in groups:
        if not items:
            continue
        n = len(items)

        def share(predicate, items=items, n=n) -> str:
            return f"{100 * sum(1 for i in items if predicate(i)) / n:.0f}%"

        def errors(column: int, items=items) -> str:
            return " ".join(f"{sum(1 for i in items if i[column] == k)}" for k in RATIOS)

        print(
            f"| {name} | {n} | {share(lambda i: i[0] == 'ok')} | {errors(0)} | {share(lambda i: i[2])} "
            f"| {share(lambda i: i[1] == 'ok')} | {errors(1)} |"
        )
    print(
        f"\nmean time per song: midiexport {statistics.mean(ours_s) * 1e3:.1f} ms, "
        f"pretty_midi {statistics.mean(theirs_s) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
