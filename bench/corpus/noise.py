"""Transcription noise: turn a song's clean instruments into the record an API would send.

Suno makes its MIDI by transcribing separated audio stems, so real records are messier
than a score. The functions here reproduce the defects measured in real exports
(PRODUCT.md, "What real transcriptions look like" and "Suno's own .mid exports";
``/work/shared/real/suno-web-export/``). Every function is pure: it takes notes and a
``random.Random`` (or nothing) and returns new notes, so each can be used on its own.

Notes are ``[start_s, end_s, pitch, velocity_0_1]`` lists, the truth format of
``schema.py``. An instrument is ``{"name", "program", "is_drum", "notes"}``.

The small public API:

* one defect each: :func:`add_flickers`, :func:`add_same_pitch_overlaps`,
  :func:`drop_notes`, :func:`add_phantoms`, :func:`octave_errors`,
  :func:`fragment_sustains`, :func:`hang_notes`, :func:`jitter_onsets`,
  :func:`flat_velocity`, :func:`jitter_velocity`, :func:`drum_one_tick`,
  :func:`confuse_drum_keys`, :func:`simplify_kit`, :func:`shift_notes`,
  :func:`split_and_double`;
* per-song choices: :func:`choose_latency_ms`, :func:`choose_song_offset`;
* the whole chain: :func:`make_record` (profile ``"noisy"``, ``"light"`` or
  ``"clean"``) and :func:`to_record` (grid + k/127 + the API envelope only).

Where a default comes from is said next to it: [P] = PRODUCT.md, [R] = the three real
files of ``real/suno-web-export`` (measured: drums all one tick long; bass one velocity
value (89) over 240 notes; keyboard 107 values; bass ~18 ms and keyboard ~28 ms late
against the drums; <0.5% of bass/keyboard notes under 30 ms), [J] = a judgement where
nothing was measured.

Times: latency and the song offset are ADDED to record times. The corpus keeps its truth
in record time for the offset (the generator shifts the truth by the same offset), but
not for latency (``truth.latency_ms`` says how late each stem is).
"""

from __future__ import annotations

import random

GRID_S = 1.0 / 192.0  # [P] the API's time grid (120 BPM, 96 ticks per quarter)
SHORT_S = 0.030  # [P] "notes shorter than 30 ms"

# --- defaults, with their source -------------------------------------------------------
# [P] 7.7% of notes < 30 ms "in pitched stems too". Real stems differ a lot ([R]: the
# keyboard and bass of one song have < 0.5%), so the rate is drawn per stem from a skewed
# mixture whose mean (with the short pieces fragment_sustains makes) lands near 7.7%
# of pitched notes. (Drum hits are one tick long in the API, so every drum note is
# "short"; the 7.7% is compared with pitched notes only.)
FLICKER_RATE_MIX = ((0.5, 0.005, 0.03), (0.35, 0.05, 0.12), (0.15, 0.14, 0.28))
# [P] "same-pitch overlaps by the thousand" in 85,343 notes, i.e. a few percent of notes.
# Flickers inside a sounding note, onset jitter between back-to-back notes and hanging
# notes make overlaps too, so the deliberate rate is small. [J] 1.2%.
OVERLAP_RATE = 0.012
MISS_RATE = 0.03  # [J] missed notes; quiet notes (ghosts) are missed 3x as often
PHANTOM_RATE = 0.02  # [J] notes that were never played (bleed, harmonics)
OCTAVE_RATE = 0.015  # [J] octave errors, twice that on bass stems
FRAGMENT_MIN_S = 0.5  # [J] sustains longer than this may be split...
FRAGMENT_RATE = 0.25  # [J] ...with this probability, into 2-4 pieces
FRAGMENT_GAP_S = (0.005, 0.06)  # [J] small gaps between the pieces
HANG_STEM_P = 0.06  # [P] "implausible polyphony (up to 95 notes at once on a guitar stem)"
HANG_RATE = (0.02, 0.08)  # [J] share of notes left ringing on such a stem
HANG_EXTRA_S = (1.0, 15.0)  # [J] how much longer they ring
SMEAR_STEM_P = 0.02  # [P] the extreme case: a stem whose note-offs are mostly lost...
SMEAR_RATE = (0.15, 0.3)  # [J] ...15-30% of its notes ring on...
SMEAR_EXTRA_S = (3.0, 20.0)  # [J] ...for seconds: polyphony of dozens of notes
ONSET_SD_S = 0.004  # [J] transcription onset error (pitched); drums half
FLAT_VELOCITY_P = 0.75  # [P] "most stems carry a single velocity value"; [R] bass flat
FLAT_VELOCITY_DRUMS_P = 0.2  # [R] the real drum stem has 25 values: drums mostly not flat
FLAT_VALUE_K = (64, 112)  # [R] the bass's single value is 89/127
VELOCITY_SD = 0.08  # [J] velocity error on stems that keep their dynamics
LATENCY_MS = (10.0, 40.0)  # [P][R] per-stem latency: bass ~18, keyboard ~28; drums 0
SPLIT_P = 0.15  # [P] "one instrument sometimes split over two tracks"
OFFSET_P = 0.2  # [P] "a whole song can sit 0.1-0.6 s off its own audio"
OFFSET_S = (0.1, 0.6)
DRUM_CONFUSION_RATE = 0.02  # [J] hat open/closed, snare/side stick, crash/crash 2
DRUM_ODD_KEY_RATE = 0.002  # [P] "now and then a key outside 35-81"
KIT_SIMPLIFY_P = 0.3  # [R] the real drum stem uses four keys only (36, 37, 46, 50): no 42, no 38
IS_DRUM_FLAG_P = 0.2  # [P] Suno's own JSON marks drums with "is_drum": true (some hosts)


