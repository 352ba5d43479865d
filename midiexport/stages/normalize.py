"""Normalize stage: any JSON envelope of MIDI note data -> Records with column notes.

The same notes reach users in many envelopes (PRODUCT.md, "Shapes seen in the wild"):
the record-info answer or its ``data``, the completion callback (times sometimes sent
as strings), resellers' variants (``data`` as a list, ``instruments`` as a name -> notes
object, a ``midi_url`` beside the notes, a bare link), bare ``midiData``, arrays of
records and JSON Lines. ``normalize_payload`` reads any of them and hands on one
``Record`` per task, whose notes are numpy columns in seconds.

A note with no obvious repair is left out and listed in ``Record.issues``; the rest of
the record is kept. A record with nothing to convert is still returned, with a status
(pending, failed, empty, link) and a ``reason`` that ``convert`` turns into its error.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import model, protocol
from ..errors import InputError
from ..model import Instrument, NoteIssue, Record

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAX_TIME_S = 86_400.0
"""Latest note time accepted, in seconds (24 hours); later times cannot be real songs."""
LATEST = f"{MAX_TIME_S / 3600:g} hours"  # that bound, as the messages say it

MAX_ISSUES = 1000
"""Left-out notes described one by one per record; beyond that they are only counted."""

MAX_VALUE_DEPTH = 64
"""Nesting refused in a value kept for messages (a name, a bad note field): a real one is
text or a number; Python's repr recursion stops near 1,000 levels, orjson reads 1,024."""
TYPED_MIN_BYTES = 2_000_000
"""Smallest JSON text decoded straight into typed notes (stages/typed_json.py) while msgspec
is not loaded yet: importing it costs 10-25 ms, typed decoding saves about 5 ms per MB
(bench/bench_convert.py records, 2 busy cores), so a one-song CLI run is faster without it."""

BYTES_PER_CONTAINER = 8
"""Fewest bytes of JSON text per list or object (``[`` or ``{``) read: a note is an object of
four fields, 40 bytes or more. Parsed, each list or object is a Python object of 56-230 bytes
and each record one more ``Record``, so a text made of them (``[[[[...]]]]``, ``[[],[],...]``,
``[{},{},...]``) takes 30-200 times its size and seconds per MB to read (fuzzer seed 11:
20 million lists in a 52 MB text took 2 GB)."""
CONTAINER_CHECK_BYTES = 65_536
"""Texts shorter than this are read unchecked (at most some 20,000 lists and objects)."""

JOINED_MIN_INSTRUMENTS = 2
"""Fewest instruments whose notes are read joined when some note fails (``_read_failing``): one
instrument of 31 notes reads in about 110 µs one by one, 130 µs joined; 2 in 200 and 160, 16 in 1.4 and 0.65 ms."""

_PLAIN = "_plain"  # meta key: the JSON text holds no true/false
_MISSING = object()
_NOT_AN_OBJECT = object()
_EMPTY_HINT = "midiData is empty (this is documented for separations of type split_stem)"


