"""Clean stage: Record -> Record with transcription artefacts removed, between normalize and convert.

Suno makes its notes by transcribing separated audio stems, so a record carries the
transcriber's mistakes (PRODUCT.md, "What real transcriptions look like"). Each rule
below removes one kind, works on the note columns with array operations, and counts
every change in ``Record.counts`` (the kinds are in ``model``, shown in the summary):

- doubled tracks: an instrument is folded into an earlier one of the same name when
  its notes double that one's or fill its silences (the transcriber split one stem);
  in a folded track, a same-pitch note that starts within a 16th of the previous one
  while it still sounds is the same note twice: they become one;
- re-detections: a short note that starts within ``REDETECT_WINDOW_S`` of the end of
  the previous note of its pitch, or a note that starts after that one ended but within
  ``REONSET_S`` of its onset, extends that note instead of starting a new one;
- fragments (``merge_gap_ms``, off in the presets): same-pitch notes split by a gap
  shorter than the merge gap become one, unless the later one lines up with the band;
- flickers: melodic notes still shorter than the minimum length are dropped;
- overtone ghosts (both presets, on a record that shows a transcriber's marks, as for
  alignment; ``ghosts`` True on any record, False never): a note an octave, a twelfth
  or two octaves above a note of its part that starts with it (or up to
  ``GHOST_ONSET_S`` before it) and sounds through it is that note's 2nd, 3rd or 4th
  harmonic heard as a note of its own, and is dropped. Partials
  of a note coincide with those of the notes at these intervals, which makes octave and
  harmonic errors the classic confusion of multipitch estimation (Klapuri, "Multiple
  fundamental frequency estimation based on harmonicity and spectral smoothness", IEEE
  Trans. Speech and Audio Processing 11(6), 2003). Basic-pitch (Bittner et al., "A
  lightweight instrument-agnostic model for polyphonic note transcription and
  multipitch estimation", ICASSP 2022) learns from harmonically stacked spectra, but
  its note decoding (``note_creation.output_to_notes_polyphonic``) follows each pitch
  bin on its own: a note made clears the energy of the semitones beside it only, never
  of its harmonics' bins, and the "melodia trick" makes notes of leftover frame energy
  with no onset, so a held note's overtone can become a note that starts late. Each
  interval finds ghosts the others miss: a
  clarinet's 2nd harmonic is weak (a cylindrical bore closed at one end favours the odd
  ones: Suits, "Physics of Music", Michigan Tech), so its ghosts come at the twelfth and
  two octaves with no octave one, and an organ's stops sound the 2nd, 3rd and 4th
  harmonics as ranks of their own (4', 2 2/3', 2': J. Speller, "Organ Pipes"); what each
  interval finds and costs: docs/cleanup-studies.md, "Overtone ghosts: the three intervals". Parts
  whose players sound octaves in one part (keys, mallets, guitars, harp; an unknown
  role too) keep them (``OCTAVE_PROGRAMS``);
- voices (strong preset only): a polyphony cap by role (a part's role, here and for the
  ghosts, is the one placement gives it: ``gm.resolve_part``, a .mid track's program too);
- drums: never touched by the rules above; ``drum_length_ms`` lengthens short hits;
- alignment: ``align`` measures each instrument's latency against the drums (without
  drums, against every other part, then onto the earliest one) and shifts it; the
  strong preset does it for a record that shows a transcriber's marks
  (``shows_transcription``), so a clean record keeps its parts' offsets; the light
  preset never aligns (the overtone ghosts above run in both presets). Latency is read from the first note of
  each onset group (a strum is one onset), on a sample of each part's onsets; without
  drums a pair of parts' delay is a Huber M-estimate over their sampled onsets' differences within
  ``MAX_LATENCY_S``
  (``HUBER_BEND_S``), as a transcribed stem's onsets spread too widely for a peak;
  ``shifts`` move instruments by hand. No note moves before 0 s.

Everything is off unless asked for: ``clean_record`` returns the record itself when
``options.cleaning`` is false. Hands the cleaned Record to ``convert``.

Speed: the note rules call ndarray methods (``a.take(i)``, ``m.nonzero()[0]``,
``a.searchsorted(v)``, ``a.repeat(n)``, ``a.argsort()``) rather than numpy's functions of the
same names (``np.take``, ``np.flatnonzero``, ...): those are Python wrappers around the
methods, a few frames a call, and the clean-up runs after a conversion, with cold caches,
where the wrappers' frames took 4-6% of the light preset's time at 100k notes (timed against
them in one process, stop s10). A part sent out of time order is read through its time order
in the key sort (``_key_order``), so each column is gathered once, as sent; the notes' lengths
are measured once for the re-detections and the flickers (stop s13).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .. import gm, model
from ..defaults import CLEAN_MERGE_GAP_MS, CLEAN_MIN_NOTE_S, GROUP_S
from ..errors import Phrase, check_argument, say
from ..model import Instrument, Record
from ..options import DEFAULT_OPTIONS, ConvertOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatColumn = npt.NDArray[np.float64]
    IntColumn = npt.NDArray[np.int64]
    Mask = npt.NDArray[np.bool_]
    Band = tuple[FloatColumn, FloatColumn]  # every part's onsets, and one part's own, sorted
    Latency = tuple[int, float, tuple[int, ...]]  # a measured part, its latency in s, the parts it is against
    Pair = tuple[int, int, float, int]  # without drums: parts a and b, latency(a) - latency(b) in s, agreeing onsets

# The settings behind a shift, named in the lines ``plan_shifts`` writes (``errors.say``).
SHIFT_FOR = Phrase("the shift for")  # warning: 'the shift for "Bass" names no instrument ...'
AS_ASKED = Phrase("as asked")  # notice: '"Bass" shifted by -18.0 ms (as asked)'
ALIGNED = Phrase("aligned")  # notice: '"Bass" shifted by -18.0 ms (aligned against "Drums")'
ALIGNED_BY_CLEAN = Phrase("aligned by the clean-up")  # the same, when a preset aligned on its own

# Both presets share these (``defaults``); strong adds the voice caps.
MIN_NOTE_S = CLEAN_MIN_NOTE_S  # shorter melodic notes are flickers
MERGE_GAP_S = CLEAN_MERGE_GAP_MS / 1000  # same-pitch gaps below this are fragments
REDETECT_WINDOW_S = 0.100  # a short same-pitch note this soon after a note's end re-detects it
# A note that starts this soon after the previous onset of its pitch, once that one has ended,
# restarts it: the transcriber heard the attack, lost it for a frame or two, and found the note
# again. 50 ms is a 32nd note at 150 BPM, faster than players repeat one pitch except tremolo
# picking. (Overlapping pairs are left alone: in clean scores they are two voices in unison.)
REONSET_S = 0.050
DOUBLE_ONSET_S = 0.125  # a 16th note at Suno's 120 BPM: same-pitch onsets closer are one note
DOUBLE_MATCH_S = 0.012  # a doubled track's copy of a note starts this close (a few ms, on the 1/192 s grid)
FOLD_SHARE = 0.8  # share of a same-named track's notes that must double or fill silences to fold it
TIME_EPSILON_S = 1e-6  # far below the 1/192 s grid, above the float error of the keyed running end
BEAT_TOLERANCE_S = 0.020  # a re-attack this close to a band onset is played, not a fragment

# Overtone ghosts (light, strong): a transcriber hears a strong harmonic of a held note as a
# note of its own. A note is one when a lower note of its part, at the interval of its 2nd,
# 3rd or 4th harmonic, starts with it or before and sounds through it.
# Each interval earns its search: on bench, leaving one out loses more F1 than the 0.2 point the
# stop s9 study allowed a smaller set to lose (docs/cleanup-studies.md, "Overtone ghosts").
GHOST_INTERVALS = (12, 19, 24)  # semitones: the 2nd, 3rd and 4th harmonics (an octave, a twelfth, two octaves)
GHOST_ONSET_S = 0.030  # the fundamental may start this much later than its overtone (basic-pitch's frames are 11.6 ms)
GHOST_END_S = 0.001  # and last as long, to a millisecond: under the 1/192 s grid, over keyed times' float error
# Players who sound octaves in one part: two hands on keys and mallets, a guitar's power chords
# and octave shapes, a harp. Their parts keep such notes.
OCTAVE_PROGRAMS = frozenset([*range(0, 16), *range(24, 32), 46])  # pianos, mallets, guitars, the harp

# Polyphony caps by role (strong preset): (GM programs, most notes at once, low pitch wins).
# A bass plays a root and maybe a fifth; a lead voice sings one line; a guitar has six
# strings; two hands on keys hold ten. Higher notes win except on bass, where the
# transcriber's extra notes are overtones above the real, lowest one.
VOICE_CAPS: tuple[tuple[range, int, bool], ...] = (
    (range(32, 40), 2, True),  # bass
    (range(24, 32), 6, False),  # guitar
    (range(0, 24), 10, False),  # pianos, chromatic percussion, organs
)
VOCAL_WORDS = frozenset({"vocal", "vocals", "voice", "vox", "singer"})
VOCAL_CAP = 1  # a lead vocal: one note at a time

# Alignment (``--align``): onsets against the nearest onset of the reference part.
MAX_LATENCY_S = 0.080  # stems sit up to ~30 ms late in real songs; beyond 80 ms is not latency
LATENCY_BIN_S = 0.001  # histogram resolution
LATENCY_KERNEL_S = 0.010  # half width of the smoothing window: two 1/192 s grid steps (tuned on the corpus)
MIN_ALIGN_ONSETS = 16  # fewer matched onsets than this: the latency is not measured
MIN_ALIGN_SUPPORT = 0.08  # share of an instrument's onsets that must agree on the latency (tuned on the corpus)
# Onsets of a part measured against the reference: a sample this big, spread over the song, puts
# the latency within a millisecond of the whole part's (the median error on the corpus's bench
# split is the same to 0.1 ms), and keeps alignment's cost flat on long records.
MAX_ALIGN_ONSETS = 256
# Without drums every pair of parts is measured and solved together: pairs grow as the square
# of the parts and the solve's matrix as the cube (1,000 parts asked for 4 GB). A song has a
# handful of stems; past this many parts only those with the most onsets are aligned.
MAX_ALIGN_PARTS = 32
# Against the drums, a latency is measured only when its peak stands clear: no other candidate
# (two kernel widths away or more) gathers more than this share of the peak's onsets. Close
# rivals mean the part's onsets sit on two grids against the drums (swung against straight
# eighths, a part that plays between the hits), and the nearest-onset differences do not tell
# which is the latency: a wrong pick moves every note of the part 50-80 ms off (a jazz waltz's
# doubled vibraphone on the bench split, -45 against +25 ms). Without drums each part is
# measured against several others, and the joint solution drops the pairs that disagree.
MAX_RIVAL_SHARE = 0.5
MIN_SHIFT_S = 0.003  # a measured latency under this (about half the 1/192 s grid) is left alone
# Without drums a pair's delay is the Huber M-estimate of location of its nearest-onset
# differences (``onset_delays``, ``robust``), not the histogram's peak: two transcribed stems'
# differences spread into one broad bump (basic-pitch's own delay varies note by note, see
# ``MIN_PAIR_AGREE``), whose peak over a 21 ms window wanders with a few onsets. Differences
# within ``HUBER_BEND_S`` of the estimate weigh fully, farther ones by ``HUBER_BEND_S`` / distance.
HUBER_BEND_S = LATENCY_KERNEL_S  # the kernel's half width, set a priori, not tuned (5-20 ms measure alike)
# Reweighted until no pair's estimate moves by this: a microsecond, far below the 1/192 s grid,
# so the estimate is the converged one (on the bench split's songs a median 12 rounds, at most 64).
HUBER_TOLERANCE_S = 1e-6
HUBER_ROUNDS = 100  # at most this many reweightings (each lowers Huber's objective, so they converge)
# The strong preset aligns a record only when it shows it is a raw transcription: latency comes from
# separation and transcription, which leave their other marks too (real Suno stems: 7.7% of
# notes under 30 ms; the corpus's basic-pitch songs: a median 4% re-detected). A record without
# them (hand-made, a score, already cleaned) keeps its parts' offsets: they are the players' feel.
# 2%: above what played scores show (the most ornamented of the bench split's 462 clean scores,
# written 64th notes at 133 BPM, 2.3%, is still left alone by the dead zone), a quarter of Suno's.
MARK_KINDS = (model.SHORT_DROPPED, model.REDETECT_JOINED, model.DOUBLE_MERGED)
MIN_MARK_SHARE = 0.02
PAIR_RESIDUAL_S = 0.010  # without drums: a pair this far off the joint solution is an outlier (the kernel's half width)
PAIR_ROUNDS = 3  # solve, drop outlying pairs, solve again: at most this many times (``solve_offsets``)
# Without drums a pair may stand on fewer agreeing onsets than a part against the drums
# (``MIN_ALIGN_ONSETS``): a transcribed stem's onsets spread (basic-pitch's own delay varies
# note by note; on the corpus's bench split its interquartile range is 15 ms on violins,
# 32 ms on cellos, 50-60 ms on choirs, where sung attacks are heard late), so two stems' nearest onsets
# agree within the kernel less often than a stem's with the drums. Such a weak pair counts
# only when a second pair confirms the part's latency (``MIN_PAIR_CHECKS``): a chance peak
# on a few onsets is then caught, as the joint solve catches a pair off the others.
MIN_PAIR_AGREE = 10
# Pairs fitting the joint solution (within ``PAIR_RESIDUAL_S``), with parts that are kept, a
# part's latency needs when none of them stands on ``MIN_ALIGN_ONSETS`` agreeing onsets.
MIN_PAIR_CHECKS = 2


@dataclass(frozen=True)
class CleanSettings:
    """The rules to apply, resolved from a preset and the options that override it.

    Times in seconds; 0 or None turns a rule off.
    """

    min_note_s: float = 0.0
    merge_gap_s: float = 0.0
    fold: bool = False
    ghosts: bool = False  # drop overtone ghosts (``overtone_ghosts``)
    ghosts_marked: bool = False  # only when the rules find a transcriber's marks (the presets)
    voice_caps: bool = False
    drum_length_s: float = 0.0
    align: bool = False
    align_marked: bool = False  # align when the record carries a transcriber's marks (the strong preset)
    shifts: tuple[tuple[str, float], ...] = ()  # (name or "", seconds)
    align_by: Phrase = ALIGNED  # why a measured shift was made, as its notice says


def settings_for(options: ConvertOptions) -> CleanSettings:
    """Resolve ``options`` into the rules to apply: the preset, then each option given."""
    preset = options.clean
    min_note_s = MIN_NOTE_S if preset else 0.0
    merge_gap_s = MERGE_GAP_S if preset else 0.0
    if options.min_note_ms is not None:
        min_note_s = options.min_note_ms / 1000
    if options.merge_gap_ms is not None:
        merge_gap_s = options.merge_gap_ms / 1000
    return CleanSettings(
        min_note_s=min_note_s,
        merge_gap_s=merge_gap_s,
        fold=preset is not None,
        ghosts=preset is not None if options.ghosts is None else options.ghosts,
        ghosts_marked=options.ghosts is None,
        voice_caps=preset == "strong",
        drum_length_s=(options.drum_length_ms or 0.0) / 1000,
        align=bool(options.align),
        align_marked=preset == "strong" and options.align is None,
        shifts=tuple((name, ms / 1000) for name, ms in options.shifts),
    )


def clean_record(record: Record, options: ConvertOptions = DEFAULT_OPTIONS) -> Record:
    """Return ``record`` with the clean-up ``options`` ask for applied (seconds in, seconds out).

    Without any clean-up option the record itself comes back, untouched. Every change
    is counted by kind in the new record's ``counts``; alignment and shifts are also
    described in ``notices``. Drum notes are never dropped, merged or moved in pitch.
    A ``--shift NAME`` that matches no instrument is a warning in ``warnings``.
    ``options`` default as ``convert_record``'s (no clean-up: the record comes back).
    """
    check_argument("clean_record", "record", record, Record)
    check_argument("clean_record", "options", options, ConvertOptions)
    if not options.cleaning or record.status != model.COMPLETE:
        return record
    settings = settings_for(options)
    counts = dict(record.counts)
    instruments = list(record.instruments)
    roles = [gm.resolve_instrument_part(i, options.program_overrides) for i in instruments]  # as placement does
    doubled = [False] * len(instruments)
    if settings.fold:
        instruments, roles, doubled = fold_instruments(instruments, roles, counts)
    drums = [role.is_drum for role in roles]
    rhythms: list[Band | None] = [None] * len(instruments)
    latencies: list[Latency] | None = None  # measured once: the fragment rule and the alignment both read them
    if settings.merge_gap_s:
        latencies = measure_latencies(instruments, drums)
        rhythms = list(band_rhythms(instruments, latencies))
    melodic = [k for k, drum in enumerate(drums) if not drum]
    caps = [voice_cap(instruments[k].name, roles[k]) if settings.voice_caps else None for k in melodic]
    parts = [instruments[k] for k in melodic]
    ghostly = [settings.ghosts and not plays_octaves(roles[k]) for k in melodic]
    picked = [rhythms[k] for k in melodic], [doubled[k] for k in melodic], ghostly
    cleaned = list(instruments)
    for k, part in zip(melodic, clean_melodic(parts, settings, counts, caps, *picked)):
        cleaned[k] = part
    owned = [part is not before for part, before in zip(cleaned, instruments)]  # columns the note rules made
    cleaned = [lengthen_drums(i, settings.drum_length_s, counts) if drum else i for i, drum in zip(cleaned, drums)]
    notices: list[str] = []
    warnings: list[str] = []
    if settings.align_marked and shows_transcription(instruments, drums, counts, record.counts):
        settings = replace(settings, align=True, align_by=ALIGNED_BY_CLEAN)
    # Latency is measured on the parts as sent (usually in time order; the cleaned ones are
    # ordered by pitch), as ``band_rhythms`` does: the same parts, the same names.
    if settings.align and latencies is None:
        latencies = measure_latencies(instruments, drums)
    offsets = plan_shifts(instruments, latencies or [], settings, notices, warnings)
    if any(offsets):
        cleaned = [shift_instrument(i, offset, counts, in_place=own) for i, offset, own in zip(cleaned, offsets, owned)]
    return replace(
        record,
        instruments=tuple(cleaned),
        counts={k: v for k, v in counts.items() if v},
        notices=record.notices + tuple(notices),
        warnings=record.warnings + tuple(warnings),
    )


def shows_transcription(
    instruments: Sequence[Instrument], drums: Sequence[bool], counts: dict[str, int], before: dict[str, int]
) -> bool:
    """Return True when the rules found a transcriber's marks in at least ``MIN_MARK_SHARE`` of the melodic notes.

    ``instruments`` and ``drums``: the parts before the note rules ran (after folding);
    ``counts``: the counts after them, ``before`` the record's own. The marks are the
    flickers dropped, re-detections joined and doubled notes merged (``MARK_KINDS``).
    """
    melodic = sum(i.note_count for i, drum in zip(instruments, drums) if not drum)
    return _transcribed(_marks(counts) - _marks(before), melodic)


def _transcribed(new_marks: int, melodic_notes: int) -> bool:
    """The one test of a transcriber's marks: ``new_marks`` in at least ``MIN_MARK_SHARE`` of ``melodic_notes``."""
    return melodic_notes > 0 and new_marks >= MIN_MARK_SHARE * melodic_notes