def _copy(notes):
    return [list(n) for n in notes]


def _sorted(notes):
    notes.sort(key=lambda n: (n[0], n[2], n[1]))
    return notes


# --- one defect each -------------------------------------------------------------------


def add_flickers(notes, rng: random.Random, rate: float):
    """Add ``rate`` x len(notes) very short notes (1 tick to 29 ms).

    Flickers sit on an existing note: a re-attack of its pitch inside it, its octave or
    fifth above (a harmonic) at its start, or a neighbour semitone (pitch wobble).
    """
    out = _copy(notes)
    if not notes:
        return out
    for _ in range(int(round(rate * len(notes)))):
        s, e, p, v = rng.choice(notes)
        kind = rng.random()
        if kind < 0.25:
            t = rng.uniform(s, max(s, e - 0.02))
            q = p
        elif kind < 0.7:
            t = s + rng.uniform(-0.01, 0.02)
            q = p + rng.choice((12, 12, 19, 7))
        else:
            t = rng.uniform(s, max(s, e - 0.02))
            q = p + rng.choice((-1, 1))
        d = rng.uniform(GRID_S, SHORT_S - 0.001)
        t = max(0.0, t)
        out.append([t, t + d, min(127, max(0, q)), max(0.05, v * rng.uniform(0.4, 1.0))])
    return _sorted(out)


def add_same_pitch_overlaps(notes, rng: random.Random, rate: float = OVERLAP_RATE):
    """Make about ``rate`` of the notes overlap another note of the same pitch.

    Half the time a note's end is pushed past the start of the next note of its pitch
    (the transcriber did not hear the re-attack); otherwise a second copy starts a little
    after the note begins, while it still sounds.
    """
    out = _copy(notes)
    by_pitch = {}
    for i, n in enumerate(out):
        by_pitch.setdefault(n[2], []).append(i)
    extra = []
    for idxs in by_pitch.values():
        for a, b in zip(idxs, idxs[1:] + [None]):
            if rng.random() >= rate:
                continue
            n = out[a]
            if b is not None and rng.random() < 0.5 and out[b][0] > n[0]:
                n[1] = max(n[1], out[b][0] + rng.uniform(0.01, 0.3))
            else:
                t = n[0] + rng.uniform(0.01, max(0.011, (n[1] - n[0]) * 0.8))
                extra.append([t, max(n[1], t + 0.02) + rng.uniform(0, 0.2), n[2], n[3]])
    return _sorted(out + extra)


def drop_notes(notes, rng: random.Random, rate: float = MISS_RATE, quiet_factor: float = 3.0):
    """Remove about ``rate`` of the notes; notes with velocity < 0.4 go ``quiet_factor`` x as often."""
    out = []
    for n in notes:
        r = rate * (quiet_factor if n[3] < 0.4 else 1.0)
        if rng.random() >= r:
            out.append(list(n))
    return out


