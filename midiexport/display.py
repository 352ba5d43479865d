"""Display: make any text safe to print on one terminal line.

Names come from files and servers, so they may hold ESC sequences that move the
cursor or recolour the terminal, BEL, newlines that split a one-line error, C1
controls, Unicode bidi overrides that reorder what is shown, and lone surrogates
(undecodable bytes of a file name) that cannot even be encoded. ``printable`` spells
each of them as a visible escape; every line the CLI prints passes through it.
Foundation module: imports nothing from the package.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

# C0 and C1 controls and DEL; line and paragraph separators; bidi marks, embeddings,
# overrides and isolates (Unicode TR9); surrogates (bytes a file name could not decode).
# Patterns as text, compiled on first use (``_compiled``): a quiet run uses none.
_SURROGATES = "\ud800-\udfff"  # a character class's range
_UNSAFE = f"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069{_SURROGATES}]"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SURROGATE = f"[{_SURROGATES}]"
_SURROGATE_BYTES = range(0xDC80, 0xDD00)  # os.fsdecode's surrogateescape: byte 0x80-0xFF
# The nouns of the count labels (model.py's, midifile.py's), plural to singular: a new label
# whose noun is missing stays plural, and the test of every label says so.
_SINGULAR = {"notes": "note", "velocities": "velocity", "numbers": "number", "names": "name",
             "instruments": "instrument", "fragments": "fragment", "tracks": "track", "ghosts": "ghost",
             "hits": "hit", "signatures": "signature", "tempos": "tempo", "changes": "change",
             "chunks": "chunk", "bytes": "byte"}  # fmt: skip


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """One of this module's patterns, compiled once (``re``'s own cache costs a lookup of its flags each call)."""
    return re.compile(pattern)


def plural(count: int, words: str) -> str:
    """Return ``words`` as they read after ``count``: the one helper for every count printed.

    A count label (model.py's and midifile.py's kinds, "notes moved to the grid"), a key of
    data and always plural, has its first noun of ``_SINGULAR`` made singular for 1 ("1 note
    moved to the grid", "1 velocity clamped to 0-1") and stays as it is for other counts.
    Words holding no such noun are a singular noun ("file", "stem"): an "s" is added for any
    count but 1 ("2 files"). Every label has a noun of the table (its test says so), so
    none is taken for a singular noun.
    """
    split = words.split(" ")
    at = next((i for i, word in enumerate(split) if word in _SINGULAR), None)
    if at is None:
        return words if count == 1 else f"{words}s"
    if count == 1:
        split[at] = _SINGULAR[split[at]]
    return " ".join(split)


def printable(text: str) -> str:
    """Return ``text`` with every control, bidi and surrogate character escaped.

    ESC becomes ``\\x1b``, a newline ``\\n``, U+202E ``\\u202e``, and an undecodable
    file-name byte 0xFF (surrogate U+DCFF) ``\\xff``. Other text is unchanged.
    """
    if text.isprintable():  # no control, format (bidi), separator or surrogate character: nothing to escape
        return text
    return _compiled(_UNSAFE).sub(_escape, text)


def json_text(value: Any) -> Any:
    """Return ``value`` (a string, or lists and dicts of them) with every surrogate spelled as ``printable`` spells it.

    For JSON midiexport writes (``--report``, ``info --json``): a file name's undecodable
    byte 0xE9 (surrogate U+DCE9) becomes the four characters ``\\xe9``, any other lone
    surrogate ``\\udXXX``, so the text is valid UTF-8 and says what the terminal says. The
    name's bytes come back by turning each ``\\xNN`` into byte NN (``os.fsencode`` of the
    rest): exact for every name that does not itself hold ``\\x`` and two hex digits.
    Strings without a surrogate, and all other values, are returned as they are.
    """
    if isinstance(value, str):
        return value if value.isprintable() else _compiled(_SURROGATE).sub(_escape, value)  # a surrogate is not
    if isinstance(value, dict):
        return {json_text(key): json_text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_text(item) for item in value]
    return value


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code in _SURROGATE_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
