"""Convert stage: Record + options -> Song in MIDI ticks.

Decides each instrument's General MIDI program and channel, turns seconds into ticks
from absolute times through the tempo map (``timing``: a fixed tempo, or the song's
own with ``bpm="auto"``; never by summing deltas, so nothing drifts), API velocity 0-1
into MIDI velocity 1-127, and makes the repairs PRODUCT.md allows, counting each in
the Report: zero-length notes last one tick, a same-pitch overlap on one channel is
cut where the next note starts, same-pitch same-start notes become the longest one.
Hands a Song to the writer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, NamedTuple

from .. import gm, model
from ..display import plural
from ..errors import EmptyRecord, InvalidNote, Phrase, RecordError, TaskFailed, TaskPending, check_argument, say
from ..model import Record, Report, Song, Track
from ..options import DEFAULT_OPTIONS, ConvertOptions, ProgramPairs
from . import timing
from .timing import BEAT_MAP_SOURCE

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from . import key

MELODIC_CHANNELS = tuple(c for c in range(16) if c != gm.DRUM_CHANNEL)
MAX_DELTA_TICKS = 0x0FFFFFFF  # the largest delta time a MIDI file can hold (4-byte VLQ)
PPQ_HINT = Phrase("lower the ticks per quarter or the tempo")  # a song too long for a MIDI file's delta times
TRACKS_HINT = Phrase("write one file per instrument or one track")  # a record of more instruments than a file holds
STRICT_REFUSAL = Phrase("refused in strict mode")  # a note left out, under ``strict``
PROGRAM_HINT = Phrase("choose another with a program override")  # an unknown instrument name
# Every song's first text says where it came from ("source: task 1a2b, audio 3c4d"), so every
# .mid midiexport writes carries it: how a folder search knows one (jobs.convert_files).
SOURCE_LABEL = "source:"


class Placement(NamedTuple):
    """Where one instrument goes: GM program 0-127 and 0-based channel (drums 9)."""

    program: int
    channel: int
    is_drum: bool


def convert_record(record: Record, options: ConvertOptions = DEFAULT_OPTIONS) -> Song:
    """Convert a Record (seconds) into a Song (ticks at ``options.ticks_per_quarter``).

    ``options.bpm`` is a tempo or "auto" (estimated, first downbeat on a bar line;
    see ``timing``). ``options.programs`` maps instrument names (any case) to a GM
    program 0-127, a GM name or a drum name. Ticks come from the tempo map actually
    written, so every note keeps its time in seconds within half a tick, unless
    ``options.quantize`` ("1/16", "1/8t", ...) moves it to the grid.
    Raises TaskPending, TaskFailed or EmptyRecord when the record has nothing to
    convert, InvalidNote under ``options.strict`` when a note was left out, RecordError
    when it has more instruments than one MIDI file holds (``_refuse_too_many_tracks``)
    or is too long for its delta times at this tempo (``PPQ_HINT``), ValueError for an
    unknown program.
    """
    check_argument("convert_record", "record", record, Record)
    check_argument("convert_record", "options", options, ConvertOptions)
    import numpy as np

    ppq = options.ticks_per_quarter
    grid = timing.grid_ticks(options.quantize, ppq) if options.quantize else None
    refuse_incomplete(record, strict=options.strict)
    _refuse_too_many_tracks(record, options)  # before the clean-up, which such a record would keep busy
    if options.cleaning:  # the clean-up and key modules load only when asked for: start-up
        from . import clean

        record = clean.clean_record(record, options)
    counts = Counter(record.counts)  # what earlier stages counted, then this stage's counts added in order
    hints = [(i.program, i.is_drum) for i in record.instruments]
    placements, warnings, placed = place_instruments(
        [i.name for i in record.instruments], options.programs, hints=hints, overrides=options.program_overrides
    )
    counts.update(placed)
    warnings = [record.place(w) for w in (*record.warnings, *warnings)]
    warnings += [record.place(issue.describe()) for issue in record.issues]
    time_map = timing.plan_time(record, bpm=options.bpm, ppq=ppq, tempo_map=options.tempo_map)
    last_s = max((float(i.end_s.max()) for i in record.instruments if i.note_count), default=0.0)
    last_tick = int(time_map.to_ticks(np.array([max(last_s, record.duration_s or 0.0)]))[0]) + 1
    if last_tick > MAX_DELTA_TICKS:
        raise RecordError(
            say(
                f"{record.place()}: {last_s:.0f} s is too long for a MIDI file at {ppq} ticks per quarter "
                "and this tempo; ",
                PPQ_HINT,
            ),
            task_id=record.task_id,
            hint=PPQ_HINT,
        )
    tracks, repaired = _build_tracks(record, placements, time_map, grid)
    counts.update(repaired)
    found, key_line = None, None
    if options.writes_key:
        from . import key

        found = key.estimate_key(record, [p.is_drum for p in placements])
        key_line = found.describe() if found is not None else key.NO_KEY
    found = found if found is not None and found.confident else None
    end_tick = max((int(t.off_tick.max()) for t in tracks if t.note_count), default=0)
    if record.duration_s is not None:
        end_tick = max(end_tick, int(time_map.to_ticks(np.array([record.duration_s]))[0]))
    return Song(
        title=song_title(record),
        ppq=ppq,
        tempos=time_map.tempos,
        meters=time_map.meters,
        end_tick=end_tick,
        tracks=tuple(tracks),
        texts=_source_texts(record) + _tempo_texts(time_map) + _key_texts(found),
        report=Report(counts={k: v for k, v in counts.items() if v}, warnings=tuple(warnings),
                      left_out=_left_out(record),
                      notices=tuple(record.place(n) for n in record.notices),
                      tempo=time_map.estimate.describe() if time_map.estimate else None,
                      key=key_line if found else None, no_key=None if found else key_line),
        key=found.signature if found else None,
    )  # fmt: skip


def _left_out(record: Record) -> dict[str, int]:
    """Notes left out by field: normalize counts them all; a Record made by hand may list only ``issues``."""
    return dict(record.left_out) if record.left_out else dict(Counter(issue.field for issue in record.issues))


def _key_texts(found: key.KeyEstimate | None) -> tuple[str, ...]:
    return (f"key: estimated {found.name} (confidence {found.confidence:.2f})",) if found else ()


ESTIMATED_PREFIX = "estimated "  # before the text of a tempo estimated (not a source's beat map), as info reads it


def _tempo_texts(time_map: timing.TimeMap) -> tuple[str, ...]:
    found = time_map.estimate
    if found is None:
        return ()
    line = found.describe()
    return (line,) if found.source == BEAT_MAP_SOURCE else (ESTIMATED_PREFIX + line,)


def refuse_incomplete(record: Record, *, strict: bool = False) -> None:
    """Raise the RecordError that says why a record cannot be converted, if it cannot."""
    task = record.task_id
    where = record.place(f"task {task}" if task and record.source != f"task {task}" else "")
    if record.status == model.PENDING:
        raise TaskPending(f"{where}: {record.reason}", task_id=task)
    if record.status == model.FAILED:
        raise TaskFailed(
            f"{where}: {record.reason}",
            task_id=task,
            error_code=record.error_code,
            error_message=record.error_message,
        )
    if record.status != model.COMPLETE:
        raise EmptyRecord(f"{where}: {record.reason}", task_id=task)
    if strict and record.issues:
        issue = record.issues[0]
        raise InvalidNote(
            say(record.place(issue.describe()), "; ", STRICT_REFUSAL),
            task_id=task,
            instrument=issue.instrument,
            note_index=issue.note_index,
            field=issue.field,
            value=issue.value,
        )
    if record.note_count == 0:
        raise EmptyRecord(f"{where}: has no valid notes to convert{_left_out_detail(record)}", task_id=task)


def _left_out_detail(record: Record) -> str:
    """The end of a refusal for notes all invalid: how many, and why the first was left out (no line says it else).

    " (1 invalid note left out: "Piano", note 0: pitch 300 is outside 0-127)"; "" when none was.
    """
    left_out = record.counts.get(model.NOTE_LEFT_OUT, 0)
    if not left_out:
        return ""
    counted = f"{left_out:,} {plural(left_out, model.NOTE_LEFT_OUT)}"
    if not record.issues:
        return f" ({counted})"
    first = record.issues[0].describe()
    return f" ({counted}: {first})" if left_out == 1 else f" ({counted}; the first: {first})"


def _refuse_too_many_tracks(record: Record, options: ConvertOptions) -> None:
    """Raise RecordError when the record has more instruments than one MIDI file holds.

    A format-1 file has a track each and the tempo track, and its header counts them in 16
    bits (``gm.MAX_TRACKS``): one file per instrument (``split``) or one track (format 0)
    holds any number.
    """
    if gm.fits_format_1(len(record.instruments)) or options.format != 1 or options.split:
        return
    raise RecordError(
        say(
            f"{record.place()}: {len(record.instruments):,} instruments are more than one MIDI file holds "
            f"({gm.MAX_TRACKS - 1:,} beside its tempo track); ",
            TRACKS_HINT,
        ),
        task_id=record.task_id,
        hint=TRACKS_HINT,
    )


def place_instruments(
    names: Sequence[str],
    programs: Mapping[str, str | int] | ProgramPairs | None,
    *,
    hints: Sequence[tuple[int | None, bool | None]] | None = None,
    overrides: Mapping[str, gm.Resolved] | None = None,
) -> tuple[list[Placement], list[str], Counter[str]]:
    """Choose each instrument's program and channel; return them, the warnings and the counts.

    The counts (Report kinds, only those above 0): unknown instrument names
    (``model.UNKNOWN_INSTRUMENT``) and instruments sharing a channel (``model.CHANNEL_SHARED``).

    ``hints`` are per instrument (program from a .mid, is_drum flag from Suno's JSON or
    channel 10 of a .mid), each None when unknown; an override in ``programs`` wins
    over a hint, a hint over the name. Drums go to channel 9. Up to 15 melodic
    instruments get a channel each, in order.
    Beyond 15, instruments with the same program share a channel (no clash); only when
    there are more than 15 distinct programs do different programs share, with a
    warning that the later program change wins. A program given for a name no
    instrument has is a warning naming the instruments and the closest one; a melodic
    program given to a drum name (which keeps channel 10: ``gm.resolve_part``) is a
    warning that it stays drums, once per name. A PROGRAM read by a word inside it while
    a General MIDI name is close to it all ("Fretles Bass": "Bass", did you mean "Fretless
    Bass") is a warning naming both, once per value (``gm.read_by_word``).
    ``programs``: a mapping or pairs, as ``ConvertOptions.programs``; ``overrides``: the
    same resolved (``ConvertOptions.program_overrides``), else resolved here. Raises
    ValueError for a bad override.
    """
    if overrides is None:
        overrides = gm.resolve_overrides(programs)
    warnings = gm.unmatched_overrides(dict(programs or ()), names)
    values = programs.values() if isinstance(programs, Mapping) else [value for _, value in programs or ()]
    warnings += [w for w in dict.fromkeys(map(gm.read_by_word, values)) if w]  # once per value
    counts: Counter[str] = Counter()
    resolved = []
    kept_drums: set[str] = set()  # names warned of: once per name, not per part
    for index, name in enumerate(names):
        program_hint, drum_hint = hints[index] if hints is not None else (None, None)
        found = gm.resolve_part(name, is_drum=drum_hint, program=program_hint, overrides=overrides)
        if found.how == "unknown":
            counts[model.UNKNOWN_INSTRUMENT] += 1
            warnings.append(say(f"{model.show_value(name, 60)} is not a known instrument name; written as program 0 "
                                "(Acoustic Grand Piano), ", PROGRAM_HINT))  # fmt: skip
        if found.how == gm.DRUM_NAME_KEPT and name not in kept_drums:
            kept_drums.add(name)
            warnings.append(f"{model.show_value(name, 60)} stays on channel 10: a drum name keeps the drum channel "
                            f"whatever program it is given, so program {found.program} "
                            f"({gm.program_name(found.program)}) does not make it pitched")  # fmt: skip
        resolved.append(found)
    channels = _assign_channels([r.program for r in resolved if not r.is_drum])
    melodic = iter(channels)
    placements = [Placement(r.program, gm.DRUM_CHANNEL if r.is_drum else next(melodic), r.is_drum) for r in resolved]
    shared = _sharing_warnings(names, placements)
    _count(counts, model.CHANNEL_SHARED, len(shared))
    return placements, warnings + shared, counts


def _assign_channels(programs: list[int]) -> list[int]:
    """Give melodic instruments channels; past 15, share, the same program first.

    An instrument gets a channel of its own while enough free channels remain for
    every program still to come; otherwise it joins the least-loaded channel already
    playing its program, and only a program with no channel left clashes.
    """
    load: dict[int, int] = {}
    holder: dict[int, dict[int, None]] = {}  # program -> channels playing it, in the order first given
    free = list(MELODIC_CHANNELS)
    channels = []
    unseen_after = _first_seen_after(programs)
    for index, program in enumerate(programs):
        if free and (len(free) > unseen_after[index] or program not in holder):
            channel = free.pop(0)
        elif program in holder:
            channel = min(holder[program], key=lambda c: load[c])
        else:
            channel = min(load, key=lambda c: load[c])
        load[channel] = load.get(channel, 0) + 1
        holder.setdefault(program, {})[channel] = None
        channels.append(channel)
    return channels


def _first_seen_after(programs: list[int]) -> list[int]:
    """Per position: how many distinct programs first appear after it (one pass, not one per position)."""
    first = {program: index for index, program in reversed(list(enumerate(programs)))}
    starts = sorted(first.values())
    after, pointer = [], 0
    for index in range(len(programs)):
        while pointer < len(starts) and starts[pointer] <= index:
            pointer += 1
        after.append(len(starts) - pointer)
    return after


def _sharing_warnings(names: Sequence[str], placements: list[Placement]) -> list[str]:
    """Return one warning per melodic instrument on a channel an earlier one has: their number is the count."""
    warnings = []
    first_on: dict[int, int] = {}
    for index, placement in enumerate(placements):
        if placement.is_drum:
            continue
        owner = first_on.setdefault(placement.channel, index)
        if owner == index:
            continue
        other = placements[owner]
        clash = "" if other.program == placement.program else (
            f"; their programs differ ({other.program} and {placement.program}), so one program plays both"
        )  # fmt: skip
        warnings.append(
            f"{model.show_value(names[index], 60)} shares channel {gm.channel_label(placement.channel)} "
            f"with {model.show_value(names[owner], 60)} (more than 15 melodic instruments){clash}"
        )
    return warnings


def _build_tracks(
    record: Record,
    placements: list[Placement],
    time_map: timing.TimeMap,
    grid: float | None,
) -> tuple[list[Track], Counter[str]]:
    """Turn each instrument into ticks, then repair overlaps channel by channel; return the tracks and the counts.

    Counted (only kinds above 0, in the order first met): notes moved by ``grid``, velocities
    clamped, zero-length notes lengthened, then ``repair_channel``'s counts channel by channel.
    """
    import numpy as np

    counts: Counter[str] = Counter()
    columns = []
    for instrument in record.instruments:
        on_tick = time_map.to_ticks(instrument.start_s)
        off_tick = time_map.to_ticks(instrument.end_s)
        if grid is not None:
            moved_on, moved_off = timing.quantize(on_tick, off_tick, grid=grid, origin=time_map.downbeat_tick)
            _count(counts, model.QUANTIZED, int(((moved_on != on_tick) | (moved_off != off_tick)).sum()))
            on_tick, off_tick = moved_on, moved_off
        velocity_midi, clamped = midi_velocity(instrument.velocity)
        _count(counts, model.VELOCITY_CLAMPED, clamped)
        short = off_tick <= on_tick  # a zero-length note (or shorter than a tick) lasts one tick
        _count(counts, model.ZERO_LENGTH, int(short.sum()))
        off_tick = np.where(short, on_tick + 1, off_tick)
        columns.append((on_tick, off_tick, instrument.pitch, velocity_midi))
    for channel in sorted({p.channel for p in placements}):
        owners = [i for i, p in enumerate(placements) if p.channel == channel]
        repaired, channel_counts = repair_channel([columns[i] for i in owners])
        counts.update(channel_counts)
        for owner, notes in zip(owners, repaired):
            columns[owner] = notes
    tracks = [
        Track(instrument.name, placement.channel, placement.program, placement.is_drum, *notes)
        for instrument, placement, notes in zip(record.instruments, placements, columns)
    ]
    return tracks, counts


Columns = tuple["npt.NDArray[np.int64]", "npt.NDArray[np.int64]", "npt.NDArray[np.int64]", "npt.NDArray[np.int64]"]


def repair_channel(tracks: Sequence[Columns]) -> tuple[list[Columns], Counter[str]]:
    """Repair the notes of every track on one channel together; return them per track, and the counts.

    Each track is (on_tick, off_tick, pitch, velocity_midi), ticks below 2**28. Same
    pitch and start: keep the longest (of equally long ones, the first). A note still sounding when the next of its
    pitch starts is cut there. Notes come back ordered by start, then
    pitch: the writer's order of note-ons, so it sorts only the note-offs.
    Counted (only kinds above 0): ``model.DUPLICATE_MERGED`` and ``model.OVERLAP_CUT``.
    """
    import numpy as np

    counts: Counter[str] = Counter()
    if len(tracks) == 1:  # the usual case: no owners to track, nothing to join
        on, off, pitch, velocity = tracks[0]
        owner = None
    else:
        owner = np.concatenate([np.full(len(t[0]), i, dtype=np.int64) for i, t in enumerate(tracks)])
        on, off, pitch, velocity = (np.concatenate([t[k] for t in tracks]) for k in range(4))
    # One int64 key, start | pitch | longest first: a single argsort is ~5x faster than lexsort.
    key = (on << 35) | (pitch << 28) | (MAX_DELTA_TICKS - off)
    order = np.argsort(key)
    ordered = key[order]
    duplicate = np.zeros(len(on), dtype=bool)
    duplicate[1:] = (ordered[1:] >> 28) == (ordered[:-1] >> 28)  # same pitch and start
    has_duplicates = bool(duplicate.any())
    if has_duplicates:
        # Among equally long duplicates keep the first in the input, whatever the sort's
        # whims: re-sort just the members of duplicate runs by (key, input position).
        members = np.flatnonzero(duplicate | np.concatenate([duplicate[1:], [False]]))
        order[members] = order[members][np.lexsort((order[members], ordered[members]))]
        _count(counts, model.DUPLICATE_MERGED, int(duplicate.sum()))
    on, off, pitch, velocity = on[order], off[order], pitch[order], velocity[order]
    if has_duplicates:
        keep = ~duplicate
        on, off, pitch, velocity = on[keep], off[keep], pitch[keep], velocity[keep]
    # Each pitch's notes in start order: a stable sort by pitch alone (a radix sort of bytes).
    by_pitch = np.argsort(pitch.astype(np.uint8), kind="stable")
    same_pitch_on, same_pitch_off = on[by_pitch], off[by_pitch]
    overlap = (pitch[by_pitch[1:]] == pitch[by_pitch[:-1]]) & (same_pitch_off[:-1] > same_pitch_on[1:])
    if overlap.any():
        _count(counts, model.OVERLAP_CUT, int(overlap.sum()))
        off[by_pitch[:-1]] = np.where(overlap, same_pitch_on[1:], same_pitch_off[:-1])
    if owner is None:
        return [(on, off, pitch, velocity)], counts
    owner = owner[order][~duplicate] if has_duplicates else owner[order]
    mine = (owner == i for i in range(len(tracks)))
    return [(on[m], off[m], pitch[m], velocity[m]) for m in mine], counts


def midi_velocity(velocity: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], int]:
    """Map API velocity 0-1 to MIDI 1-127 (round(v*127), at least 1); count clamps."""
    import numpy as np

    outside = int(np.count_nonzero((velocity < 0) | (velocity > 1)))
    scaled = np.rint(np.clip(velocity, 0.0, 1.0) * 127).astype(np.int64)
    return np.maximum(scaled, 1), outside


def _count(counts: Counter[str], kind: str, n: int) -> None:
    """Add ``n`` of ``kind``; a kind never met stays out, so the Report's order is the order first met."""
    if n:
        counts[kind] += n


def song_title(record: Record) -> str:
    """Return the name of the song: its title, else its task id, else its input's name."""
    return record.title or record.task_id or PurePath(record.source).stem or "untitled"


def _source_texts(record: Record) -> tuple[str, ...]:
    ids = ", ".join(f"{k} {v}" for k, v in (("task", record.task_id), ("audio", record.audio_id)) if v)
    texts = [f"{SOURCE_LABEL} {ids or PurePath(record.source).name}"]
    if record.tags:
        texts.append(f"tags: {record.tags}")
    if record.model_name:
        texts.append(f"model: {record.model_name}")
    return tuple(texts)


def split_song(song: Song) -> list[Song]:
    """Return one Song per track, each with the conductor's tempo and texts (``--split``)."""
    check_argument("split_song", "song", song, Song)
    return [
        Song(
            title=f"{song.title} - {track.name}",
            ppq=song.ppq,
            tempos=song.tempos,
            meters=song.meters,
            end_tick=song.end_tick,
            tracks=(track,),
            texts=song.texts,
            report=song.report,
            key=song.key,
        )
        for track in song.tracks
    ]
