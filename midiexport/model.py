"""Types passed between the stages: Record (normalize), Song and Report (convert).

Notes are held column-wise in numpy arrays, one array per field, never as one Python
object per note: a record can hold a million notes. Time bases are in the names:
``*_s`` are seconds from the start of the song, ``*_tick`` are absolute MIDI ticks.
API velocity (0-1) is ``velocity``; MIDI velocity (1-127) is ``velocity_midi``.

The types users hold (Instrument, Record, Report, Track, Song) are frozen dataclasses;
those with note columns compare by identity (``eq=False``), since ``==`` on arrays has no
single truth value. Small plain values (NoteIssue and KeySignature here, which users
meet in ``Record.issues`` and ``Song.key``; Verdict, Resolved, TimeMap, ... elsewhere)
are NamedTuples: immutable, compared by value, fields by name, and also tuples. Python
builds a frozen dataclass's methods from source at import, about 0.5 ms a class, and a
CLI run imports some twenty of them (issue 16's start-up target).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .errors import say

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatColumn = npt.NDArray[np.float64]
    IntColumn = npt.NDArray[np.int64]

# Record.status values.
COMPLETE = "complete"
PENDING = "pending"
FAILED = "failed"
EMPTY = "empty"
LINK = "link"

# Kinds of repair and warning, counted in Report.counts. The text reads after a number. A
# kind says what was done to the notes, never which option asked for it: the same label is
# the key in Report.counts, the --report and serve's answers, whoever asked; the command
# line's summary line adds its option to a kind made only when asked for (cli/report.py's
# kind_words).
STRING_NUMBER = "numbers read from strings"
VELOCITY_CLAMPED = "velocities clamped to 0-1"
ZERO_LENGTH = "zero-length notes lengthened to one tick"
OVERLAP_CUT = "overlapping notes cut"
DUPLICATE_MERGED = "duplicate notes merged"
NOTE_LEFT_OUT = "invalid notes left out"
UNKNOWN_INSTRUMENT = "unknown instrument names (program 0)"
CHANNEL_SHARED = "instruments sharing a channel"
QUANTIZED = "notes moved to the grid"

REPAIRS = (STRING_NUMBER, VELOCITY_CLAMPED, ZERO_LENGTH, OVERLAP_CUT, DUPLICATE_MERGED)
"""Kinds that change a note; the others are news about the record as a whole."""

# Kinds of clean-up change (stages.clean): made only when asked for, so they are shown in
# each record's summary line but not counted among the repairs.
SHORT_DROPPED = "short notes dropped"
REDETECT_JOINED = "re-detected notes joined to the note before"
FRAGMENT_MERGED = "fragments merged"
DOUBLE_MERGED = "doubled notes merged"
TRACK_FOLDED = "doubled tracks folded into one"
GHOST_DROPPED = "overtone ghosts dropped"
VOICE_DROPPED = "notes over the voice cap dropped"
DRUM_LENGTHENED = "drum hits lengthened"
NOTE_SHIFTED = "notes shifted in time"
HELD_AT_ZERO = "notes held at 0 s instead of shifted before it"


class NoteIssue(NamedTuple):
    """A note left out because it has no obvious repair (see PRODUCT.md, bad data)."""

    instrument: str
    note_index: int  # 0-based index in the instrument's note list
    field: str
    value: object
    problem: str  # reads after "<field> <value>", e.g. "is before start 0.75"

    def describe(self) -> str:
        """Return '"Drums", note 17: end 0.5 is before start 0.75'."""
        where = f"{show_value(self.instrument, 60)}, note {self.note_index}"
        if self.problem == "is missing":
            return f"{where}: {self.field} is missing"
        return f"{where}: {self.field} {show_value(self.value)} {self.problem}"


def api_int(value: object) -> int | None:
    """Read an integer the API may send as a number or a digit string (codes, flags); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def show_value(value: object, limit: int = 40) -> str:
    """Return a value as JSON would spell it, cut to ``limit`` characters, for messages."""
    if isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = repr(value)
    if not text.isprintable():  # most names are: no walk over their characters
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, eq=False)
class Instrument:
    """One instrument's notes as columns: seconds, MIDI pitch, API velocity 0-1."""

    name: str
    start_s: FloatColumn
    end_s: FloatColumn
    pitch: IntColumn
    velocity: FloatColumn
    program: int | None = None  # GM program 0-127 from a .mid; None: chosen from the name
    is_drum: bool | None = None  # Suno's "is_drum" flag, or channel 10 in a .mid; None: the name decides

    @property
    def note_count(self) -> int:
        return int(self.start_s.shape[0])


