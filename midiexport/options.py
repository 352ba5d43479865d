"""Options: how records become files, as one frozen value built once and passed through.

The command line builds a ``ConvertOptions`` from its flags; a library caller builds
one in code. Every stage reads the fields it needs from the same object, so adding an
option means adding one field here (and one click option in the CLI).
Foundation module: imports nothing from the stages.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .defaults import AUTO_PPQ, DEFAULT_BPM, DEFAULT_MAX_INPUT_MB, DEFAULT_PPQ, MAX_BPM, MAX_PPQ, MIN_BPM, MIN_PPQ

if TYPE_CHECKING:
    from . import gm

AUTO = "auto"
FORMATS = (0, 1)


TEMPO_MAPS = ("bpm", "keep")  # bpm: as --bpm says; keep: a .mid's own tempo map as it is
KEEP_TEMPO_MAP = "keep"
GRID_PATTERN = re.compile(r"^1/(1|2|4|8|16|32|64)(t?)$")  # a note value, "t" for triplets
GRID_CHOICES = "1/N with N in 1, 2, 4, 8, 16, 32, 64 (t for triplets)"  # GRID_PATTERN in words, as errors say it
NAME_FIELDS = ("stem", "record", "task_id", "audio_id", "title", "instrument")  # of a ``name`` template

ProgramPairs = tuple[tuple[str, "str | int"], ...]
ShiftPairs = tuple[tuple[str, float], ...]  # (instrument name, or "" for every instrument; ms)

CLEAN_PRESETS = ("light", "strong")
KEY_MODES = ("auto", "off")
MAX_CLEAN_MS = 10_000.0  # no clean-up window or length beyond 10 s is meaningful
MAX_SHIFT_MS = 60_000.0  # a whole song sits at most 0.1-0.6 s off its audio; a minute is plenty


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """The options of ``midiexport convert`` as data. Times in seconds, tempo in BPM.

    ``bpm``: the tempo written (4-1000) or "auto" (the song's own). ``ppq``: ticks
    per quarter, None for the default (480, or 960 with "auto"). ``format``: SMF 0 or 1.
    ``split``: one file per instrument. ``strict``: refuse a record with an invalid
    note. ``programs``: instrument name -> GM program 0-127, a GM name or a drum name
    (a mapping or pairs). ``quantize``: a grid such as "1/16" or "1/8t", or None.
    ``name``: a template for output file names ("{title} - {task_id}"; fields in
    NAME_FIELDS), None for the default names.
    ``tempo_map``: "bpm" (as ``bpm`` says) or "keep" (a .mid input's own tempo map).
    ``max_input_mb``: the largest input file (or JSON line, or .zip member) read, in MB
    (default 128; a .zip's members in all: ARCHIVE_TOTAL_FACTOR times it).
    Clean-up (``stages.clean``; all off by default, so notes stay exactly as sent):
    ``clean`` "light" or "strong" (a preset), ``min_note_ms`` and ``merge_gap_ms``
    override the preset's flicker and fragment thresholds (0 turns the rule off),
    ``align`` shifts each instrument onto the drums' timing (else the earliest part's):
    True always, False never, None as the preset says (only ``clean`` "strong" aligns,
    and only a record that shows a transcriber's marks; "light" never aligns),
    ``ghosts`` drops overtone ghosts (True on any record, False never, None: both
    presets do, on a record that shows a transcriber's marks),
    ``shifts`` are (instrument name or "" for all, milliseconds) moved by hand (one
    instrument, or all, twice is a ValueError: ``check_shift_names``),
    ``drum_length_ms`` lengthens shorter drum hits. ``key``: None writes the estimated
    key signature with clean-up only, "auto" always when confident, "off" never.
    ``program_overrides`` (not given: derived) is ``programs`` resolved once here
    (``gm.resolve_overrides``), keyed by ``gm.name_key``, for the clean-up's roles and
    the placement of every record.
    Raises ValueError naming the allowed range for a value that cannot be written
    (a bad program included).
    """

    bpm: float | str = DEFAULT_BPM
    ppq: int | None = None
    format: int = 1
    split: bool = False
    strict: bool = False
    programs: ProgramPairs = ()
    quantize: str | None = None
    name: str | None = None
    tempo_map: str = "bpm"
    max_input_mb: float = DEFAULT_MAX_INPUT_MB
    clean: str | None = None
    min_note_ms: float | None = None
    merge_gap_ms: float | None = None
    align: bool | None = None
    ghosts: bool | None = None
    shifts: ShiftPairs = ()
    drum_length_ms: float | None = None
    key: str | None = None
    program_overrides: Mapping[str, gm.Resolved] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for flag, nullable in (("split", False), ("strict", False), ("align", True), ("ghosts", True)):
            value = getattr(self, flag)
            if value is None and nullable:
                continue
            if not _is_bool(value):
                allowed = "True, False or None" if nullable else "True or False"
                raise TypeError(f"{flag} must be {allowed}, got {value!r}")
            object.__setattr__(self, flag, bool(value))  # a numpy bool kept as a plain one
        object.__setattr__(self, "programs", _pairs("programs", self.programs))
        object.__setattr__(self, "program_overrides", _resolved(self.programs))
        _check_bpm(self.bpm)
        if self.ppq is not None and not (isinstance(self.ppq, int) and MIN_PPQ <= self.ppq <= MAX_PPQ):
            raise ValueError(f"ppq must be in {MIN_PPQ}..{MAX_PPQ}, got {self.ppq!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be 0 or 1, got {self.format!r}")
        if self.tempo_map not in TEMPO_MAPS:
            raise ValueError(f"tempo_map must be 'bpm' or 'keep', got {self.tempo_map!r}")
        if isinstance(self.max_input_mb, bool) or not (
            isinstance(self.max_input_mb, (int, float)) and math.isfinite(self.max_input_mb) and self.max_input_mb > 0
        ):
            raise ValueError(f"max_input_mb must be a number above 0, got {self.max_input_mb!r}")
        if self.quantize is not None and GRID_PATTERN.match(self.quantize.strip()) is None:
            raise ValueError(f"quantize grid must be {GRID_CHOICES}, got {self.quantize!r}")
        if self.name is not None:
            name_fields(self.name)
        self._check_clean()

    def _check_clean(self) -> None:
        if self.clean is not None and self.clean not in CLEAN_PRESETS:
            raise ValueError(f"clean must be one of {', '.join(CLEAN_PRESETS)}, got {self.clean!r}")
        if self.key is not None and self.key not in KEY_MODES:
            raise ValueError(f"key must be one of {', '.join(KEY_MODES)}, got {self.key!r}")
        for name, low in (("min_note_ms", 0.0), ("merge_gap_ms", 0.0), ("drum_length_ms", 0.0)):
            _check_ms(name, getattr(self, name), low, MAX_CLEAN_MS)
        object.__setattr__(self, "shifts", _pairs("shifts", self.shifts, float))
        for _, shift_ms in self.shifts:
            _check_ms("shift", shift_ms, -MAX_SHIFT_MS, MAX_SHIFT_MS)
        check_shift_names(self.shifts)

    @property
    def cleaning(self) -> bool:
        """True when any clean-up rule, alignment or shift is asked for."""
        return bool(
            self.clean
            or self.min_note_ms
            or self.merge_gap_ms
            or self.align
            or self.ghosts
            or self.shifts
            or self.drum_length_ms
        )

    @property
    def writes_key(self) -> bool:
        """True when an estimated key signature is written (when confident)."""
        return self.key == "auto" or (self.key is None and self.clean is not None)

    @property
    def auto(self) -> bool:
        """True when the tempo is estimated from the notes."""
        return self.bpm == AUTO

    @property
    def ticks_per_quarter(self) -> int:
        """The PPQ written: ``ppq`` when given, else 480 (960 with "auto")."""
        if self.ppq is not None:
            return self.ppq
        return AUTO_PPQ if self.auto else DEFAULT_PPQ

    def replace(self, **changes: Any) -> ConvertOptions:
        """Return a copy with some fields changed (checked like a new one)."""
        return dataclasses.replace(self, **changes)


def name_fields(template: str) -> set[str]:
    """Return the fields a name template uses. Raises ValueError for a bad template or field."""
    import string

    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"name template {template!r} is not valid ({exc}); write fields as {{title}}") from None
    used = {field for _, field, spec, conversion in parsed if field is not None}
    unknown = sorted(used - set(NAME_FIELDS))
    if unknown or any(spec or conversion for _, field, spec, conversion in parsed if field is not None):
        raise ValueError(f"name template {template!r}: unknown field {{{(unknown or [''])[0]}}}; "
                         f"use {', '.join('{' + f + '}' for f in NAME_FIELDS)}")  # fmt: skip
    return used


def check_shift_names(shifts: Sequence[tuple[str, float]]) -> None:
    """Refuse two shifts of one instrument (names matched as ``gm.name_key`` matches them; "" is every one).

    A name that keys as "" ("!!") names only the instruments whose names do, not every
    one. Two shifts would add up silently; as with ``programs``, the ValueError names both as NAME=MS.
    """
    if len(shifts) < 2:
        return
    from . import gm

    # "" (every instrument) keys as None: a name such as "!!" keys as "" and names only instruments that do too
    given = ((gm.name_key(name) if name else None, f"{name}={ms:g}" if name else f"{ms:g}", ms) for name, ms in shifts)
    gm.given_once(given, "shift the same instrument twice")


def _pairs(field: str, value: object, read: Callable[[Any], Any] = lambda v: v) -> tuple[tuple[str, Any], ...]:
    """``programs`` or ``shifts`` as (name, ``read(value)``) pairs, from a mapping ({"Bass": 20}) or pairs.

    Pairs are ((("Bass", 20),)). Anything else (a string such as "Bass=20", the command
    line's form, or a pair that is not two items) is a TypeError naming the two accepted forms.
    """
    forms = f'{field} takes a mapping {{"Bass": ...}} or (name, value) pairs'
    if isinstance(value, Mapping):
        value = tuple(value.items())
    elif isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{forms}, got {value!r}")
    for pair in value:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"{forms}, got the item {pair!r}")
    return tuple((str(k), read(v)) for k, v in value)


def _is_bool(value: object) -> bool:
    """True for True and False, and for a numpy bool (library callers pass flags numpy computed).

    numpy's is no ``bool`` subclass; a value can only be one when numpy is loaded, so
    the check imports nothing.
    """
    numpy = sys.modules.get("numpy")
    return isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_))


def _check_ms(name: str, value: object, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise ValueError(f"{name} must be in {low:g}..{high:g} ms, got {value!r}")


def _resolved(programs: ProgramPairs) -> dict[str, gm.Resolved]:
    """``gm.resolve_overrides(programs)``; the GM tables imported only when there are programs (not by ``--help``)."""
    if not programs:
        return {}
    from . import gm

    return gm.resolve_overrides(programs)


def _check_bpm(bpm: object) -> None:
    if bpm == AUTO:
        return
    if (
        isinstance(bpm, bool)
        or not isinstance(bpm, (int, float))
        or not math.isfinite(bpm)
        or not (MIN_BPM <= bpm <= MAX_BPM)
    ):
        shown = f"{bpm:g}" if isinstance(bpm, (int, float)) else repr(bpm)
        raise ValueError(f"bpm must be in {MIN_BPM:g}..{MAX_BPM:g} or 'auto', got {shown}")


DEFAULT_OPTIONS = ConvertOptions()
