"""Onsets by role: what the tempo, beat and meter stages read from a Record's notes.

A note list is exact onset times, not audio, so no onset detector is needed: this module
sorts the notes by the role their instrument plays (kick, snare, cymbals, other drums,
bass, pitched parts), merges notes that start together into one onset, and builds the
two views the later stages use: weighted onset times per role (``Onsets``) and an onset
strength envelope sampled every ``FRAME_S`` (``envelope``). Plain numpy columns in and
out; no per-note Python loop. The bass role is a bass instrument or a low part, else the
lowest of several parts (``_bass_parts``): the voice whose entries mark beat one in a
string quartet or a chorale as a bass guitar does in a band.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .. import gm
from ..defaults import GROUP_S
from ..model import Record

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]
    Ints = npt.NDArray[np.int64]
    Bools = npt.NDArray[np.bool_]

FRAME_S = 0.010  # envelope frame: 10 ms, well under the 30 ms downbeat tolerance
ENVELOPE_SMOOTH_S = 0.020  # Gaussian smoothing of the envelope: absorbs per-stem timing spread
ENVELOPE_TRUNCATE = 3  # the smoothing kernel is cut at 3 standard deviations, where it is 1.1% of its peak
ENVELOPE_TAIL_S = 1.0  # the tracked envelopes run this far past the last onset (a round second, not tuned)
MIN_LEVEL = 0.05  # velocity floor: a note marked velocity 0.01 still is an onset
# Notes merged into one onset sum their velocities up to this: a chord counts at most as two
# full-velocity hits (a round number, as ROLE_WEIGHTS; no measurement behind it).
MAX_ONSET_LEVEL = 2.0
KICKS = frozenset({35, 36})
SNARES = frozenset({38, 39, 40})  # snare, hand clap, electric snare
CRASHES = frozenset({49, 52, 55, 57})
BASS_PROGRAMS = range(32, 40)  # GM 33-40: the bass family
BASS_MAX_PITCH = 52  # E3: a monophonic part that stays below this plays the bass role
MIN_PARTS_FOR_LOWEST_BASS = 2  # with this many pitched parts and no bass, the lowest part is the bass
# How well a role carries the beat: drums most, then bass, then chords, then the tune.
# The order follows where beat trackers on symbolic music find the pulse (Dixon 2001,
# BeatRoot: percussive and low onsets are weighted up); the values are round numbers.
# The "long" role weighs pitched onsets by their length (up to LONG_NOTE_S): long notes start
# on strong beats (Lerdahl & Jackendoff's metrical preference rule 5, the length accent that
# Dixon's BeatRoot also weighs). It feeds the meter features, not the envelope.
LONG_NOTE_S = 2.0
# The "entries" role holds each part's first note and every note after a rest of ENTRY_GAP_S
# or more: parts come in at phrase starts, which are bar lines more often than not.
ENTRY_GAP_S = 1.0
ROLE_WEIGHTS = {"kick": 1.0, "snare": 1.0, "crash": 0.5, "cymbals": 0.35, "bass": 0.8, "pitched": 0.5}


@dataclass(frozen=True)
class Stream:
    """Onset times (s, sorted) and weights of one role; ``part`` is the instrument index of each onset."""

    times_s: Floats
    weights: Floats
    part: Ints


@dataclass(frozen=True)
class Onsets:
    """A record's onsets by role, and its pitched notes for harmony (starts s, ends s, pitch).

    ``roles`` maps kick, snare, crash, cymbals, bass, pitched, long and entries to a Stream;
    ``all`` joins all but long and entries, weighted by ``ROLE_WEIGHTS``. ``has_drums`` is
    True when a drum part has notes.
    """

    roles: dict[str, Stream]
    all: Stream
    pitched_start_s: Floats
    pitched_end_s: Floats
    pitched_pitch: Ints
    has_drums: bool

    def role(self, name: str) -> Stream:
        """Return one role's stream (empty when the song has none)."""
        return self.roles.get(name) or _empty()

    @property
    def first_s(self) -> float:
        """The first onset of ``all`` (s); only for a record with onsets."""
        return float(self.all.times_s[0])

    @property
    def last_s(self) -> float:
        """The last onset of ``all`` (s); only for a record with onsets."""
        return float(self.all.times_s[-1])

    @cached_property
    def all_envelope(self) -> Floats:
        """The envelope of ``all`` to ``last_s`` (``envelope``), made once: without drums two steps read it.

        The pulse the slot grid follows (``beats.slot_grid``) and the beats re-tracked where the
        tempo moves (``tempo._follow_tempo``). Only for a record with onsets. Read-only, as it is shared.
        """
        shared = envelope(self.all, last_s=self.last_s)
        shared.flags.writeable = False
        return shared


