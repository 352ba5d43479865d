"""Info: what a JSON record or a .mid holds, per instrument or track.

For a record: the program and channel that ``convert`` would choose, and the tempo
(``tempo.estimate_tempo``: meter and first downbeat only when ``--bpm auto`` would draw
the bar lines, beats followed only when it would follow them, as ``timing.drawn``
decides; both confidences) and key it would estimate. For a .mid: what the file says,
read with the tolerant reader of ``stages.midifile`` (not our writer), note times in
seconds through the file's own tempo map; a file midiexport wrote with ``--bpm auto`` also
opens with its estimate's own line (``TempoEstimate.describe``), from which the estimate convert
reported and whether it claims no bar line are read (``tempo.UNCLAIMED_PATTERN``), so its 4/4
from 0 s is not shown as a downbeat. Hands on Summaries, which ``format_table``
and ``summaries_json`` turn into text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

from .. import gm, model
from ..defaults import AUTO_PPQ, DEFAULT_MAX_INPUT_MB
from ..display import json_text, plural, printable
from ..errors import InputError, check_argument
from ..io.archive import Member, member_place, read_archive
from ..io.files import InputFile, is_archive, read_bytes
from ..model import Record
from ..outputs.smf import KAR_INFORMATION
from ..stages import tempo
from ..stages.convert import ESTIMATED_PREFIX, place_instruments, song_title
from ..stages.key import estimate_key
from ..stages.midifile import (
    Part,
    Smf,
    file_stem,
    in_time,
    kept_end_s,
    leading_texts,
    midi_title,
    parse_smf,
    part_names,
)
from ..stages.normalize import LATEST
from ..stages.tempo import estimate_tempo, shown_confidence
from ..stages.timing import BARS, BEATS, NO_ESTIMATE, auto_time, drawn
from .json_input import JsonRecords, blank_lines_error, holds_no_record, is_midi_data, read_json, read_member_records


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
    tempo_bpm: float | None = None  # a record: estimated; a .mid: written (a map's median over the beats)
    tempo_confidence: float | None = None  # 0-1, records only: that the meter and bar lines are right
    beat_confidence: float | None = None  # 0-1, records only: that the beats are right, bars or not
    first_downbeat_s: float | None = None  # a record: estimated; a .mid: its first full bar, None with no meter
    meter: str | None = None  # a record: estimated ("3/4"), None when too unsure to claim bar lines
    tempo_written: str | None = None  # a record: what --bpm auto draws: "bars", "beats" or "constant"
    has_drums: bool | None = None  # a record: whether its notes have drums (bar lines have a threshold per group)
    tempo_range_bpm: tuple[float, float] | None = None  # a .mid: slowest and fastest tempo written
    tempo_events: int | None = None  # a .mid: how many tempos its map holds (Suno's export: one per beat)
    key: str | None = None  # a record: estimated ("A minor"); a .mid: its first key signature
    key_confidence: float | None = None  # records only: the margin over the next best key
    notes_too_late: int | None = None  # a .mid: notes ending beyond LATEST, which convert leaves out (not in parts)
    time_signatures: tuple[tuple[float, str], ...] | None = None  # a .mid: (seconds, "6/8") of each it holds
    estimated_bpm: float | None = None  # a .mid midiexport wrote with --bpm auto: the estimate its text gives
    bars_unclaimed: str | None = None  # such a .mid whose text claims no bar line: why ("bar lines counted from 0 s")

    @property
    def notes(self) -> int:
        return sum(p.notes for p in self.parts)


class Described(NamedTuple):
    """What ``info`` shows of one record or .mid: its summary, or the error that stopped it; and its warnings.

    As ``runner.Outcome`` for ``convert``: the warnings are said as convert says a result's
    (``cli.report.say_warnings``).
    """

    summary: Summary | None = None
    error: InputError | None = None
    warnings: tuple[str, ...] = ()


def summarize_file(
    source: InputFile, *, programs: Mapping[str, str | int] | None = None, max_input_mb: float = DEFAULT_MAX_INPUT_MB
) -> list[Described]:
    """Summarize a .mid (by its suffix) or every record of a JSON input (at most ``max_input_mb`` MB).

    JSON is read as ``convert`` reads it (``json_input``): a .jsonl by its lines, and a
    .json holding JSON Lines by its lines too.
    A member of a .zip that cannot be read (damaged, too large, outside the archive) or
    summarized, and a line of a JSON Lines file that cannot be parsed, is its InputError
    in the list, in its place, and the others are summarized: a member or a line fails
    alone, as it does in ``convert``.
    A .zip's files that are no records (``io.archive``: a .txt, a .wav) are said in one
    line among the first item's warnings, as convert says it: not a failure.
    Raises InputError when the file as a whole (a .zip included) cannot be read or parsed,
    when a .zip yields no record and no failure (``Archive.settle``, as ``convert``), and
    when a JSON Lines file has no line of text (``blank_lines_error``, as ``convert``).
    """
    if is_archive(source):  # a .zip of stems: each member on its own, each within max_input_mb
        archive = read_archive(source, max_mb=max_input_mb)
        items = [_described(s) for member in archive.members for s in _summarize_member(source, member)]
        return archive.settle(source.name, items, _say_not_read)
    raw = read_bytes(source, max_mb=max_input_mb)
    if is_midi_data(raw, source.path):
        return [Described(summarize_midi(raw, source=source.name))]
    json = read_json(raw, source=source.name, lines=source.lines)
    if json.by_line and not json.items:  # a blank .jsonl: nothing to show is a failure, as in convert
        raise blank_lines_error(source.name)
    return [_described(item) for item in _summarize_json(json, source.name, programs=programs)]


def _say_not_read(first: Described, line: str) -> Described:
    """Put the line naming a .zip's files not read among an item's warnings (a failure's too)."""
    return first._replace(warnings=(line, *first.warnings))


def _described(item: Summary | InputError) -> Described:
    return Described(error=item) if isinstance(item, InputError) else Described(item)


def _no_record_error(record: Record, source: str) -> InputError:
    """The error of a JSON Lines line holding no record ("a.jsonl: line 2: holds no MIDI data"), as convert says."""
    return InputError(f"{record.place()}: {record.reason}", input=source)


def _summarize_member(source: InputFile, member: Member) -> list[Summary | InputError]:
    """Summarize one archive member, or return [its InputError]: it fails alone."""
    if member.error is not None:
        return [member.error]
    try:
        return list(summarize_bytes(member.data, member_place(source.name, member.name), file_name=member.name))
    except InputError as exc:
        return [exc]


def summarize_bytes(data: bytes, source: str, *, file_name: str | None = None) -> list[Summary | InputError]:
    """Summarize one archive member as the same file given alone (``json_input.read_member_records``).

    ``source`` names the member in messages ("stems.zip: Song (Bass).mid"); ``file_name``
    is its own name (``source`` when None), which a .mid's part names and title are read
    from (``file_stem``), which tells JSON Lines (a bad line is its InputError in its place),
    and a record's title when it has neither title nor task id.
    """
    json = read_member_records(data, source, file_name or source)
    if json is None:
        return [summarize_midi(data, source=source, file_name=file_name)]
    return _summarize_json(json, source)


def _summarize_json(json: JsonRecords, source: str, *,
                    programs: Mapping[str, str | int] | None = None) -> list[Summary | InputError]:  # fmt: skip
    """Summarize the records of JSON bytes read as ``convert`` reads them (``json_input``).

    A document that holds no MIDI record at all is refused (``json_input.holds_no_record``); a line that
    failed, or holds no record, is its InputError in its place.
    """
    items, by_line = json
    empty = [r for r in items if isinstance(r, Record) and holds_no_record(r)]
    if not by_line and len(empty) == len(items):  # a document's items are all records
        raise _no_record_error(empty[0], source)
    if by_line:  # a line holding no record fails in its place, as convert fails it
        items = [_no_record_error(item, source) if isinstance(item, Record) and holds_no_record(item) else item
                 for item in items]  # fmt: skip
    return [item if isinstance(item, InputError) else summarize_record(item, programs=programs) for item in items]


def summarize_record(record: Record, *, programs: Mapping[str, str | int] | None = None) -> Summary:
    """Summarize a Record with the programs and channels ``convert`` would choose."""
    check_argument("summarize_record", "record", record, Record)
    hints = [(i.program, i.is_drum) for i in record.instruments]
    placements, _, _ = place_instruments([i.name for i in record.instruments], programs, hints=hints)
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
        left_out = record.counts[model.NOTE_LEFT_OUT]
        detail = f"{left_out} {plural(left_out, model.NOTE_LEFT_OUT)}"
    estimate = estimate_tempo(record) if record.status == model.COMPLETE and record.note_count else None
    estimate = estimate if estimate is not None and estimate.source != NO_ESTIMATE else None
    written = drawn(estimate) if estimate else None  # what convert --bpm auto would write
    if estimate and written == BARS:  # the first downbeat where convert --bpm auto draws it (0 s: no pickup bar)
        estimate = auto_time(estimate, ppq=AUTO_PPQ).estimate
    found_key = estimate_key(record, [p.is_drum for p in placements]) if record.status == model.COMPLETE else None
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
        beat_confidence=estimate.beat_confidence if estimate else None,
        first_downbeat_s=round(estimate.first_downbeat_s, 3) if estimate and written == BARS else None,
        meter=estimate.meter if estimate and written == BARS else None,
        tempo_written=written,
        has_drums=estimate.has_drums if estimate else None,
        key=found_key.name if found_key else None,
        key_confidence=round(found_key.confidence, 3) if found_key else None,
    )


