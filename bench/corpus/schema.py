"""The record format of the evaluation corpus: one song = one JSON object = one line.

Standard library only, so a benchmark can load the corpus without music21,
basic-pitch or numpy.

A song::

    {"id": "m21-bach-bwv66.6-t092-s7",
     "source": "music21:bach/bwv66.6"            # or "generated:house"
     "split": "bench" | "holdout" | "test" | "val",
     "categories": ["no-drums", "transcribed", "steady", ...],
     "style": "chorale",
     "truth": {
        "quarter_bpm": 92.0,                     # tempo at time 0, quarter notes per minute
        "meter": "3/4",
        "beats_s": [...],                        # every beat of the meter, seconds
        "downbeats_s": [...],                    # every bar line (a subset of beats_s)
        "tempo_changes": [[0.0, 92.0], ...],     # step function, quarter notes per minute
        "key": {"tonic": "D", "mode": "major", "source": "key-signature"} or null,
                                                 # mode: major/minor, or a church mode (dorian,
                                                 # mixolydian, ...) for modal folk tunes;
                                                 # source: key-signature (the score's own key,
                                                 # with mode), key-signature+analysis (the
                                                 # signature, mode chosen by analysis of the
                                                 # excerpt), analysis, published-analysis
                                                 # (corrected by key_audit.py), generated
        "latency_ms": {"Violin": 18.0, ...},     # offset added to each stem of "record"
        "instruments": [{"name": "Violin", "program": 40, "is_drum": false,
                         "notes": [[start_s, end_s, pitch, velocity_0_1], ...]}]},
     "record": {"code": 200, "msg": "success",
                "data": {"taskId": "...", "successFlag": 1,
                         "midiData": {"state": "complete",
                                      "instruments": [{"name": "...",
                                                       "notes": [{"pitch": 60, "start": 0.0364583,
                                                                  "end": 0.18229, "velocity": 0.5}]}]}}},
     "meta": {...}                               # optional, free-form provenance
    }

Tempo convention
----------------
``quarter_bpm`` is always counted in QUARTER notes per minute, whatever the meter: a 6/8
jig at 120 dotted-quarter beats per minute has ``quarter_bpm`` 180. The beat of the meter
is given explicitly by ``beats_s`` so a benchmark can apply any convention:

* simple meters (2/4, 3/4, 4/4, 2/2, 3/8, ...): one beat per denominator note
  (quarters for x/4, halves for x/2, eighths for 3/8);
* compound meters (6/8, 9/8, 12/8, 6/4, ...: numerator a multiple of 3 greater than 3):
  one beat per dotted note (dotted quarters for x/8).

``meter_beats(meter)`` returns ``(beats_per_bar, beat_length_in_quarters)`` for this rule.
``downbeats_s`` are the real bar lines: a pickup (anacrusis) puts beats before the first
downbeat. ``tempo_changes`` is a step function: the tempo holds from ``time_s`` until the
next entry; the first entry is at 0.0 and equals ``quarter_bpm``; a steady song has one
entry. A drifting song changes tempo beat by beat, and ``beats_s`` follow it exactly.

Truth vs record
---------------
``truth.instruments`` is the clean score in seconds (no latency, no noise).
``record`` is what the API would send: a transcription of the rendered audio (songs in
category "transcribed") or a noised copy of the score, plus per-stem latency
(``truth.latency_ms``: milliseconds added to every note time of that stem in the record),
times on the 1/192 s grid and velocities k/127. Instrument names in the record may
repeat (one instrument split over two tracks) and need not match the truth's names one
to one. Record instruments may carry ``"is_drum": true`` as Suno's own JSON does.
"""

from __future__ import annotations

import bisect
import glob
import gzip
import io
import json
import math
import os
from collections.abc import Iterable, Iterator

SCHEMA_VERSION = 1

