"""Benchmark the clean-up stage (``--clean``, ``--align``) and the key estimate against the truth.

Reads the evaluation corpus (``bench/corpus``: real scores from music21's corpus rendered
with fluidsynth and transcribed back with basic-pitch, and drum-style songs passed
through a noise model; each song holds its clean truth and the record the API would
send) and prints, in one run:

1. note precision, recall and F1 with ``mir_eval.transcription`` (onsets within 50 ms
   and the same pitch; then also offsets within 20% of the note or 50 ms), before and
   after each preset, per instrument family, for transcribed and for noised songs
   apart. Pitched families make the averages; drums are scored apart (onsets only:
   the API's drum hits last one tick, so offsets mean nothing) and shown in their own row;
2. each preset over clean inputs (the truth of every song, the sample song, the API
   examples in ``fixtures/``): notes changed;
3. ``--align`` on songs with known per-stem latency (``truth.latency_ms``): the error
   of each measured latency against the truth, relative to the reference part;
4. the key estimate on real scores (music21 truth): share right, with relative,
   parallel and fifth errors counted apart; on the records and on the truth notes;
   the excerpts' verdicts by class (staying in their signature's scale or not, length,
   mode) and where transcription noise changes them; and on the music21 key set
   (``corpus/key_scores.py``: scores outside the corpus whose key the score states),
   the same table from the scores' notes;
5. clean-up time at 100,000 notes against the conversion time (convert + write).

Scoring goes through ``convert_record`` (ticks read back as seconds at 120 BPM / 480 PPQ),
so what is scored is what a user's .mid holds. Notes are matched pitch by pitch: with
whole MIDI pitches only equal pitches can match, so the matching decomposes exactly and
stays small.

    python bench/bench_clean.py                                  # bench/corpus/data beside this script
    python bench/bench_clean.py --corpus /path/to/data --split holdout
    python bench/bench_clean.py --split bench,holdout --key-only      # the key table alone
    python bench/bench_clean.py --key-only --key-generated            # ... with the generated songs' keys too
    python bench/bench_clean.py --split bench,holdout --timing-only   # the clean-up timing alone
"""

from __future__ import annotations

import argparse
import glob
import resource
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "corpus"))


import schema  # noqa: E402

from midiexport import gm  # noqa: E402
from midiexport.model import Record  # noqa: E402
from midiexport.options import ConvertOptions  # noqa: E402
from midiexport.outputs.smf import write_midi  # noqa: E402
from midiexport.stages import clean, key  # noqa: E402
from midiexport.stages.convert import convert_record  # noqa: E402
from midiexport.stages.normalize import normalize_payload  # noqa: E402

