"""Read Standard MIDI Files tolerantly: bytes -> parts in ticks -> a Record in seconds.

The other way into the pipeline beside ``normalize``: Suno's web app exports one .mid
per stem (``Song Title (Stem).mid``), and such files are often damaged in ways that
make strict readers (mido, pretty_midi) give up: key signatures of 11-19 sharps, a
tempo of 0, a track cut short, running status, unknown chunks, a division of 0. Here
each of these is read past and counted; only what leaves nothing to read (no header,
no track) is an InputError, named in one line. A note ending beyond 24 hours
(``normalize.MAX_TIME_S``, the bound of a JSON record's times) is left out and counted:
huge deltas at a slow tempo put it there, and no later stage should plan for such a span.

``parse_smf`` reads the bytes into ``Smf``: one ``Part`` per track and channel, notes
as tick columns, the tempo map and the meters. ``read_midi`` turns that into a Record:
note columns in seconds through the file's own tempo map (vectorised), programs and the
drum channel kept as hints, the source tempo map and beat map kept for ``timing``.
Parsing bytes is sequential by nature, so it is kept short: a run of plain events (a
delta, a status of two data bytes, two data bytes: all of a Suno stem's notes) is found
by one regular expression and read as columns, since in such a run the status bytes are
the only high bytes between a low byte and two low ones; other events go through the
event loop, which keeps of a channel event only its tick and where its data starts. The
note-ons and note-offs are then paired as columns, per (channel, pitch) first in, first
out (a bracket match: sorted by that key, a running sum of +1 per on and -1 per off),
with the event-by-event rules: a note-on of velocity 0 is a note-off, an off with nothing
sounding is ignored, notes never released end with their track. ``read_midi`` of the
fuzzer's 34 MB .mid of 3.6M notes takes 1.5-2.1 s of CPU so (0.4-0.6 µs a note), against
7.6-8.1 s (2.1-2.2 µs) event by event in Python before (3 runs each, alternating).
``leading_texts`` reads only a file's first bytes: the texts opening its first track, by
which a folder search knows a file midiexport wrote (``jobs.convert_files``).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from .. import gm, model
from ..display import plural
from ..errors import InputError, check_argument, say
from ..model import Instrument, Record
from .normalize import LATEST, MAX_TIME_S

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_TEMPO_US = 500_000  # the SMF spec: 120 BPM until the first set_tempo
FALLBACK_PPQ = 480  # a division of 0 cannot be right; Suno's exports use 480
MAX_SHARPS = 7  # a key signature holds -7..7 sharps (the SMF spec); Suno writes up to 19
MAX_BEATS = 20_000  # a longer beat map is damage, not a song: 100 minutes at 200 BPM; beatmap's fit is O(beats**2)
MAX_READ_TRACKS = 4096  # more MTrk chunks than this is not a song; the rest are ignored
HEADER_LENGTH = 6  # MThd data: format, track count, division (16 bits each)
_SYSTEM_LENGTH = {0xF1: 1, 0xF2: 2, 0xF3: 1}  # system common messages do not belong in files
MIN_EMPTY_RUN = 16  # after this many empty chunks of other kinds in a row, the rest of the row is counted at once
_MTRK = int.from_bytes(b"MTrk", "big")
MIN_RUN_BYTES = 64  # a shorter run of plain events is read event by event: columns cost more at that size
# Plain events: a delta, a status of two data bytes (note off/on, aftertouch, control change, pitch bend), two bytes.
_PLAIN_RUN = re.compile(rb"(?:[\x80-\xff]{0,3}[\x00-\x7f][\x80-\xbf\xe0-\xef][\x00-\x7f]{2})+")
_STEM_NAME = re.compile(r"^(?P<title>.*?\S)\s*\((?P<stem>[^()]*[^()\s][^()]*)\)\s*$")

# Kinds of damage, counted in Record.counts (the text reads after a number).
KEY_SIGNATURE_ILLEGAL = "illegal key signatures read past (more than 7 sharps or flats)"
TEMPO_ZERO = "zero tempos read past"
CONTROLLERS_LEFT_OUT = "control changes left out (such as a volume CC7 after the last note)"
TRACK_TRUNCATED = "tracks cut short, read up to the cut"
CHUNK_UNKNOWN = "unknown chunks skipped"
NOTE_UNRELEASED = "notes never released, ended where their track ends"
BYTE_STRAY = "stray bytes skipped"
TRACKS_JOINED = "tracks of the same name joined"
NOTE_TOO_LATE = f"notes ending beyond {LATEST} left out"


class _Cut(Exception):
    """The bytes of a track end in the middle of an event."""


@dataclass(frozen=True)
class Part:
    """One track's notes on one channel (0-based, drums 9): absolute ticks, MIDI velocity 1-127."""

    track: int  # 0-based index among the file's tracks
    track_name: str | None
    channel: int
    channel_name: str | None  # an instrument name after a channel prefix (format 0 names each channel so)
    program: int | None  # the first program change on this channel, if any
    on_tick: npt.NDArray[np.int64]
    off_tick: npt.NDArray[np.int64]
    pitch: npt.NDArray[np.int64]
    velocity_midi: npt.NDArray[np.int64]

    @property
    def note_count(self) -> int:
        return int(self.on_tick.shape[0])


