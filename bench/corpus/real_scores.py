"""Real scores from music21's bundled corpus, turned into songs with ground truth.

``select_pieces()`` chooses pieces from music21's corpus metadata (no parsing, seeded);
``build_song(piece)`` parses one, cuts an excerpt of 30-90 s in one meter and one key,
chooses a tempo that suits its style (a seeded draw in a plausible range, or the score's
own metronome mark), optionally a gentle ritardando or a slow drift, and returns the
song's ``truth`` (the clean performed score in seconds, beats, bar lines, key) with a
provisional ``record`` made from the truth itself; make_corpus.py replaces that record
with a real transcription.

Conventions (also in README.md):
- pieces played whole (folk tunes, chorales, hymns) have their repeats expanded wherever
  music21 can (``expandRepeats``), else kept as written; excerpts of longer pieces are cut
  from the score as written (no repeat is played);
  a whole piece (folk tune, chorale, hymn) shorter than 30 s is played through again
  (another verse, another round for the dancers) until it lasts at least 30 s; a tune
  whose last bar is complete is re-entered at its first full bar (its pickup is not
  replayed);
- bar lines are the score's measures: a pickup (anacrusis) has no downbeat, its beats are
  placed from the bar line it leads into; an incomplete measure elsewhere continues the
  bar before it when the two add up to one bar, else starts a new bar;
- notes are performed: legato (90-97% of the written value, 55% under staccato), a few
  ms of onset jitter (sd 5 ms, at most 12 ms), velocities from the score's dynamics with a
  light accent on downbeats; ornaments and fermatas are not realised; grace notes are
  left out; ties are joined.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import re
import zlib
from dataclasses import dataclass, field

logging.getLogger("music21").setLevel(logging.ERROR)

try:  # schema lives beside this file; importable both as a package and as a script dir
    from . import schema as S
except ImportError:  # pragma: no cover
    import schema as S  # type: ignore

# ---------------------------------------------------------------------------
# instruments

GM_NAMES = {
    0: "Acoustic Grand Piano", 6: "Harpsichord", 19: "Church Organ", 21: "Accordion",
    22: "Harmonica", 24: "Acoustic Guitar (nylon)", 25: "Acoustic Guitar (steel)",
    32: "Acoustic Bass", 40: "Violin", 41: "Viola", 42: "Cello", 43: "Contrabass",
    48: "String Ensemble 1", 52: "Choir Aahs", 53: "Voice Oohs", 54: "Synth Voice",
    56: "Trumpet", 57: "Trombone", 60: "French Horn", 68: "Oboe", 70: "Bassoon",
    71: "Clarinet", 72: "Piccolo", 73: "Flute", 74: "Recorder", 75: "Pan Flute",
    78: "Whistle", 109: "Bagpipe", 110: "Fiddle",
}  # fmt: skip

_NAME_RULES = [
    (r"violoncell|cello", 42),
    (r"contrabass|double bass|kontrabass", 43),
    (r"viola", 41),
    (r"violin|violino|fiddle", 40),
    (r"piano|klavier|pianoforte|keyboard", 0),
    (r"harpsichord|cembalo", 6),
    (r"organ", 19),
    (r"flute|flauto", 73),
    (r"oboe", 68),
    (r"clarinet", 71),
    (r"bassoon|fagott", 70),
    (r"horn|corno", 60),
    (r"trumpet|tromba", 56),
    (r"trombone", 57),
    (r"guitar", 24),
]
_VOICE_RE = (
    r"soprano|alto|tenor|bass|voice|cantus|altus|quintus|sextus|contratenor|triplum|motetus"
    r"|tenore|superius|canto|vox|choir|s\.|a\.|t\.|b\."
)

# orchestrations for vocal polyphony (a program per voice, top to bottom)
VOCAL_ORCHESTRATIONS = {
    "choir": [52, 52, 52, 52],
    "voices": [53, 52, 52, 53],
    "synth-voice": [54, 54, 54, 54],
    "strings": [40, 40, 41, 42],
    "organ": [19, 19, 19, 19],
    "woodwinds": [73, 68, 71, 70],
    "brass": [56, 60, 57, 57],
}
FOLK_INSTRUMENTS = [40, 40, 110, 73, 73, 78, 74, 21, 22, 0, 24, 71, 68, 109, 75]

# ---------------------------------------------------------------------------
# tempo

# quarter-note BPM ranges per tempo class and meter class:
#   q = x/4 (quarter beat), h = x/2 (half beat), c = compound (dotted beat), e = simple x/8
TEMPO_TABLE = {
    "slow": {"q": (52, 72), "h": (100, 130), "c": (66, 96), "e": (60, 90)},
    "andante": {"q": (70, 92), "h": (120, 150), "c": (90, 120), "e": (80, 110)},
    "moderato": {"q": (90, 114), "h": (140, 170), "c": (120, 150), "e": (100, 130)},
    "allegro": {"q": (116, 150), "h": (160, 200), "c": (150, 192), "e": (120, 160)},
    "presto": {"q": (150, 190), "h": (190, 232), "c": (180, 228), "e": (150, 190)},
}
_TEMPO_WORDS = [
    (r"prestissimo|presto|vivacissimo|vivace|allegro molto|allegro assai|allegrissimo", "presto"),
    (r"allegretto|moderato|andantino|poco allegro|animato|moderate", "moderato"),
    (r"allegro", "allegro"),
    (r"andante|larghetto", "andante"),
    (r"adagio|largo|lento|grave|affettuoso", "slow"),
    (r"menuet|minuet|scherzo|trio", "allegro"),
]


def meter_class(meter: str) -> str:
    num, den = (int(x) for x in meter.split("/"))
    if num % 3 == 0 and num > 3:
        return "c"
    if den == 2 or den == 1:
        return "h"
    if den >= 8:
        return "e"
    return "q"


def is_odd_meter(meter: str) -> bool:
    """The corpus's 'odd-meter' category: any meter but 4/4 (schema.CATEGORIES)."""
    return meter != "4/4"


