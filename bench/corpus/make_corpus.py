"""Build the evaluation corpus: real scores (transcribed) and, when present, drum styles.

    python bench/corpus/make_corpus.py                 # everything (real + styles)
    python bench/corpus/make_corpus.py --part real     # real music only
    python bench/corpus/make_corpus.py --part real --resume     # go on after a stop
    python bench/corpus/make_corpus.py --part real --finalize   # write split files from progress
    python bench/corpus/make_corpus.py --part real --no-transcribe  # noise model instead of basic-pitch

Real music: every piece of ``real_scores.select_pieces()`` is parsed once, its excerpts are
built, each instrument is rendered alone with fluidsynth and transcribed back with
basic-pitch (render.py), and the API's own habits are added on top with
``noise.make_record(profile="light")``: per-stem latency, flat velocities on most stems,
now and then one instrument split over two tracks that later double. Songs are appended
to ``data/real-progress.jsonl.gz`` as they finish (one process, one song at a time), then
sorted into ``data/real-<split>.jsonl.gz``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import key_audit  # noqa: E402
import real_scores as R  # noqa: E402
import schema as S  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
PROGRESS = "real-progress.jsonl.gz"


COMPOUND = ("6/8", "9/8", "12/8")


def _round_robin(pieces):
    """Pieces in the order they are built, so that a partial run is already varied.

    Styles are interleaved in proportion to their size (and meters inside a style), so
    stopping early keeps the mix; compound meters come a little earlier (they are the
    scarcer and the harder case), string quartets (four long stems) a little later.
    """
    by = defaultdict(list)
    for pc in pieces:
        by[pc.style].append(pc)
    keyed = []
    for style, lst in by.items():
        bym = defaultdict(list)
        for pc in lst:
            bym[pc.meter_hint].append(pc)
        inner = []
        for m, ms in bym.items():
            w = 0.6 if m in COMPOUND else 1.0
            inner += [((i + 0.5) / len(ms) * w, m, pc) for i, pc in enumerate(ms)]
        inner.sort(key=lambda t: (t[0], t[1]))
        sw = 1.25 if style == "string-quartet" else 1.0
        keyed += [((i + 0.5) / len(inner) * sw, style, pc) for i, (_, _, pc) in enumerate(inner)]
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [pc for _, _, pc in keyed]


def _record_names(record, truth_insts):
    """Give record tracks the API's names (GM names, no '1'/'2' suffix); return their sources."""
    base = {}
    for inst in truth_insts:
        base[inst["name"]] = re.sub(r" \d+$", "", inst["name"]) if re.search(r" \d+$", inst["name"]) else inst["name"]
    sources = []
    for inst in S.record_instruments({"record": record}):
        src = inst["name"]
        sources.append(src)
        inst["name"] = base.get(src, src)
    return sources


def transcribed_song(song: dict, piece: R.Piece, x: int, transcribe: bool, log) -> dict:
    import noise

    truth = song["truth"]
    insts = []
    timing = {}
    if transcribe:
        import render

        for inst in truth["instruments"]:
            events, dt = render.transcribe_stem(inst["notes"], inst["program"], inst["is_drum"])
            timing[inst["name"]] = round(dt, 2)
            notes = [[s, max(e, s), p, a] for s, e, p, a in events]
            if notes:
                insts.append({"name": inst["name"], "program": inst["program"], "is_drum": False, "notes": notes})
        if not insts:
            raise R.Skip("basic-pitch found no notes")
        profile = "light"
    else:
        insts = [dict(i) for i in truth["instruments"]]
        profile = "noisy"
    rec_seed = piece.seed * 10 + x
    record, latency, info = noise.make_record(insts, seed=rec_seed, task_id=song["id"], profile=profile, split_p=0.15)
    # stems basic-pitch found nothing in keep latency 0 (they are absent from the record)
    truth["latency_ms"] = {i["name"]: float(latency.get(i["name"], 0.0)) for i in truth["instruments"]}
    song["record"] = record
    song["meta"]["record_tracks"] = _record_names(record, truth["instruments"])
    song["meta"]["record_noise"] = info
    cats = [c for c in song["categories"] if c not in ("transcribed", "noisy")]
    cats.append("transcribed" if transcribe else "noisy")
    song["categories"] = cats
    if transcribe:
        import render

        song["meta"]["transcription"] = {
            "tool": "basic-pitch 0.4.0 (ICASSP 2022 model)",
            "backend": render.BACKEND,
            "render": "fluidsynth 22050 Hz, FluidR3_GM.sf2, each instrument alone",
            "onset_threshold": render.ONSET_THRESHOLD,
            "frame_threshold": render.FRAME_THRESHOLD,
            "min_note_ms": render.MIN_NOTE_MS,
            "seconds_per_stem": timing,
        }
    return song


