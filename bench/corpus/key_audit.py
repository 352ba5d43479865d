"""Audit the real songs' key truth against published harmonic analyses; apply the corrections.

    python bench/corpus/key_audit.py --wir PATH            # the audit table, every split
    python bench/corpus/key_audit.py --wir PATH --write    # ... and write key-corrections.json
    python bench/corpus/key_audit.py --apply               # apply key-corrections.json to data/real-*.jsonl.gz

A song's ``truth.key`` is the key its score's signature states at the excerpt start
(``real_scores._key_truth``). A signature does not always give the key in force: a
chorale whose encoding calls it "B minor" may open and close in F# minor under the same
two sharps, and an excerpt cut from the middle of a movement may start in another key
than the movement's. This audit reads an independent source, the Roman-numeral analyses
of the When in Rome corpus (M. Gotham et al., "When in Rome: a meta-corpus of functional
harmony", TISMIR 6(1), 2023; github.com/MarkGotham/When-in-Rome), which gathers, among
others, the Riemenschneider Bach chorales (analyses by D. Tymoczko, A. Jones et al.), the
Annotated Beethoven Corpus of string quartets (DCML: Neuwirth et al., Frontiers in
Digital Humanities 5, 2018) and Haydn's op. 74 no. 1 (DCML), and applies one rule to
every song that has such an analysis, in every split, whatever any estimate says:

**Rule.** The key in force at the excerpt start is, for a piece played from the top, the
analysis's opening key (its home key); for an excerpt cut from inside a movement, the
analysis key that governs most of the excerpt's first ``WINDOW`` bars (a tonicization of
a bar or two at the cut is not the key in force). When its tonic or its mode (major /
minor) differs from the truth, the truth is replaced by it (``source: published-analysis``), and the
correction is recorded with its evidence in ``key-corrections.json``. An analysis is used only when it lines up with
the score: the analysis's chords must hold most of the score's sounding notes (a share
of at least ``MIN_MATCH``) over the bars around the excerpt start, at the bar offset and
transposition found by search (the chorales' analyses were made on Sapp's kern
editions, some in another key than music21's MusicXML; a quartet file of music21 may
hold every movement with continuous bar numbers).

Sources mapped: the ``remote_score_music21`` field of When in Rome's ``remote.json``
files (chorales), and the string-quartet and song folders in ``WORKS`` by hand; a song
whose work has no analysis there keeps its truth unaudited. The corrections file, not
When in Rome itself, is what the corpus build reads (``make_corpus.finalize`` applies
it), so a rebuild keeps the corrections without the checkout.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
from functools import lru_cache

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schema as S  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CORRECTIONS = os.path.join(HERE, "key-corrections.json")
MIN_MATCH = 0.7  # share of the score's note time on the analysis's chord tones for the analysis to count
WINDOW = 8  # bars after the excerpt start that must line up
QUARTETS = "Corpus/Quartets/"
# music21 corpus path (a work, or its movement folder) -> When in Rome folder(s) of its movements
WORKS = {
    **{f"beethoven/opus18no{n}": f"{QUARTETS}Beethoven,_Ludwig_van/Op018_No{n}" for n in range(1, 7)},
    **{f"beethoven/opus59no{n}": f"{QUARTETS}Beethoven,_Ludwig_van/Op059_No{n}" for n in range(1, 4)},
    "beethoven/opus74": f"{QUARTETS}Beethoven,_Ludwig_van/Op074",
    "beethoven/opus132": f"{QUARTETS}Beethoven,_Ludwig_van/Op132",
    "haydn/opus74no1": f"{QUARTETS}Haydn,_Franz_Joseph/Op74_No1",
    "corelli/opus3no1": "Corpus/Chamber_Other/Corelli,_Arcangelo/Op3No01",
    "schubert/Lindenbaum": "Corpus/OpenScore-LiederCorpus/Schubert,_Franz/Winterreise,_D.911/05_Der_Lindenbaum",
}
# the evidence kept for each correction
FIELDS = (
    "id",
    "source",
    "truth",
    "key",
    "analysis",
    "analyst",
    "bar",
    "analysis_bar",
    "transposition",
    "match",
    "excerpt_keys",
)
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


class WiR:
    """A When in Rome checkout (a git directory or work tree), read at HEAD."""

    def __init__(self, path: str):
        self.path = path
        self.commit = self._git("rev-parse", "HEAD").strip()
        self.files = self._git("ls-tree", "-r", "--name-only", "HEAD", "Corpus").split("\n")
        self._index: dict[str, str] | None = None

    def _git(self, *args: str) -> str:
        flag = "--git-dir" if not os.path.isdir(os.path.join(self.path, ".git")) else "-C"
        return subprocess.run(["git", flag, self.path, *args], capture_output=True, text=True, check=True).stdout

    def read(self, path: str) -> str:
        return self._git("show", f"HEAD:{path}")

    def analyses(self, source: str) -> list[str]:
        """The analysis files for a music21 corpus path (every movement of a work; [] when none)."""
        work = source.split("#")[0]
        for prefix, folder in WORKS.items():
            if work == prefix or work.startswith(prefix + "/"):
                rest = work[len(prefix) :].strip("/")
                movement = re.match(r"movement(\d+)|(\d+)", rest) if rest else None
                if movement:
                    folder += "/" + (movement.group(1) or movement.group(2))
                return [f for f in self.files if f.startswith(folder + "/") and f.endswith("/analysis.txt")]
        found = self._music21_index().get(work + ".mxl")
        return [found] if found else []

    def _music21_index(self) -> dict[str, str]:
        """{music21 corpus path: analysis file} from the ``remote_score_music21`` of every remote.json."""
        if self._index is not None:
            return self._index
        index = {}
        for f in self.files:
            if f.endswith("remote.json"):
                text = self.read(f)
                if "remote_score_music21" in text:
                    music21_path = json.loads(text)["remote_score_music21"]
                    index[music21_path] = f.rsplit("/", 1)[0] + "/analysis.txt"
        self._index = index
        return index


def _measure_vectors(measures, chords: bool):
    """{measure number: 12-vector}: note time per pitch class, or chord-tone time per pitch class."""
    import numpy as np

    out = {}
    for m in measures:
        v = np.zeros(12)
        items = m.recurse().getElementsByClass("RomanNumeral" if chords else "GeneralNote")
        for n in items:
            if n.isRest:
                continue
            for p in n.pitches:
                v[p.pitchClass] += max(float(n.quarterLength), 0.25)
        out[m.number] = out.get(m.number, 0) + v
    return out


@lru_cache(maxsize=64)
def _score(source: str):
    from music21 import corpus

    path, _, number = source.partition("#")
    s = corpus.parse(path, number=int(number)) if number else corpus.parse(path)
    ms = list(s.parts[0].getElementsByClass("Measure"))
    vectors = {}
    for part in s.parts:
        for number_, v in _measure_vectors(part.getElementsByClass("Measure"), chords=False).items():
            vectors[number_] = vectors.get(number_, 0) + v
    return [m.number for m in ms], vectors


@lru_cache(maxsize=64)
def _analysis(wir: WiR, path: str):
    from music21 import converter, roman

    text = wir.read(path)
    s = converter.parse(text, format="romantext")
    rns = list(s.recurse().getElementsByClass(roman.RomanNumeral))
    keyed = [(r.measureNumber, r.key.tonic.name.replace("-", "b"), r.key.mode) for r in rns if r.key is not None]
    analyst = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Analyst:")), "")
    return keyed, _measure_vectors(s.recurse().getElementsByClass("Measure"), chords=True), analyst[:80]


def _share(score_vectors, chord_vectors, bars, offset: int, t: int) -> float:
    """Share of the score's note time in ``bars`` on the chord tones of analysis bar + offset, transposed by t."""
    import numpy as np

    hit = total = 0.0
    for n in bars:
        notes = score_vectors.get(n)
        if notes is None:
            continue
        chord = chord_vectors.get(n + offset)
        total += notes.sum()
        if chord is not None:
            hit += notes @ (np.roll(chord, -t) > 0)
    return hit / total if total else 0.0


