"""Make damaged variants of real .mid files, byte by byte (for the MIDI-input tests).

Each helper takes a Standard MIDI File's bytes and returns new bytes with one kind of
damage Suno's web export (or a cut download) is known to carry.
"""

from __future__ import annotations

import struct

from midiexport.outputs.smf import vlq  # only to build test inputs


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Return (kind, body) of every chunk after the 14-byte header."""
    found, position = [], 14
    while position + 8 <= len(data):
        kind, length = data[position : position + 4], struct.unpack_from(">I", data, position + 4)[0]
        found.append((kind, data[position + 8 : position + 8 + length]))
        position += 8 + length
    return found


def assemble(header: bytes, parts: list[tuple[bytes, bytes]]) -> bytes:
    """Rebuild a file from its header and (kind, body) chunks; the header's track count follows."""
    tracks = sum(1 for kind, _ in parts if kind == b"MTrk")
    header = header[:10] + struct.pack(">H", tracks) + header[12:14]
    return header + b"".join(kind + struct.pack(">I", len(body)) + body for kind, body in parts)


def with_key_signature(data: bytes, sharps: int) -> bytes:
    """Insert a key signature of ``sharps`` sharps (an illegal one above 7) at tick 0 of track 1.

    00 FF 59 02 sf mi: delta 0, meta 0x59, 2 bytes, sharps, major.
    """
    parts = chunks(data)
    kind, body = parts[0]
    parts[0] = (kind, bytes([0x00, 0xFF, 0x59, 0x02, sharps & 0xFF, 0x00]) + body)
    return assemble(data[:14], parts)


def with_zero_tempo(data: bytes) -> bytes:
    """Set the first tempo to 0 µs per quarter: FF 51 03 xx xx xx -> FF 51 03 00 00 00."""
    at = data.index(b"\xff\x51\x03")
    return data[: at + 3] + b"\x00\x00\x00" + data[at + 6 :]


def truncated(data: bytes, cut: int = 100) -> bytes:
    """Cut the last ``cut`` bytes: the last track ends in the middle of its events."""
    return data[:-cut]


def with_division(data: bytes, division: int) -> bytes:
    """Set the header's division (ticks per quarter, or SMPTE with the top bit set)."""
    return data[:12] + struct.pack(">H", division) + data[14:]


def with_unknown_chunk(data: bytes) -> bytes:
    """Put a chunk of an unknown kind ("XFIH", as some sequencers write) before the tracks."""
    parts = chunks(data)
    return assemble(data[:14], [(b"XFIH", b"\x01\x02\x03\x04"), *parts])


def split_track(data: bytes, index: int, pitch_below: int) -> bytes:
    """Split track ``index`` in two tracks of the same name: notes below ``pitch_below`` and the rest.

    Events are re-encoded with absolute ticks, so each half keeps every note's time.
    """
    parts = chunks(data)
    body = parts[index][1]
    events, position, tick = [], 0, 0
    while position < len(body):
        delta, position = _vlq(body, position)
        tick += delta
        status = body[position]
        if status == 0xFF:
            length, end = _vlq(body, position + 2)
            events.append((tick, body[position : end + length]))
            position = end + length
        else:
            size = 2 if status & 0xF0 in (0xC0, 0xD0) else 3
            events.append((tick, body[position : position + size]))
            position += size
    low = [e for e in events if not _is_note(e[1]) or e[1][1] < pitch_below]
    high = [e for e in events if not _is_note(e[1]) or e[1][1] >= pitch_below]
    parts[index : index + 1] = [(b"MTrk", _encode(low)), (b"MTrk", _encode(high))]
    return assemble(data[:14], parts)


def _is_note(event: bytes) -> bool:
    return event[0] & 0xE0 == 0x80  # 0x8n note-off or 0x9n note-on


def _encode(events: list[tuple[int, bytes]]) -> bytes:
    out, last = b"", 0
    for tick, event in events:
        out += vlq(tick - last) + event
        last = tick
    return out


def _vlq(body: bytes, position: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = body[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, position