def summarize_midi(data: bytes, *, source: str = "<midi>", file_name: str | None = None) -> Summary:
    """Summarize Standard MIDI File bytes: per track and channel, times through its tempo map.

    Read with the tolerant reader (``stages.midifile``): damage such as an illegal key
    signature, a zero tempo or a track cut short is read past and named in ``detail``.
    Takes the file's bytes, not its path: a str or Path is a TypeError saying so.
    Raises InputError (naming the reason) when the bytes hold nothing to read.
    """
    check_argument("summarize_midi", "data", data, (bytes, bytearray))
    smf = parse_smf(data, source=source)
    stem = file_stem(source, file_name)
    parts = [_summarize_part(smf, p, name) for p, name in zip(smf.parts, part_names(smf, stem))]
    tempo_bpm, meters, full_bar = _written_tempo(smf), _time_signatures(smf), _first_full_bar(smf)
    estimated_bpm, unclaimed = _tempo_text(leading_texts(data))
    bpms = [60_000_000 / tempo_us for _, tempo_us in smf.tempos]
    detail = [f"format {smf.format}, " + (f"{smf.ppq} {plural(smf.ppq, 'tick')} per quarter" if smf.ticks_per_s is None
                                          else f"SMPTE time, {smf.ticks_per_s:g} ticks per second")
              + f", {smf.track_count} {plural(smf.track_count, 'track')}"]  # fmt: skip
    detail += [f"{n:,} {plural(n, kind)}" for kind, n in smf.counts.items()] + list(smf.problems)
    return Summary(
        source=source,
        kind="midi",
        status=model.COMPLETE,
        title=midi_title(smf, stem),
        task_id=None,
        duration_s=_kept_duration(smf, parts),
        parts=tuple(parts),
        detail="; ".join(detail),
        tempo_bpm=tempo_bpm,
        first_downbeat_s=None if unclaimed or full_bar is None else meters[full_bar][0],
        tempo_range_bpm=(round(min(bpms), 3), round(max(bpms), 3)) if bpms else None,
        tempo_events=len(smf.tempos),
        key=smf.key,
        notes_too_late=sum(p.note_count for p in smf.parts) - sum(p.notes for p in parts),
        time_signatures=meters,
        estimated_bpm=estimated_bpm,
        bars_unclaimed=unclaimed,
    )