# ---------------------------------------------------------------------------
# selection


@dataclass
class Piece:
    path: str  # music21 corpus path, e.g. "haydn/opus74no1/movement3.mxl"
    number: int | None  # tune number inside an ABC collection
    style: str
    work: str  # unit that may not straddle splits (a quartet opus, a tune, a chorale)
    title: str = ""
    meter_hint: str = ""
    excerpts: int = 1
    split: str = ""
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        base = "music21:" + re.sub(r"\.(mxl|xml|musicxml|krn|abc|mei)$", "", self.path)
        return base + (f"#{self.number}" if self.number is not None else "")


def _crc(s: str) -> int:
    return zlib.crc32(s.encode("utf-8")) & 0x7FFFFFFF


def _meta_rows():
    from music21 import corpus

    rows = []
    for e in corpus.corpora.CoreCorpus().metadataBundle:
        md = e.metadata
        if md is None:
            continue
        d = dict(md.all())
        ts = d.get("timeSignatures") or []
        real_ts = sorted({t for t in ts if not t.startswith("1/") and t.split("/")[0] not in ("23",)})
        rows.append(
            {
                "path": str(e.sourcePath),
                "number": int(e.number) if e.number not in (None, "") else None,
                "title": str(d.get("title") or ""),
                "parts": d.get("numberOfParts") or 0,
                "ts": real_ts,
                "notes": d.get("noteCount") or 0,
                "ql": float(d.get("scoreQuarterLength") or 0),
            }
        )
    return rows


# how many pieces of each kind; (corpus folder(s), style, {meter: count}, filter)
FOLK_QUOTA = {"6/8": 18, "9/8": 5, "12/8": 2, "3/4": 12, "2/2": 6, "2/4": 6, "4/4": 6, "3/8": 3}
ESSEN_QUOTA = {"3/4": 6, "6/8": 6, "2/4": 3, "4/4": 3, "5/4": 3, "5/8": 4, "7/8": 2, "3/8": 2}
CHORALE_QUOTA = {"4/4": 18, "3/4": 10, "12/8": 1}
TRECENTO_QUOTA = {"6/8": 8, "3/4": 6, "9/8": 2, "2/4": 2}

QUARTET_DIRS = ("haydn/", "mozart/k155", "mozart/k156", "mozart/k458", "mozart/k80", "beethoven/")
OTHER_PIECES = [
    ("joplin/maple_leaf_rag.mxl", "piano-rag"),
    ("schubert/Lindenbaum.xml", "lied"),
    ("chopin/mazurka06-2.krn", "piano"),
    ("schumann_clara/polonaise_op1n1.mxl", "piano"),
    ("schumann_clara/polonaise_op1n2.mxl", "piano"),
    ("schumann_clara/polonaise_op1n3.mxl", "piano"),
    ("schumann_clara/polonaise_op1n4.mxl", "piano"),
    ("schumann_clara/opus17/movement3.xml", "piano-trio"),
    ("mozart/k545/movement1_exposition.mxl", "piano"),
    ("verdi/laDonnaEMobile.mxl", "aria"),
    ("corelli/opus3no1/1grave.xml", "trio-sonata"),
    ("cpebach/h186.mxl", "piano"),
    ("beach/prayer_of_a_tired_child.musicxml", "song"),
    ("johnson_j_r/lift_every_voice.mxl", "hymn"),
    ("liliuokalani/aloha_oe.mxl", "song"),
    ("schumann_robert/opus41no1/movement2.mxl", "string-quartet"),
    ("schumann_robert/opus41no1/movement4.mxl", "string-quartet"),
    ("monteverdi/madrigal.3.1.mxl", "madrigal"),
    ("monteverdi/madrigal.4.1.mxl", "madrigal"),
    ("monteverdi/madrigal.5.1.mxl", "madrigal"),
]