def add_phantoms(notes, rng: random.Random, rate: float = PHANTOM_RATE, pitches=None, length_s=(0.03, 0.4)):
    """Add ``rate`` x len(notes) notes nobody played, at random times within the stem.

    ``pitches``: where phantom pitches come from (default: the stem's own pitches, so a
    bass gets bass-range ghosts and drums get hits on their own keys).
    """
    out = _copy(notes)
    if not notes:
        return out
    pool = list(pitches) if pitches else [n[2] for n in notes]
    t0, t1 = notes[0][0], max(n[1] for n in notes)
    for _ in range(int(round(rate * len(notes)))):
        t = rng.uniform(t0, t1)
        out.append([t, t + rng.uniform(*length_s), rng.choice(pool), rng.uniform(0.2, 0.8)])
    return _sorted(out)


def octave_errors(notes, rng: random.Random, rate: float = OCTAVE_RATE):
    """Move about ``rate`` of the notes an octave up or down (mostly up: harmonics win)."""
    out = _copy(notes)
    for n in out:
        if rng.random() < rate:
            d = 12 if rng.random() < 0.7 else -12
            if 0 <= n[2] + d <= 127:
                n[2] += d
    return out


def fragment_sustains(
    notes, rng: random.Random, min_len_s: float = FRAGMENT_MIN_S, rate: float = FRAGMENT_RATE, gap_s=FRAGMENT_GAP_S
):
    """Split notes longer than ``min_len_s`` (with probability ``rate``) into 2-4 pieces with small gaps.

    The pieces keep the pitch; later pieces are softer (a decaying sustain re-detected).
    Pieces can be very short, which adds to the share of notes under 30 ms.
    """
    out = []
    for n in notes:
        s, e, p, v = n
        if e - s < min_len_s or rng.random() >= rate:
            out.append(list(n))
            continue
        k = rng.randint(2, 4)
        cuts = sorted(rng.uniform(s + 0.01, e - 0.01) for _ in range(k - 1))
        bounds = [s] + cuts + [e]
        for j in range(k):
            a = bounds[j] + (rng.uniform(*gap_s) / 2 if j > 0 else 0.0)
            b = bounds[j + 1] - (rng.uniform(*gap_s) / 2 if j < k - 1 else 0.0)
            if b - a < GRID_S:
                b = a + GRID_S
            out.append([a, b, p, v * (0.85**j)])
    return _sorted(out)


def hang_notes(notes, rng: random.Random, rate: float, extra_s=HANG_EXTRA_S):
    """Let about ``rate`` of the notes ring on for ``extra_s`` seconds more (implausible polyphony)."""
    out = _copy(notes)
    for n in out:
        if rng.random() < rate:
            n[1] += rng.uniform(*extra_s)
    return out


def jitter_onsets(notes, rng: random.Random, sd_s: float = ONSET_SD_S):
    """Move each note by a Gaussian error (start and end together), never below 0."""
    out = []
    for s, e, p, v in notes:
        d = rng.gauss(0.0, sd_s)
        out.append([max(0.0, s + d), max(0.0, e + d), p, v])
    return _sorted(out)


def flat_velocity(notes, value: float):
    """Every note gets ``value`` (the API's stems mostly carry a single velocity)."""
    return [[s, e, p, value] for s, e, p, _ in notes]


def jitter_velocity(notes, rng: random.Random, sd: float = VELOCITY_SD):
    """Velocity error on stems that keep their dynamics; stays in (0, 1]."""
    return [[s, e, p, min(1.0, max(1 / 127, v + rng.gauss(0.0, sd)))] for s, e, p, v in notes]


def drum_one_tick(notes):
    """Every hit lasts one tick of the API grid (1/192 s), as in Suno's drum stems [R]."""
    return [[s, s + GRID_S, p, v] for s, e, p, v in notes]


_DRUM_CONFUSIONS = {
    42: (46, 44),
    46: (42,),
    44: (42,),
    38: (37, 40),
    37: (38,),
    40: (38,),
    49: (57, 52),
    57: (49,),
    51: (59, 53),
    36: (35,),
    50: (48,),
    48: (50, 47),
    45: (47, 43),
    43: (41, 45),
}
_ODD_KEYS = (27, 28, 31, 33, 34, 82, 84, 86)


def confuse_drum_keys(
    notes, rng: random.Random, rate: float = DRUM_CONFUSION_RATE, odd_rate: float = DRUM_ODD_KEY_RATE
):
    """Swap a few hits to a neighbouring key (open/closed hat, snare/side stick, crash/crash 2)
    and, rarely, to a key outside 35-81."""
    out = _copy(notes)
    for n in out:
        r = rng.random()
        if r < odd_rate:
            n[2] = rng.choice(_ODD_KEYS)
        elif r < odd_rate + rate and n[2] in _DRUM_CONFUSIONS:
            n[2] = rng.choice(_DRUM_CONFUSIONS[n[2]])
    return out


