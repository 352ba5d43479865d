"""Command line: options in, one library call, text out.

Data goes to stdout (``info``, ``-o -``); messages and progress go to stderr. This is
the one place where errors become output: one line per failed input or record, the
batch goes on, and the exit status follows the contract (0 all converted, 1 any
failure, 2 usage error, 130/143 when interrupted). ``-v`` adds tracebacks.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .defaults import (
    AUTO_PPQ,
    CLEAN_MERGE_GAP_MS,
    CLEAN_MIN_NOTE_MS,
    DEFAULT_BASE_URL,
    DEFAULT_BPM,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INPUT_MB,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_PPQ,
    DEFAULT_TIMEOUT_S,
    MAX_BPM,
    MAX_PPQ,
    MIN_BPM,
    MIN_INPUT_MB,
)
from .display import printable
from .options import CLEAN_PRESETS, KEY_MODES, MAX_CLEAN_MS, MAX_SHIFT_MS

if TYPE_CHECKING:
    from .jobs.runner import Destination

EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 130, 143
SHOWN_WARNINGS = 5  # per record, unless -v


class _Bpm(click.ParamType):  # type: ignore[type-arg]  # generic only in recent click
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


class _Seconds(click.ParamType):  # type: ignore[type-arg]  # generic only in recent click
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


def _grid(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from .stages.timing import grid_ticks  # numpy: only when a grid is given

        try:
            grid_ticks(value, DEFAULT_PPQ)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so temporary files are removed."""


def _program_pairs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    from .gm import resolve_override

    pairs = []
    for value in values:
        name, sep, program = value.rpartition("=")
        if not sep or not name.strip() or not program.strip():
            raise click.BadParameter(f"{value!r} is not NAME=PROGRAM (e.g. Bass=33 or 'Piano=Electric Piano 1')")
        try:
            resolve_override(program.strip())
        except ValueError as exc:
            raise click.BadParameter(f"{exc}; 'midiexport programs' lists the names") from None
        pairs.append((name.strip(), program.strip()))
    return tuple(pairs)