def select_pieces(seed: int = 2026) -> list[Piece]:
    """The pieces of the real-music corpus, with their split. Deterministic for a seed."""
    rows = _meta_rows()
    rng = random.Random(seed)
    pieces: list[Piece] = []

    def pick(cands, quota, style, work_of, meter_of=lambda r: r["ts"][0]):
        by_meter: dict[str, list] = {}
        for r in cands:
            by_meter.setdefault(meter_of(r), []).append(r)
        for meter, n in quota.items():
            pool = sorted(by_meter.get(meter, []), key=lambda r: (r["path"], r["number"] or 0))
            rng.shuffle(pool)
            for r in pool[:n]:
                pieces.append(Piece(r["path"], r["number"], style, work_of(r), r["title"], meter))

    single = [r for r in rows if len(r["ts"]) == 1]
    # folk dance and air collections (Irish and Scottish): one line, a tune per piece
    folk = [
        r
        for r in single
        if r["path"].split("/")[0] in ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
        and r["parts"] == 1
        and 40 <= r["notes"] <= 400
        and 16 <= r["ql"] <= 200
    ]
    pick(folk, FOLK_QUOTA, "folk", lambda r: f"{r['path']}#{r['number']}")
    essen = [r for r in single if r["path"].startswith("essenFolksong") and 25 <= r["notes"] <= 300 and r["ql"] >= 12]
    pick(essen, ESSEN_QUOTA, "folk-song", lambda r: f"{r['path']}#{r['number']}")
    chor = [
        r
        for r in single
        if r["path"].startswith("bach/") and r["parts"] == 4 and r["path"].endswith((".mxl", ".xml")) and r["ql"] >= 24
    ]
    pick(chor, CHORALE_QUOTA, "chorale", lambda r: r["path"])
    trec = [
        r
        for r in single
        if r["path"].startswith("trecento/")
        and r["parts"] >= 2
        and r["path"].endswith((".xml", ".mxl"))
        and r["ql"] >= 40
    ]
    trec = [r for r in trec if "_bak" not in r["path"] and not (r["path"].endswith(".mxl") and "13_01" in r["path"])]
    pick(trec, TRECENTO_QUOTA, "medieval-polyphony", lambda r: r["path"])

    # string quartets: every movement (MusicXML only: the .krn files repeat movements)
    seen = set()
    for r in sorted(rows, key=lambda r: r["path"]):
        p = r["path"]
        if not p.startswith(QUARTET_DIRS) or not p.endswith((".mxl", ".xml")) or p in seen:
            continue
        if r["parts"] != 4 or "k545" in p:
            continue
        seen.add(p)
        work = p.rsplit("/", 1)[0] if "/movement" in p else p
        long_mov = r["ql"] >= 600
        pieces.append(Piece(p, None, "string-quartet", work, r["title"], "", excerpts=2 if long_mov else 1))
    for p, style in OTHER_PIECES:
        if any(r["path"] == p for r in rows):
            work = p.rsplit("/", 1)[0] if p.count("/") > 1 else p
            pieces.append(Piece(p, None, style, work, "", "", excerpts=1))

    # splits: per style, works in a fixed pseudo-random order; rank decides (70/20/10)
    by_style: dict[str, list[str]] = {}
    for pc in pieces:
        lst = by_style.setdefault(pc.style, [])
        if pc.work not in lst:
            lst.append(pc.work)
    split_of = {}
    for works in by_style.values():
        for rank, w in enumerate(sorted(works, key=lambda w: _crc(f"{seed}:{w}"))):
            split_of[w] = S.split_for_seed(rank)
    for pc in pieces:
        pc.split = split_of[pc.work]
        pc.seed = _crc(f"{seed}:{pc.source}") % 100000
    return pieces


# ---------------------------------------------------------------------------
# building one song


class Skip(Exception):
    """A piece (or excerpt) that cannot give an honest song; the message says why."""


@dataclass
class Bar:
    q0: float  # offset in quarters
    length: float  # actual length in quarters
    bar_ql: float  # nominal bar length
    meter: str
    key: object  # music21 key.Key / KeySignature in force
    pickup: bool  # first measure, shorter than a bar


WHOLE_PIECE_STYLES = ("folk", "folk-song", "chorale", "hymn")
MODAL_STYLES = ("medieval-polyphony", "madrigal")


def _parse(piece: Piece):
    from music21 import corpus, stream

    s = corpus.parse(piece.path, number=piece.number) if piece.number is not None else corpus.parse(piece.path)
    if isinstance(s, stream.Opus):
        s = s.scores[0]
    if not isinstance(s, stream.Score):
        sc = stream.Score()
        sc.insert(0, s)
        s = sc
    repeats = "as-written"
    if piece.style not in WHOLE_PIECE_STYLES:
        return s, "as-written (excerpt)"
    try:
        e = s.expandRepeats()
        if e is not None and e.highestTime >= s.highestTime - 1e-6:
            repeats = "expanded" if e.highestTime > s.highestTime + 1e-6 else "none"
            s = e
    except Exception:
        repeats = "as-written (expandRepeats failed)"
    return s, repeats


