"""A seeded mutation fuzzer: real inputs, structurally damaged, through the library and the CLI.

Seeds are the real inputs (samples/, /work/shared/examples/*.json, /work/shared/real/**/*.mid,
tests/hostile/*). Each fuzz input is made from one seed by a few structural mutations of its
kind, from ``random.Random(f"{seed}:{kind}:{index}")``, so any input is made again by its
seed, kind and index alone (``--only json:17``):

- json: fields dropped, duplicated, retyped; numbers made huge, NaN, negative, infinite;
  deep nesting; unicode and control-character names; empty lists; 100,000-instrument and
  many-note records; key case changed; byte damage of the text; JSON Lines.
- mid: byte flips, truncation, wrong chunk lengths, running status abused, huge and
  over-long delta times, odd formats and divisions (SMPTE), zero tracks, meta events of
  wrong lengths, tracks repeated.
- zip: stems and records zipped with damaged members, nested .zips, duplicate members,
  members that are folders (also named ``x.mid/``), paths out of the archive, damaged
  archive bytes.

Every input is run in a forked child (one per input; the parent has imported the library
once) through each mode: ``read`` (normalize / read_midi / read_archive), ``convert``
(default options), ``auto`` (``--bpm auto``), ``clean`` (``--clean light``), ``strong``
(``--clean strong --align``) and ``info`` (``jobs.info.summarize_file``). The child has a
CPU-time limit per mode (RLIMIT_CPU) and an address-space limit (RLIMIT_AS, the parent's
size plus ``--memory-mb``); the parent kills it past ``--wall-factor`` times the time limit.
Each mode's outcome is one of:

- ok: converted (every written .mid is read back by mido) or summarized;
- refused: a MidiExportError whose message is one line;
- BAD: any other exception, an error of more than one line, a time or memory limit hit,
  a child that died, or a .mid mido cannot read.

BAD outcomes are grouped by class (mode-less: exception type and the innermost midiexport
frame); the first input of each class is saved under ``--save`` (default
/tmp/midiexport-fuzz) and its traceback printed.

``--cli N`` also runs ``python -m midiexport convert/info`` on N mutated inputs (the first
N of each kind, cycling through option sets) with a timeout: any ``Traceback`` on stderr or
an exit status other than 0, 1 or 2 (README, "Converting") is BAD.

    nice -n 10 python bench/fuzz.py --seed 1 --count 2000
    nice -n 10 python bench/fuzz.py --seed 1 --count 300 --kinds mid --cli 100
    python bench/fuzz.py --seed 1 --only zip:17      # one input again, with its traceback

Standard library and numpy (through midiexport) only; mido reads the outputs back.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import random
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mido  # noqa: E402

from midiexport.errors import MidiExportError  # noqa: E402
from midiexport.io.files import read_bytes  # noqa: E402
from midiexport.jobs.convert_files import batch_units, find_batch_inputs, render_unit  # noqa: E402
from midiexport.jobs.info import summarize_file  # noqa: E402
from midiexport.options import ConvertOptions  # noqa: E402
from midiexport.outputs.smf import vlq  # noqa: E402  (only to build inputs)
from midiexport.stages.midifile import read_midi  # noqa: E402
from midiexport.stages.normalize import normalize_payload  # noqa: E402

KINDS = ("json", "mid", "zip")
MAX_INPUT_BYTES = 160_000_000  # past the default --max-input-mb (128), so that refusal is met too
MODES = ("read", "convert", "auto", "clean", "strong", "info")
OPTIONS = {
    "convert": ConvertOptions(),
    "auto": ConvertOptions(bpm="auto"),
    "clean": ConvertOptions(clean="light"),
    "strong": ConvertOptions(clean="strong", align=True),
}
CLI_OPTIONS = (["convert"], ["convert", "--bpm", "auto"], ["convert", "--clean", "strong", "--align", "--split"],
               ["convert", "--format", "0", "--clean", "light"], ["info"], ["info", "--json"],
               ["convert", "--tempo-map", "keep", "--key", "auto"], ["convert", "--quantize", "1/8t", "--split",
               "--name", "{title} - {instrument}"])  # fmt: skip
CLI_STATUSES = (0, 1, 2)  # README: 0 all converted, 1 any not, 2 usage error (130/143: interrupted, never here)


# ---------------------------------------------------------------- seeds


def load_seeds() -> dict[str, list[tuple[str, bytes]]]:
    """Return the real inputs by kind: (name, bytes)."""
    jsons = [*sorted((ROOT / "samples").glob("*.json")), *sorted(Path("/work/shared/examples").glob("*.json")),
             *sorted((ROOT / "tests/hostile").glob("*.json"))]  # fmt: skip
    mids = [*sorted(Path("/work/shared/real").rglob("*.mid")), *sorted((ROOT / "tests/hostile").glob("*.mid"))]
    seeds: dict[str, list[tuple[str, bytes]]] = {
        "json": [(p.name, p.read_bytes()) for p in jsons],
        "mid": [(p.name, p.read_bytes()) for p in mids],
    }
    seeds["zip"] = seeds["mid"] + [s for s in seeds["json"] if len(s[1]) < 20_000]  # members to zip
    return seeds


# ---------------------------------------------------------------- JSON mutations

STRANGE_NAMES = ("", " ", "\x00", "Drums\x00Bass", "\u202eBass", "ドラム", "🎸" * 300, "a" * 70_000, "..",
                 "../../etc/passwd", "CON", "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
                 "e\u0301" * 50, "\x1b[2J", "Drums" * 1000, "\n")  # fmt: skip
NUMBERS = (math.nan, math.inf, -math.inf, -1, -1e308, 1e308, 10**30, -(10**30), 2**63, 2**64 + 1, 0, -0.0,
           5e-324, 0.5, 127.0000001, 1e-300, 86_400.0, 86_399.999999, 2**31)  # fmt: skip
VALUES = (None, True, False, "", "NaN", "Infinity", "-Infinity", "1e999", "0x10", " 60 ", "６０", [], {}, [[]],
          {"pitch": 60}, "60", "0.5")  # fmt: skip


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list in the value (at most 4,000, the first found)."""
    found: list[tuple[Any, ...]] = []
    stack = [(value, path)]
    while stack and len(found) < 4000:
        item, where = stack.pop()
        if isinstance(item, dict):
            found.append(where)
            stack.extend((v, (*where, k)) for k, v in item.items())
        elif isinstance(item, list):
            found.append(where)
            stack.extend((v, (*where, i)) for i, v in enumerate(item[:50]))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _random_value(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(NUMBERS)
    if roll < 0.7:
        return copy.deepcopy(rng.choice(VALUES))
    if roll < 0.85:
        return rng.choice(STRANGE_NAMES)
    return rng.randint(-(2**40), 2**40)


def _leaf_paths(value: Any) -> list[tuple[Any, ...]]:
    paths = []
    for where in _containers(value):
        item = _get(value, where)
        keys = list(item) if isinstance(item, dict) else list(range(min(len(item), 50)))
        paths.extend((*where, k) for k in keys)
    return paths


def mutate_json_value(value: Any, rng: random.Random) -> Any:
    """One structural mutation of a parsed JSON value (in place where it can be)."""
    containers = _containers(value)
    leaves = _leaf_paths(value)
    op = rng.choice(("drop", "duplicate", "retype", "number", "nest", "name", "empty", "many-instruments",
                     "many-notes", "key-case", "swap", "wrap-root"))  # fmt: skip
    if op == "wrap-root" or not containers:
        return rng.choice(([value], {"data": value}, {"data": [value, value]}, [value, 1, None], {"midiData": value}))
    if op == "drop" and leaves:
        *where, key = rng.choice(leaves)
        del _get(value, tuple(where))[key]
    elif op == "duplicate" and leaves:
        *where, key = rng.choice(leaves)
        parent = _get(value, tuple(where))
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[f"{key}"[: rng.randint(0, 3)] + "_copy"] = copy.deepcopy(parent[key])
    elif op in ("retype", "number") and leaves:
        *where, key = rng.choice(leaves)
        _get(value, tuple(where))[key] = rng.choice(NUMBERS) if op == "number" else _random_value(rng)
    elif op == "nest" and leaves:
        *where, key = rng.choice(leaves)
        depth = rng.choice((2, 63, 65, 200, 1100, 5000))  # written as text (NEST), past json's recursion
        _get(value, tuple(where))[key] = f"{NEST}{depth}:{rng.choice('[{')}"
    elif op == "name":
        named = [w for w in containers if isinstance(_get(value, w), dict)]
        if named:
            item = _get(value, rng.choice(named))
            item[rng.choice(("name", "title", "taskId", "stem", "instrument"))] = rng.choice(STRANGE_NAMES)
    elif op == "empty":
        lists = [w for w in containers if isinstance(_get(value, w), list) and w]
        if lists:
            *where, key = rng.choice(lists)
            _get(value, tuple(where))[key] = rng.choice(([], {}, [{}], [[]], ""))
    elif op in ("many-instruments", "many-notes"):
        field = "instruments" if op == "many-instruments" else "notes"
        lists = [w for w in containers if w and w[-1] == field and isinstance(_get(value, w), list)]
        if lists:
            target = _get(value, rng.choice(lists))
            if target:
                count = rng.choice((1000, 20_000, 100_000)) if op == "many-instruments" else rng.choice((5000, 60_000))
                pattern = copy.deepcopy(target[: 1 if op == "many-instruments" else 4])
                if op == "many-instruments":
                    for item in pattern:
                        if isinstance(item, dict) and isinstance(item.get("notes"), list):
                            item["notes"] = item["notes"][:1]
                target[:] = [pattern[i % len(pattern)] for i in range(count)]  # shared objects: small in memory
    elif op == "key-case":
        dicts = [w for w in containers if isinstance(_get(value, w), dict)]
        item = _get(value, rng.choice(dicts)) if dicts else {}
        if item:
            key = rng.choice(list(item))
            item[rng.choice((key.upper(), key.lower(), key + " ", "_" + key))] = item.pop(key)
    elif op == "swap" and len(leaves) > 1:
        a, b = rng.sample(leaves, 2)
        try:
            va, vb = _get(value, a), _get(value, b)
            _get(value, a[:-1])[a[-1]], _get(value, b[:-1])[b[-1]] = copy.deepcopy(vb), copy.deepcopy(va)
        except (KeyError, IndexError, TypeError):
            pass
    return value


def mutate_bytes(data: bytes, rng: random.Random, *, flips: int = 8) -> bytes:
    """Byte-level damage: flips, cuts, insertions, repeats."""
    out = bytearray(data)
    op = rng.choice(("flip", "flip", "truncate", "insert", "repeat", "delete"))
    if not out:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    if op == "flip":
        for _ in range(rng.randint(1, flips)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif op == "truncate":
        del out[rng.randrange(len(out)) :]
    elif op == "insert":
        at = rng.randrange(len(out) + 1)
        out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif op == "repeat":
        at = rng.randrange(len(out))
        piece = out[at : at + rng.randint(1, 64)]
        out[at:at] = piece * rng.randint(2, 50)
    else:
        at = rng.randrange(len(out))
        del out[at : at + rng.randint(1, 64)]
    return bytes(out)


NEST = "@@nest:"  # a value to be written as this many levels of [ or {"notes": (json.dumps cannot)


def _nested(match: re.Match[str]) -> str:
    depth, bracket = int(match.group(1)), match.group(2)
    if bracket == "[":
        return "[" * depth + "60" + "]" * depth
    return '{"notes": ' * depth + "60" + "}" * depth


def _dumps(value: Any, *, ensure_ascii: bool) -> str:
    """json.dumps, cut at MAX_INPUT_BYTES characters (many notes in many instruments can make gigabytes)."""
    pieces, size = [], 0
    for piece in json.JSONEncoder(ensure_ascii=ensure_ascii).iterencode(value):
        pieces.append(piece)
        size += len(piece)
        if size > MAX_INPUT_BYTES:
            break
    return "".join(pieces)[:MAX_INPUT_BYTES]


def make_json(seed: tuple[str, bytes], rng: random.Random) -> tuple[str, bytes]:
    """Return (suffix, bytes) of one mutated JSON input."""
    raw = seed[1]
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return ".json", mutate_bytes(raw, rng)
    original = copy.deepcopy(value)
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        value = mutate_json_value(value, rng)
    try:
        text = _dumps(value, ensure_ascii=rng.random() < 0.3)  # NaN and Infinity as JSON5-like tokens
    except (ValueError, RecursionError):
        text = json.dumps(None)
    data = re.sub(r'"' + NEST + r'(\d+):(.)"', _nested, text).encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.12:
        return ".json", mutate_bytes(data, rng)
    if roll < 0.25:  # JSON Lines: the record and a few siblings
        lines = [data, json.dumps(original).encode(), b"", b"{}", mutate_bytes(data, rng)]
        rng.shuffle(lines)
        return rng.choice((".jsonl", ".json")), b"\n".join(lines[: rng.randint(1, 5)])
    return ".json", data


# ---------------------------------------------------------------- MIDI mutations


def chunks(data: bytes) -> list[list[Any]]:
    """[kind, declared length, body] of every chunk after the header (as declared, clipped to the data)."""
    found, position = [], 14
    while position + 8 <= len(data):
        kind, length = data[position : position + 4], struct.unpack_from(">I", data, position + 4)[0]
        found.append([kind, length, data[position + 8 : position + 8 + length]])
        position += 8 + length
    return found


def assemble(header: bytes, parts: list[list[Any]], *, lengths: bool = True) -> bytes:
    """The file again: header (14 bytes) and chunks, their length fields as declared or true."""
    return header + b"".join(k + struct.pack(">I", len(b) if lengths else n & 0xFFFFFFFF) + b for k, n, b in parts)


def _read_vlq(body: bytes, position: int) -> tuple[int, int]:
    """Read a variable-length quantity at ``position``; return (value, the position after it).

    Not the .mid reader's (``stages.midifile``), which stops at 4 bytes: this one reads any
    length, and the mutations are placed by it. With the reader's, 21 of the first 400
    seed-1 .zip inputs came out different (stop s11): the recorded runs would not repeat.
    """
    value = 0
    while body[position] & 0x80:
        value = (value << 7) | (body[position] & 0x7F)
        position += 1
    return (value << 7) | body[position], position + 1


def _track_events(body: bytes) -> list[tuple[int, int, int]]:
    """(start of delta, start of event, end of event) for the events of a well-formed track, until a parse fails."""
    events, position, status = [], 0, 0
    try:
        while position < len(body):
            start = position
            _, position = _read_vlq(body, position)  # the delta time
            event = position
            byte = body[position]
            if byte in (0xFF, 0xF0, 0xF7):  # meta (type byte, length, data) or sysex (length, data)
                length, position = _read_vlq(body, position + (2 if byte == 0xFF else 1))
                position += length
            else:
                if byte & 0x80:
                    status = byte
                    position += 1
                position += 1 if status & 0xF0 in (0xC0, 0xD0) else 2
            if position > len(body):
                break
            events.append((start, event, position))
    except IndexError:
        pass
    return events


def mutate_midi(data: bytes, rng: random.Random) -> bytes:
    """One structural mutation of a Standard MIDI File."""
    if len(data) < 14 or not data.startswith(b"MThd"):
        return mutate_bytes(data, rng)
    header, parts = data[:14], chunks(data)
    tracks = [i for i, p in enumerate(parts) if p[0] == b"MTrk"]
    op = rng.choice(("bytes", "truncate", "length", "running", "delta", "format", "division", "division", "zero",
                     "meta", "repeat", "count", "sysex", "channel"))  # fmt: skip
    if op == "bytes":
        return mutate_bytes(data, rng, flips=20)
    if op == "truncate":
        return data[: rng.randrange(len(data))]
    if op == "format":
        return header[:8] + struct.pack(">H", rng.choice((0, 1, 2, 3, 0xFFFF))) + header[10:] + data[14:]
    if op == "division":
        division = rng.choice((0, 1, 2, 3, 0x7FFF, 0x8000, 0xE728, 0xE250, 0xE71E, 0xE864, 0xFF01, 0xFFFF, 96, 24))
        return header[:12] + struct.pack(">H", division) + data[14:]
    if op == "count":
        return header[:10] + struct.pack(">H", rng.choice((0, 1, 2, 0xFFFF))) + header[12:] + data[14:]
    if op == "zero":  # no tracks, or only empty ones
        empty = [[b"MTrk", 0, b""]] * rng.choice((0, 1, 3))
        return header[:10] + struct.pack(">H", len(empty)) + header[12:] + assemble(b"", empty)
    if op == "repeat" and tracks:
        track = parts[rng.choice(tracks)]
        parts += [track] * rng.choice((2, 50, 600, 5000))
        return header[:10] + struct.pack(">H", min(len(parts), 0xFFFF)) + header[12:] + assemble(b"", parts)
    if op == "length" and parts:
        part = rng.choice(parts)
        part[1] = rng.choice((0, 1, len(part[2]) - 1, len(part[2]) + 1, len(part[2]) + 1000, 0xFFFFFFFF, 0x7FFFFFFF))
        return assemble(header, parts, lengths=False)
    if not tracks:
        return mutate_bytes(data, rng)
    index = rng.choice(tracks)
    body = parts[index][2]
    events = _track_events(body)
    if not events:
        return mutate_bytes(data, rng)
    start, event, end = rng.choice(events)
    if op == "running":  # drop a status byte (running status where none runs), or put a data byte first
        if body[event] & 0x80 and body[event] < 0xF0:
            body = body[:event] + body[event + 1 :]
        else:
            body = b"\x00" + bytes([rng.randrange(128)]) * rng.randint(1, 5) + body
    elif op == "delta":
        huge = rng.choice((vlq(0x0FFFFFFF), b"\xff\xff\xff\xff\x7f", b"\x80" * 40 + b"\x01", vlq(2**21), b"\x8f" * 3))
        body = body[:start] + huge + body[event:]
    elif op == "meta":
        kind = rng.choice((0x51, 0x58, 0x59, 0x03, 0x01, 0x2F, 0x54, 0x00, 0x20, 0x21, 0x7F))
        length = rng.choice((0, 1, 2, 3, 4, 5, 200, 0x0FFFFFFF))
        payload = bytes(rng.randrange(256) for _ in range(min(length, 300)))
        body = body[:start] + b"\x00\xff" + bytes([kind]) + vlq(length) + payload + body[start:]
    elif op == "sysex":
        body = body[:start] + b"\x00\xf0" + vlq(rng.choice((0, 5, 0x0FFFFFFF))) + b"\x7e\x7f\xf7" + body[start:]
    else:  # channel: an event's channel, kind or data bytes changed
        piece = bytearray(body[event:end])
        at = rng.randrange(len(piece))
        piece[at] = rng.choice((0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0, 0xF1, 0xF4, 0xFE, 0x7F, 0x00, 0xFF))
        body = body[:event] + bytes(piece) + body[end:]
    parts[index][2] = body
    return assemble(header, parts)


def make_mid(seed: tuple[str, bytes], rng: random.Random) -> tuple[str, bytes]:
    data = seed[1]
    for _ in range(rng.choice((1, 1, 2, 3))):
        data = mutate_midi(data, rng)
    return ".mid", data


# ---------------------------------------------------------------- zip mutations


def make_zip(seeds: list[tuple[str, bytes]], rng: random.Random) -> tuple[str, bytes]:
    """A .zip of a few real or mutated members, with archive-level hostility."""
    warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name": wanted here
    buffer = io.BytesIO()
    members: list[tuple[str, bytes]] = []
    for name, data in rng.sample(seeds, rng.randint(1, min(4, len(seeds)))):
        if rng.random() < 0.5:
            _, data = make_mid((name, data), rng) if name.endswith(".mid") else make_json((name, data), rng)
        members.append((name, data))
    op = rng.choice(("plain", "nested", "duplicate", "directory", "outside", "bytes", "many", "names", "bomb"))
    with zipfile.ZipFile(buffer, "w", rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))) as archive:
        if op == "nested":
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w") as nested:
                for name, data in members:
                    nested.writestr(name, data)
            archive.writestr("inner.zip", inner.getvalue())
            archive.writestr("deeper/inner.mid", inner.getvalue())  # a zip named .mid
        if op == "directory":
            archive.writestr("Song (Bass).mid/", b"")
            archive.writestr("folder.json/", b"")
            archive.mkdir("stems.mid") if hasattr(archive, "mkdir") else None
        if op == "outside":
            archive.writestr(rng.choice(("../evil.mid", "/abs.mid", "C:/x.mid", "a/../../b.json", "\\..\\w.mid")),
                             members[0][1])  # fmt: skip
        if op == "many":
            for i in range(rng.choice((100, 513, 2000))):
                archive.writestr(f"Song ({i}).mid", members[0][1][:200])
        if op == "bomb":
            archive.writestr("Song (Big).mid", b"MThd" + b"\x00" * 30_000_000, zipfile.ZIP_DEFLATED)
        for name, data in members:
            if op == "names":
                name = rng.choice(STRANGE_NAMES)[:200] + rng.choice((".mid", ".json", ".MID", ""))
                name = name.split("\x00")[0] or "_"  # zipfile cuts a name at NUL, and refuses an empty one
            archive.writestr(name, data)
            if op == "duplicate":
                archive.writestr(name, data[: len(data) // 2])
    data = buffer.getvalue()
    if op == "bytes":
        data = mutate_bytes(data, rng, flips=4)
    return ".zip", data


# ---------------------------------------------------------------- running


def make_input(kind: str, seeds: dict[str, list[tuple[str, bytes]]], seed: int, index: int) -> tuple[str, bytes, str]:
    """(suffix, bytes, seed file name) of input ``index`` of ``kind``: the same for the same seed, always.

    Cut at MAX_INPUT_BYTES (many notes times many instruments can make gigabytes).
    """
    rng = random.Random(f"{seed}:{kind}:{index}")
    if kind == "zip":
        suffix, data = make_zip(seeds["zip"], rng)
        return suffix, data[:MAX_INPUT_BYTES], "(zip)"
    chosen = rng.choice(seeds[kind])
    suffix, data = make_json(chosen, rng) if kind == "json" else make_mid(chosen, rng)
    return suffix, data[:MAX_INPUT_BYTES], chosen[0]


def _place(exc: BaseException) -> str:
    """The innermost midiexport frame of a traceback, as file:function:line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "midiexport" in f.filename]
    if not frames:
        frames = traceback.extract_tb(exc.__traceback__)[-1:]
    if not frames:
        return "?"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.name}:{f.lineno}"


def run_mode(mode: str, path: str) -> tuple[str, str, str]:
    """Run one mode on one input file; return (verdict, class, detail)."""
    try:
        found = find_batch_inputs([path])
        if found.refusal is not None:
            raise found.refusal
        sources = found.sources
        if mode == "read":
            for source in sources:
                if source.path.endswith(".zip"):
                    from midiexport.io.archive import read_archive

                    read_archive(source)
                    continue
                data = read_bytes(source)  # as convert reads it: at most --max-input-mb
                if data.startswith(b"MThd") or source.path.endswith(".mid"):
                    read_midi(data, source=source.name)
                elif source.lines:
                    for line in data.splitlines():
                        if line.strip():
                            try:
                                normalize_payload(line, source=source.name)
                            except MidiExportError as exc:
                                _check_message(exc)
                else:
                    normalize_payload(data, source=source.name)
        elif mode == "info":
            for source in sources:
                for described in summarize_file(source):
                    if described.error is not None:
                        _check_message(described.error)
        else:
            failed = written = 0
            for unit in batch_units(sources, OPTIONS[mode].max_input_mb):
                for rendered in render_unit(unit, options=OPTIONS[mode]):
                    written += len(rendered.files)
                    if rendered.error is not None:
                        failed += 1
                        _check_message(rendered.error)
                    for output in rendered.files:
                        if output.extension == ".mid":
                            try:
                                mido.MidiFile(file=io.BytesIO(output.data))
                            except Exception as exc:  # noqa: BLE001 - any failure to read back is the finding
                                return "BAD", f"unreadable .mid: {type(exc).__name__}", f"{exc!r}"
            if failed and not written:
                return "refused", "", ""
    except MidiExportError as exc:
        try:
            _check_message(exc)
        except _MultiLine as bad:
            return "BAD", "error of more than one line", str(bad)
        return "refused", "", str(exc)
    except _MultiLine as bad:
        return "BAD", "error of more than one line", str(bad)
    except MemoryError as exc:
        return "BAD", f"memory over the limit at {_place(exc)}", traceback.format_exc(limit=-8)
    except RecursionError as exc:
        return "BAD", f"RecursionError at {_place(exc)}", traceback.format_exc(limit=-8)
    except Exception as exc:  # noqa: BLE001 - any other exception is the finding
        return "BAD", f"{type(exc).__name__} at {_place(exc)}", traceback.format_exc(limit=-8)
    return "ok", "", ""


class _MultiLine(Exception):
    pass


def _check_message(exc: MidiExportError) -> None:
    if "\n" in str(exc) or "\r" in str(exc):
        raise _MultiLine(repr(str(exc)[:300]))


def run_child(path: str, modes: list[str], cpu_s: float, memory_mb: int, write: int) -> None:
    """In the forked child: each mode in turn, its outcome written as one JSON line."""
    base = _address_space()
    limit = base + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGXCPU, _out_of_time)
    for mode in modes:
        os.write(write, (json.dumps({"start": mode}) + "\n").encode())
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        resource.setrlimit(resource.RLIMIT_CPU, (int(spent + cpu_s) + 1, resource.RLIM_INFINITY))
        try:
            verdict, name, detail = run_mode(mode, path)
        except _OutOfTime:
            verdict, name, detail = "BAD", f"hang: over {cpu_s:g} s of CPU", traceback.format_exc(limit=-6)
        os.write(write, (json.dumps({"mode": mode, "verdict": verdict, "class": name, "detail": detail[-3000:]})
                         + "\n").encode())  # fmt: skip
    os._exit(0)


class _OutOfTime(BaseException):
    pass


def _out_of_time(signum: int, frame: Any) -> None:
    raise _OutOfTime


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_input(path: str, modes: list[str], cpu_s: float, memory_mb: int, wall_s: float) -> list[dict[str, str]]:
    """Fork a child for one input; return each mode's outcome (a dead or stuck child: BAD for its mode)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            run_child(path, modes, cpu_s, memory_mb, write)
        finally:
            os._exit(3)
    os.close(write)
    buffer, deadline, killed = b"", time.monotonic() + wall_s * len(modes), False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            killed = True
            break
        ready, _, _ = select.select([read], [], [], left)
        if ready:
            piece = os.read(read, 65536)
            if not piece:
                break
            buffer += piece
    os.close(read)
    _, status = os.waitpid(pid, 0)
    results: list[dict[str, str]] = []
    running = None
    for line in buffer.decode(errors="replace").splitlines():
        item = json.loads(line)
        if "start" in item:
            running = item["start"]
        else:
            results.append(item)
            running = None
    if running is not None:
        if killed:
            name = f"hang: over {wall_s:g} s of wall time"
        elif os.WIFSIGNALED(status):
            name = f"child killed by {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            name = f"child died (status {os.WEXITSTATUS(status)})"
        results.append({"mode": running, "verdict": "BAD", "class": name, "detail": ""})
    return results


def run_cli(path: str, args: list[str], out: str, timeout_s: float) -> tuple[str, str, str]:
    command = [sys.executable, "-m", "midiexport", *args, path]
    if args[0] == "convert":
        command += ["-o", out, "--overwrite", "-q", "--jobs", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return "BAD", f"cli hang over {timeout_s:g} s", " ".join(args)
    stderr = done.stderr.decode(errors="replace")
    if "Traceback" in stderr or "internal error" in stderr:
        last = [line for line in stderr.splitlines() if line.strip()][-1:] or [""]
        return "BAD", f"cli traceback: {last[0][:80]}", stderr[-3000:]
    if done.returncode not in CLI_STATUSES:
        return "BAD", f"cli exit status {done.returncode}", stderr[-3000:]
    return ("ok" if done.returncode == 0 else "refused"), "", ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=200, help="inputs per kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--cpu-s", type=float, default=10.0, help="CPU seconds per mode and input")
    parser.add_argument("--wall-factor", type=float, default=4.0, help="wall-clock limit: this times --cpu-s")
    parser.add_argument("--memory-mb", type=int, default=1500, help="address space beyond the parent's, per input")
    parser.add_argument("--cli", type=int, default=0, help="also run the CLI on this many inputs of each kind")
    parser.add_argument("--save", default="/tmp/midiexport-fuzz", help="folder for the first input of each BAD class")
    parser.add_argument("--only", help="KIND:INDEX: run one input and print every outcome in full")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [k for k in kinds if k not in KINDS] + [m for m in modes if m not in MODES]:
        parser.error(f"unknown kinds or modes: {unknown}")
    jobs = [(k, i) for i in range(args.count) for k in kinds]
    if args.only:
        kind, _, index = args.only.partition(":")
        if kind not in KINDS or not index.isdigit():
            parser.error(f"--only takes KIND:INDEX, KIND one of {', '.join(KINDS)}: not {args.only!r}")
        jobs = [(kind, int(index))]
    seeds = load_seeds()
    for mode in modes:  # once in the parent, so that the children start with every lazy import done
        for name in ("samples/sample-song.json", "tests/hostile/late-notes.mid"):
            run_mode(mode, str(ROOT / name))
    save = Path(args.save)
    save.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="midiexport-fuzz-"))
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    first: dict[str, tuple[str, str, str]] = {}
    where: dict[str, set[str]] = defaultdict(set)  # BAD class -> the inputs that met it
    started = time.monotonic()
    for done, (kind, index) in enumerate(jobs):
        suffix, data, seed_name = make_input(kind, seeds, args.seed, index)
        path = work / f"{kind}-{index}{suffix}"
        path.write_bytes(data)
        for result in run_input(str(path), modes, args.cpu_s, args.memory_mb, args.cpu_s * args.wall_factor):
            verdict = result["verdict"]
            counts[(kind, result["mode"])][verdict] += 1
            if args.only:
                print(f"{kind}:{index} ({seed_name}) {result['mode']}: {verdict} {result['class']}\n{result['detail']}")
            if verdict == "BAD":
                where[result["class"]].add(f"{kind}:{index}")
            if verdict == "BAD" and result["class"] not in first:
                kept = save / f"bad{len(first) + 1}-{kind}-{index}{suffix}"
                kept.write_bytes(data)
                first[result["class"]] = (f"{kind}:{index} mode {result['mode']} (from {seed_name})", str(kept),
                                          result["detail"])  # fmt: skip
                print(f"BAD [{result['class']}] {kind}:{index} {result['mode']} -> {kept}", file=sys.stderr)
        path.unlink()
        if (done + 1) % 200 == 0:
            print(f"... {done + 1}/{len(jobs)} inputs, {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.cli and not args.only:
        out = str(work / "out")
        for number in range(args.cli):
            for kind in kinds:
                suffix, data, seed_name = make_input(kind, seeds, args.seed, number)
                path = work / f"cli-{kind}-{number}{suffix}"
                path.write_bytes(data)
                options = CLI_OPTIONS[(number + KINDS.index(kind)) % len(CLI_OPTIONS)]
                verdict, name, detail = run_cli(str(path), options, out, args.cpu_s * args.wall_factor)
                counts[(kind, "cli")][verdict] += 1
                if verdict == "BAD":
                    where[name].add(f"{kind}:{number} (cli)")
                if verdict == "BAD" and name not in first:
                    kept = save / f"bad{len(first) + 1}-cli-{kind}-{number}{suffix}"
                    kept.write_bytes(data)
                    first[name] = (f"{kind}:{number} cli {' '.join(options)} (from {seed_name})", str(kept), detail)
                    print(f"BAD [{name}] {kind}:{number} cli -> {kept}", file=sys.stderr)
                path.unlink()
    print(f"seed {args.seed}, {args.count} inputs per kind, {time.monotonic() - started:.0f} s")
    print(f"{'kind':<6}{'mode':<9}{'ok':>7}{'refused':>9}{'BAD':>6}")
    for (kind, mode), counter in sorted(counts.items(), key=lambda kv: (KINDS.index(kv[0][0]), kv[0][1])):
        print(f"{kind:<6}{mode:<9}{counter['ok']:>7}{counter['refused']:>9}{counter['BAD']:>6}")
    total = Counter[str]()
    for counter in counts.values():
        total.update(counter)
    print(f"{'all':<15}{total['ok']:>7}{total['refused']:>9}{total['BAD']:>6}")
    for name, (found, kept, detail) in first.items():
        inputs = sorted(where[name], key=lambda text: (text.split(":")[0], int(text.split(":")[1].split()[0])))
        shown = ", ".join(inputs[:12]) + (f" and {len(inputs) - 12} more" if len(inputs) > 12 else "")
        print(f"\nBAD class: {name}\n  inputs: {shown}\n  first: {found}, saved as {kept}\n" + "\n".join(
            "    " + line for line in detail.strip().splitlines()[-12:]))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return 1 if first else 0


if __name__ == "__main__":
    sys.exit(main())
