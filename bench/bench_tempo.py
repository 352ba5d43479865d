"""Benchmark ``--bpm auto`` on the evaluation corpus: tempo, meter, bar lines, beats, notes.

Reads the corpus of bench/corpus (real scores rendered and transcribed, drum arrangements
in many styles with a fitted noise model; see bench/corpus/README.md) through its loader,
bench/corpus/schema.py, and judges every song by the convention in the README's "Tempo
and bars" section: the tempo is counted in quarter notes a minute whatever the meter
(the corpus's ``quarter_bpm``; a 6/8 song at 50 dotted quarters is 75), styles counted
at double or half time are counted as the corpus's truth counts them.

Per category (drums, no-drums, odd-meter, noisy, drifting, transcribed, steady) and
split, for midiexport and, side by side on the same notes, pretty_midi's
``estimate_tempo`` and librosa's ``beat_track`` fed an onset envelope made from the notes:

- tempo within 1% of the truth (drifting songs: of their time-weighted median tempo);
- metrical errors by kind (×2 ×½ ×3/2 ×2/3 ×4/3 ×3/4, and others);
- meter right (midiexport only), by the meter convention (4/4 is right for a 2/4 or 2/2 song
  and 6/8 for a 12/8 or 3/8 one, ``ACCEPTED_METERS``) and by the meter's name alone;
- downbeats: share of steady songs written with bar lines whose tempo is right and whose
  bar lines, read back through the tempo map written, lie within 30 ms (median distance) of
  the song's bar lines that the written meter must draw (``true_bar_grids``: its own, every
  other one of a 2/4 or 3/8 song in 4/4 or 6/8, those of a 2/2 song in 4/4, those and the third
  beats of a 12/8 song in 6/8); and the same with the meter's name required;
- beats: share of true beats with a beat of the written tempo map within 30 ms (drifting
  songs; whatever was written: bar lines, beats followed without bar lines, or a constant
  tempo from 0 s), and how many tempo events each song's map has;
- notes: the largest distance between a note's time in the record and in the .mid
  written with ``--bpm auto``, read back with pretty_midi;
- confidence: how often the estimate is right at or above each threshold, for the bar-line
  confidence per group, songs with drums and songs without, each with its own curve and
  threshold (right: what the file would draw, tempo and bar lines by the convention), how
  many songs of each group have bar lines written, and for the beat confidence; the model's
  choice whatever its confidence, on steady songs.

    python bench/bench_tempo.py                         # both splits, bench/corpus/data
    python bench/bench_tempo.py --corpus /path/to/data --split bench --limit 50
    python bench/bench_tempo.py --corpus /tmp/val-corpus --split val   # a split outside the corpus's own
    python bench/bench_tempo.py --fit                   # fit meter.WEIGHTS on the bench split
    python bench/bench_tempo.py --fit --fit-only '^coverage_'   # fit only the weights named so, the rest kept
    python bench/bench_tempo.py --calibrate             # then fit the confidence curves and thresholds there,
                                                        # printed as lines to paste into stages/tempo.py

Needs the ``bench`` extra (pretty_midi, librosa, scipy).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "corpus"))

import schema  # noqa: E402 - the corpus's loader: bench/corpus/schema.py

from midiexport.options import ConvertOptions  # noqa: E402
from midiexport.outputs.smf import write_midi  # noqa: E402
from midiexport.stages import beats, meter, onsets, tempo  # noqa: E402
from midiexport.stages.convert import convert_record  # noqa: E402
from midiexport.stages.normalize import normalize_payload  # noqa: E402
from midiexport.stages.tempo import TempoEstimate, estimate_tempo  # noqa: E402
from midiexport.stages.timing import PICKUP_TEMPO_RATIO, TimeMap, auto_time  # noqa: E402

TEMPO_TOLERANCE = 0.01  # "within 1%"
LABEL_TEMPO_TOLERANCE = 0.04  # --fit: a hypothesis on the tracked pulse is "at the right tempo" within 4%
DOWNBEAT_TOLERANCE_S = 0.030  # bar lines and beats "within 30 ms"
SPAN_LEAD_S = 0.05  # a beat or bar line found up to 50 ms before the first note counts
ERROR_KINDS = (("×2", 2.0), ("×½", 0.5), ("×3/2", 1.5), ("×2/3", 2 / 3), ("×4/3", 4 / 3), ("×3/4", 0.75))
CATEGORY_ORDER = ("drums", "no-drums", "odd-meter", "noisy", "drifting", "transcribed", "steady")
METHODS = ("midiexport", "pretty_midi", "librosa")
TARGET_METERS = ("4/4", "3/4", "6/8")  # the meters issue 12's meter target names
# The meter convention (README, "Tempo and bars"): midiexport writes 4/4 for a song written in 2/4
# or 2/2 and 6/8 for one written in 12/8 or 3/8 (the same beats, bars grouped in pairs, split in two
# or, for cut time's half notes counted in quarters, the same bars). Such a
# file is right when it draws the song's bar lines: (written meter, the song's meter) -> bars of the
# song per written bar. In the strict columns (``*_strict``) only the song's own meter name is right.
ACCEPTED_METERS = {("4/4", "2/4"): 2, ("4/4", "2/2"): 1, ("6/8", "12/8"): 0.5, ("6/8", "3/8"): 2}
# --calibrate: the rule that chooses each threshold of stages/tempo.py (choose_threshold): the lowest
# confidence on the grid at which the songs at or above it are right at least CALIBRATION_PRECISION
# of the time, and so are those at or above every higher value that at least MIN_CALIBRATION_SONGS reach.
CALIBRATION_PRECISION = 0.95
MIN_CALIBRATION_SONGS = 20  # fewer songs are not judged: 1 wrong of 8 is not a 12% error rate
THRESHOLD_FLOOR = 0.50  # the grid starts here: a confidence below 0.5 says wrong is likelier than right
THRESHOLD_STEP = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(HERE / "corpus" / "data"), help="folder of corpus .jsonl.gz files")
    parser.add_argument("--split", default="bench,holdout", help="splits to run, comma-separated (bench,holdout)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many songs per split (0: all)")
    parser.add_argument("--no-references", action="store_true", help="skip pretty_midi and librosa")
    parser.add_argument("--no-notes", action="store_true", help="skip writing and reading back the .mid files")
    parser.add_argument("--fit", action="store_true", help="fit meter.WEIGHTS on the bench split and print them")
    parser.add_argument("--fit-only", default="", help="with --fit: a regex; fit only the weights it matches")
    parser.add_argument(
        "--calibrate", action="store_true", help="fit the confidence curve and threshold on the bench split"
    )
    args = parser.parse_args()
    if args.fit:
        fit_weights(schema.load_songs(args.corpus, split="bench"), only=args.fit_only)
        return
    if args.calibrate:
        calibrate(schema.load_songs(args.corpus, split="bench"))
        return
    for split in args.split.split(","):
        songs = load_split(args.corpus, split)
        if args.limit:
            songs = songs[: args.limit]
        rows = [judge(song, references=not args.no_references, notes=not args.no_notes) for song in songs]
        report(split, rows)
        print(f"estimate time for a 5-minute song (the densest of the split, looped): {five_minutes(songs):.0f} ms")


def load_split(corpus: str, split: str) -> list[dict]:
    """The songs of one split: one of the corpus's own or the validation set's (``schema.KNOWN_SPLITS``)."""
    songs = schema.load_songs(corpus, split=split)
    if not songs:
        raise SystemExit(f"no song of split {split!r} in {corpus}")
    return songs


def record_of(song: dict):  # type: ignore[no-untyped-def]
    [record] = normalize_payload(song["record"], source=song["id"])
    return record


def truth_tempo(song: dict) -> float:
    """The tempo to match, in quarters a minute: ``quarter_bpm``, or the time-weighted median when it drifts."""
    changes = song["truth"]["tempo_changes"]
    if len(changes) == 1:
        return float(song["truth"]["quarter_bpm"])
    end = song["truth"]["beats_s"][-1]
    times = [t for t, _ in changes] + [max(end, changes[-1][0])]
    spans = [(bpm, max(0.0, times[i + 1] - times[i])) for i, (_, bpm) in enumerate(changes)]
    spans.sort()
    half, total = sum(w for _, w in spans) / 2, 0.0
    for bpm, weight in spans:
        total += weight
        if total >= half:
            return float(bpm)
    return float(spans[-1][0])


def true_bar_grids(written_meter: str, truth: dict, *, strict: bool = False) -> list[np.ndarray]:
    """The song's bar lines (s) that a file in ``written_meter`` must draw; empty when that meter is wrong.

    Its own meter, or 4/4 for a 2/2 song: the song's bar lines. 4/4 for a 2/4 song, 6/8 for a
    3/8 one: every other bar line of the song, either half (the file chose one). 6/8 for a
    12/8 song: the song's bar lines and its third beats. ``strict``: only the song's own meter is right.
    """
    downs = np.array(truth["downbeats_s"])
    if written_meter == truth["meter"]:
        return [downs]
    per_written_bar = None if strict else ACCEPTED_METERS.get((written_meter, truth["meter"]))
    if per_written_bar == 1:
        return [downs]
    if per_written_bar == 2:
        return [downs[0::2], downs[1::2]]
    if per_written_bar == 0.5:
        beats = np.array(truth["beats_s"])
        at = np.searchsorted(beats, downs - 1e-6)  # each bar line's index among the beats
        numerator = int(truth["meter"].split("/")[0])
        half = numerator // 3 // 2  # beats (dotted quarters) in half a compound bar: 2 in 12/8
        middle = beats[np.clip(at + half, 0, len(beats) - 1)]
        next_bar = np.append(downs[1:], np.inf)
        return [np.sort(np.concatenate([downs, middle[middle < next_bar - 1e-6]]))]
    return []


def bar_lines_right(written_meter: str, truth: dict, drawn_s: np.ndarray, span: tuple[float, float], *,
                    strict: bool = False) -> bool:  # fmt: skip
    """True when the bar lines drawn lie within 30 ms (median) of the song's, by the meter convention."""
    grids = [in_span(g, span) for g in true_bar_grids(written_meter, truth, strict=strict)]
    return any(median_distance(g, drawn_s) <= DOWNBEAT_TOLERANCE_S for g in grids if len(g))