def parse_json(raw: bytes | str, *, source: str, line: int | None = None) -> Any:
    """Parse JSON text (a UTF-8 byte-order mark is allowed) into Python values.

    Raises InputError naming the input (and line) when it is not valid JSON, is empty,
    is nested deeper than 1024 levels, or is too dense in lists and objects to be a
    record (``_refuse_dense``).
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    _refuse_dense(raw, source=source, line=line)
    return _loads(raw, source=source, line=line)


def _refuse_dense(raw: bytes, *, source: str, line: int | None = None) -> None:
    """Raise InputError when ``raw`` (``CONTAINER_CHECK_BYTES`` or more) holds more than one list or
    object per ``BYTES_PER_CONTAINER`` bytes: no record is written so, and parsing it would take
    many times its size. Counting costs about 0.6 ms per MB."""
    if len(raw) < CONTAINER_CHECK_BYTES:
        return
    containers = raw.count(b"[") + raw.count(b"{")
    if containers * BYTES_PER_CONTAINER > len(raw):
        where = f"{source}: line {line}" if line is not None else source
        raise InputError(
            f"{where} holds {containers:,} JSON lists and objects in {len(raw):,} bytes, more than one per "
            f"{BYTES_PER_CONTAINER} bytes; no record of notes is written so densely; refused",
            input=source,
            line=line,
        )


TOO_DEEP = "nested more than 1024 levels deep"  # orjson's limit, said the same by both readers


def _loads(raw: bytes, *, source: str, line: int | None) -> Any:
    import orjson

    raw = raw.removeprefix(protocol.UTF8_BOM)
    where = f"{source}: line {line}" if line is not None else source
    if not raw.strip():
        raise InputError(f"{where} is empty; expected a JSON record", input=source, line=line)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).split(":", 1)[0]
        if "number" in reason:  # a number beyond a double (1e999, 5000 digits): JSON allows it
            return _loads_large_numbers(raw, where=where, source=source, line=line)
        if "depth" in reason or "recursion" in reason:
            reason = TOO_DEEP
        raise _not_json(where, reason, source=source, line=line) from exc


def _not_json(where: str, reason: str, *, source: str, line: int | None) -> InputError:
    return InputError(
        f"{where} is not valid JSON ({reason}); check that the file is a saved record", input=source, line=line
    )


def _loads_large_numbers(raw: bytes, *, where: str, source: str, line: int | None) -> Any:
    """Parse JSON text that orjson refused for a number too large for a double (Python's reader, slower).

    JSON sets no limit on numbers (RFC 8259, section 6), so one overflowing number must not cost
    the whole song: it is read as orjson reads the numbers it can, and the note it is in then gets
    its field's rule from the range checks (a velocity clamped, a time not finite left out, a pitch
    outside 0-127 left out). A fraction or exponent beyond a double is +-inf (Python's float); an
    integer outside 64 bits a float too, as orjson reads it, never a Python int of thousands of
    digits (``int`` refuses over 4,300 digits: sys.get_int_max_str_digits). NaN and Infinity, which
    JSON does not have, stay refused. Only reached when orjson refuses a number: the common path is
    orjson's.
    """
    import json

    def integer(text: str) -> int | float:
        if len(text) > 20:  # beyond 64 bits whatever its digits: no int() of thousands of digits
            return float(text)
        value = int(text)
        return value if -(2**63) <= value < 2**64 else float(value)

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        return json.loads(raw, parse_int=integer, parse_constant=refuse)
    except RecursionError as exc:
        raise _not_json(where, TOO_DEEP, source=source, line=line) from exc
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError, a NaN or Infinity
        raise _not_json(where, str(exc).split(":", 1)[0], source=source, line=line) from exc


def normalize_payload(payload: Any, *, source: str = "<payload>", line: int | None = None) -> list[Record]:
    """Read one JSON document (bytes, str or parsed values) into its Records.

    Any envelope from PRODUCT.md is accepted; an array yields one Record per item
    (locator "record N"), ``line`` marks a JSON Lines line (locator "line N").
    Raises InputError when the text is not JSON or the document is not an object or
    an array of them.
    """
    plain = False
    if isinstance(payload, (bytes, bytearray, memoryview, str)):
        raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
        _refuse_dense(raw, source=source, line=line)  # before either decoder: both would read it all
        if len(raw) >= TYPED_MIN_BYTES or "msgspec" in sys.modules:
            typed = _typed_records(raw, source, line)
            if typed is not None:
                return typed
        # No true/false anywhere: then numpy's type inference alone tells numbers from the rest.
        plain = b"true" not in raw and b"false" not in raw
        payload = _loads(raw, source=source, line=line)
    return _records_of_document(payload, source, line, plain)


def _typed_records(raw: bytes, source: str, line: int | None) -> list[Record] | None:
    """The records of a document whose notes decode straight into typed columns, or None:
    it does not fit the schema, or a record is not complete or has a note left out, so the
    general path must say what it says (typed_json's docstring)."""
    from . import typed_json

    document = typed_json.decode(raw)
    if document is None or not isinstance(document, (dict, list)):
        return None
    try:
        records = _records_of_document(document, source, line, plain=False)  # an embedded JSON string is checked
    except (typed_json.Fallback, InputError):
        return None
    return records if all(r.status == model.COMPLETE for r in records) else None


def _records_of_document(payload: Any, source: str, line: int | None, plain: bool) -> list[Record]:
    prefix = f"line {line}" if line is not None else ""
    try:
        return _records(payload, source, line, prefix, plain)
    except RecursionError:  # a value too deep for Python's repr, met somewhere unexpected
        raise _too_deep(source, line, prefix or "a value") from None


def _records(payload: Any, source: str, line: int | None, prefix: str, plain: bool) -> list[Record]:
    if isinstance(payload, list):
        if not payload:
            where = f"{source}: {prefix}" if prefix else source
            raise InputError(f"{where} is an empty list; it holds no records", input=source, line=line)
        many = len(payload) > 1
        return [
            _record(item, source, ", ".join(p for p in (prefix, f"record {i}" if many else "") if p), {_PLAIN: plain})
            for i, item in enumerate(payload, 1)
        ]
    if isinstance(payload, dict):
        return _records_from_object(payload, source, prefix, {_PLAIN: plain})
    where = f"{source}: {prefix}" if prefix else source
    raise InputError(
        f"{where} holds {_kind(payload)}, not a MIDI record; expected a JSON object",
        input=source,
        line=line,
    )


def normalize_lines(lines: Iterable[tuple[int, bytes]], *, source: str) -> Iterator[Record | InputError]:
    """Read JSON Lines one line at a time: yield each line's Records, or its InputError.

    ``lines`` gives (1-based line number, raw bytes); blank lines are skipped. A bad
    line does not stop the others, so its error is yielded in its place, not raised.
    """
    for number, raw in lines:
        if not raw.strip():
            continue
        try:
            yield from normalize_payload(raw, source=source, line=number)
        except InputError as exc:
            yield exc


class _TooDeep(Exception):
    """A value kept for messages is nested deeper than MAX_VALUE_DEPTH (where: what it is)."""


def _too_deep(source: str, line: int | None, where: str) -> InputError:
    place = f"{source}: {where}" if where else source
    return InputError(
        f"{place} is nested more than {MAX_VALUE_DEPTH} levels deep; refused (a name or note value "
        "is text or a number)",
        input=source,
        line=line,
    )


def _refuse_deep(value: Any, where: str) -> None:
    """Raise _TooDeep when ``value`` nests lists/objects more than MAX_VALUE_DEPTH levels.

    Breadth-first, level by level: no recursion, and at most the value's size in work.
    """
    level = [value]
    for _ in range(MAX_VALUE_DEPTH):
        level = [c for item in level if isinstance(item, (list, dict)) for c in _children(item)]
        if not level:
            return
    if any(isinstance(item, (list, dict)) for item in level):
        raise _TooDeep(where)


def _children(item: list[Any] | dict[str, Any]) -> Iterable[Any]:
    return item.values() if isinstance(item, dict) else item


def _kind(value: Any) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    return names.get(type(value), type(value).__name__)


def _records_from_object(obj: dict[str, Any], source: str, locator: str, meta: dict[str, Any]) -> list[Record]:
    # Reseller shape: data is a list of {state, instruments}, one per result.
    data = obj.get("data")
    verdict = protocol.read_code(obj) if "code" in obj else None
    if isinstance(data, list) and data and (verdict is None or verdict.action == protocol.OK):
        meta = _meta(obj, meta)
        if verdict is not None and verdict.warning:
            meta["warnings"] = (verdict.warning,)
        many = len(data) > 1
        return [
            _record(item, source, ", ".join(p for p in (locator, f"result {i}" if many else "") if p), meta)
            for i, item in enumerate(data, 1)
        ]
    return [_record(obj, source, locator, meta)]


def _record(value: Any, source: str, locator: str, meta: dict[str, Any] | None = None) -> Record:
    """Peel the envelopes of one record; never raises for content, only describes it."""
    meta = dict(meta or {})
    if not isinstance(value, dict):
        return Record(source, model.EMPTY, locator, reason=f"is {_kind(value)}, not a MIDI record")
    if isinstance(value.get("midiRecord"), dict):  # saved by `fetch --music-task`
        _music_meta(value.get("musicRecord"), meta)
        value = value["midiRecord"]
    meta = _meta(value, meta)
    if "code" in value:
        verdict = protocol.read_code(value)
        if verdict.action != protocol.OK:
            return _failed_by_code(value, verdict, source, locator, meta)
        if verdict.warning:
            meta["warnings"] = (*meta.get("warnings", ()), verdict.warning)
    if "data" in value and not _looks_like_midi(value):
        return _from_data(value["data"], source, locator, meta)
    return _from_task(value, source, locator, meta)


def _from_data(data: Any, source: str, locator: str, meta: dict[str, Any]) -> Record:
    if isinstance(data, str):
        return _link_or_text(data, source, locator, meta)
    if data is None:
        return _make(source, model.EMPTY, locator, meta, "has no data (data is null)")
    if not isinstance(data, dict):
        return _make(source, model.EMPTY, locator, meta, f"has data that is {_kind(data)}, not an object")
    return _from_task(data, source, locator, _meta(data, meta))


def _from_task(task: dict[str, Any], source: str, locator: str, meta: dict[str, Any]) -> Record:
    """Read a task-level object (record-info ``data``) or a bare midiData object."""
    flag = protocol.flag_status(task.get("successFlag"))
    if flag is not None and flag[0] != model.COMPLETE:
        status, reason = flag
        if status == model.FAILED:
            reason = _failure_reason(reason, meta)
        return _make(source, status, locator, meta, reason)
    if _looks_like_midi(task):
        return _from_midi(task, source, locator, meta)
    midi = task.get("midiData", _MISSING)
    if isinstance(midi, str) and midi.strip().startswith("{"):
        midi = parse_json(midi, source=source)  # some resellers send it as a JSON string
    if isinstance(midi, str):
        return _link_or_text(midi, source, locator, meta)
    if midi is _MISSING and isinstance(task.get("response"), dict):
        reason = "is a music task (generate/record-info), not MIDI data; fetch its MIDI task instead"
        return _make(source, model.EMPTY, locator, meta, reason)
    if midi is _MISSING or midi is None or midi == {} or midi == []:
        if flag is None and not any(k in task for k in ("taskId", "task_id", "midiData")):
            return _make(source, model.EMPTY, locator, meta, "holds no MIDI data (none of instruments, midiData, data)")
        return _make(source, model.EMPTY, locator, meta, f"has no notes: {_EMPTY_HINT}")
    if not isinstance(midi, dict):
        return _make(source, model.EMPTY, locator, meta, f"has midiData that is {_kind(midi)}, not an object")
    return _from_midi(midi, source, locator, meta)


def _from_midi(midi: dict[str, Any], source: str, locator: str, meta: dict[str, Any]) -> Record:
    """Read a midiData-level object: {state, instruments} (maybe with midi_url)."""
    state = midi.get("state")
    meta["state"] = state if isinstance(state, str) else None
    if isinstance(midi.get("midi_url"), str):
        meta["midi_url"] = midi["midi_url"]
    instruments = midi.get("instruments", _MISSING)
    state_status = protocol.state_status(state)
    if state_status == model.FAILED:
        return _make(source, model.FAILED, locator, meta, _failure_reason(f"failed (state {state!r})", meta))
    if state_status == model.PENDING and not protocol.carries_notes(midi):
        return _make(source, model.PENDING, locator, meta, f"is still running (state {state!r}); try again later")
    if instruments is _MISSING or instruments is None:
        if meta.get("midi_url"):
            return _link_or_text(meta["midi_url"], source, locator, meta)
        return _make(source, model.EMPTY, locator, meta, f"has no instruments: {_EMPTY_HINT}")
    if isinstance(instruments, dict):  # reseller: {"Drums": [notes], ...}
        pairs: list[tuple[str, Any, bool | None]] = [(str(name), notes, None) for name, notes in instruments.items()]
    elif isinstance(instruments, list):
        try:
            pairs = [_name_and_notes(i, item) for i, item in enumerate(instruments)]
        except _TooDeep as exc:
            raise _too_deep(source, None, ", ".join(p for p in (locator, str(exc)) if p)) from None
    else:
        return _make(source, model.EMPTY, locator, meta, f"has instruments that is {_kind(instruments)}, not a list")
    if not pairs:
        return _make(source, model.EMPTY, locator, meta, f"has an empty instrument list: {_EMPTY_HINT}")
    return _complete(pairs, source, locator, meta)


def _complete(pairs: list[tuple[str, Any, bool | None]], source: str, locator: str, meta: dict[str, Any]) -> Record:
    counts: dict[str, int] = {}
    issues: list[NoteIssue] = []
    left_out: Counter[str] = Counter()
    warnings = [
        f'"{name[:60]}": notes is {_kind(notes)}, not a list; instrument left out'
        for name, notes, _ in pairs
        if not isinstance(notes, list)
    ]
    plain = meta.get(_PLAIN, False)
    listed = [pair for pair in pairs if isinstance(pair[1], list)]  # the others are said in warnings
    passing = _read_passing(listed, plain=plain)
    if passing is not None:
        return _make(
            source, model.COMPLETE, locator, meta, "", instruments=passing,
            counts=counts, issues=(), warnings=tuple(warnings), left_out={},
        )  # fmt: skip
    typed = _any_typed(notes for _, notes, _ in listed)
    if len(listed) >= JOINED_MIN_INSTRUMENTS and not typed:
        try:
            read, issues, left_out = _read_failing(listed, counts, plain=plain)
        except _TooDeep as exc:
            raise _too_deep(source, None, ", ".join(p for p in (locator, str(exc)) if p)) from None
        return _make(
            source, model.COMPLETE, locator, meta, "", instruments=read,
            counts=counts, issues=tuple(issues), warnings=tuple(warnings), left_out=dict(left_out),
        )  # fmt: skip
    instruments = []
    for name, notes, is_drum in listed:  # a few instruments, or typed notes (typed_json: a failing note raises)
        try:
            instrument, found, fields = _read_notes(name, notes, counts, plain=plain, describe=MAX_ISSUES - len(issues))
        except _TooDeep as exc:
            where = f"{model.show_value(name, 60)}, {exc}"
            raise _too_deep(source, None, ", ".join(p for p in (locator, where) if p)) from None
        if is_drum is not None:  # Suno's own JSON: the flag decides the drum channel
            instrument = dataclasses.replace(instrument, is_drum=is_drum)
        instruments.append(instrument)
        issues.extend(found)
        left_out.update(fields)  # every one, past the ones described
    return _make(
        source, model.COMPLETE, locator, meta, "", instruments=tuple(instruments),
        counts=counts, issues=tuple(issues), warnings=tuple(warnings), left_out=dict(left_out),
    )  # fmt: skip


def _read_passing(pairs: list[tuple[str, list[Any], bool | None]], *, plain: bool) -> tuple[Instrument, ...] | None:
    """Read every instrument's notes at once when all of them pass; None otherwise.

    The note lists are joined into one, each field read with one numpy call and range-checked
    once, and the columns cut back into instruments at their note counts, so a record of many
    small instruments (100,000 of one note each) costs as much as one of as many notes. When
    a value is no plain number or a note fails a check, None: ``_read_notes`` then reads the
    instruments one by one and says which notes it left out, as it always has.
    """
    import numpy as np

    lists = [notes for _, notes, _ in pairs]
    if _any_typed(lists):
        from . import typed_json

        if not all(typed_json.is_typed(notes) for notes in lists if notes):
            return None
        pitch, start, end, velocity = typed_json.columns(lists)
    else:
        read = [_number_column(lists, field, plain=plain) for field in protocol.NOTE_FIELDS]
        if any(column is None for column in read):
            return None
        pitch, start, end, velocity = (column for column in read if column is not None)
    with np.errstate(invalid="ignore"):
        if any(mask.any() for _, mask, _ in _range_checks(pitch, start, end, velocity)):
            return None
    whole = pitch.astype(np.int64)
    bounds = np.cumsum([0] + [len(notes) for _, notes, _ in pairs]).tolist()
    return tuple(
        Instrument(
            name=name, start_s=start[a:b], end_s=end[a:b], pitch=whole[a:b], velocity=velocity[a:b], is_drum=is_drum
        )
        for (name, _, is_drum), a, b in zip(pairs, bounds, bounds[1:])
    )


def _read_failing(
    pairs: list[tuple[str, list[Any], bool | None]], counts: dict[str, int], *, plain: bool
) -> tuple[tuple[Instrument, ...], list[NoteIssue], Counter[str]]:
    """Read the instruments of a record of which some note fails: what ``_read_notes`` does
    instrument by instrument, on all their notes joined (the way of ``_read_passing``).

    The same notes are left out for the same first problem, the first ``MAX_ISSUES`` of
    them described, counted per field in the order of their first note, and a value nested
    too deep is met first where the instrument-by-instrument reading meets it (instrument,
    field, note: it raises _TooDeep naming the instrument). A record of 100,000 small
    instruments of string values so costs about what one of as many notes does.
    """
    import numpy as np

    lists = [notes for _, notes, _ in pairs]
    sizes = np.array([len(notes) for notes in lists], dtype=np.int64)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    owner = np.repeat(np.arange(len(pairs)), sizes)
    joined = [note for notes in lists for note in notes]
    from_text = np.zeros(len(joined), dtype=np.int64)  # per note: fields read from strings
    odd: list[tuple[int, int, int, object]] = []  # values that are no number: (owner, field number, note, value)
    columns = []
    for number, field in enumerate(protocol.NOTE_FIELDS):
        column, others = _read_column(joined, field, from_text, plain=plain)
        odd.extend((int(owner[index]), number, index, value) for index, value in others)
        columns.append(column)
    pitch, start, end, velocity = columns
    bad: dict[int, NoteIssue] = {}
    for at, number, index, value in sorted(odd, key=lambda item: item[:3]):  # the order _read_notes meets them
        if index not in bad:
            name, local = pairs[at][0], index - int(bounds[at])
            try:
                bad[index] = _bad_value(name, local, protocol.NOTE_FIELDS[number], value, joined[index])
            except _TooDeep as exc:
                raise _TooDeep(f"{model.show_value(name, 60)}, {exc}") from None
    checks = _range_checks(pitch, start, end, velocity)
    left, failed = _leave_out(bad, checks, len(joined))
    keep = ~left
    per_left = np.bincount(owner[left], minlength=len(pairs))
    per_string = np.bincount(owner[keep], weights=from_text[keep], minlength=len(pairs)).astype(np.int64)
    firsts = [(int(np.argmax(per > 0)), order, kind) for order, (kind, per) in
              enumerate(((model.NOTE_LEFT_OUT, per_left), (model.STRING_NUMBER, per_string))) if per.any()]  # fmt: skip
    for _, _, kind in sorted(firsts):  # the kinds in the order _read_notes counts them first
        total = int((per_left if kind == model.NOTE_LEFT_OUT else per_string).sum())
        counts[kind] = counts.get(kind, 0) + total
    kept_bounds = np.concatenate(([0], np.cumsum(sizes - per_left))).tolist()
    start, end, whole, velocity = start[keep], end[keep], pitch[keep].astype(np.int64), velocity[keep]
    instruments = tuple(
        Instrument(name, start[a:b], end[a:b], whole[a:b], velocity[a:b], is_drum=is_drum)
        for (name, _, is_drum), a, b in zip(pairs, kept_bounds, kept_bounds[1:])
    )

    def locate(index: int) -> tuple[str, list[Any], int]:
        at = int(owner[index])
        return pairs[at][0], lists[at], index - int(bounds[at])

    issues, fields = _issues(np.flatnonzero(left)[:MAX_ISSUES].tolist(), bad, failed, checks, locate)
    return instruments, issues, fields


def _name_and_notes(index: int, item: Any) -> tuple[str, Any, bool | None]:
    if not isinstance(item, dict):
        return f"Instrument {index + 1}", item, None
    name = item.get("name")
    _refuse_deep(name, f"instrument {index + 1}: name")
    if not isinstance(name, str) or not name.strip():
        name = f"Instrument {index + 1}" if name is None or name == "" else str(name)
    is_drum = item.get("is_drum")
    return name, item.get("notes", _MISSING), is_drum if isinstance(is_drum, bool) else None


def _read_notes(
    name: str, notes: list[Any], counts: dict[str, int], *, plain: bool = False, describe: int
) -> tuple[Instrument, list[NoteIssue], Counter[str]]:
    """Turn a list of note objects into columns; count the left-out notes by field.

    Returns the instrument, the first ``describe`` left-out notes as issues (the ones
    shown), and how many notes were left out per field (every one), fields in the order
    of their first note. A note is left out for its first problem: a value that is no
    number (fields in order), then the range checks in order.
    """
    import numpy as np

    bad: dict[int, NoteIssue] = {}  # notes with a value that is no number, found value by value
    from_text = np.zeros(len(notes), dtype=np.int64)  # per note: fields read from strings
    typed = _any_typed([notes])
    if typed:  # decoded as numbers already; a note to leave out sends the document the general way
        from . import typed_json

        pitch, start, end, velocity = typed_json.columns([notes])
    else:
        columns = []
        for field in protocol.NOTE_FIELDS:
            column, others = _read_column(notes, field, from_text, plain=plain)
            for index, value in others:
                if index not in bad:
                    bad[index] = _bad_value(name, index, field, value, notes[index])
            columns.append(column)
        pitch, start, end, velocity = columns
    checks = _range_checks(pitch, start, end, velocity)
    with np.errstate(invalid="ignore"):
        # every note passes (most instruments): no check to go through one by one, no issue to count
        passes = not bad and not any(mask.any() for _, mask, _ in checks)
    if typed and not passes:  # typed notes hold no value that is no number: a range check failed
        raise typed_json.Fallback
    left, failed = _leave_out(bad, () if passes else checks, len(notes))
    keep = ~left
    indexes = np.flatnonzero(left)
    if len(indexes):
        counts[model.NOTE_LEFT_OUT] = counts.get(model.NOTE_LEFT_OUT, 0) + len(indexes)
    strings = int(from_text[keep].sum())  # a repair only where the note is kept
    if strings:
        counts[model.STRING_NUMBER] = counts.get(model.STRING_NUMBER, 0) + strings
    instrument = Instrument(
        name=name,
        start_s=start[keep],
        end_s=end[keep],
        pitch=pitch[keep].astype(np.int64),
        velocity=velocity[keep],
    )
    if passes:  # a record of 100,000 instruments would pay the counting below 100,000 times
        return instrument, [], Counter()
    issues, fields = _issues(indexes[: max(0, describe)].tolist(), bad, failed, checks, lambda i: (name, notes, i))
    return instrument, issues, fields


def _range_checks(
    pitch: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64],
    end: npt.NDArray[np.float64],
    velocity: npt.NDArray[np.float64],
) -> tuple[tuple[str, npt.NDArray[np.bool_], str], ...]:
    """Return the range checks of the note columns, in order: (field, per note whether it fails, problem)."""
    import numpy as np

    return (
        ("pitch", (pitch < 0) | (pitch > 127), "is outside 0-127"),
        ("pitch", pitch != np.floor(pitch), "is not a whole number"),
        ("start", ~np.isfinite(start), "is not a finite number"),
        ("start", start < 0, "is negative"),
        ("start", start > MAX_TIME_S, f"is beyond {LATEST}"),
        ("end", ~np.isfinite(end), "is not a finite number"),
        ("end", end < 0, "is negative"),
        ("end", end > MAX_TIME_S, f"is beyond {LATEST}"),
        ("end", end < start, "is before start"),
        ("velocity", np.isnan(velocity), "is not a finite number"),  # +-inf (1e999) is out of 0-1: clamped
    )


def _leave_out(
    bad: dict[int, NoteIssue], checks: Sequence[tuple[str, npt.NDArray[np.bool_], str]], count: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Return which of ``count`` notes are left out, and per note its first failed range check (-1: none).

    A note is left out for its first problem: a value that is no number (``bad``, by note
    index), else the first of ``checks`` (``_range_checks``) it fails.
    """
    import numpy as np

    left = np.zeros(count, dtype=bool)
    left[list(bad)] = True
    failed = np.full(count, -1, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for number, (_, mask, _) in enumerate(checks):
            found = mask & ~left
            failed[found] = number
            left |= found
    return left, failed


def _issues(
    described: list[int],
    bad: dict[int, NoteIssue],
    failed: npt.NDArray[np.int64],
    checks: Sequence[tuple[str, npt.NDArray[np.bool_], str]],
    locate: Callable[[int], tuple[str, list[Any], int]],
) -> tuple[list[NoteIssue], Counter[str]]:
    """Return the issues of the ``described`` notes left out, and every left-out note counted per field.

    ``bad`` and ``failed`` as ``_leave_out`` reads them; ``locate`` gives a note index's
    instrument name, note list and index in that list.
    """
    issues = []
    for index in described:
        if index in bad:  # a value that is no number
            issues.append(bad[index])
        else:  # its first failed range check
            field, _, problem = checks[int(failed[index])]
            issues.append(_issue(*locate(index), field, problem))
    return issues, _fields_left_out(bad, failed, [field for field, _, _ in checks])


def _fields_left_out(bad: dict[int, NoteIssue], failed: npt.NDArray[np.int64], fields: list[str]) -> Counter[str]:
    """Count the left-out notes per field, the fields in the order of their first note."""
    import numpy as np

    first: dict[str, int] = {}
    total: Counter[str] = Counter()
    for index, issue in bad.items():
        first[issue.field] = min(first.get(issue.field, index), index)
        total[issue.field] += 1
    for number, field in enumerate(fields):
        at = np.flatnonzero(failed == number)
        if len(at):
            first[field] = min(first.get(field, int(at[0])), int(at[0]))
            total[field] += len(at)
    return Counter({field: total[field] for field in sorted(first, key=first.__getitem__)})


def _any_typed(lists: Iterable[list[Any]]) -> bool:
    """Whether any of ``lists`` holds notes the typed decoder made (``typed_json`` not loaded: none exist)."""
    if f"{__package__}.typed_json" not in sys.modules:
        return False
    from . import typed_json

    return any(typed_json.is_typed(notes) for notes in lists)


def _issue(name: str, notes: list[Any], index: int, field: str, problem: str) -> NoteIssue:
    value = notes[index].get(field) if isinstance(notes[index], dict) else None
    if problem == "is before start":
        problem = f"is before start {model.show_value(notes[index].get('start'))}"
    return NoteIssue(name, index, field, value, problem)


def _read_column(
    notes: list[Any], field: str, from_text: npt.NDArray[np.int64], *, plain: bool
) -> tuple[npt.NDArray[np.float64], list[tuple[int, object]]]:
    """Read one field of every note as float64, NaN where it has no number; and the values that are none.

    Fast path: every value is a JSON number, read by numpy in one call (``_numbers``).
    Anything else is looked at value by value: strings holding a number are read
    (and marked in ``from_text``), the rest are returned as (note, value), for the
    caller to describe (``_bad_value``) in the order it meets them.
    """
    import numpy as np

    try:
        values = [note[field] for note in notes]
    except (KeyError, TypeError, IndexError):
        values = [note.get(field, _MISSING) if isinstance(note, dict) else _NOT_AN_OBJECT for note in notes]
    fast = _numbers(values, plain=plain)
    if fast is not None:
        return fast, []
    column = np.full(len(values), np.nan)
    odd = []
    for index, value in enumerate(values):
        kind = type(value)
        if kind is int or kind is float:
            column[index] = value
        elif kind is str and _is_number_text(value):
            column[index] = float(value)
            from_text[index] += 1
        else:
            odd.append((index, value))
    return column, odd


def _number_column(lists: list[list[Any]], field: str, *, plain: bool) -> npt.NDArray[np.float64] | None:
    """Read one field of the lists' notes with one numpy call (``_numbers``); None where a note lacks it."""
    try:
        values = [note[field] for notes in lists for note in notes]
    except (KeyError, TypeError, IndexError):
        return None
    return _numbers(values, plain=plain)


def _numbers(values: list[Any], *, plain: bool) -> npt.NDArray[np.float64] | None:
    """Return values that are all JSON numbers as float64, read by numpy in one call; None otherwise.

    numpy would also take booleans as numbers, so its own type inference is trusted only for
    ``plain`` input (no true/false in the JSON text); otherwise the types are checked.
    """
    import numpy as np

    if plain:
        try:
            inferred = np.array(values)
        except (ValueError, OverflowError):
            return None
        if inferred.ndim == 1 and inferred.dtype.kind in "fi":
            return inferred.astype(np.float64, copy=False)
        return None
    if set(map(type, values)) <= {int, float}:
        return np.array(values, dtype=np.float64)
    return None


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return "_" not in text


def _bad_value(name: str, index: int, field: str, value: object, note: object) -> NoteIssue:
    _refuse_deep(note, f"note {index}")
    if value is _MISSING:
        return NoteIssue(name, index, field, None, "is missing")
    if value is _NOT_AN_OBJECT:
        return NoteIssue(name, index, "note", note, "is not an object")
    return NoteIssue(name, index, field, value, "is not a number")


def _looks_like_midi(obj: dict[str, Any]) -> bool:
    return "instruments" in obj or ("state" in obj and "successFlag" not in obj and "midiData" not in obj)


def _text(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
        return str(value)
    return None


def _meta(obj: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Collect ids and error fields from one envelope level, keeping what outer levels found."""
    found = {
        "task_id": _text(obj.get("taskId")) or _text(obj.get("task_id")),
        "audio_id": _text(obj.get("audioId")) or _text(obj.get("audio_id")),
        "error_code": _text(obj.get("errorCode")),
        "error_message": _text(obj.get("errorMessage")),
        "title": _text(obj.get("title")),
    }
    merged = dict(meta)
    for key, value in found.items():
        if value is not None and merged.get(key) is None:
            merged[key] = value
    return merged


def _music_meta(music: Any, meta: dict[str, Any]) -> None:
    """Take title, tags, model and duration from a saved music record-info answer."""
    data = music.get("data") if isinstance(music, dict) else None
    response = data.get("response") if isinstance(data, dict) else None
    songs = response.get("sunoData") if isinstance(response, dict) else None
    meta["music_songs"] = [s for s in songs if isinstance(s, dict)] if isinstance(songs, list) else []


def _apply_music(meta: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    songs = meta.pop("music_songs", None)
    if songs is None:
        return meta, []
    match = next((s for s in songs if _text(s.get("id")) == meta.get("audio_id")), None)
    if match is None:
        return meta, [f"no song of the music task has id {meta.get('audio_id')!r}; the task id names the file"]
    duration = match.get("duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and 0 < duration <= MAX_TIME_S:
        meta["duration_s"] = float(duration)
    for key, out in (("title", "title"), ("tags", "tags"), ("modelName", "model_name")):
        if _text(match.get(key)):
            meta[out] = str(match[key])
    return meta, []


def _failure_reason(default: str, meta: dict[str, Any]) -> str:
    code, message = meta.get("error_code"), meta.get("error_message")
    if code or message:
        detail = ": ".join(str(p) for p in (code, message) if p)
        return f"{default} ({detail})"
    return default


def _failed_by_code(
    obj: dict[str, Any], verdict: protocol.Verdict, source: str, locator: str, meta: dict[str, Any]
) -> Record:
    code, msg = obj.get("code"), verdict.message or "no message"
    if isinstance(obj.get("data"), dict):  # older failure callbacks put taskId inside data
        meta = _meta(obj["data"], meta)
    meta.setdefault("error_code", str(code))
    meta["error_message"] = meta.get("error_message") or msg
    return _make(source, model.FAILED, locator, meta, f"failed: {msg} (code {code})")


def _link_or_text(text: str, source: str, locator: str, meta: dict[str, Any]) -> Record:
    if text.strip().lower().startswith(("http://", "https://")):
        meta["midi_url"] = text.strip()
        reason = f"holds only a link to a MIDI file, no notes to convert; download it: {text.strip()[:200]}"
        return _make(source, model.LINK, locator, meta, reason)
    return _make(source, model.EMPTY, locator, meta, f"holds text, not notes: {model.show_value(text, 60)}")


def _make(source: str, status: str, locator: str, meta: dict[str, Any], reason: str, **notes: Any) -> Record:
    meta, warnings = _apply_music(dict(meta))
    warnings = [*meta.pop("warnings", ()), *warnings]
    fields = {k: v for k, v in meta.items() if k in _RECORD_FIELDS}
    if warnings:
        notes["warnings"] = tuple(warnings) + tuple(notes.get("warnings", ()))
    return Record(source=source, status=status, locator=locator, reason=reason, **fields, **notes)


_RECORD_FIELDS = frozenset(
    {
        "task_id",
        "audio_id",
        "state",
        "error_code",
        "error_message",
        "midi_url",
        "title",
        "tags",
        "model_name",
        "duration_s",
    }
)