def _name_template(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from .options import name_fields

    if value is not None:
        try:
            name_fields(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


_max_input_option = click.option(
    "--max-input-mb", type=_Seconds(MIN_INPUT_MB, unit="MB"), default=DEFAULT_MAX_INPUT_MB, show_default=True,
    help="Largest input file, or line of a .jsonl, read in MB; a larger one is refused.",
)  # fmt: skip


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
    return tuple(pairs)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options shared by ``convert`` and ``fetch``: where and how files are written."""
    options = [
        click.option("-o", "--output", "out", metavar="OUT",
                     help="A .mid path (one result only), a folder (created), or - for stdout. "
                          "Default: beside each input (fetch: the current folder)."),
        click.option("--split", is_flag=True, help="One .mid per instrument."),
        click.option("--format", "midi_format", type=click.Choice(["0", "1"]), default="1", show_default=True,
                     help="SMF format: 1 = a track per instrument, 0 = one track."),
        click.option("--bpm", type=_Bpm(), default=f"{DEFAULT_BPM:g}", show_default=True,
                     help="Tempo written to the file in BPM, or auto: the song's own tempo, meter and bar "
                          "lines (a constant tempo when unsure). Note times in seconds are kept either way."),
        click.option("--ppq", type=click.IntRange(1, MAX_PPQ), default=None,
                     help=f"Ticks per quarter note ({DEFAULT_PPQ}; {AUTO_PPQ} with --bpm auto). "
                          "A multiple of 96 keeps Suno timing exact at 120 BPM."),
        click.option("--quantize", metavar="GRID", callback=_grid,
                     help="Move note starts and ends to a grid: 1/4, 1/8, 1/16, 1/32, 1/8t (triplets), "
                          "counted in the song's own tempo (implies --bpm auto unless --bpm is given). "
                          "Changes timing; off by default."),
        click.option("--program", "programs", multiple=True, metavar="NAME=PROGRAM", callback=_program_pairs,
                     help="Program for an instrument: 0-127 (0 = Acoustic Grand Piano) or a GM name; repeatable."),
        click.option("--overwrite", is_flag=True, help="Replace existing files (never done otherwise)."),
        click.option("--strict", is_flag=True, help="Refuse a record with an invalid note instead of leaving it out."),
        click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None,
                     help="Processes for a batch (fetch: tasks asked at once, at most 4). "
                          "Default: the machine's cores."),
        click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress, no summary."),
        click.option("-v", "--verbose", is_flag=True, help="Every warning, and tracebacks for errors."),
        click.option("--report", metavar="FILE",
                     help="Write a JSON report: per input the outcome, files, note counts, repairs and "
                          "warnings, and the totals. - for stdout (not with -o -)."),
        click.option("--name", "name_template", metavar="TEMPLATE", callback=_name_template,
                     help="Output names from a template: {stem} {record} {task_id} {audio_id} {title} "
                          "{instrument}, e.g. '{title} - {task_id}'. Made safe for every system."),
        click.option("--tempo-map", type=click.Choice(["bpm", "keep"]), default="bpm", show_default=True,
                     help="For .mid input: bpm = as --bpm says (auto uses the file's beat map); "
                          "keep = the file's own tempo map as it is."),
        _max_input_option,
        click.option("--clean", type=click.Choice(CLEAN_PRESETS), is_flag=False, flag_value="light", default=None,
                     help="Clean a transcription: light (short notes, fragments, doubled tracks) or strong "
                          "(also caps voices by role). Off by default; alone it means light, so put it after "
                          "INPUT or write --clean=light. See the README."),
        click.option("--min-note-ms", type=click.FloatRange(0, MAX_CLEAN_MS), default=None, metavar="MS",
                     help=f"Drop melodic notes shorter than MS milliseconds ({CLEAN_MIN_NOTE_MS:g} with --clean; "
                          "0: keep all)."),
        click.option("--merge-gap-ms", type=click.FloatRange(0, MAX_CLEAN_MS), default=None, metavar="MS",
                     help=f"Merge same-pitch notes split by a gap under MS milliseconds ({CLEAN_MERGE_GAP_MS:g} with "
                          "--clean; 0: never)."),
        click.option("--align", is_flag=True,
                     help="Shift each instrument onto the timing of the drums (without drums: of the earliest part); "
                          "the shifts are reported. Off by default."),
        click.option("--shift", "shifts", multiple=True, metavar="[NAME=]MS", callback=_shift_pairs,
                     help="Move every instrument, or NAME, by MS milliseconds (negative: earlier; never "
                          "before 0 s); repeatable. None by default."),
        click.option("--drum-length", "drum_length_ms", type=click.FloatRange(0, MAX_CLEAN_MS), default=None,
                     metavar="MS", help="Lengthen drum hits shorter than MS milliseconds to MS (off by default)."),
        click.option("--key", "key_mode", type=click.Choice(KEY_MODES), default=None,
                     help="Write the estimated key signature when confident: auto, or off. "
                          "Default: auto with --clean, off without."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="midiexport")
def main() -> None:
    """Turn the MIDI note data of Suno-style music APIs into Standard MIDI Files.

    \b
      midiexport convert record.json            writes record.mid beside it
      midiexport convert archive/ -o midi/      every .json/.jsonl in a folder
      midiexport fetch TASK_ID                  download a task (MIDIEXPORT_API_KEY)
      midiexport generate MUSIC_TASK_ID         song -> stems -> MIDI task -> .mid (costs credits)
      midiexport serve -o midi/                 receive the API's callbacks (extra [serve])
      midiexport info record.mid                what a record or a .mid holds

    Messages go to stderr, data to stdout. Exit status: 0 when every input became
    a .mid, 1 when any did not, 2 for a usage error.
    """
    from .io.files import hold_closed_standard_fds

    hold_closed_standard_fds()


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@output_options
def convert(inputs: tuple[str, ...], **options: Any) -> None:
    """Convert saved JSON records, or Suno's .mid exports, into clean .mid files.

    INPUT is a .json or .jsonl file, a .mid or a .zip of Suno's web-export stems, a
    folder (searched recursively) or - for stdin.

    \b
      midiexport convert task.json
      midiexport convert songs.jsonl -o midi/ --split
      midiexport convert task.json --bpm auto         bars and beats of the song's own tempo
      midiexport convert stems.zip -o song.mid        Suno's .mid stems of a song as one file
      cat task.json | midiexport convert - -o - > song.mid

    Notes with no obvious repair are left out with a warning (or the record is
    refused with --strict); repairs are counted in the summary.
    """
    from .io.files import MIDI_SUFFIXES, STDIN, find_inputs, is_archive, is_midi, several_records

    # The .mid stems of one song make one file (issue 14): the writer refuses a second result instead.
    stems_only = all(name.lower().endswith(MIDI_SUFFIXES) for name in inputs)
    destination = _destination(options, several=len(inputs) > 1 and not stems_only)
    if STDIN in inputs and options["out"] is None:
        raise click.UsageError("reading standard input needs -o (a folder, a .mid path, or - for stdout)")
    try:
        sources = find_inputs(inputs)
    except Exception as exc:  # noqa: BLE001 - one line, exit 1, like every input error
        _fail_line(exc, options["verbose"])
        sys.exit(EXIT_FAILED)
    stems = all(is_midi(s) or is_archive(s) for s in sources)  # may be one song: the writer refuses a second
    if destination.single and not stems and (len(sources) > 1 or any(several_records(s) for s in sources)):
        raise click.UsageError(destination.problem(several=True) or "several results for one file")
    # JSON Lines are counted line by line as they are read: then the total is not known.
    total = None if any(source.lines for source in sources) else len(sources)
    _run(lambda jobs: _batch(sources, options, destination, jobs), options, total=total)


def _destination(options: dict[str, Any], *, several: bool) -> Destination:
    from .jobs.runner import Destination

    destination = Destination(options["out"], options["overwrite"])
    problem = destination.problem(several=several or options["split"])
    if problem is not None:
        raise click.UsageError(problem)
    if options["report"] == "-" and options["out"] == "-":
        raise click.UsageError("--report - and -o - would both write to standard output; give --report a file")
    return destination


def _batch(sources: Any, options: dict[str, Any], destination: Any, jobs: int) -> Iterable[Any]:
    from .jobs.convert_files import run_batch

    return run_batch(sources, _convert_options(options), destination, jobs=jobs)


def _convert_options(options: dict[str, Any]) -> Any:
    from .options import AUTO, ConvertOptions

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
        align=options["align"], shifts=options["shifts"], drum_length_ms=options["drum_length_ms"],
        key=options["key_mode"],
    )  # fmt: skip


def _run(start: Callable[[int], Iterable[Any]], options: dict[str, Any], *, total: int | None) -> None:
    """Drive a batch: print each outcome, the summary, and exit with the contract's status."""
    from .jobs.console import ProgressBar, Tally
    from .jobs.runner import Destination, default_jobs

    verbose, quiet = options["verbose"], options["quiet"]
    tally = Tally()
    progress = ProgressBar(total, lambda text: click.echo(text, err=True, nl=False),
                           enabled=not quiet and sys.stderr.isatty() and (total is None or total > 1))  # fmt: skip
    report = _json_report(options)
    single = Destination(options["out"]).single and options["out"] != "-"  # an existing file is named
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        for pending in start(options["jobs"] or default_jobs()):
            try:
                outcomes = pending.result()
            except Exception as exc:  # noqa: BLE001 - the one place errors become lines
                _fail_line(exc, verbose, progress.echo)
                tally.failed += 1
                if report is not None:
                    report.add_failure(pending.name, exc)
                progress.step()
                continue
            for outcome in outcomes:
                tally.add(outcome)
                if report is not None:
                    report.add(outcome)
                _print_outcome(outcome, verbose=verbose, quiet=quiet, progress=progress, single=single)
            progress.step()
    except (KeyboardInterrupt, Terminated) as exc:
        progress.clear()
        click.echo(f"interrupted: {tally.converted} converted; run the same command again to finish "
                   "(finished files are kept)", err=True)  # fmt: skip
        _exit_now(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)
    progress.clear()
    if report is not None:
        report.finish(tally)
    if not quiet:
        click.echo(tally.summary(), err=True)
    sys.exit(EXIT_FAILED if tally.failed else 0)


def _json_report(options: dict[str, Any]) -> Any:
    from .jobs.report import JsonReport

    target = options.get("report")
    return None if target is None else JsonReport(target, click.get_current_context().info_name or "")


def _exit_now(status: int) -> NoReturn:
    """Exit at once after an interruption, without waiting for worker threads at exit.

    A worker killed while it sent a result leaves half a message in the pool's pipe,
    and Python's exit would wait forever for the pool thread reading it. Every file is
    complete or removed by now (writes hold the signals), and workers end with us.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _print_outcome(outcome: Any, *, verbose: bool, quiet: bool, progress: Any, single: bool) -> None:
    """Print what became of one result; with a progress bar, "wrote" lines give way to the bar."""
    say = progress.echo
    if outcome.error is not None:
        _fail_line(outcome.error, verbose, say)
    if outcome.existing and (verbose or (single and not quiet)):
        for path in outcome.existing:
            say(f"{path} exists; kept (--overwrite replaces it)")
    for path in outcome.paths:
        if not quiet and not progress.enabled and path != "-":
            say(f"wrote {printable(path)}")
    report = outcome.report
    if report is None or quiet:
        return
    if report.tempo:
        click.echo(f"{outcome.place}: {report.tempo}", err=True)
    if report.counts:
        counts = "; ".join(f"{n:,} {kind}" for kind, n in report.counts.items())
        say(f"{printable(outcome.place)}: {counts}")
    for notice in report.notices:
        say(printable(notice))
    shown = report.warnings if verbose else report.warnings[:SHOWN_WARNINGS]
    for warning in shown:
        say(f"warning: {printable(warning)}")
    if len(report.warnings) > len(shown):
        say(f"warning: ... and {len(report.warnings) - len(shown)} more (-v shows all)")


def _fail_line(exc: BaseException, verbose: bool, say: Callable[[str], None] | None = None) -> None:
    from .errors import MidiExportError

    say = say or (lambda line: click.echo(line, err=True))
    if verbose:
        lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
        say("\n".join(printable(line) for line in lines))
    if isinstance(exc, MidiExportError):
        say(printable(str(exc)))
    else:
        detail = printable(f"{type(exc).__name__} {exc}".strip())
        say(f"internal error: {detail}; run with -v for the traceback")


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options shared by ``fetch`` and ``generate``: the key, the host, the waits, the kept JSON."""
    options = [
        click.option("--api-key", envvar="MIDIEXPORT_API_KEY", show_envvar=True, metavar="KEY",
                     help="API key, sent only in the Authorization header."),
        click.option("--base-url", envvar="MIDIEXPORT_BASE_URL", show_envvar=True, default=DEFAULT_BASE_URL,
                     show_default=True, help="API host; another provider of the same API goes here."),
        click.option("--timeout", "timeout_s", type=_Seconds(1), default=DEFAULT_TIMEOUT_S, show_default=True,
                     help="Longest wait for one task in seconds, polling included."),
        click.option("--poll-interval", "poll_interval_s", type=_Seconds(0.01), default=DEFAULT_POLL_INTERVAL_S,
                     show_default=True, help="Seconds between polls of a pending task (the API advises 10-30)."),
        click.option("--save-json/--no-save-json", default=True, show_default=True,
                     help="Keep the raw answer beside the .mid (the API forgets tasks after 14 days)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _check_api(options: dict[str, Any]) -> None:
    """Refuse a missing or unsendable key, or a base URL unfit for it, before anything is sent."""
    from .io.http import check_api_key, check_base_url

    if not options["api_key"]:
        raise click.UsageError("no API key: pass --api-key or set MIDIEXPORT_API_KEY")
    try:
        check_api_key(options["api_key"])
        check_base_url(options["base_url"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@main.command()
@click.argument("task_ids", nargs=-1, required=True, metavar="TASK_ID...")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Poll a pending task until it ends.")
@click.option("--music-task", metavar="ID", help="Music task the song came from: its title names the file.")
@api_options
@output_options
def fetch(task_ids: tuple[str, ...], **options: Any) -> None:
    """Download MIDI tasks by id and convert them into .mid files.

    \b
      export MIDIEXPORT_API_KEY=...
      midiexport fetch 5c79be8e                      writes 5c79be8e.mid and .json here
      midiexport fetch 5c79be8e --music-task 9f3a -o midi/
      midiexport fetch a1 b2 c3 --no-wait            report pending tasks, do not wait

    A few tasks are asked at once. Each failure is one line; the others go on.
    """
    from pathlib import Path

    from .jobs.fetch_tasks import run_fetch

    _check_api(options)
    blank = [repr(t) for t in task_ids if not t.strip()]
    if blank:
        raise click.UsageError(f"a task id is empty ({', '.join(blank)}); give the id the API returned")
    destination = _destination(options, several=len(task_ids) > 1)
    destination.default_folder = Path(".")
    fetch_options = _fetch_options(options, music_task=options["music_task"])
    status = _PollStatus(enabled=not options["quiet"])
    convert_options = _convert_options(options)
    _run(lambda jobs: run_fetch(task_ids, fetch_options, convert_options, destination, progress=status),
         options, total=len(task_ids))  # fmt: skip


@main.command()
@click.argument("music_task", metavar="MUSIC_TASK_ID")
@click.option("--audio-id", metavar="ID", help="The song of the music task (needed when it has several).")
@click.option("--separation-task", metavar="ID", help="Use this split_stem separation instead of paying for one.")
@click.option("--stem", metavar="NAME", help="MIDI for one stem only (e.g. Bass); default: all stems.")
@click.option("--callback-url", metavar="URL",
              help="callBackUrl sent to the API, e.g. a running `midiexport serve`. Default: the placeholder "
                   "https://example.invalid/midiexport-callback (goes nowhere; the tasks are polled).")  # fmt: skip
@click.option("--yes", is_flag=True, help="Spend the credits without asking (required without a terminal).")
@click.option("--resume", is_flag=True, help="Continue the chain saved in MUSIC_TASK_ID.generate.json beside -o.")
@api_options
@output_options
def generate(music_task: str, **options: Any) -> None:
    """Make MIDI from a song: separate it into stems, ask for MIDI, convert it.

    \b
      midiexport generate 9f3a --audio-id e231 -o midi/     asks before spending
      midiexport generate 9f3a --stem Bass --yes            one stem, no question
      midiexport generate 9f3a --resume -o midi/            continue an interrupted run

    Costs credits: a split_stem separation (50, documented) and a MIDI request (price
    not documented). Each task id is printed and saved beside the output at once, so
    --resume (or `fetch MIDI_TASK`) goes on without paying twice. A song needs choosing
    (exit 2) when the music task has several.
    """
    from .errors import ChoiceNeeded, InputError
    from .jobs import generate as chain_job

    _check_api(options)
    if not music_task.strip():
        raise click.UsageError("the music task id is empty; give the id the API returned")
    destination = _destination(options, several=False)
    destination.default_folder = Path(".")
    wanted = chain_job.GenerateOptions(
        music_task=music_task.strip(), fetch=_fetch_options(options, music_task=None), audio_id=options["audio_id"],
        separation_task=options["separation_task"], stem=options["stem"], callback_url=options["callback_url"],
    )  # fmt: skip
    try:  # task ids are told even with -q: they are what saves paying twice
        chain = chain_job.open_chain(wanted, options["out"], resume=options["resume"],
                                     tell=lambda line: click.echo(line, err=True),
                                     progress=_PollStatus(enabled=not options["quiet"]))  # fmt: skip
    except ChoiceNeeded as exc:
        raise click.UsageError(str(exc)) from None
    except InputError as exc:  # an unreadable state file
        _fail_line(exc, options["verbose"])
        sys.exit(EXIT_FAILED)
    with chain.client:
        paid = chain_job.spending(chain.state)
        if paid and not options["yes"] and not sys.stdin.isatty():
            raise click.UsageError(f"generate spends credits ({'; '.join(paid)}): pass --yes to allow it when "
                                   "there is no terminal to ask on")  # fmt: skip
        try:
            failed = chain_job.prepare(chain)
        except ChoiceNeeded as exc:
            raise click.UsageError(str(exc)) from None
        if failed is None and chain_job.spending(chain.state) and not options["yes"]:
            click.confirm(f"This spends credits: {'; '.join(chain_job.spending(chain.state))}. Go on?", err=True,
                          abort=True)  # fmt: skip
        _run(lambda jobs: chain_job.run_generate(chain, _convert_options(options), destination, failed=failed),
             options, total=1)  # fmt: skip


def _fetch_options(options: dict[str, Any], *, music_task: str | None) -> Any:
    from .jobs.fetch_tasks import FetchOptions

    return FetchOptions(
        api_key=options["api_key"], base_url=options["base_url"], wait=options.get("wait", True),
        timeout_s=options["timeout_s"], poll_interval_s=options["poll_interval_s"], music_task=music_task,
        save_json=options["save_json"] and options["out"] != "-", concurrency=min(options["jobs"] or 3, 4),
    )  # fmt: skip


class _PollStatus:
    """Tell on stderr what a waiting fetch is doing: a line per task per minute at most."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._told: dict[str, int] = {}

    def __call__(self, task_id: str, state: str, waited_s: float) -> None:
        minute = int(waited_s // 60)
        if not self.enabled or self._told.get(task_id) == minute:
            return
        self._told[task_id] = minute
        click.echo(printable(f"task {task_id}: {state}, waited {waited_s:.0f} s; polling"), err=True)


def serve_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options of ``serve``: where it listens, the webhook key, the limits."""
    options = [
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on (loopback unless a key is set)."),
        click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
                     help="TCP port; 0 picks a free one (the URL is printed)."),
        click.option("--path", "callback_path", default="/callback", show_default=True,
                     help="URL path that receives callbacks (give the full URL as callBackUrl)."),
        click.option("--hmac-key", envvar="MIDIEXPORT_WEBHOOK_KEY", show_envvar=True, metavar="KEY",
                     help="Webhook key: every callback must carry a valid X-Webhook-Signature."),
        click.option("--insecure-public", is_flag=True, help="Allow a non-loopback --host without a webhook key."),
        click.option("--window", "window_s", type=_Seconds(1), default=300, show_default=True,
                     help="Seconds a signed timestamp stays valid (older ones are replays)."),
        click.option("--max-body-mb", type=_Seconds(0.001, unit="MiB"), default=DEFAULT_MAX_BODY_BYTES / 2**20,
                     show_default=True, help="Largest callback body in MiB (larger: 413)."),
        click.option("--queue", "queue_size", type=click.IntRange(1, 1_000_000), default=1024, show_default=True,
                     help="Callbacks waiting for conversion before new ones get 503 with Retry-After."),
        click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
                     help="Append the request log (JSON lines) to this file instead of stderr."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@serve_options
@output_options
def serve(**options: Any) -> None:
    """Receive the API's callbacks, store them durably and convert them.

    Give http://HOST:PORT/callback as callBackUrl (for instance to `generate
    --callback-url`). Raw callbacks are kept under OUT/callbacks/, .mid files in OUT.

    \b
      midiexport serve -o midi/                       loopback, port 8000
      midiexport serve --host 0.0.0.0 --hmac-key KEY -o midi/ --bpm auto

    Needs the extra: pip install "midiexport[serve]". Stops on Ctrl-C or SIGTERM.
    """
    from .jobs.runner import default_jobs
    from .jobs.serve import ServeOptions, check_host, run_server

    try:
        check_host(options["host"], hmac_key=options["hmac_key"], insecure_public=options["insecure_public"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if options["out"] is not None and (options["out"] == "-" or options["out"].lower().endswith((".mid", ".midi"))):
        raise click.UsageError("serve writes many files: -o takes a folder")
    if options["report"] == "-":
        raise click.UsageError("serve appends its report to a file: --report takes a path")
    _serve_logging(options)
    settings = ServeOptions(
        out_dir=Path(options["out"] or "."), path=options["callback_path"], hmac_key=options["hmac_key"],
        window_s=options["window_s"], max_body_bytes=int(options["max_body_mb"] * 2**20),
        queue_size=options["queue_size"], workers=options["jobs"] or default_jobs(),
        report=Path(options["report"]) if options["report"] else None, options=_convert_options(options),
    )  # fmt: skip
    try:
        run_server(settings, host=options["host"], port=options["port"],
                   announce=lambda url: click.echo(f"listening on {url}", err=True))  # fmt: skip
    except ImportError as exc:
        raise click.ClickException(f"serve needs its extra: pip install 'midiexport[serve]' ({exc})") from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}"
        ) from None


def _serve_logging(options: dict[str, Any]) -> None:
    import logging

    from .jobs.serve import LOG, LogFormatter

    if options["quiet"]:
        return
    handler = logging.FileHandler(options["log_path"]) if options["log_path"] else logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormatter())
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)


@main.command()
def programs() -> None:
    """List the program names --program accepts: GM programs, other spellings, stem and drum names."""
    from .gm import program_table

    click.echo("\n".join(program_table()))


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (channels 0-based).")
@_max_input_option
def info(files: tuple[str, ...], as_json: bool, max_input_mb: float) -> None:
    """Show what a record or a .mid holds.

    Per instrument or track: name, program, channel, notes, pitch range, first and
    last note time; plus status, task id and duration.

    \b
      midiexport info task.json song.mid
      midiexport info --json song.mid | jq '.[0].parts'
    """
    from .errors import OutputError
    from .io.files import find_inputs, write_stdout
    from .jobs.info import format_table, summaries_json, summarize_file

    summaries, failed = [], False
    for name in files:
        try:
            for source in find_inputs([name]):
                summaries += summarize_file(source, max_input_mb=max_input_mb)
        except Exception as exc:  # noqa: BLE001 - one line per file, the others go on
            _fail_line(exc, False)
            failed = True
    text = summaries_json(summaries) if as_json else "\n\n".join(format_table(s) for s in summaries)
    try:
        if as_json or summaries:
            write_stdout((text + "\n").encode("utf-8", "backslashreplace"))
    except OutputError as exc:
        _fail_line(exc, False)
        failed = True
    sys.exit(EXIT_FAILED if failed else 0)
