"""Where the tempo model goes wrong on songs without drums, by kind (its top choice, whatever its confidence).

Each song without drums of a split is put in one class, checked in this order: the tempo off by a
metrical factor (``bench_tempo.error_kind``: ×2, ×½, ×3/2, ...), the tempo right but the beats off the
music (the true beats' median distance to the beats found over 30 ms: late, early, off the beat,
or the song's beat is another kind, ``beats_off``), the meter wrong (by the
README's meter rule), the bar lines off by k beats ("phase +k"), or right. It also prints, for the
wrong steady songs, the rank of the best right hypothesis (0: it ties the chosen one) and how many
have none on the tracked pulse.

    python bench/tempo_errors.py            # bench split
    python bench/tempo_errors.py holdout    # only to report
"""

import sys
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "corpus"), str(HERE.parent)]

import bench_tempo as bt  # noqa: E402
import schema  # noqa: E402

from midiexport.stages import onsets, tempo  # noqa: E402


def classify(song: dict) -> tuple[str, bool, int | None]:
    """Return the song's class, whether a right hypothesis exists on its pulse, and the best one's rank."""
    record = bt.record_of(song)
    hyps, correct = bt.hypotheses_judged(song, onsets.collect_onsets(record))
    est = tempo.estimate_tempo(record)
    truth = song["truth"]
    kind = bt.error_kind(est.bpm, bt.truth_tempo(song))
    span = bt.note_span(record)
    tb = bt.true_beats_heard(truth, span)
    fb = est.beats_s if est.beats_s is not None else np.empty(0)
    scores = hyps.scores()
    rank = None
    if correct.any():
        best_correct = scores[correct].max()
        rank = int((scores > best_correct).sum())
    if kind != "right":
        return kind, bool(correct.any()), rank
    if bt.median_distance(tb, fb) > 0.03:
        return beats_off(tb, fb, truth["meter"]), bool(correct.any()), rank
    if not bt.true_bar_grids(est.meter, truth):
        return f"meter {truth['meter']}->{est.meter}", bool(correct.any()), rank
    if bt.bar_lines_right(est.meter, truth, est.downbeats_s, span):
        return "right", bool(correct.any()), rank
    # the bar lines' offset in beats: the true beat nearest a found bar line, counted from its bar's downbeat
    all_beats, downs = np.array(truth["beats_s"]), np.array(truth["downbeats_s"])
    if est.downbeats_s is None or not len(est.downbeats_s):
        return "no bar lines found", bool(correct.any()), rank
    middle = est.downbeats_s[len(est.downbeats_s) // 2]
    nearest = int(np.argmin(np.abs(all_beats - middle)))
    bar = int(np.searchsorted(downs, all_beats[nearest] + 1e-6) - 1)
    bar_beat = int(np.argmin(np.abs(all_beats - downs[max(bar, 0)])))
    return f"phase +{nearest - bar_beat}", bool(correct.any()), rank


def beats_off(true_s: np.ndarray, found_s: np.ndarray, song_meter: str) -> str:
    """Say how beats found at the right tempo miss the song's: another kind of beat, late, early, or off the beat.

    "beats of <meter>": the song's beat is not a quarter or a dotted quarter (3/8's eighths, 2/2's
    halves), which no file at the quarter tempo draws. Otherwise by the signed median deviation of
    the found beat nearest each true beat, as a share of the beat: within 15%, late or early
    (a stem's lag); beyond, off the beat.
    """
    if song_meter not in ("4/4", "3/4", "2/4", "6/8", "12/8"):
        return f"beats of {song_meter}"
    deviation = float(np.median(bt.nearest_deviation(true_s, found_s)))
    share = deviation / float(np.median(np.diff(true_s)))
    if abs(share) >= 0.15:
        return "beats off the beat"
    return "beats late" if deviation > 0 else "beats early"


def main() -> None:
    split = sys.argv[1] if len(sys.argv) > 1 else "bench"
    songs = schema.load_songs(str(HERE / "corpus" / "data"), split=split)
    songs = [s for s in songs if "no-drums" in s["categories"]]
    every, steady_kinds, ranks = Counter(), Counter(), []
    for song in songs:
        kind, has_right, rank = classify(song)
        steady = "steady" in song["categories"]
        every[kind] += 1
        if steady:
            steady_kinds[kind] += 1
            if kind != "right":
                ranks.append(rank)
        label = "has a right hypothesis" if has_right else "no right hypothesis"
        print(song["id"], song["truth"]["meter"], round(bt.truth_tempo(song)), kind, label, rank, flush=True)
    print(f"songs without drums: {len(songs)}", every.most_common())
    print(f"steady: {sum(steady_kinds.values())}", steady_kinds.most_common())
    known = sorted(r for r in ranks if r is not None)
    print("rank of the best right hypothesis, wrong steady songs:", known, "none:", sum(r is None for r in ranks))


if __name__ == "__main__":
    main()
