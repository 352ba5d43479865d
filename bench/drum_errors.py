"""List every song with drums whose tempo ``--bpm auto`` gets wrong, and what misled it.

For each wrong song of a split (bench by default; ``--corpus /tmp/val-corpus --split val`` reads
a validation set generated from other seeds, see the README's benchmark section): its style, meter,
tempo kind (steady, drift, ...), true quarter BPM, the estimate and the error kind (×2, ×½, ×3/2,
... or other), the tracked pulse, the best score of each tempo level the meter model weighed (the
right level marked ``*``), and the features that put the chosen hypothesis above the best right
one (weight × feature difference, largest first). A song with no right hypothesis on its tracked
pulse is marked so: the pulse itself is off, and no meter weight could mend it. A closing table sums
the misleading features over the wrong songs that had a right hypothesis, and counts errors by
kind and style.

    python bench/drum_errors.py [--corpus DIR] [--split bench]
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
import schema  # noqa: E402

from midiexport.stages import beats, meter, onsets  # noqa: E402
from midiexport.stages.tempo import estimate_tempo  # noqa: E402

TOP_FEATURES = 4  # misleading features printed per song


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(HERE / "corpus" / "data"))
    parser.add_argument("--split", default="bench")
    args = parser.parse_args()
    songs = bench_tempo.load_split(schema, args.corpus, args.split)
    weights = np.array([meter.WEIGHTS[name] for name in meter.FEATURES])
    blame: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    wrong_styles: collections.Counter[str] = collections.Counter()
    for song in songs:
        if "drums" not in song["categories"]:
            continue
        record = bench_tempo.record_of(song)
        estimate = estimate_tempo(record)
        target = bench_tempo.truth_tempo(song)
        kind = bench_tempo.error_kind(estimate.bpm, target)
        kinds[kind] += 1
        if kind == "right":
            continue
        wrong_styles[song["style"]] += 1
        found = onsets.collect_onsets(record)
        slots = beats.slot_grid(found, meter.SLOTS_PER_PULSE)
        hyps = meter.meter_hypotheses(found, slots)
        correct = bench_tempo.correct_hypotheses(song, hyps, slots)
        scores = hyps.scores()
        slot_s = float(np.median(np.diff(slots)))
        quarters = np.array([q for *_, q in meter.METERS])[hyps.meter]
        bpm = 60.0 / (hyps.beat * slot_s) * quarters
        chosen = int(np.argmax(scores))
        tempo_kind = song.get("meta", {}).get("tempo_kind", "")
        print(
            f"{song['id']}  {song['style']}  {song['truth']['meter']}  {tempo_kind}  "
            f"cats={','.join(sorted(song['categories']))}\n"
            f"  truth {target:.1f} -> {estimate.meter} {estimate.bpm:.1f} ({kind}), "
            f"pulse {60.0 / (slot_s * meter.SLOTS_PER_PULSE):.1f}, conf {estimate.confidence:.2f}"
        )
        levels = []
        for b, m in sorted({(int(b), int(m)) for b, m in zip(hyps.beat, hyps.meter)}):
            mine = (hyps.beat == b) & (hyps.meter == m)
            mark = "*" if correct[mine].any() else ""
            levels.append((float(scores[mine].max()), f"{meter.METERS[m][0]}@{bpm[mine][0]:.0f}{mark}"))
        levels.sort(reverse=True)
        print("  levels: " + "  ".join(f"{name} {score - levels[0][0]:+.1f}" for score, name in levels[:8]))
        if not correct.any():
            print("  no hypothesis right in tempo, meter and bar on the tracked pulse")
            continue
        best_right = int(np.flatnonzero(correct)[np.argmax(scores[correct])])
        diff = (hyps.features[chosen] - hyps.features[best_right]) * weights
        order = np.argsort(-diff)
        print(
            f"  chosen - best right: {scores[chosen] - scores[best_right]:+.2f}; misled by "
            + ", ".join(f"{meter.FEATURES[i]} {diff[i]:+.2f}" for i in order[:TOP_FEATURES] if diff[i] > 0)
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
