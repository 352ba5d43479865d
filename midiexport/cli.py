"""Command line: options in, one library call, text out.

Data goes to stdout (``info``, ``-o -``); messages and progress go to stderr. This is
the one place where errors become output: one line per failed input or record, the
batch goes on, and the exit status follows the contract (0 all converted, 1 any
failure, 2 usage error, 130/143 when interrupted). ``-v`` adds tracebacks.
"""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .defaults import (
    AUTO_PPQ,
    DEFAULT_BASE_URL,
    DEFAULT_BPM,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_PPQ,
    DEFAULT_TIMEOUT_S,
    MAX_BPM,
    MAX_PPQ,
    MIN_BPM,
)

if TYPE_CHECKING:
    from .jobs.batch import Destination

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


def _grid(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from .stages.timing import grid_ticks

    if value is not None:
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
            raise click.BadParameter(str(exc)) from None
        pairs.append((name.strip(), program.strip()))
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
                     help="Move note starts and ends to a grid: 1/4, 1/8, 1/16, 1/32, 1/8t (triplets). "
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
      midiexport info record.mid                what a record or a .mid holds

    Messages go to stderr, data to stdout. Exit status: 0 when every input became
    a .mid, 1 when any did not, 2 for a usage error.
    """


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@output_options
def convert(inputs: tuple[str, ...], **options: Any) -> None:
    """Convert saved JSON records into .mid files.

    INPUT is a .json or .jsonl file, a folder (searched recursively) or - for stdin.

    \b
      midiexport convert task.json
      midiexport convert songs.jsonl -o midi/ --split
      midiexport convert task.json --bpm auto         bars and beats of the song's own tempo
      cat task.json | midiexport convert - -o - > song.mid

    Notes with no obvious repair are left out with a warning (or the record is
    refused with --strict); repairs are counted in the summary.
    """
    from .io.files import STDIN, find_inputs

    destination = _destination(options, several=len(inputs) > 1)
    if STDIN in inputs and options["out"] is None:
        raise click.UsageError("reading standard input needs -o (a folder, a .mid path, or - for stdout)")
    try:
        sources = find_inputs(inputs)
    except Exception as exc:  # noqa: BLE001 - one line, exit 1, like every input error
        _fail_line(exc, options["verbose"])
        sys.exit(EXIT_FAILED)
    # JSON Lines are counted line by line as they are read: then the total is not known.
    total = None if any(source.lines for source in sources) else len(sources)
    _run(lambda jobs: _batch(sources, options, destination, jobs), options, total=total)


def _destination(options: dict[str, Any], *, several: bool) -> Destination:
    from .jobs.batch import Destination

    destination = Destination(options["out"], options["overwrite"])
    if destination.single and (several or options["split"]):
        raise click.UsageError(f"-o {options['out']} names one file; give a folder for several inputs or --split")
    return destination


def _batch(sources: Any, options: dict[str, Any], destination: Any, jobs: int) -> Iterable[Any]:
    from .jobs.batch import run_batch

    return run_batch(sources, _convert_options(options), destination, jobs=jobs)


def _convert_options(options: dict[str, Any]) -> Any:
    from .options import ConvertOptions

    return ConvertOptions(
        bpm=options["bpm"], ppq=options["ppq"], format=int(options["midi_format"]), split=options["split"],
        strict=options["strict"], programs=options["programs"], quantize=options["quantize"],
    )  # fmt: skip


def _run(start: Callable[[int], Iterable[Any]], options: dict[str, Any], *, total: int | None) -> None:
    """Drive a batch: print each outcome, the summary, and exit with the contract's status."""
    from .jobs.batch import default_jobs

    verbose, quiet = options["verbose"], options["quiet"]
    tally = _Tally()
    progress = _Progress(total, enabled=not quiet and sys.stderr.isatty() and (total is None or total > 3))
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        for pending in start(options["jobs"] or default_jobs()):
            try:
                outcomes = pending.result()
            except Exception as exc:  # noqa: BLE001 - the one place errors become lines
                progress.clear()
                _fail_line(exc, verbose)
                tally.failed += 1
                continue
            for outcome in outcomes:
                progress.clear()
                tally.add(outcome)
                _print_outcome(outcome, verbose=verbose, quiet=quiet or progress.enabled)
            progress.step()
    except (KeyboardInterrupt, Terminated) as exc:
        progress.clear()
        click.echo(f"interrupted: {tally.converted} converted; run the same command again to finish "
                   "(finished files are kept)", err=True)  # fmt: skip
        sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)
    progress.clear()
    if not quiet:
        click.echo(tally.summary(), err=True)
    sys.exit(EXIT_FAILED if tally.failed or tally.skipped else 0)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


class _Tally:
    def __init__(self) -> None:
        self.converted = self.repaired = self.repairs = self.skipped = self.failed = self.notes = 0

    def add(self, outcome: Any) -> None:
        if outcome.skipped:
            self.skipped += 1
        elif outcome.error is not None:
            self.failed += 1
        else:
            self.converted += 1
            self.notes += outcome.notes
            if outcome.report and outcome.report.repairs:
                self.repaired += 1
                self.repairs += outcome.report.repairs

    def summary(self) -> str:
        return (f"{self.converted} converted ({self.notes:,} notes), {self.repaired} repaired "
                f"({self.repairs:,} repairs), {self.skipped} skipped (exist), {self.failed} failed")  # fmt: skip


