"""Shared options of the commands: parameter types, the output and conversion options.

Only click and the package's foundation are imported here, so ``midiexport --help``
loads neither numpy nor httpx; what a check needs is imported inside it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from ..defaults import (
    ARCHIVE_TOTAL_FACTOR,
    AUTO_PPQ,
    CLEAN_MERGE_GAP_MS,
    CLEAN_MIN_NOTE_MS,
    DEFAULT_BPM,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_INPUT_MB,
    DEFAULT_PPQ,
    MAX_BPM,
    MAX_CONCURRENCY,
    MAX_PPQ,
    MIN_BPM,
    MIN_INPUT_MB,
    MIN_PPQ,
)
from ..options import CLEAN_PRESETS, GRID_CHOICES, KEY_MODES, MAX_CLEAN_MS, MAX_SHIFT_MS, check_shift_names

if TYPE_CHECKING:
    from ..jobs.runner import Destination

CLEAN_FLAG_PRESET = "light"  # what a bare --clean means (``ConversionCommand``)


class Bpm(click.ParamType):  # type: ignore[type-arg]  # generic only in recent click
    """A tempo in BPM (MIN_BPM-MAX_BPM) or the word "auto"."""

    name = "BPM|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | str:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)
        if not MIN_BPM <= number <= MAX_BPM:
            self.fail(f"{number} is not in the range {MIN_BPM:g}<=x<={MAX_BPM:g}", param, ctx)
        return number


class Seconds(click.ParamType):  # type: ignore[type-arg]  # generic only in recent click
    """A finite number (of seconds, or ``unit``), at least ``min_s``: nan, inf and smaller values are refused."""

    def __init__(self, min_s: float, *, unit: str = "seconds") -> None:
        self.min_s, self.unit = min_s, unit
        self.name = unit.upper()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of {self.unit}", param, ctx)
        if not math.isfinite(number) or number < self.min_s:
            self.fail(f"{value!r} is not a finite number of {self.unit} of at least {self.min_s:g}", param, ctx)
        return number


def _bad_parameter(exc: ValueError, tail: str = "") -> click.BadParameter:
    """Return the usage error of an option the library refused: its message in the command line's words."""
    from .report import cli_message

    return click.BadParameter(cli_message(exc) + tail)


