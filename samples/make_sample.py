"""Generate samples/sample-song.json: a realistic MIDI record-info answer.

A 3-minute song in A minor at 100 BPM (intro, verse, chorus, verse, chorus, outro)
with drums, bass, chords and a sung lead, as the API would answer it: times in
seconds on the 1/192 s grid, with a little human timing jitter, velocities k/127,
instrument names as the API spells them (one in another table's spelling).

    python samples/make_sample.py            # rewrites samples/sample-song.json
"""

from __future__ import annotations

import json
import random
from pathlib import Path

BPM = 100
BEAT_S = 60 / BPM
BAR_S = 4 * BEAT_S
GRID = 192  # the API's times are multiples of 1/192 s
SECTIONS = [("intro", 4), ("verse", 16), ("chorus", 16), ("verse", 16), ("chorus", 16), ("outro", 7)]
PROGRESSION = {
    "intro": [57, 53, 48, 55],
    "verse": [57, 53, 48, 55],
    "chorus": [53, 48, 55, 57],
    "outro": [57, 53, 57, 57],
}
MINOR_PENTATONIC = [0, 3, 5, 7, 10]


def on_grid(seconds: float) -> float:
    return max(0, round(seconds * GRID)) / GRID


def note(rng: random.Random, pitch: int, start_s: float, length_s: float, level: int, jitter_s: float = 0.010):
    start = on_grid(start_s + rng.uniform(-jitter_s, jitter_s))
    end = max(start + 1 / GRID, on_grid(start + length_s))
    velocity = max(1, min(127, level + rng.randint(-8, 8))) / 127
    return {"pitch": pitch, "start": start, "end": end, "velocity": velocity}


def drums(rng, bar, t, section, first_bar_of_section):
    notes = []
    if first_bar_of_section:
        notes.append(note(rng, 49, t, 0.5, 110))  # crash
    for eighth in range(8):
        hat_t = t + eighth * BEAT_S / 2
        notes.append(note(rng, 42, hat_t, 0.08, 70 if eighth % 2 else 90))
    for beat in (0, 2):
        notes.append(note(rng, 36, t + beat * BEAT_S, 0.12, 112))
    if section == "chorus" and bar % 2:
        notes.append(note(rng, 36, t + 2.5 * BEAT_S, 0.12, 96))
    for beat in (1, 3):
        notes.append(note(rng, 38, t + beat * BEAT_S, 0.15, 105))
    return notes


def bass(rng, root, t):
    pitch = root - 24
    return [note(rng, pitch + (12 if e == 6 else 0), t + e * BEAT_S / 2, BEAT_S / 2 * 0.9, 95) for e in range(8)]


def chords(rng, root, t):
    minor = root in (57, 52)
    triad = [root, root + (3 if minor else 4), root + 7]
    return [
        note(rng, p, t + half * 2 * BEAT_S, 2 * BEAT_S * 0.95, 72, jitter_s=0.004) for half in (0, 1) for p in triad
    ]


def lead(rng, root, t, state):
    notes = []
    beat = 0.0
    while beat < 4:
        length = rng.choice([0.5, 0.5, 1.0, 1.0, 1.5])
        state[0] = max(0, min(9, state[0] + rng.choice([-2, -1, -1, 0, 1, 1, 2])))
        octave, degree = divmod(state[0], 5)
        pitch = 69 + 12 * octave + MINOR_PENTATONIC[degree] - 12
        if rng.random() > 0.15:
            notes.append(note(rng, pitch, t + beat * BEAT_S, min(length, 4 - beat) * BEAT_S * 0.92, 88))
        beat += length
    return notes


def make_song(seed: int = 2026) -> dict:
    rng = random.Random(seed)
    parts = {"Drums": [], "Electric Bass (finger)": [], "String Ensembles 1": [], "Synth Voice": []}
    bar, lead_state = 0, [4]
    for section, bars in SECTIONS:
        for i in range(bars):
            t = bar * BAR_S
            root = PROGRESSION[section][i % 4]
            parts["Drums"] += drums(rng, bar, t, section, i == 0)
            parts["Electric Bass (finger)"] += bass(rng, root, t)
            parts["String Ensembles 1"] += chords(rng, root, t)
            if section in ("verse", "chorus"):
                parts["Synth Voice"] += lead(rng, root, t, lead_state)
            bar += 1
    instruments = [{"name": name, "notes": sorted(notes, key=lambda n: (n["start"], n["pitch"]))}
                   for name, notes in parts.items()]  # fmt: skip
    return {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": "sample0a1b2c3d4e5f",
            "recordTaskId": -1,
            "audioId": "e2310000-0000-4000-8000-00008cadc7dc",
            "callbackUrl": "https://example.callback",
            "completeTime": 1760335255000,
            "midiData": {"state": "complete", "instruments": instruments},
            "successFlag": 1,
            "createTime": 1760335251000,
            "errorCode": None,
            "errorMessage": None,
        },
    }


if __name__ == "__main__":
    target = Path(__file__).with_name("sample-song.json")
    target.write_text(json.dumps(make_song(), indent=1) + "\n")
    song = make_song()
    total = sum(len(i["notes"]) for i in song["data"]["midiData"]["instruments"])
    print(f"wrote {target} ({total} notes)")