SPLITS = ("bench", "holdout", "test")  # the corpus's own splits, written under data/
# The validation set (make_val.py): songs from seeds no split of the corpus uses, written
# outside the repository; a split a song may carry and a loader may ask for.
VAL_SPLIT = "val"
KNOWN_SPLITS = (*SPLITS, VAL_SPLIT)
CATEGORIES = ("drums", "no-drums", "odd-meter", "noisy", "drifting", "transcribed", "steady")
# drums / no-drums: exactly one; odd-meter: any meter other than 4/4 (2/4, 3/4, 6/8, 5/8,
# ...; truth.meter says which); noisy: record = the truth passed through a noise model;
# transcribed: record = a real transcription of rendered audio; steady / drifting: one
# tempo / a tempo that changes (ritardando, wander); at most one of the two.
MODES = ("major", "minor", "dorian", "phrygian", "lydian", "mixolydian", "locrian")  # modal folk tunes keep their mode
KEY_SOURCES = ("key-signature", "key-signature+analysis", "analysis", "published-analysis", "generated")

GRID_S = 1.0 / 192.0  # the API's time grid: 120 BPM, 96 ticks per quarter
VELOCITY_STEPS = 127

_TOL = 1e-6


# ---------------------------------------------------------------------------
# splits and meters


def split_for_seed(seed: int) -> str:
    """The split a piece's seed puts it in: 70% bench, 20% holdout, 10% test.

    Decided by ``seed % 10``: 0-6 bench, 7-8 holdout, 9 test. Give every song made from
    one piece (or one generated pattern family) the same seed so it cannot straddle
    splits.
    """
    r = int(seed) % 10
    if r <= 6:
        return "bench"
    if r <= 8:
        return "holdout"
    return "test"


def meter_beats(meter: str) -> tuple[int, float]:
    """(beats per bar, beat length in quarter notes) under the corpus's convention."""
    num_s, den_s = meter.split("/")
    num, den = int(num_s), int(den_s)
    if num <= 0 or den <= 0:
        raise ValueError(f"bad meter {meter!r}")
    unit = 4.0 / den
    if num % 3 == 0 and num > 3:
        return num // 3, 3 * unit
    return num, unit


def tonic_pc(name: str) -> int:
    """The pitch class (0-11, C = 0) of a key's tonic as ``truth.key.tonic`` spells it.

    A letter, then any accidentals: "#" sharp, "b" or "-" (music21's) flat; "b" alone is
    the note B, "Bb" and "bb" B flat.
    """
    letter = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[name[0].upper()]
    accidentals = name[1:]
    return (letter + accidentals.count("#") - accidentals.count("b") - accidentals.count("-")) % 12


def beat_bpm(song: dict) -> float:
    """Tempo at time 0 in beats of the meter per minute (dotted quarters for 6/8)."""
    _, beat_q = meter_beats(song["truth"]["meter"])
    return song["truth"]["quarter_bpm"] / beat_q


def snap_time(t: float) -> float:
    """A time in seconds on the API's 1/192 s grid (never negative)."""
    return max(0, round(t * 192)) / 192.0


def snap_velocity(v: float) -> float:
    """A 0-1 velocity as k/127, at least 1/127."""
    return min(127, max(1, round(v * 127))) / 127.0


# ---------------------------------------------------------------------------
# writing and loading