SAME_TEMPO = 1e-4  # a written tempo this close to the estimate (relative) is the estimate: 100.001 for 100
# The tempo text a --bpm auto file opens with (KAR_INFORMATION + ESTIMATED_PREFIX + TempoEstimate.describe(),
# or the source's beat map's line): its estimate, and why it claims no bar line when it says so
# (``tempo.UNCLAIMED_PATTERN``). The words are tempo's constants, written and read through the same names.
TEMPO_TEXT = re.compile(
    f"{re.escape(KAR_INFORMATION)}(?:{re.escape(ESTIMATED_PREFIX)})?{tempo.DESCRIBED_TEMPO.pattern}"
)


def _tempo_text(texts: tuple[str, ...]) -> tuple[float | None, str | None]:
    """Return the estimate a file's own tempo text gives (BPM) and why it claims no bar line (None: it claims them
    or has no such text), as midiexport wrote them; (None, None) for a file with no such text."""
    for text in texts:
        found = TEMPO_TEXT.match(text)
        if found:
            unclaimed = tempo.UNCLAIMED_PATTERN.search(text)
            return float(found.group(1)), unclaimed.group(0) if unclaimed else None
    return None, None


def _time_signatures(smf: Smf) -> tuple[tuple[float, str], ...]:
    """Return a file's time signatures as (seconds, "n/d"), in order; none when it holds none."""
    import numpy as np

    if not smf.meters:
        return ()
    seconds = smf.to_seconds(np.array([tick for tick, _, _ in smf.meters], dtype=np.int64)).tolist()
    return tuple((round(s, 3), f"{n}/{d}") for s, (_, n, d) in zip(seconds, smf.meters))


