"""Re-draw the real half's per-stem latency so that each stem's TOTAL lateness is realistic.

The real half (``data/real-*.jsonl.gz``) is music21 scores rendered with fluidsynth and
transcribed by basic-pitch; ``make_corpus.py`` then adds the noise model's per-stem latency
(``noise.LATENCY_MS``, 10-40 ms) with ``noise.make_record(profile="light")``. But basic-pitch
already puts onsets late by itself (frame quantisation at 11.6 ms and the attack of each
sound: a few ms on piano, tens of ms on brass and bowed strings), and the lateness PRODUCT.md
measured on a real Suno song (bass ~18 ms, keyboard ~28 ms late against the drums) is the
lateness of that song's whole pipeline, transcriber included. So the real half is late twice:
the transcriber's own delay plus a full real-export latency on top.

This script measures each stem's own delay and rewrites the records so that the stem's total
lateness is drawn from the noise model's range:

- **own delay** of a stem (truth instrument): its record onsets, minus the added latency
  ``truth.latency_ms[source]`` (README, "Truth vs record"), matched to the truth onset of
  the same pitch nearest in time, within 100 ms; the median difference. Record tracks of
  one source (an instrument split over two tracks) are pooled. A stem with fewer than
  ``MIN_MATCHES`` matches takes the median own delay of its instrument family over the
  measured stems of the same file (else of all of them), and says so in meta.
- **total** drawn uniformly from ``noise.LATENCY_MS`` with ``random.Random`` seeded by
  CRC32 of ``"relatency:" + song id`` (one draw per truth instrument, in truth order), so
  the result is the same on every run and does not depend on the other songs.
- **added'** = max(0, total - own delay); every record note of the stem moves by
  added' - added, rounded to whole 1/192 s ticks (the API's grid; durations unchanged,
  starts clipped at 0). ``truth.latency_ms`` stores the latency now actually added:
  added + the ticks moved; within half a tick of added', except where added' is near 0:
  the latency stays >= 0, so it can sit up to one tick (5.2 ms) above added' there.
- ``meta.transcriber_delay_ms`` = {source: own delay, ms}; ``meta.relatency`` = the drawn
  totals, the previous latency, the shift in ticks and the stems whose delay was a fallback.

Nothing else changes (truth, velocities, doubled tracks, the order of notes and tracks).

    python bench/corpus/relatency.py                      # all splits -> data-relatency/
    python bench/corpus/relatency.py --report             # the delay distributions only
    python bench/corpus/relatency.py --split bench --out /tmp/x

The committed ``data/real-*.jsonl.gz`` are this script's output (copied into ``data/``
after ``make_corpus.py``; see the corpus README). Run on them again it moves no note.

The output folder gets ``real-<split>.jsonl.gz`` and symbolic links to ``data/styles-*``,
so that it is a whole corpus a benchmark can read with ``--corpus`` (a benchmark reads every
``*.jsonl.gz`` of its folder: the new files must not sit beside the old ones in ``data/``).
Standard library only.
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import statistics
import sys
import zlib
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import noise  # noqa: E402
import schema as S  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
OUT = os.path.join(HERE, "data-relatency")
WINDOW_S = 0.100  # a record onset this close to a truth onset of its pitch measures the delay
MIN_MATCHES = 10  # fewer matches: the stem's own delay is not measured (family fallback)
# General MIDI's instrument families, program // 8 (for the report and the fallback)
FAMILIES = (
    "piano", "chromatic perc.", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth fx", "ethnic", "percussive", "sound fx",
)  # fmt: skip


def _family(inst: dict) -> str:
    return "drums" if inst.get("is_drum") else FAMILIES[inst["program"] // 8]


def onset_differences(song: dict) -> dict[str, list[float]]:
    """{truth instrument: [record onset - added latency - nearest truth onset of its pitch, s]} within WINDOW_S."""
    latency = song["truth"].get("latency_ms") or {}
    truth = {}
    for inst in song["truth"]["instruments"]:
        by_pitch = defaultdict(list)
        for n in inst["notes"]:
            by_pitch[int(n[2])].append(n[0])
        truth[inst["name"]] = {p: sorted(v) for p, v in by_pitch.items()}
    diffs: dict[str, list[float]] = defaultdict(list)
    sources = song["meta"].get("record_tracks") or []
    for index, inst in enumerate(S.record_instruments(song)):
        source = sources[index] if index < len(sources) else inst["name"]
        if source not in truth:
            continue
        lat_s = latency.get(source, 0.0) / 1000.0
        for n in inst["notes"]:
            ref = truth[source].get(int(n["pitch"]))
            if not ref:
                continue
            t = n["start"] - lat_s
            k = bisect.bisect_left(ref, t)
            d = min((t - ref[j] for j in (k - 1, k) if 0 <= j < len(ref)), key=abs)
            if abs(d) < WINDOW_S:
                diffs[source].append(d)
    return diffs


def own_delays(song: dict) -> dict[str, tuple[float, int]]:
    """{truth instrument: (median own delay ms, matches)} for the stems in the record."""
    return {src: (statistics.median(d) * 1000.0, len(d)) for src, d in onset_differences(song).items() if d}


def draw_totals(song: dict, lo_hi=noise.LATENCY_MS) -> dict[str, float]:
    """{truth instrument: total lateness ms}, seeded by the song id (0 for drums)."""
    rng = random.Random(zlib.crc32(f"relatency:{song['id']}".encode()))
    return noise.choose_latency_ms(song["truth"]["instruments"], rng, lo_hi)


def family_medians(songs: list[dict]) -> tuple[dict[str, float], float]:
    """Median measured own delay (ms) per family over stems with >= MIN_MATCHES matches, and over all."""
    by: dict[str, list[float]] = defaultdict(list)
    for song in songs:
        fam = {i["name"]: _family(i) for i in song["truth"]["instruments"]}
        for src, (ms, n) in own_delays(song).items():
            if n >= MIN_MATCHES:
                by[fam[src]].append(ms)
    every = [v for vs in by.values() for v in vs]
    return {f: statistics.median(v) for f, v in by.items()}, (statistics.median(every) if every else 0.0)


def relatency_song(song: dict, fallback: tuple[dict[str, float], float]) -> dict:
    """A copy of ``song`` whose stems are late by a drawn total lateness (see the module docstring)."""
    song = _deep_copy(song)
    truth = song["truth"]
    old = dict(truth.get("latency_ms") or {})
    measured = own_delays(song)
    totals = draw_totals(song)
    in_record = set(song["meta"].get("record_tracks") or [])
    delay, new, ticks, fell_back = {}, {}, {}, []
    for inst in truth["instruments"]:
        name = inst["name"]
        added = old.get(name, 0.0)
        if name not in in_record:  # basic-pitch found nothing: no record stem to move
            new[name] = added
            continue
        ms, n = measured.get(name, (None, 0))
        if n < MIN_MATCHES:
            ms = fallback[0].get(_family(inst), fallback[1])
            fell_back.append(name)
        delay[name] = round(ms, 2)
        target = max(0.0, totals[name] - ms)
        k = round((target - added) * 192 / 1000.0)
        k = max(k, -int(added * 192 / 1000.0))  # never a negative latency
        ticks[name] = k
        new[name] = round(added + k * 1000.0 / 192, 2)
    sources = song["meta"]["record_tracks"]
    for index, inst in enumerate(S.record_instruments(song)):
        k = ticks.get(sources[index], 0)
        if k:
            for n in inst["notes"]:
                a = max(0, round(n["start"] * 192) + k)
                b = max(a + 1, round(n["end"] * 192) + k)
                n["start"], n["end"] = a / 192.0, b / 192.0
            inst["notes"].sort(key=lambda n: (n["start"], n["pitch"]))
    truth["latency_ms"] = new
    song["meta"]["transcriber_delay_ms"] = delay
    song["meta"]["relatency"] = {
        "total_ms": {k: v for k, v in totals.items() if k in delay},
        "previous_latency_ms": old,
        "shift_ticks": ticks,
        "delay_fallback": fell_back,
        "seed": f"crc32('relatency:' + id), noise.LATENCY_MS={list(noise.LATENCY_MS)}",
    }
    return song


def _deep_copy(x):
    if isinstance(x, dict):
        return {k: _deep_copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deep_copy(v) for v in x]
    return x


def _q(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) < 2:
        return f"{values[0]:.1f}"
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{q2:.1f} [{q1:.1f}, {q3:.1f}]"


def report(songs: list[dict], title: str) -> None:
    """Markdown: own delay, added latency and total lateness per family (median [quartiles], ms)."""
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    skipped = 0
    for song in songs:
        fam = {i["name"]: _family(i) for i in song["truth"]["instruments"]}
        latency = song["truth"].get("latency_ms") or {}
        for src, (ms, n) in own_delays(song).items():
            if n < MIN_MATCHES:
                skipped += 1
                continue
            for group in (fam[src], "all stems"):
                rows[group]["own"].append(ms)
                rows[group]["added"].append(latency.get(src, 0.0))
                rows[group]["total"].append(ms + latency.get(src, 0.0))
    print(f"\n{title}: {len(songs)} songs; stems with >= {MIN_MATCHES} matches, {skipped} left out")
    print("| family | stems | own delay | added latency | total lateness |")
    print("|---|---:|---|---|---|")
    order = sorted((g for g in rows if g != "all stems"), key=lambda g: (-len(rows[g]["own"]), g)) + ["all stems"]
    for g in order:
        r = rows[g]
        print(f"| {g} | {len(r['own'])} | {_q(r['own'])} | {_q(r['added'])} | {_q(r['total'])} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA, help="folder of the current real-<split>.jsonl.gz")
    ap.add_argument("--out", default=OUT, help="folder to write (never the same as --data)")
    ap.add_argument("--split", default="bench,holdout,test", help="splits, comma-separated")
    ap.add_argument("--report", action="store_true", help="print the delay distributions, write nothing")
    a = ap.parse_args(argv)
    splits = a.split.split(",")
    files = {sp: os.path.join(a.data, f"real-{sp}.jsonl.gz") for sp in splits}
    songs = {sp: S.load_songs(path) for sp, path in files.items()}
    if a.report:
        for sp in splits:
            report(songs[sp], f"real-{sp}")
        return 0
    if os.path.abspath(a.out) == os.path.abspath(a.data):
        raise SystemExit("--out must not be the data folder: the current corpus files stay as they are")
    os.makedirs(a.out, exist_ok=True)
    for sp in splits:
        fallback = family_medians(songs[sp])
        new = [relatency_song(s, fallback) for s in songs[sp]]
        path = os.path.join(a.out, f"real-{sp}.jsonl.gz")
        n = S.write_songs(path, new)
        print(f"{path}: {n} songs, {os.path.getsize(path) / 1e6:.2f} MB")
        report(new, f"real-{sp} after relatency")
    for name in sorted(os.listdir(a.data)):
        link = os.path.join(a.out, name)
        if name.startswith("styles-") and name.endswith(".jsonl.gz") and not os.path.lexists(link):
            os.symlink(os.path.relpath(os.path.join(a.data, name), a.out), link)
    return 0


if __name__ == "__main__":
    sys.exit(main())