ONSET_TOLERANCE_S = 0.05  # mir_eval's default and MIREX's
TICKS_PER_S = 960  # 480 PPQ at 120 BPM: the default conversion
GENERATED_BARE = "without drums, generated (exact latency)"
TRANSCRIBED_ACTUAL = "without drums, transcribed (actual lateness)"
LATENESS_WINDOW_S = 0.100  # a record onset this close to a truth onset of its pitch measures the stem's lateness
CONFIGS = {
    "none": {},
    "light": {"clean": "light"},  # the note rules and the overtone ghosts; no alignment (--clean)
    "light, no ghosts": {"clean": "light", "ghosts": False},  # what dropping overtone ghosts gains and costs
    "strong": {"clean": "strong"},
    "light+align": {"clean": "light", "align": True},
    "light+merge20": {"clean": "light", "merge_gap_ms": 20.0},  # why the presets leave fragments off
    # the note rules plus --shift NAME=-latency from the truth (no measured alignment): what timing costs
    "light+true shift": {"clean": "light"},
}
TRUE_SHIFT = "light+true shift"
PRESETS = [c for c in CONFIGS if c not in ("none", TRUE_SHIFT)]  # what clean inputs and timing run
FAMILIES = (
    "piano", "chromatic perc.", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth fx", "ethnic", "percussive", "sound fx",
)  # fmt: skip
TIMING_NOTES = 100_000
SONG_PARTS = 12  # timing again on a record of a real song's largest shape (PRODUCT.md: 2-12 instruments)
DEFAULT_OPTIONS = ConvertOptions()  # the conversion timed against the clean-up: made once, outside the timed call
HEADLINE: dict[str, str] = {}  # measure -> figure, for the summary against the targets
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass
class Tally:
    """Matched-note counts summed over songs: reference notes, estimated notes, matches."""

    ref: int = 0
    est: int = 0
    onset: int = 0
    offset: int = 0

    def add(self, other: Tally) -> None:
        self.ref += other.ref
        self.est += other.est
        self.onset += other.onset
        self.offset += other.offset

    def prf(self, matched: int) -> tuple[float, float, float]:
        p = matched / self.est if self.est else 0.0
        r = matched / self.ref if self.ref else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def family_of(program: int, is_drum: bool) -> str:
    return "drums" if is_drum else FAMILIES[program // 8]


def match_counts(ref: np.ndarray, est: np.ndarray, *, drums: bool) -> Tally:
    """Count onset(+pitch) and onset+offset matches of note arrays (start, end, pitch), pitch by pitch."""
    import mir_eval.transcription as transcription

    tally = Tally(ref=len(ref), est=len(est))
    if not len(ref) or not len(est):
        return tally
    for pitch in np.intersect1d(ref[:, 2], est[:, 2]):
        r, e = ref[ref[:, 2] == pitch], est[est[:, 2] == pitch]
        hz_r = np.full(len(r), 440.0 * 2 ** ((pitch - 69) / 12))
        hz_e = hz_r[:1].repeat(len(e))
        ri, ei = _intervals(r), _intervals(e)
        tally.onset += len(transcription.match_notes(ri, hz_r, ei, hz_e, ONSET_TOLERANCE_S, offset_ratio=None))
        if not drums:
            tally.offset += len(transcription.match_notes(ri, hz_r, ei, hz_e, ONSET_TOLERANCE_S))
    return tally


def _intervals(notes: np.ndarray) -> np.ndarray:
    start = notes[:, 0]
    return np.stack([start, np.maximum(notes[:, 1], start + 1e-4)], axis=1)  # mir_eval wants length > 0


def record_of(song: dict) -> Record:
    [record] = normalize_payload(song["record"], source=song["id"])
    return record


def converted_notes(record: Record, options: ConvertOptions) -> dict[str, np.ndarray]:
    """Convert and read the song back in seconds: {family: (start, end, pitch) rows}."""
    song = convert_record(record, options)
    notes: dict[str, list[np.ndarray]] = defaultdict(list)
    for track in song.tracks:
        rows = np.stack([track.on_tick / TICKS_PER_S, track.off_tick / TICKS_PER_S, track.pitch], axis=1)
        notes[family_of(track.program, track.is_drum)].append(rows)
    return {k: np.concatenate(v) for k, v in notes.items()}


def score_song(song: dict, record: Record, options: ConvertOptions) -> dict[str, Tally]:
    """Tallies per instrument family for one song under one configuration.

    Truth and output are pooled by General MIDI family (the output's from the program
    ``convert`` chose, the truth's from its program): record names need not match the
    truth's one to one (an instrument split over two tracks, "Choir Aahs" for each of
    "Choir Aahs 1".."5"), and an output family the truth lacks counts as false notes.
    """
    est = converted_notes(record, options)
    ref: dict[str, list[list[float]]] = defaultdict(list)
    for inst in song["truth"]["instruments"]:
        ref[family_of(int(inst.get("program", 0)), bool(inst.get("is_drum")))] += [n[:3] for n in inst["notes"]]
    found: dict[str, Tally] = {}
    for family in set(ref) | set(est):
        truth = np.array(ref.get(family, []), dtype=np.float64).reshape(-1, 3)
        found[family] = match_counts(truth, est.get(family, np.empty((0, 3))), drums=family == "drums")
    return found


@dataclass
class Group:
    """Tallies for one group of songs (transcribed or noised) under every configuration."""

    families: dict[str, dict[str, Tally]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Tally)))
    song_f1: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    songs: int = 0


def pitched(tallies: dict[str, Tally]) -> Tally:
    total = Tally()
    for family, tally in tallies.items():
        if family != "drums":
            total.add(tally)
    return total


def run_scores(songs: list[dict], groups: dict[str, Group]) -> None:
    for song in songs:
        cats = set(song.get("categories", ()))
        group = "transcribed" if "transcribed" in cats else "noised" if "noisy" in cats else None
        if group is None:
            continue
        record = record_of(song)
        groups[group].songs += 1
        for config, fields in CONFIGS.items():
            options = ConvertOptions(key="off", **fields)
            if config == TRUE_SHIFT:
                latency = song["truth"].get("latency_ms") or {}
                options = options.replace(shifts=tuple((name, -ms) for name, ms in latency.items() if ms))
            found = score_song(song, record, options)
            for family, tally in found.items():
                groups[group].families[config][family].add(tally)
            total = pitched(found)
            if total.ref:
                groups[group].song_f1[config].append(total.prf(total.onset)[2])