def collect_onsets(record: Record) -> Onsets:
    """Group a record's notes into onsets by role. Times in seconds from the song's start.

    The work is done on the record's notes joined into one set of columns, each note with
    its part's index (``_Notes``), so a record of 100,000 one-note instruments costs as
    much as one instrument of 100,000 notes: one ``np.isin`` per drum role over all drum
    notes, one sort by part and time for the entries, no step per instrument but the
    name and median look-ups of ``_bass_parts``. Each role keeps its notes in the order of
    the parts and then of the notes, as a part-by-part gathering would.
    """
    import numpy as np

    notes = _Notes.of(record)
    drums = notes.drum_part[notes.part]  # per note: its part is a drum part
    pitched = ~drums
    has_drums = bool(drums.any())
    bass = _bass_parts(record, notes)
    pieces: dict[str, tuple[Floats, Floats, Ints]] = {}
    drum_notes = np.flatnonzero(drums)
    drum_roles = _drum_roles(notes.pitch[drum_notes])  # one isin per role over all drum notes
    for role in _role_order(notes, bass):
        if role in drum_roles:
            chosen = drum_notes[drum_roles[role]]
            pieces[role] = (notes.start_s[chosen], notes.velocity[chosen], notes.part[chosen])
        elif role == "long":
            length = np.clip((notes.end_s[pitched] - notes.start_s[pitched]) / LONG_NOTE_S, 0.0, 1.0)
            pieces[role] = (notes.start_s[pitched], length, notes.part[pitched])
        else:
            mask = pitched & (bass[notes.part] == (role == "bass"))
            pieces[role] = (notes.start_s[mask], notes.velocity[mask], notes.part[mask])
    if len(notes.part):
        sorted_s, sorted_part = notes.start_s, notes.part  # the parts in order; each part's notes most often too
        same_part = notes.part[1:] == notes.part[:-1]
        if not np.all(sorted_s[1:][same_part] >= sorted_s[:-1][same_part]):
            order = np.lexsort((notes.start_s, notes.part))  # by part, then time
            sorted_s, sorted_part = notes.start_s[order], notes.part[order]
        entry = _gap_starts(sorted_s, ENTRY_GAP_S)
        entry[1:] |= sorted_part[1:] != sorted_part[:-1]  # each part's first note
        pieces["entries"] = (sorted_s[entry], np.ones(int(entry.sum())), sorted_part[entry])
    roles = {role: _merge(*columns) for role, columns in pieces.items()}
    every = [(s.times_s, s.weights * ROLE_WEIGHTS[role], s.part) for role, s in roles.items() if role in ROLE_WEIGHTS]
    if every:
        times, weights, every_part = (np.concatenate(column) for column in zip(*every))
        joined = sorted_stream(times, weights, every_part.astype(np.int64))
    else:
        joined = _empty()
    starts, ends, pitches = notes.start_s[pitched], notes.end_s[pitched], notes.pitch[pitched]
    return Onsets(roles, joined, starts, ends, pitches.astype(np.int64), has_drums)