def _movement_start(score_vectors, chord_vectors) -> int:
    """The score bar where a movement's analysis lines up best with its first ``2 * WINDOW`` bars.

    A music21 file may hold every movement of a quartet with continuous bar numbers: each
    movement's opening (distinctive) places it in the file.
    """
    first = min(chord_vectors)
    whole = [s for s in score_vectors if s + 2 * WINDOW - 1 in score_vectors]  # windows inside the file
    return max(whole, key=lambda s: _share(score_vectors, chord_vectors, range(s, s + 2 * WINDOW), first - s, 0))


def _align(score_vectors, start_number: int, chord_vectors, transpose_all: bool, offset0: int = 0):
    """Best (match share, bar offset, transposition): analysis bar = score bar + offset, pitches + t.

    The offset is searched within 2 bars of ``offset0`` (a pickup numbered 0 or 1, a bar
    counted twice); the transposition over all 12 when ``transpose_all``.
    """
    window = range(start_number, start_number + WINDOW)
    candidates = [(offset0 + d, t) for d in (0, -1, 1, -2, 2) for t in (range(12) if transpose_all else (0,))]
    return max((_share(score_vectors, chord_vectors, window, o, t), o, t) for o, t in candidates)


def _spans(keyed, first: int, bars: int) -> dict[tuple[str, str], int]:
    """Bars each analysis key governs in ``bars`` bars from ``first``, in order of appearance.

    A key change counts from its bar (the analyses are read bar by bar).
    """
    changes = [(first, *next((k for k in reversed(keyed) if k[0] <= first), keyed[0])[1:])]
    changes += [k for k in keyed if first < k[0] < first + bars] + [(first + bars, "", "")]
    spans: dict[tuple[str, str], int] = {}
    for (m, name, mode), (nxt, _, _) in zip(changes, changes[1:]):
        spans[(name, mode)] = spans.get((name, mode), 0) + nxt - m
    return spans