def _bars(score) -> list[Bar]:
    from music21 import key as m21key

    part = score.parts[0]
    ms = list(part.getElementsByClass("Measure"))
    if not ms:
        raise Skip("no measures")
    bars = []
    ts_cur = None
    key_cur = None
    for i, m in enumerate(ms):
        if m.timeSignature is not None:
            ts_cur = m.timeSignature
        ks = m.keySignature
        if ks is None:
            found = m.getElementsByClass(m21key.KeySignature)
            ks = found[0] if found else None
        if ks is not None:
            key_cur = ks
        if ts_cur is None:
            ts_cur = m.getContextByClass("TimeSignature")
            if ts_cur is None:
                raise Skip("no time signature")
        q0 = float(m.getOffsetBySite(part))
        if i + 1 < len(ms):
            length = float(ms[i + 1].getOffsetBySite(part)) - q0
        else:
            length = float(m.highestTime)
        bar_ql = float(ts_cur.barDuration.quarterLength)
        meter = ts_cur.ratioString
        pickup = i == 0 and length < bar_ql - 1e-6
        bars.append(Bar(q0, length, bar_ql, meter, key_cur, pickup))
    return bars


def _beats_q(bars: list[Bar], q_start: float) -> tuple[list[float], list[float]]:
    """Beats and downbeats in quarters (relative to q_start) for a run of bars."""
    beats, downs = [], []
    pos = 0.0
    for j, b in enumerate(bars):
        _, beat_q = S.meter_beats(b.meter)
        partial = b.length < b.bar_ql - 1e-6
        if not partial:
            pos = 0.0
        elif pos > 1e-6 and pos + b.length <= b.bar_ql + 1e-6:
            pass  # completes the bar begun by the previous partial measure
        elif b.pickup or (j == 0 and pos == 0.0 and b.pickup):
            pos = b.bar_ql - b.length
        else:
            pos = 0.0
        # beats inside this measure: positions x in [0, length) where (pos + x) is a beat
        k = math.ceil((pos - 1e-6) / beat_q)
        while True:
            x = k * beat_q - pos
            if x >= b.length - 1e-6:
                break
            t = b.q0 - q_start + x
            beats.append(t)
            if abs((pos + x) % b.bar_ql) < 1e-6:
                downs.append(t)
            k += 1
        pos += b.length
        if pos >= b.bar_ql - 1e-6:
            pos = 0.0
    return beats, downs


def _tempo_class(score, piece: Piece, q_at: float) -> str | None:
    from music21 import tempo

    best = None
    for ti in score.recurse().getElementsByClass(tempo.TempoIndication):
        try:
            off = float(ti.getOffsetInHierarchy(score))
        except Exception:
            off = 0.0
        if off > q_at + 1e-6:
            break
        text = (getattr(ti, "text", None) or "").lower()
        for rx, cls in _TEMPO_WORDS:
            if text and re.search(rx, text):
                best = cls
                break
    return best


def _metronome_qbpm(score, q_at: float) -> float | None:
    """A metronome mark in the score (not a notation program's 'playback only' default)."""
    from music21 import tempo

    found = None
    for mm in score.recurse().getElementsByClass(tempo.MetronomeMark):
        if mm.number is None or getattr(mm, "numberImplicit", False):
            continue
        if "playback" in repr(mm):
            continue
        try:
            off = float(mm.getOffsetInHierarchy(score))
        except Exception:
            off = 0.0
        if off > q_at + 1e-6:
            break
        found = float(mm.number) * float(mm.referent.quarterLength)
    return found


def _folk_range(piece: Piece, meter: str) -> tuple[float, float]:
    t = piece.title.lower()
    mc = meter_class(meter)
    slow = re.search(r"lament|air\b|lullab|farewell|dirge|slow|sorrow|weary|elegy|the coolin", t)
    if piece.style == "folk-song":
        return (
            {"q": (76, 120), "h": (120, 160), "c": (100, 150), "e": (80, 120)}[mc]
            if meter not in ("5/8", "7/8")
            else (90, 130)
        )
    if slow:
        return {"q": (60, 90), "h": (100, 140), "c": (90, 120), "e": (70, 100)}[mc]
    if meter == "6/8":
        return (150, 192)  # jigs: dotted quarter 100-128
    if meter == "9/8":
        return (150, 186)  # slip jigs
    if meter == "12/8":
        return (165, 210)  # slides
    if meter == "2/2":
        return (180, 226)  # reels: half note 90-113
    if meter == "4/4":
        if "hornpipe" in t:
            return (130, 160)
        if "reel" in t:
            return (180, 220)
        return (100, 140)
    if meter == "2/4":
        if "polka" in t:
            return (130, 160)
        return (96, 132)
    if meter == "3/4":
        if "mazurka" in t:
            return (120, 150)
        return (100, 150)
    if meter == "3/8":
        return (100, 140)
    return TEMPO_TABLE["moderato"][mc]


