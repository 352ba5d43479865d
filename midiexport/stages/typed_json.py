"""Typed decoding: the common envelopes straight from JSON bytes into note Structs.

``orjson.loads`` builds a dict per note (four keys, four values), the normalize stage
then copies every field into a list and numpy guesses its type, and at the end the whole
tree is freed: about 70% of a large conversion (issue 16's profile at 1M notes).
Decoding with msgspec against a schema does the type check in the parser and builds one
small Struct per note instead, about 2.5x faster than ``orjson.loads`` of the same text.

The schema covers the envelopes of PRODUCT.md whose notes are plain numbers: any
nesting of ``data``/``midiData``/``instruments`` (a list of named note lists, or a name
-> notes object), an array of records, ``data`` as a list of results. Every key the
normalize stage reads from an envelope is declared: the schema is built from
``protocol.ENVELOPE_KEYS``; others are skipped. Anything else (a string or bool or null
for a number, a missing field, an unknown shape, a saved ``midiRecord``) does not fit,
and ``decode`` returns None: the caller then takes the general path, whose messages and
repairs are the reference.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec

from .. import protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_INT_RANGE = (-(2**63), 2**64 - 1)  # orjson reads integers outside this range as floats

Scalar = str | int | float | bool | None


class Fallback(Exception):
    """The typed result cannot stand for the general one: take the general path."""


class Note(msgspec.Struct, gc=False):
    """One note exactly as the API sends it; numbers only (a bool, string or null does not fit)."""

    pitch: float
    start: float
    end: float
    velocity: float


class Part(msgspec.Struct):
    notes: list[Note]
    name: Scalar = None
    is_drum: Scalar = None


# The envelope keys whose values are more than a scalar; every other key of
# protocol.ENVELOPE_KEYS is a scalar. Forward references ("Level") resolve in this module.
_SHAPES: dict[str, Any] = {
    "data": "Level | list[Level] | Scalar",
    "midiData": "Level | Scalar",
    "instruments": "list[Part] | dict[str, list[Note]] | None",
    "midiRecord": "None",  # a saved music record: the general path
    "musicRecord": "Any",
    "response": "Any",  # a music task's answer: only named, never decoded further
}

Level = msgspec.defstruct(
    "Level",
    [(key, f"{_SHAPES.get(key, 'Scalar')} | msgspec.UnsetType", msgspec.UNSET) for key in protocol.ENVELOPE_KEYS],
    module=__name__,
)
"""One envelope level, a field per protocol.ENVELOPE_KEYS; a field left UNSET was not in the JSON object."""

ENVELOPE_KEYS = frozenset(Level.__struct_fields__)
"""Every key the normalize stage reads from an envelope (protocol.ENVELOPE_KEYS)."""

_DECODER: Any = msgspec.json.Decoder(Level | list[Level])  # type: ignore[valid-type]  # built from data


def decode(raw: bytes) -> Any:
    """Return the document as dicts and lists holding only ENVELOPE_KEYS, note lists as
    lists of Note; None when it does not fit the schema (then parse it the general way)."""
    try:
        document = _DECODER.decode(raw.removeprefix(protocol.UTF8_BOM))
        return _plain(document)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError, Fallback):
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, Level):
        present = ((key, getattr(value, key)) for key in Level.__struct_fields__)
        return {key: _plain(item) for key, item in present if item is not msgspec.UNSET}
    if isinstance(value, Part):
        return {"name": value.name, "notes": value.notes, "is_drum": value.is_drum}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):  # instruments as name -> notes
        return value
    if type(value) is int and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise Fallback  # orjson would have made it a float
    return value


def is_typed(notes: list[Any]) -> bool:
    """Return True for a note list that ``decode`` made (its notes are Note Structs)."""
    return bool(notes) and type(notes[0]) is Note


def columns(note_lists: list[list[Note]]) -> tuple[npt.NDArray[np.float64], ...]:
    """Return pitch, start, end and velocity of typed notes as float64 columns, the lists' notes one after another."""
    import numpy as np

    count = sum(map(len, note_lists))
    return tuple(
        np.fromiter(map(attrgetter(f), chain.from_iterable(note_lists)), np.float64, count=count)
        for f in protocol.NOTE_FIELDS
    )