def fold_instruments(
    instruments: Sequence[Instrument], roles: Sequence[gm.Resolved], counts: dict[str, int]
) -> tuple[list[Instrument], list[gm.Resolved], list[bool]]:
    """Fold a melodic instrument into an earlier one of the same name when it is a doubled track.

    A track is the same instrument spread over two tracks when nearly all its notes
    (``FOLD_SHARE``) either double a note of the earlier track (same pitch, onset within
    ``DOUBLE_MATCH_S``) or sound while the earlier track is silent. Two real parts that
    share a General MIDI name ("Choir Aahs" for every voice, a piano's two hands) play
    at the same time on other pitches, and stay apart; drums (``roles``: each instrument's
    ``gm.resolve_part``) are never folded. Returns the instruments in their order, their
    roles, and for each whether another was folded into it; the melodic rules then merge
    the doubled notes.
    """
    import numpy as np

    names = [None if role.is_drum else gm.name_key(i.name) or i.name for i, role in zip(instruments, roles)]
    melodic = [name for name in names if name]  # nothing folds into drums
    if len(set(melodic)) == len(melodic):  # most records: no name twice, nothing to fold
        return list(instruments), list(roles), [False] * len(instruments)
    hosts: list[Instrument] = []
    host_roles: list[gm.Resolved] = []
    doubled: list[bool] = []
    named: dict[str, list[int]] = {}  # each name's hosts, in order
    for instrument, role, name in zip(instruments, roles, names):
        same = named.get(name) if name else None  # most names are new: no search
        host = next((k for k in same if doubles(hosts[k], instrument)), None) if same else None
        if host is None:
            if name:
                named.setdefault(name, []).append(len(hosts))
            hosts.append(instrument)
            host_roles.append(role)
            doubled.append(False)
            continue
        _count(counts, model.TRACK_FOLDED, 1)
        both = hosts[host], instrument
        columns = [np.concatenate([getattr(m, f) for m in both]) for f in ("start_s", "end_s", "pitch", "velocity")]
        hosts[host] = replace(both[0], start_s=columns[0], end_s=columns[1], pitch=columns[2], velocity=columns[3])
        doubled[host] = True
    return hosts, host_roles, doubled