@dataclass(frozen=True, eq=False)
class Record:
    """One MIDI task's result, whatever envelope it came in.

    ``status`` is COMPLETE, PENDING, FAILED, EMPTY or LINK; only a COMPLETE record has
    instruments. ``counts`` holds repairs made while reading (strings read as numbers);
    ``issues`` the notes left out (the first ``normalize.MAX_ISSUES``), ``left_out``
    all of them counted by field. ``source`` names the input and ``locator`` the
    record inside it ("record 3", "line 12"; empty when the input holds one record).
    """

    source: str
    status: str
    locator: str = ""
    reason: str = ""  # why there is nothing to convert, when status is not COMPLETE
    task_id: str | None = None
    audio_id: str | None = None
    state: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    midi_url: str | None = None
    title: str | None = None
    tags: str | None = None
    model_name: str | None = None
    duration_s: float | None = None
    instruments: tuple[Instrument, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    issues: tuple[NoteIssue, ...] = ()
    warnings: tuple[str, ...] = ()
    left_out: dict[str, int] = field(default_factory=dict)  # per field, in full (issues stop at MAX_ISSUES)
    # From a .mid (stages/midifile.py): its tempo map as (abs tick, µs per quarter) at
    # ``source_ppq``, its time signatures (abs tick, n, d), and the time in seconds of
    # every quarter-note beat through that map (Suno's own beat tracking).
    source_ppq: int | None = None
    source_tempos: tuple[tuple[int, int], ...] = ()
    source_meters: tuple[tuple[int, int, int], ...] = ()
    beat_map_s: FloatColumn | None = None
    notices: tuple[str, ...] = ()  # what clean-up did, for people ('"Bass" shifted by -18.0 ms')

    def place(self, *parts: str) -> str:
        """Return where something is, for messages: 'a.json: record 3, "Drums", note 17'.

        A part's marked phrases (``errors.say``) stay marked.
        """
        inner = [p for p in (self.locator, *parts) if p]
        if not inner:
            return self.source
        joined = [self.source, ": ", inner[0]]
        for part in inner[1:]:
            joined += [", ", part]
        return say(*joined)

    @property
    def note_count(self) -> int:
        return sum(i.note_count for i in self.instruments)


@dataclass(frozen=True)
class Report:
    """What converting a record repaired and what it warns about.

    ``counts`` maps a kind (model.STRING_NUMBER, ...) to how many times it happened;
    ``warnings`` are ready-made lines naming the place (invalid notes, unknown names).
    ``left_out`` counts the notes left out by the field at fault ("pitch", "end", "note");
    ``tempo`` says what ``--bpm auto`` chose (None for a fixed tempo); ``key`` the key
    signature written, ``no_key`` why none was when one was asked for (None otherwise).
    """

    counts: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    left_out: dict[str, int] = field(default_factory=dict)
    notices: tuple[str, ...] = ()  # ready-made lines on what clean-up did (not problems)
    tempo: str | None = None
    key: str | None = None
    no_key: str | None = None

    @property
    def repairs(self) -> int:
        """Return how many notes were changed by a repair."""
        return sum(n for kind, n in self.counts.items() if kind in REPAIRS)


@dataclass(frozen=True, eq=False)
class Track:
    """One instrument in MIDI terms: channel 0-15 (drums 9), program 0-127, notes in ticks.

    Notes are columns of equal length: absolute ticks of note-on and note-off, pitch
    0-127 and MIDI velocity 1-127, in no particular order (the writer sorts events).
    """

    name: str
    channel: int
    program: int
    is_drum: bool
    on_tick: IntColumn
    off_tick: IntColumn
    pitch: IntColumn
    velocity_midi: IntColumn

    @property
    def note_count(self) -> int:
        return int(self.on_tick.shape[0])


class KeySignature(NamedTuple):
    """A key signature as MIDI writes it: -7..7 (flats negative, sharps positive), major or minor."""

    fifths: int
    minor: bool


@dataclass(frozen=True, eq=False)
class Song:
    """A record converted to MIDI time: what the writer needs, nothing more.

    ``tempos`` lists (abs tick, µs per quarter) changes, the first at tick 0;
    ``meters`` (abs tick, numerator, denominator) time signatures, the first at 0.
    ``end_tick`` is where every track ends (the last note-off, or the song's duration).
    ``texts`` go into the conductor track as text events (source, tags, model, tempo).
    ``key``: a key signature for the conductor track, or None for none.
    """

    title: str
    ppq: int
    tempos: tuple[tuple[int, int], ...]
    end_tick: int
    tracks: tuple[Track, ...]
    texts: tuple[str, ...] = ()
    report: Report = field(default_factory=Report)
    meters: tuple[tuple[int, int, int], ...] = ((0, 4, 4),)
    key: KeySignature | None = None

    @property
    def note_count(self) -> int:
        return sum(t.note_count for t in self.tracks)