def finalize(out_dir: str, log=print) -> dict:
    """Sort the progress file into real-<split>.jsonl.gz; returns counts per split."""
    prog = os.path.join(out_dir, PROGRESS)
    songs = {}
    try:
        for s in S.iter_songs(prog):
            songs[s["id"]] = s
    except (EOFError, OSError, ValueError) as e:  # the build is still appending: keep what is whole
        log(f"progress file read up to a partial song ({type(e).__name__}); {len(songs)} songs kept")
    corrections = key_audit.load_corrections()
    by = defaultdict(list)
    for s in songs.values():
        # 'odd-meter' = any meter but 4/4 (schema.CATEGORIES), also for songs built before
        # that definition was settled
        cats = [c for c in s["categories"] if c != "odd-meter"]
        if R.is_odd_meter(s["truth"]["meter"]):
            cats.append("odd-meter")
        s["categories"] = cats
        if s["style"] in R.MODAL_STYLES:  # no key truth for modal polyphony (real_scores.MODAL_STYLES)
            s["truth"]["key"] = None
        key_audit.apply_correction(s, corrections)  # key truth checked against published analyses
        by[s["split"]].append(s)
    counts = {}
    for split in S.SPLITS:
        ss = sorted(by.get(split, []), key=lambda s: s["id"])
        path = os.path.join(out_dir, f"real-{split}.jsonl.gz")
        if ss:
            counts[split] = S.write_songs(path, ss)
            log(f"{path}: {counts[split]} songs, {os.path.getsize(path) / 1e6:.2f} MB")
    return counts


def build_real(out_dir: str, transcribe: bool, resume: bool, limit: int | None, seed: int, log=print) -> None:
    if transcribe:
        import render

        missing = render.have_tools()
        if missing:
            raise SystemExit("cannot transcribe, missing: " + "; ".join(missing) + " (use --no-transcribe)")
    os.makedirs(out_dir, exist_ok=True)
    prog = os.path.join(out_dir, PROGRESS)
    done = set()
    if resume and os.path.exists(prog):
        done = {s["id"] for s in S.iter_songs(prog)}
        log(f"resuming: {len(done)} songs already done")
    elif os.path.exists(prog):
        os.remove(prog)
    pieces = _round_robin(R.select_pieces(seed))
    log(f"{len(pieces)} pieces, {sum(p.excerpts for p in pieces)} excerpts planned")
    n_done = len(done)
    t_start = time.time()
    for pc in pieces:
        if limit is not None and n_done >= limit:
            break
        try:
            parsed = R.parse_piece(pc)
        except Exception as e:
            log(f"skip {pc.source}: cannot parse: {type(e).__name__}: {e}")
            continue
        for x in range(pc.excerpts):
            if limit is not None and n_done >= limit:
                break
            t0 = time.time()
            try:
                song = R.build_song(pc, x, parsed=parsed)
                if song["id"] in done:
                    continue
                song = transcribed_song(song, pc, x, transcribe, log)
                S.append_song(prog, song)
            except R.Skip as e:
                log(f"skip {pc.source} x{x}: {e}")
                continue
            except Exception as e:
                log(f"skip {pc.source} x{x}: {type(e).__name__}: {e}")
                continue
            n_done += 1
            tr = song["truth"]
            nt = sum(len(i["notes"]) for i in tr["instruments"])
            nr = sum(len(i["notes"]) for i in S.record_instruments(song))
            log(
                f"[{n_done}] {song['id']} {song['split']} {tr['meter']} q={tr['quarter_bpm']:.0f} "
                f"{song['meta']['duration_s']:.0f}s {len(tr['instruments'])} inst, truth {nt} notes, "
                f"record {nr} notes, {time.time() - t0:.1f}s (total {time.time() - t_start:.0f}s)"
            )
    finalize(out_dir, log)


