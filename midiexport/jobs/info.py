"""Info: what a JSON record or a .mid holds, per instrument or track.

For a record: the program and channel that ``convert`` would choose. For a .mid:
what the file says, read with mido (an independent reader, not our writer), note
times in seconds through the file's own tempo map. Hands on Summaries, which
``format_table`` and ``summaries_json`` turn into text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .. import gm, model
from ..errors import InputError
from ..io.files import InputFile, read_bytes
from ..model import Record
from ..stages.convert import place_instruments, song_title
from ..stages.normalize import normalize_lines, normalize_payload
from ..stages.tempo import estimate_tempo

MIDI_SUFFIXES = (".mid", ".midi", ".smf")


@dataclass(frozen=True)
class PartSummary:
    """One instrument (record) or track (.mid): times in seconds, pitches 0-127."""

    name: str
    program: int | None
    program_name: str | None
    channel: int | None  # 0-based; drums are 9
    notes: int
    pitch_low: int | None
    pitch_high: int | None
    first_s: float | None
    last_s: float | None


@dataclass(frozen=True)
class Summary:
    """What one record or one .mid holds."""

    source: str
    kind: str  # "record" or "midi"
    status: str
    title: str | None
    task_id: str | None
    duration_s: float | None
    parts: tuple[PartSummary, ...]
    detail: str = ""  # the reason a record cannot convert, or the file's format and ppq
    tempo_bpm: float | None = None  # a record: estimated; a .mid: written (its longest tempo)
    tempo_confidence: float | None = None  # 0-1, records only
    first_downbeat_s: float | None = None  # a record: estimated; a .mid: where its first full bar starts
    meter: str | None = None  # a record: estimated ("3/4"), None when too unsure to claim bar lines

    @property
    def notes(self) -> int:
        return sum(p.notes for p in self.parts)


def summarize_file(source: InputFile, *, programs: Mapping[str, str | int] | None = None) -> list[Summary]:
    """Summarize a .mid (by its suffix) or every record of a JSON input.

    Raises InputError when the file cannot be read or parsed.
    """
    raw = read_bytes(source)
    if source.path.lower().endswith(MIDI_SUFFIXES) or raw.startswith(b"MThd"):
        return [summarize_midi(raw, source=source.name)]
    if not source.lines:
        return [summarize_record(r, programs=programs) for r in normalize_payload(raw, source=source.name)]
    summaries = []
    for item in normalize_lines(enumerate(raw.splitlines(), 1), source=source.name):
        if isinstance(item, InputError):
            raise item
        summaries.append(summarize_record(item, programs=programs))
    return summaries


def summarize_record(record: Record, *, programs: Mapping[str, str | int] | None = None) -> Summary:
    """Summarize a Record with the programs and channels ``convert`` would choose."""
    placements, _ = place_instruments([i.name for i in record.instruments], programs, {})
    parts = []
    for instrument, placement in zip(record.instruments, placements):
        has = instrument.note_count > 0
        parts.append(
            PartSummary(
                name=instrument.name,
                program=placement.program,
                program_name="Drum kit" if placement.is_drum else gm.program_name(placement.program),
                channel=placement.channel,
                notes=instrument.note_count,
                pitch_low=int(instrument.pitch.min()) if has else None,
                pitch_high=int(instrument.pitch.max()) if has else None,
                first_s=round(float(instrument.start_s.min()), 6) if has else None,
                last_s=round(float(instrument.end_s.max()), 6) if has else None,
            )
        )
    last = max((p.last_s for p in parts if p.last_s is not None), default=None)
    duration = record.duration_s if record.duration_s is not None else last
    detail = record.reason
    if record.counts.get(model.NOTE_LEFT_OUT):
        detail = f"{record.counts[model.NOTE_LEFT_OUT]} invalid notes left out"
    estimate = estimate_tempo(record) if record.status == model.COMPLETE and record.note_count else None
    estimate = estimate if estimate is not None and estimate.source != "none" else None
    return Summary(
        source=record.place(),
        kind="record",
        status=record.status,
        title=song_title(record) if record.status == model.COMPLETE else record.title,
        task_id=record.task_id,
        duration_s=duration,
        parts=tuple(parts),
        detail=detail,
        tempo_bpm=estimate.bpm if estimate else None,
        tempo_confidence=estimate.confidence if estimate else None,
        first_downbeat_s=round(estimate.first_downbeat_s, 3) if estimate and estimate.sure else None,
        meter=estimate.meter if estimate and estimate.sure else None,
    )


def summarize_midi(data: bytes, *, source: str = "<midi>") -> Summary:
    """Summarize Standard MIDI File bytes: per track, with times from its tempo map.

    Raises InputError when mido cannot read the bytes as a MIDI file.
    """
    import io

    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data), charset="latin1")
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"{source} is not a valid MIDI file ({exc})", input=source) from exc
    to_seconds = _tempo_map(midi)
    tempo_bpm, downbeat_tick = _written_tempo(midi)
    title = None
    parts = []
    for track in midi.tracks:
        summary, name = _summarize_track(track, to_seconds)
        if summary is None:
            title = title or name
        else:
            parts.append(summary)
    last_tick = max((sum(m.time for m in t) for t in midi.tracks), default=0)
    return Summary(
        source=source,
        kind="midi",
        status=model.COMPLETE,
        title=title,
        task_id=None,
        duration_s=round(float(to_seconds([last_tick])[0]), 6),
        parts=tuple(parts),
        detail=f"format {midi.type}, {midi.ticks_per_beat} ticks per quarter, {len(midi.tracks)} tracks",
        tempo_bpm=tempo_bpm,
        first_downbeat_s=round(float(to_seconds([downbeat_tick])[0]), 3),
    )


def _tempo_line(summary: Summary) -> str:
    """Return 'tempo estimated 97.3 BPM, 4/4, first downbeat at 1.370 s (confidence 0.93)' or its unsure form."""
    kind = "estimated" if summary.kind == "record" else "written"
    line = f"tempo {kind} {summary.tempo_bpm:g} BPM"
    if summary.meter is not None:
        line += f", {summary.meter}"
    if summary.first_downbeat_s is not None:
        line += f", first downbeat at {summary.first_downbeat_s:.3f} s"
    if summary.tempo_confidence is not None:
        line += f" (confidence {summary.tempo_confidence:.2f}"
        line += ")" if summary.meter is not None else ", too low to claim bar lines)"
    return line


def _written_tempo(midi: Any) -> tuple[float | None, int]:
    """Return the tempo (BPM) that lasts longest in a file, and the tick of its first full bar (after a pickup)."""
    changes, meters = [], []
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                changes.append((tick, message.tempo))
            elif message.type == "time_signature":
                meters.append((tick, message.numerator, message.denominator))
    last = max((sum(m.time for m in t) for t in midi.tracks), default=0)
    changes.sort()
    spans: dict[int, int] = {}
    for (tick, tempo), (following, _) in zip(changes, [*changes[1:], (last, 0)]):
        spans[tempo] = spans.get(tempo, 0) + max(0, following - tick)
    tempo_bpm = round(60_000_000 / max(spans, key=spans.__getitem__), 3) if spans else None
    meters.sort()
    downbeat = meters[1][0] if len(meters) >= 2 and meters[0][0] == 0 else 0  # after a pickup bar
    return tempo_bpm, downbeat


def _utf8(text: str) -> str:
    # Files carry UTF-8 in practice; mido reads meta text as latin-1.
    try:
        return text.encode("latin1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _tempo_map(midi: Any) -> Any:
    """Return a function: absolute ticks -> seconds, through every set_tempo in the file."""
    import numpy as np

    changes = {0: 500_000}
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                changes[tick] = message.tempo
    ticks = np.array(sorted(changes), dtype=np.float64)
    tempos = np.array([changes[int(t)] for t in ticks], dtype=np.float64)
    seconds_per_tick = tempos / 1e6 / midi.ticks_per_beat
    starts = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * seconds_per_tick[:-1])])

    def to_seconds(abs_ticks: Sequence[float]) -> Any:
        at = np.asarray(abs_ticks, dtype=np.float64)
        i = np.searchsorted(ticks, at, side="right") - 1
        return starts[i] + (at - ticks[i]) * seconds_per_tick[i]

    return to_seconds


def _summarize_track(track: Any, to_seconds: Any) -> tuple[PartSummary | None, str | None]:
    name, program, channels = None, None, set()
    ons, offs, pitches = [], [], []
    tick = 0
    for message in track:
        tick += message.time
        kind = message.type
        if kind == "track_name" and name is None:
            name = _utf8(message.name)
        elif kind == "program_change" and program is None:
            program = message.program
        elif kind in ("note_on", "note_off"):
            channels.add(message.channel)
            if kind == "note_on" and message.velocity > 0:
                ons.append(tick)
                pitches.append(message.note)
            else:
                offs.append(tick)
    if not ons and program is None:
        return None, name  # the conductor track
    channel = min(channels) if channels else None
    drum = channel == gm.DRUM_CHANNEL
    return (
        PartSummary(
            name=name or "",
            program=program,
            program_name="Drum kit" if drum else (gm.program_name(program) if program is not None else None),
            channel=channel,
            notes=len(ons),
            pitch_low=min(pitches) if pitches else None,
            pitch_high=max(pitches) if pitches else None,
            first_s=round(float(to_seconds([ons[0]])[0]), 6) if ons else None,
            last_s=round(float(to_seconds([max(offs)])[0]), 6) if offs else None,
        ),
        name,
    )


def format_table(summary: Summary) -> str:
    """Return a readable table of one Summary, for people (channels shown 1-16)."""
    head = [f"{summary.source}"]
    facts = [f"status {summary.status}"]
    for label, value in (("title", summary.title), ("task", summary.task_id)):
        if value:
            facts.append(f"{label} {value}")
    if summary.duration_s is not None:
        facts.append(f"duration {summary.duration_s:.2f} s")
    facts.append(f"{summary.notes} notes")
    head.append("  " + ", ".join(facts))
    if summary.tempo_bpm is not None:
        head.append("  " + _tempo_line(summary))
    if summary.detail:
        head.append(f"  {summary.detail}")
    if not summary.parts:
        return "\n".join(head)
    rows = [("#", "name", "program", "ch", "notes", "pitches", "first s", "last s")]
    for number, part in enumerate(summary.parts, 1):
        rows.append(
            (
                str(number),
                _cut(part.name, 32),
                f"{part.program} {part.program_name}" if part.program is not None else "-",
                gm.channel_label(part.channel) if part.channel is not None else "-",
                str(part.notes),
                f"{part.pitch_low}-{part.pitch_high}" if part.pitch_low is not None else "-",
                f"{part.first_s:.3f}" if part.first_s is not None else "-",
                f"{part.last_s:.3f}" if part.last_s is not None else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {0, 3, 4, 6, 7}
    lines = []
    for row in rows:
        cells = (cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(head + lines)


def _cut(text: str, limit: int) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def summaries_json(summaries: Sequence[Summary]) -> str:
    """Return Summaries as a JSON array (channels 0-based, times in seconds)."""
    return json.dumps([{**asdict(s), "notes": s.notes} for s in summaries], indent=2, ensure_ascii=False)