@dataclass(frozen=True)
class _Notes:
    """A record's notes as one set of columns, in the order of the parts; ``part`` is each note's instrument index.

    ``drum_part`` says per instrument whether it is a drum part (``gm.is_drum_instrument``,
    asked once per distinct name, flag and program).
    """

    start_s: Floats
    end_s: Floats
    pitch: Ints
    velocity: Floats
    part: Ints
    drum_part: Bools

    @classmethod
    def of(cls, record: Record) -> _Notes:
        import numpy as np

        instruments = record.instruments
        keys = [(instrument.name, instrument.is_drum, instrument.program) for instrument in instruments]
        drum = {key: gm.is_drum_instrument(instrument) for key, instrument in dict(zip(keys, instruments)).items()}
        drum_part = np.array([drum[key] for key in keys], dtype=bool)
        counts = np.array([instrument.note_count for instrument in instruments], dtype=np.int64)
        part = np.repeat(np.arange(len(instruments), dtype=np.int64), counts)

        def joined(field: str, empty: type) -> Any:
            columns = [getattr(instrument, field) for instrument in instruments]
            return np.concatenate(columns) if columns else np.empty(0, dtype=empty)

        return cls(
            joined("start_s", np.float64), joined("end_s", np.float64), joined("pitch", np.int64),
            joined("velocity", np.float64), part, drum_part,
        )  # fmt: skip


def _role_order(notes: _Notes, bass: Bools) -> list[str]:
    """Return the roles the notes fill, in the order a part-by-part gathering meets them first.

    The order of ``Onsets.roles`` and of equal times in ``Onsets.all``: the drum roles at the
    first drum part with notes, a pitched part's role (bass or pitched) and then long at the
    first pitched part of each.
    """
    import numpy as np

    played = np.bincount(notes.part, minlength=len(notes.drum_part)) > 0
    met: list[tuple[int, int, str]] = []

    def first(mask: Bools) -> int | None:
        found = np.flatnonzero(played & mask)
        return int(found[0]) if len(found) else None

    drum = first(notes.drum_part)
    if drum is not None:
        met += [(drum, rank, role) for rank, role in enumerate(DRUM_ROLES)]
    for role, mask in (("bass", ~notes.drum_part & bass), ("pitched", ~notes.drum_part & ~bass)):
        at = first(mask)
        if at is not None:
            met.append((at, 0, role))
    pitched = first(~notes.drum_part)
    if pitched is not None:
        met.append((pitched, 1, "long"))
    return [role for _, _, role in sorted(met)]


PITCH_KEYS = 256  # part * PITCH_KEYS + pitch sorts the notes by part, then pitch (pitches 0-255)


def _bass_parts(record: Record, notes: _Notes) -> Bools:
    """Return per part whether it plays the bass role.

    A bass instrument, or a part that stays low (median under BASS_MAX_PITCH). When no part
    does and there are several pitched parts (a string quartet, a four-part chorale), the
    lowest of them (by median pitch; the first of equals) plays the bass: the lowest voice
    carries the harmony's root and enters on strong beats whatever its register (Lerdahl &
    Jackendoff's metrical preference rule 6, a stable bass; Temperley 2001). The medians of
    all parts come from one sort of the pitched notes by part and pitch (the parts are in
    order already, so sorting part * PITCH_KEYS + pitch keeps them): each part's run's
    median (``_run_medians``).
    """
    import numpy as np

    parts = len(notes.drum_part)
    pitched = ~notes.drum_part[notes.part]
    part, pitch = notes.part[pitched], notes.pitch[pitched]
    counts = np.bincount(part, minlength=parts)
    if len(pitch) and 0 <= pitch.min() and pitch.max() < PITCH_KEYS:  # MIDI pitches: one sort of whole numbers
        sorted_pitch = (np.sort(part * PITCH_KEYS + pitch) - part * PITCH_KEYS).astype(np.float64)
    else:
        sorted_pitch = pitch[np.lexsort((pitch, part))].astype(np.float64)
    have = np.flatnonzero(counts)  # the pitched parts with notes, in order
    medians = _run_medians(sorted_pitch, (np.cumsum(counts) - counts)[have], counts[have])
    names = [record.instruments[index].name for index in have.tolist()]
    programs = {name: gm.resolve_instrument(name).program for name in dict.fromkeys(names)}  # once per name
    bass = np.zeros(parts, dtype=bool)
    bass[have] = np.array([programs[name] in BASS_PROGRAMS for name in names], dtype=bool) | (medians < BASS_MAX_PITCH)
    if not bass.any() and len(have) >= MIN_PARTS_FOR_LOWEST_BASS:
        bass[have[int(np.argmin(medians))]] = True
    return bass