def build_styles(out_dir: str, log=print) -> None:
    try:
        import drum_styles
    except ImportError:
        log("drum_styles.py not present: no generated songs")
        return
    if hasattr(drum_styles, "main"):
        drum_styles.main(["--out", out_dir])
    else:
        by = defaultdict(list)
        for song in drum_styles.generate(1050, 420):
            by[song["split"]].append(song)
        for split, ss in by.items():
            S.write_songs(os.path.join(out_dir, f"styles-{split}.jsonl.gz"), ss)


def report(out_dir: str) -> None:
    """Markdown tables of the written real-*.jsonl.gz (for README.md)."""
    paths = [os.path.join(out_dir, f"real-{split}.jsonl.gz") for split in S.SPLITS]
    songs = S.load_songs([p for p in paths if os.path.exists(p)])
    n_notes = sum(len(i["notes"]) for s in songs for i in s["truth"]["instruments"])
    print(f"{len(songs)} songs, {n_notes} truth notes\n")

    def table(title, key_fn, cols):
        c = Counter()
        for s in songs:
            for k in key_fn(s):
                c[(s["split"], k)] += 1
        print(f"| {title} | " + " | ".join(cols) + " | all |")
        print("|---" * (len(cols) + 2) + "|")
        for split in S.SPLITS:
            row = [c[(split, k)] for k in cols]
            print(f"| {split} | " + " | ".join(str(v) for v in row) + f" | {sum(row)} |")
        tot = [sum(c[(sp, k)] for sp in S.SPLITS) for k in cols]
        print("| all | " + " | ".join(str(v) for v in tot) + f" | {sum(tot)} |\n")

    meters = sorted({s["truth"]["meter"] for s in songs}, key=lambda m: (int(m.split("/")[1]), int(m.split("/")[0])))
    table("split \\ meter", lambda s: [s["truth"]["meter"]], meters)
    table(
        "split \\ category",
        lambda s: s["categories"],
        [c for c in S.CATEGORIES if any(c in s["categories"] for s in songs)],
    )
    styles = sorted({s["style"] for s in songs})
    table("split \\ style", lambda s: [s["style"]], styles)
    keys = Counter((s["truth"]["key"] or {}).get("source", "null") for s in songs)
    modes = Counter((s["truth"]["key"] or {}).get("mode", "null") for s in songs)
    print("key sources:", dict(keys), " modes:", dict(modes))
    per_stem = [t for s in songs for t in s["meta"].get("transcription", {}).get("seconds_per_stem", {}).values()]
    if per_stem:
        per_stem.sort()
        print(
            f"render+transcribe seconds per stem: median {per_stem[len(per_stem) // 2]:.1f}, "
            f"max {per_stem[-1]:.1f}, stems {len(per_stem)}, total {sum(per_stem) / 60:.1f} min"
        )
    dur = sorted(s["meta"]["duration_s"] for s in songs)
    print(f"song length s: min {dur[0]:.0f}, median {dur[len(dur) // 2]:.0f}, max {dur[-1]:.0f}")
    doubled = sum(1 for s in songs if s["meta"].get("record_noise", {}).get("split_doubled"))
    print(f"songs with one instrument split over two tracks: {doubled}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("all", "real", "styles"), default="all")
    ap.add_argument("--out", default=DATA)
    ap.add_argument("--seed", type=int, default=2026, help="selection seed of the real pieces")
    ap.add_argument("--limit", type=int, default=None, help="stop after this many real songs")
    ap.add_argument("--resume", action="store_true", help="keep the songs already in the progress file")
    ap.add_argument("--finalize", action="store_true", help="only sort the progress file into split files")
    ap.add_argument("--no-transcribe", action="store_true", help="noise model instead of fluidsynth + basic-pitch")
    ap.add_argument("--report", action="store_true", help="print counts of the written real-*.jsonl.gz")
    a = ap.parse_args(argv)
    if a.report:
        report(a.out)
        return 0
    if a.finalize:
        finalize(a.out)
        return 0
    if a.part in ("all", "real"):
        build_real(a.out, not a.no_transcribe, a.resume, a.limit, a.seed, log=lambda m: print(m, flush=True))
    if a.part in ("all", "styles"):
        build_styles(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