def _choose_qbpm(score, piece: Piece, meter: str, q_at: float, rng: random.Random) -> tuple[float, str]:
    mm = _metronome_qbpm(score, q_at)
    if mm is not None and 40 <= mm <= 240:
        beat_q = S.meter_beats(meter)[1]
        beat = mm / beat_q * rng.uniform(0.95, 1.05)
        return round(beat) * beat_q, "score metronome mark (+-5%)"
    if piece.style in ("folk", "folk-song"):
        lo, hi = _folk_range(piece, meter)
        how = "style range"
    elif piece.style == "chorale":
        lo, hi = (56, 88) if meter_class(meter) != "c" else (90, 120)
        how = "style range"
    elif piece.style == "medieval-polyphony":
        lo, hi = {"q": (84, 120), "h": (110, 150), "c": (110, 150), "e": (84, 120)}[meter_class(meter)]
        how = "style range"
    else:
        cls = _tempo_class(score, piece, q_at)
        how = f"tempo word '{cls}'" if cls else "no tempo word: moderato-allegro"
        cls = cls or rng.choice(["moderato", "allegro"])
        lo, hi = TEMPO_TABLE[cls][meter_class(meter)]
    beat_q = S.meter_beats(meter)[1]
    beat = round(rng.uniform(lo, hi) / beat_q)
    return beat * beat_q, how


@dataclass
class TempoMap:
    """Quarter position -> seconds, with the tempo constant between change points."""

    points: list[tuple[float, float]]  # (q, quarter_bpm), first at q=0

    def seconds(self, q: float) -> float:
        t = 0.0
        pts = self.points
        for i, (q0, bpm) in enumerate(pts):
            q1 = pts[i + 1][0] if i + 1 < len(pts) else math.inf
            if q <= q1:
                return t + (q - q0) * 60.0 / bpm
            t += (q1 - q0) * 60.0 / bpm
        return t

    def changes_s(self) -> list[list[float]]:
        out = []
        for q, bpm in self.points:
            out.append([round(self.seconds(q), 6), round(bpm, 4)])
        return out


def _tempo_map(qbpm: float, beats_q: list[float], total_q: float, rng: random.Random, drift: str | None):
    if drift is None:
        return TempoMap([(0.0, qbpm)]), None
    grid = [0.0] + [b for b in beats_q if b > 1e-9]
    pts = []
    if drift == "ritardando":
        # the last 2-3 bars (at least 4 beats) slow down beat by beat to 72-85%
        n = max(4, int(len(grid) * rng.uniform(0.08, 0.15)))
        end_ratio = rng.uniform(0.72, 0.85)
        start = len(grid) - n
        for i, q in enumerate(grid):
            r = 1.0 if i < start else 1.0 + (end_ratio - 1.0) * (i - start + 1) / n
            pts.append((q, qbpm * r))
        desc = {"kind": "ritardando", "final_ratio": round(end_ratio, 3), "beats": n}
    else:
        amp = rng.uniform(0.03, 0.07)
        period_q = rng.uniform(24, 64)
        phase = rng.uniform(0, 2 * math.pi)
        for q in grid:
            r = 1.0 + amp * (math.sin(2 * math.pi * q / period_q + phase) - math.sin(phase))
            pts.append((q, qbpm * r))
        desc = {"kind": "wander", "amplitude": round(amp, 3), "period_quarters": round(period_q, 1)}
    # merge equal consecutive tempi
    merged = []
    for q, b in pts:
        b = round(b, 4)
        if not merged or abs(merged[-1][1] - b) > 1e-9:
            merged.append((q, b))
    return TempoMap(merged), desc


_DYN = {
    "pppp": 0.15,
    "ppp": 0.2,
    "pp": 0.3,
    "p": 0.4,
    "mp": 0.5,
    "mf": 0.6,
    "f": 0.72,
    "ff": 0.84,
    "fff": 0.94,
    "sf": 0.8,
    "sfz": 0.82,
    "fp": 0.7,
}


_FLAT: dict[int, dict] = {}


def _flat(part) -> dict:
    """A part's notes with ties joined (computed once per part): offsets, objects, dynamics."""
    from music21 import articulations, dynamics

    got = _FLAT.get(id(part))
    if got is not None and got["part"] is part:
        return got
    flat = part.flatten()
    dyn_points = []
    for d in flat.getElementsByClass(dynamics.Dynamic):
        v = _DYN.get(str(d.value))
        if v is not None:
            dyn_points.append((float(d.offset), v))
    # ties joined by hand (music21's stripTies is slow on long parts): a note tied from an
    # earlier one of the same pitch that ends where it starts extends that note
    items = []  # [on, dur, midi, stacc, accent, obj]
    open_ties: dict[int, int] = {}
    for n in flat.notes:
        dur = float(n.quarterLength)
        if dur <= 0:
            continue
        on = float(n.offset)
        arts = n.articulations
        stacc = any(isinstance(a, (articulations.Staccato, articulations.Staccatissimo)) for a in arts)
        accent = any(isinstance(a, (articulations.Accent, articulations.StrongAccent)) for a in arts)
        comps = [n] if not n.isChord else list(n.notes)
        for c in comps:
            m = c.pitch.midi
            if m is None or not 0 <= m <= 127:
                continue
            tie = c.tie if c.tie is not None else (n.tie if n.isChord else None)
            ttype = tie.type if tie is not None else None
            j = open_ties.get(m)
            if ttype in ("stop", "continue") and j is not None and abs(items[j][0] + items[j][1] - on) < 1e-6:
                items[j][1] += dur
                if ttype == "stop":
                    del open_ties[m]
                continue
            items.append([on, dur, m, stacc, accent, n])
            if ttype in ("start", "continue"):
                open_ties[m] = len(items) - 1
            else:
                open_ties.pop(m, None)
    notes = [(on, dur, [m], st, ac, obj) for on, dur, m, st, ac, obj in items]
    got = {"part": part, "notes": notes, "dyn": dyn_points}
    _FLAT.clear() if len(_FLAT) > 64 else None
    _FLAT[id(part)] = got
    return got


