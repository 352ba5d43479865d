"""Write the validation set: drum-style songs from seeds 7000-7419, which no split of the corpus uses.

    python bench/corpus/make_val.py                       # /tmp/val-corpus/styles-val.jsonl.gz
    python bench/corpus/make_val.py --out /tmp/other-val  # another folder
    python bench/bench_tempo.py --corpus /tmp/val-corpus --split val

The same generator as the corpus's drum-style half (``drum_styles.build_song``), 420 songs,
20 per style, each with its ``split`` set to ``schema.VAL_SPLIT`` ("val") and validated as
written. The file is written outside the repository and never committed (about 15 s to make).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import drum_styles  # noqa: E402
import schema  # noqa: E402

FIRST_SEED, LAST_SEED = 7000, 7419  # seeds no split of bench/corpus uses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/val-corpus", help="folder to write styles-val.jsonl.gz into")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    generated = drum_styles.generate(FIRST_SEED, LAST_SEED - FIRST_SEED + 1)
    songs = [{**song, "split": schema.VAL_SPLIT} for song in generated]
    path = os.path.join(args.out, f"styles-{schema.VAL_SPLIT}.jsonl.gz")
    count = schema.write_songs(path, songs)
    print(f"{count} songs written to {path}")


if __name__ == "__main__":
    main()
