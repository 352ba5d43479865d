"""Record the SHA-256 of every .mid (and every message) the converter makes from the
sample, the fixtures and the hostile corpus, into tests/output_digests.json.

Run it on the code whose output is the reference (it was run before the performance
work changed the ingest path and the sorts); tests/test_output_identity.py then checks
that today's code makes the same bytes and says the same things.

    PYTHONPATH=. python tests/make_output_digests.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DIGESTS = Path(__file__).resolve().parent / "output_digests.json"
VARIANTS = {"default": {}, "format0": {"format": 0}, "ppq960": {"ppq": 960}}  # ConvertOptions fields


def inputs() -> list[Path]:
    folders = (ROOT / "samples", ROOT / "fixtures", ROOT / "tests" / "hostile")
    return sorted(p for folder in folders for p in folder.iterdir() if p.suffix in (".json", ".jsonl"))


def outcome(raw: bytes, source: str, options: Any) -> list[str]:
    """One line per record: the .mid digest and the record's messages, or its error.

    Messages as the command line words them (``cli_words``, ``kind_words``): the recorded
    ones are from when the library itself named the flags.
    """
    from midiexport.cli.report import cli_words, kind_words
    from midiexport.errors import MidiExportError
    from midiexport.outputs.smf import write_midi
    from midiexport.stages.convert import convert_record
    from midiexport.stages.normalize import normalize_lines, normalize_payload

    lines: list[str] = []
    try:
        if source.endswith(".jsonl"):
            records: list[Any] = list(normalize_lines(enumerate(raw.splitlines(), 1), source=source))
        else:
            records = normalize_payload(raw, source=source)
    except MidiExportError as exc:
        return [f"error: {cli_words(str(exc))}"]
    for record in records:
        if isinstance(record, Exception):
            lines.append(f"error: {cli_words(str(record))}")
            continue
        try:
            song = convert_record(record, options)
            midi = write_midi(song, format=options.format)
        except MidiExportError as exc:
            lines.append(f"error: {cli_words(str(exc))}")
            continue
        report = song.report
        counts = sorted((kind_words(kind), n) for kind, n in report.counts.items())
        said = json.dumps([counts, [cli_words(w) for w in report.warnings], sorted(report.left_out.items())])
        lines.append(f"{hashlib.sha256(midi).hexdigest()} {hashlib.sha256(said.encode()).hexdigest()}")
    return lines


def dense_song(seed: int, notes: int = 4000) -> bytes:
    """A dense song on the 1/192 s grid with chords, repeated notes, same-pitch overlaps and
    duplicates, so the repair pass and the writer's order are exercised (pure Python: stable)."""
    import random

    rng = random.Random(seed)
    parts = []
    for i, name in enumerate(("Drums", "Electric Bass (finger)", "Acoustic Grand Piano", "Synth Voice")):
        items = []
        for _ in range(notes // 4):
            start = rng.randrange(0, 192 * 30)
            item = {
                "pitch": rng.randrange(36, 48 + 6 * i),
                "start": start / 192,
                "end": (start + rng.randrange(0, 96)) / 192,
                "velocity": rng.randrange(0, 128) / 127,
            }
            items.append(item)
        items += items[: notes // 40]  # exact duplicates
        parts.append({"name": name, "notes": items})
    record = {
        "code": 200,
        "msg": "success",
        "data": {"taskId": f"dense{seed}", "successFlag": 1, "midiData": {"state": "complete", "instruments": parts}},
    }
    return json.dumps(record).encode()


def digests() -> dict[str, dict[str, list[str]]]:
    from midiexport.options import ConvertOptions

    table: dict[str, dict[str, list[str]]] = {}
    named = [(str(p.relative_to(ROOT)), p.read_bytes()) for p in inputs()]
    named += [(f"dense-song-{seed}", dense_song(seed)) for seed in (1, 2)]
    for name, raw in named:
        table[name] = {v: outcome(raw, name, ConvertOptions(**kw)) for v, kw in VARIANTS.items()}
    return table


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    DIGESTS.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS}")