@dataclass(frozen=True)
class Smf:
    """What a MIDI file holds: header facts, parts, the tempo map and meters, the damage.

    ``ppq`` is ticks per quarter (0 under SMPTE time, where ``ticks_per_s`` is set).
    ``tempos`` are (abs tick, µs per quarter), sorted, the first at tick 0;
    ``meters`` (abs tick, numerator, denominator); ``end_tick`` the latest track end.
    ``counts`` maps a kind of damage to how often it was read past; ``problems`` are
    one-line descriptions of what could not be read as written.
    """

    format: int
    ppq: int
    ticks_per_s: float | None
    track_count: int
    title: str | None
    parts: tuple[Part, ...]
    tempos: tuple[tuple[int, int], ...]
    meters: tuple[tuple[int, int, int], ...]
    end_tick: int
    counts: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    key: str | None = None  # the first legal key signature, as "A minor" or "Eb major"

    def to_seconds(self, abs_ticks: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Map absolute ticks to seconds through the tempo map (or the SMPTE rate)."""
        import numpy as np

        at = np.asarray(abs_ticks, dtype=np.float64)
        if self.ticks_per_s is not None:
            scaled: npt.NDArray[np.float64] = at / self.ticks_per_s
            return scaled
        ticks = np.array([t for t, _ in self.tempos], dtype=np.float64)
        s_per_tick = np.array([u for _, u in self.tempos], dtype=np.float64) / (1e6 * self.ppq)
        starts_s = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * s_per_tick[:-1])])
        segment = np.clip(np.searchsorted(ticks, at, side="right") - 1, 0, None)
        seconds: npt.NDArray[np.float64] = starts_s[segment] + (at - ticks[segment]) * s_per_tick[segment]
        return seconds


def parse_smf(data: bytes, *, source: str = "<midi>") -> Smf:
    """Read Standard MIDI File bytes, reading past damage (see the module docstring).

    Raises InputError naming ``source`` and the reason when there is nothing to read:
    no MThd header, a header cut short, or not one MTrk chunk.
    """
    if not data.startswith(b"MThd"):
        what = "is empty" if not data else "does not start with the MThd header of a MIDI file"
        raise InputError(f"{source} is not a MIDI file: it {what}", input=source)
    if len(data) < 8 + HEADER_LENGTH:
        raise InputError(f"{source} is not a valid MIDI file: its header is cut short at {len(data)} bytes",
                         input=source)  # fmt: skip
    file_format, _, division = struct.unpack_from(">HHH", data, 8)
    counts: dict[str, int] = {}
    problems: list[str] = []
    ppq, ticks_per_s = _division(division, problems)
    bodies = _track_chunks(data, _first_chunk(data), counts, problems)
    if not bodies:
        raise InputError(f"{source} is not a valid MIDI file: it holds no track (MTrk chunk)", input=source)
    raw_tracks = [_read_track(body, index, counts, problems) for index, body in enumerate(bodies)]
    tempos: dict[int, int] = {0: DEFAULT_TEMPO_US}
    meters: dict[int, tuple[int, int, int]] = {}
    for track in raw_tracks:
        tempos.update(track.tempos)
        meters.update({tick: (tick, n, d) for tick, n, d in track.meters})
    parts = tuple(part for track in raw_tracks for part in track.parts())
    conductor = next((t.name for t in raw_tracks if t.name), None)
    return Smf(
        format=file_format,
        ppq=ppq,
        ticks_per_s=ticks_per_s,
        track_count=len(bodies),
        title=conductor,
        parts=parts,
        tempos=tuple(sorted(tempos.items())) if ticks_per_s is None else (),
        meters=tuple(meters[t] for t in sorted(meters)),
        end_tick=max(t.end_tick for t in raw_tracks),
        counts={k: v for k, v in counts.items() if v},
        problems=tuple(problems),
        key=next((t.key for t in raw_tracks if t.key), None),
    )


def _first_chunk(data: bytes) -> int:
    """Return where the chunk after the header starts (a header longer than 6 bytes is skipped whole)."""
    length: int = struct.unpack_from(">I", data, 4)[0]
    return 8 + max(length, HEADER_LENGTH)


def leading_texts(head: bytes) -> tuple[str, ...]:
    """Return the text events that open a file's first track at tick 0, read from the file's first bytes.

    ``head`` is the start of a file (it may end anywhere). Only the first chunk after the
    header is looked at, when it is a track, and in it only the meta events before the
    first later tick or other event. Never raises: bytes that are no MIDI file, damage,
    or the end of ``head`` end the list where they begin (``parse_smf`` names damage).
    """
    if not head.startswith(b"MThd") or len(head) < 8:
        return ()
    start = _first_chunk(head)
    if head[start : start + 4] != b"MTrk" or len(head) < start + 8:
        return ()
    body = head[start + 8 : start + 8 + struct.unpack_from(">I", head, start + 4)[0]]
    texts, position = [], 0
    try:
        while True:
            delta, position = _vlq(body, position)
            kind = body[position + 1] if body[position] == 0xFF else None  # a meta event's type
            if delta or kind is None or kind == gm.META_END_OF_TRACK:
                break
            length, position = _vlq(body, position + 2)
            if len(body) < position + length:
                break
            if kind == gm.META_TEXT:
                texts.append(_text(body[position : position + length]))
            position += length
    except IndexError:  # the head, or the track, ends in the middle of an event
        pass
    return tuple(texts)


def _division(division: int, problems: list[str]) -> tuple[int, float | None]:
    """Return (ticks per quarter, None) or (0, ticks per second) for SMPTE time."""
    if division & 0x8000:
        frames = 256 - (division >> 8)  # a negative frame rate: -24, -25, -29 (29.97 drop), -30
        per_frame = division & 0xFF
        rate = 29.97 if frames == 29 else float(frames)
        if frames in (24, 25, 29, 30) and per_frame:
            return 0, rate * per_frame
        problems.append(f"SMPTE division {frames} frames x {per_frame} ticks is not valid; read as {FALLBACK_PPQ} "
                        "ticks per quarter")  # fmt: skip
        return FALLBACK_PPQ, None
    if division == 0:
        problems.append(f"ticks per quarter is 0, which cannot be; read as {FALLBACK_PPQ}")
        return FALLBACK_PPQ, None
    return division, None


def _track_chunks(data: bytes, position: int, counts: dict[str, int], problems: list[str]) -> list[bytes]:
    """Return the bodies of the MTrk chunks; skip other chunks; keep a track cut short."""
    bodies: list[bytes] = []
    empty = 0  # empty chunks of other kinds in a row
    while position + 8 <= len(data) and len(bodies) < MAX_READ_TRACKS:
        kind, length = data[position : position + 4], struct.unpack_from(">I", data, position + 4)[0]
        other_empty = kind != b"MTrk" and length == 0  # an empty chunk of another kind
        if other_empty and empty >= MIN_EMPTY_RUN:  # zeros, say: skipped as columns
            skipped = _empty_chunks(data, position)
            counts[CHUNK_UNKNOWN] = counts.get(CHUNK_UNKNOWN, 0) + skipped
            position += 8 * skipped
            empty = 0
            continue
        empty = empty + 1 if other_empty else 0
        body = data[position + 8 : position + 8 + length]
        position += 8 + length
        if kind != b"MTrk":
            counts[CHUNK_UNKNOWN] = counts.get(CHUNK_UNKNOWN, 0) + 1
            continue
        if len(body) < length:
            problems.append(f"track {len(bodies) + 1} is cut short ({len(body):,} of {length:,} bytes)")
        bodies.append(body)
    if 0 < len(data) - position < 8 and bodies:
        counts[BYTE_STRAY] = counts.get(BYTE_STRAY, 0) + len(data) - position
    return bodies


def _empty_chunks(data: bytes, position: int) -> int:
    """Return how many empty chunks of other kinds than MTrk (8 bytes each) follow each other from ``position``."""
    import numpy as np

    count, block = 0, MIN_EMPTY_RUN
    while (whole := min(block, (len(data) - position) // 8)) > 0:
        heads = np.frombuffer(data, dtype=">u4", count=2 * whole, offset=position).reshape(whole, 2)
        empty = (heads[:, 1] == 0) & (heads[:, 0] != _MTRK)
        if not empty.all():
            return count + int(np.argmin(empty))
        count, position, block = count + whole, position + 8 * whole, block * 2
    return count


class _RawTrack:
    """One track's facts while its bytes are read; its notes as columns per channel once paired."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name: str | None = None
        self.prefix: int | None = None  # the channel named by the last channel-prefix meta
        self.channel_names: dict[int, str] = {}
        self.key: str | None = None
        self.tempos: list[tuple[int, int]] = []
        self.meters: list[tuple[int, int, int]] = []
        self.programs: dict[int, int] = {}
        self.notes: dict[int, tuple[npt.NDArray[np.int64], ...]] = {}  # channel -> on, off, pitch, velocity
        self.end_tick = 0

    def parts(self) -> list[Part]:
        return [
            Part(self.index, self.name, channel, self.channel_names.get(channel), self.programs.get(channel), *columns)
            for channel, columns in sorted(self.notes.items())
        ]


def _read_track(body: bytes, index: int, counts: dict[str, int], problems: list[str]) -> _RawTrack:
    """Read one track's events; damage is counted, a cut ends the track where it falls.

    The loop walks the SMF grammar (delta, status, data) with running status and keeps,
    of each channel event, only its tick and where its data bytes start (negated under
    running status); ``_channel_events`` then reads those as columns. Long because each
    kind of event is one branch, kept together for speed: this loop is the reader's cost.
    """
    import numpy as np

    track = _RawTrack(index)
    done: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []  # (ticks, places) read before
    ticks: list[int] = []
    places: list[int] = []
    add_tick, add_place = ticks.append, places.append
    position, tick, status, length, size, retry = 0, 0, 0, 0, len(body), 0
    try:
        while position < size:
            if position >= retry:  # a run of plain events is read as columns (_run_events)
                run = _PLAIN_RUN.match(body, position)
                retry = position + 1 if run is None else run.end()
                if run is not None and retry - position >= MIN_RUN_BYTES:
                    if places:
                        done.append((np.array(ticks, dtype=np.int64), np.array(places, dtype=np.int64)))
                        ticks, places = [], []
                        add_tick, add_place = ticks.append, places.append
                    run_ticks, run_places = _run_events(body, position, retry, tick)
                    done.append((run_ticks, run_places))
                    tick, position, status, length = int(run_ticks[-1]), retry, body[int(run_places[-1]) - 1], 2
                    if (
                        CONTROLLERS_LEFT_OUT not in counts
                        and (np.frombuffer(body, dtype=np.uint8)[run_places - 1] & 0xF0 == gm.CONTROL_CHANGE).any()
                    ):
                        counts[CONTROLLERS_LEFT_OUT] = 0  # as below
                    continue
            byte = body[position]
            if byte < 0x80:  # a one-byte delta, the common case of _vlq
                tick += byte
                position += 1
            else:
                delta, position = _vlq(body, position)
                tick += delta
            byte = body[position]
            if byte < 0x80:  # running status: the data starts here
                if not status:  # a data byte with no status before it
                    counts[BYTE_STRAY] = counts.get(BYTE_STRAY, 0) + 1
                    position += 1
                    continue
                place = -position
                position += length
            elif byte < 0xF0:
                status, place = byte, position + 1
                length = 1 if byte & 0xE0 == 0xC0 else 2  # program change and channel pressure hold one byte
                position = place + length
                if byte & 0xF0 == gm.CONTROL_CHANGE and position <= size and CONTROLLERS_LEFT_OUT not in counts:
                    counts[CONTROLLERS_LEFT_OUT] = 0  # the kind's place among the counts; counted in _channel_events
            else:
                position += 1
                if byte == 0xFF:
                    kind = body[position]
                    meta_length, position = _vlq(body, position + 1)
                    payload = body[position : position + meta_length]
                    if len(payload) < meta_length:
                        raise _Cut
                    position += meta_length
                    if kind == gm.META_END_OF_TRACK:
                        break
                    _meta(track, kind, payload, tick, counts)
                elif byte in (0xF0, 0xF7):
                    meta_length, position = _vlq(body, position)
                    position += meta_length
                else:
                    counts[BYTE_STRAY] = counts.get(BYTE_STRAY, 0) + 1
                    position += _SYSTEM_LENGTH.get(byte, 0)
                continue
            if position > size:
                raise _Cut
            add_tick(tick)
            add_place(place)
    except (_Cut, IndexError):
        counts[TRACK_TRUNCATED] = counts.get(TRACK_TRUNCATED, 0) + 1
        problems.append(f"track {index + 1} ends in the middle of an event; read up to tick {tick:,}")
    track.end_tick = tick
    if places:
        done.append((np.array(ticks, dtype=np.int64), np.array(places, dtype=np.int64)))
    if done:
        _channel_events(track, body, np.concatenate([t for t, _ in done]), np.concatenate([p for _, p in done]),
                        counts)  # fmt: skip
    return track


def _run_events(body: bytes, start: int, end: int, tick: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return the ticks and data places of a run of plain events (``_PLAIN_RUN``), ``tick`` the one before.

    In such a run only delta continuation bytes and status bytes have the top bit set,
    and a status byte alone comes after a byte without it and before two bytes without
    it (a continuation byte is followed by a continuation byte or by a delta's last byte
    and a status), so the events are found at once and their deltas read as columns.
    """
    import numpy as np

    run = np.frombuffer(body, dtype=np.uint8, count=end - start, offset=start)
    low = np.concatenate(([False], run < 0x80, [False, False]))  # padded: no status at the run's edges
    at = np.flatnonzero((run >= 0x80) & low[:-3] & low[2:-1] & low[3:])
    first = np.concatenate(([0], at[:-1] + 3))  # where each event's delta starts
    width = at - first  # 1-4 bytes
    delta = np.zeros(at.shape[0], dtype=np.int64)
    for byte in range(4):
        more = width > byte
        delta[more] = delta[more] * 128 + (run[first[more] + byte] & 0x7F)
    return tick + np.cumsum(delta), at + (start + 1)


def _channel_events(
    track: _RawTrack, body: bytes, tick: npt.NDArray[np.int64], place: npt.NDArray[np.int64], counts: dict[str, int]
) -> None:
    """Read a track's channel events as columns: programs, control changes, and notes paired.

    A note-on of velocity 0 is a note-off. A note-off ends the earliest note of its channel
    and pitch still sounding (first in, first out), so re-triggers of one pitch pair in
    order; a note-off with none sounding is ignored; notes never released end at the
    track's end (``end_tick``), counted. Each channel's notes are in the order they end,
    the unreleased last, by the first note-on of their pitch, then in order. The pairing
    is a bracket match per (channel, pitch): events sorted by that key, a running sum of
    +1 per note-on and -1 per note-off; an off that would take it below its earlier
    minimum finds nothing sounding, and the k-th off that does ends the k-th note-on.
    """
    import numpy as np

    data = np.frombuffer(body, dtype=np.uint8)
    running = place < 0  # a channel event's data never starts at 0: its delta comes first
    place = np.abs(place)
    count = place.shape[0]
    explicit = np.flatnonzero(~running)  # the first event has its status: running status needs one before
    latest = np.zeros(count, dtype=np.int64)
    latest[explicit] = explicit
    status = data[place - 1][np.maximum.accumulate(latest)]
    kind, channel = status & 0xF0, (status & 0x0F).astype(np.int64)
    first = (data[place] & 0x7F).astype(np.int64)
    second = data[np.minimum(place + 1, data.shape[0] - 1)] & 0x7F  # read only where the event holds two bytes
    controllers = int(np.count_nonzero(kind == gm.CONTROL_CHANGE))
    if controllers:
        counts[CONTROLLERS_LEFT_OUT] = counts.get(CONTROLLERS_LEFT_OUT, 0) + controllers
    programs = np.flatnonzero(kind == gm.PROGRAM_CHANGE)
    if programs.shape[0]:
        seen, at = np.unique(channel[programs], return_index=True)  # each channel's first program change
        track.programs = dict(zip(seen.tolist(), first[programs[at]].tolist()))
    on = (kind == gm.NOTE_ON) & (second > 0)
    off = ((kind == gm.NOTE_OFF) | (kind == gm.NOTE_ON)) & ~on
    events = np.flatnonzero(on | off)
    if not events.shape[0]:
        return
    key = channel[events] * 128 + first[events]
    order = np.argsort(key, kind="stable")
    events, key = events[order], key[order]  # grouped by (channel, pitch), in file order within
    is_on = on[events]
    n = events.shape[0]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    group = np.cumsum(np.concatenate(([False], key[1:] != key[:-1])))
    depth = np.cumsum(np.where(is_on, 1, -1))
    base = np.concatenate(([0], depth[:-1]))[starts][group]  # the running sum before each group
    floor = -group * (2 * n + 2)  # groups apart: each lower than any value of those before
    level = depth - base + floor
    lowest = np.minimum(np.minimum.accumulate(level), floor)
    before = np.concatenate(([0], lowest[:-1]))
    before[starts] = floor[starts]
    ends = ~is_on & (level >= before)  # an off that finds a note sounding
    on_rank = np.cumsum(is_on) - 1
    end_rank = np.cumsum(ends) - 1
    on_base = (on_rank + 1 - is_on)[starts][group]  # note-ons in the groups before
    end_base = (end_rank + 1 - ends)[starts][group]
    on_at = np.flatnonzero(is_on)  # the k-th note-on of all groups, by group
    ended = np.flatnonzero(ends)
    pairs = on_at[on_base[ended] + end_rank[ended] - end_base[ended]]  # each ending off's note-on
    done = np.zeros(n, dtype=bool)
    done[pairs] = True
    by_end = np.argsort(events[ended], kind="stable")
    note_on, note_off = events[pairs][by_end], events[ended][by_end]
    left = np.flatnonzero(is_on & ~done)
    if left.shape[0]:
        counts[NOTE_UNRELEASED] = counts.get(NOTE_UNRELEASED, 0) + int(left.shape[0])
        first_on = np.full(int(group[-1]) + 1, count, dtype=np.int64)
        np.minimum.at(first_on, group[on_at], events[on_at])
        left = left[np.lexsort((events[left], first_on[group[left]]))]
        note_on = np.concatenate((note_on, events[left]))
    on_tick = tick[note_on]
    off_tick = np.concatenate((tick[note_off], np.full(note_on.shape[0] - note_off.shape[0], track.end_tick)))
    pitch, velocity = first[note_on], second[note_on].astype(np.int64)
    note_channel = channel[note_on]
    for ch in np.unique(note_channel).tolist():
        mine = note_channel == ch
        track.notes[ch] = (on_tick[mine], off_tick[mine], pitch[mine], velocity[mine])


def _meta(track: _RawTrack, kind: int, payload: bytes, tick: int, counts: dict[str, int]) -> None:
    if kind == gm.META_TRACK_NAME and track.name is None:
        track.name = _text(payload)
    elif kind == gm.META_CHANNEL_PREFIX and len(payload) == 1 and payload[0] < 16:
        track.prefix = payload[0]
    elif kind == gm.META_INSTRUMENT_NAME and track.prefix is not None:
        track.channel_names.setdefault(track.prefix, _text(payload))
    elif kind == gm.META_TEMPO and len(payload) == 3:
        tempo_us = int.from_bytes(payload, "big")
        if tempo_us == 0:
            counts[TEMPO_ZERO] = counts.get(TEMPO_ZERO, 0) + 1
        else:
            track.tempos.append((tick, tempo_us))
    elif kind == gm.META_TIME_SIGNATURE and len(payload) >= 2 and payload[0] and payload[1] < 8:
        track.meters.append((tick, payload[0], 1 << payload[1]))
    elif kind == gm.META_KEY_SIGNATURE and len(payload) >= 1:
        sharps = payload[0] - 256 if payload[0] > 127 else payload[0]
        if abs(sharps) > MAX_SHARPS or (len(payload) > 1 and payload[1] > 1):
            counts[KEY_SIGNATURE_ILLEGAL] = counts.get(KEY_SIGNATURE_ILLEGAL, 0) + 1
        elif track.key is None:
            track.key = key_name(sharps, minor=len(payload) > 1 and payload[1] == 1)


def _vlq(body: bytes, position: int) -> tuple[int, int]:
    """Read a variable-length quantity (at most 4 bytes); return (value, next position)."""
    value = 0
    for _ in range(4):
        byte = body[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, position
    return value, position  # a fifth continuation byte is damage; read it as the end


def _text(payload: bytes) -> str:
    # Files carry UTF-8 in practice; older ones latin-1, which always decodes.
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = payload.decode("latin-1")
    return "".join(c if c.isprintable() else " " for c in text).strip()


MAJOR_BY_FIFTHS = ("Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#")
MINOR_BY_FIFTHS = ("Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#")


def key_name(sharps: int, *, minor: bool) -> str:
    """Name a key signature: -7..7 sharps (flats negative) and the mode, as "A minor"."""
    table = MINOR_BY_FIFTHS if minor else MAJOR_BY_FIFTHS
    return f"{table[sharps + MAX_SHARPS]} {'minor' if minor else 'major'}"


def stem_title(name: str) -> tuple[str, str] | None:
    """Split Suno's ``Song Title (Stem)`` into (title, stem); None for any other name.

    A General MIDI name's parenthesis is not a stem name: "Electric Bass (finger)" alone, or
    ending a longer name as ``--split`` writes it ("Song - Electric Bass (finger)", whose
    title is the whole name), as ``gm.completes_program_name`` finds it.
    """
    match = _STEM_NAME.match(name.strip())
    if match is None or gm.gm_program(name) is not None:
        return None
    if gm.completes_program_name(match.group("title"), match.group("stem")):
        return None
    return match.group("title"), match.group("stem").strip()


def part_name(part: Part, *, file_stem: str | None, several_channels: bool) -> str:
    """Name a part: its channel's instrument name in a track of several channels (format 0),
    else the stem of ``Title (Stem)``, else the track name, else the file's stem."""
    if several_channels and part.channel_name:
        return part.channel_name
    name = part.track_name or file_stem or f"Track {part.track + 1}"
    split = stem_title(name)
    if split is not None:
        name = split[1]
    if several_channels:
        name = f"{name} (channel {gm.channel_label(part.channel)})"
    return name


def read_midi(data: bytes, *, source: str = "<midi>", file_name: str | None = None) -> Record:
    """Read a .mid into a Record: notes in seconds through the file's tempo map.

    Instruments are the file's parts (one per track and channel), named by
    ``part_name``; parts of the same name are joined. Each keeps its program and,
    on channel 10, the drum flag. The Record keeps the source tempo map (ticks at
    ``source_ppq``), its meters and the beat map (every quarter in seconds).
    ``file_name``: the file's own name when ``source`` says more (a .zip member: source
    "stems.zip: Song (Bass).mid", file name "Song (Bass).mid"); see ``file_stem``.
    Takes the file's bytes, not its path (``convert_file`` takes a path): a str or Path
    is a TypeError saying so. Raises InputError when the bytes hold nothing to read
    (see ``parse_smf``).
    """
    check_argument("read_midi", "data", data, (bytes, bytearray))
    smf = parse_smf(data, source=source)
    return smf_record(smf, source=source, file_name=file_name)


def file_stem(source: str, file_name: str | None = None) -> str | None:
    """Return the stem of the file's own name, where Suno writes ``Title (Stem)``; None for "<stdin>" and the like.

    ``file_name`` when given (a .zip member's path), else ``source``.
    """
    name = source if file_name is None else file_name
    return PurePath(name).stem if name and not name.startswith("<") else None


def part_names(smf: Smf, stem: str | None) -> list[str]:
    """Return each part's name (``part_name``), ``stem`` the file's own (``file_stem``)."""
    per_track: dict[int, int] = {}
    for part in smf.parts:
        per_track[part.track] = per_track.get(part.track, 0) + 1
    return [part_name(part, file_stem=stem, several_channels=per_track[part.track] > 1) for part in smf.parts]


def smf_record(smf: Smf, *, source: str, file_name: str | None = None) -> Record:
    """Turn a parsed file into a Record (see ``read_midi``)."""
    import numpy as np

    stem = file_stem(source, file_name)
    counts = dict(smf.counts)
    joined: dict[str, list[Part]] = {}
    for part, name in zip(smf.parts, part_names(smf, stem)):
        joined.setdefault(name, []).append(part)
    instruments = []
    for name, parts in joined.items():
        if len(parts) > 1:
            counts[TRACKS_JOINED] = counts.get(TRACKS_JOINED, 0) + len(parts) - 1
        on, off, pitch, velocity = (np.concatenate([getattr(p, k) for p in parts])
                                    for k in ("on_tick", "off_tick", "pitch", "velocity_midi"))  # fmt: skip
        start_s, end_s = smf.to_seconds(on), smf.to_seconds(off)
        kept = in_time(end_s)
        if not kept.all():
            counts[NOTE_TOO_LATE] = counts.get(NOTE_TOO_LATE, 0) + int((~kept).sum())
            if not kept.any():
                continue
            start_s, end_s, pitch, velocity = start_s[kept], end_s[kept], pitch[kept], velocity[kept]
        drum = any(p.channel == gm.DRUM_CHANNEL for p in parts)
        program = next((p.program for p in parts if p.program is not None), None)
        instruments.append(
            Instrument(name=name, start_s=start_s, end_s=end_s, pitch=pitch, velocity=velocity / 127.0,
                       program=None if drum else program, is_drum=True if drum else None)
        )  # fmt: skip
    title = midi_title(smf, stem)
    duration_s = kept_end_s(smf)
    status = model.COMPLETE if instruments else model.EMPTY
    return Record(
        source=source,
        status=status,
        reason="" if instruments else f"holds no notes{f' ending within {LATEST}' if NOTE_TOO_LATE in counts else ''}",
        title=title,
        duration_s=duration_s,
        instruments=tuple(instruments),
        counts=counts,
        warnings=smf.problems,
        source_ppq=smf.ppq if smf.ticks_per_s is None else None,
        source_tempos=smf.tempos,
        source_meters=smf.meters,
        beat_map_s=beat_map(smf) if smf.ticks_per_s is None else None,
    )


def kept_end_s(smf: Smf) -> float | None:
    """Return the file's end in seconds, or None when a Record does not keep it (``in_time``)."""
    import numpy as np

    end_s = smf.to_seconds(np.array([smf.end_tick]))
    return float(end_s[0]) if in_time(end_s)[0] else None


def in_time(end_s: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Return which notes (their ends in seconds) a Record keeps: those ending within ``LATEST``.

    The bound is ``normalize.MAX_TIME_S``, as normalize refuses a later time: huge deltas
    or tempos put a note there, which is damage, not a song. ``info`` shows a .mid by it too.
    """
    kept: npt.NDArray[np.bool_] = end_s <= MAX_TIME_S
    return kept


def midi_title(smf: Smf, file_stem: str | None) -> str | None:
    """Return a file's song title: from ``Title (Stem)`` in its file or track name, else the first track name."""
    for name in (file_stem, smf.title):
        split = stem_title(name or "")
        if split is not None:
            return split[0]
    return smf.title or file_stem


def beat_map(smf: Smf) -> npt.NDArray[np.float64] | None:
    """Return the time in seconds of every quarter-note beat, from tick 0 to the last note's start.

    None when that is more than MAX_BEATS beats (a damaged delta time, not a song).
    """
    import numpy as np

    last_tick = max((int(p.on_tick.max()) for p in smf.parts if p.note_count), default=smf.end_tick)
    count = last_tick // max(smf.ppq, 1) + 2
    if count > MAX_BEATS:
        return None
    return smf.to_seconds(np.arange(count, dtype=np.int64) * smf.ppq)


def merge_stems(records: list[Record]) -> list[Record]:
    """Join the stems of one song into one Record: same title, same tempo map, same PPQ.

    Suno's web export gives one .mid per stem, each with the whole song's tempo map.
    Stems that share title and map become one Record with an instrument per stem, in
    the order given; the others stay as they are. Counts add up; warnings name their stem.
    """
    check_argument("merge_stems", "records", records, (list, tuple))
    for record in records:
        check_argument("merge_stems", "each of records", record, Record)
    return [join_stems([records[i] for i in group]) for group in group_stems(records)]


def group_stems(records: list[Record]) -> list[list[int]]:
    """Return the indexes in ``records`` of each song's stems (``merge_stems``), songs in order of their first stem.

    A record without a tempo map (JSON) is a song of its own.
    """
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, record in enumerate(records):
        key: tuple[object, ...] = (record.title, record.source_ppq, record.source_tempos) if record.source_tempos \
            else (index,)  # fmt: skip
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def join_stems(stems: list[Record]) -> Record:
    """Return one song's stems (a group of ``group_stems``) as one Record; a lone stem as it is."""
    return stems[0] if len(stems) == 1 else _joined(stems)


def _joined(stems: list[Record]) -> Record:
    import dataclasses

    counts: dict[str, int] = {}
    for stem in stems:
        for kind, n in stem.counts.items():
            counts[kind] = counts.get(kind, 0) + n
    first = stems[0]
    complete = any(s.status == model.COMPLETE for s in stems)
    return dataclasses.replace(
        first,
        source=f"{first.source} and {len(stems) - 1} more {plural(len(stems) - 1, 'stem')}",
        status=model.COMPLETE if complete else first.status,
        reason="" if complete else first.reason,
        instruments=tuple(i for s in stems for i in s.instruments),
        counts=counts,
        warnings=tuple(say(f"{PurePath(s.source).name}: ", w) for s in stems for w in s.warnings),  # marks kept
        duration_s=max((s.duration_s for s in stems if s.duration_s is not None), default=None),
        beat_map_s=max((s.beat_map_s for s in stems if s.beat_map_s is not None), key=len, default=None),
    )