def _open_read(path: str):
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _dumps(song: dict) -> str:
    return json.dumps(song, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def write_songs(path: str, songs: Iterable[dict], validate: bool = True) -> int:
    """Write songs to ``path`` (.jsonl or .jsonl.gz), replacing it; returns the count.

    Output is deterministic (gzip mtime 0). Raises ValueError naming the song when one is
    invalid or an id repeats.
    """
    seen: set[str] = set()
    n = 0
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw:
        gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") if path.endswith(".gz") else None
        out = gz if gz is not None else raw
        for song in songs:
            if validate:
                validate_song(song, raise_error=True)
            if song["id"] in seen:
                raise ValueError(f"duplicate song id {song['id']!r}")
            seen.add(song["id"])
            out.write((_dumps(song) + "\n").encode("utf-8"))
            n += 1
        if gz is not None:
            gz.close()
    os.replace(tmp, path)
    return n


def append_song(path: str, song: dict, validate: bool = True) -> None:
    """Append one song to ``path``; for builds that must not lose partial progress.

    Appending to a .gz adds a gzip member; gzip readers (and load_songs) read them all.
    """
    if validate:
        validate_song(song, raise_error=True)
    line = (_dumps(song) + "\n").encode("utf-8")
    if path.endswith(".gz"):
        with open(path, "ab") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
                gz.write(line)
    else:
        with open(path, "ab") as f:
            f.write(line)


def iter_songs(path: str) -> Iterator[dict]:
    """Every song of one file, in order."""
    with _open_read(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not JSON: {e}") from None


def load_songs(
    path_or_glob: str | os.PathLike | Iterable[str],
    split: str | Iterable[str] | None = None,
    categories: str | Iterable[str] | None = None,
    style: str | Iterable[str] | None = None,
    meter: str | Iterable[str] | None = None,
) -> list[dict]:
    """Load songs from a file, a glob (``bench/corpus/data/*.jsonl.gz``), a directory or a list.

    Filters (each a value or a collection of values; None keeps all):
    ``split`` keeps songs in any of the splits given; ``categories`` keeps songs that have
    EVERY category given (``categories=["transcribed", "odd-meter"]``); ``style`` and
    ``meter`` keep songs whose style / truth.meter is one of those given.
    Files are read in sorted order; songs keep their file order.
    """
    paths: list[str] = []
    if isinstance(path_or_glob, (str, os.PathLike)):
        p = os.fspath(path_or_glob)
        if os.path.isdir(p):
            paths = sorted(glob.glob(os.path.join(p, "*.jsonl.gz")) + glob.glob(os.path.join(p, "*.jsonl")))
        elif any(c in p for c in "*?["):
            paths = sorted(glob.glob(p))
        else:
            paths = [p]
    else:
        for item in path_or_glob:
            paths.extend(sorted(glob.glob(os.fspath(item))) or [os.fspath(item)])
    if not paths:
        raise FileNotFoundError(f"no corpus file matches {path_or_glob!r}")

    def _set(x):
        if x is None:
            return None
        return {x} if isinstance(x, str) else set(x)

    splits, cats, styles, meters = _set(split), _set(categories), _set(style), _set(meter)
    if splits and not splits <= set(KNOWN_SPLITS):
        raise ValueError(f"unknown split(s) {sorted(splits - set(KNOWN_SPLITS))}; known: {KNOWN_SPLITS}")
    if cats and not cats <= set(CATEGORIES):
        raise ValueError(f"unknown categor(ies) {sorted(cats - set(CATEGORIES))}; known: {CATEGORIES}")
    out = []
    for path in paths:
        for song in iter_songs(path):
            if splits and song.get("split") not in splits:
                continue
            if cats and not cats <= set(song.get("categories", ())):
                continue
            if styles and song.get("style") not in styles:
                continue
            if meters and song.get("truth", {}).get("meter") not in meters:
                continue
            out.append(song)
    return out


# ---------------------------------------------------------------------------
# convenient views


def record_instruments(song: dict) -> list[dict]:
    """The record's instruments (name, notes as dicts), as the API sends them."""
    return song["record"]["data"]["midiData"]["instruments"]


def truth_notes(song: dict, drums: bool | None = None) -> list[list]:
    """All truth notes [start_s, end_s, pitch, velocity] (optionally only drums / only pitched)."""
    out = []
    for inst in song["truth"]["instruments"]:
        if drums is not None and bool(inst.get("is_drum")) != drums:
            continue
        out.extend(inst["notes"])
    out.sort(key=lambda n: (n[0], n[2]))
    return out


# ---------------------------------------------------------------------------
# validation


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _on_grid(t: float, steps: int) -> bool:
    return abs(t * steps - round(t * steps)) < 1e-6 * max(1.0, abs(t * steps))


def validate_song(song: dict, raise_error: bool = False) -> list[str]:
    """Problems with one song (empty list when valid). With ``raise_error``, raise ValueError."""
    probs: list[str] = []
    add = probs.append
    if not isinstance(song, dict):
        probs = ["song is not an object"]
    else:
        sid = song.get("id")
        if not isinstance(sid, str) or not sid:
            add("id missing")
        if not isinstance(song.get("source"), str) or ":" not in song.get("source", ""):
            add("source must be 'kind:path'")
        if song.get("split") not in KNOWN_SPLITS:
            add(f"split {song.get('split')!r} not in {KNOWN_SPLITS}")
        cats = song.get("categories")
        if not isinstance(cats, list) or not all(c in CATEGORIES for c in cats):
            add(f"categories {cats!r} not a list drawn from {CATEGORIES}")
        else:
            if ("drums" in cats) == ("no-drums" in cats):
                add("exactly one of 'drums' / 'no-drums' required")
            if "steady" in cats and "drifting" in cats:
                add("'steady' and 'drifting' exclude each other")
        if not isinstance(song.get("style"), str):
            add("style missing")
        _validate_truth(song.get("truth"), cats if isinstance(cats, list) else [], add)
        _validate_record(song.get("record"), song.get("truth"), add)
        if "meta" in song and not isinstance(song["meta"], dict):
            add("meta must be an object")
    if probs and raise_error:
        raise ValueError(
            f"invalid song {song.get('id') if isinstance(song, dict) else song!r}: " + "; ".join(probs[:8])
        )
    return probs


def _validate_truth(truth, cats, add) -> None:
    if not isinstance(truth, dict):
        add("truth missing")
        return
    q = truth.get("quarter_bpm")
    if not _num(q) or not 10 <= q <= 400:
        add(f"quarter_bpm {q!r} out of 10-400")
    meter = truth.get("meter")
    try:
        meter_beats(meter)
    except Exception:
        add(f"meter {meter!r} not 'N/D'")
    beats = truth.get("beats_s")
    downs = truth.get("downbeats_s")
    for name, xs in (("beats_s", beats), ("downbeats_s", downs)):
        if not isinstance(xs, list) or not xs or not all(_num(x) and x >= 0 for x in xs):
            add(f"{name} must be a non-empty list of times >= 0")
        elif any(b <= a for a, b in zip(xs, xs[1:])):
            add(f"{name} not strictly increasing")
    if isinstance(beats, list) and isinstance(downs, list) and beats and downs:
        bset = sorted(beats)
        for d in downs:
            if not _num(d):
                continue
            i = bisect.bisect_left(bset, d - 1e-6)
            if i >= len(bset) or abs(bset[i] - d) > 1e-6:
                add(f"downbeat {d} is not a beat")
                break
    tc = truth.get("tempo_changes")
    if (
        not isinstance(tc, list)
        or not tc
        or not all(isinstance(x, list) and len(x) == 2 and _num(x[0]) and _num(x[1]) and x[1] > 0 for x in tc)
    ):
        add("tempo_changes must be a non-empty list of [time_s, quarter_bpm]")
    else:
        if abs(tc[0][0]) > _TOL:
            add("tempo_changes must start at 0.0")
        if _num(q) and abs(tc[0][1] - q) > 1e-6:
            add("tempo_changes[0] must equal quarter_bpm")
        if any(b[0] <= a[0] for a, b in zip(tc, tc[1:])):
            add("tempo_changes times not increasing")
        if "steady" in cats and len(tc) != 1:
            add("'steady' song with more than one tempo")
        if "drifting" in cats and len(tc) < 2:
            add("'drifting' song with one tempo")
    key = truth.get("key", "missing")
    if key == "missing":
        add("truth.key missing (use null when unknown)")
    elif key is not None:
        if not isinstance(key, dict) or key.get("mode") not in MODES or not isinstance(key.get("tonic"), str):
            add(f"key {key!r} must be {{tonic, mode in {MODES}}} or null")
        elif key.get("source") is not None and key["source"] not in KEY_SOURCES:
            add(f"key source {key['source']!r} not in {KEY_SOURCES}")
    lat = truth.get("latency_ms")
    if not isinstance(lat, dict) or not all(_num(v) for v in lat.values()):
        add("latency_ms must map instrument name -> ms")
    insts = truth.get("instruments")
    if not isinstance(insts, list) or not insts:
        add("truth.instruments empty")
        return
    for i, inst in enumerate(insts):
        if not isinstance(inst, dict) or not isinstance(inst.get("name"), str):
            add(f"truth instrument {i} has no name")
            continue
        prog = inst.get("program")
        if not isinstance(prog, int) or not 0 <= prog <= 127:
            add(f"{inst['name']}: program {prog!r} not 0-127")
        if not isinstance(inst.get("is_drum"), bool):
            add(f"{inst['name']}: is_drum must be true/false")
        notes = inst.get("notes")
        if not isinstance(notes, list):
            add(f"{inst['name']}: notes missing")
            continue
        for j, n in enumerate(notes):
            if (
                not isinstance(n, list)
                or len(n) != 4
                or not all(_num(x) for x in n)
                or n[0] < 0
                or n[1] < n[0]
                or n[2] != int(n[2])
                or not 0 <= n[2] <= 127
                or not 0 <= n[3] <= 1
            ):
                add(f"{inst['name']}: truth note {j} {n!r} invalid")
                break


def _validate_record(rec, truth, add) -> None:
    if not isinstance(rec, dict):
        add("record missing")
        return
    try:
        insts = rec["data"]["midiData"]["instruments"]
    except (KeyError, TypeError):
        add("record.data.midiData.instruments missing")
        return
    if (
        rec.get("code") != 200
        or rec["data"].get("successFlag") != 1
        or rec["data"]["midiData"].get("state") != "complete"
    ):
        add("record must be a complete success (code 200, successFlag 1, state complete)")
    if not isinstance(insts, list) or not insts:
        add("record has no instruments")
        return
    for i, inst in enumerate(insts):
        if not isinstance(inst, dict) or not isinstance(inst.get("name"), str):
            add(f"record instrument {i} has no name")
            continue
        notes = inst.get("notes")
        if not isinstance(notes, list):
            add(f"record {inst['name']}: notes missing")
            continue
        for j, n in enumerate(notes):
            ok = isinstance(n, dict) and all(_num(n.get(k)) for k in ("pitch", "start", "end", "velocity"))
            if ok:
                ok = (
                    n["start"] >= 0
                    and n["end"] >= n["start"]
                    and n["pitch"] == int(n["pitch"])
                    and 0 <= n["pitch"] <= 127
                    and 0 < n["velocity"] <= 1
                    and _on_grid(n["start"], 192)
                    and _on_grid(n["end"], 192)
                    and _on_grid(n["velocity"], VELOCITY_STEPS)
                )
            if not ok:
                add(f"record {inst['name']}: note {j} {n!r} invalid or off the 1/192 s / k/127 grid")
                break


def validate_file(path: str) -> dict[str, list[str]]:
    """{song id: problems} for every invalid song of a file, plus duplicate ids."""
    bad: dict[str, list[str]] = {}
    seen: set[str] = set()
    for k, song in enumerate(iter_songs(path)):
        sid = song.get("id", f"#{k}") if isinstance(song, dict) else f"#{k}"
        probs = validate_song(song)
        if sid in seen:
            probs.append("duplicate id")
        seen.add(sid)
        if probs:
            bad[sid] = probs
    return bad


if __name__ == "__main__":  # python bench/corpus/schema.py FILE...  -> validate and count
    import sys
    from collections import Counter

    status = 0
    for path in sys.argv[1:] or sorted(glob.glob(os.path.join(os.path.dirname(__file__), "data", "*.jsonl.gz"))):
        songs = list(iter_songs(path))
        bad = validate_file(path)
        c = Counter((s.get("split"), s.get("truth", {}).get("meter")) for s in songs)
        print(
            f"{path}: {len(songs)} songs, {len(bad)} invalid; "
            + ", ".join(f"{k[0]}/{k[1]}={v}" for k, v in sorted(c.items()))
        )
        for sid, probs in list(bad.items())[:10]:
            print(f"  {sid}: {'; '.join(probs[:3])}")
        status |= bool(bad)
    sys.exit(status)
