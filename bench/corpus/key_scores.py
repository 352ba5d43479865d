"""A key test set straight from music21's corpus: scores whose key the score states.

An independent check for the key estimate (``bench/bench_clean.py``), beside the
corpus's real-score songs: pieces of music21's corpus that ``real_scores.py`` does not
use (no chorale, tune or work of the evaluation corpus), played whole from the score's
notes (no rendering, no transcription). The truth is the key the score itself states
at its start: a ``music21.key.Key`` with its mode (a MusicXML ``<mode>``, an ABC
``K:`` field such as ``K:G`` or ``K:Ador``), never music21's own analysis; pieces
with a bare key signature (no mode) are left out.

The pieces, a seeded sample: Bach chorales (four parts, MusicXML) and folk tunes of
the ABC collections (O'Neill's 1850, Ryan's Mammoth, Aird's Airs, the Essen
folksongs). Notes are kept in quarter lengths (onset, duration, MIDI pitch), chords
split, grace notes left out; bench_clean.py reads them at 120 quarters per minute.

    python bench/corpus/key_scores.py        # writes bench/corpus/key-scores.jsonl.gz (a few minutes)
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import sys
import time
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import real_scores as R  # noqa: E402

logging.getLogger("music21").setLevel(logging.ERROR)

OUT = HERE / "key-scores.jsonl.gz"  # not in data/: that folder holds songs only
MODES = ("major", "minor", "dorian", "mixolydian", "phrygian", "lydian", "aeolian", "ionian")
SAMPLE = {"chorale": 110, "oneills1850": 30, "ryansMammoth": 30, "airdsAirs": 30, "essenFolksong": 30}
FOLK = ("oneills1850", "ryansMammoth", "airdsAirs", "essenFolksong")


def _bwv(path: str) -> str:
    """The chorale's BWV number from its file name ('bach/bwv269.mxl' -> '269')."""
    return path.rsplit("/", 1)[-1].split(".")[0].removeprefix("bwv") if "/bwv" in path else path


def candidates(seed: int) -> list[tuple[str, str, int | None]]:
    """(style, path, tune number) of unused pieces, a seeded sample per collection, in a random order."""
    R._meta_rows = lru_cache(maxsize=1)(R._meta_rows)  # select_pieces reads the same metadata
    rows = R._meta_rows()
    used = R.select_pieces()
    used_tunes = {(p.path, p.number) for p in used}
    used_bwv = {_bwv(p.path) for p in used if p.style == "chorale"}
    rng = random.Random(seed)
    picked: list[tuple[str, str, int | None]] = []
    chorales = sorted(
        {
            r["path"]
            for r in rows
            if r["path"].startswith("bach/bwv")
            and r["parts"] == 4
            and r["path"].endswith((".mxl", ".xml"))
            and _bwv(r["path"]) not in used_bwv
        }
    )
    rng.shuffle(chorales)
    picked += [("chorale", p, None) for p in chorales]
    for folder in FOLK:
        tunes = sorted(
            (r["path"], r["number"])
            for r in rows
            if r["path"].startswith(f"{folder}/") and r["parts"] == 1 and 30 <= r["notes"] <= 400
        )
        tunes = [t for t in tunes if t not in used_tunes]
        rng.shuffle(tunes)
        picked += [(folder, p, n) for p, n in tunes[: SAMPLE[folder] * 2]]  # room for tunes without a mode
    return picked


def key_piece(style: str, path: str, number: int | None) -> dict | None:
    """One piece: its stated key and its notes, or None without a stated key."""
    from music21 import corpus
    from music21 import key as m21key

    score = corpus.parse(path, number=number) if number is not None else corpus.parse(path)
    flat = score.flatten()
    stated = [k for k in flat.getElementsByClass(m21key.KeySignature) if k.offset == 0]
    if not stated or not isinstance(stated[0], m21key.Key) or stated[0].mode not in MODES:
        return None
    k = stated[0]
    notes = []
    for n in flat.notes:
        if n.duration.isGrace or n.quarterLength <= 0:
            continue
        for p in n.pitches:
            notes.append([round(float(n.offset), 4), round(float(n.quarterLength), 4), int(p.midi)])
    if len(notes) < 8:
        return None
    mode = {"aeolian": "minor", "ionian": "major"}.get(k.mode, k.mode)
    return {
        "source": f"music21:{path}" + (f"#{number}" if number is not None else ""),
        "style": style if style == "chorale" else "folk",
        "key": {"tonic": k.tonic.name.replace("-", "b"), "mode": mode, "source": "score"},
        "notes": notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    began = time.perf_counter()
    wanted = dict(SAMPLE)
    pieces = []
    for style, path, number in candidates(args.seed):
        if wanted[style] <= 0:
            continue
        try:
            piece = key_piece(style, path, number)
        except Exception as error:  # a score music21 cannot read: skip it, say so
            print(f"skip {path}#{number}: {error}", file=sys.stderr)
            continue
        if piece is not None:
            pieces.append(piece)
            wanted[style] -= 1
    with gzip.open(args.out, "wt", encoding="utf-8") as out:
        for piece in pieces:
            out.write(json.dumps(piece, separators=(",", ":")) + "\n")
    print(f"{len(pieces)} pieces -> {args.out} ({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
