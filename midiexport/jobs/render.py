"""Render: one Record becomes the bytes of its files (convert, split, encode).

Shared by every job that ends in .mid files: converting files, fetching tasks.
"""

from __future__ import annotations

from typing import Any

from ..errors import MidiExportError
from ..io import files
from ..model import Record
from ..options import ConvertOptions, name_fields
from ..outputs.smf import write_midi
from ..stages.convert import convert_record, split_song
from . import naming
from .runner import COMPANION, OutputFile, Rendered


def render_record(
    record: Record, options: ConvertOptions, *, stem: str, keep: bytes | None = None,
    values: dict[str, str | None] | None = None,
) -> Rendered:  # fmt: skip
    """Convert and encode one record; a MidiExportError becomes the Rendered's error.

    ``keep``: JSON bytes to save beside the .mid (fetch keeps the raw answer).
    ``values``: the record's name-template fields, when ``options.name`` is a template;
    with ``split`` and an ``{instrument}`` field the template names each file whole.
    """
    try:
        song = convert_record(record, options)
        songs = split_song(song) if options.split else [song]
        suffixes = _split_suffixes(song) if options.split else [""]
        if options.split and options.name and values is not None and "instrument" in name_fields(options.name):
            suffixes = [naming.fill(options.name, fallback=f"{stem}{suffix}", **{**values, "instrument": track.name})
                        for suffix, track in zip(suffixes, song.tracks)]  # fmt: skip
            stem = ""
        encoded = tuple(
            OutputFile(suffix, ".mid", write_midi(s, format=options.format)) for suffix, s in zip(suffixes, songs)
        )
    except MidiExportError as exc:  # its name is still claimed (``Destination.reserve``), unless --split's
        return Rendered(record.place(), "" if options.split else stem, error=exc, notes=record.note_count)
    if keep is not None:
        encoded += (OutputFile("", COMPANION, keep),)
    return Rendered(record.place(), stem, encoded, song.report, notes=song.note_count)


def _split_suffixes(song: Any) -> list[str]:
    return ["-" + files.safe_name(track.name, fallback="track") for track in song.tracks]
