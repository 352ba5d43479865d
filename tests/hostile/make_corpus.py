"""Write the hostile-input corpus beside this file: one small file per case (JSON, and a few .mid).

The expected outcome of each is in tests/test_reliability.py (CASES). Inputs too big
to keep in the repository (50 MB of whitespace, 200,000 and 1,000,000 notes) are
made by the tests themselves.

    python tests/hostile/make_corpus.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
GOOD = {"pitch": 60, "start": 0.5, "end": 1.0, "velocity": 0.75}


def record(instruments: list[dict], **data: object) -> dict:
    body = {"taskId": "hostile", "audioId": "a1", "successFlag": 1,
            "midiData": {"state": "complete", "instruments": instruments}, **data}  # fmt: skip
    return {"code": 200, "msg": "success", "data": body}


def with_note(**note: object) -> dict:
    return record([{"name": "Piano", "notes": [GOOD, {**GOOD, "start": 1.0, "end": 1.5, **note}]}])


def smf(track: bytes, *, ppq: int = 1) -> bytes:
    """A format-0 MIDI file of one track's event bytes."""
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + ppq.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + track


def main() -> None:
    good = json.dumps(record([{"name": "Drums", "notes": [GOOD]}, {"name": "Bass", "notes": [GOOD]}]))
    cases: dict[str, str | bytes | object] = {
        "not-json.json": "this is not JSON at all",
        "empty.json": "",
        "truncated.json": good[: len(good) // 2],
        "bom.json": "\ufeff" + good,
        "invalid-utf8.json": b'{"instruments": [{"name": "\xff\xfe", "notes": []}]}',
        "null.json": None,
        "number.json": 42,
        "string.json": "a string",
        "empty-object.json": {},
        "instruments-missing.json": {"state": "complete"},
        "instruments-not-list.json": {"state": "complete", "instruments": "Drums"},
        "notes-not-list.json": record([{"name": "Bass", "notes": {"pitch": 40}}, {"name": "Piano", "notes": [GOOD]}]),
        "pitch-128.json": with_note(pitch=128),
        "pitch-negative.json": with_note(pitch=-1),
        "pitch-fraction.json": with_note(pitch=60.5),
        "pitch-string.json": with_note(pitch="60"),
        "velocity-high.json": with_note(velocity=1.7),
        "velocity-negative.json": with_note(velocity=-0.2),
        "velocity-nan-string.json": with_note(velocity="NaN"),
        "velocity-infinity-string.json": with_note(velocity="Infinity"),
        "start-after-end.json": with_note(start=2.0, end=1.5),
        "start-negative.json": with_note(start=-0.25),
        "start-abc.json": with_note(start="abc"),
        "start-1e308.json": with_note(start=1e308, end=1e308),
        "missing-field.json": record([{"name": "Piano", "notes": [GOOD, {"pitch": 61, "start": 1.0}]}]),
        "all-notes-invalid.json": record([{"name": "Piano", "notes": [{**GOOD, "pitch": 300}]}]),
        "twenty-melodic.json": record(
            [
                {"name": name, "notes": [GOOD]}
                for name in (
                    "Violin",
                    "Viola",
                    "Cello",
                    "Flute",
                    "Oboe",
                    "Clarinet",
                    "Trumpet",
                    "Trombone",
                    "Tuba",
                    "Harp",
                    "Marimba",
                    "Celesta",
                    "Accordion",
                    "Sitar",
                    "Banjo",
                    "Koto",
                    "Kalimba",
                    "Fiddle",
                    "Bagpipe",
                    "Ocarina",
                )
            ]
        ),
        "long-name.json": record([{"name": "Piano " * 1667, "notes": [GOOD]}]),
        "control-chars-name.json": record([{"name": "Pi\x00a\x1b[31mno\n\t\r", "notes": [GOOD]}]),
        "path-name.json": record(
            [{"name": "../../evil/../bass", "notes": [GOOD]}, {"name": "a\\b:c", "notes": [GOOD]}]
        ),
        "reserved-names.json": record([{"name": n, "notes": [GOOD]} for n in ("CON", "nul", "LPT1", "aux.txt")]),
        "emoji-name.json": record([{"name": "🎸 ギター Guitar", "notes": [GOOD]}]),
        "duplicate-notes.json": record([{"name": "Piano", "notes": [GOOD, GOOD, GOOD]}]),
        "overlapping-notes.json": record([{"name": "Piano", "notes": [GOOD, {**GOOD, "start": 0.75, "end": 1.25}]}]),
        "zero-length.json": record([{"name": "Piano", "notes": [{**GOOD, "end": 0.5}]}]),
        "deep-nesting.json": "[" * 10_000 + "]" * 10_000,
        "success-flag-0.json": record([], successFlag=0, midiData=None),
        "success-flag-2.json": record([], successFlag=2, midiData=None, errorCode="400", errorMessage="bad input"),
        "success-flag-3.json": record([], successFlag=3, midiData=None, errorCode="500", errorMessage="model failed"),
        "midi-data-empty.json": record([], midiData={}),
        "midi-data-missing.json": {"code": 200, "msg": "success", "data": {"taskId": "hostile", "successFlag": 1}},
        "link-only.json": {"code": 200, "msg": "success", "data": "https://cdn.example/x.midi"},
        "mixed-array.json": [json.loads(good), 42, record([], successFlag=0, midiData=None)],
        # 16 drum hits in 8 s and one note 23.9 hours in: a broken end time that once cost the tempo
        # estimate (info, --bpm auto) 16 s and 1.4 GB, a frame every 10 ms of the span.
        "stray-end-time.json": record(
            [
                {
                    "name": "Drums",
                    "notes": [
                        {"pitch": 36 + 2 * (k % 2), "start": k / 2, "end": k / 2 + 0.125, "velocity": 0.8}
                        for k in range(16)
                    ],
                },
                {"name": "Piano", "notes": [{"pitch": 60, "start": 86_040.0, "end": 86_040.5, "velocity": 0.8}]},
            ]
        ),
    }
    # Damaged Standard MIDI Files, read by midifile, not normalize.
    # A note held over 300 of the longest deltas at the slowest tempo, one tick per quarter: it ends
    # 1.3e12 s in, which once made --bpm auto ask for 1.7 TiB (a frame per second of the span).
    late = b"\x00\xff\x51\x03\xff\xff\xff" + b"\x00\x90\x3c\x40\x01\x80\x3c\x00\x00\x90\x3e\x40"
    late += b"\xff\xff\xff\x7f\xff\x01\x00" * 300 + b"\x00\x80\x3e\x00\x00\xff\x2f\x00"
    cases["late-notes.mid"] = smf(late)
    # One beat of 16.8 s, then beats a microsecond apart: the beat map's fit for --bpm auto
    # once gave a negative tempo (the grid of the first bar ran 5 s past the beats after it).
    behind = b"\x00\xff\x51\x03\xff\xff\xff\x00\x90\x3c\x40\x01\xff\x51\x03\x00\x00\x01"
    behind += b"\x03\xff\x51\x03\x07\xa1\x20\x00\x80\x3c\x00" + b"\x00\x90\x3e\x40\x01\x80\x3e\x00" * 16
    cases["beat-map-behind.mid"] = smf(behind + b"\x00\xff\x2f\x00")
    for name, content in cases.items():
        path = HERE / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str) and name not in ("string.json",):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {len(cases)} files to {HERE}")


if __name__ == "__main__":
    main()