class _Progress:
    """A one-line counter on stderr, redrawn in place; only on a terminal."""

    def __init__(self, total: int | None, *, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled

    def step(self) -> None:
        self.done += 1
        if self.enabled:
            of = f" of {self.total}" if self.total else ""
            click.echo(f"\r  {self.done}{of} done", err=True, nl=False)

    def clear(self) -> None:
        if self.enabled and self.done:
            click.echo("\r\x1b[K", err=True, nl=False)


def _print_outcome(outcome: Any, *, verbose: bool, quiet: bool) -> None:
    if outcome.error is not None:
        _fail_line(outcome.error, verbose)
    for path in outcome.paths:
        if not quiet and path != "-":
            click.echo(f"wrote {path}", err=True)
    report = outcome.report
    if report is None or quiet:
        return
    if report.tempo:
        click.echo(f"{outcome.place}: {report.tempo}", err=True)
    if report.counts:
        counts = "; ".join(f"{n:,} {kind}" for kind, n in report.counts.items())
        click.echo(f"{outcome.place}: {counts}", err=True)
    shown = report.warnings if verbose else report.warnings[:SHOWN_WARNINGS]
    for warning in shown:
        click.echo(f"warning: {warning}", err=True)
    if len(report.warnings) > len(shown):
        click.echo(f"warning: ... and {len(report.warnings) - len(shown)} more (-v shows all)", err=True)


def _fail_line(exc: BaseException, verbose: bool) -> None:
    from .errors import MidiExportError

    if verbose:
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    if isinstance(exc, MidiExportError):
        click.echo(str(exc), err=True)
    else:
        detail = f"{type(exc).__name__} {exc}".strip()
        click.echo(f"internal error: {detail}; run with -v for the traceback", err=True)


@main.command()
@click.argument("task_ids", nargs=-1, required=True, metavar="TASK_ID...")
@click.option(
    "--api-key",
    envvar="MIDIEXPORT_API_KEY",
    show_envvar=True,
    metavar="KEY",
    help="API key, sent only in the Authorization header.",
)
@click.option(
    "--base-url",
    envvar="MIDIEXPORT_BASE_URL",
    show_envvar=True,
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="API host; another provider of the same API goes here.",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Poll a pending task until it ends.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Longest wait for one task in seconds, polling included.",
)
@click.option(
    "--poll-interval",
    "poll_interval_s",
    type=click.FloatRange(min=0.01),
    default=DEFAULT_POLL_INTERVAL_S,
    show_default=True,
    help="Seconds between polls of a pending task (the API advises 10-30).",
)
@click.option("--music-task", metavar="ID", help="Music task the song came from: its title names the file.")
@click.option(
    "--save-json/--no-save-json",
    default=True,
    show_default=True,
    help="Keep the raw answer beside the .mid (the API forgets tasks after 14 days).",
)
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

    from .io.client import check_base_url
    from .jobs.batch import FetchOptions, run_fetch

    if not options["api_key"]:
        raise click.UsageError("no API key: pass --api-key or set MIDIEXPORT_API_KEY")
    try:
        check_base_url(options["base_url"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    destination = _destination(options, several=len(task_ids) > 1)
    destination.default_folder = Path(".")
    fetch_options = FetchOptions(
        api_key=options["api_key"], base_url=options["base_url"], wait=options["wait"],
        timeout_s=options["timeout_s"], poll_interval_s=options["poll_interval_s"],
        music_task=options["music_task"], save_json=options["save_json"] and options["out"] != "-",
        concurrency=min(options["jobs"] or 3, 4),
    )  # fmt: skip
    status = _PollStatus(enabled=not options["quiet"])
    convert_options = _convert_options(options)
    _run(lambda jobs: run_fetch(task_ids, fetch_options, convert_options, destination, progress=status),
         options, total=len(task_ids))  # fmt: skip


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
        click.echo(f"task {task_id}: {state}, waited {waited_s:.0f} s; polling", err=True)


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (channels 0-based).")
def info(files: tuple[str, ...], as_json: bool) -> None:
    """Show what a record or a .mid holds.

    Per instrument or track: name, program, channel, notes, pitch range, first and
    last note time; plus status, task id and duration.

    \b
      midiexport info task.json song.mid
      midiexport info --json song.mid | jq '.[0].parts'
    """
    from .io.files import find_inputs
    from .jobs.info import format_table, summaries_json, summarize_file

    summaries, failed = [], False
    for name in files:
        try:
            for source in find_inputs([name]):
                summaries += summarize_file(source)
        except Exception as exc:  # noqa: BLE001 - one line per file, the others go on
            _fail_line(exc, False)
            failed = True
    if as_json:
        click.echo(summaries_json(summaries))
    else:
        click.echo("\n\n".join(format_table(s) for s in summaries))
    sys.exit(EXIT_FAILED if failed else 0)