def _governing(keyed, first: int, bars: int) -> tuple[str, str]:
    """The analysis key governing most of ``bars`` bars from ``first`` (the earlier one on a tie)."""
    spans = _spans(keyed, first, bars)
    return max(spans, key=lambda k: spans[k])


def audit_song(wir: WiR, song: dict) -> dict | None:
    """The audit of one song: its analysis, alignment and the analysis's key at the start; None when none."""
    truth = song["meta"].get("key_before_audit", song["truth"].get("key"))  # audit the score's own key
    source = song["source"].split(":", 1)[1]
    files = wir.analyses(source)
    if truth is None or not files:
        return None
    numbers, score_vectors = _score(source)
    b0 = song["meta"]["measure_range"][0]
    start_number = numbers[b0]
    analyses = [(path, *_analysis(wir, path)) for path in files]
    if len(analyses) == 1:
        path, keyed, chord_vectors, analyst = analyses[0]
        share, offset, t = _align(score_vectors, start_number, chord_vectors, transpose_all="Chorales" in path)
    else:  # one file, every movement: the movement that starts last at or before the excerpt
        starts = [(min(score_vectors) if "/1/" in a[0] else _movement_start(score_vectors, a[2]), a) for a in analyses]
        begun = [sa for sa in starts if sa[0] <= start_number] or starts[:1]
        begin, (path, keyed, chord_vectors, analyst) = max(begun, key=lambda sa: sa[0])
        share, offset, t = _align(score_vectors, start_number, chord_vectors, False, min(chord_vectors) - begin)
    at = start_number + offset
    if b0 == 0:  # played from the top: the analysis's opening key, its home key
        name, mode = keyed[0][1:]
    else:  # the key that governs most of the first bars (a one-chord tonicization is not the key)
        name, mode = _governing(keyed, at, WINDOW)
    tonic = (S.tonic_pc(name) - t) % 12
    row = {
        "id": song["id"],
        "split": song["split"],
        "source": song["source"],
        "truth": f"{truth['tonic']} {truth['mode']}",
        "analysis": path,
        "analyst": analyst,
        "bar": start_number,
        "analysis_bar": at,
        "transposition": t,
        "match": round(share, 3),
        "key": {"tonic": name if t == 0 else NAMES[tonic], "mode": mode},
    }
    bars = song["meta"]["measure_range"][1] - b0
    spans = {f"{NAMES[(S.tonic_pc(n) - t) % 12]} {m}": b for (n, m), b in _spans(keyed, at, bars).items()}
    row["excerpt_keys"] = dict(sorted(spans.items(), key=lambda kv: -kv[1])[:3])  # bars per key in the excerpt
    row["usable"] = share >= MIN_MATCH and mode in ("major", "minor")
    minor = truth["mode"] in ("minor", "aeolian", "dorian", "phrygian")
    row["differs"] = row["usable"] and (S.tonic_pc(truth["tonic"]) != tonic or minor != (mode == "minor"))
    return row