def error_kind(estimate: float, truth: float) -> str:
    ratio = estimate / truth
    if abs(ratio - 1) <= TEMPO_TOLERANCE:
        return "right"
    for name, factor in ERROR_KINDS:
        if abs(ratio / factor - 1) <= 0.03:
            return name
    return "other"


def written_grid(time_map: TimeMap, estimate: TempoEstimate, *, span_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Beats and bar lines (s) as a DAW draws them from the tempo map and meters written."""
    ppq = time_map.ppq
    numerator, denominator = time_map.meters[-1][1], time_map.meters[-1][2]
    bar_ticks = numerator * 4 * ppq / denominator
    beat_ticks = ppq * estimate.quarters_per_beat
    end_tick = time_map.to_ticks(np.array([span_s]))[0] + bar_ticks
    start = time_map.downbeat_tick
    bar_lines = np.arange(start, end_tick, bar_ticks)
    beat_lines = np.arange(start - beat_ticks * math.floor(start / beat_ticks), end_tick, beat_ticks)
    return ticks_to_seconds(time_map, beat_lines), ticks_to_seconds(time_map, bar_lines)


def ticks_to_seconds(time_map: TimeMap, ticks: np.ndarray) -> np.ndarray:
    starts = np.array([t for t, _ in time_map.tempos], dtype=np.float64)
    per_quarter = np.array([u for _, u in time_map.tempos], dtype=np.float64) / 1e6
    seconds = np.concatenate([[0.0], np.cumsum(np.diff(starts) * per_quarter[:-1] / time_map.ppq)])
    segment = np.clip(np.searchsorted(starts, ticks, side="right") - 1, 0, None)
    return seconds[segment] + (ticks - starts[segment]) * per_quarter[segment] / time_map.ppq


def crowded_changes(time_map: TimeMap) -> int:
    """Count tempo changes less than a bar (of the time signature in force) after the previous change.

    The first change after tick 0 ends a pickup or lead-in, which may be shorter than a bar.
    """
    ticks = [tick for tick, _ in time_map.tempos]
    crowded = 0
    for before, tick in zip(ticks[1:], ticks[2:]):
        numerator, denominator = next((n, d) for t, n, d in reversed(time_map.meters) if t <= before)
        crowded += tick - before < numerator * 4 * time_map.ppq / denominator - 1
    return crowded


def far_tempo_marks(time_map: TimeMap, *, span_s: float) -> int:
    """Count the tempo marks further than PICKUP_TEMPO_RATIO from the song's tempo: its map's time-weighted median.

    A mark 1.5 or 2 times the song's (a lead-in beat over a fraction of a beat) reads as another tempo;
    the bound is the one the pickup bar's tempo keeps (``timing.PICKUP_TEMPO_RATIO``).
    """
    ticks = np.array([tick for tick, _ in time_map.tempos], dtype=np.float64)
    bpm = 60e6 / np.array([us for _, us in time_map.tempos], dtype=np.float64)
    starts = ticks_to_seconds(time_map, ticks)
    lasting = np.clip(np.append(starts[1:], max(span_s, starts[-1])) - starts, 0.0, None)
    order = np.argsort(bpm)
    weight = np.cumsum(lasting[order])
    median = bpm[order][np.searchsorted(weight, weight[-1] / 2)] if weight[-1] > 0 else bpm[0]
    return int((np.abs(np.log(bpm / median)) > math.log(PICKUP_TEMPO_RATIO)).sum())


def nearest_deviation(truth_s: np.ndarray, found_s: np.ndarray) -> np.ndarray:
    """Signed distance (s) of each true time to the nearest found one (found - true); ``found_s``: sorted, not empty."""
    index = np.clip(np.searchsorted(found_s, truth_s), 1, len(found_s) - 1)
    after, before = found_s[index] - truth_s, found_s[index - 1] - truth_s
    return np.where(np.abs(after) < np.abs(before), after, before)


def share_within(truth_s: np.ndarray, found_s: np.ndarray) -> float:
    if len(truth_s) == 0 or len(found_s) == 0:
        return 0.0
    return float((np.abs(nearest_deviation(truth_s, found_s)) <= DOWNBEAT_TOLERANCE_S).mean())


def median_distance(truth_s: np.ndarray, found_s: np.ndarray) -> float:
    if len(truth_s) == 0 or len(found_s) == 0:
        return math.inf
    return float(np.median(np.abs(nearest_deviation(truth_s, found_s))))


def note_span(record) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The first and the last note start (s) of a record: the span its beats and bar lines are judged in."""
    first = min(float(i.start_s.min()) for i in record.instruments if i.note_count)
    last = max(float(i.start_s.max()) for i in record.instruments if i.note_count)
    return first, last


def true_beats_heard(truth: dict, span: tuple[float, float]) -> np.ndarray:
    """The song's true beats (s) in a ``note_span``, from 50 ms before its first note: those a beat found can match."""
    return in_span(np.array(truth["beats_s"]), span)


def in_span(times_s: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """The times (s) in a ``note_span``, from ``SPAN_LEAD_S`` before its first note."""
    return times_s[(times_s >= span[0] - SPAN_LEAD_S) & (times_s <= span[1])]


def judge(song: dict, *, references: bool, notes: bool) -> dict:
    """Run midiexport (and the references) on one song; return what the report needs."""
    record = record_of(song)
    started = time.perf_counter()
    estimate = estimate_tempo(record)
    elapsed = time.perf_counter() - started
    truth = song["truth"]
    target = truth_tempo(song)
    span = note_span(record)
    true_beats = true_beats_heard(truth, span)
    time_map = auto_time(estimate, ppq=960)  # what plan_time(bpm="auto") writes for a JSON record
    beat_grid, bar_grid = written_grid(time_map, estimate, span_s=span[1])
    row = {
        "id": song["id"],
        "categories": set(song["categories"]),
        "kind": {"midiexport": error_kind(estimate.bpm, target)},
        "meter_right": bool(true_bar_grids(estimate.meter, truth)),
        "meter_name_right": estimate.meter == truth["meter"],
        "target_meter": truth["meter"] in TARGET_METERS,
        "confidence": estimate.confidence,
        "has_drums": estimate.has_drums,
        "margin": estimate.margin,
        "sure": estimate.sure,
        "beat_share": share_within(true_beats, beat_grid),
        "beat_confidence": estimate.beat_confidence,
        "nested": estimate.nested,
        "agreement": estimate.agreement,
        "mode": "bars" if estimate.sure else "beats" if estimate.beats_sure else "constant",
        "tempo_events": len(time_map.tempos),
        "crowded": crowded_changes(time_map),
        "far_marks": far_tempo_marks(time_map, span_s=span[1]),
        "seconds": elapsed,
    }
    tempo_right = row["kind"]["midiexport"] == "right"
    found_bars = estimate.downbeats_s if estimate.downbeats_s is not None else np.empty(0)
    for suffix, strict in (("", False), ("_strict", True)):  # the meter convention, and the meter's name only
        drawn = bar_lines_right(estimate.meter, truth, bar_grid, span, strict=strict)
        row["downbeat_right" + suffix] = estimate.sure and tempo_right and drawn
        row["right_found" + suffix] = tempo_right and bar_lines_right(
            estimate.meter, truth, found_bars, span, strict=strict
        )
    row["right"] = row["downbeat_right"]
    found_beats = estimate.beats_s if estimate.beats_s is not None else np.empty(0)
    row["beats_right_found"] = row["kind"]["midiexport"] == "right" and (
        median_distance(true_beats, found_beats) <= DOWNBEAT_TOLERANCE_S
    )
    row["beats_on_grid_found"] = beats_on_grid(estimate.bpm / target, true_beats, found_beats, span)
    if notes:
        row["note_error_s"] = note_error(record)
    if references:
        row["kind"]["pretty_midi"] = error_kind(pretty_midi_tempo(record), target)
        row["kind"]["librosa"] = error_kind(librosa_tempo(record), target)
    return row


# metrical levels nested with the beat: the levels the estimator's beat mass counts (``tempo.MAX_NESTED_RATIO``)
NESTED_RATIOS = tuple(float(n) for n in range(1, tempo.MAX_NESTED_RATIO + 1)) + tuple(
    1 / n for n in range(2, tempo.MAX_NESTED_RATIO + 1)
)


def beats_on_grid(ratio: float, true_s: np.ndarray, found_s: np.ndarray, span: tuple[float, float]) -> bool:
    """True when the beats found lie on the music's metrical grid: what following them draws.

    The tempo found is the truth's times 1, 2, 3, 4, 1/2, 1/3 or 1/4 (within 3%; ``ratio``, in
    quarter notes a minute: the grid written is a level of the music's), and the finer of the
    two beat grids holds the coarser one: the true beats within 30 ms (median) of the beats
    found when these are as dense or denser, the beats found within 30 ms of true beats when
    sparser. Which is finer is read from the beats themselves (their median spacing in the
    song's span), not from the tempo: the two may count different note values. A 3/8 song's
    beats are its eighths; found at the right tempo as 6/8's dotted quarters (every third of
    them) or 3/4's quarters (every other one), the beats found lie on its grid, though only a
    third or a half of its beats have one of them near.
    """
    if not any(abs(ratio / level - 1) <= 0.03 for level in NESTED_RATIOS):
        return False
    inside = in_span(found_s, span)
    spaced = len(inside) >= 2 and len(true_s) >= 2  # else the tempo says which is finer
    if spaced:
        finer_found = float(np.median(np.diff(true_s))) >= 0.97 * float(np.median(np.diff(inside)))
    else:
        finer_found = ratio >= 0.97
    if finer_found:
        return median_distance(true_s, found_s) <= DOWNBEAT_TOLERANCE_S
    return median_distance(inside, true_s) <= DOWNBEAT_TOLERANCE_S


def note_error(record) -> float:  # type: ignore[no-untyped-def]
    """Largest |note start in the record - note start read back from the .mid| (s), with --bpm auto."""
    import io

    import pretty_midi

    song = convert_record(record, ConvertOptions(bpm="auto", ppq=960))
    midi = pretty_midi.PrettyMIDI(io.BytesIO(write_midi(song)))
    written = np.sort(np.concatenate([[n.start for n in i.notes] for i in midi.instruments]))
    expected = np.sort(np.concatenate([i.start_s for i in record.instruments]))
    if len(written) != len(expected):  # merged duplicates: compare each written note with its nearest
        index = np.clip(np.searchsorted(expected, written), 1, len(expected) - 1)
        return float(np.minimum(np.abs(expected[index] - written), np.abs(expected[index - 1] - written)).max())
    return float(np.abs(written - expected).max())


def pretty_midi_tempo(record) -> float:  # type: ignore[no-untyped-def]
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for instrument in record.instruments:
        part = pretty_midi.Instrument(0)
        part.notes = [
            pretty_midi.Note(velocity=64, pitch=int(p), start=float(s), end=float(e))
            for s, e, p in zip(instrument.start_s, instrument.end_s, instrument.pitch)
        ]
        midi.instruments.append(part)
    try:
        return float(midi.estimate_tempo())
    except (ValueError, IndexError):
        return 120.0


LIBROSA_SR, LIBROSA_HOP = 22050, 512  # librosa's own frame rate (43 Hz), for which its defaults are tuned


def librosa_tempo(record) -> float:  # type: ignore[no-untyped-def]
    """librosa's DP beat tracker on an onset envelope made from the notes, at librosa's frame rate.

    The envelope is midiexport's (same onsets, same role weights), sampled every 512/22050 s.
    """
    import librosa

    found = onsets.collect_onsets(record)
    frame_s = LIBROSA_HOP / LIBROSA_SR
    frames = int(found.all.times_s.max() / frame_s) + 2
    env = np.bincount(np.rint(found.all.times_s / frame_s).astype(int), weights=found.all.weights, minlength=frames)
    tempo, _ = librosa.beat.beat_track(onset_envelope=env.astype(float), sr=LIBROSA_SR, hop_length=LIBROSA_HOP)
    return float(np.atleast_1d(tempo)[0])


def five_minutes(songs: list[dict]) -> float:
    """Return the best of 3 times (ms) of estimate_tempo on the densest song looped to 300 s."""
    import dataclasses

    record = max((record_of(song) for song in songs), key=lambda r: sum(i.note_count for i in r.instruments))
    length = max(float(i.end_s.max()) for i in record.instruments if i.note_count) + 1.0
    copies = int(np.ceil(300.0 / length))
    looped = [
        dataclasses.replace(
            i,
            start_s=np.concatenate([i.start_s + k * length for k in range(copies)]),
            end_s=np.concatenate([i.end_s + k * length for k in range(copies)]),
            pitch=np.tile(i.pitch, copies),
            velocity=np.tile(i.velocity, copies),
        )
        for i in record.instruments
    ]
    long_record = dataclasses.replace(record, instruments=tuple(looped))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        estimate_tempo(long_record)
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def report(split: str, rows: list[dict]) -> None:
    """Print one table per split: categories down, measures across."""
    methods = [m for m in METHODS if rows and m in rows[0]["kind"]]
    print(f"\n## split {split}: {len(rows)} songs\n")
    head = "| category | songs | " + " | ".join(f"{m} within 1%" for m in methods)
    head += " | midiexport errors ×2 ×½ ×3/2 ×2/3 ×4/3 ×3/4 other | meter right | meter name right"
    head += " | meter right (4/4 3/4 6/8) | downbeats (steady) | downbeats, meter name (steady) | beats (drifting) |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    groups = [(c, [r for r in rows if c in r["categories"]]) for c in CATEGORY_ORDER] + [("all", rows)]
    for name, group in groups:
        if not group:
            continue
        cells = [name, str(len(group))]
        cells += [pct(sum(r["kind"][m] == "right" for r in group), len(group)) for m in methods]
        kinds = Counter(r["kind"]["midiexport"] for r in group)
        cells.append(" ".join(str(kinds[k]) for k, _ in ERROR_KINDS) + f" {kinds['other']}")
        cells.append(pct(sum(r["meter_right"] for r in group), len(group)))
        cells.append(pct(sum(r["meter_name_right"] for r in group), len(group)))
        targeted = [r for r in group if r["target_meter"]]
        cells.append(pct(sum(r["meter_name_right"] for r in targeted), len(targeted)))
        steady = [r for r in group if "steady" in r["categories"]]
        for key in ("downbeat_right", "downbeat_right_strict"):
            cells.append(pct(sum(r[key] for r in steady), len(steady)) if steady else "–")
        drifting = [r for r in group if "drifting" in r["categories"]]
        cells.append(f"{100 * statistics.mean(r['beat_share'] for r in drifting):.0f}%" if drifting else "–")
        print("| " + " | ".join(cells) + " |")
    for cats, label in ((("drums", "steady"), "steady with drums"), (("no-drums", "steady"), "steady without drums")):
        group = [r for r in rows if set(cats) <= r["categories"]]
        if group:
            print(f"\ndownbeats within 30 ms, {label}: {pct(sum(r['downbeat_right'] for r in group), len(group))}"
                  f" of {len(group)} (meter name: {pct(sum(r['downbeat_right_strict'] for r in group), len(group))});"
                  f" the model's choice whatever its confidence (tempo, meter and bar lines found):"
                  f" {pct(sum(r['right_found'] for r in group), len(group))}"
                  f" (meter name: {pct(sum(r['right_found_strict'] for r in group), len(group))})")  # fmt: skip
    drifting = [r for r in rows if "drifting" in r["categories"] and r["sure"]]
    if drifting:
        print(
            f"\nbeats within 30 ms, drifting songs with bar lines written: "
            f"{100 * statistics.mean(r['beat_share'] for r in drifting):.0f}% of beats, {len(drifting)} songs"
        )
    for category in ("steady", "drifting"):
        group = [r for r in rows if category in r["categories"]]
        for mode in ("bars", "beats", "constant"):
            chosen = [r for r in group if r["mode"] == mode]
            if chosen:
                events = [r["tempo_events"] for r in chosen]
                print(f"{category}, written with {mode}: {len(chosen)} songs, beats within 30 ms "
                      f"{100 * statistics.mean(r['beat_share'] for r in chosen):.0f}%, tempo events per song "
                      f"median {statistics.median(events):g}, max {max(events)}, one or two (a lead-in) "
                      f"{pct(sum(e <= 2 for e in events), len(events))}; changes closer than a bar: "
                      f"{sum(r['crowded'] for r in chosen)}")  # fmt: skip
    far = [r for r in rows if r["far_marks"]]
    print(
        f"tempo marks more than {PICKUP_TEMPO_RATIO - 1:.0%} from the song's tempo (its map's time-weighted median): "
        f"{len(far)} songs ({sum(r['has_drums'] for r in far)} with drums), {sum(r['far_marks'] for r in far)} marks"
    )
    print()
    for label, group in (("all songs", rows), *groups_by_drums(rows)):
        sure = [r for r in group if r["sure"]]
        print(f"confident (bar lines written), {label}: {len(sure)} of {len(group)} ({pct(len(sure), len(group))});"
              f" right among them (tempo, meter and bar lines): {pct(sum(r['right'] for r in sure), len(sure))}"
              f" (meter name: {pct(sum(r['downbeat_right_strict'] for r in sure), len(sure))})")  # fmt: skip
    calibration(rows)
    if rows and "note_error_s" in rows[0]:
        worst = max(r["note_error_s"] for r in rows)
        print(f"notes: largest distance between a record's note and the .mid written: {worst * 1000:.3f} ms")
    seconds = [r["seconds"] for r in rows]
    print(f"estimate time per song: mean {1000 * statistics.mean(seconds):.1f} ms, max {1000 * max(seconds):.1f} ms")


def groups_by_drums(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """The songs with drums and those without: the bar-line confidence is calibrated per group."""
    return [
        (label, [r for r in rows if r["has_drums"] == drums])
        for label, drums in (("with drums", True), ("without drums", False))
    ]


def calibration(rows: list[dict]) -> None:
    """Print, per group and confidence threshold, how many songs reach it and how many of those are right.

    Right: tempo and the bar lines found, by the meter convention (whether or not the threshold lets them be
    written). Each group (with drums, without) has its own curve and threshold.
    """
    for (label, group), has_drums in zip(groups_by_drums(rows), (True, False)):
        threshold = tempo.bar_threshold(has_drums=has_drums)
        cells = []
        for value in sorted({0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95} | {threshold or 0.5}):
            above = [r for r in group if r["confidence"] >= value]
            right = sum(r["right_found"] for r in above)
            cells.append(f"≥{value:.2f}: {len(above)} songs, {pct(right, len(above))} right")
        chosen = f"threshold {threshold:.2f}" if threshold is not None else "no threshold: bar lines not claimed"
        print(f"calibration, songs {label} ({len(group)}; {chosen}; right: tempo and bar lines found, by the"
              f" meter convention): " + "; ".join(cells))  # fmt: skip
    for key, label in (("beats_on_grid_found", "beats on the music's grid: the beats or a level nested with them"),
                       ("beats_right_found", "tempo right, median beat within 30 ms")):  # fmt: skip
        cells = []
        for threshold in sorted({0.5, 0.7, 0.8, 0.85, 0.9, 0.95, tempo.BEAT_CONFIDENCE_THRESHOLD}):
            above = [r for r in rows if r["beat_confidence"] >= threshold]
            below_bars = [r for r in above if not r["sure"]]
            right, right_below = (sum(r[key] for r in group) for group in (above, below_bars))
            below = pct(right_below, len(below_bars))
            cells.append(f"≥{threshold:.2f}: {len(above)} songs, {pct(right, len(above))} right ({below} of the"
                         f" {len(below_bars)} below the bar-line threshold)")  # fmt: skip
        print(f"beat calibration ({label}): " + "; ".join(cells))


def pct(count: int, total: int) -> str:
    return f"{100 * count / total:.0f}%" if total else "–"


def fit_weights(songs: list[dict], *, only: str = "") -> None:
    """Fit meter.WEIGHTS by maximum likelihood (conditional logit, small L2 penalty) on the songs given.

    ``only`` (a regex): fit only the weights whose names match it, the others kept as they are
    (the penalty then applies to the fitted ones only).
    """
    import re

    from scipy.optimize import minimize

    problems = []
    for song in songs:
        record = record_of(song)
        found = onsets.collect_onsets(record)
        if len(found.all.times_s) < 8:
            continue
        hyps, correct = hypotheses_judged(song, found)
        if correct.any():
            problems.append((hyps.features, correct))
    print(f"fitting on {len(problems)} of {len(songs)} songs (the others have no right hypothesis on their pulse)")

    start = np.array([meter.WEIGHTS.get(name, 0.0) for name in meter.FEATURES])
    free = np.array([re.search(only, name) is not None for name in meter.FEATURES])

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        w = start.copy()
        w[free] = x
        total, grad = 0.5 * 0.1 * float(x @ x), np.zeros_like(w)
        for features, correct in problems:
            s = features @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            q = p * correct
            q /= q.sum()
            total -= math.log(max(float(p[correct].sum()), 1e-300))
            grad -= features.T @ (q - p)
        return total, grad[free] + 0.1 * x

    fitted = start.copy()
    fitted[free] = minimize(loss, start[free], jac=True, method="L-BFGS-B").x
    print("WEIGHTS = {")
    for name, value in zip(meter.FEATURES, fitted):
        print(f'    "{name}": {value:.2f},')
    print("}")


LOGISTIC = np.vectorize(tempo.logistic, otypes=[np.float64])  # the estimator's curves, value by value
LOG_ODDS = np.vectorize(tempo.log_odds, otypes=[np.float64])


def fit_logistic(inputs: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Weights of a logistic regression (maximum likelihood, no penalty) of ``right`` on the columns of ``inputs``."""
    from scipy.optimize import minimize

    def loss(w: np.ndarray) -> float:
        logit = inputs @ w
        return float((np.logaddexp(0.0, logit) - right * logit).sum())

    return np.asarray(minimize(loss, np.zeros(inputs.shape[1])).x)


def calibrate(songs: list[dict]) -> None:
    """Fit the confidence curves (Platt 1999) and choose their thresholds on the songs given; print them to paste.

    Bar lines: one logistic curve of the score margin per group, songs with drums and songs
    without (``tempo.calibrated_confidence``), and each group's threshold by the rule of
    ``choose_threshold`` on that group's songs alone (``group_thresholds``). Right:
    what the file would draw, the tempo within 1% and the bar lines found within 30 ms (median)
    of the song's, by the meter convention (``true_bar_grids``). Then the beat curve, on the
    songs below the thresholds just chosen, with the bar confidence of the curves just fitted
    (``calibrate_beats``). The printed block replaces its lines in midiexport/stages/tempo.py;
    a second run after pasting prints the same block.
    """
    rows = [judge(song, references=False, notes=False) for song in songs]
    margin = np.array([min(r["margin"], tempo.MAX_MARGIN) for r in rows])
    drums = np.array([r["has_drums"] for r in rows], dtype=bool)
    right = np.array([r["right_found"] for r in rows], dtype=np.float64)
    confidence = np.zeros(len(rows))
    curves = {}
    for group in (True, False):
        inside = drums == group
        curves[group] = fit_logistic(np.column_stack([margin[inside], np.ones(inside.sum())]), right[inside])
        slope, offset = curves[group]
        confidence[inside] = np.round(LOGISTIC(slope * margin[inside] + offset), 3)
    thresholds = dict(zip((True, False), group_thresholds(confidence, drums, right.astype(bool))))
    beat_lines, beat_summary = calibrate_beats(rows, confidence, drums, thresholds)
    print(f"# paste over the calibration block of midiexport/stages/tempo.py (bench split, {len(rows)} songs)")
    for group, name in ((True, "DRUMS"), (False, "NO_DRUMS")):
        slope, offset = curves[group]
        print(f"CALIBRATION_{name} = ({slope:.3f}, {offset:.3f})"
              + ("  # songs with drums: slope per unit of margin, offset (log-odds)" if group
                 else "  # songs without drums: the same"))  # fmt: skip
    for group, name in ((True, "DRUMS"), (False, "NO_DRUMS")):
        threshold = thresholds[group]
        value = f"{threshold:.2f}" if threshold is not None else "None"
        print(f"CONFIDENCE_THRESHOLD_{name}: float | None = {value}")
    print("\n".join(beat_lines))
    print()
    for group, label in ((True, "with drums"), (False, "without drums")):
        inside = drums == group
        threshold = thresholds[group]
        if threshold is None:
            shares = threshold_shares(confidence[inside], right[inside])
            best = max(shares, key=lambda share: share.right, default=None)
            at_best = ""
            if best is not None:
                at_best = f"; at best {100 * best.right:.1f}% right, {best.songs} songs at {best.threshold:.2f}"
            print(f"songs {label}: {int(inside.sum())}; no threshold{at_best}: no bar line is claimed")
        else:
            above = inside & (confidence >= threshold)
            print(f"songs {label}: {int(inside.sum())}; at {threshold:.2f}: {int(above.sum())} songs,"
                  f" {100 * right[above].mean():.1f}% right")  # fmt: skip
    print(beat_summary)


class Share(NamedTuple):
    """The songs at or above one threshold: the share of them right, and how many they are."""

    threshold: float
    right: float
    songs: int


def threshold_shares(confidence: Sequence[float], right: Sequence[bool]) -> list[Share]:
    """Return the Share at each value of the grid that at least MIN_CALIBRATION_SONGS songs reach.

    The grid is THRESHOLD_FLOOR and up to 1 (excluded) by THRESHOLD_STEP.
    """
    values = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(right, dtype=bool)
    grid = np.round(np.arange(THRESHOLD_FLOOR, 1.0, THRESHOLD_STEP), 2)
    above = [(float(t), values >= t) for t in grid]
    return [Share(t, float(hits[at].mean()), int(at.sum())) for t, at in above if at.sum() >= MIN_CALIBRATION_SONGS]


def choose_threshold(confidence: Sequence[float], right: Sequence[bool]) -> float | None:
    """Return the threshold the songs given call for, or None when no confidence earns one.

    The rule (``calibrate`` applies it per group, and to the beat confidence): the lowest value
    of the grid (``threshold_shares``) that at least MIN_CALIBRATION_SONGS songs reach, with at
    least CALIBRATION_PRECISION of the songs at or above it right, and the same share at every
    higher value that at least as many songs reach (a higher value fewer songs reach is not
    judged: a few songs are no share). None: no value holds, so "confidence >= threshold"
    cannot mean right 95% of the time for these songs.
    """
    judged = threshold_shares(confidence, right)
    for index, share in enumerate(judged):
        if all(higher.right >= CALIBRATION_PRECISION for higher in judged[index:]):
            return share.threshold
    return None


def group_thresholds(
    confidence: Sequence[float], has_drums: Sequence[bool], right: Sequence[bool]
) -> tuple[float | None, float | None]:
    """Return the bar-line thresholds (songs with drums, songs without), each chosen on its own group's songs.

    Pooled, the songs with drums (most of them right) would carry a share that the songs
    without drums do not reach: calibrated over all songs is not calibrated within each group
    (Kleinberg, Mullainathan & Raghavan 2016, "calibration within groups"), so each group's
    threshold is chosen on its songs alone (``choose_threshold``).
    """
    c, d, r = np.asarray(confidence), np.asarray(has_drums, dtype=bool), np.asarray(right, dtype=bool)
    return choose_threshold(c[d], r[d]), choose_threshold(c[~d], r[~d])


def calibrate_beats(
    rows: list[dict], confidence: np.ndarray, drums: np.ndarray, thresholds: dict[bool, float | None]
) -> tuple[list[str], str]:
    """Fit tempo.calibrated_beat_confidence's curve and choose BEAT_CONFIDENCE_THRESHOLD where it decides.

    On the songs whose bar lines would not be written under the bar-line curves and thresholds
    just fitted (``confidence``, ``thresholds`` per group). Inputs: the log-odds of the nested
    posterior, of that bar confidence and of the long-note tracker's agreement with the beats
    (``tempo.long_note_agreement``). Right: the beats found lie on the music's metrical grid
    (``beats_on_grid``), what a map that follows them draws. The threshold by the rule of
    ``choose_threshold``. Returns the constants' lines and lines on the songs, with a
    5-fold cross-validation of the curve with and without the agreement (``cross_validated``).
    """
    sure = np.array([tempo.reaches(c, thresholds[bool(d)]) for c, d in zip(confidence, drums)], dtype=bool)
    unsure = [r for r, s in zip(rows, sure) if not s]
    inputs = np.column_stack([[r["nested"] for r in unsure], confidence[~sure], [r["agreement"] for r in unsure]])
    log_odds = np.column_stack([LOG_ODDS(inputs), np.ones(len(unsure))])
    right = np.array([r["beats_on_grid_found"] for r in unsure], dtype=np.float64)
    weights = fit_logistic(log_odds, right)
    nested_w, bars_w, agreement_w, offset = weights
    beat_confidence = np.round(LOGISTIC(log_odds @ weights), 3)
    threshold = choose_threshold(beat_confidence, right.astype(bool))
    lines = [
        f"BEAT_CALIBRATION_NESTED = {nested_w:.3f}  # per unit of log-odds of the nested posterior",
        f"BEAT_CALIBRATION_BARS = {bars_w:.3f}  # per unit of log-odds of the bar confidence",
        f"BEAT_CALIBRATION_AGREEMENT = {agreement_w:.3f}  # per unit of log-odds of the long-note tracker's agreement",
        f"BEAT_CALIBRATION_OFFSET = {offset:.3f}",
        f"BEAT_CONFIDENCE_THRESHOLD = {threshold:.2f}" if threshold is not None
        else 'BEAT_CONFIDENCE_THRESHOLD = float("inf")  # no value holds: beats never followed without bar lines',
    ]  # fmt: skip
    checks = []
    for label, columns in (("all three inputs", [0, 1, 2, 3]), ("without the agreement", [0, 1, 3])):
        followed, share = cross_validated(log_odds[:, columns], right)
        checks.append(f"{label}: {followed:.1f} songs followed, {100 * share:.1f}% on the grid")
    check = (f"\nbeats, 5-fold cross-validation ({CV_SHUFFLES} shuffles, each fold's threshold chosen on the other"
             f" four), mean per shuffle: " + "; ".join(checks))  # fmt: skip
    if threshold is None:
        return lines, f"beats: no threshold among the {len(right)} songs below the bar-line thresholds" + check
    above = beat_confidence >= threshold
    summary = (f"beats: at {threshold:.2f}, {int(above.sum())} of the {len(right)} songs below the bar-line"
               f" thresholds, {100 * right[above].mean():.1f}% with their beats on the music's grid")  # fmt: skip
    return lines, summary + check


CV_SHUFFLES = 30  # cross_validated: shuffles of the songs into 5 folds, averaged


def cross_validated(inputs: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """Songs followed per shuffle and the share of them right, the curve and threshold fitted without their fold.

    Each of CV_SHUFFLES seeded shuffles splits the songs into 5 folds; each fold is judged by
    the curve fitted and the threshold chosen (``choose_threshold``) on the other four.
    """
    followed, on_grid = 0, 0.0
    for shuffle in range(CV_SHUFFLES):
        fold = np.random.default_rng(shuffle).permutation(len(right)) % 5
        for held in range(5):
            train = fold != held
            weights = fit_logistic(inputs[train], right[train])
            confidence = np.round(LOGISTIC(inputs @ weights), 3)
            threshold = choose_threshold(confidence[train], right[train].astype(bool))
            if threshold is None:
                continue
            chosen = ~train & (confidence >= threshold)
            followed += int(chosen.sum())
            on_grid += float(right[chosen].sum())
    return followed / CV_SHUFFLES, on_grid / followed if followed else 0.0


def hypotheses_judged(song: dict, found: onsets.Onsets) -> tuple[meter.Hypotheses, np.ndarray]:
    """The meter hypotheses on a song's onsets (slot grid at ``meter.SLOTS_PER_PULSE``), and which are right."""
    slots = beats.slot_grid(found, meter.SLOTS_PER_PULSE)
    hyps = meter.meter_hypotheses(found, slots)
    return hyps, correct_hypotheses(song, hyps, slots)


def hypotheses_bpm(hyps: meter.Hypotheses, slot_s: float) -> np.ndarray:
    """Each hypothesis's tempo in quarters a minute, on the slot grid's median slot (s)."""
    quarters = np.array([q for _, _, _, q in meter.METERS])[hyps.meter]
    return 60.0 / (hyps.beat * slot_s) * quarters


def correct_hypotheses(song: dict, hyps: meter.Hypotheses, slots: np.ndarray) -> np.ndarray:
    """Which hypotheses match the truth: tempo within 4%, the meter, a bar line within the refinement window.

    A bar line within ``tempo.REFINE_WINDOW`` of a beat is pulled onto the music by the
    refinement, so such hypotheses write the same bars; the confidence sums them alike.
    """
    slot_s = float(np.median(np.diff(slots)))
    bpm = hypotheses_bpm(hyps, slot_s)
    first_s = song["truth"]["downbeats_s"][0]
    bar_slots = hyps.beat * np.array([p for _, p, _, _ in meter.METERS])[hyps.meter]
    # the hypothesis's bar lines are slots phase + k * bar; compare its first one in the truth's span
    k = np.maximum(0, np.ceil((np.searchsorted(slots, first_s - 0.05) - hyps.phase) / bar_slots)).astype(int)
    at = slots[np.clip(hyps.phase + k * bar_slots, 0, len(slots) - 1)]
    near = np.full(len(at), np.inf)
    for index, (name, _, _, _) in enumerate(meter.METERS):  # the bar lines each meter must draw, by the convention
        grids = true_bar_grids(name, song["truth"])
        if not grids:
            continue
        downs = np.sort(np.concatenate(grids))
        mine = hyps.meter == index
        where = np.clip(np.searchsorted(downs, at[mine]), 1, max(len(downs) - 1, 1))
        near[mine] = np.minimum(np.abs(downs[where] - at[mine]), np.abs(downs[where - 1] - at[mine]))
    beat_s = hyps.beat * slot_s
    right_tempo = np.abs(bpm / truth_tempo(song) - 1) <= LABEL_TEMPO_TOLERANCE
    return right_tempo & (near <= tempo.REFINE_WINDOW * beat_s)


if __name__ == "__main__":
    main()