def simplify_kit(notes, rng: random.Random):
    """Fold the kit onto a few keys, as the real drum stem does [R]: one hat key for all
    hats, one key for snare/clap/side stick, one for the cymbals, two toms; loud hits
    saturate (the real kick is 127 on every hit). Returns (notes, mapping)."""
    hat = rng.choice((46, 42))
    snare = rng.choice((37, 38, 38))
    cym = rng.choice((49, 51, 57))
    m = {
        42: hat,
        44: hat,
        46: hat,
        38: snare,
        39: snare,
        40: snare,
        37: snare,
        49: cym,
        57: cym,
        51: cym,
        52: cym,
        53: cym,
        50: 50,
        48: 50,
        47: 47,
        45: 47,
        43: 47,
        41: 47,
        35: 36,
    }
    out = []
    for s, e, p, v in notes:
        q = m.get(p, p)
        out.append([s, e, q, 1.0 if v > 0.85 else v])
    return _sorted(out), {str(k): v for k, v in m.items() if k != v}


def shift_notes(notes, seconds: float):
    """Every note ``seconds`` later (negative: earlier, clipped at 0)."""
    return [[max(0.0, s + seconds), max(0.0, e + seconds), p, v] for s, e, p, v in notes]


def split_and_double(inst: dict, rng: random.Random):
    """One instrument over two tracks of the same name [P].

    Until ``t_split`` every note is on track A; then the notes move to track B while A is
    silent; from ``t_double`` on both tracks carry the same notes (B a few ms apart).
    Returns two instruments (same name, program, is_drum).
    """
    notes = inst["notes"]
    if len(notes) < 8:
        return [inst]
    t0, t1 = notes[0][0], notes[-1][0]
    t_split = rng.uniform(t0 + 0.2 * (t1 - t0), t0 + 0.5 * (t1 - t0))
    t_double = rng.uniform(t_split, t0 + 0.8 * (t1 - t0))
    a, b = [], []
    for n in notes:
        if n[0] < t_split:
            a.append(list(n))
        elif n[0] < t_double:
            b.append(list(n))
        else:
            a.append(list(n))
            d = rng.uniform(-0.006, 0.006)
            b.append([max(0.0, n[0] + d), max(0.0, n[1] + d), n[2], n[3]])
    return [dict(inst, notes=a), dict(inst, notes=b)]


# --- per-song choices --------------------------------------------------------------------


def choose_latency_ms(instruments, rng: random.Random, lo_hi=LATENCY_MS):
    """{name: ms}: 0 for drums, 10-40 ms for every pitched stem [P][R]."""
    return {inst["name"]: (0.0 if inst.get("is_drum") else round(rng.uniform(*lo_hi), 1)) for inst in instruments}


def choose_song_offset(rng: random.Random, p: float = OFFSET_P, lo_hi=OFFSET_S) -> float:
    """Seconds the whole song sits late (0.0 for most songs) [P]."""
    return round(rng.uniform(*lo_hi), 4) if rng.random() < p else 0.0


# --- the record ---------------------------------------------------------------------------


def _snap(t: float) -> float:
    return max(0, round(t * 192)) / 192.0


def _snap_v(v: float) -> float:
    return min(127, max(1, round(v * 127))) / 127.0


def to_record(instruments, task_id: str, is_drum_flag: bool = False) -> dict:
    """The API envelope around ``instruments``: times on the 1/192 s grid, velocities k/127.

    A note whose end snaps onto its start keeps one tick. With ``is_drum_flag`` drum
    instruments carry ``"is_drum": true`` as Suno's own JSON does.
    """
    out = []
    for inst in instruments:
        notes = []
        for s, e, p, v in sorted(inst["notes"], key=lambda n: (n[0], n[2])):
            a, b = _snap(s), _snap(e)
            if b <= a:
                b = a + GRID_S
            notes.append({"pitch": int(p), "start": a, "end": b, "velocity": _snap_v(v)})
        d = {"name": inst["name"], "notes": notes}
        if is_drum_flag and inst.get("is_drum"):
            d["is_drum"] = True
        out.append(d)
    return {
        "code": 200,
        "msg": "success",
        "data": {"taskId": task_id, "successFlag": 1, "midiData": {"state": "complete", "instruments": out}},
    }


