"""Write stage: Song -> Standard MIDI File bytes, format 1 (default) or 0.

Format 1: a conductor track (title, 4/4, tempo, source texts) and one track per
instrument (name, program change at tick 0, notes). Format 0: the same in one track.

The title and the source texts follow the karaoke (.kar) convention for text events:
"@T" + title, then "@I" + each source text ("information"). Notation programs read
plain text events as lyrics or staff text; MuseScore (3 and 4: ``importmidi_lyrics``)
makes the first "@T" text at tick 0 the score's title and leaves other "@" texts out
of the score, while a script still reads them as text events (mido: ``msg.text``).
Notes are encoded with array operations: events sorted by (tick, off before on,
channel, pitch), deltas taken from absolute ticks, variable-length quantities built
byte column by byte column. No running status: every event carries its status byte.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import check_argument
from ..gm import (
    MAX_TRACKS,
    META_CHANNEL_PREFIX,
    META_END_OF_TRACK,
    META_INSTRUMENT_NAME,
    META_KEY_SIGNATURE,
    META_TEMPO,
    META_TEXT,
    META_TIME_SIGNATURE,
    META_TRACK_NAME,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
    fits_format_1,
)
from ..model import Song, Track

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

RELEASE_VELOCITY = 64  # the MIDI spec's default note-off velocity
MAX_TEXT_BYTES = 255  # names are cut here; DAWs show far fewer characters anyway
KAR_TITLE, KAR_INFORMATION = "@T", "@I"  # karaoke text prefixes: the title, other information

Meta = tuple[int, bytes]  # (absolute tick, event bytes without the delta time)


def write_midi(song: Song, *, format: int = 1) -> bytes:
    """Encode a Song as a Standard MIDI File (ticks at song.ppq per quarter).

    Raises ValueError when ``format`` is not 0 or 1, or when format 1 would need more tracks
    than a file's header counts (``MAX_TRACKS``: the tempo track and one a track).
    """
    check_argument("write_midi", "song", song, Song)
    if format not in (0, 1):
        raise ValueError(f"format must be 0 or 1, got {format}")
    if format == 1 and not fits_format_1(len(song.tracks)):
        raise ValueError(f"a format-1 file holds at most {MAX_TRACKS - 1:,} tracks beside its tempo track, "
                         f"got {len(song.tracks):,}")  # fmt: skip
    conductor = _conductor_metas(song)
    if format == 0:
        # The drum channel's set-up goes last: MuseScore gives the first program change of a
        # format-0 file to the first staff it makes, so drums first made the bass a drum staff.
        ordered = sorted(song.tracks, key=lambda track: track.is_drum)
        metas = conductor + [m for track in ordered for m in _track_metas(track, named_as_instrument=True)]
        chunks = [encode_track(metas, song.tracks, song.end_tick)]
    else:
        chunks = [encode_track(conductor, (), song.end_tick)]
        chunks += [encode_track(_track_metas(track), (track,), song.end_tick) for track in song.tracks]
    header = b"MThd" + struct.pack(">IHHH", 6, format, len(chunks), song.ppq)
    return header + b"".join(chunks)


def encode_track(metas: Sequence[Meta], tracks: Sequence[Track], end_tick: int) -> bytes:
    """Encode one MTrk chunk: meta events and the notes of ``tracks``, ending at end_tick.

    A meta event at tick t comes before the notes at t. Returns the chunk with its header.
    """
    import numpy as np

    ticks, events = note_events(tracks)
    metas = sorted(metas, key=lambda m: m[0])
    meta_ticks = np.array([m[0] for m in metas], dtype=np.int64)
    cuts = np.searchsorted(ticks, meta_ticks, side="left").tolist()
    parts, done, last_tick = [], 0, 0
    for (tick, body), cut in zip(metas, cuts):
        if cut > done:
            parts.append(_encode_events(ticks[done:cut], events[done:cut], last_tick))
            done, last_tick = cut, int(ticks[cut - 1])
        parts.append(vlq(tick - last_tick) + body)
        last_tick = tick
    if done < len(ticks):
        parts.append(_encode_events(ticks[done:], events[done:], last_tick))
        last_tick = int(ticks[-1])
    parts.append(vlq(max(end_tick, last_tick) - last_tick) + bytes([0xFF, META_END_OF_TRACK, 0]))
    body = b"".join(parts)
    return b"MTrk" + struct.pack(">I", len(body)) + body


def note_events(tracks: Sequence[Track]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Return the note events of ``tracks`` merged: absolute ticks and (n, 3) message bytes.

    Order at one tick: note-offs before note-ons (so a repeated note re-triggers),
    then channel, then pitch. Each event is one int64 key, tick | on | channel | pitch,
    so one argsort orders them and the message bytes are read back from the key.
    """
    import numpy as np

    if not tracks:
        return np.empty(0, dtype=np.int64), np.empty((0, 3), dtype=np.uint8)
    low = np.concatenate([(t.channel << 7) | t.pitch for t in tracks])  # channel | pitch
    count = len(low)
    off_key = (np.concatenate([t.off_tick for t in tracks]) << 12) | low
    on_key = (np.concatenate([t.on_tick for t in tracks]) << 12) | low | (1 << 11)
    # Keys are unique (repairs leave no two notes of one pitch starting or ending
    # together on a channel), so the fast unstable sort gives a deterministic order.
    # The repair pass leaves a track's notes in note-on order: then only the offs are
    # sorted, and a stable sort (timsort: it finds the two sorted runs) merges them.
    off_order = np.argsort(off_key)
    on_order = np.arange(count) if bool(np.all(on_key[1:] > on_key[:-1])) else np.argsort(on_key)
    runs = np.concatenate([off_key[off_order], on_key[on_order]])
    merge = np.argsort(runs, kind="stable")
    key = runs[merge]
    order = np.concatenate([off_order, on_order + count])[merge]
    events = np.empty((2 * count, 3), dtype=np.uint8)
    events[:, 0] = np.where(key & (1 << 11), NOTE_ON, NOTE_OFF) | ((key >> 7) & 0x0F)
    events[:, 1] = key & 0x7F
    velocity = np.concatenate([np.full(count, RELEASE_VELOCITY, dtype=np.int64)] + [t.velocity_midi for t in tracks])
    events[:, 2] = velocity[order]
    return key >> 12, events


