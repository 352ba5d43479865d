"""JSON input: the records of a JSON file's bytes, read as ``convert`` reads a plain file.

One rule for every place JSON bytes come from (a plain file, a ``.zip`` member), for
``convert`` and ``info`` alike, so a record is never read one way here and another there:

- a name ending in ``.jsonl`` or ``.ndjson`` (``files.names_json_lines``) is JSON Lines: each
  line is read on its own, and a bad line fails alone (its InputError in its place);
- any other name holds one JSON document (a record, an array of records, any envelope of
  README "Accepted shapes"). When it is not one valid document but its first non-blank
  line is a whole JSON object or array by itself and more lines follow, it is JSON Lines
  saved under ``.json``: read line by line as above. Otherwise the document's own error
  is raised (a pretty-printed file with one syntax error fails once, where it is).

Bytes that open as a .zip archive are said to be one, not "not valid JSON" (standard
input, a .zip named ``.json``): a .zip is read as an archive only from a file named so.
Bytes whose first character cannot open a JSON value (RFC 8259, section 3: an object,
array, string, number, true, false or null), such as a README or an image, are said to be
no JSON at all (``not_json_error``), not JSON with a syntax error to mend.

Lines are split on ``\\n`` only, as ``files.read_lines`` reads a plain ``.jsonl`` (a ``\\r``
before it is JSON whitespace), so a line has the same number wherever the file is.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import model
from ..errors import InputError
from ..io.files import names_json_lines, names_midi
from ..model import Record
from ..protocol import UTF8_BOM
from ..stages.normalize import normalize_lines, normalize_payload, parse_json
from .naming import titled_after_member

# How a .zip begins: a local file header, or the end record of an archive holding nothing (PKWARE's APPNOTE 4.3).
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# The bytes a JSON text's first value may begin with (RFC 8259, section 3), after whitespace and a BOM.
JSON_OPENINGS = frozenset(b'{["-0123456789tfn')
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # a record saved as UTF-16 (UTF-32 LE's BOM begins as UTF-16 LE's)


class JsonRecords(NamedTuple):
    """What one JSON input holds: its records in order (a line that failed: its InputError there)."""

    items: list[Record | InputError]
    by_line: bool  # read as JSON Lines: each record is numbered by its line, as a plain .jsonl's


def is_midi_data(data: bytes, name: str) -> bool:
    """True for a Standard MIDI File: by its header, or by its name (``files.names_midi``, the one rule)."""
    return data.startswith(b"MThd") or names_midi(name)


def read_member_records(data: bytes, name: str, member_name: str) -> JsonRecords | None:
    """Return the records of one .zip member read as the same file given alone; None for a .mid.

    ``convert`` and ``info`` alike: a .mid by its bytes or name (``is_midi_data``), read by
    the caller (a Record to convert, a file to describe); else JSON by ``read_json`` (JSON
    Lines by ``member_name``'s suffix or by its lines), each record with neither title nor
    task id titled after the member (``naming.titled_after_member``). ``name`` says where
    in messages ("songs.zip: a.json").
    Raises InputError when the member is no valid JSON (and no JSON Lines either).
    """
    if is_midi_data(data, member_name):
        return None
    items, by_line = read_json(data, source=name, lines=names_json_lines(member_name))
    titled = [item if isinstance(item, InputError) or holds_no_record(item) else titled_after_member(item, member_name)
              for item in items]  # fmt: skip
    return JsonRecords(titled, by_line)


def blank_lines_error(name: str) -> InputError:
    """The error of a JSON Lines input with no line of text: it holds no record, and nothing converted is no success."""
    return InputError(f"{name} holds no record (no line holds text)", input=name)


def holds_no_record(record: Record) -> bool:
    """True for JSON that is no MIDI record at all (``{"hello": "world"}``): no song to title or show.

    An empty record of a real task (``midiData`` empty for a split_stem separation) has a
    task id, and is a record.
    """
    return record.status == model.EMPTY and not (record.task_id or record.audio_id or record.title)


def read_json(data: bytes, *, source: str, lines: bool) -> JsonRecords:
    """Return the records of JSON bytes, by the rules of the module docstring.

    ``source`` names the input in messages ("songs.zip: saved.jsonl"); ``lines``: its name
    says JSON Lines (``files.names_json_lines``, ``InputFile.lines``).
    Raises InputError when a file that is not JSON Lines is no valid JSON document and
    does not look like JSON Lines either (``zip_error`` when it is a .zip archive,
    ``not_json_error`` when it is no JSON at all).
    """
    if not lines:
        try:
            return JsonRecords(list(normalize_payload(data, source=source)), by_line=False)
        except InputError as exc:
            if data.startswith(ZIP_SIGNATURES):
                raise zip_error(source) from exc
            if not opens_json(data):
                raise not_json_error(source) from exc
            if not looks_like_json_lines(data):
                raise
    return JsonRecords(list(normalize_lines(enumerate(data.split(b"\n"), 1), source=source)), by_line=True)


def zip_error(source: str) -> InputError:
    """The error of a .zip archive met where JSON was expected (standard input): what it is, and what to do."""
    return InputError(f"{source} is a .zip archive, not JSON; a .zip is read from a file whose name ends in .zip: "
                      "save it as one and give that file", input=source)  # fmt: skip


def opens_json(data: bytes) -> bool:
    """True when the first non-blank byte (after a UTF-8 BOM) may begin a JSON value; True for blank bytes.

    True for a UTF-16 BOM too: JSON in another encoding, whose own error (not UTF-8) says what is wrong.
    """
    if data.startswith(UTF16_BOMS):
        return True
    start = data.removeprefix(UTF8_BOM).lstrip()[:1]
    return not start or start[0] in JSON_OPENINGS


def not_json_error(source: str) -> InputError:
    """The error of an input that is no JSON at all (a text or a binary file), nor a .mid: what to give instead."""
    return InputError(f"{source} is neither JSON nor a .mid file; give a saved record (.json or .jsonl) or a .mid",
                      input=source)  # fmt: skip


def looks_like_json_lines(data: bytes) -> bool:
    """True when more than one line holds text and the first is a whole JSON object or array by itself.

    A pretty-printed document with a syntax error opens with a line such as ``{``, no value
    on its own: it is no JSON Lines, and its own error (with its position) is the one to say.
    """
    lines = (line for line in data.removeprefix(UTF8_BOM).split(b"\n") if line.strip())
    first, second = next(lines, None), next(lines, None)
    if first is None or second is None or not first.lstrip().startswith((b"{", b"[")):
        return False
    try:
        parse_json(first, source="")
    except InputError:
        return False
    return True