def doubles(host: Instrument, other: Instrument) -> bool:
    """Return True when ``other``'s notes double ``host``'s or fill its silences (see ``fold_instruments``)."""
    import numpy as np

    if not other.note_count or not host.note_count:
        return True
    keyed = np.sort(host.start_s + host.pitch * PITCH_SPAN_S)
    at = other.start_s + other.pitch * PITCH_SPAN_S
    twin = np.searchsorted(keyed, at + DOUBLE_MATCH_S, side="right") > np.searchsorted(keyed, at - DOUBLE_MATCH_S)
    starts, ends = np.sort(host.start_s), np.sort(host.end_s)
    sounding = np.searchsorted(starts, other.start_s + DOUBLE_MATCH_S, side="right") - np.searchsorted(
        ends, other.start_s - DOUBLE_MATCH_S, side="right"
    )
    return bool(np.mean(twin | (sounding <= 0)) >= FOLD_SHARE)


def clean_melodic(
    parts: Sequence[Instrument],
    settings: CleanSettings,
    counts: dict[str, int],
    caps: Sequence[tuple[int, bool] | None],
    rhythms: Sequence[Band | None],
    doubled: Sequence[bool],
    ghostly: Sequence[bool],
) -> list[Instrument]:
    """Apply the note rules to melodic parts, all in one pass: joins, flickers, overtone ghosts, voice caps.

    The parts' notes are joined into one set of columns, each note keyed by its part and
    pitch, so the array operations run once for the song, not once per part. ``caps``:
    each part's voice cap (strong preset) or None. ``rhythms``: each part's band onsets
    (see ``band_rhythms``) when fragments are merged. ``doubled``: the part was folded
    from several tracks, so its doubled notes are merged. ``ghostly``: the part's overtone
    ghosts are dropped (``overtone_ghosts``). A part's notes come back ordered by pitch,
    then start; the parts themselves when no rule applies to them. The rules mark the
    notes they remove on the joined columns; ``_notes_left`` gathers the notes left.
    """
    import numpy as np

    cleaned = list(parts)
    rules = bool(settings.min_note_s or settings.merge_gap_s)  # the re-detection rules look at every part
    active = [k for k in range(len(parts)) if rules or doubled[k] or ghostly[k] or caps[k] is not None]
    if not active:
        return cleaned
    work = [parts[k] for k in active]
    note_counts = [len(p.start_s) for p in parts]  # note_count, without a property call per part
    sizes = [note_counts[k] for k in active]
    bounds = np.array([0] + sizes).cumsum()  # ordered by part first: each part's notes stay in its slice
    # One column holds the notes' starts as sent, then their ends, then the rules' scratch (a fresh
    # column is page-faulted memory): the clean-up's start and end columns are gathered from it,
    # and join_mask, the flickers and the ghost search use it in turn.
    scratch = np.empty(int(bounds[-1]) + 1)
    joined = np.concatenate([p.start_s for p in work], out=scratch[:-1])
    by_time = _time_orders(joined, bounds)  # the parts out of time order (the API's order): their time orders
    group = group_keys(work, sizes)  # one key per part and pitch: the rules work within it
    order, group = _key_order(group, by_time)  # each note's position as sent, ordered by key, then time
    start = _gather(joined, order)
    end = _gather(np.concatenate([p.end_s for p in work], out=joined), order)
    double = np.repeat([doubled[k] for k in active], sizes) if any(doubled) else False  # doubled parts are active
    on_beat = _on_beat(start, group, bounds, [rhythms[k] for k in active]) if settings.merge_gap_s else None
    marks = _marks(counts)  # before the rules: their own marks decide on the ghosts
    brief = None  # each note shorter than the minimum, measured once for the re-detections and the flickers
    if settings.min_note_s:
        brief = np.subtract(end, start, out=scratch[:-1]) < settings.min_note_s - TIME_EPSILON_S
    alive = join_mask(start, end, group, settings, counts, on_beat, doubled=double, column=scratch, short=brief)
    runs = _extend_runs(end, alive.nonzero()[0])  # each joined run's first note takes the run's latest end
    np.logical_not(alive, out=alive)  # the notes left: the runs' first notes
    if brief is not None:
        brief &= alive
        if len(runs):  # only the runs' first notes have new ends: their lengths measured again
            brief[runs] = np.subtract(end.take(runs), start.take(runs)) < settings.min_note_s - TIME_EPSILON_S
        dropped = int(np.count_nonzero(brief))
        if dropped:
            _count(counts, model.SHORT_DROPPED, dropped)
            alive ^= brief
        del brief  # freed before the ghost search
    if any(ghostly) and (not settings.ghosts_marked or _transcribed(_marks(counts) - marks, sum(note_counts))):
        ghost = overtone_ghosts(start, end, group, [ghostly[k] for k in active], alive=alive, column=scratch)
        dropped = int(np.count_nonzero(ghost))
        if dropped:
            _count(counts, model.GHOST_DROPPED, dropped)
            alive ^= ghost
        del ghost
    del scratch, joined  # its memory is reused by what follows
    for k, instrument, (s, e, p, v) in zip(
        active, work, _notes_left(start, end, group, order, alive, bounds, work), strict=True
    ):
        cap = caps[k]
        if cap is not None:
            keep = within_voice_cap(s, e, p, cap[0], low_wins=cap[1])
            _count(counts, model.VOICE_DROPPED, int(np.count_nonzero(~keep)))
            s, e, p, v = s[keep], e[keep], p[keep], v[keep]
        cleaned[k] = Instrument(
            name=instrument.name,
            start_s=s,
            end_s=e,
            pitch=p,
            velocity=v,
            program=instrument.program,
            is_drum=instrument.is_drum,
        )
    return cleaned


def _notes_left(
    start: FloatColumn,
    end: FloatColumn,
    key: IntColumn,
    order: IntColumn,
    alive: Mask,
    bounds: IntColumn,
    parts: Sequence[Instrument],
) -> Iterator[tuple[FloatColumn, FloatColumn, IntColumn, FloatColumn]]:
    """Yield each part's notes left (``alive``): start, end, pitch and velocity columns.

    The columns are ``clean_melodic``'s, ordered by key (part * 128 + pitch) and start,
    each part's slice at ``bounds``; ``order`` gives each note's position in the parts'
    notes joined as sent (``_key_order``), to gather the velocities. The notes are gathered a block
    of whole parts at a time (``GATHER_BLOCK`` notes, or one larger part) and each part's
    pitch and velocity columns are cut from its block's: fresh memory is page-faulted on
    each call, and no such column of the whole song is made. ``start`` and ``end`` are the
    clean-up's own: each block's notes left move down in them, after the blocks' before
    (the block is read before it is written over), and each part's start and end are
    slices of them, so the output's times take no fresh memory at all.
    """
    import numpy as np

    edges = bounds.tolist()
    first = 0
    done = 0  # the notes left in the blocks before: where this block's go
    while first < len(parts):
        last = first + 1
        while last < len(parts) and edges[last + 1] - edges[first] <= GATHER_BLOCK:
            last += 1
        low, high = edges[first], edges[last]
        kept = alive[low:high].nonzero()[0]
        velocities = np.concatenate([p.velocity for p in parts[first:last]])
        sent = order[low:high].take(kept)  # the notes' positions as sent, within the block
        sent -= low
        left = slice(done, done + len(kept))  # never past ``high``: only the block's notes are written over
        start[left], end[left] = start[low:high].take(kept), end[low:high].take(kept)
        starts, ends = start[left], end[left]  # views: the parts' output times
        pitches = np.bitwise_and(key[low:high].take(kept), 127, dtype=np.int64)  # the key is part * 128 + pitch
        velocity = velocities.take(sent)
        cuts = kept.searchsorted(np.array(edges[first : last + 1]) - low).tolist()
        for n in range(last - first):
            part = slice(cuts[n], cuts[n + 1])
            yield starts[part], ends[part], pitches[part], velocity[part]
        first, done = last, left.stop