def _encode_events(ticks: npt.NDArray[np.int64], events: npt.NDArray[np.uint8], start_tick: int) -> bytes:
    """Encode events at sorted absolute ``ticks`` as (delta VLQ + 3 bytes) each.

    Each event is first laid out as a 7-byte row (4 VLQ bytes, most significant
    first, then the message); a mask drops the leading VLQ bytes a delta does not
    need, and row-major order gives the byte stream.
    """
    import numpy as np

    deltas = np.diff(ticks, prepend=start_tick)
    rows = np.empty((len(ticks), 7), dtype=np.uint8)
    for k in range(4):  # VLQ byte k counts from the most significant; all but the last set bit 7
        rows[:, k] = ((deltas >> (7 * (3 - k))) & 0x7F) | (0x80 if k < 3 else 0)
    rows[:, 4:] = events
    keep = np.ones((len(ticks), 7), dtype=bool)
    keep[:, 0] = deltas >= 1 << 21
    keep[:, 1] = deltas >= 1 << 14
    keep[:, 2] = deltas >= 1 << 7
    return rows[keep].tobytes()


def vlq(value: int) -> bytes:
    """Encode a non-negative int (< 2**28) as a MIDI variable-length quantity."""
    if not 0 <= value < 1 << 28:
        raise ValueError(f"delta time must be in 0..{(1 << 28) - 1}, got {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def meta(kind: int, data: bytes) -> bytes:
    """Return a meta event's bytes (FF kind length data), without the delta time."""
    return bytes([0xFF, kind]) + vlq(len(data)) + data


def time_signature(numerator: int, denominator: int) -> bytes:
    """Return a time signature's data: n/d, a metronome click per beat, 8 32nds a quarter.

    The beat is the denominator's note, or three of them in compound meters (6/8, 9/8,
    12/8: a click per dotted quarter), as the MIDI 1.0 spec's example of 6/8 shows.
    """
    power = denominator.bit_length() - 1
    if not 1 <= numerator <= 255 or denominator != 1 << power:
        raise ValueError(f"time signature must be 1..255 over a power of 2, got {numerator}/{denominator}")
    compound = numerator % 3 == 0 and numerator > 3 and denominator >= 8
    clocks = 96 // denominator * (3 if compound else 1)  # 24 MIDI clocks a quarter note
    return bytes([numerator, power, clocks, 8])


def key_signature(fifths: int, minor: bool) -> bytes:
    """Return a key signature's data: sharps (positive) or flats (negative) as a signed byte, then the mode."""
    if not -7 <= fifths <= 7:
        raise ValueError(f"a key signature has -7..7 sharps or flats, got {fifths}")
    return bytes([fifths & 0xFF, 1 if minor else 0])


def text_bytes(text: str) -> bytes:
    """Encode a name for a text meta event: UTF-8, no control characters, cut at 255 bytes."""
    clean = "".join(c if c.isprintable() else " " for c in text).strip()
    return clean.encode("utf-8", "replace")[:MAX_TEXT_BYTES].decode("utf-8", "ignore").encode("utf-8")


def _conductor_metas(song: Song) -> list[Meta]:
    metas: list[Meta] = [(0, meta(META_TRACK_NAME, text_bytes(song.title)))]
    metas += [(tick, meta(META_TIME_SIGNATURE, time_signature(n, d))) for tick, n, d in song.meters]
    metas += [(tick, meta(META_TEMPO, tempo_us.to_bytes(3, "big"))) for tick, tempo_us in song.tempos]
    if song.key is not None:
        metas.append((0, meta(META_KEY_SIGNATURE, key_signature(song.key.fifths, song.key.minor))))
    texts = [KAR_TITLE + song.title, *(KAR_INFORMATION + text for text in song.texts)]
    metas += [(0, meta(META_TEXT, text_bytes(text))) for text in texts]
    return metas


def _track_metas(track: Track, *, named_as_instrument: bool = False) -> list[Meta]:
    name = text_bytes(track.name)
    if named_as_instrument:  # format 0: one track, so each instrument is named for its channel
        heading = meta(META_CHANNEL_PREFIX, bytes([track.channel])) + b"\x00" + meta(META_INSTRUMENT_NAME, name)
    else:
        heading = meta(META_TRACK_NAME, name)
    return [(0, heading), (0, bytes([PROGRAM_CHANGE | track.channel, track.program]))]
