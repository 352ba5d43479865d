"""General MIDI, drum and stem-name tables: data only, and the lookups over them.

Also the Standard MIDI File's meta event and channel message codes, which the writer
(``outputs.smf``) and the reader (``stages.midifile``) share.

Instrument names in the API are General MIDI program names ("Electric Bass (finger)"),
sometimes in another table's spelling ("String Ensembles 1"), plus "Drums" and
stem-style names ("Bass", "Vocals"). ``resolve_instrument`` maps any of them to a
program and says whether it belongs on the drum channel; ``read_by_word`` words the
warning for a ``--program`` value read by one word of it beside a likely typo.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import cache, lru_cache, wraps
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from .model import Instrument

DRUM_CHANNEL = 9  # MIDI channel 10, 0-based

# Meta event types (the SMF 1.0 spec): the byte after 0xFF.
META_TEXT, META_TRACK_NAME, META_INSTRUMENT_NAME, META_CHANNEL_PREFIX = 0x01, 0x03, 0x04, 0x20
META_END_OF_TRACK, META_TEMPO, META_TIME_SIGNATURE, META_KEY_SIGNATURE = 0x2F, 0x51, 0x58, 0x59
MAX_TRACKS = 0xFFFF  # the most tracks a file's header counts (16 bits): a format-1 file's tempo track and 65,534
# Channel message kinds (the status byte's high nibble; the low one is the channel).
NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE = 0x80, 0x90, 0xB0, 0xC0

GM_PROGRAMS: tuple[str, ...] = (
    # Piano
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    # Chromatic percussion
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    # Organ
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    # Guitar
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics",
    # Bass
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    # Strings
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    # Ensemble
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    # Brass
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    # Reed
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    # Pipe
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    # Synth lead
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    # Synth pad
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    # Synth effects
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    # Ethnic
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    # Percussive
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    # Sound effects
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)  # fmt: skip

# Other tables' spellings of GM programs (plurals are handled by the lookup itself).
GM_ALIASES: dict[str, int] = {
    "Acoustic Piano": 0, "Grand Piano": 0, "Piano 1": 0, "Bright Piano": 1,
    "Electric Grand": 2, "Rhodes Piano": 4, "Chorused Piano": 5, "Clavi": 7,
    "Hammond Organ": 16, "Nylon Guitar": 24, "Steel Guitar": 25, "Jazz Guitar": 26,
    "Clean Guitar": 27, "Muted Guitar": 28, "Fingered Bass": 33, "Picked Bass": 34,
    "Harp": 46, "Strings Ensemble": 48, "Slow Strings": 49, "Synth Choir": 54,
    "Orchestral Hit": 55, "Brass Ensemble": 61, "Bag Pipe": 109, "Shenai": 111,
    "Shehnai": 111, "Tinker Bell": 112, "Steel Drum": 114, "Wood Block": 115,
    "Gun Shot": 127, "Rhodes": 4,
}  # fmt: skip

# Names that mean the drum kit (channel 10), matched as words of the name.
DRUM_WORDS = frozenset({"drum", "drums", "drumkit", "drumset", "kit", "percussion", "perc"})

# Stem-style names, matched as words of the name, first hit wins: word -> GM program.
STEM_PROGRAMS: tuple[tuple[str, int], ...] = (
    ("bass", 33),  # Electric Bass (finger)
    ("piano", 0),  # Acoustic Grand Piano
    ("keyboard", 4), ("keyboards", 4), ("keys", 4),  # Electric Piano 1
    ("organ", 16),  # Drawbar Organ
    ("vocals", 54), ("vocal", 54), ("voice", 54), ("vox", 54),  # Synth Voice
    ("choir", 52),  # Choir Aahs
    ("strings", 48), ("string", 48),  # String Ensemble 1
    ("guitar", 25), ("guitars", 25),  # Acoustic Guitar (steel)
    ("synth", 81), ("lead", 81),  # Lead 2 (sawtooth)
    ("pad", 89),  # Pad 2 (warm)
    ("brass", 61),  # Brass Section
    ("woodwinds", 73), ("woodwind", 73), ("winds", 73),  # Flute
    ("fx", 98), ("sfx", 98), ("effects", 98),  # FX 3 (crystal)
)  # fmt: skip
_STEM_PROGRAM = dict(STEM_PROGRAMS)
_UPPER_STEMS = frozenset({"fx", "sfx"})  # abbreviations, in capitals as GM writes "FX 1 (rain)"; "Pad" is a word


class Resolved(NamedTuple):
    """An instrument name resolved: GM program 0-127, drum channel or not, and how."""

    program: int
    is_drum: bool
    how: str  # "gm", "alias", "drums", "stem" or "unknown"; by resolve_part also "file", "override", DRUM_NAME_KEPT


DRUM_NAME_KEPT = "override kept on drums"  # a Resolved.how: a melodic override a drum name ignores (resolve_part)


def fits_format_1(tracks: int) -> bool:
    """True when one format-1 file holds ``tracks`` tracks beside its tempo track (``MAX_TRACKS``)."""
    return tracks < MAX_TRACKS


def _words(name: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", name.casefold())


NAMES_REMEMBERED = 4096  # names resolved once per run, not once per part and stage (bounded: any text may come)
REMEMBERED_NAME_CHARS = 200  # longer names are resolved each time: a server must not keep 4096 huge ones
_Found = TypeVar("_Found")
_Key = TypeVar("_Key", bound=Hashable)
_Value = TypeVar("_Value")


def _remembered(resolve: Callable[[str], _Found]) -> Callable[[str], _Found]:
    """Return ``resolve`` with its answers for names of up to REMEMBERED_NAME_CHARS kept (LRU)."""
    cached = lru_cache(maxsize=NAMES_REMEMBERED)(resolve)

    @wraps(resolve)
    def lookup(name: str) -> _Found:
        return cached(name) if len(name) <= REMEMBERED_NAME_CHARS else resolve(name)

    return lookup


@_remembered
def _key(name: str) -> str:
    return "".join(_words(name))


def _singular_key(name: str, words: list[str] | None = None) -> str:
    # "String Ensembles 1" -> "stringensemble1"; "Bass" stays (double s). ``words``: _words(name), when known.
    return "".join(w[:-1] if w.endswith("s") and not w.endswith("ss") else w for w in words or _words(name))


@cache
def _program_index() -> dict[str, int]:
    # Built on the first lookup of a run: each table name split into words once, not through _key's cache.
    index: dict[str, int] = {}
    for program, name in enumerate(GM_PROGRAMS):
        words = _words(name)
        index["".join(words)] = program
        index.setdefault(_singular_key(name, words), program)
    for name, program in GM_ALIASES.items():
        words = _words(name)
        index.setdefault("".join(words), program)
        index.setdefault(_singular_key(name, words), program)
    return index


@_remembered
def gm_program(name: str) -> int | None:
    """Return the 0-based GM program a name spells, in any case or table spelling, or None.

    A number "0".."127" is read as the program itself.
    """
    text = name.strip()
    if text.isdigit():
        number = int(text)
        return number if 0 <= number <= 127 else None
    index = _program_index()
    for key in (_key(text), _singular_key(text)):
        if key in index:
            return index[key]
    for bare in (
        re.sub(r"\(.*?\)", "", text),  # "Electric Piano 1 (Rhodes)" -> "Electric Piano 1"
        re.sub(r"[\s_-]*\d+$", "", text),  # "Violin 2" -> "Violin" (a part number, not a GM one)
    ):
        if bare != text and _key(bare) in index:
            return index[_key(bare)]
    return None


@_remembered
def resolve_instrument(name: str) -> Resolved:
    """Map an instrument name from the API to a GM program and the drum flag.

    Order: a GM program name (any case, other tables' spellings), a drum name, a
    stem-style word ("Bass", "Lead Vocals"), else program 0 with how="unknown".
    """
    program = gm_program(name)
    if program is not None:
        return Resolved(program, False, "gm")
    word = _word_read(_words(name))
    if word is None:
        return Resolved(0, False, "unknown")
    return Resolved(0, True, "drums") if word in DRUM_WORDS else Resolved(_STEM_PROGRAM[word], False, "stem")


def _word_read(words: Sequence[str]) -> str | None:
    """Return the word a name without a GM name is read by: its first drum word, else the first stem word hit."""
    drum = next((w for w in words if w in DRUM_WORDS), None)
    return drum or next((word for word, _ in STEM_PROGRAMS if word in words), None)


def is_drum_name(name: str) -> bool:
    """Return True when a name means the drum kit ("Drums", "Drum Kit", "Percussion", ...): no GM name, a drum word."""
    return resolve_instrument(name).how == "drums"


def resolve_part(
    name: str,
    *,
    is_drum: bool | None = None,
    program: int | None = None,
    overrides: Mapping[str, Resolved] | None = None,
) -> Resolved:
    """Decide an instrument's GM program and whether it goes to the drum channel: the one rule.

    In order: the override for ``name`` (``--program NAME=PROGRAM`` values resolved,
    keyed by ``name_key``: ``resolve_overrides``) decides; else Suno's ``is_drum``
    flag (or channel 10 of a .mid) where given; else a .mid's ``program`` (melodic);
    else the name (``resolve_instrument``). A drum name ("Drums", "Percussion") stays on
    the drum channel whatever program it is given, unless the flag says it is no drum
    (how=DRUM_NAME_KEPT when that program is an override's, which placement warns of).
    Placement, clean-up and the tempo estimate all ask this; the estimate asks without
    the overrides (it reads the record before the options).
    """
    override = overrides.get(name_key(name)) if overrides else None
    if override is not None:
        found = override
    elif is_drum is True:
        found = Resolved(0, True, "drums")  # a drum name resolves to program 0 too
    elif program is not None:
        found = Resolved(program, False, "file")
    else:
        found = resolve_instrument(name)
        if is_drum is False and found.is_drum:
            found = Resolved(0, False, found.how)
    if not found.is_drum and is_drum is not False and is_drum_name(name):
        found = Resolved(found.program, True, DRUM_NAME_KEPT if override is not None else found.how)
    return found


def resolve_overrides(
    programs: Mapping[str, str | int] | Sequence[tuple[str, str | int]] | None,
) -> dict[str, Resolved]:
    """Resolve ``--program NAME=PROGRAM`` values, keyed by ``name_key(NAME)``; ValueError for a bad one.

    Names are matched as the conversion matches them (``name_key``: case and punctuation
    ignored), so two names of one instrument that resolve to different programs are a
    ValueError naming both as NAME=PROGRAM (the last would otherwise win silently); the
    same program in two spellings is fine.
    """
    pairs = programs.items() if isinstance(programs, Mapping) else programs or ()
    given = ((name_key(name), f"{name}={value}", resolve_override(value)) for name, value in pairs)
    # (program, is_drum) compared; the spelling aside
    return given_once(given, "give the same instrument two programs", agree=lambda a, b: a[:2] == b[:2])


def given_once(
    given: Iterable[tuple[_Key, str, _Value]],
    twice: str,
    agree: Callable[[_Value, _Value], bool] | None = None,
) -> dict[_Key, _Value]:
    """Return each value by its key, refusing a key given twice: ``--program``'s and ``--shift``'s one check.

    ``given``: (key, NAME=VALUE as the user gave it, value); the keys are ``name_key``'s
    (the caller's). A second value for a key is a ValueError naming the first and this
    one as given, "'Bass=33' and 'bass=40' {twice}; give one", unless ``agree`` says the
    two values are the same (then the later is kept).
    """
    values: dict[_Key, _Value] = {}
    first: dict[_Key, str] = {}  # key -> the first NAME=VALUE naming it
    for key, pair, value in given:
        shown = first.setdefault(key, pair)
        if key in values and (agree is None or not agree(values[key], value)):
            raise ValueError(f"{shown!r} and {pair!r} {twice}; give one")
        values[key] = value
    return values


def resolve_instrument_part(instrument: Instrument, overrides: Mapping[str, Resolved] | None = None) -> Resolved:
    """Return an instrument's program and drum flag by ``resolve_part``'s rule: its flag, a .mid's program, its name.

    ``overrides`` are ``--program`` values resolved, keyed by ``name_key``.
    """
    return resolve_part(instrument.name, is_drum=instrument.is_drum, program=instrument.program, overrides=overrides)


def is_drum_instrument(instrument: Instrument, overrides: Mapping[str, Resolved] | None = None) -> bool:
    """Return True when an instrument goes to the drum channel (``resolve_part``'s rule)."""
    return resolve_instrument_part(instrument, overrides).is_drum


def program_name(program: int) -> str:
    """Return the GM name of a 0-based program: 33 -> 'Electric Bass (finger)'."""
    return GM_PROGRAMS[program]


def channel_label(channel: int) -> str:
    """Return a 0-based channel as users count it: 9 -> '10'."""
    return str(channel + 1)


def resolve_override(value: str | int) -> Resolved:
    """Read the PROGRAM of ``--program NAME=PROGRAM``: 0-127, a GM name, a stem name or a drum name.

    Stem names are the words instruments are mapped by ("Piano", "Strings", "Bass",
    "Rhodes": STEM_PROGRAMS, GM_ALIASES). Raises ValueError naming what is allowed,
    with the closest accepted name when the value looks like a typo.
    """
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 127:
            return Resolved(value, False, "override")
        raise ValueError(f"program must be in 0..127, got {value}")
    found = resolve_instrument(str(value))  # a GM name, a drum name, a stem word: as an instrument's name reads
    if found.how != "unknown":
        return Resolved(found.program, found.is_drum, "override")
    close = closest(str(value), accepted_names())
    hint = f"did you mean {close!r}? " if close else ""
    raise ValueError(f"unknown program {value!r}: {hint}use 0..127, a General MIDI name, a stem name or 'Drums'")


def accepted_names() -> list[str]:
    """Return every name a program may be given by: GM names, other spellings, stem and drum words."""
    stems = [word.upper() if word in _UPPER_STEMS else word.capitalize() for word, _ in STEM_PROGRAMS]
    return [*GM_PROGRAMS, *GM_ALIASES, *stems, "Drums", "Drum Kit", "Percussion"]


CLOSE = 0.75  # difflib's similarity from which a name is taken for a typo of another ("Bas" of "Bass": 0.86)


def closest(name: str, candidates: Sequence[str]) -> str | None:
    """Return the candidate closest to ``name`` (difflib over ``name_key``: case and punctuation ignored), or None.

    A candidate whose words include every word of ``name`` ("Bass" in "Electric Bass
    (finger)") counts as close when spelling alone finds nothing; then the one holding a word near
    each word of ``name`` ("Bas": the "Bass" of "Electric Bass (finger)"), nearer than CLOSE for a
    one-word ``name`` ("Kick" gets no "Electric Bass (pick)").
    """
    keys = {name_key(c): c for c in candidates}  # as names are matched: "ドラム" is no typo of "ベース"
    import difflib  # only on a typo: not at start-up

    key = name_key(name)
    found = _closest_key(key, list(keys)) if key else None  # "" is "" at ratio 1.0: no evidence
    if found is not None:
        return keys[found]
    words = set(_words(name))
    if not words:
        return None
    containing = [c for c in candidates if words <= set(_words(c))]
    if containing:
        return containing[0]

    def nearness(candidate: str) -> float:  # how near the farthest word of ``name`` is to a word of the candidate
        theirs = _words(candidate)
        return min(max((difflib.SequenceMatcher(None, w, t).ratio() for t in theirs), default=0.0) for w in words)

    near = max(candidates, key=nearness, default=None)
    if near is None:
        return None
    # One word matched against one word of a longer name is weak evidence: it must be nearer than CLOSE
    # ("Kick" is "pick" at exactly 0.75, one letter of four, and no typo of "Electric Bass (pick)").
    ratio = nearness(near)
    return near if ratio > CLOSE or (ratio == CLOSE and len(words) > 1) else None


def read_by_word(value: str | int) -> str | None:
    """Return a warning when a ``--program`` PROGRAM was read by a word inside it and a GM name is close to it all.

    "Fretles Bass" resolves by its stem word "Bass" (33, Electric Bass (finger)), silently
    so; when the value also holds a word no table knows (``_known_word``: the mark of a
    misspelling, as "Fretles" is) and a General MIDI name other than the program chosen
    is close to the whole value (``closest``: "Fretless Bass"), this says what was
    chosen and that name. Values made of known words alone ("Electric Guitar", "Synth
    Bass", "Strings 1") are shortened names read on purpose: no warning. None for a
    GM name, other spelling, number, whole stem or drum name, or a value with no close
    GM name; the value's resolving is untouched (``resolve_override``).
    """
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, str) or text.isdigit():
        return None
    found = resolve_instrument(text)
    words = _words(text)
    word = _word_read(words) if found.how in ("stem", "drums") else None
    if word is None or all(_known_word(w) for w in words):
        return None
    close = closest(text, GM_PROGRAMS)
    if close is None or (not found.is_drum and gm_program(close) == found.program):
        return None
    shown = next((m for m in re.findall(r"[^\W_]+", text) if m.casefold() == word), word)
    chosen = "the drum kit (channel 10)" if found.is_drum else f"{found.program} {program_name(found.program)}"
    return f'program "{text}" read as {chosen} by its word "{shown}"; did you mean "{close}"?'


@cache
def _table_words() -> frozenset[str]:
    """Every word of the tables' names: GM programs, other spellings, stem and drum words."""
    return (
        frozenset(w for name in (*GM_PROGRAMS, *GM_ALIASES) for w in _words(name))
        | DRUM_WORDS
        | {word for word, _ in STEM_PROGRAMS}
    )


def _known_word(word: str) -> bool:
    """True for a number or a word of the tables' names, a plural of one too ("Guitars", "Basses")."""
    known = _table_words()
    return word.isdigit() or word in known or (word.endswith("s") and (word[:-1] in known or word[:-2] in known))


def _closest_key(key: str, keys: Sequence[str]) -> str | None:
    """Return the key most like ``key`` by difflib's ratio, from CLOSE up; the first of ``keys`` on a tie.

    As ``difflib.get_close_matches`` scores (its quick bounds first), but a tie goes to
    the earlier key ("Synth Bas": "Synth Bass 1", not 2) rather than the larger string.
    """
    import difflib

    matcher, best, best_ratio = difflib.SequenceMatcher(), None, CLOSE
    matcher.set_seq2(key)
    for candidate in keys:
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() < best_ratio or matcher.quick_ratio() < best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio or (ratio == best_ratio and best is None):
            best, best_ratio = candidate, ratio
    return best


def unmatched_overrides(programs: Mapping[str, object], names: Sequence[str]) -> list[str]:
    """Return a warning for each program override whose name matches none of ``names``.

    Each names the instruments that exist and the closest one.
    """
    present = {name_key(n) for n in names}
    return [f'a program was given for "{name}", but no instrument has that name {names_none(name, names)}'
            for name in programs
            if name_key(name) not in present]  # fmt: skip


def names_none(name: str, names: Sequence[str]) -> str:
    """Return the end of a warning for a NAME (``--program``, ``--shift``) that matches none of ``names``.

    Both options match names alike (``name_key``); this names the instruments there and,
    when one is near (``closest``), asks "did you mean" it.
    """
    shown = ", ".join(f'"{n}"' for n in names) or "none"
    close = closest(name, names)
    hint = f'; did you mean "{close}"?' if close else ""
    return f"(instruments: {shown}){hint}"


def program_table() -> list[str]:
    """Return the accepted program names as lines: GM programs, other spellings, stem and drum names."""
    lines = ["General MIDI programs (number as written in the file, 0-based):"]
    lines += [f"  {number:3d}  {name}" for number, name in enumerate(GM_PROGRAMS)]
    lines.append("Other spellings:")
    lines += [f"  {number:3d}  {name}" for name, number in GM_ALIASES.items()]
    lines.append("Stem names (a word of the instrument's name):")
    lines += [f"  {number:3d}  {word}  ({GM_PROGRAMS[number]})" for word, number in STEM_PROGRAMS]
    lines.append("Drum names (channel 10): " + ", ".join(sorted(DRUM_WORDS)))
    return lines


@cache
def _parenthesized_programs() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The GM names that end in a parenthesis ("Electric Bass (finger)"), as (words before, words inside)."""
    split = (re.fullmatch(r"(.*?)\s*\(([^()]*)\)", name) for name in GM_PROGRAMS)
    return tuple((tuple(_words(m[1])), tuple(_words(m[2]))) for m in split if m is not None)


def completes_program_name(before: str, inside: str) -> bool:
    """True when ``before (inside)`` ends with a GM program's name: "Song - Electric Bass" and "finger".

    Such a parenthesis is part of an instrument's name (as ``--split`` names its files),
    not a Suno stem's ``Title (Stem)``.
    """
    words, inner = _words(before), tuple(_words(inside))
    return any(inner == want and len(words) >= len(base) and tuple(words[len(words) - len(base):]) == base
               for base, want in _parenthesized_programs())  # fmt: skip


@_remembered
def name_key(name: str) -> str:
    """Return the form names are compared in: case, spaces and punctuation ignored.

    Every letter and digit of any script is kept ("ベース", "Бас"), casefolded and in
    compatibility form (NFKD, then NFC: full-width "Ｂａｓｓ" is "bass"); a Latin
    letter's accents fold away ("Café" is "cafe"), other scripts keep their marks (the
    dakuten of "ベ", the breve of "й": they make other letters). A name of ASCII alone
    keys as it always has: its a-z and 0-9, lower case.
    """
    if name.isascii():  # every name of the API's tables and Suno's stems: no normalization to do
        return _key(name)
    import unicodedata  # only for a name beyond ASCII: not on a plain conversion's start-up

    kept: list[str] = []
    base = ""  # the last letter or digit kept: its marks stay unless it is ASCII (a Latin accent)
    for char in unicodedata.normalize("NFKD", name.casefold()):
        kind = unicodedata.category(char)[0]
        if kind == "M":
            if base and not base.isascii():
                kept.append(char)
            continue
        base = char if kind in "LN" else ""
        if base:
            kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))
