"""Convert files: the job of ``midiexport convert``, one unit per input or JSON line.

Its inputs are found by ``find_batch_inputs``: a folder search leaves out the files
midiexport wrote (its .mid files, reports and generate states), a named .mid that another
input of the run wrote is left out (``own_outputs``), and a file reached twice is read
once. Each unit (an input file, or one line of a JSON Lines input) is read, normalized,
converted and encoded, in worker processes when ``jobs`` > 1 (see ``runner``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, NamedTuple

from ..defaults import GENERATE_STATE_SUFFIX, WRITTEN_JSON_HEAD_BYTES
from ..display import plural
from ..errors import InputError, OutputError, Phrase, say
from ..io import files
from ..io.files import InputFile
from ..model import Record, Report
from ..options import ConvertOptions, name_fields
from ..outputs.smf import KAR_INFORMATION
from ..stages.convert import SOURCE_LABEL, song_title
from ..stages.normalize import normalize_payload
from . import naming
from .json_input import blank_lines_error, read_json, read_member_records
from .render import render_record
from .runner import INPUT_CLEAR_SUFFIX, Destination, Pending, Rendered, raising, run_in_processes

if TYPE_CHECKING:
    from ..io.archive import Archive  # imported where a .zip is read

# Every .mid midiexport writes opens its first track with this text at tick 0 (outputs.smf writes
# a song's texts as "@I" + text, the first being its source); Suno's exports carry no text events.
WRITTEN_MARK = KAR_INFORMATION + SOURCE_LABEL
# Bytes read to find the mark: midiexport's leading events (header, track name, meter, tempo, key,
# "@T" title, the mark's text; each text at most 255 bytes) take under 900 bytes.
MARK_HEAD_BYTES = 4096


LEFT_OUT_HINT = "name one to convert it again"
SIDE_FILE = "report or generate state file"  # what ``written_side_file`` recognises, as counted
SIDE_HINT = "name one to read it as given"  # a report or state named alone is read (and fails as no record)
# ``own_outputs``: one file, several; true whether that input writes its files again or keeps them (they exist)
OWN_OUTPUT_HINTS = ("this run writes it again or keeps it; name it alone to convert it",
                    "this run writes them again or keeps them; name one alone to convert it")  # fmt: skip
REPEATED = "given again (the same file named twice, or named and in a folder searched) read once"
RERUN_OVERWRITING = Phrase("run again allowing overwriting")  # after mending a stem whose song was written without it
# The ``source:`` text of a song of .mid stems (``midifile.merge_stems``) or of a .zip member ("z.zip: a.json"):
# what follows the first file's name.
_SOURCE_TAIL = r"(?: and \d+ more stems?|: .*)$"  # compiled on first use (a .mid among several inputs)


class BatchInputs(NamedTuple):
    """A batch's inputs, the files left out of it, and why it cannot start.

    ``left_out``: the .mid files midiexport wrote that folder searches left out; ``side_files``:
    the reports and generate states they left out (``written_side_file``); ``own_outputs``: the
    .mid files named that another input of the run wrote (``own_outputs``); ``repeated``: the
    inputs given again (the same file named twice, or named and found by a folder search),
    read once. ``refusal``: the input that ends the batch before it starts, or None.
    """

    sources: list[InputFile]
    left_out: int
    refusal: InputError | None = None
    side_files: int = 0
    own_outputs: int = 0
    repeated: int = 0

    def left_out_lines(self) -> list[str]:
        """Return the lines that say which inputs were left out, and why: none when none were."""
        lines = []
        counts = [f"{self.left_out} .mid {plural(self.left_out, 'file')}"] if self.left_out else []
        if self.side_files:
            counts.append(f"{self.side_files} {plural(self.side_files, SIDE_FILE)}")
        if counts:
            hint = _left_out_hint(self.side_files)
            lines.append(f"{' and '.join(counts)} midiexport wrote left out of the folder search ({hint})")
        if self.own_outputs:
            files_ = f"{self.own_outputs} .mid {plural(self.own_outputs, 'file')}"
            hint = OWN_OUTPUT_HINTS[self.own_outputs > 1]
            lines.append(f"{files_} midiexport wrote from another input of this run left out ({hint})")
        if self.repeated:
            given = f"{self.repeated} {plural(self.repeated, 'input')}"
            lines.append(f"{given} {REPEATED}")
        return lines

    @property
    def written_left_out(self) -> int:
        """The .mid files midiexport wrote that the batch left out: by folder searches, and named (``--report``)."""
        return self.left_out + self.own_outputs


def _left_out_hint(side_files: int) -> str:
    """The hint for files a folder search left out: a side file named alone is read as given."""
    return SIDE_HINT if side_files else LEFT_OUT_HINT


def find_batch_inputs(
    paths: Sequence[str], *, destination: Destination | None = None, split: bool = False
) -> BatchInputs:
    """Find a batch's inputs as ``files.find_inputs`` does, less the files midiexport wrote (in folders, or
    named and written by another input of the run) and the inputs reached again.

    The rule for folders: a .mid found by a folder search is an output of an earlier run, not
    an input, when its first track opens with ``WRITTEN_MARK`` (``written_source``). So a
    re-run over a folder converts nothing new: the files the last run wrote are not read
    again, and a JSON's own file is not taken for an input that its song must keep off. A
    .mid named on its own is read (to clean an output again on purpose), unless another
    input of the run wrote it (``own_outputs``: a shell's ``*.mid`` run again), and so is
    every .mid member of a .zip. So are the reports and generate states midiexport wrote
    (``written_side_file``): left out of folder searches, read when named alone.
    A file reached by two of the paths given (the same file named twice, or named and found
    by a folder search: ``_same_input_key``) is read once, where it is first reached, and
    counted in ``repeated`` when it is an input (a file left out is left out once, counted once: a
    named .mid reached again and then left out as ``own_outputs`` is counted there alone).
    ``destination`` tells where the results go (``own_outputs``); None: beside each input;
    ``split``: the run writes a file per instrument (``own_outputs``).

    The first path that is no input (it does not exist, a folder with no inputs, or with
    only files midiexport wrote) is returned as the result's ``refusal`` (the InputError
    ``find_inputs`` raises, or one of its own), with the sources found before it and every
    file left out so far, that one's included: a command that cannot start can still report
    what its search found (``--report``: nothing converted, N left out).
    """
    sources: list[InputFile] = []
    seen: dict[str, str | None] = {}  # each file reached (``_same_input_key``) -> its input's path, None if left out
    again: list[str] = []  # the input paths reached again, once per time
    left_out = side_files = 0
    for raw in paths:
        try:
            found = files.find_inputs([raw])
        except InputError as exc:
            return BatchInputs(sources, left_out, exc, side_files, repeated=_repeated(again))
        keys = [_same_input_key(source, several=len(paths) > 1) for source in found]
        reached = [seen[key] for key in keys if key in seen]  # reached before: read (or left out) there
        fresh = [source for source, key in zip(found, keys) if key not in seen]
        side = {source.path for source in fresh if source.from_folder and written_side_file(source)}
        kept = [source for source in fresh if source.path not in side
                and not (source.from_folder and written_source(source) is not None)]  # fmt: skip
        mid = len(fresh) - len(kept) - len(side)
        left_out, side_files = left_out + mid, side_files + len(side)
        again += [path for path in reached if path is not None]
        inputs = {source.path for source in kept}
        seen.update((key, source.path if source.path in inputs else None)
                    for source, key in zip(found, keys) if key not in seen)  # fmt: skip
        if not kept and not reached:  # a path reaching only files met before (left out there or not) is no refusal
            kinds = " and ".join([".mid files"] * bool(mid) + [f"{SIDE_FILE}s"] * bool(side))
            message = f"{raw}: only {kinds} midiexport wrote in this folder ({len(found)}), which a folder search "
            hint = _left_out_hint(len(side))  # this folder's files
            refusal = InputError(f"{message}leaves out; {hint}", input=raw, hint=hint)
            return BatchInputs(sources, left_out, refusal, side_files, repeated=_repeated(again))
        sources += kept
    own = own_outputs(sources, destination or Destination(), split=split)
    kept_sources = [source for source in sources if source.path not in own]
    repeated = _repeated(again, left_out=own)  # a file left out is counted once, as left out
    return BatchInputs(kept_sources, left_out, side_files=side_files, own_outputs=len(own), repeated=repeated)


def _repeated(again: Sequence[str], *, left_out: Collection[str] = ()) -> int:
    """Count the inputs reached again (``again``: their paths, once per time), less those then ``left_out``."""
    return sum(path not in left_out for path in again)


def _same_input_key(source: InputFile, *, several: bool) -> str:
    """Return what tells an input from the others: the file it is ("-" for standard input).

    With several paths given, the file's device and inode (``os.path.samefile``'s test: one
    stat, where resolving a path stats each of its folders): the same file whatever path,
    link or ``..`` reaches it; a file named has it from the search's own stat (``file_id``),
    a file found in a folder is stat'ed here. With one path given, its own path: a folder
    search finds each path once, and a link found in it is read as the file it is named as.
    """
    if not several or source.path == files.STDIN:
        return source.path
    if source.file_id is not None:
        return source.file_id
    try:
        info = os.stat(source.path)
    except OSError:  # gone since the search: reading it will say so
        return os.path.abspath(source.path)
    return files.file_id(info)


def own_outputs(sources: Sequence[InputFile], destination: Destination, *, split: bool = False) -> set[str]:
    """Return the paths of the .mid files named in ``sources`` that another of ``sources`` wrote: this run writes them.

    A named .mid that carries ``WRITTEN_MARK`` (``written_source``) is another input's output
    when it lies where that input's results go (``destination``) and either its mark names
    that input (``source: <file name>``: a .mid, stems, a .zip, a JSON record without ids)
    or its name is that JSON input's, alone or followed by what this run adds to it by default
    (``_added_by_default``: ``saved.mid``, ``saved-12.mid``, ``task-Drums.mid`` with ``split``;
    a user's ``song-live.mid`` beside ``song.json`` is no output of it). So
    ``convert *.mid`` run again in a Suno download folder does not take the song's file,
    written by the first run, for an input: the stems' song is then kept as on any re-run
    (replaced with ``overwrite``). A lone input, or a .mid that no other
    input wrote, is read as given. The inputs left out are not themselves looked for as
    writers, so two files can never leave each other out.
    """
    named = [source for source in sources if files.is_midi(source) and not source.from_folder]
    if len(sources) < 2 or not named:
        return set()
    by_name: dict[tuple[str, str], InputFile] = {}  # (results' folder, file name) -> input
    json_stems: dict[tuple[str, str], InputFile] = {}  # (results' folder, default stem) -> JSON input
    real: dict[Path, str] = {}  # each results folder resolved once, not once per input
    for source in sources:
        given = destination.folder(source)  # None for one named file or standard input
        if given is not None:
            if given not in real:
                real[given] = os.path.realpath(given)
            folder = real[given]
            by_name.setdefault((folder, PurePath(source.name).name), source)
            if not (files.is_midi(source) or files.is_archive(source) or source.path == files.STDIN):
                json_stems.setdefault((folder, _default_stem(source.name, "")), source)
    folders = {folder for folder, _ in by_name}
    own: set[str] = set()
    for source in named:
        folder, stem = os.path.dirname(os.path.realpath(source.path)), PurePath(source.path).stem
        text = written_source(source) if folder in folders else None  # read only where results go
        if text is None:
            continue
        writers = [by_name.get((folder, name)) for name in dict.fromkeys((text, re.sub(_SOURCE_TAIL, "", text)))]
        # a JSON's own name, or it and what its records add: "saved-12", "task-Drums" (--split), "task-2"
        parts = stem.split("-")
        writers += [json_stems.get((folder, "-".join(parts[:end]))) for end in range(len(parts), 0, -1)
                    if _added_by_default(parts[end:], split=split)]  # fmt: skip
        if any(writer is not None and writer is not source and writer.path not in own for writer in writers):
            own.add(source.path)
    return own


def _added_by_default(parts: Sequence[str], *, split: bool) -> bool:
    """Whether a run's default names add ``parts`` (cut at dashes) to a JSON input's stem: whether it writes that name.

    A record's numbers in its input ("saved-12", "saved-3-2": ``naming.record_number``), a
    name taken before in the run ("task-2": ``files.NamePlanner``), the mark of a name that
    is an input's path ("task-midiexport": ``runner.INPUT_CLEAR_SUFFIX``); with ``split``
    any words too (the instruments' names, "task-Drums", known only once the record is read).
    """
    return split or all((part.isascii() and part.isdigit()) or f"-{part}" == INPUT_CLEAR_SUFFIX for part in parts)


def written_side_file(source: InputFile) -> bool:
    """True for a JSON file midiexport wrote beside its .mid files: a ``--report`` or generate's state.

    Read by its first ``WRITTEN_JSON_HEAD_BYTES``: a report opens with its keys "command" and
    "version" (``report.opens_a_report``), a state file is named ``<task>.generate.json`` and
    opens with its keys "version" and "music_task" (``generate.opens_a_state``). Neither is
    a song record; read again, each would fail as one. A file that cannot be read is none:
    read as an input, it fails as one.
    """
    if files.is_midi(source) or files.is_archive(source):
        return False
    try:
        head = files.read_head(source, WRITTEN_JSON_HEAD_BYTES)
    except InputError:
        return False
    from .report import opens_a_report  # light: no start-up cost for a JSON named alone

    if opens_a_report(head):
        return True
    if not source.name.endswith(GENERATE_STATE_SUFFIX):
        return False
    from .generate import opens_a_state  # imports the HTTP client: only for a file of its name

    return opens_a_state(head)


def written_source(source: InputFile) -> str | None:
    """Return what the ``source:`` text of a .mid midiexport wrote names ("a.json", "task 1a2b"); None for any other.

    Reads its first ``MARK_HEAD_BYTES`` only: None for a file that is no .mid, cannot be read,
    or is damaged before ``WRITTEN_MARK`` or lacks it (read as an input, it fails as one).
    """
    if not files.is_midi(source):  # a folder search's file: never standard input
        return None
    from ..stages.midifile import leading_texts  # .mid input only: JSON start-up stays lean

    try:
        head = files.read_head(source, MARK_HEAD_BYTES)
    except InputError:
        return None
    marks = (text for text in leading_texts(head) if text.startswith(WRITTEN_MARK))
    return next((text.removeprefix(WRITTEN_MARK).strip() for text in marks), None)


class Unit(NamedTuple):
    """One piece of work: a whole input, or one line of a JSON Lines input (with its bytes)."""

    source: InputFile
    line: int | None = None
    raw: bytes | None = None
    stems: tuple[InputFile, ...] = ()  # .mid files of one song, read together (source is the first)
    error: InputError | None = None  # the input could not be read: the unit reports it


class Planned(NamedTuple):
    """A unit with the output paths known before reading it (None: only its content tells)."""

    unit: Unit
    stem: str | None
    paths: tuple[Path, ...] | None
    finished: bool  # every planned file exists: skip the unit


def kept_other(path: str, place: str) -> str | None:
    """Return the line saying that ``path``, a song's file kept as it was, was made from other stems; else None.

    A song of .mid stems is written under its title, so a file made earlier from some of
    its stems (two of three, downloaded before the third) is kept on a plain re-run, the
    new stem missing from it. Its mark's ``source:`` text (``written_source``) names what it
    was made from, as this song's place does ("Song (Bass).mid and 2 more stems"): when
    they differ, the line says so and how to replace it. The same first stem and number
    of stems read alike: stems swapped one for another are not told.
    """
    made_from = written_source(InputFile(path, path, False))
    now = PurePath(place).name
    if made_from is None or made_from == now:
        return None
    hint = say("to write it from these, ", RERUN_OVERWRITING)
    return say(f"{path} exists, made from {made_from}, not from {now}; kept (", hint, ")")


def _unit_name(unit: Unit) -> str:
    return unit.source.name if unit.line is None else f"{unit.source.name}: line {unit.line}"


def run_batch(
    inputs: Sequence[InputFile],
    options: ConvertOptions,
    destination: Destination,
    *,
    jobs: int = 1,
) -> Iterator[Pending]:
    """Convert every record of ``inputs``; return one Pending per unit, in input order.

    Call each Pending's ``result()`` before asking for the next: the workers stop when
    the iteration ends.
    With ``jobs`` > 1 and more than one unit, units run in up to that many processes,
    never more than there are units; a single unit always runs here, so one record is
    never slowed down by a pool.
    A unit whose outputs all exist is skipped before it is read (see ``plan_unit``).
    No result is written over an input (``Destination.protect``): one that would be gets
    ``-midiexport``.
    Raises OutputError, before any work, when ``destination`` names one file that is an
    input, or names one file and there are several units (inputs, JSON Lines lines, songs
    of .mid stems): the lines read to find out are the ones then converted, so an input
    is read once. A lone unit bound for one named file (a JSON array, a .zip, stems whose
    tempo maps differ) is read and rendered first, and refused the same way, before any
    write, when it would write several files (``_read_first``).
    """
    destination.protect(source.path for source in inputs)
    problem = destination.input_problem() or destination.stdin_problem(source.path for source in inputs)
    if problem is not None:
        raise OutputError(problem)
    stream = (plan_unit(unit, options, destination) for unit in batch_units(inputs, options.max_input_mb))
    first = list(itertools.islice(stream, max(2, jobs)))  # read ahead to count the units and the workers
    problem = destination.too_many(len(first))
    if problem is not None:
        raise OutputError(problem)
    if len(first) == 1 and destination.single and not first[0].finished:
        return iter([_read_first(first[0], options, destination)])
    return _run_planned(first, stream, options, destination, jobs=jobs)


def _read_first(job: Planned, options: ConvertOptions, destination: Destination) -> Pending:
    """Read and render a lone unit bound for one named file, before anything is written.

    Its files are known only once it is read (a JSON array, a .zip, a line holding an
    array; --split): more than one to write is the usage error of several units, raised
    here as OutputError before any file is written, by the unit's own check
    (``Pending.refusal``), in the words of ``Destination.too_many``. A unit that cannot
    be read is the unit's error, as always. A lone unit runs in this process anyway, so
    reading it first costs nothing.
    """
    pending = _pending(job, partial(render_unit, job.unit, options=options), destination)
    try:
        problem = pending.refusal()  # its results are kept for its result()
    except InputError as exc:
        return _pending(job, raising(exc), destination)
    if problem is not None:
        raise OutputError(problem)
    return pending


def _run_planned(
    first: list[Planned], stream: Iterator[Planned], options: ConvertOptions, destination: Destination, *, jobs: int
) -> Iterator[Pending]:
    planned = itertools.chain(first, stream)
    if jobs <= 1 or len(first) < 2:
        for job in planned:
            yield _pending(job, partial(render_unit, job.unit, options=options), destination)
        return
    work = partial(_render_planned, options=options)
    for job, get in run_in_processes(planned, work, workers=min(jobs, len(first)), skip=lambda job: job.finished):
        yield _pending(job, get, destination)


def plan_unit(unit: Unit, options: ConvertOptions, destination: Destination) -> Planned:
    """Name a unit's output before reading it, when its name alone tells.

    A .json input is planned as holding one record: ``<stem>.mid``. A JSON Lines line
    as ``<stem>-<line>.mid``. Not planned: standard input (named by the song's title),
    ``--split`` (named by the instruments inside), .mid and .zip inputs (named by the
    song's title, from the stems read together). A file that holds several records
    (a JSON array) is named by them, so it is read; its records whose .mid exist are
    then kept as they are. Planned paths are claimed in input order.
    With a name template, only a JSON input whose template's fields are ``stem`` and
    ``record`` is planned (``naming.place_name``), and a whole .json only when the template
    uses ``record``: without it the records of a file of several are named alike
    ("{stem}": saved, saved-2, ...), so the first one's name would stand for them all and a
    re-run would skip the file with records not yet written (a line that failed, mended).
    Not planned either: a unit holding its error (a JSON Lines file that cannot be read, or
    is blank), which writes no file, so it is never skipped and claims no name.
    """
    stem = None
    by_title = files.is_midi(unit.source) or files.is_archive(unit.source)
    shared = unit.line is None and options.name is not None and "record" not in name_fields(options.name)
    if unit.source.path != files.STDIN and not by_title and not shared and unit.error is None:
        number = "" if unit.line is None else str(unit.line)
        stem = _place_stem(unit.source.name, number, options, template_stem=_file_stem(unit.source))
    paths = destination.plan(unit.source, stem) if stem is not None else None
    return Planned(unit, stem, paths, destination.finished(paths))


def _pending(job: Planned, get: Callable[[], list[Rendered]], destination: Destination) -> Pending:
    name = _unit_name(job.unit)
    inputs = tuple(stem.path for stem in job.unit.stems) or (job.unit.source.path,)  # what the progress bar counts
    partial = job.unit.line is not None
    size = len(job.unit.raw) if partial and job.unit.raw is not None else 0  # a line's bytes, its newline included
    if job.finished and job.paths:
        return Pending.skip(name, job.paths, destination, inputs=inputs, partial=partial, size=size)
    other = kept_other if job.unit.stems or files.is_archive(job.unit.source) else None  # songs of .mid stems
    return Pending(name, get, destination, job.unit.source, planned=job.paths, stem=job.stem, inputs=inputs,
                   partial=partial, other=other, size=size)  # fmt: skip


def _render_planned(job: Planned, *, options: ConvertOptions) -> list[Rendered]:
    return render_unit(job.unit, options=options)


def batch_units(inputs: Sequence[InputFile], max_mb: float) -> Iterator[Unit]:
    """Yield the units of every input; an input that cannot be read becomes a unit holding its error.

    A unit is one record (a JSON file, a line of a .jsonl, stdin) or one song's .mid stems,
    read lazily as the batch reaches it; ``render_unit`` turns each into files.
    """
    stems = stem_groups(inputs)
    for source in inputs:
        try:
            if files.is_midi(source):
                if source.path in stems:  # the first stem of its song; the others come with it
                    yield Unit(source, stems=stems[source.path])
            elif source.lines:
                yield from _line_units(source, max_mb)
            elif source.path == files.STDIN:
                yield Unit(source, None, files.read_bytes(source, max_mb=max_mb))
            else:
                yield Unit(source)
        except InputError as exc:
            yield Unit(source, error=exc)


def _line_units(source: InputFile, max_mb: float) -> Iterator[Unit]:
    """Yield a unit per JSON Lines line that holds text; none: one unit holding ``blank_lines_error``.

    A blank .jsonl converts nothing, which is never a success: it fails, as an empty .json does.
    Raises InputError when the file cannot be read (``files.read_lines``).
    """
    blank = True
    for number, raw in files.read_lines(source, max_mb=max_mb):
        if raw.strip():
            blank = False
            yield Unit(source, number, raw)
    if blank:
        yield Unit(source, error=blank_lines_error(source.name))


def render_unit(unit: Unit, *, options: ConvertOptions) -> list[Rendered]:
    """Read, normalize, convert and encode one unit (runs in a worker process).

    Raises InputError when the unit as a whole cannot be read.
    """
    if unit.error is not None:
        raise unit.error
    if unit.stems or files.is_archive(unit.source):
        return render_stems(unit, options=options)
    raw = unit.raw if unit.raw is not None else files.read_bytes(unit.source, max_mb=options.max_input_mb)
    if raw.startswith(b"MThd"):  # a .mid on standard input
        return render_stems(unit, options=options, raw=raw)
    if unit.line is not None:  # one line of a JSON Lines input
        records: list[Record | InputError] = list(normalize_payload(raw, source=unit.source.name, line=unit.line))
        by_line = True
    else:
        records, by_line = read_json(raw, source=unit.source.name, lines=False)
    many = len(records) > 1 or by_line
    file_name = "" if unit.source.path == files.STDIN else unit.source.name  # standard input: the content names it
    base = _file_stem(unit.source)
    rendered = []
    for item in records:
        if isinstance(item, InputError):  # a line that cannot be read claims its name, as a plain .jsonl's does
            stem = _failed_line_stem(item, file_name, options, template_stem=base)
            rendered.append(Rendered(item.input or unit.source.name, stem, error=item))
            continue
        stem = record_stem(unit.source, item, many=many)
        values = None
        if options.name is not None:
            number = naming.record_number(item, many=many)
            stem, values = naming.name_record(options.name, item, fallback=stem, stem=base, number=number)
        rendered.append(render_record(item, options, stem=stem, values=values))
    return rendered


def _file_stem(source: InputFile) -> str:
    """Return a JSON input's ``{stem}``: its file name without suffix; "stdin" for standard input."""
    return "stdin" if source.path == files.STDIN else PurePath(source.name).stem


def record_stem(source: InputFile, record: Record, *, many: bool) -> str:
    """Return the default base file name for a record's .mid, without suffix.

    From a file: the file's stem, plus the record's numbers when the file holds
    several ("songs-12" for line 12). From stdin: the title or task id.
    """
    if source.path == files.STDIN:
        return files.safe_name(song_title(record), fallback="stdin")
    return _default_stem(source.name, naming.record_number(record, many=many))


def _default_stem(file_name: str, number: str) -> str:
    """Return the default name of a record by its place: ``file_name``'s stem numbered by ``number``, made safe."""
    return files.safe_name(naming.numbered_stem(file_name, number))


# MIDI input (issue 14): Suno's web export gives one .mid per stem, "Song Title (Stem).mid".
# Stems of one song in one folder (or .zip) are read together and become one file.


def stem_groups(inputs: Sequence[InputFile]) -> dict[str, tuple[InputFile, ...]]:
    """Group .mid inputs by folder and song title (from the file name); key: the first one's path."""
    groups: dict[tuple[str, str], list[InputFile]] = {}
    for source in inputs:
        if files.is_midi(source):
            from ..stages.midifile import stem_title  # .mid input only: JSON start-up stays lean

            path = PurePath(source.path)
            split = stem_title(path.stem)
            key = (str(path.parent), split[0].casefold()) if split else (source.path, "")
            groups.setdefault(key, []).append(source)
    return {members[0].path: tuple(members) for members in groups.values()}


def render_stems(unit: Unit, *, options: ConvertOptions, raw: bytes | None = None) -> list[Rendered]:
    """Read the .mid stems (or .zip members) of a unit, join each song's stems, render each song.

    A JSON member is read as the same file given alone (``json_input.read_json``: JSON
    Lines by its name or its lines). A stem, member or member's line that cannot be read
    (one past ``options.max_input_mb`` included) becomes its own failed Rendered; the others
    go on. A member's line that fails is in its place among the songs and claims the name
    it would have had (``_failed_line_stem``); the other failures come first. Its line says
    that its song was written without it only when that song was (``_joined_song``).
    Raises InputError when a .zip as a whole cannot be read (see ``io.archive``), or
    yields no record and no failure (``Archive.settle``, which also says its files not read).
    """
    from ..stages.midifile import group_stems, join_stems, read_midi

    records: list[Record] = []
    lines: list[tuple[int, Rendered, str]] = []  # JSON lines that failed: in their place, before records[index]
    archive = None
    if raw is None and files.is_archive(unit.source):
        from ..io.archive import read_archive  # .zip input only: JSON start-up stays lean

        archive = read_archive(unit.source, max_mb=options.max_input_mb)
    named, failed = _read_files(unit, options, raw=raw, archive=archive)  # failed: each with its file's own name
    json_names: dict[int, tuple[str, str]] = {}  # a JSON record's index in records -> its default name, its {record}
    lone = _lone_stems(unit, archive) if not options.split else set()
    for name, data, member_name in named:
        try:  # a member read as the same file given alone (json_input); a .mid stem, a .mid on stdin: MIDI
            json = read_member_records(data, name, member_name) if member_name is not None else None
            if json is None:
                if (member_name or name) in lone:  # its song's only stem: named as the stem it is
                    json_names[len(records)] = (PurePath(member_name or name).stem, "")
                records.append(read_midi(data, source=name, file_name=member_name))
                continue
            for item in json.items:
                if isinstance(item, InputError):  # a bad line fails alone and claims its name, as in a plain .jsonl
                    claim = _failed_line_stem(item, member_name or name, options,
                                              template_stem=_template_stem(unit.source))  # fmt: skip
                    failure = Rendered(_line_place(item, name), claim, error=item)
                    lines.append((len(records), failure, member_name or name))
                    continue
                number = naming.record_number(item, many=json.by_line or len(json.items) > 1)
                json_names[len(records)] = (naming.member_stem(item, member_name or name, number=number), number)
                records.append(item)
        except InputError as exc:
            failed.append((Rendered(exc.input or name, "", error=exc), member_name or name))
    groups = group_stems(records)  # a JSON record is a song of its own: its index finds its names
    songs = [join_stems([records[i] for i in group]) for group in groups]
    rendered = [_render_song(unit, song, options, names=json_names.get(group[0]) if len(group) == 1 else None)
                for group, song in zip(groups, songs)]  # fmt: skip
    results = _in_order(groups, songs, rendered, failed=failed, lines=lines)
    return results if archive is None else archive.settle(unit.source.name, results, _say_not_read)


def _lone_stems(unit: Unit, archive: Archive | None) -> set[str]:
    """Return the .mid files of a unit that are their song's only stem in the run: each is named as its file.

    ``Song (Bass).mid`` converted alone is written as ``Song (Bass)`` (with ``-midiexport``
    beside its input, never over it), not as the song ``Song``: that name is for the
    song the stems make together, so converting the stems one at a time never leaves
    the second one kept as "exists" under the first one's file. Counted over the files
    given (loose stems of one folder, or a .zip's .mid members), read or not: a stem
    that fails to read does not make its partner lone. Names are the unit's files'
    (``InputFile.name``; a member's own name in a .zip).
    """
    from collections import Counter

    from ..stages.midifile import stem_title

    given = [member.name for member in archive.members] if archive is not None else [s.name for s in unit.stems]
    titles = {name: stem_title(PurePath(name).stem) for name in given if files.names_midi(name)}
    count = Counter(split[0].casefold() for split in titles.values() if split)
    return {name for name, split in titles.items() if split and count[split[0].casefold()] == 1}


def _read_files(
    unit: Unit, options: ConvertOptions, *, raw: bytes | None, archive: Archive | None
) -> tuple[list[tuple[str, bytes, str | None]], list[tuple[Rendered, str]]]:
    """Return the bytes of a unit's files to read, and the files that cannot be read, in order.

    Each file read is (name, bytes, .zip member's name or None); each that cannot be read,
    its failed Rendered with its file's own name (which tells its song). ``raw``: a .mid
    read from standard input; else the .zip's members, else the .mid stems, each within
    ``options.max_input_mb``.
    """
    named: list[tuple[str, bytes, str | None]] = []
    failed: list[tuple[Rendered, str]] = []
    if raw is not None:
        return [(unit.source.name, raw, None)], failed
    if archive is not None:
        from ..io.archive import member_place

        for member in archive.members:
            name = member_place(unit.source.name, member.name)
            if member.error is not None:
                failed.append((Rendered(member.error.input or name, "", error=member.error), member.name))
            else:
                named.append((name, member.data, member.name))
        return named, failed
    for stem in unit.stems:  # each stem within --max-input-mb, like a JSON input
        try:
            named.append((stem.name, files.read_bytes(stem, max_mb=options.max_input_mb), None))
        except InputError as exc:
            failed.append((Rendered(exc.input or stem.name, "", error=exc), stem.name))
    return named, failed


def _in_order(
    groups: list[list[int]],
    songs: list[Record],
    rendered: list[Rendered],
    *,
    failed: list[tuple[Rendered, str]],
    lines: list[tuple[int, Rendered, str]],
) -> list[Rendered]:
    """Return a unit's results in the order their names are claimed: the failed files, then the songs.

    ``groups`` are the songs' records by index (``group_stems``); ``failed`` the files that
    failed, each with its file's name; ``lines`` the JSON lines that failed, each before the
    record of its index, so its name is claimed in input order. A failure whose song was
    written says so (``_written_without``).
    """
    written = {song.title for song, result in zip(songs, rendered) if result.error is None and song.title}

    def said(result: Rendered, file_name: str) -> Rendered:
        return _written_without(result) if _joined_song(file_name) in written else result

    in_place = sorted([(group[0], 1, result) for group, result in zip(groups, rendered)]
                      + [(index, 0, said(result, file_name)) for index, result, file_name in lines],
                      key=lambda placed: placed[:2])  # fmt: skip
    return [said(result, file_name) for result, file_name in failed] + [result for _, _, result in in_place]


def _say_not_read(first: Rendered, line: str) -> Rendered:
    """Put the line naming a .zip's files not read among a result's warnings (a failure's too)."""
    report = first.report or Report()
    return first._replace(report=dataclasses.replace(report, warnings=(line, *report.warnings)))


def _failed_line_stem(
    error: InputError,
    file_name: str,
    options: ConvertOptions,
    *,
    template_stem: str,
) -> str:
    """Return the name a JSON line that cannot be read would have had, or "" when its content would tell.

    A line is named by its place (``_place_stem``: "saved-3" for line 3 of ``file_name``,
    as ``record_stem`` and ``naming.member_stem`` name a line of one record), or by a
    template of ``stem`` and ``record`` only; so its name is claimed, and the lines after
    it are named as if it had been read (``Destination.reserve``).
    """
    if error.line is None:
        return ""
    return _place_stem(file_name, str(error.line), options, template_stem=template_stem) or ""


def _place_stem(
    file_name: str,
    number: str,
    options: ConvertOptions,
    *,
    template_stem: str,
) -> str | None:
    """Return a record's name from its place: ``file_name`` and ``number`` (line or position; "" for none), or None.

    The default is the numbered file stem made safe (``files.safe_name``); a template of
    ``stem`` and ``record`` only replaces it (``naming.place_name``). None with --split
    (names from the instruments), for a template of the record's own fields, and without
    a file name (standard input): the content names it.
    """
    if options.split or not file_name:
        return None
    return naming.place_name(options.name, _default_stem(file_name, number), stem=template_stem, record=number)


def _line_place(error: InputError, name: str) -> str:
    """Return where a line of a JSON Lines member failed ("songs.zip: a.jsonl: line 2"), as a plain line is named."""
    return f"{name}: line {error.line}" if error.line is not None else error.input or name


def _joined_song(file_name: str) -> str | None:
    """Return the title of the song a stem file would have joined (``Title (Stem)``); None when it is its own.

    The title ``merge_stems`` joins stems by, as ``midifile.midi_title`` reads it from
    the file name. The tempo map, its other key, cannot be read from a stem that
    failed: a song of that title written with another map also counts.
    """
    from ..stages.midifile import stem_title

    split = stem_title(PurePath(file_name).stem)
    return split[0] if split else None


def _written_without(failed: Rendered) -> Rendered:
    """A stem that failed while its song converted: its song's file exists, so a plain re-run would keep it.

    Said before the song is written, so in words true either way: the file is written
    without the stem, or, when it existed (a re-run without --overwrite), kept as it was.
    """
    hint = say("mend it and ", RERUN_OVERWRITING)
    note = say("its song's file is written without it, or kept as it was if it existed; ", hint)
    assert failed.error is not None  # a failed stem
    error = InputError(say(failed.error.message, "; ", note), input=failed.place, hint=hint)
    error.__cause__ = failed.error  # the stem's own error, for a caller that looks
    return failed._replace(error=error)


def _render_song(unit: Unit, song: Record, options: ConvertOptions, *, names: tuple[str, str] | None) -> Rendered:
    """Render a song of .mid stems or .zip members, named by its title or by ``options.name``.

    ``names``: a JSON record's default name and ``{record}`` field (``naming.member_stem``);
    None for a .mid song (its title, no number). A templated name that is an input's own
    path gets ``-midiexport`` when written (``runner.Destination.protect``), as default names do.
    """
    default, number = names or (song_title(song), "")
    stem = files.safe_name(default)
    if options.name is None:
        return render_record(song, options, stem=stem)
    named, values = naming.name_record(options.name, song, fallback=stem, stem=_template_stem(unit.source),
                                       number=number)  # fmt: skip
    return render_record(song, options, stem=named, values=values)


def _template_stem(source: InputFile) -> str:
    """Return the ``{stem}`` of a .zip (its name) or of .mid stems (``Title`` of ``Title (Stem).mid``)."""
    from ..stages.midifile import stem_title

    stem = _file_stem(source)
    split = None if files.is_archive(source) else stem_title(stem)
    return split[0] if split else stem