def print_scores(name: str, group: Group) -> None:
    print(f"\n## Note scores, {name} songs ({group.songs}); mir_eval, onset 50 ms + pitch (and + offset)\n")
    print("| family | notes | config | P | R | F1 | F1 with offsets | F1 change |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    families = sorted({f for c in group.families.values() for f in c}, key=lambda f: (f == "drums", f))
    for family in [*families, "all pitched"]:
        base = None
        for config in CONFIGS:
            tally = pitched(group.families[config]) if family == "all pitched" else group.families[config][family]
            p, r, f1 = tally.prf(tally.onset)
            f1_off = tally.prf(tally.offset)[2] if family != "drums" else float("nan")
            base = f1 if base is None else base
            change = f"{(f1 - base) * 100:+.1f}" if config != "none" else ""
            print(f"| {family} | {tally.ref:,} | {config} | {p * 100:.1f} | {r * 100:.1f} | {f1 * 100:.1f} | "
                  f"{f1_off * 100:.1f} | {change} |")  # fmt: skip
    means = {c: statistics.fmean(v) * 100 if v else float("nan") for c, v in group.song_f1.items()}
    line = ", ".join(f"{c} {m:.1f}" for c, m in means.items())
    print(f"\nmean per-song F1 (pitched): {line}")
    base, light = pitched(group.families["none"]), pitched(group.families["light"])
    worst = min(
        (group.families["light"][f].prf(group.families["light"][f].onset)[2]
         - group.families["none"][f].prf(group.families["none"][f].onset)[2], f)
        for f in families if f != "drums"
    )  # fmt: skip
    pooled = (light.prf(light.onset)[2] - base.prf(base.onset)[2]) * 100
    HEADLINE[f"F1 change with --clean, {name} songs (mean per song; pooled)"] = (
        f"{means['light'] - means['none']:+.1f}; {pooled:+.1f} points"
    )
    aligned = pitched(group.families["light+align"])
    pooled_aligned = (aligned.prf(aligned.onset)[2] - base.prf(base.onset)[2]) * 100
    HEADLINE[f"F1 change with --clean --align, {name} songs (mean per song; pooled)"] = (
        f"{means['light+align'] - means['none']:+.1f}; {pooled_aligned:+.1f} points"
    )
    HEADLINE[f"worst family F1 change with --clean, {name}"] = f"{worst[0] * 100:+.1f} ({worst[1]})"
    HEADLINE[f"recall lost with --clean, {name} (negative: gained)"] = (
        f"{(base.prf(base.onset)[1] - light.prf(light.onset)[1]) * 100:.1f} points"
    )


def clean_input_changes(records: list[Record]) -> dict[str, tuple[int, int]]:
    """Notes changed by each preset over clean records: {config: (changed, total)}."""
    out = {}
    for config in PRESETS:
        fields = CONFIGS[config]
        changed = total = 0
        for record in records:
            after = clean.clean_record(record, ConvertOptions(**fields))
            before_rows, after_rows = _note_rows(record), _note_rows(after)
            kept = len(set(before_rows) & set(after_rows))  # note times are unique per pitch in clean input
            changed += max(len(before_rows), len(after_rows)) - kept
            total += len(before_rows)
        out[config] = (changed, total)
    return out


def _note_rows(record: Record) -> list[tuple[float, float, int]]:
    rows = []
    for inst in record.instruments:
        rows += list(zip(np.round(inst.start_s, 6).tolist(), np.round(inst.end_s, 6).tolist(), inst.pitch.tolist()))
    return rows


def truth_record(song: dict) -> Record:
    instruments = [
        {"name": i["name"], "notes": [{"start": s, "end": e, "pitch": p, "velocity": v} for s, e, p, v in i["notes"]]}
        for i in song["truth"]["instruments"]
    ]
    [record] = normalize_payload({"state": "complete", "instruments": instruments}, source=song["id"] + " (truth)")
    return record


def clean_inputs(songs: list[dict]) -> None:
    sets = {"corpus truth": [truth_record(s) for s in songs]}
    sample = HERE.parent / "samples" / "sample-song.json"
    sets["sample song"] = normalize_payload(sample.read_bytes(), source=str(sample))
    fixtures = []
    for path in sorted(glob.glob(str(HERE.parent / "fixtures" / "*.json"))):
        fixtures += [r for r in normalize_payload(Path(path).read_bytes(), source=path) if r.status == "complete"]
    sets["API examples (fixtures)"] = fixtures
    print("\n## Clean inputs: notes changed by each preset\n")
    print("| input | records | notes | " + " | ".join(PRESETS) + " |")
    print("|---|---:|---:|" + "---:|" * len(PRESETS))
    for name, records in sets.items():
        found = clean_input_changes(records)
        total = next(iter(found.values()))[1]
        cells = " | ".join(f"{n:,} ({n / max(t, 1) * 100:.3f}%)" for n, t in found.values())
        print(f"| {name} | {len(records)} | {total:,} | {cells} |")
        changed = found["light"][0]
        HEADLINE[f"clean inputs changed by --clean: {name}"] = (
            f"{changed:,} of {total:,} ({changed / max(total, 1) * 100:.3f}%)"
        )


def align_errors(songs: list[dict]) -> None:
    """Error of --align's shift per stem against the truth's latency, relative to the reference part.

    Three groups of songs with known per-stem offsets. Generated songs with drums, and
    the same songs with their drums taken out (plus the few generated without drums):
    there the noise model's latency is the exact offset. Transcribed songs (no drums):
    their stems are late by the added latency *plus* basic-pitch's own onset delay, which
    differs by instrument (a bowed or sung attack is heard later than a piano's), so the
    offset that alignment should find is the stem's actual lateness, measured here from
    the truth (``stem_lateness``); the error against the added latency alone is shown
    too. A stem --align leaves alone (too few agreeing onsets, an ambiguous peak against the
    drums, or under 3 ms) counts with
    a shift of 0. Record tracks are matched to truth parts by ``meta.record_tracks``.
    A song whose reference part has no known offset (a transcribed stem with under 10
    onsets matched to its truth part) cannot be scored: its stems are counted apart, as
    left out, per group (the reference depends on the method, so the set scored can too).
    """
    errors: dict[str, list[float]] = defaultdict(list)
    alone: dict[str, int] = defaultdict(int)
    left_out: dict[str, int] = defaultdict(int)
    scored = errors, alone, left_out  # every call adds to the same tallies
    for song in songs:
        latency = song["truth"].get("latency_ms") or {}
        if not any(latency.values()):
            continue
        record = record_of(song)
        sources = song["meta"].get("record_tracks") or [i.name for i in record.instruments]
        drums = [gm.is_drum_instrument(i) for i in record.instruments]
        if "transcribed" in song.get("categories", ()):
            added = {k: latency.get(source, 0.0) / 1000 for k, source in enumerate(sources)}
            _align_error(record, drums, stem_lateness(song, record, sources), *scored, TRANSCRIBED_ACTUAL)
            _align_error(record, drums, added, *scored, "without drums, transcribed (added latency only)")
            continue
        truth = {k: latency[source] / 1000 for k, source in enumerate(sources) if source in latency}
        _align_error(record, drums, truth, *scored, "with drums" if any(drums) else GENERATED_BARE)
        melodic = [k for k, drum in enumerate(drums) if not drum]
        if any(drums) and len(melodic) >= 2:  # the same song with its drums taken out
            bare = replace(record, instruments=tuple(record.instruments[k] for k in melodic))
            kept = {n: truth[k] for n, k in enumerate(melodic) if k in truth}
            _align_error(bare, [False] * len(melodic), kept, *scored, GENERATED_BARE)
    print("\n## --align: latency error on songs with known per-stem latency\n")
    print("| songs | stems | left alone | median error | 90th percentile | max | stems left out |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for group, found in sorted(errors.items()):
        if not found:
            continue
        q = np.percentile(found, [50, 90])
        print(f"| {group} | {len(found)} | {alone[group]} | {q[0]:.1f} ms | {q[1]:.1f} ms | {max(found):.1f} ms | "
              f"{left_out[group]} |")  # fmt: skip
        HEADLINE[f"--align median latency error, {group}"] = f"{q[0]:.1f} ms ({len(found)} stems)"


def _align_error(
    record: Record, drums: list[bool], truth: dict[int, float], errors: dict[str, list[float]],
    alone: dict[str, int], left_out: dict[str, int], group: str,
) -> None:  # fmt: skip
    """Add |measured - true| (ms) to ``errors[group]`` for each stem whose truth offset (s) is known.

    When the reference's offset is unknown, the stems that would have been scored are
    counted in ``left_out[group]`` instead.
    """
    found = clean.measure_latencies(record.instruments, drums)
    measured = {index: lat for index, lat, _ in found}
    reference = list(found[0][2]) if found else [k for k in range(len(drums)) if _is_reference(record, drums, k)]
    if not all(k in truth for k in reference):
        left_out[group] += sum(k not in reference and not drums[k] and k in truth for k in range(len(drums)))
        return
    reference_s = float(np.mean([truth[k] for k in reference]))
    for index in range(len(record.instruments)):
        if index in reference or drums[index] or index not in truth:
            continue
        alone[group] += index not in measured
        errors[group].append(abs(measured.get(index, 0.0) - (truth[index] - reference_s)) * 1000)


def stem_lateness(song: dict, record: Record, sources: list[str]) -> dict[int, float]:
    """Each record track's actual lateness (s) against its truth part: the median difference
    between its onsets and the nearest truth onset of the same pitch, within 100 ms.

    Tracks with fewer than 10 such onsets are left out.
    """
    parts = {i["name"]: np.array([n[:3] for n in i["notes"]], dtype=np.float64).reshape(-1, 3)
             for i in song["truth"]["instruments"]}  # fmt: skip
    found = {}
    for index, inst in enumerate(record.instruments):
        truth = parts.get(sources[index])
        if truth is None:
            continue
        diffs = []
        for pitch in np.intersect1d(inst.pitch, truth[:, 2].astype(np.int64)):
            ref = np.sort(truth[truth[:, 2] == pitch, 0])
            est = inst.start_s[inst.pitch == pitch]
            after = np.clip(np.searchsorted(ref, est), 0, len(ref) - 1)
            before = np.clip(after - 1, 0, len(ref) - 1)
            diff = np.where(np.abs(est - ref[after]) < np.abs(est - ref[before]), est - ref[after], est - ref[before])
            diffs.append(diff[np.abs(diff) < LATENESS_WINDOW_S])
        joined = np.concatenate(diffs) if diffs else np.empty(0)
        if len(joined) >= 10:
            found[index] = float(np.median(joined))
    return found


def _is_reference(record: Record, drums: list[bool], index: int) -> bool:
    """The reference --align would use when it measures nothing: the drums, else the busiest part."""
    if any(drums):
        return drums[index]
    counts = [len(np.unique(i.start_s)) for i in record.instruments]
    return index == int(np.argmax(counts))


MINOR_MODES = {"minor", "dorian", "phrygian", "aeolian", "locrian"}  # modes with a minor third
MODE_TO_MAJOR = {"minor": 3, "dorian": -2, "phrygian": -4, "mixolydian": 5, "lydian": -5, "aeolian": 3, "locrian": 1}


def key_verdict(estimate: key.KeyEstimate | None, truth: dict) -> str:
    """right, relative, parallel, fifth (dominant or subdominant), other, or none."""
    if estimate is None:
        return "none"
    tonic, minor = schema.tonic_pc(truth["tonic"]), truth["mode"] in MINOR_MODES
    if estimate.tonic == tonic and estimate.minor == minor:
        return "right"
    if estimate.minor != minor and estimate.tonic == tonic:
        return "parallel"
    if estimate.minor != minor and estimate.tonic == (tonic + (3 if minor else -3)) % 12:
        return "relative"
    if estimate.minor == minor and (estimate.tonic - tonic) % 12 in (5, 7):
        return "fifth"
    return "other"


KEY_SET = HERE / "corpus" / "key-scores.jsonl.gz"  # scores outside the corpus, key stated (corpus/key_scores.py)
KEY_SET_S_PER_QUARTER = 0.5  # its notes are in quarters: read at 120 quarters per minute


def key_scores(songs: list[dict], *, generated: bool = False) -> None:
    """Key right on the corpus's real scores (from the record, from the truth) and on the music21 key set.

    With ``generated``, a study row too: the generated songs' records against their generator's key.
    """
    real = [s for s in songs if s["source"].startswith("music21:") and s["truth"].get("key")]
    sources = defaultdict(int)
    for song in real:
        sources[song["truth"]["key"].get("source", "?")] += 1
    told = ", ".join(f"{n} from {source}" for source, n in sorted(sources.items()))
    print(f"\n## Key on real scores ({len(real)} music21 songs with a known key: {told})\n")
    print("| notes from | songs | right | relative | parallel | fifth | other | written (sure) | right when written |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("record (transcribed)", [(record_of(s), s["truth"]["key"]) for s in real])]
    rows.append(("truth (score)", [(truth_record(s), s["truth"]["key"]) for s in real]))
    for style, pieces in sorted(key_set().items()):
        rows.append((f"music21 key set, {style} (score)", pieces))
    if generated:
        made = [s for s in songs if s["source"].startswith("generated:") and s["truth"].get("key")]
        rows.append(("generated songs (record)", [(record_of(s), s["truth"]["key"]) for s in made]))
    away = [modulated(song) for song in real]
    staying = {}  # label -> right among the excerpts whose notes stay in their signature's scale
    excerpt_verdicts = {}  # label -> verdict per excerpt, record and truth
    for label, pairs in rows:
        verdicts, written = defaultdict(int), defaultdict(int)
        estimates = [key.estimate_key(record) for record, _ in pairs]
        found = [key_verdict(estimate, truth) for estimate, (_, truth) in zip(estimates, pairs)]
        for estimate, verdict in zip(estimates, found):
            verdicts[verdict] += 1
            if estimate is not None and estimate.confident:
                written[verdict] += 1
        if label in ("record (transcribed)", "truth (score)"):
            staying[label] = sum(v == "right" for v, out in zip(found, away) if not out)
            excerpt_verdicts[label] = found
        n, w = max(len(pairs), 1), sum(written.values())
        cells = " | ".join(f"{verdicts[v] / n * 100:.1f}%" for v in KEY_KINDS)
        print(f"| {label} | {len(pairs)} | {cells} | {w / n * 100:.1f}% | {written['right'] / max(w, 1) * 100:.1f}% |")
        HEADLINE[f"key right, from the {label}"] = (
            f"{verdicts['right'] / n * 100:.1f}% ({verdicts['right']} of {len(pairs)}); "
            f"{written['right'] / max(w, 1) * 100:.1f}% of the {w} written"
        )
    kept = max(len(real) - sum(away), 1)
    right = "; ".join(f"from the {label} {n / kept * 100:.1f}% right" for label, n in staying.items())
    print(
        f"\n{sum(away)} of {len(real)} excerpts' score notes fit another key signature's scale better than their "
        f"truth's (they modulate, or the truth is off). On the other {len(real) - sum(away)}: {right}."
    )
    HEADLINE["key right on excerpts that stay in their signature's scale (record; truth)"] = (
        "; ".join(f"{n / kept * 100:.1f}%" for n in staying.values()) + f" (of {len(real) - sum(away)})"
    )
    if real:
        key_breakdown(real, away, excerpt_verdicts["record (transcribed)"], excerpt_verdicts["truth (score)"])


KEY_LENGTHS_S = (45.0, 70.0)  # excerpt length classes: under 45 s, 45-70 s, 70 s and over
KEY_KINDS = ("right", "relative", "parallel", "fifth", "other")


def key_breakdown(real: list[dict], away: list[bool], record: list[str], truth: list[str]) -> None:
    """The excerpts' key verdicts from the record by what the excerpt is, and record against truth notes.

    Classes: whether the score notes stay in their signature's scale (``modulated``), the
    excerpt's length, and the truth's key source; the last lines count where transcription
    noise changes the verdict (the same excerpt's truth notes right and its record wrong, or back).
    """
    length = [max(n[1] for i in s["truth"]["instruments"] for n in i["notes"]) for s in real]
    short, long = KEY_LENGTHS_S
    classes = {
        "stay in their signature's scale": [not out for out in away],
        "fit another signature's scale better": away,
        f"under {short:.0f} s": [t < short for t in length],
        f"{short:.0f}-{long:.0f} s": [short <= t < long for t in length],
        f"{long:.0f} s and over": [t >= long for t in length],
    }
    for mode in ("major", "minor"):
        classes[f"{mode} in the truth"] = [s["truth"]["key"]["mode"] == mode for s in real]
    print("\nThe excerpts' verdicts from the record, by class:\n")
    print("| excerpts | songs | " + " | ".join(KEY_KINDS) + " |")
    print("|---|---:|" + "---:|" * len(KEY_KINDS))
    for name, member in classes.items():
        chosen = [v for v, inside in zip(record, member) if inside]
        n = max(len(chosen), 1)
        cells = " | ".join(f"{sum(v == kind for v in chosen)} ({sum(v == kind for v in chosen) / n * 100:.0f}%)"
                           for kind in KEY_KINDS)  # fmt: skip
        print(f"| {name} | {len(chosen)} | {cells} |")
    lost = sum(r != "right" and t == "right" for r, t in zip(record, truth))
    gained = sum(r == "right" and t != "right" for r, t in zip(record, truth))
    same = sum(r == t for r, t in zip(record, truth))
    print(
        f"\nTranscription noise: record and truth notes get the same verdict on {same} of {len(real)} excerpts; "
        f"{lost} right from the truth are wrong from the record, {gained} the other way."
    )
    HEADLINE["key verdicts changed by transcription (right lost; gained)"] = f"{lost}; {gained} (of {len(real)})"


def key_set() -> dict[str, list[tuple[Record, dict]]]:
    """The music21 key set by style: (record of the score's notes, stated key); empty when absent."""
    import gzip
    import json

    if not KEY_SET.exists():
        return {}
    pieces: dict[str, list[tuple[Record, dict]]] = defaultdict(list)
    with gzip.open(KEY_SET, "rt", encoding="utf-8") as lines:
        for line in lines:
            piece = json.loads(line)
            notes = [
                {
                    "start": on * KEY_SET_S_PER_QUARTER,
                    "end": (on + length) * KEY_SET_S_PER_QUARTER,
                    "pitch": pitch,
                    "velocity": 0.8,
                }
                for on, length, pitch in piece["notes"]
            ]
            payload = {"state": "complete", "instruments": [{"name": "Piano", "notes": notes}]}
            [record] = normalize_payload(payload, source=piece["source"])
            pieces[piece["style"]].append((record, piece["key"]))
    return pieces


def modulated(song: dict) -> bool:
    """Whether the excerpt's score notes fit another key signature's scale better than its truth's.

    Such an excerpt sits in another key (it modulates, or its truth is off): a key
    estimate that follows the notes cannot be right on it.
    """
    truth = song["truth"]["key"]
    notes = np.array([n[:3] for i in song["truth"]["instruments"] for n in i["notes"]]).reshape(-1, 3)
    weight = np.bincount(notes[:, 2].astype(int) % 12, weights=notes[:, 1] - notes[:, 0], minlength=12)
    scale = np.array([1.0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1])
    shares = np.array([np.roll(scale, tonic) @ weight for tonic in range(12)])
    own = (schema.tonic_pc(truth["tonic"]) + MODE_TO_MAJOR.get(truth["mode"], 0)) % 12
    return bool(shares.max() > shares[own] + 1e-9)


def big_record(songs: list[dict], notes: int, parts: int | None = None) -> Record:
    """Join noised records end to end until they hold ``notes`` notes.

    Every instrument name of the songs becomes a part (41 on bench); with ``parts``, only
    the names with the most notes, as many as that (PRODUCT.md: a real song has 2-12).
    """
    instruments: dict[str, list[dict]] = defaultdict(list)
    offset, count = 0.0, 0
    pool = [s for s in songs if "noisy" in s.get("categories", ())] or songs
    if parts is not None:
        sizes: dict[str, int] = defaultdict(int)
        for song in pool:
            for inst in song["record"]["data"]["midiData"]["instruments"]:
                sizes[inst["name"]] += len(inst["notes"])
        kept = set(sorted(sizes, key=lambda name: -sizes[name])[:parts])
    while count < notes:
        for song in pool:
            length = 0.0
            for inst in song["record"]["data"]["midiData"]["instruments"]:
                if parts is not None and inst["name"] not in kept:
                    continue
                for n in inst["notes"]:
                    instruments[inst["name"]].append(dict(n, start=n["start"] + offset, end=n["end"] + offset))
                    length = max(length, n["end"])
                    count += 1
            offset += length + 1.0
            if count >= notes:
                break
    payload = {"state": "complete", "instruments": [{"name": k, "notes": v} for k, v in instruments.items()]}
    [record] = normalize_payload(payload, source="big")
    return record


def timing(songs: list[dict], repeats: int = 11) -> None:
    """Clean-up time against conversion time at 100k notes.

    Times are this process's CPU time (``time.process_time``: the host is shared, and
    wall time there measures the neighbours), both taken in each round; the medians of
    the times and of the per-round ratios (the share). Both sides run in the same memory state
    (``keep_freed_memory``, which ``main`` calls once before any split); the page faults each
    call met are shown beside its time.
    """
    for parts in (None, SONG_PARTS):
        record = big_record(songs, TIMING_NOTES, parts)
        shape = f"{len(record.instruments)} parts"
        print(f"\n## CPU time at {record.note_count:,} notes in {shape} (medians of {repeats} rounds)\n")
        print("| clean-up | ms | conversion (convert + write) ms | share | page faults (clean-up; conversion) |")
        print("|---|---:|---:|---:|---:|")
        for config in PRESETS:
            options = ConvertOptions(**CONFIGS[config])
            rounds = [one_round(record, options) for _ in range(repeats)]
            spent, convert_s, ratio, faults, convert_faults = (statistics.median(r) for r in zip(*rounds))
            print(f"| {config} | {spent * 1000:.1f} | {convert_s * 1000:.1f} | {ratio * 100:.1f}% | "
                  f"{faults:.0f}; {convert_faults:.0f} |")  # fmt: skip
            where = "" if parts is None else f" in {shape}"
            HEADLINE[f"clean-up time at 100k notes{where}, {config}"] = f"{ratio * 100:.1f}% of the conversion"


def one_round(record: Record, options: ConvertOptions) -> tuple[float, float, float, int, int]:
    """One conversion, then one clean-up: their CPU seconds, the share, their page faults (clean-up first)."""
    convert_s, convert_faults = cpu_s(lambda: write_midi(convert_record(record, DEFAULT_OPTIONS)))
    spent, faults = cpu_s(lambda: clean.clean_record(record, options))
    return spent, convert_s, spent / convert_s, faults, convert_faults


def keep_freed_memory() -> str:
    """Keep the memory this process frees mapped (glibc's malloc), and say what was done.

    Otherwise glibc hands freed memory back to the system by a state of the heap that
    differs from run to run, and the next call page-faults it in again (about 2 µs a
    page): with the timing alone the conversion met 1,000-1,700 faults a call (3-4 ms)
    and the clean-up 0-90, after the scores of a full run neither met any, so the share
    depended on what ran before it (16-18% alone, 19-21% in the full run). With freed
    memory kept, both sides run with the memory they had the round before, in either
    kind of run. The mmap threshold is fixed at glibc's largest dynamic one (32 MiB),
    the top of the heap kept up to 1 GiB. Elsewhere (not glibc) nothing is changed.
    """
    import ctypes
    import ctypes.util

    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        kept = libc.mallopt(m_trim_threshold, 1 << 30) == 1 and libc.mallopt(m_mmap_threshold, 32 << 20) == 1
    except (OSError, AttributeError):
        kept = False
    if kept:
        return "Freed memory kept mapped (glibc mallopt): neither side page-faults memory the round before freed."
    return "Freed memory not kept (no glibc mallopt): page faults may weigh on either side, by the heap's history."


def cpu_s(work) -> tuple[float, int]:
    """CPU seconds this process spends on one call of ``work``, and the page faults it met."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    began = time.process_time()
    work()
    spent = time.process_time() - began
    return spent, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def corpus_files(folder: Path) -> list[str]:
    """The corpus files to read: the finished ones, and a build's progress file where its part is not finished."""
    files = sorted(f for f in folder.glob("*.jsonl*") if not f.name.endswith(".tmp"))
    done = [f for f in files if "-progress" not in f.name]
    parts = {f.name.split("-")[0] for f in done}
    return [str(f) for f in files if f in done or f.name.split("-")[0] not in parts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / "corpus" / "data", help="the corpus's data folder")
    parser.add_argument(
        "--split", default="bench", help="bench, holdout, test or all; several with commas (default: bench)"
    )
    parser.add_argument("--limit", type=int, default=None, help="at most this many songs (for quick runs)")
    parser.add_argument("--key-only", action="store_true", help="run the key part only (a few seconds)")
    parser.add_argument("--timing-only", action="store_true", help="run the clean-up timing part only (a few seconds)")
    parser.add_argument(
        "--key-generated", action="store_true", help="a key study: also score the generated songs against their key"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    if not args.key_only:  # once for the process: the timing of every split runs in that memory state
        print(f"{keep_freed_memory()}\n")
    summaries = {}
    for split in args.split.split(","):
        songs = schema.load_songs(corpus_files(args.corpus), split=None if split == "all" else split)
        songs = songs[: args.limit] if args.limit else songs
        print(f"# bench_clean: {len(songs)} songs of split {split} from {args.corpus}")
        HEADLINE.clear()
        if args.key_only or args.timing_only:
            key_scores(songs, generated=args.key_generated) if args.key_only else timing(songs)
            summaries[split] = dict(HEADLINE)
            continue
        groups = {"transcribed": Group(), "noised": Group()}
        run_scores(songs, groups)
        for name, group in groups.items():
            if group.songs:
                print_scores(name, group)
        clean_inputs(songs)
        align_errors(songs)
        key_scores(songs, generated=args.key_generated)
        timing(songs)
        summaries[split] = dict(HEADLINE)
    print("\n## Summary against the issue's targets\n")
    print("| measure | " + " | ".join(summaries) + " |")
    print("|---|" + "---|" * len(summaries))
    for measure in next(iter(summaries.values())):
        print(f"| {measure} | " + " | ".join(found.get(measure, "-") for found in summaries.values()) + " |")
    print(f"\n(run took {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