def _flicker_rate(rng):
    r = rng.random()
    for w, lo, hi in FLICKER_RATE_MIX:
        if r < w:
            return rng.uniform(lo, hi)
        r -= w
    return FLICKER_RATE_MIX[-1][2]


def make_record(instruments, seed: int, task_id: str, profile: str = "noisy", split_p: float | None = None):
    """The record for clean ``instruments`` (already in record time, offset included).

    profile:
      ``"clean"``  grid, k/127 and one-tick drums only (what a perfect transcriber sends);
      ``"light"``  plus per-stem latency and flat velocities (the API's own habits, for
                   notes that are already a transcription);
      ``"noisy"``  every defect of this module, each stem with its own draw.
    ``split_p``: chance that one pitched stem is split over two tracks that later double
    (default SPLIT_P for "noisy", 0 otherwise).
    Returns ``(record, latency_ms, info)``; ``info`` says what was applied per stem.

    Example (a transcribed song that only needs the API's habits)::

        rec, lat, info = noise.make_record(insts, seed=7, task_id="abc", profile="light", split_p=0.15)
        song["truth"]["latency_ms"] = lat
    """
    rng = random.Random(seed)
    if profile not in ("clean", "light", "noisy"):
        raise ValueError(f"unknown noise profile {profile!r}")
    latency = choose_latency_ms(instruments, rng) if profile != "clean" else {i["name"]: 0.0 for i in instruments}
    info = {"profile": profile, "stems": {}}
    out = []
    for inst in instruments:
        notes = _copy(inst["notes"])
        drum = bool(inst.get("is_drum"))
        bass = "bass" in inst["name"].lower()
        st = {}
        if profile == "noisy":
            if drum:
                notes = drop_notes(notes, rng, MISS_RATE * 1.3)
                notes = add_phantoms(notes, rng, PHANTOM_RATE)
                notes = confuse_drum_keys(notes, rng)
                if rng.random() < KIT_SIMPLIFY_P:
                    notes, st["kit_map"] = simplify_kit(notes, rng)
                notes = jitter_onsets(notes, rng, ONSET_SD_S / 2)
            else:
                st["flicker_rate"] = fr = round(_flicker_rate(rng), 4)
                notes = drop_notes(notes, rng, MISS_RATE)
                notes = octave_errors(notes, rng, OCTAVE_RATE * (2 if bass else 1))
                notes = fragment_sustains(notes, rng)
                notes = add_phantoms(notes, rng, PHANTOM_RATE)
                notes = add_flickers(notes, rng, fr)
                notes = add_same_pitch_overlaps(notes, rng, OVERLAP_RATE)
                r = rng.random()
                if not bass and r < SMEAR_STEM_P:
                    st["hang_rate"] = hr = round(rng.uniform(*SMEAR_RATE), 3)
                    notes = hang_notes(notes, rng, hr, SMEAR_EXTRA_S)
                elif not bass and r < SMEAR_STEM_P + HANG_STEM_P:
                    st["hang_rate"] = hr = round(rng.uniform(*HANG_RATE), 3)
                    notes = hang_notes(notes, rng, hr)
                notes = jitter_onsets(notes, rng, ONSET_SD_S)
        if profile != "clean":
            if rng.random() < (FLAT_VELOCITY_DRUMS_P if drum else FLAT_VELOCITY_P):
                st["flat_velocity"] = k = rng.randint(*FLAT_VALUE_K)
                notes = flat_velocity(notes, k / 127)
            elif profile == "noisy":
                notes = jitter_velocity(notes, rng)
            notes = shift_notes(notes, latency[inst["name"]] / 1000.0)
        if drum:
            notes = drum_one_tick(notes)
        info["stems"][inst["name"]] = st
        out.append(dict(inst, notes=notes))
    if split_p is None:
        split_p = SPLIT_P if profile == "noisy" else 0.0
    if rng.random() < split_p:
        cands = [i for i, inst in enumerate(out) if not inst.get("is_drum") and len(inst["notes"]) >= 8]
        if cands:
            k = rng.choice(cands)
            info["split_doubled"] = out[k]["name"]
            out[k : k + 1] = split_and_double(out[k], rng)
    flag = rng.random() < IS_DRUM_FLAG_P
    return to_record(out, task_id, is_drum_flag=flag), latency, info