def envelope(stream: Stream, *, last_s: float) -> Floats:
    """Return an onset strength envelope to ENVELOPE_TAIL_S past ``last_s`` (s).

    Weights summed per FRAME_S frame, Gaussian-smoothed, scaled to unit std.
    """
    import numpy as np

    frames = int((last_s + ENVELOPE_TAIL_S) / FRAME_S) + 2
    raw = np.bincount(np.rint(stream.times_s / FRAME_S).astype(np.int64), weights=stream.weights, minlength=frames)
    sigma = ENVELOPE_SMOOTH_S / FRAME_S
    half = int(ENVELOPE_TRUNCATE * sigma)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    smooth: Floats = np.convolve(raw[:frames].astype(np.float64), kernel, mode="same")
    spread = float(smooth.std())
    return smooth / spread if spread > 0 else smooth


DRUM_ROLES = ("kick", "snare", "crash", "cymbals")  # the drum parts' roles (``Onsets.role``)


def _drum_roles(pitch: Ints) -> dict[str, npt.NDArray[np.bool_]]:
    import numpy as np

    kick, snare, crash = (np.isin(pitch, list(keys)) for keys in (KICKS, SNARES, CRASHES))
    return dict(zip(DRUM_ROLES, (kick, snare, crash, ~(kick | snare | crash)), strict=True))


def part_medians(part: Ints, deviation: Floats, close: Bools, min_onsets: int) -> dict[int, float]:
    """Return each part's median ``deviation`` over its ``close`` onsets, where it has ``min_onsets`` of them.

    The one measure of a stem's lag: against the drums (``beats.drum_aligned``) or the beats
    (``tempo``'s leading part). The parts in increasing order. One sort by part and deviation
    for all parts: each part's median is its run's (``_run_medians``; NaN where the run holds
    a NaN, as ``np.median``).
    """
    import numpy as np

    mine, found = part[close], deviation[close]
    order = np.lexsort((found, mine))
    mine, found = mine[order], found[order]
    if len(mine) == 0:
        return {}
    starts = np.flatnonzero(np.concatenate([[True], mine[1:] != mine[:-1]]))
    counts = np.diff(np.append(starts, len(mine)))
    medians = _run_medians(found, starts, counts)
    medians[np.logical_or.reduceat(np.isnan(found), starts)] = np.nan
    enough = counts >= min_onsets
    return dict(zip(mine[starts][enough].tolist(), medians[enough].tolist(), strict=True))


def _run_medians(values: Floats, starts: Ints, counts: Ints) -> Floats:
    """Return the median of each run of sorted ``values`` (its first index, its length >= 1).

    The middle value of an odd run, the mean of the two middle ones of an even run, as ``np.median``.
    """
    median: Floats = (values[starts + (counts - 1) // 2] + values[starts + counts // 2]) / 2
    return median


def _merge(times: Floats, levels: Floats, part: Ints) -> Stream:
    """Merge notes starting within GROUP_S into one onset: the first time, the summed velocity up to MAX_ONSET_LEVEL."""
    import numpy as np

    order = np.argsort(times, kind="stable")
    times, levels, part = times[order], np.clip(levels[order], MIN_LEVEL, 1.0), part[order]
    if len(times) == 0:
        return _empty()
    first = _gap_starts(times, GROUP_S)
    group = np.cumsum(first) - 1
    return Stream(times[first], np.minimum(np.bincount(group, weights=levels), MAX_ONSET_LEVEL), part[first])


def _gap_starts(sorted_s: Floats, gap_s: float) -> Bools:
    """Return which of some sorted times start a group: the first, and each ``gap_s`` or more after the one before.

    A gap of exactly ``gap_s`` starts a group here; the clean-up's onset groups
    (``clean._group_starts``) join it.
    """
    import numpy as np

    starts: Bools = np.concatenate([[True], np.diff(sorted_s) >= gap_s])
    return starts


def sorted_stream(times: Floats, weights: Floats, part: Ints) -> Stream:
    """Return the onsets as a Stream in time order (ties keep their order)."""
    import numpy as np

    order = np.argsort(times, kind="stable")
    return Stream(times[order], weights[order], part[order].astype(np.int64))


def _empty() -> Stream:
    import numpy as np

    return Stream(np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))
