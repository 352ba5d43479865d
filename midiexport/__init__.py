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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see (PEP 484 re-exports); at run time, __getattr__ loads on first use
    from .errors import ApiError as ApiError
    from .errors import ChoiceNeeded as ChoiceNeeded
    from .errors import EmptyRecord as EmptyRecord
    from .errors import FetchError as FetchError
    from .errors import InputError as InputError
    from .errors import InvalidNote as InvalidNote
    from .errors import MidiExportError as MidiExportError
    from .errors import NetworkError as NetworkError
    from .errors import OutputError as OutputError
    from .errors import RecordError as RecordError
    from .errors import TaskFailed as TaskFailed
    from .errors import TaskPending as TaskPending
    from .errors import UnconfirmedRequest as UnconfirmedRequest
    from .errors import WorkerLost as WorkerLost
    from .jobs.api import Written as Written
    from .jobs.api import convert_file as convert_file
    from .jobs.api import convert_payload as convert_payload
    from .jobs.api import to_pretty_midi as to_pretty_midi
    from .jobs.info import Summary as Summary
    from .jobs.info import summarize_midi as summarize_midi
    from .jobs.info import summarize_record as summarize_record
    from .model import Instrument as Instrument
    from .model import Record as Record
    from .model import Report as Report
    from .model import Song as Song
    from .model import Track as Track
    from .options import ConvertOptions as ConvertOptions
    from .outputs.smf import write_midi as write_midi
    from .stages.clean import clean_record as clean_record
    from .stages.convert import convert_record as convert_record
    from .stages.convert import split_song as split_song
    from .stages.key import KeyEstimate as KeyEstimate
    from .stages.key import estimate_key as estimate_key
    from .stages.midifile import merge_stems as merge_stems
    from .stages.midifile import read_midi as read_midi
    from .stages.normalize import normalize_payload as normalize_payload
    from .stages.tempo import TempoEstimate as TempoEstimate
    from .stages.tempo import estimate_tempo as estimate_tempo

__version__ = "0.1.0"

_EXPORTS = {
    "ApiError": "errors",
    "ChoiceNeeded": "errors",
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
    "UnconfirmedRequest": "errors",
    "WorkerLost": "errors",
    "Written": "jobs.api",
    "convert_file": "jobs.api",
    "clean_record": "stages.clean",
    "convert_payload": "jobs.api",
    "convert_record": "stages.convert",
    "estimate_key": "stages.key",
    "estimate_tempo": "stages.tempo",
    "merge_stems": "stages.midifile",
    "normalize_payload": "stages.normalize",
    "read_midi": "stages.midifile",
    "split_song": "stages.convert",
    "summarize_midi": "jobs.info",
    "summarize_record": "jobs.info",
    "to_pretty_midi": "jobs.api",
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
