"""The one-call API: JSON in, .mid bytes out, for scripts that need no files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..defaults import DEFAULT_BPM
from ..errors import InputError
from ..outputs.smf import write_midi
from ..stages.convert import convert_record
from ..stages.normalize import normalize_payload


def convert_payload(
    payload: Any,
    *,
    bpm: float | str = DEFAULT_BPM,
    ppq: int | None = None,
    format: int = 1,
    programs: Mapping[str, str | int] | None = None,
    strict: bool = False,
    quantize: str | None = None,
) -> bytes:
    """Convert one record (JSON bytes/str, or parsed values) into Standard MIDI File bytes.

    Options as ``convert_record``: ``bpm`` a tempo or "auto", ``ppq`` 480 (960 with
    "auto"), ``quantize`` a grid such as "1/16".

    Raises InputError when the payload is not JSON or holds more than one record, and
    what ``convert_record`` raises when the record has nothing to convert.
    """
    records = normalize_payload(payload)
    if len(records) != 1:
        raise InputError(f"the payload holds {len(records)} records; use normalize_payload for several")
    song = convert_record(records[0], bpm=bpm, ppq=ppq, programs=programs, strict=strict, quantize=quantize)
    return write_midi(song, format=format)