def _part_events(part, q0: float, q1: float):
    """Notes of a part in [q0, q1): (q_on, q_off, pitch, velocity, staccato), relative to q0."""
    f = _flat(part)
    dyn_points = f["dyn"]
    out = []
    for on, dur, midis, stacc, accent, _ in f["notes"]:
        if on < q0 - 1e-9 or on >= q1 - 1e-9:
            continue
        vel = 0.62
        for qd, v in dyn_points:
            if qd <= on + 1e-9:
                vel = v
            else:
                break
        off = min(on + dur, q1)
        for m in midis:
            out.append((on - q0, off - q0, int(m), vel + (0.1 if accent else 0.0), stacc))
    return out


def _instrument_plan(score, piece: Piece, rng: random.Random) -> list[tuple[list, int, str]]:
    """[(parts, program, base name)] — piano staves are joined into one instrument."""
    parts = list(score.parts)
    groups: list[tuple[list, int, str]] = []
    vocal = [bool(re.search(_VOICE_RE, (p.partName or "").lower())) for p in parts]
    if piece.style in ("folk", "folk-song"):
        prog = rng.choice(FOLK_INSTRUMENTS)
        return [([p], prog, GM_NAMES[prog]) for p in parts[:1]]
    if piece.style in ("chorale", "medieval-polyphony", "madrigal", "hymn") or (all(vocal) and len(parts) >= 3):
        orch = rng.choice(list(VOCAL_ORCHESTRATIONS))
        progs = VOCAL_ORCHESTRATIONS[orch]
        for i, p in enumerate(parts):
            prog = progs[min(i, len(progs) - 1)] if len(parts) <= 4 else progs[min(i * 4 // len(parts), 3)]
            groups.append(([p], prog, GM_NAMES[prog]))
        return groups
    # instrumental: by part name, else by music21's instrument, else piano
    from music21 import stream

    i = 0
    while i < len(parts):
        p = parts[i]
        name = (p.partName or "") + " " + (p.getInstrument().instrumentName or "" if p.getInstrument() else "")
        low = name.lower()
        prog = None
        for rx, pr in _NAME_RULES:
            if re.search(rx, low):
                prog = pr
                break
        if prog is None and re.search(_VOICE_RE, low):
            prog = 53 if piece.style in ("lied", "song", "aria") else 52
        if prog is None:
            inst = p.getInstrument()
            prog = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
            if prog not in GM_NAMES:
                prog = 0
        members = [p]
        # piano staves: consecutive PartStaff objects of one instrument
        if isinstance(p, stream.PartStaff):
            while i + 1 < len(parts) and isinstance(parts[i + 1], stream.PartStaff) and prog in (0, 6, 19):
                members.append(parts[i + 1])
                i += 1
        elif prog in (0, 6) and i + 1 < len(parts):
            nxt = parts[i + 1]
            nlow = ((nxt.partName or "") + " " + (nxt.getInstrument().instrumentName or "")).lower()
            if re.search(r"piano|klavier|pianoforte", nlow) or not (nxt.partName or "").strip():
                members.append(nxt)
                i += 1
        groups.append((members, prog, GM_NAMES.get(prog, "Acoustic Grand Piano")))
        i += 1
    return groups


def _key_truth(score, bars: list[Bar], b0: int, b1: int):
    from music21 import key as m21key
    from music21 import stream

    k = bars[b0].key
    if isinstance(k, m21key.Key) and k.mode in (
        "major",
        "minor",
        "dorian",
        "mixolydian",
        "phrygian",
        "lydian",
        "aeolian",
        "ionian",
    ):
        mode = {"aeolian": "minor", "ionian": "major"}.get(k.mode, k.mode)
        return {"tonic": k.tonic.name.replace("-", "b"), "mode": mode, "source": "key-signature"}
    # a bare key signature (no mode), or none: analyse the excerpt's notes
    ex = stream.Stream()
    q0, q1 = bars[b0].q0, bars[b1 - 1].q0 + bars[b1 - 1].length
    for p in score.parts:
        for on, _, _, _, _, n in _flat(p)["notes"]:
            if q0 - 1e-9 <= on < q1:
                ex.insert(on, copy.deepcopy(n))
    try:
        guess = ex.analyze("key")
    except Exception:
        return None
    if isinstance(k, m21key.KeySignature):
        cands = [guess] + list(getattr(guess, "alternateInterpretations", []))
        for c in cands:
            if c.mode in ("major", "minor") and c.sharps == k.sharps:
                return {"tonic": c.tonic.name.replace("-", "b"), "mode": c.mode, "source": "key-signature+analysis"}
    return {"tonic": guess.tonic.name.replace("-", "b"), "mode": guess.mode, "source": "analysis"}


def _choose_excerpt(bars: list[Bar], qbpm_guess: float, target_s: float, rng: random.Random, start_at_top: bool):
    """(b0, b1) bar indices: one meter and one key signature, about target_s long."""
    n = len(bars)
    # candidate starts: bar 0 (with its pickup) or a full bar whose meter/key equal the bar before's
    starts = [0] if start_at_top else []
    later = [i for i in range(1, max(1, int(n * 0.8))) if bars[i].length >= bars[i].bar_ql - 1e-6]
    rng.shuffle(later)
    starts += later[:12]
    if not start_at_top:
        starts.append(0)
    best = None
    for b0 in starts:
        meter, key = bars[b0].meter, str(bars[b0].key)
        q = 0.0
        b1 = b0
        while b1 < n and bars[b1].meter == meter and str(bars[b1].key) == key:
            q += bars[b1].length
            b1 += 1
            if q * 60.0 / qbpm_guess >= target_s:
                break
        dur = q * 60.0 / qbpm_guess
        if best is None or abs(dur - target_s) < abs(best[2] - target_s):
            best = (b0, b1, dur)
        if dur >= min(target_s, 30.0):
            return b0, b1
    return best[0], best[1]


def parse_piece(piece: Piece):
    """(score, repeats, bars) of a piece: parse once, build several excerpts from it."""
    _FLAT.clear()
    score, repeats = _parse(piece)
    if not score.parts:
        raise Skip("no parts")
    return score, repeats, _bars(score)


def build_song(piece: Piece, excerpt_index: int = 0, parsed=None) -> dict:
    """One song (truth, provisional record, meta) from one piece; raises Skip when unusable."""
    rng = random.Random(piece.seed * 10 + excerpt_index)
    score, repeats, bars = parsed if parsed is not None else parse_piece(piece)
    meters = {b.meter for b in bars}
    whole = piece.style in WHOLE_PIECE_STYLES
    target_s = rng.uniform(35.0, 75.0) if not whole else rng.uniform(32.0, 60.0)
    # a first tempo guess, to size the excerpt
    meter0 = max(meters, key=lambda m: sum(b.length for b in bars if b.meter == m))
    if whole:
        if len(meters) != 1:
            raise Skip(f"meter changes {sorted(meters)}")
        b0, b1 = 0, len(bars)
    else:
        qb_guess, _ = _choose_qbpm(score, piece, meter0, 0.0, random.Random(rng.random()))
        b0, b1 = _choose_excerpt(
            bars, qb_guess, target_s, rng, start_at_top=(excerpt_index == 0 and rng.random() < 0.5)
        )
    meter = bars[b0].meter
    try:
        S.meter_beats(meter)
    except Exception:
        raise Skip(f"meter {meter!r}") from None
    qbpm, tempo_how = _choose_qbpm(score, piece, meter, bars[b0].q0, rng)

    # the run of bars (whole pieces: looped until >= 30 s), each with the offset it is played at
    run: list[tuple[Bar, float]] = []  # (bar, played q offset)
    q_play = 0.0
    passes = 0
    first_full = next((i for i in range(b0, b1) if not bars[i].pickup), b0)
    while True:
        lo = b0 if passes == 0 else (b0 if bars[b1 - 1].length < bars[b1 - 1].bar_ql - 1e-6 else first_full)
        for i in range(lo, b1):
            run.append((bars[i], q_play))
            q_play += bars[i].length
        passes += 1
        covers_all = b0 == 0 and b1 == len(bars)
        if not (whole or covers_all) or q_play * 60.0 / qbpm >= 30.0 or passes >= 8:
            break
    # cut at 90 s (whole bars)
    while len(run) > 1 and run[-1][1] * 60.0 / qbpm > 90.0:
        run.pop()
    total_q = run[-1][1] + run[-1][0].length

    # beats in quarters, with played offsets
    shifted = [Bar(pq, b.length, b.bar_ql, b.meter, b.key, b.pickup and k == 0) for k, (b, pq) in enumerate(run)]
    beats_q, downs_q = _beats_q(shifted, 0.0)
    if len(downs_q) < 4:
        raise Skip("fewer than 4 bars")

    drifting = None
    r = rng.random()
    if r < 0.15:
        drifting = "ritardando"
    elif r < 0.32:
        drifting = "wander"
    tmap, drift_desc = _tempo_map(qbpm, beats_q, total_q, rng, drifting)
    sec = tmap.seconds

    # notes per instrument, with the played offsets of each pass
    plan = _instrument_plan(score, piece, rng)
    instruments = []
    used_names: dict[str, int] = {}
    downs_set = {round(d, 6) for d in downs_q}
    for parts, prog, base in plan:
        evs = []
        for p in parts:
            # contiguous stretches of source bars, each with the offset it is played at
            segs = []
            cur = None
            for b, pq in run:
                if cur and abs(cur[1] - b.q0) < 1e-9 and abs(cur[3] - pq) < 1e-9:
                    cur = (cur[0], b.q0 + b.length, cur[2], pq + b.length)
                else:
                    if cur:
                        segs.append(cur)
                    cur = (b.q0, b.q0 + b.length, pq, pq + b.length)
            segs.append(cur)
            for sq0, sq1, pq0, _ in segs:
                for on, off, pitch, vel, stacc in _part_events(p, sq0, sq1):
                    evs.append((on + pq0, off + pq0, pitch, vel, stacc))
        if not evs:
            continue
        legato = rng.uniform(0.90, 0.97)
        notes = []
        for on, off, pitch, vel, stacc in sorted(evs):
            ts = sec(on)
            te = sec(off)
            dur = (te - ts) * (0.55 if stacc else legato)
            dur = max(0.03, min(dur, te - ts - 0.01)) if te - ts > 0.05 else max(0.02, (te - ts) * 0.8)
            jit = max(-0.012, min(0.012, rng.gauss(0, 0.005)))
            s0 = max(0.0, ts + jit)
            v = vel + (0.06 if round(on, 6) in downs_set else 0.0) + rng.uniform(-0.04, 0.04)
            notes.append([round(s0, 6), round(s0 + dur, 6), pitch, round(min(1.0, max(0.05, v)), 3)])
        k = used_names.get(base, 0) + 1
        used_names[base] = k
        instruments.append({"name": base, "program": prog, "is_drum": False, "notes": notes, "_k": k})
    if not instruments:
        raise Skip("no notes")
    # unique truth names: "Violin 1", "Violin 2" when a program repeats
    for inst in instruments:
        if used_names[inst["name"]] > 1:
            inst["name"] = f"{inst['name']} {inst['_k']}"
        del inst["_k"]

    # modal polyphony (14th century, Monteverdi): a major/minor key is not a fact of the
    # music, and the encodings' <mode> is a notation program's default: no key truth
    key = None if piece.style in MODAL_STYLES else _key_truth(score, bars, b0, b1)
    end_s = sec(total_q)
    beats_s = [round(sec(q), 6) for q in beats_q if sec(q) < end_s - 1e-6]
    downs_s = [round(sec(q), 6) for q in downs_q if sec(q) < end_s - 1e-6]
    cats = ["no-drums", "drifting" if drifting else "steady"]
    if is_odd_meter(meter):
        cats.append("odd-meter")
    slug = re.sub(r"[^a-z0-9.]+", "-", piece.source.split(":", 1)[1].lower()).strip("-")
    sid = f"m21-{slug}-x{excerpt_index}-t{round(qbpm):03d}-s{piece.seed}"
    song = {
        "id": sid,
        "source": piece.source,
        "split": piece.split,
        "categories": cats,
        "style": piece.style,
        "truth": {
            "quarter_bpm": float(qbpm),
            "meter": meter,
            "beats_s": beats_s,
            "downbeats_s": downs_s,
            "tempo_changes": tmap.changes_s(),
            "key": key,
            "latency_ms": {inst["name"]: 0.0 for inst in instruments},
            "instruments": instruments,
        },
        "record": None,
        "meta": {
            "title": piece.title,
            "work": piece.work,
            "piece_seed": piece.seed,
            "excerpt_index": excerpt_index,
            "bars": [bars[b0].q0, bars[b1 - 1].q0 + bars[b1 - 1].length],
            "measure_range": [b0, b1],
            "times_through": passes,
            "repeats": repeats,
            "tempo_from": tempo_how,
            "drift": drift_desc,
            "duration_s": round(end_s, 3),
            "pickup_quarters": round(shifted[0].bar_ql - shifted[0].length, 4) if shifted[0].pickup else 0.0,
        },
    }
    song["record"] = clean_record(song)
    return song


def clean_record(song: dict, task_id: str | None = None) -> dict:
    """The truth as the API would send it, without any artefact (grid and k/127 only)."""
    insts = []
    for inst in song["truth"]["instruments"]:
        notes = [
            {
                "pitch": p,
                "start": S.snap_time(s),
                "end": max(S.snap_time(e), S.snap_time(s)),
                "velocity": S.snap_velocity(v),
            }
            for s, e, p, v in inst["notes"]
        ]
        insts.append({"name": inst["name"], "notes": notes})
    return api_record(song["id"] if task_id is None else task_id, insts)


def api_record(task_id: str, instruments: list[dict]) -> dict:
    return {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": task_id,
            "successFlag": 1,
            "midiData": {"state": "complete", "instruments": instruments},
        },
    }


def iter_songs(pieces: list[Piece], log=print):
    """Build every excerpt of every piece; skipped pieces are logged with their reason."""
    for pc in pieces:
        for x in range(pc.excerpts):
            try:
                yield build_song(pc, x)
            except Skip as e:
                log(f"skip {pc.source} x{x}: {e}")
            except Exception as e:  # a score music21 cannot read as we need
                log(f"skip {pc.source} x{x}: {type(e).__name__}: {e}")