def _kept_duration(smf: Smf, parts: list[PartSummary]) -> float | None:
    """Return a file's duration in seconds as convert keeps it: to its end, or, when that lies beyond
    LATEST (``midifile.in_time``), to the last note kept; None when no note is kept."""
    end_s = kept_end_s(smf)
    if end_s is not None:
        return round(end_s, 6)
    return max((p.last_s for p in parts if p.last_s is not None), default=None)


SHOWN_METERS = 4  # time signatures listed on info's line; the rest are counted


def _meters_line(meters: tuple[tuple[float, str], ...]) -> str:
    """Return 'time signature 4/4' or 'time signatures 1/16 at 0.000 s, 4/4 at 0.004 s' (``meters`` not empty)."""
    if len(meters) == 1 and meters[0][0] == 0:
        return f"time signature {meters[0][1]}"
    shown = ", ".join(f"{meter} at {at_s:.3f} s" for at_s, meter in meters[:SHOWN_METERS])
    more = f", and {len(meters) - SHOWN_METERS:,} more" if len(meters) > SHOWN_METERS else ""
    return f"time signatures {shown}{more}"


def _tempo_line(summary: Summary) -> str:
    """Return 'tempo estimated 97.3 BPM, 4/4, first downbeat at 1.370 s (confidence 0.93)' or its unsure forms.

    Below the bar-line threshold no meter or downbeat is shown, and the beat confidence
    says whether the beats are followed all the same.
    """
    kind = "estimated" if summary.kind == "record" else "written"
    line = f"tempo {kind} {summary.tempo_bpm:g} BPM"
    if summary.kind == "midi":
        return line + _written_where(summary)
    if summary.meter is not None:
        line += f", {summary.meter}"
    if summary.first_downbeat_s is not None:
        line += f", first downbeat at {summary.first_downbeat_s:.3f} s"
    if summary.tempo_confidence is None:
        return line
    if summary.meter is not None:
        return line + f" (confidence {shown_confidence(summary.tempo_confidence)})"
    beats = ""
    if summary.beat_confidence is not None:
        verdict = ("beats followed" if summary.tempo_written == BEATS
                   else "too low to follow them" if summary.beat_confidence < tempo.BEAT_CONFIDENCE_THRESHOLD
                   else "too few beats to follow")  # fmt: skip
        beats = f"; beat confidence {shown_confidence(summary.beat_confidence)}, {verdict}"
    threshold = tempo.bar_threshold(has_drums=summary.has_drums is not False)
    if threshold is None:
        bars = "without drums no bar line is claimed"
    elif summary.tempo_confidence >= threshold:
        bars = "no bar line found after the first note"
    else:
        bars = "too low to claim bar lines"
    return line + f" (confidence {shown_confidence(summary.tempo_confidence)}, {bars}{beats})"


def _written_where(summary: Summary) -> str:
    """What a .mid's tempo figure is (a map's: its median over the beats; beside the estimate its own text gives, as
    convert said it) and where its first full bar starts, or that its own text claims none."""
    said = ["median over the beats"] if summary.tempo_events is not None and summary.tempo_events > 1 else []
    estimated, written = summary.estimated_bpm, summary.tempo_bpm
    if estimated is not None and written is not None and abs(written - estimated) > SAME_TEMPO * estimated:
        said.append(f"convert estimated {estimated:g} BPM")
    median = f" ({'; '.join(said)})" if said else ""
    if summary.bars_unclaimed:
        return median + f", no meter or downbeat claimed ({summary.bars_unclaimed})"
    downbeat = summary.first_downbeat_s
    return median + (f", first downbeat at {downbeat:.3f} s" if downbeat is not None else ", no time signature written")