def overtone_ghosts(
    start: FloatColumn,
    end: FloatColumn,
    key: IntColumn,
    ghostly: Sequence[bool],
    *,
    alive: Mask,
    column: FloatColumn,
) -> Mask:
    """Return which notes are overtone ghosts of a lower note of their part that sounds through them.

    Notes are ordered by ``key`` (part * 128 + pitch), then start (seconds). A note is a
    ghost when its part holds a note an octave, a twelfth or two octaves below
    (``GHOST_INTERVALS``: the 2nd, 3rd and 4th harmonics) that starts at most
    ``GHOST_ONSET_S`` after it and ends at most ``GHOST_END_S`` before it. ``ghostly``:
    for each part, whether its notes may be ghosts; ``alive``: the notes still there, the
    others are neither ghosts nor sound through one.
    ``column``: a scratch column one longer than the notes, its values overwritten.

    One search per interval (three), never a loop over notes: each note finds the last
    note of the key below that starts in time, and the latest end of that key's notes so
    far says whether one of them sounds through it. Times are keyed by ``PITCH_SPAN_S``
    so one sorted column serves every key. Only the notes whose key may hold ghosts at
    that interval are searched (a ghostly part's keys with notes the interval below, in
    the same part: any other note's search would read a keyed end too low to pass), and
    only among the notes of the keys those searches read; keys come in runs, so a table
    of the runs picks them. The searched notes come in order, so the search goes on from
    where the one before ended (``_count_at_or_before``); they are gathered
    ``GHOST_BLOCK`` at a time (fresh memory is page-faulted). The latest end so far is a
    running maximum (``_running_max``).
    """
    import numpy as np

    count = len(start)
    ghost: Mask = np.zeros(count, dtype=bool)
    if not count:
        return ghost
    heads = (key[1:] != key[:-1]).nonzero()[0]  # each key's run: [lows[n], lows[n + 1])
    heads += 1
    lows = np.concatenate([[0], heads, [count]])
    keys = key[lows[:-1]].astype(np.int64)
    size = (int(keys[-1]) // 128 + 1) * 128
    run_of = np.full(size + 1, -1)  # each key's run, -1 for a key without notes (``size``: none)
    run_of[keys] = np.arange(len(keys))
    allowed = np.asarray(ghostly, dtype=bool).repeat(128)[keys]
    lengths = lows[1:] - lows[:-1]
    intervals = np.array(GHOST_INTERVALS)[:, None]  # a row per interval, all at once (fewer numpy calls)
    under = run_of[np.where(keys % 128 >= intervals, keys - intervals, size)]  # under the interval: the part before
    searching = allowed & (under >= 0)  # each interval's runs searched (a row each)
    targets = np.zeros(len(keys), dtype=bool)  # the runs a search reads: their notes make the sorted column
    targets[under[searching]] = True
    held = _run_notes(targets, lengths, alive)
    if not len(held):
        return ghost
    column = column[: len(held) + 1]
    column[0] = -np.inf  # the held notes' keyed starts after a -inf (``_count_at_or_before``)
    keyed = np.multiply(key.take(held), PITCH_SPAN_S, out=column[1:])
    reach = np.empty(len(held) + 1)  # reach[i]: the latest keyed end among the held notes before i; none before 0
    reach[0] = -np.inf
    end.take(held, out=reach[1:], mode="clip")  # "clip": no buffered copy
    reach[1:] += keyed
    _running_max(reach[1:])  # the keys' offsets make it restart in each key
    for low in range(0, len(held), GHOST_BLOCK):  # no column of the starts taken
        keyed[low : low + GHOST_BLOCK] += start.take(held[low : low + GHOST_BLOCK])
    del held
    ranks = np.arange(1, len(keyed) + 1, dtype=np.float64)
    for interval, runs in zip(GHOST_INTERVALS, searching):
        shift = interval * PITCH_SPAN_S
        mine = _run_notes(runs, lengths, alive)  # one interval's notes at a time, a block of them at once:
        for low in range(0, len(mine), GHOST_BLOCK):  # a lower peak of memory
            some = mine[low : low + GHOST_BLOCK]
            offset = np.multiply(key.take(some), PITCH_SPAN_S)  # each note's key's offset
            probe = start.take(some)
            probe += offset
            probe += GHOST_ONSET_S - shift  # this start, plus the tolerance, in the key below
            reach.take(_count_at_or_before(column, ranks, probe), out=probe)
            probe += shift  # the latest keyed end of the key below, up to this start, in this key
            offset += end.take(some)
            offset -= GHOST_END_S  # each note's keyed end, less the tolerance
            ghost[some.compress(probe >= offset)] = True
    return ghost


def _count_at_or_before(column: FloatColumn, ranks: FloatColumn, values: FloatColumn) -> IntColumn:
    """Return, for each of the sorted ``values``, how many of ``column[1:]`` (sorted) are at or below it.

    ``column[0]`` is -inf; ``ranks`` is 1, 2, ... for ``column[1:]``. The same as
    ``np.searchsorted(column[1:], values, side="right")``, faster on sorted values:
    ``np.interp`` looks for each value next to where it found the one before
    (numpy's ``binary_search_with_guess``) before it bisects, where searchsorted bisects
    the whole column each time. Read through the ranks, its interpolation gives the
    count or, when rounding lifts it to the next rank, one more: one comparison puts
    that right, so the counts are exact.
    """
    import numpy as np

    found = np.interp(values, column[1:], ranks, left=0.0)
    counts: IntColumn = found.astype(np.int64)  # not negative: truncation is the floor
    del found
    counts -= column.take(counts) > values  # rounded up to a note that starts after the value
    return counts


def _run_notes(runs: Mask, lengths: IntColumn, alive: Mask) -> IntColumn:
    """Return the positions of the notes of the ``runs`` picked (of ``lengths`` notes each, in order), alive only."""
    picked = runs.repeat(lengths)
    picked &= alive
    found: IntColumn = picked.nonzero()[0]
    return found


def _marks(counts: dict[str, int]) -> int:
    """Return the transcriber's marks counted so far (``MARK_KINDS``)."""
    return sum(counts.get(kind, 0) for kind in MARK_KINDS)


def _extend_runs(end: FloatColumn, joined: IntColumn) -> IntColumn:
    """Give each run's first note, in place, the latest end of the notes ``joined`` to it.

    ``joined``: the positions of the notes that join the note before them (ascending);
    a run is a note and the joined notes right after it. Most runs are one note, so only
    the few joined notes are folded into their run's note, rather than a reduction per run.
    Returns the position of each joined note's run's first note (the notes whose ends may
    have grown; a run of several joined notes repeats it).
    """
    import numpy as np

    if not len(joined):
        return joined
    starts = np.ones(len(joined), dtype=bool)  # a joined note right after a kept one starts a run
    np.not_equal(joined[1:] - joined[:-1], 1, out=starts[1:])
    run = np.where(starts, joined, 0)  # each joined note's run: the position of its first joined note
    np.maximum.accumulate(run, out=run)
    run -= 1  # the run's note, just before its first joined note (a note never joins the first)
    np.maximum.at(end, run, end[joined])
    return run


def _on_beat(start: FloatColumn, group: IntColumn, bounds: IntColumn, rhythms: Sequence[Band | None]) -> Mask:
    """``lines_up`` for each part's slice of the joined columns."""
    import numpy as np

    found = [
        lines_up(start[bounds[k] : bounds[k + 1]], group[bounds[k] : bounds[k + 1]], band)
        for k, band in enumerate(rhythms)
    ]
    joined: Mask = np.concatenate(found) if found else np.zeros(0, dtype=bool)
    return joined


def group_keys(parts: Sequence[Instrument], sizes: Sequence[int]) -> IntColumn:
    """Return each note's key of part and pitch (part * 128 + pitch), the parts' notes joined.

    The keys are 16-bit integers when they fit (fewer than 256 parts): numpy sorts those
    by radix, in linear time, and the column is a quarter of the size of 64-bit keys
    (typed as IntColumn all the same: every use reads them as integers).
    """
    import numpy as np

    kind = np.int16 if len(parts) < 1 << 8 else np.int64
    group: IntColumn = np.concatenate([p.pitch for p in parts], dtype=kind, casting="unsafe")  # as astype
    group += np.repeat(np.arange(len(parts), dtype=kind) * 128, sizes)
    return group


def _key_order(group: IntColumn, moved: Sequence[tuple[int, IntColumn]] = ()) -> tuple[IntColumn, IntColumn]:
    """Return the notes' positions ordered by key ``group`` (``group_keys``), then time, and the keys in that order.

    ``moved``: (first position, stable time order) of each part sent out of time order
    (``_time_orders``); the other parts' notes are in time order as sent, so among the
    notes of one key a stable order of the keys is their time order. A moved part's
    notes are ordered by key and by their places in the part's time order (the order's
    inverse), and those places are then read back through the time order into positions
    as sent: the columns are gathered once, as sent, and no column is put in time order
    first. A part's notes keep their slice of the order (keys are part * 128 + pitch).

    When each key and its note's position fit in one unsigned 32-bit integer together (16-bit
    keys, which are under 2**15: fewer than 256 parts; fewer than 2**17 notes), they are packed
    so and sorted as values: the packed values are distinct, so any sort puts them in the stable
    order, and numpy's default sort of 32-bit integers is vectorised (x86-simd-sort on AVX-512
    or AVX2). On the 100k-note bench records (48-61k melodic notes) it takes 0.11-0.14 ms, where
    the radix argsort of the 16-bit keys takes 0.12-0.49 ms, and the packed order comes as
    32-bit positions, half the memory of the argsort's. The fallback, for 2**17 notes or 256
    parts and more, is the stable argsort (radix on 16-bit keys, else timsort) of the keys put
    in time order, its order 64-bit.
    """
    import numpy as np

    count = len(group)
    unsigned = group.view(np.uint16) if group.dtype == np.int16 else None  # the keys are not negative
    if unsigned is None or count >= 1 << POSITION_BITS:  # as unsigned keys the radix sort skips the sign bit
        timed = group.copy() if moved else group
        for head, by_time in moved:  # the keys in time order: the stable argsort keeps it within a key
            timed[head : head + len(by_time)] = group[head : head + len(by_time)].take(by_time)
        by_key: IntColumn = (timed if unsigned is None else timed.view(np.uint16)).argsort(kind="stable")
        keys = timed.take(by_key)
    else:
        packed = np.left_shift(unsigned, POSITION_BITS, dtype=np.uint32)
        places = np.arange(count, dtype=np.uint32)  # each note's place in its part's time order
        for head, by_time in moved:
            places[head : head + len(by_time)][by_time] = places[head : head + len(by_time)].copy()
        packed |= places
        del places
        packed.sort()
        keys = np.right_shift(packed, POSITION_BITS, out=np.empty(count, np.int16), casting="unsafe")
        by_key = np.bitwise_and(packed, (1 << POSITION_BITS) - 1, out=packed)  # 32-bit: see ``_gather``
    for head, by_time in moved:  # a moved part's places in time order, read back as positions sent
        part = by_key[head : head + len(by_time)]
        part -= head
        np.add(by_time.take(part), head, out=part, casting="unsafe")
    return by_key, keys


def _gather(values: FloatColumn, order: IntColumn) -> FloatColumn:
    """Return ``values.take(order)``, taken ``INDEX_BLOCK`` positions at a time.

    ``take`` makes a 64-bit copy of 32-bit positions (``_key_order``'s): a block's is small,
    where the whole column's would be fresh, page-faulted memory.
    """
    import numpy as np

    found: FloatColumn = np.empty(len(order))
    for low in range(0, len(order), INDEX_BLOCK):
        high = low + INDEX_BLOCK
        values.take(order[low:high], out=found[low:high], mode="clip")  # "clip": no buffered copy
    return found


def _time_orders(start: FloatColumn, bounds: IntColumn) -> list[tuple[int, IntColumn]]:
    """Return (first position, stable time order) of each part whose notes in ``start`` are out of time order.

    ``start``: the parts' starts joined, ``bounds`` each part's slice. The API sends notes
    in time order; a folded track is two runs. One comparison over the joined column
    finds the parts out of order (a part's first note follows no step), and only those
    are sorted (stable); ``_key_order`` reads their notes through the orders.
    """
    import numpy as np

    if not len(start):
        return []
    rising = np.empty(len(start), dtype=bool)
    np.greater_equal(start[1:], start[:-1], out=rising[1:])  # NaN is out of order, as before
    heads = bounds[:-1][bounds[:-1] < bounds[1:]]  # the non-empty parts' first notes
    rising[heads] = True
    if rising.all():
        return []
    moved = []
    for k in (~np.logical_and.reduceat(rising, heads)).nonzero()[0].tolist():
        head = int(heads[k])
        tail = int(bounds[bounds.searchsorted(head, side="right")])  # the part's end
        moved.append((head, start[head:tail].argsort(kind="stable")))  # a few sorted runs: merged in linear time
    return moved


def join_mask(
    start: FloatColumn,
    end: FloatColumn,
    pitch: IntColumn,
    settings: CleanSettings,
    counts: dict[str, int],
    on_beat: Mask | None = None,
    *,
    doubled: Mask | bool = False,
    column: FloatColumn,
    short: Mask | None = None,
) -> Mask:
    """Return which notes join the note before them (notes ordered by ``pitch``, then start).

    ``pitch`` may be any integer key that notes must share to join (``clean_melodic``
    keys them by part and pitch). ``column``: a scratch column one longer than the notes.
    ``short``: which notes are shorter than ``settings.min_note_s``, when the caller
    measured it (read, not changed); else measured here.

    A note joins when it has the same pitch as the one before and is, in this order:
    where ``doubled`` (an instrument folded from several), a double (starting within a
    16th of the previous onset while that note still sounds); a re-detection (short,
    starting within ``REDETECT_WINDOW_S`` of the running end, or starting at or after
    the running end but within ``REONSET_S`` of the previous onset); a fragment (a gap
    shorter than the merge gap, and ``on_beat`` false: no band onset lines up with it).
    Counts each kind; a note that is several counts once, as the first that applies in
    that order.
    """
    import numpy as np

    count = len(start)
    same = np.empty(count, dtype=bool)
    same[:1] = False
    np.equal(pitch[1:], pitch[:-1], out=same[1:])
    # One float column serves every step below (a fresh one is page-faulted memory): the
    # onsets' steps and the notes' lengths are read into flags first, then it holds the gaps.
    steps = column[:count]  # each onset's step from the one before
    steps[:1] = np.inf
    np.subtract(start[1:], start[:-1], out=steps[1:])
    close = np.less(steps, DOUBLE_ONSET_S) if doubled is not False else None  # False: no part is doubled
    restarted = np.less(steps, REONSET_S) if settings.min_note_s else None  # a blip, then the note itself
    brief = None
    if settings.min_note_s:
        brief = (
            short.copy()
            if short is not None
            else np.less(np.subtract(end, start, out=steps), settings.min_note_s - TIME_EPSILON_S)
        )
    gap = column[:count]
    gap[:1] = np.inf  # the first note follows none
    np.subtract(start[1:], end[:-1], out=gap[1:])
    flags = np.less(gap, 0)
    flags &= same
    if flags.any():  # a note inside an earlier one: measure from the latest end so far
        _gaps_after_running_end(start, end, pitch, column)
    joined: Mask | None = None  # None: no rule joined a note yet
    if close is not None:  # first: a doubled track's copy is the most specific explanation
        double = same & doubled & (gap < -TIME_EPSILON_S) & close
        joined = _join(joined, double, model.DOUBLE_MERGED, counts)
    if brief is not None and restarted is not None:
        restarted &= np.greater_equal(gap, -TIME_EPSILON_S, out=flags)
        brief &= np.less(gap, REDETECT_WINDOW_S, out=flags)
        brief |= restarted  # re-detected
        brief &= same
        joined = _join(joined, brief, model.REDETECT_JOINED, counts)
    if settings.merge_gap_s:
        joined = _join(joined, same & _fragments(gap, settings.merge_gap_s, on_beat), model.FRAGMENT_MERGED, counts)
    return joined if joined is not None else np.zeros(count, dtype=bool)


def _gaps_after_running_end(start: FloatColumn, end: FloatColumn, key: IntColumn, column: FloatColumn) -> None:
    """Put in ``column[1:-1]`` each note's gap after the latest end so far within its key (from the second note on).

    Notes are ordered by key, then start; ``column`` is one longer than them. Keying by
    ``PITCH_SPAN_S`` makes one running maximum serve every key. The running ends are
    made in ``column[1:]`` and each gap replaces the running end of the note before it,
    so one column does it all (a fresh one is page-faulted memory that costs about as
    much as the arithmetic); the keys' offsets are taken back out a block at a time.
    """
    import numpy as np

    running = np.multiply(key, PITCH_SPAN_S, out=column[1:])
    running += end
    _running_max(running)
    offset = np.empty(min(len(key), OFFSET_BLOCK))
    for low in range(0, len(key), OFFSET_BLOCK):
        high = min(low + OFFSET_BLOCK, len(key))
        running[low:high] -= np.multiply(key[low:high], PITCH_SPAN_S, out=offset[: high - low])
    np.subtract(start[1:], running[:-1], out=running[:-1])


def _running_max(values: FloatColumn) -> None:
    """Replace ``values`` in place by their running maximum, as ``np.maximum.accumulate`` makes it.

    The accumulation is a scalar loop (each step waits for the one before), several times
    the cost of a vectorised pass. Between two descents (a value above the next one) the
    values only rise, so each value's running maximum is itself or the running maximum of
    the descents' tops before it: only those few tops are accumulated, and spread back
    over the stretches after them with ``repeat``, a block of ``RUNNING_BLOCK`` values at a
    time (a fresh column as long as ``values`` would be page-faulted memory). The same
    values, exactly, for finite ones (note times are): a maximum picks one of its inputs.
    """
    import numpy as np

    tops = (values[:-1] > values[1:]).nonzero()[0]  # each descent's top: the last value of a rising stretch
    if not len(tops):
        return
    level = np.maximum.accumulate(values.take(tops))  # for the stretch after each top, up to the next top
    firsts = tops + 1  # each such stretch's first value
    for low in range(int(firsts[0]), len(values), RUNNING_BLOCK):
        high = min(low + RUNNING_BLOCK, len(values))
        first = int(firsts.searchsorted(low, side="right")) - 1  # the stretch that holds ``low``
        after = int(firsts.searchsorted(high))  # the stretches that start before ``high``
        cuts = np.empty(after - first + 1, dtype=np.int64)  # their bounds within the block
        cuts[1:-1] = firsts[first + 1 : after]
        cuts[0], cuts[-1] = low, high
        block = values[low:high]
        np.maximum(block, level[first:after].repeat(cuts[1:] - cuts[:-1]), out=block)


def _join(joined: Mask | None, found: Mask, kind: str, counts: dict[str, int]) -> Mask:
    """Return ``joined`` with ``found`` added in place, counting only notes no earlier rule joined.

    ``joined`` None: no rule joined a note before, and ``found`` itself is returned.
    """
    import numpy as np

    if joined is not None:
        found &= ~joined
    _count(counts, kind, int(np.count_nonzero(found)))
    if joined is None:
        return found
    joined |= found
    return joined


def _fragments(gap: FloatColumn, merge_gap_s: float, on_beat: Mask | None) -> Mask:
    found: Mask = (gap >= -TIME_EPSILON_S) & (gap < merge_gap_s - TIME_EPSILON_S)
    return found & ~on_beat if on_beat is not None else found


# Above any note time (normalize refuses times past 24 h): key * span + time orders by both.
PITCH_SPAN_S = 2 * 86_400.0
POSITION_BITS = 17  # a note's position in a packed sort key (``_key_order``): the low bits, under a 15-bit key
# Block sizes. Memory freshly mapped for a large column is page-faulted on first use on
# every call (at 100k notes, with the conversion between calls as bench_clean times it, 200-450
# faults a call before the scratch column and the in-place notes left, 0-230 after; about 2 µs
# each: a 464 kB column's 71 faults added 0.13 ms to its step), so the stages below make their
# temporary columns a block at a time, each under 128 kiB: glibc's initial mmap threshold,
# below which freed memory is reused from the heap (the threshold can rise at run time).
OFFSET_BLOCK = 8192  # notes whose keyed offsets are made at once: 64 kB, a block that stays in cache
GHOST_BLOCK = 8192  # notes an overtone-ghost search gathers at once (a few 64 kB columns)
RUNNING_BLOCK = 16_000  # values a running maximum spreads at once: 125 kB
GATHER_BLOCK = 15_000  # notes left gathered at once, whole parts (columns under 128 kiB)
INDEX_BLOCK = 8192  # 32-bit positions a take converts to 64-bit ones at once: 64 kB


def band_rhythms(instruments: Sequence[Instrument], latencies: Sequence[Latency]) -> list[Band]:
    """Return, per instrument, the onsets of the whole band and its own, in its time.

    Each part's latency against the reference (``latencies``, from ``measure_latencies``)
    is taken out first, so a stem 30 ms late still lines up with the drums it plays
    with. An onset of another part is near a time when the band has more onsets near it
    than the part.
    """
    import numpy as np

    latency = [0.0] * len(instruments)
    for index, latency_s, _ in latencies:  # relative latencies: the reference cancels
        latency[index] = latency_s
    onsets = [np.unique(i.start_s) - lat for i, lat in zip(instruments, latency)]
    band = np.sort(np.concatenate(onsets)) if onsets else np.empty(0)
    return [(band + lat, own + lat) for own, lat in zip(onsets, latency)]


def lines_up(start: FloatColumn, pitch: IntColumn, band: Band | None) -> Mask:
    """Return which onsets have an onset of another part, or one of their own other pitches, near them.

    Notes are ordered by pitch, then start. "Near" is within ``BEAT_TOLERANCE_S``.
    """
    import numpy as np

    near = np.zeros(len(start), dtype=bool)
    if band is not None:
        everyone, own = band
        near |= _count_within(everyone, start) > _count_within(own, start)
    own_all = _count_within(np.sort(start), start)
    keyed = start + pitch * PITCH_SPAN_S  # ascending already: ordered by pitch, then start
    own_same = _count_within(keyed, keyed)
    near |= own_all > own_same
    return near


def _count_within(sorted_times: FloatColumn, at: FloatColumn) -> IntColumn:
    import numpy as np

    upper = np.searchsorted(sorted_times, at + BEAT_TOLERANCE_S, side="right")
    lower = np.searchsorted(sorted_times, at - BEAT_TOLERANCE_S, side="left")
    counted: IntColumn = (upper - lower).astype(np.int64)
    return counted


def plays_octaves(role: gm.Resolved) -> bool:
    """Return True when the player of an instrument sounds octaves in one part (``OCTAVE_PROGRAMS``).

    ``role``: the instrument's ``gm.resolve_part``, as placement decides it. An instrument
    of no known role counts as one: its octaves may be played.
    """
    return role.how == "unknown" or role.program in OCTAVE_PROGRAMS


def voice_cap(name: str, role: gm.Resolved) -> tuple[int, bool] | None:
    """Return (most notes at once, low pitch wins) for an instrument's role, or None (no cap).

    A vocal name (``VOCAL_WORDS``) is a lead voice; else ``role`` (``gm.resolve_part``) decides.
    """
    words = set(gm.name_key(w) for w in name.replace("(", " ").replace(")", " ").split())
    if words & VOCAL_WORDS:
        return VOCAL_CAP, False
    if role.how == "unknown":
        return None
    for programs, cap, low_wins in VOICE_CAPS:
        if role.program in programs:
            return cap, low_wins
    return None


def within_voice_cap(start: FloatColumn, end: FloatColumn, pitch: IntColumn, cap: int, *, low_wins: bool) -> Mask:
    """Return which notes to keep so that at each onset at most ``cap`` notes sound.

    A note is dropped when ``cap`` notes of higher priority (higher pitch, or lower with
    ``low_wins``) sound at its onset (started at or before it, not yet ended). Dropped
    notes still count against later ones: the cap is judged on the input, one pass.
    Counting loops over the distinct pitches (at most 128), never over notes.
    """
    import numpy as np

    keep = np.ones(len(start), dtype=bool)
    if len(start) <= cap:
        return keep
    # Only a note with at least ``cap`` others sounding at its onset can be dropped.
    sounding = np.searchsorted(np.sort(start), start, side="right") - np.searchsorted(np.sort(end), start, side="right")
    crowded = np.flatnonzero(sounding > cap)
    if not len(crowded):
        return keep
    rank = -pitch if low_wins else pitch
    by_rank = np.argsort(rank[crowded], kind="stable")  # lowest priority first
    crowded = crowded[by_rank]
    at, their_rank = start[crowded], rank[crowded]
    # Each priority level's starts and ends, sorted, as slices of two orderings.
    levels = np.unique(rank)
    start_order = np.lexsort((start, rank))
    end_order = np.lexsort((end, rank))
    bounds = np.searchsorted(rank[start_order], levels, side="left")
    bounds = np.append(bounds, len(rank))
    above = np.zeros(len(crowded), dtype=np.int64)  # notes of higher priority sounding at each onset
    for k, level in enumerate(levels):
        below = int(np.searchsorted(their_rank, level, side="left"))  # the crowded notes this level outranks
        if not below:
            continue
        starts = start[start_order[bounds[k] : bounds[k + 1]]]
        ends = end[end_order[bounds[k] : bounds[k + 1]]]
        above[:below] += np.searchsorted(starts, at[:below], side="right") - np.searchsorted(
            ends, at[:below], side="right"
        )
    keep[crowded] = above < cap
    return keep


def lengthen_drums(instrument: Instrument, length_s: float, counts: dict[str, int]) -> Instrument:
    """Make drum hits shorter than ``length_s`` last that long (0: leave them as they are)."""
    import numpy as np

    if not length_s:
        return instrument
    short = (instrument.end_s - instrument.start_s) < length_s - TIME_EPSILON_S
    if not short.any():
        return instrument
    _count(counts, model.DRUM_LENGTHENED, int(short.sum()))
    return replace(instrument, end_s=np.where(short, instrument.start_s + length_s, instrument.end_s))


def plan_shifts(
    instruments: Sequence[Instrument],
    latencies: Sequence[Latency],
    settings: CleanSettings,
    notices: list[str],
    warnings: list[str],
) -> list[float]:
    """Return each instrument's shift in seconds: measured (``align``: ``latencies``) plus given by hand.

    Appends what was shifted to ``notices`` and a shift naming no instrument to ``warnings``.
    """
    offsets = [0.0] * len(instruments)
    names = [inst.name for inst in instruments]
    if settings.align:
        for index, latency_s, reference in latencies:
            offsets[index] -= latency_s
            against = part_label(names, reference[:1])
            measured = f"{part_label(names, [index])} shifted by {-latency_s * 1000:+.1f} ms ("
            notices.append(say(measured, settings.align_by, f" against {against})"))
    for name, shift_s in settings.shifts:
        hits = [i for i, inst in enumerate(instruments) if not name or gm.name_key(inst.name) == gm.name_key(name)]
        if not hits:
            unknown = f" {model.show_value(name, 60)} names no instrument, so nothing shifted for it "
            warnings.append(say(SHIFT_FOR, unknown + gm.names_none(name, names)))
        for index in hits:
            offsets[index] += shift_s
        if hits:
            who = part_label(names, hits) if name else "every instrument"
            notices.append(say(f"{who} shifted by {shift_s * 1000:+.1f} ms (", AS_ASKED, ")"))
    return offsets


def part_label(names: Sequence[str], indexes: Sequence[int]) -> str:
    """Return how a message names the instruments at ``indexes`` (all of one name): the name, quoted.

    When another instrument has the same name, the numbers they are listed by (``info``'s #
    column, normalize's "instrument N") follow: '"Violin" (instrument 2)'.
    """
    name = names[indexes[0]]
    shown = model.show_value(name, 60)
    if names.count(name) == len(indexes):
        return shown
    numbers = ", ".join(str(i + 1) for i in indexes)
    return f"{shown} (instrument{'s' * (len(indexes) > 1)} {numbers})"


def measure_latencies(instruments: Sequence[Instrument], drums: Sequence[bool]) -> list[Latency]:
    """Return (instrument index, latency in seconds, reference parts) for each measured part.

    With drums, the reference is the drums (all drum parts together): for every other
    part, each onset is compared with the nearest drum onset, and the latency is the
    peak of those differences (``onset_delays``). Without drums no part is a trustworthy
    clock (each pitched stem is late by its own amount), so every pair of parts is
    compared the same way and the latencies are solved from all the pairs at once
    (``band_latencies``), relative to the part that sits earliest. A part is left alone
    when too few onsets agree.
    """
    import numpy as np

    drum_parts = tuple(k for k, d in enumerate(drums) if d and instruments[k].note_count)
    if not drum_parts:  # every part's onsets and their sample, from one scan
        times, starts, edges = _group_starts([i.start_s for i in instruments])
        sample, taken = _sample(times, starts, edges, MAX_ALIGN_ONSETS)
        groups = times.compress(starts)
        bounds = np.searchsorted(np.flatnonzero(starts), edges).tolist()
        cuts = np.cumsum(taken).tolist()
        firsts = [groups[bounds[k] : bounds[k + 1]] for k in range(len(instruments))]
        return band_latencies(firsts, [sample[cuts[k] - taken[k] : cuts[k]] for k in range(len(instruments))])
    kit = [instruments[k].start_s for k in drum_parts]  # one kit: a kick and a hat at once are one onset
    reference = first_onsets(kit[0] if len(kit) == 1 else np.concatenate(kit))
    if len(reference) < MIN_ALIGN_ONSETS:
        return []
    parts = [k for k, i in enumerate(instruments) if k not in drum_parts and i.note_count >= MIN_ALIGN_ONSETS]
    sampled, sizes = sampled_onsets([instruments[k].start_s for k in parts], MAX_ALIGN_ONSETS)
    delays = onset_delays(sampled, sizes, [0] * len(parts), [reference], max_rival=MAX_RIVAL_SHARE)
    return [
        (index, delay[0], drum_parts)
        for index, delay, size in zip(parts, delays, sizes.tolist())
        if delay is not None and delay[1] >= MIN_ALIGN_SUPPORT * size and abs(delay[0]) >= MIN_SHIFT_S
    ]


def first_onsets(times: FloatColumn) -> FloatColumn:
    """Return the onsets that start a group: more than ``GROUP_S`` after the onset before them.

    ``times``: seconds, sorted here when they are not (the API sends notes in time order;
    a folded track is two runs). A strummed or rolled chord is one event, on its first
    note: the later strings are the strum, not latency (and a repeated time is no new
    onset). ``sampled_onsets`` samples them, part by part.
    """
    joined, starts, _ = _group_starts([times])
    found: FloatColumn = joined.compress(starts)  # compress, not a mask index: faster on a dense mask
    return found


def sampled_onsets(parts: Sequence[FloatColumn], most: int) -> tuple[FloatColumn, IntColumn]:
    """Return at most ``most`` of each part's ``first_onsets``: the samples joined, and each one's length.

    The parts' onsets are scanned as one column (``_group_starts``), so the cost is a few
    passes over the song's notes, not a dozen array operations per part.
    """
    return _sample(*_group_starts(parts), most)


def _sample(times: FloatColumn, starts: Mask, edges: IntColumn, most: int) -> tuple[FloatColumn, IntColumn]:
    """``sampled_onsets`` from ``_group_starts``' scan: each part's group starts, at most ``most``, evenly spread.

    Positions ``i * (count - 1) // (most - 1)``, first and last included, where a part has
    more: the latency is a typical value, so a few hundred onsets spread over the song
    measure it within a millisecond, and the cost stays flat on long records.
    """
    import numpy as np

    firsts = np.flatnonzero(starts)
    counts = np.diff(np.searchsorted(firsts, edges))
    taken = np.minimum(counts, most)
    into = np.repeat(np.cumsum(counts) - counts, taken)  # each sampled onset's part, as its first group's position
    within = np.arange(int(taken.sum())) - np.repeat(np.cumsum(taken) - taken, taken)
    count = np.repeat(counts, taken)
    spread = np.where(count > most, within * (count - 1) // max(most - 1, 1), within)
    sample: FloatColumn = times[firsts[into + spread]]
    return sample, taken


def _group_starts(parts: Sequence[FloatColumn]) -> tuple[FloatColumn, Mask, IntColumn]:
    """Return the parts' onsets joined (each part in time order), which of them start a group, each part's edges.

    The one scan of ``first_onsets`` and ``sampled_onsets``: an onset starts a group when it
    comes more than ``GROUP_S`` after the one before it in its part (a part's first note always
    does). A part out of time order (a folded track is two runs) is sorted in the joined copy,
    so the caller's column is left as sent.
    """
    import numpy as np

    sizes = np.fromiter((len(t) for t in parts), dtype=np.int64, count=len(parts))
    edges = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(sizes, out=edges[1:])
    times = np.concatenate(parts) if parts else np.zeros(0)
    step = np.empty(len(times))
    np.subtract(times[1:], times[:-1], out=step[1:])
    heads, lengths = edges[:-1][sizes > 0], sizes[sizes > 0]  # each part's first note: no step leads to it
    step[heads] = np.inf
    if len(step) and not step.min() >= 0:  # one reduction, no mask (NaN too: sorted)
        for k in np.flatnonzero(~(np.minimum.reduceat(step, heads) >= 0)).tolist():
            part = times[heads[k] : heads[k] + lengths[k]]  # the joined copy's: sorted in place
            part.sort(kind="stable")  # a few sorted runs: merged in linear time
            np.subtract(part[1:], part[:-1], out=step[heads[k] + 1 : heads[k] + lengths[k]])
    starts: Mask = step > GROUP_S
    return times, starts, edges


def band_latencies(onsets: Sequence[FloatColumn], sampled: Sequence[FloatColumn]) -> list[Latency]:
    """Return (index, latency s, (reference,)) for a song without drums, from every pair of parts.

    ``onsets``: each part's onsets (``first_onsets``), sorted (seconds); ``sampled``: a
    sample of them (``MAX_ALIGN_ONSETS``), measured against the other part's. Each pair's delay is the
    Huber M-estimate of location of its nearest-onset differences (``onset_delays`` with
    ``robust``, ``HUBER_BEND_S``), kept when enough onsets agree with the differences' peak
    (``MIN_ALIGN_SUPPORT`` of the sparser part, and ``MIN_PAIR_AGREE``). The pairs make an over-determined
    system, latency(a) - latency(b) = delay(a, b), as in Kammerl et al., "Temporal
    synchronization of multiple audio signals" (ICASSP 2014), who solve pairwise
    cross-correlation offsets of many recordings jointly; here by weighted least
    squares (``solve_offsets``), anchored on the part with the most distinct onsets.
    The reference is then the part that sits earliest: transcription and separation
    only ever delay a stem (PRODUCT.md: bass 18 ms, keyboard 28 ms late against the
    drums), so the earliest part is the nearest to the music's own timing, as the drums
    are when there are drums (``tempo`` reasons the same way for its beats). Parts no
    kept pair links to the others are left alone, and so is a part whose latency only
    weak pairs (under ``MIN_ALIGN_ONSETS`` agreeing onsets) give, unless two of them agree
    with it (``MIN_PAIR_CHECKS``, ``confirmed_parts``). A part left alone takes its pairs
    with it, as does a pair off the solution (also one ``solve_offsets`` still finds off
    when its ``PAIR_ROUNDS`` run out), and the rest is solved again, until every pair
    left fits the solution and joins two parts that are kept: a part whose second pair
    was with a part left alone is left alone too (that pair fitted whatever its latency).
    The latencies returned are so solved from exactly the pairs that confirm them. Each
    round but the last drops a pair, so the rounds end (on the bench split, after three
    solves at most). Kammerl et al. draw their robustness to pairwise outliers from the
    same redundancy (their abstract: graph solutions of the over-determined system); here
    it also decides which weak pairs to trust. Only the ``MAX_ALIGN_PARTS`` parts with the
    most onsets take part: the pairs grow as the square of the parts.
    """
    import numpy as np

    parts = [k for k, times in enumerate(onsets) if len(times) >= MIN_ALIGN_ONSETS]
    if len(parts) > MAX_ALIGN_PARTS:  # the others are left alone, as a part with too few onsets is
        parts = sorted(sorted(parts, key=lambda k: -len(onsets[k]))[:MAX_ALIGN_PARTS])
    if len(parts) < 2:
        return []
    anchor = max(parts, key=lambda k: len(onsets[k]))
    both = [(a, b) for n, a in enumerate(parts) for b in parts[n + 1 :]]
    rows = [sampled[a] for a, _ in both]
    sizes = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    joined = np.concatenate(rows) if rows else np.zeros(0)
    delays = onset_delays(joined, sizes, [b for _, b in both], onsets, min_agree=MIN_PAIR_AGREE, robust=True)
    pairs = [
        (a, b, found[0], found[1])
        for (a, b), found in zip(both, delays)
        if found is not None and found[1] >= MIN_ALIGN_SUPPORT * min(len(sampled[a]), len(onsets[b]))
    ]
    kept = pairs
    while True:  # each round but the last drops a pair, so the rounds end
        solved, fits = solve_offsets(anchor, kept)
        members = confirmed_parts(solved, kept, fits) | {anchor}
        fitting = [p for p, fit in zip(kept, fits.tolist()) if fit and p[0] in members and p[1] in members]
        if len(fitting) == len(kept):
            break
        kept = fitting  # solved again without the pairs off the solution and the parts left unconfirmed
    if not solved:
        return []
    solved[anchor] = 0.0
    earliest = min(solved, key=lambda k: solved[k])
    base = solved.pop(earliest)
    found_all = [(k, latency - base, (earliest,)) for k, latency in sorted(solved.items())]
    return [row for row in found_all if abs(row[1]) >= MIN_SHIFT_S]


def solve_offsets(anchor: int, pairs: Sequence[Pair]) -> tuple[dict[int, float], Mask]:
    """Solve latency(a) - latency(b) = delay for (a, b, delay s, agreeing onsets) pairs; anchor at 0.

    Weighted least squares, each pair weighted by the square root of its agreeing onsets
    (the standard error of a mean falls so). A pair that disagrees with the solution by
    more than ``PAIR_RESIDUAL_S`` is an outlier (a peak on the wrong onsets) and is
    dropped, then the rest solved again, at most ``PAIR_ROUNDS`` times. Returns the
    latency of every part linked to the anchor through the pairs of the last solve (the
    anchor excluded), and which pairs fit it: those of the last solve within
    ``PAIR_RESIDUAL_S`` of it. When the rounds run out with pairs still off, the last
    solution is returned as solved, those pairs pulling it included, and they do not
    fit: ``band_latencies`` then solves again without them.
    """
    import numpy as np

    latency: dict[int, float] = {}
    fits = np.zeros(len(pairs), dtype=bool)
    if not pairs:
        return latency, fits
    first, second = (np.array([p[k] for p in pairs], dtype=np.int64) for k in (0, 1))
    delay = np.array([p[2] for p in pairs])
    weight = np.sqrt(np.array([p[3] for p in pairs], dtype=np.float64))
    keep = np.ones(len(pairs), dtype=bool)
    for _ in range(PAIR_ROUNDS):
        linked = _linked(anchor, first[keep], second[keep])
        if not linked:  # every pair of the anchor's was off
            return {}, np.zeros(len(pairs), dtype=bool)
        column = {k: n for n, k in enumerate(linked)} | {anchor: len(linked)}  # the anchor's column is dropped: 0
        rows = np.flatnonzero(keep & np.isin(first, list(column)) & np.isin(second, list(column)))
        matrix = np.zeros((len(rows), len(linked) + 1))
        matrix[np.arange(len(rows)), [column[k] for k in first[rows]]] = 1.0
        matrix[np.arange(len(rows)), [column[k] for k in second[rows]]] -= 1.0
        matrix = matrix[:, :-1]
        solution = np.linalg.lstsq(matrix * weight[rows, None], delay[rows] * weight[rows], rcond=None)[0]
        latency = {k: float(solution[column[k]]) for k in linked}
        within = np.abs(matrix @ solution - delay[rows]) <= PAIR_RESIDUAL_S  # latency(a) - latency(b) against the delay
        fits[:] = False
        fits[rows[within]] = True
        if within.all():
            break
        keep[rows[~within]] = False  # pairs off the linked set keep their state
    return latency, fits


def confirmed_parts(latency: dict[int, float], pairs: Sequence[Pair], fits: Mask) -> set[int]:
    """Return the parts of ``latency`` that the pairs fitting it (``fits``, from ``solve_offsets``) confirm.

    A part is confirmed by one fitting pair that stands on ``MIN_ALIGN_ONSETS`` agreeing
    onsets or more (as a part against the drums needs), or by ``MIN_PAIR_CHECKS``
    fitting pairs of any support.
    """
    fitting = [p for p, fit in zip(pairs, fits.tolist()) if fit]
    pairs_of = Counter(k for a, b, _, _ in fitting for k in (a, b))
    well_supported = {k for a, b, _, agree in fitting if agree >= MIN_ALIGN_ONSETS for k in (a, b)}
    return {k for k in latency if k in well_supported or pairs_of[k] >= MIN_PAIR_CHECKS}


def _linked(anchor: int, first: IntColumn, second: IntColumn) -> list[int]:
    """Return the parts other than ``anchor`` that pairs (first[i], second[i]) connect to it."""
    reached = {anchor}
    grew = True
    while grew:  # at most one round per instrument
        grew = False
        for a, b in zip(first.tolist(), second.tolist()):
            if (a in reached) != (b in reached):
                reached |= {a, b}
                grew = True
    return sorted(reached - {anchor})


def onset_delays(
    joined: FloatColumn,
    sizes: IntColumn,
    against: Sequence[int],
    references: Sequence[FloatColumn],
    *,
    max_rival: float | None = None,
    min_agree: int = MIN_ALIGN_ONSETS,
    robust: bool = False,
) -> list[tuple[float, int] | None]:
    """Return, for each row ``n``, (delay s, agreeing onsets) against ``references[against[n]]``, or None.

    Row ``n`` is ``sizes[n]`` onsets of ``joined`` (the rows' onsets in one column).

    The delay is how late the onsets typically sit after the nearest reference onset
    (both sorted, seconds): the peak of the differences to the nearest reference onset
    (within ``MAX_LATENCY_S``; a 1 ms histogram smoothed over ±``LATENCY_KERNEL_S``),
    refined by the mean of the differences near the peak, so it is not stuck on the
    1/192 s grid. None when fewer than ``min_agree`` agree (or fewer than ``MIN_ALIGN_ONSETS``
    sit within ``MAX_LATENCY_S``), or, with ``max_rival``,
    when another candidate at least two kernel widths from the peak gathers more than
    that share of the peak's smoothed count. Every row is measured at once (rows of one
    histogram), so the cost does not grow with the number of parts.

    ``robust``: the delay is instead the Huber M-estimate of location of all the row's
    differences within ``MAX_LATENCY_S`` (Huber, "Robust estimation of a location
    parameter", Annals of Mathematical Statistics 35(1), 1964), with the fixed bend point
    ``HUBER_BEND_S``: iteratively reweighted means from the peak (weights 1 within the
    bend point, bend point / distance beyond), with a scale held constant; robustbase's
    ``huberM`` reaches the same estimate by iterating a winsorised mean. Huber's objective
    is convex, so the estimate is unique whatever the start. The peak still decides which
    rows are measured (``min_agree``, ``max_rival``).
    Where the differences form one broad bump (two transcribed stems, ``band_latencies``)
    every onset then informs the delay and none moves it by more than its bend-point
    share; against drums, where a part between the hits spreads differences over the whole
    window, the peak's local mean is kept (there the Huber estimate would raise the bench
    split's 90th-percentile error from 6.7 to 9.4 ms).
    """
    import numpy as np

    found: list[tuple[float, int] | None] = [None] * len(sizes)
    usable = (sizes >= MIN_ALIGN_ONSETS) & (np.array([len(references[a]) for a in against]) >= 2)
    rows = np.flatnonzero(usable).tolist()
    if not rows:
        return found
    own = joined if usable.all() else joined[np.repeat(usable, sizes)]
    row = np.repeat(np.arange(len(rows)), sizes[usable])
    if len(references) == 1:
        ref = references[0]
        after = np.searchsorted(ref, own)
        np.minimum(np.maximum(after, 1, out=after), len(ref) - 1, out=after)  # as np.clip, without its overhead
    else:  # each reference once, keyed by its index so one sorted column holds them all
        ref = np.concatenate(references)
        ref_bounds = np.cumsum([0] + [len(r) for r in references])
        keyed_ref = ref + np.repeat(np.arange(len(references)), np.diff(ref_bounds)) * PITCH_SPAN_S
        source = np.asarray([against[n] for n in rows], dtype=np.int64)[row]
        after = np.searchsorted(keyed_ref, own + source * PITCH_SPAN_S)
        after = np.clip(after, ref_bounds[source] + 1, ref_bounds[source + 1] - 1)
    d_after, d_before = own - ref[after], own - ref[after - 1]
    diff = np.where(np.abs(d_after) < np.abs(d_before), d_after, d_before)
    close = np.abs(diff) <= MAX_LATENCY_S
    diff, row = diff.compress(close), row.compress(close)
    bins = int(round(MAX_LATENCY_S / LATENCY_BIN_S))
    span = 2 * bins + 1
    cell = row * span + np.rint(diff / LATENCY_BIN_S).astype(np.int64) + bins
    histogram = np.bincount(cell, minlength=len(rows) * span).reshape(len(rows), span)
    width = int(round(LATENCY_KERNEL_S / LATENCY_BIN_S))
    running = np.zeros((len(rows), span + 2 * width + 1), dtype=histogram.dtype)  # zero-padded, then summed
    running[:, width + 1 : width + 1 + span] = histogram
    np.cumsum(running, axis=1, out=running)
    smooth = running[:, 2 * width + 1 :] - running[:, : -(2 * width + 1)]  # the sum over ±width bins
    peak = np.argmax(smooth, axis=1)
    peak_s = (peak - bins) * LATENCY_BIN_S
    clear = np.ones(len(rows), dtype=bool)
    if max_rival is not None:  # a rival: the best candidate at least two kernel widths from the peak
        far = np.abs(np.arange(span)[None, :] - peak[:, None]) > 2 * width
        clear = np.where(far, smooth, 0).max(axis=1) <= max_rival * smooth[np.arange(len(rows)), peak]
    near = np.abs(diff - peak_s[row]) <= LATENCY_KERNEL_S + TIME_EPSILON_S
    row_near = row.compress(near)
    agreeing = np.bincount(row_near, minlength=len(rows))
    enough = (histogram.sum(axis=1) >= MIN_ALIGN_ONSETS) & (agreeing >= min_agree) & clear
    picked = np.flatnonzero(enough)
    if robust:
        means = huber_locations(diff, row, peak_s)[picked].tolist()
    else:
        total = np.bincount(row_near, weights=diff.compress(near), minlength=len(rows))
        means = (total[picked] / agreeing[picked]).tolist()
    for r, mean, agree in zip(picked.tolist(), means, agreeing[picked].tolist()):  # a loop over parts, not notes
        found[rows[r]] = mean, agree
    return found


def huber_locations(diff: FloatColumn, row: IntColumn, start: FloatColumn) -> FloatColumn:
    """Return each row's Huber M-estimate of location of ``diff`` (seconds; ``row``: each value's row).

    Bend point ``HUBER_BEND_S``; iteratively reweighted from ``start`` (one value per row)
    until no row's estimate moves by ``HUBER_TOLERANCE_S``, at most ``HUBER_ROUNDS`` times.
    A row without values keeps its start. All rows at once: a few passes over the values.
    """
    import numpy as np

    location = start.copy()
    weight = np.empty(len(diff))  # one column for every round's weights (a fresh one is page-faulted)
    for _ in range(HUBER_ROUNDS):
        np.abs(np.subtract(diff, location.take(row), out=weight), out=weight)
        np.divide(HUBER_BEND_S, np.maximum(weight, HUBER_BEND_S, out=weight), out=weight)  # 1 within the bend point
        total = np.bincount(row, weights=weight, minlength=len(location))
        moved = np.bincount(row, weights=np.multiply(weight, diff, out=weight), minlength=len(location))
        found = np.divide(moved, total, out=location.copy(), where=total > 0)  # a row without values keeps its start
        settled = np.abs(found - location).max(initial=0.0) < HUBER_TOLERANCE_S
        location = found
        if settled:
            break
    return location


def shift_instrument(
    instrument: Instrument, offset_s: float, counts: dict[str, int], *, in_place: bool = False
) -> Instrument:
    """Move an instrument's notes by ``offset_s`` seconds; never before 0 s.

    A note the shift would start before 0 s starts at 0 s instead and keeps its shifted
    end (at least 0 s: then it is a zero-length note, which ``convert`` makes one tick
    long); each is counted as held at 0 s. ``in_place``: the instrument's time columns
    are the clean-up's own (made by the note rules, shared with no caller), so they
    are shifted where they are: a copy of every note costs more than the addition.
    """
    import numpy as np

    if not offset_s or not instrument.note_count:
        return instrument
    if in_place:
        start, end = instrument.start_s, instrument.end_s
        start += offset_s
        end += offset_s
    else:
        start, end = instrument.start_s + offset_s, instrument.end_s + offset_s
    _count(counts, model.NOTE_SHIFTED, instrument.note_count)
    if offset_s < 0 and start.min() < 0:  # a note reaches before 0 s: held there
        _count(counts, model.HELD_AT_ZERO, int(np.count_nonzero(start < 0)))
        np.maximum(start, 0.0, out=start)
        np.maximum(end, 0.0, out=end)
    return instrument if in_place else replace(instrument, start_s=start, end_s=end)


def _count(counts: dict[str, int], kind: str, n: int) -> None:
    if n:
        counts[kind] = counts.get(kind, 0) + n
