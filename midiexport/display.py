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

# C0 and C1 controls and DEL; line and paragraph separators; bidi marks, embeddings,
# overrides and isolates (Unicode TR9); surrogates (bytes a file name could not decode).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SURROGATE_BYTES = range(0xDC80, 0xDD00)  # os.fsdecode's surrogateescape: byte 0x80-0xFF
# The nouns of the count labels (model.py's, midifile.py's), plural to singular: a new label
# whose noun is missing stays plural, and the test of every label says so.
_SINGULAR = {"notes": "note", "velocities": "velocity", "numbers": "number", "names": "name",
             "instruments": "instrument", "fragments": "fragment", "tracks": "track", "ghosts": "ghost",
             "hits": "hit", "signatures": "signature", "tempos": "tempo", "changes": "change",
             "chunks": "chunk", "bytes": "byte"}  # fmt: skip


def plural(count: int, word: str) -> str:
    """Return ``word`` as it reads after ``count``: "file" for 1, "files" otherwise."""
    return word if count == 1 else f"{word}s"


def agree(count: int, phrase: str) -> str:
    """Return a plural ``phrase`` as it reads after ``count``: for 1, its first plural noun singular.

    For the kinds of count (model.py's and midifile.py's labels, "notes moved to the grid"),
    which are keys of data as they are: "1 note moved to the grid", "1 velocity clamped to
    0-1"; other counts, and a phrase with no noun of ``_SINGULAR``, are returned as they are.
    """
    words = phrase.split(" ")
    at = next((i for i, word in enumerate(words) if word in _SINGULAR), None) if count == 1 else None
    if at is not None:
        words[at] = _SINGULAR[words[at]]
    return " ".join(words)


def printable(text: str) -> str:
    """Return ``text`` with every control, bidi and surrogate character escaped.

    ESC becomes ``\\x1b``, a newline ``\\n``, U+202E ``\\u202e``, and an undecodable
    file-name byte 0xFF (surrogate U+DCFF) ``\\xff``. Other text is unchanged.
    """
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code in _SURROGATE_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
