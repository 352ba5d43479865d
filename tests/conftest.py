"""Shared test fixtures: paths to fixtures and the sample, a clean environment, and
readers that look at written .mid files with mido and pretty_midi, never our writer."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SAMPLE = ROOT / "samples" / "sample-song.json"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real API key or base URL from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("MIDIEXPORT_"):
            monkeypatch.delenv(name)


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def load_fixture(name: str) -> Any:
    return json.loads(fixture_path(name).read_text())


def api_notes(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Return {instrument name: notes} from a record-info answer, as plain JSON values."""
    return {i["name"]: i["notes"] for i in payload["data"]["midiData"]["instruments"]}


def pretty(data: bytes) -> Any:
    """Read .mid bytes with pretty_midi (independent of our writer)."""
    import pretty_midi

    return pretty_midi.PrettyMIDI(io.BytesIO(data))


def mido_file(data: bytes) -> Any:
    import mido

    return mido.MidiFile(file=io.BytesIO(data))


def channel_events(data: bytes) -> list[tuple[int, str, int, int, int]]:
    """Return every note event as (abs tick, type, channel, note, velocity), merged in file order."""
    events = []
    for track in mido_file(data).tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type in ("note_on", "note_off"):
                events.append((tick, message.type, message.channel, message.note, message.velocity))
    return events


def record_payload(instruments: dict[str, list[tuple[int, float, float, float]]], **data: Any) -> dict[str, Any]:
    """Build a record-info answer from {name: [(pitch, start_s, end_s, velocity), ...]}."""
    midi = {
        "state": "complete",
        "instruments": [
            {"name": name, "notes": [{"pitch": p, "start": s, "end": e, "velocity": v} for p, s, e, v in notes]}
            for name, notes in instruments.items()
        ],
    }
    body = {"taskId": "t123", "audioId": "a456", "successFlag": 1, "midiData": midi, **data}
    return {"code": 200, "msg": "success", "data": body}
