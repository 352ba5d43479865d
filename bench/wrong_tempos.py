"""List every song without drums (or with them, ``--drums``) whose tempo ``--bpm auto`` gets wrong, and what misled it.

For each wrong song of a split (bench by default; ``--corpus /tmp/val-corpus --split val`` reads
a validation set generated from other seeds, see the README's benchmark section): its source,
style, tempo kind (steady, drift, ...), meter, true quarter BPM, the
estimate, the best score the meter model gave each tempo level it weighed (with the right
level marked), and the features that put the chosen hypothesis above the best right one
(weight x feature difference, largest first). Songs with no right hypothesis on their
tracked pulse are marked so, with the reason: a meter no file draws at the quarter tempo (2/2,
3/8, 9/8) or bars off when a hypothesis has the right tempo, else the pulse itself is off
(drift, rubato, a pulse not nested with the beat). A closing table sums the misleading features over all
wrong songs that had a right hypothesis.

    python bench/wrong_tempos.py [--split bench] [--all]
    python bench/wrong_tempos.py --drums --corpus /tmp/val-corpus --split val
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "corpus"))

import bench_tempo  # noqa: E402

from midiexport.stages import beats, meter, onsets  # noqa: E402
from midiexport.stages.tempo import estimate_tempo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(HERE / "corpus" / "data"), help="folder of corpus .jsonl.gz files")
    parser.add_argument("--split", default="bench")
    parser.add_argument("--drums", action="store_true", help="the songs with drums instead")
    parser.add_argument("--all", action="store_true", help="list right songs too")
    args = parser.parse_args()
    songs = bench_tempo.load_split(args.corpus, args.split)
    group = "drums" if args.drums else "no-drums"
    weights = np.array([meter.WEIGHTS[name] for name in meter.FEATURES])
    blame: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    wrong_styles: collections.Counter[str] = collections.Counter()
    for song in songs:
        if group not in song["categories"]:
            continue
        record = bench_tempo.record_of(song)
        estimate = estimate_tempo(record)
        target = bench_tempo.truth_tempo(song)
        kind = bench_tempo.error_kind(estimate.bpm, target)
        kinds[kind] += 1
        if kind == "right" and not args.all:
            continue
        if kind != "right":
            wrong_styles[song["style"]] += 1
        found = onsets.collect_onsets(record)
        slots = beats.slot_grid(found, meter.SLOTS_PER_PULSE)
        hyps = meter.meter_hypotheses(found, slots)
        correct = bench_tempo.correct_hypotheses(song, hyps, slots)
        scores = hyps.scores()
        slot_s = float(np.median(np.diff(slots)))
        bpm = bench_tempo.hypotheses_bpm(hyps, slot_s)
        chosen = int(np.argmax(scores))
        pulse_bpm = 60.0 / (slot_s * meter.SLOTS_PER_PULSE)
        print(
            f"{song['id']}  {song['source']}  {song['style']}  {song.get('meta', {}).get('tempo_kind', '')}  "
            f"cats={','.join(sorted(song['categories']))}\n"
            f"  truth {song['truth']['meter']} {target:.1f}  ->  {estimate.meter} {estimate.bpm:.1f} ({kind}), "
            f"pulse {pulse_bpm:.1f}, conf {estimate.confidence:.2f}"
        )
        levels = []
        for b, m in sorted({(int(b), int(m)) for b, m in zip(hyps.beat, hyps.meter)}):
            mine = (hyps.beat == b) & (hyps.meter == m)
            best = float(scores[mine].max())
            mark = "*" if correct[mine].any() else ""
            levels.append((best, f"{meter.METERS[m][0]}@{bpm[mine][0]:.0f}{mark}"))
        levels.sort(reverse=True)
        print("  levels: " + "  ".join(f"{name} {score - levels[0][0]:+.1f}" for score, name in levels[:8]))
        if not correct.any():
            at_tempo = np.abs(bpm / target - 1) <= bench_tempo.LABEL_TEMPO_TOLERANCE
            why = "a meter no file draws (2/2, 3/8, 9/8) or bars off" if at_tempo.any() else "the pulse is off"
            print(f"  no hypothesis right in tempo, meter and bar on the tracked pulse: {why}")
            continue
        best_right = int(np.flatnonzero(correct)[np.argmax(scores[correct])])
        diff = (hyps.features[chosen] - hyps.features[best_right]) * weights
        order = np.argsort(-diff)
        print(
            f"  chosen - best right: {scores[chosen] - scores[best_right]:+.2f}; misled by "
            + ", ".join(f"{meter.FEATURES[i]} {diff[i]:+.2f}" for i in order[:4] if diff[i] > 0)
            + "; against: "
            + ", ".join(f"{meter.FEATURES[i]} {diff[i]:+.2f}" for i in order[::-1][:3] if diff[i] < 0)
        )
        for i in order[:3]:
            if diff[i] > 0:
                blame[meter.FEATURES[i]] += 1
    print("\nkinds:", dict(kinds))
    print("wrong by style:", dict(wrong_styles.most_common()))
    print("features among the top 3 that favoured the wrong choice:", blame.most_common(15))


if __name__ == "__main__":
    main()