def _written_tempo(smf: Smf) -> float | None:
    """Return a file's tempo (BPM): its one tempo, or a map's median over the beats (the quarters).

    The median, weighted by how many quarters each tempo lasts: a Suno export's map holds one
    tempo per beat, whose median is the song's tempo; a file written by ``--bpm auto`` gets the
    tempo of most of its bars, not its pickup's.
    """
    spans: dict[int, int] = {}
    ends = [tick for tick, _ in smf.tempos[1:]] + [max(smf.end_tick, smf.tempos[-1][0] if smf.tempos else 0)]
    for (tick, tempo_us), following in zip(smf.tempos, ends):
        spans[tempo_us] = spans.get(tempo_us, 0) + max(0, following - tick)
    if not spans:
        return None
    half, passed = sum(spans.values()) / 2, 0
    for tempo_us in sorted(spans):  # the median of the tempos, each weighted by its ticks
        passed += spans[tempo_us]
        if passed >= half:
            break
    return round(60_000_000 / tempo_us, 3)


def _first_full_bar(smf: Smf) -> int | None:
    """Return which time signature (0 or 1, in ``smf.meters``) a file's first full bar starts at; None: it has none.

    The first one, unless it lasts exactly one of its bars before the next: that bar is a
    pickup (``--bpm auto`` writes one so, a 4/4 bar too when the pickup is four quarters)
    and the next time signature starts the first full bar. ``smf.meters`` are in tick order.
    """
    meters = smf.meters
    if not meters:
        return None
    if len(meters) > 1 and smf.ppq:
        (tick, n, d), following = meters[0], meters[1][0]
        if following - tick == round(n * 4 * smf.ppq / d):
            return 1
    return 0


def _summarize_part(smf: Smf, part: Part, name: str) -> PartSummary:
    """Summarize a track's notes on one channel as convert keeps them (``midifile.in_time``)."""
    drum = part.channel == gm.DRUM_CHANNEL
    start_s, end_s = smf.to_seconds(part.on_tick), smf.to_seconds(part.off_tick)
    kept = in_time(end_s)
    start_s, end_s, pitch = start_s[kept], end_s[kept], part.pitch[kept]
    has = bool(kept.any())
    return PartSummary(
        name=name,
        program=part.program,
        program_name="Drum kit" if drum else (gm.program_name(part.program) if part.program is not None else None),
        channel=part.channel,
        notes=int(kept.sum()),
        pitch_low=int(pitch.min()) if has else None,
        pitch_high=int(pitch.max()) if has else None,
        first_s=round(float(start_s.min()), 6) if has else None,
        last_s=round(float(end_s.max()), 6) if has else None,
    )


def format_table(summary: Summary) -> str:
    """Return a readable table of one Summary, for people (channels shown 1-16)."""
    head = [printable(summary.source)]
    facts = [f"status {summary.status}"]
    for label, value in (("title", summary.title), ("task", summary.task_id)):
        if value:
            facts.append(f"{label} {printable(value)}")
    if summary.duration_s is not None:
        facts.append(f"duration {summary.duration_s:.2f} s")
    facts.append(f"{summary.notes} {plural(summary.notes, 'note')}")
    head.append("  " + ", ".join(facts))
    if summary.tempo_bpm is not None:
        head.append("  " + _tempo_line(summary))
    if summary.tempo_events is not None and summary.tempo_events > 1 and summary.tempo_range_bpm:
        low, high = summary.tempo_range_bpm
        head.append(f"  tempo map {low:g}-{high:g} BPM in {summary.tempo_events:,} tempo events")
    if summary.key is not None:
        found = f"estimated {summary.key} (confidence {summary.key_confidence:.2f})" if summary.kind == "record" else (
            f"written {summary.key}"
        )  # fmt: skip
        head.append(f"  key {found}")
    elif summary.kind == "midi":
        head.append("  no key signature")
    if summary.time_signatures:  # none: the tempo line says so
        claimed = f" (no downbeat claimed: {summary.bars_unclaimed})" if summary.bars_unclaimed else ""
        head.append("  " + _meters_line(summary.time_signatures) + claimed)
    if summary.detail:
        head.append(f"  {printable(summary.detail)}")
    if summary.notes_too_late:
        late = summary.notes_too_late
        head.append(f"  {late:,} {plural(late, 'note')} ending beyond {LATEST}, which convert leaves out")
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
    clean = printable(text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def summaries_json(summaries: Sequence[Summary]) -> str:
    """Return Summaries as a JSON array (channels 0-based, times in seconds, names as ``json_text`` spells them)."""
    return json.dumps(json_text([{**asdict(s), "notes": s.notes} for s in summaries]), indent=2, ensure_ascii=False)