def load_corrections(path: str = CORRECTIONS) -> dict[str, dict]:
    """{song id: correction} from the corrections file; {} when absent."""
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {c["id"]: c for c in json.load(f)["corrections"]}


def apply_correction(song: dict, corrections: dict[str, dict]) -> bool:
    """Set the song's truth key from its correction (source ``published-analysis``); whether it changed.

    The key it replaces is kept in ``meta.key_before_audit`` (what the next audit checks).
    """
    c = corrections.get(song["id"])
    if c is None or song["truth"].get("key") is None:
        return False
    new = {"tonic": c["key"]["tonic"], "mode": c["key"]["mode"], "source": "published-analysis"}
    if song["truth"]["key"] == new:
        return False
    song["meta"].setdefault("key_before_audit", song["truth"]["key"])
    song["truth"]["key"] = new
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wir", help="a When in Rome checkout (git directory or work tree)")
    parser.add_argument("--write", action="store_true", help="write key-corrections.json from the audit")
    parser.add_argument("--apply", action="store_true", help="apply key-corrections.json to data/real-*.jsonl.gz")
    args = parser.parse_args()
    if args.wir:
        wir = WiR(args.wir)
        rows = []
        for path in sorted(glob.glob(os.path.join(HERE, "data", "real-*.jsonl.gz"))):
            for song in S.iter_songs(path):
                row = audit_song(wir, song)
                if row is not None:
                    rows.append(row)
                    flag = "CHANGE" if row["differs"] else ("ok" if row["usable"] else "unusable")
                    key = f"{row['key']['tonic']} {row['key']['mode']}"
                    print(f"{flag:8s} {row['split']:7s} {row['id'][:44]:44s} truth {row['truth']:10s} analysis "
                          f"{key:10s} bar {row['bar']}->{row['analysis_bar']} t={row['transposition']} "
                          f"match {row['match']:.2f} {row['excerpt_keys']} "
                          f"{row['analysis'].split('Corpus/')[-1]}")  # fmt: skip
        print(f"{len(rows)} songs audited, {sum(r['usable'] for r in rows)} usable, "
              f"{sum(r['differs'] for r in rows)} to correct")  # fmt: skip
        if args.write:
            out = {
                "about": "key truth corrections by key_audit.py: the When in Rome analysis's key at the excerpt start",
                "when_in_rome_commit": wir.commit,
                "rule": f"opening key from the top, else the key governing most of the first {WINDOW} bars; "
                f"analysis used when its chords hold >= {MIN_MATCH} of the notes",
                "corrections": [{k: r[k] for k in FIELDS} for r in rows if r["differs"]],
            }
            with open(CORRECTIONS, "w", encoding="utf-8") as f:
                json.dump(out, f, indent=1, ensure_ascii=False)
                f.write("\n")
            print(f"wrote {CORRECTIONS}")
    if args.apply:
        corrections = load_corrections()
        for path in sorted(glob.glob(os.path.join(HERE, "data", "real-*.jsonl.gz"))):
            songs = list(S.iter_songs(path))
            changed = sum(apply_correction(s, corrections) for s in songs)
            if changed:
                S.write_songs(path, songs)
            print(f"{path}: {changed} keys corrected")


if __name__ == "__main__":
    main()
