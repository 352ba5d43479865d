"""midiexport: the MIDI note data of Suno-style music APIs as Standard MIDI Files.

The pipeline, one function per stage::

    records = midiexport.normalize_payload(json_bytes, source="task.json")
    song = midiexport.convert_record(records[0], midiexport.ConvertOptions(bpm=120, ppq=480))
    data = midiexport.write_midi(song, format=1)

``convert_payload`` does all three for one record. Names are loaded on first use,
so ``import midiexport`` (and ``midiexport --help``) loads neither numpy nor httpx.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ApiError": "errors",
    "ConvertOptions": "options",
    "EmptyRecord": "errors",
    "FetchError": "errors",
    "InputError": "errors",
    "Instrument": "model",
    "InvalidNote": "errors",
    "KeyEstimate": "stages.key",
    "MidiExportError": "errors",
    "NetworkError": "errors",
    "OutputError": "errors",
    "Record": "model",
    "RecordError": "errors",
    "Report": "model",
    "Song": "model",
    "Summary": "jobs.info",
    "TempoEstimate": "stages.tempo",
    "TaskFailed": "errors",
    "TaskPending": "errors",
    "Track": "model",
    "clean_record": "stages.clean",
    "convert_payload": "jobs.api",
    "convert_record": "stages.convert",
    "estimate_key": "stages.key",
    "estimate_tempo": "stages.tempo",
    "normalize_payload": "stages.normalize",
    "split_song": "stages.convert",
    "summarize_midi": "jobs.info",
    "summarize_record": "jobs.info",
    "write_midi": "outputs.smf",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'midiexport' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