def _grid(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from ..stages.timing import grid_ticks  # numpy: only when a grid is given

        try:
            grid_ticks(value, DEFAULT_PPQ)
        except ValueError as exc:
            raise _bad_parameter(exc) from None
    return value


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so temporary files are removed."""


def _program_pairs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Check the ``--program`` values, each resolved once (``gm.resolve_overrides``); return them stripped.

    Refused, the first fault in the order given is said: a value that is not NAME=PROGRAM,
    an unknown program (naming the list of names), then one instrument given two programs.
    """
    from ..gm import resolve_overrides

    given = [value.rpartition("=")[::2] for value in values]  # NAME and PROGRAM as typed: a clash quotes them
    refused: ValueError | None = None  # resolve_overrides' error, when every value is NAME=PROGRAM
    if all(name.strip() and program.strip() for name, program in given):
        try:
            resolve_overrides(given)
        except ValueError as exc:
            refused = exc
        else:
            return tuple((name.strip(), program.strip()) for name, program in given)
    raise _first_program_fault(values, refused)


def _first_program_fault(values: Sequence[str], refused: ValueError | None) -> click.BadParameter:
    """Return the error of the first ``--program`` value that is no NAME=PROGRAM or names no program.

    None such: the values were refused together (``refused``: one instrument, two programs).
    """
    from ..gm import resolve_override

    for value in values:
        name, sep, program = value.rpartition("=")
        if not sep or not name.strip() or not program.strip():
            return click.BadParameter(f"{value!r} is not NAME=PROGRAM (e.g. Bass=33 or 'Piano=Electric Piano 1')")
        try:
            resolve_override(program.strip())
        except ValueError as exc:
            return _bad_parameter(exc, "; 'midiexport programs' lists the names")
    assert refused is not None  # asked only when a value is no NAME=PROGRAM or resolve_overrides refused them
    return _bad_parameter(refused)


def _name_template(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from ..options import name_fields

    if value is not None:
        try:
            name_fields(value)
        except ValueError as exc:
            raise _bad_parameter(exc) from None
    return value


max_input_option = click.option(  # convert, fetch and generate (in output_options), and info
    "--max-input-mb", type=Seconds(MIN_INPUT_MB, unit="MB"), default=f"{DEFAULT_MAX_INPUT_MB:g}", show_default=True,
    help=f"Largest input file, line of a .jsonl or member of a .zip read, in MB "
    f"(a .zip: {ARCHIVE_TOTAL_FACTOR}x in all); a larger one is refused.",
)  # fmt: skip


def nonblank_inputs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> Sequence[str]:
    """Refuse an empty or blank INPUT (an unset shell variable) as a usage error: it would read the current folder."""
    from ..io.files import blank_inputs

    problem = blank_inputs(values)
    if problem is not None:
        raise click.UsageError(problem, ctx)
    return values


def _shift_pairs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[tuple[str, float], ...]:
    import math

    pairs = []
    for value in values:
        name, _, amount = value.rpartition("=")
        try:
            shift_ms = float(amount)
        except ValueError:
            shift_ms = math.nan
        if not math.isfinite(shift_ms) or abs(shift_ms) > MAX_SHIFT_MS or (_ and not name.strip()):
            raise click.BadParameter(f"{value!r} is not MS or NAME=MS with MS in -{MAX_SHIFT_MS:g}..{MAX_SHIFT_MS:g}")
        pairs.append((name.strip(), shift_ms))
    try:
        check_shift_names(pairs)
    except ValueError as exc:
        raise _bad_parameter(exc) from None
    return tuple(pairs)


class ConversionCommand(click.Command):
    """A command with the conversion options, whose bare ``--clean`` takes a preset only when one follows.

    ``--clean`` alone means light. Click's optional values take the next word whatever it
    is, so ``convert --clean task.json`` read the file as a preset's name; here a ``--clean``
    that no preset's name follows becomes ``--clean=light`` before click parses, and the word
    after it stays an input (words after ``--`` are left alone). A word of letters only that
    names no file (``medium``, ``Strong``) is still taken for a preset, so a misspelt one is
    refused as a preset, not looked for as an input; task ids and paths have digits, dots or
    slashes. The option itself takes a value, so a command with the conversion options but
    not this class refuses a bare ``--clean`` rather than taking an input for its value.

    ``-q`` and ``-v`` together are a usage error: quiet would win without a word.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, bare_clean_as_light(args))
        if ctx.params.get("quiet") and ctx.params.get("verbose"):
            raise click.UsageError("-q (only errors) and -v (every warning) ask for opposite things; give one")
        return rest


def bare_clean_as_light(args: Sequence[str]) -> list[str]:
    """Return ``args`` with each ``--clean`` that no preset's name follows written ``--clean=light``."""
    out = list(args)
    for at, word in enumerate(out):
        if word == "--":
            break
        if word == "--clean" and (at + 1 == len(out) or not _preset_word(out[at + 1])):
            out[at] = f"--clean={CLEAN_FLAG_PRESET}"
    return out


def _preset_word(word: str) -> bool:
    """Whether the word after a bare ``--clean`` is meant as its preset: a preset's name, or letters naming no file."""
    import os

    return word.casefold() in CLEAN_PRESETS or (word.isalpha() and not os.path.lexists(word))


def with_options(command: Callable[..., Any], options: Sequence[Callable[..., Any]]) -> Callable[..., Any]:
    """Return ``command`` with click ``options`` added, listed in ``--help`` in the order given."""
    for option in reversed(options):
        command = option(command)
    return command


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options shared by ``convert`` and ``fetch``: where and how files are written."""
    options = [
        click.option("-o", "--output", "out", metavar="OUT",
                     help=f"{OUT_FORMS} Default: beside each input (fetch: the current folder)."),
        click.option("--split", is_flag=True, help="One .mid per instrument."),
        click.option("--format", "midi_format", type=click.Choice(["0", "1"]), default="1", show_default=True,
                     help="SMF format: 1 = a track per instrument, 0 = one track."),
        click.option("--bpm", type=Bpm(), default=f"{DEFAULT_BPM:g}", show_default=True,
                     help="Tempo written to the file in BPM, or auto: the song's own tempo, meter and bar "
                          "lines (a constant tempo when unsure). Note times in seconds are kept either way."),
        click.option("--ppq", type=click.IntRange(MIN_PPQ, MAX_PPQ), default=None,
                     help=f"Ticks per quarter note, {MIN_PPQ}-{MAX_PPQ} ({DEFAULT_PPQ}; {AUTO_PPQ} with --bpm auto). "
                          "A multiple of 96 keeps Suno timing exact at 120 BPM."),
        click.option("--quantize", metavar="GRID", callback=_grid,
                     help=f"Move note starts and ends to a grid: {GRID_CHOICES}, e.g. 1/16 or 1/8t, "
                          "counted in the song's own tempo (implies --bpm auto unless --bpm is given). "
                          "Changes timing; off by default."),
        click.option("--program", "programs", multiple=True, metavar="NAME=PROGRAM", callback=_program_pairs,
                     help="Program for an instrument: 0-127 (0 = Acoustic Grand Piano), a GM name, a stem name (Bass, "
                          "Piano, ...) or Drums (channel 10); repeatable. 'midiexport programs' lists them."),
        click.option("--overwrite", is_flag=True, help="Replace existing files (never done otherwise)."),
        click.option("--strict", is_flag=True, help="Refuse a record with an invalid note instead of leaving it out."),
        click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None,
                     help="Processes for a batch (default: the machine's cores); for fetch, tasks asked "
                          f"at once (default {DEFAULT_CONCURRENCY}, at most {MAX_CONCURRENCY})."),
        click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress, no summary."),
        click.option("-v", "--verbose", is_flag=True,
                     help="Every warning and failure line, each kept file, and an internal error's traceback."),
        click.option("--report", metavar="FILE",
                     help="Write a JSON report: per input the outcome, files, note counts, repairs and "
                          "warnings, and the totals; after Ctrl-C, what finished, marked interrupted. - for "
                          "stdout (not with -o -)."),
        click.option("--name", "name_template", metavar="TEMPLATE", callback=_name_template,
                     help="Output names from a template: {stem} {record} {task_id} {audio_id} {title} "
                          "{instrument}, e.g. '{title} - {task_id}'. Made safe for every system."),
        click.option("--tempo-map", type=click.Choice(["bpm", "keep"]), default="bpm", show_default=True,
                     help="For .mid input: bpm = as --bpm says (auto uses the file's beat map); "
                          "keep = the file's own tempo map as it is."),
        max_input_option,
        click.option("--clean", type=click.Choice(CLEAN_PRESETS, case_sensitive=False), default=None,
                     help="Clean a transcription: light (short notes, doubled tracks; overtone ghosts "
                          "dropped when the record shows a transcriber's marks) or strong (also caps voices by "
                          "role and aligns the stems of such a record). "
                          "Off by default; alone it means light. "
                          "See the README."),
        click.option("--min-note-ms", type=click.FloatRange(0, MAX_CLEAN_MS), default=None, metavar="MS",
                     help=f"Drop melodic notes shorter than MS milliseconds ({CLEAN_MIN_NOTE_MS:g} with --clean; "
                          "0: keep all)."),
        click.option("--merge-gap-ms", type=click.FloatRange(0, MAX_CLEAN_MS), default=None, metavar="MS",
                     help=f"Merge same-pitch notes split by a gap under MS milliseconds ({CLEAN_MERGE_GAP_MS:g} with "
                          "--clean; 0: never)."),
        click.option("--align/--no-align", default=None,
                     help="Shift each instrument onto the timing of the drums (without drums: of the earliest part); "
                          "the shifts are reported. Default: with --clean strong, only a record showing a "
                          "transcriber's marks; off otherwise."),
        click.option("--ghosts/--no-ghosts", default=None,
                     help="Drop overtone ghosts: a note an octave, a twelfth or two octaves above a held note of "
                          "its part, inside it. Parts that play octaves (keys, mallets, guitars, harp, unknown "
                          "roles) keep them. Default: with --clean, only a record showing a transcriber's "
                          "marks; off without."),
        click.option("--shift", "shifts", multiple=True, metavar="[NAME=]MS", callback=_shift_pairs,
                     help="Move every instrument, or NAME, by MS milliseconds (negative: earlier; never "
                          "before 0 s); repeatable. None by default."),
        click.option("--drum-length", "drum_length_ms", type=click.FloatRange(0, MAX_CLEAN_MS), default=None,
                     metavar="MS", help="Lengthen drum hits shorter than MS milliseconds to MS (off by default)."),
        click.option("--key", "key_mode", type=click.Choice(KEY_MODES), default=None,
                     help="Write the estimated key signature when confident: auto, or off. "
                          "Default: auto with --clean, off without."),
    ]  # fmt: skip
    return with_options(command, options)


# What -o takes, in the help of convert, fetch and generate (each adds its own default; serve takes a folder only).
OUT_FORMS = (
    "A .mid path (one result only), a folder (created; a new one with a suffix needs a trailing /), or - for stdout."
)


NOT_TEMPO_MAPPED = "JSON records, never .mid files with a tempo map of their own"  # why --tempo-map is unused


def unused_help(command: str, why: str) -> str:
    """The help of a shared option that ``command`` does nothing with: "Not used by COMMAND: WHY" (``help_for``)."""
    return f"Not used by {command}: {why}"


def help_for(**helps: str) -> Callable[[click.Command], click.Command]:
    """Give a command's shared options (``output_options``) help that says what this command does with them.

    Keyed by parameter name (``out``, ``jobs``...); a name the command lacks is a bug, raised at import.
    Only the help changes: the option itself stays the one defined for every command.
    """

    def apply(command: click.Command) -> click.Command:
        options = {param.name: param for param in command.params if isinstance(param, click.Option)}
        for name, text in helps.items():
            options[name].help = text
        return command

    return apply


def build_destination(options: dict[str, Any], *, several: bool, default_folder: str | None = None) -> Destination:
    """Return where the files of a command go (``-o``, ``--overwrite``); a UsageError when they cannot.

    ``several``: more than one result is known to be coming. ``default_folder``: where
    files go without ``-o`` when there is no input file to put them beside (fetch).
    """
    from pathlib import Path

    from ..jobs.runner import Destination
    from .report import cli_words

    folder = None if default_folder is None else Path(default_folder)
    destination = Destination(options["out"], options["overwrite"], default_folder=folder)
    problem = destination.problem(several=several or options["split"])
    if problem is not None:
        raise click.UsageError(cli_words(problem))
    if options["report"] == "-" and options["out"] == "-":
        raise click.UsageError("--report - and -o - would both write to standard output; give --report a file")
    if options["out"] == "-" and sys.stdout is not None and sys.stdout.isatty():
        raise click.UsageError("-o - writes binary MIDI to standard output, which is a terminal; "
                               "redirect it (> song.mid) or pipe it, or give -o a file")  # fmt: skip
    if options["report"] is not None:
        from ..display import printable
        from ..jobs.report import OTHER_DATA, holds_other_data

        if holds_other_data(options["report"]):
            name = printable(options["report"])
            raise click.UsageError(f"--report {name}: {OTHER_DATA} (kept); give --report another file")
    return destination


def build_convert_options(options: dict[str, Any]) -> Any:
    """Return the ConvertOptions the output options give (``--quantize`` alone implies ``--bpm auto``)."""
    from ..options import AUTO, ConvertOptions

    # Quantizing needs the song's own grid: --quantize without an explicit --bpm implies auto.
    given = click.get_current_context().get_parameter_source("bpm") is not click.core.ParameterSource.DEFAULT
    bpm = options["bpm"] if given or not options["quantize"] else AUTO
    return ConvertOptions(
        bpm=bpm, ppq=options["ppq"], format=int(options["midi_format"]), split=options["split"],
        strict=options["strict"], programs=options["programs"], quantize=options["quantize"],
        name=options["name_template"],
        tempo_map=options["tempo_map"],
        max_input_mb=options["max_input_mb"],
        clean=options["clean"], min_note_ms=options["min_note_ms"], merge_gap_ms=options["merge_gap_ms"],
        align=options["align"], ghosts=options["ghosts"], shifts=options["shifts"],
        drum_length_ms=options["drum_length_ms"],
        key=options["key_mode"],
    )  # fmt: skip
