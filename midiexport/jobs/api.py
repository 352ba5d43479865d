"""The one-call API: JSON in, .mid bytes out, for scripts that need no files."""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..options import DEFAULT_OPTIONS, ConvertOptions
from ..outputs.smf import write_midi
from ..stages.convert import convert_record
from ..stages.normalize import normalize_payload


def convert_payload(payload: Any, options: ConvertOptions = DEFAULT_OPTIONS) -> bytes:
    """Convert one record (JSON bytes/str, or parsed values) into Standard MIDI File bytes.

    ``options`` as for ``convert_record``; ``options.format`` is the SMF format.
    Raises InputError when the payload is not JSON or holds more than one record, and
    what ``convert_record`` raises when the record has nothing to convert.
    """
    records = normalize_payload(payload)
    if len(records) != 1:
        raise InputError(f"the payload holds {len(records)} records; use normalize_payload for several")
    return write_midi(convert_record(records[0], options), format=options.format)
