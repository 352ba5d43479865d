"""The one-call API: JSON in, .mid bytes out; a path in, .mid files out; pretty_midi objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InputError, check_argument
from ..model import Record, Song
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
    check_argument("convert_payload", "options", options, ConvertOptions)
    records = normalize_payload(payload)
    if len(records) != 1:
        raise InputError(f"the payload holds {len(records)} records; use normalize_payload for several")
    return write_midi(convert_record(records[0], options), format=options.format)


class Written(list[Path]):
    """The paths ``convert_file`` wrote, in order: a list that also says what it kept and what its search left out.

    ``existing``: the files that existed and were kept, without ``overwrite`` (a re-run),
    in order; ``left_out``: how many .mid files midiexport wrote the folder search left out
    (``convert_files.BatchInputs``); 0 for a file named alone.
    """

    def __init__(self, paths: list[Path], *, left_out: int, existing: list[Path]) -> None:
        super().__init__(paths)
        self.left_out = left_out
        self.existing = existing


def convert_file(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    options: ConvertOptions = DEFAULT_OPTIONS,
    *,
    overwrite: bool = False,
) -> Written:
    """Convert a file or folder into .mid files, as ``midiexport convert`` does; return their paths.

    ``path``: a JSON or JSON Lines record file, a .mid or a .zip of Suno's .mid stems, or
    a folder of them.

    ``out``: a path ending in .mid (one result only), a folder (created), or None for
    beside the input. Names, ``options.split`` and ``options.name`` as on the command
    line; a folder is searched as on the command line, leaving out the .mid files
    midiexport wrote (``convert_files.find_batch_inputs``), counted in the returned
    list's ``left_out`` (``Written``). An existing file is never replaced unless
    ``overwrite``: as on the command line, an input whose files all exist is skipped
    before it is read, and a file found to exist when it would be written is kept; either
    is no error, and the returned list's ``existing`` names those files, so a re-run
    returns what it wrote (nothing, when the run had finished) and what it kept.
    Raises the first error met: InputError when the file cannot be read (or a folder
    holds only .mid files midiexport wrote), RecordError when a record has nothing to
    convert or more instruments than one MIDI file holds, OutputError when a file cannot
    be written or the results do not fit in one named file.
    """
    check_argument("convert_file", "path", path, (str, os.PathLike))
    check_argument("convert_file", "options", options, ConvertOptions)
    from .convert_files import find_batch_inputs, run_batch
    from .runner import Destination

    destination = Destination(None if out is None else os.fspath(out), overwrite)
    found = find_batch_inputs([os.fspath(path)])
    if found.refusal is not None:
        raise found.refusal
    written: list[Path] = []
    existing: list[Path] = []
    for pending in run_batch(found.sources, options, destination):
        for outcome in pending.result():
            if outcome.error is not None:
                raise outcome.error
            written += [Path(p) for p in outcome.paths]
            existing += [Path(p) for p in outcome.existing]
    return Written(written, left_out=found.left_out, existing=existing)


def to_pretty_midi(song_or_record: Song | Record, options: ConvertOptions = DEFAULT_OPTIONS) -> Any:
    """Return a ``pretty_midi.PrettyMIDI`` of a Song, or of a Record converted with ``options``.

    pretty_midi is optional (``pip install midiexport[pretty]``); ImportError says so
    when it is missing. The file is written and read back, so pretty_midi sees exactly
    what a .mid would hold.
    """
    check_argument("to_pretty_midi", "song_or_record", song_or_record, (Song, Record))
    check_argument("to_pretty_midi", "options", options, ConvertOptions)
    import io

    try:
        import pretty_midi  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(
            "to_pretty_midi needs pretty_midi, which is not installed: pip install 'midiexport[pretty]'"
        ) from exc
    song = song_or_record if isinstance(song_or_record, Song) else convert_record(song_or_record, options)
    return pretty_midi.PrettyMIDI(io.BytesIO(write_midi(song, format=options.format)))
