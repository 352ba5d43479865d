"""Reporting: the one place where errors become output, and the loop that drives a batch.

Data goes to stdout; messages and progress go to stderr: one line per failed input or
record (the first SHOWN_FAILURES of a run, then one line counting the rest, unless ``-v``),
the batch goes on, and the exit status follows the contract (0 all converted, 1 any
failure, 2 usage error, 130/143 when interrupted). ``-v`` adds the traceback of an internal
error (a bug); an error midiexport raises on purpose stays its one line, as its message says
all there is to say (a .jsonl of 100 bad lines gave 2,351 lines of tracebacks).

The library names a setting in words that hold for every caller ("raise the timeout"), each
phrase a constant (``errors.Phrase``) marked where it stands in the message, warning or
notice that holds it (``errors.say``). Every line printed here, and every usage error made
of a library message, rewords those marked spans, and only those, with the command line's
flags through one table keyed by the constants (``hints``, in two parts so that a convert
run never imports the API side to print a line); a path or a name that holds the
same words is printed as it is. A count's kind gains its option (``kind_words``). Data
files (``--report``) keep the library's words, as ``serve``'s answers do.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..display import plural, printable
from .common import Terminated

if TYPE_CHECKING:
    from ..errors import InputError

EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 130, 143
SHOWN_WARNINGS = 5  # per record, unless -v
SHOWN_FAILURES = 20  # failure lines per run, unless -v: a .jsonl of a million bad lines says 20, then a count
RUN_AGAIN = "run the same command again to finish"  # what an interrupted run says to do next, by default


def hints() -> dict[str, str]:
    """Return the command line's words for each phrase of the library, keyed by its constant."""
    return {**_convert_hints(), **_api_hints()}


@cache
def _convert_hints() -> dict[str, str]:
    """The phrases of reading, converting and writing (io.files, io.archive, jobs, stages.convert, stages.clean).

    Built on first use, importing the modules that say them: start-up imports none, and a
    run that prints a marked line loads those it had not used (a few ms, once).
    """
    from ..io import archive, files
    from ..jobs import convert_files, runner
    from ..stages import clean, convert

    shifted_by = _shift_causes()  # a shift's cause read inline: '(aligned against "Drums")' -> '(--align, against ...'
    return {
        files.SIZE_LIMIT_HINT: "raise the limit with --max-input-mb",
        archive.SIZE_LIMIT: "--max-input-mb",
        files.OVERWRITE_HINT: "pass --overwrite to replace it",
        convert_files.RERUN_OVERWRITING: "run again with --overwrite",
        runner.OUTPUT_PATH: "-o",
        convert.PPQ_HINT: "lower --ppq or --bpm",
        convert.TRACKS_HINT: "use --split or --format 0",
        convert.STRICT_REFUSAL: "refused under --strict",
        # Warnings and notices of convert and clean.
        convert.PROGRAM_HINT: "choose another with --program NAME=PROGRAM",
        clean.SHIFT_FOR: "--shift",
        clean.AS_ASKED: shifted_by[clean.AS_ASKED],
        clean.ALIGNED: shifted_by[clean.ALIGNED] + ",",
        clean.ALIGNED_BY_CLEAN: shifted_by[clean.ALIGNED_BY_CLEAN] + ",",
    }


@cache
def _api_hints() -> dict[str, str]:
    """The phrases of asking the API (protocol, io.http, io.client, jobs.generate): built only when one is met.

    ``{task_id}``: the task the error names.
    """
    from .. import protocol
    from ..io import http
    from ..jobs import generate

    return {
        http.TIMEOUT: "--timeout",
        http.BASE_URL_HINT: "check --base-url",
        protocol.KEY_HINT: "check --api-key or MIDIEXPORT_API_KEY",
        http.KEY_APART: "the API key goes in --api-key",
        # generate's choices and its advice after an unanswered paid request.
        generate.AUDIO_ID_HINT: "choose one with --audio-id",
        generate.STEM_HINT: "continue with --resume --stem NAME",
        generate.RESUME_PHRASE: "pass --resume to continue it without paying again",
        generate.REWRITE_PHRASE: "pass --resume to write its files again where missing (the API is not asked)",
        generate.SAME_OUTPUT_HINT: "give the same -o as the first run",
        generate.AUDIO_ID: "--audio-id",
        generate.STEM: "--stem",
        generate.SEPARATION_FOLLOW: "continue with `midiexport generate {task_id} --resume --separation-task ID`",
        generate.FETCH_FOLLOW: "run `midiexport fetch ID`",
    }


def _words_for(phrase: str) -> str:
    """Return the command line's words for a phrase: the convert side's table first, the API side's only if needed."""
    words = _convert_hints().get(phrase)
    return words if words is not None else _api_hints().get(phrase, phrase)


@cache
def _kind_flags() -> dict[str, str]:
    """Return the options that make each kind of clean-up change (model.py), as the summary line names them.

    Built on first use: ``model`` is not imported at start-up.
    """
    from .. import model

    return {
        model.QUANTIZED: "--quantize",
        model.SHORT_DROPPED: "--clean",
        model.REDETECT_JOINED: "--clean",
        model.FRAGMENT_MERGED: "--clean",
        model.DOUBLE_MERGED: "--clean",
        model.TRACK_FOLDED: "--clean",
        model.GHOST_DROPPED: "--clean, --ghosts",
        model.VOICE_DROPPED: "--clean strong",
        model.DRUM_LENGTHENED: "--drum-length",
        model.NOTE_SHIFTED: ", ".join(_shift_causes().values()),
    }


@cache
def _shift_causes() -> dict[str, str]:
    """Return the option behind each cause a shift's notice names (``clean.plan_shifts``), in the summary's order.

    The one table of those options: the summary lists them, ``_convert_hints`` rewords the notices with them.
    """
    from ..stages import clean

    return {clean.ALIGNED_BY_CLEAN: "--clean", clean.ALIGNED: "--align", clean.AS_ASKED: "--shift"}


def kind_words(kind: str, *, count: int = 0, notices: Sequence[str] = ()) -> str:
    """Return a count's kind as the summary line shows it after ``count``: a clean-up change with its option.

    The kind is a key of data (``Report.counts``, ``--report``), always plural; only the
    words printed agree with ``count`` ("1 short note dropped (--clean)", ``display.plural``).
    Shifted notes name only the options their record's ``notices`` say shifted them
    ("(--shift)" for a shift asked by hand); without such notices, every option that can.
    """
    from ..errors import saved_marks
    from ..model import NOTE_SHIFTED  # loaded already: a record's counts are being shown

    words = plural(count, kind)
    flags = _kind_flags().get(kind)
    if kind == NOTE_SHIFTED:
        marked = {phrase for notice in notices for _, phrase in saved_marks(notice)}
        flags = ", ".join(flag for cause, flag in _shift_causes().items() if cause in marked) or flags
    return f"{words} ({flags})" if flags else words


def cli_words(text: str, *, task_id: str | None = None) -> str:
    """Return a library message, warning or notice with its marked phrases in the command line's words (``hints``).

    Only the spans ``errors.say`` marked are reworded; text without marks is returned as it
    is. ``task_id`` fills a ``{task_id}`` of the table (the task the error names).
    """
    marks = getattr(text, "phrases", ())
    if not marks:
        return str(text)
    parts, at = [], 0
    for start, phrase in marks:
        words = _words_for(phrase).replace("{task_id}", task_id or "TASK_ID")
        parts += [text[at:start], words]
        at = start + len(phrase)
    parts.append(text[at:])
    return "".join(parts)


def cli_message(exc: BaseException) -> str:
    """Return an error's message in the command line's words, its task filled in.

    A library error's ``message``, or a ValueError's own text (a Said when it holds phrases).
    """
    message = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    return cli_words(message, task_id=getattr(exc, "task_id", None))


def _to_stderr(line: str) -> None:
    click.echo(line, err=True)


def usage_error(exc: BaseException) -> click.UsageError:
    """Return the usage error (exit 2) that says a library error or ValueError in the command line's words."""
    return click.UsageError(cli_message(exc))


def drive(
    start: Callable[[int], Iterable[Any]],
    options: dict[str, Any],
    *,
    total: int,
    left_out: int | None = None,
    records: bool = False,
    size: int | None = None,
    again: Callable[[], str] | None = None,
    unit: str = "input",
) -> None:
    """Drive a batch: print each outcome, the summary, and exit with the contract's status.

    ``total``: the inputs found (files, tasks); ``records``: an input may hold several units
    (JSON Lines), counted as records beside the inputs. The progress bar shows on a terminal,
    without ``--quiet``, when more than one unit may come: more than one input, or records.
    ``left_out``: the .mid files midiexport wrote that convert's folder search left out, for the report.
    ``size``: the bytes of a batch's one JSON Lines input, for the bar (``ProgressBar``); None for other batches.
    ``again``: what an interrupted run says to do next, asked when it is interrupted (generate's
    rule: ``--resume``); by default ``RUN_AGAIN``.
    ``unit``: what an input is called in the line after the summary that says inputs were skipped
    (``skipped_line``): "input", or "task" for the API's commands; "record" when ``records``.

    ``start`` is called under the same signal handling as the batch it returns: what a
    command does before its batch (generate reading its music task) is interrupted as the
    batch is, said, reported (``--report``, interrupted) and ended with 130/143.
    """
    from ..io.files import signals_held
    from ..jobs.console import ProgressBar, Tally
    from ..jobs.runner import default_jobs, names_one_file

    verbose, quiet = options["verbose"], options["quiet"]
    tally = Tally()
    failures = _FailureLines(verbose, reported=options.get("report") is not None)
    several = records or total > 1
    progress = ProgressBar(total, lambda text: click.echo(text, err=True, nl=False), records=records, size=size,
                           enabled=not quiet and sys.stderr.isatty() and several)  # fmt: skip
    report = _json_report(options, left_out)
    single = names_one_file(options["out"]) and options["out"] != "-"  # an existing file is named
    previous = _catch_interruptions()
    try:
        for pending in start(options["jobs"] or default_jobs()):
            try:
                outcomes = pending.result()
            except Exception as exc:  # noqa: BLE001 - the one place errors become lines
                failures.say(exc, progress.echo, place=pending.name)
                with signals_held():  # the summary and the report count the same units
                    tally.failed += 1
                    if report is not None:
                        report.add_failure(pending.name, exc)
                progress.step(pending.inputs, partial=pending.partial, size=pending.size)
                continue
            for outcome in outcomes:
                with signals_held():  # a signal between the two would count a unit the report lacks
                    tally.add(outcome)
                    if report is not None:
                        report.add(outcome)
                _print_outcome(outcome, failures, quiet=quiet, progress=progress, single=single)
            progress.step(pending.inputs, partial=pending.partial, size=pending.size)
    except (KeyboardInterrupt, Terminated) as exc:  # both signals are ignored from here on (_interrupt)
        progress.clear()
        failures.close()
        next_step = again() if again is not None else RUN_AGAIN
        click.echo(f"interrupted: {tally.converted} converted; {next_step} (finished files are kept)", err=True)
        if report is not None:
            _finish_report(report, tally, verbose, interrupted=True)
        _exit_now(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    progress.clear()
    failures.close()
    reported = report is None or _finish_report(report, tally, verbose)
    if not quiet:
        click.echo(tally.summary(), err=True)
        if tally.skipped and not verbose and not single:  # -v and -o FILE name each file kept already
            click.echo(skipped_line(tally.skipped, "record" if records else unit), err=True)
    exit_with(failed=bool(tally.failed) or not reported)


def skipped_line(count: int, unit: str = "input") -> str:
    """Return the line after the summary of a run that skipped ``count`` inputs (``unit``) as their files exist.

    Said without -q and -v: the summary's "skipped (exist)" alone does not tell that options
    changed since the files were written were not applied (README "Re-runs").
    """
    whose = "its" if count == 1 else "their"
    return (f"{count:,} {plural(count, unit)} skipped: {whose} files exist and were kept "
            "(--overwrite replaces them; -v names them)")  # fmt: skip


def refuse_batch(exc: InputError, options: dict[str, Any], *, left_out: int | None) -> NoReturn:
    """End a batch that cannot start (an input that is no input) with its one line and exit status 1.

    The ``--report`` asked for is written all the same: that input failed, nothing was
    converted, and ``left_out`` files were left out of the folder searches.
    """
    from ..jobs.console import Tally

    fail_line(exc, options["verbose"])
    report = _json_report(options, left_out)
    if report is not None:
        tally = Tally()
        tally.failed = 1
        report.add_failure(exc.input, exc)
        _finish_report(report, tally, options["verbose"])
    exit_with(failed=True)


def exit_with(*, failed: bool) -> NoReturn:
    """End a command with the contract's status: 1 when anything failed, else 0 (the one ``sys.exit``)."""
    sys.exit(EXIT_FAILED if failed else 0)


def _json_report(options: dict[str, Any], left_out: int | None) -> Any:
    target = options.get("report")
    if target is None:
        return None
    from ..jobs.report import JsonReport  # only when a report is asked for

    command = click.get_current_context().info_name or ""
    return JsonReport(target, command, left_out=left_out)


def _finish_report(report: Any, tally: Any, verbose: bool, *, interrupted: bool = False) -> bool:
    """Write the report (of an interrupted batch: what finished, marked so); say a failure in one line.

    Return whether it was written: a report that could not be written fails the command
    (exit status 1), except after an interruption, whose status stays "interrupted".
    """
    try:
        report.finish(tally, interrupted=interrupted)
    except Exception as exc:  # noqa: BLE001 - said in one line
        fail_line(exc, verbose)
        return False
    return True


def _exit_now(status: int) -> NoReturn:
    """Exit at once after an interruption, without the interpreter's clean-up.

    Nothing is left to wait for: every file is complete or removed by now (writes
    hold the signals), and workers end with us (see ``runner.start_worker``).
    """
    flush_standard_streams()
    os._exit(status)


def flush_standard_streams() -> bool:
    """Flush stdout and stderr, each that exists; False if one could not be (a closed pipe)."""
    flushed = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the descriptor was closed when Python started
                stream.flush()
        except (OSError, ValueError):
            flushed = False
    return flushed


def _catch_interruptions() -> dict[int, Any]:
    """Make SIGTERM, and SIGINT unless it is ignored (``nohup``, ``&``), unwind a batch (``_interrupt``).

    Return the handlers they had, to be put back.
    """
    previous: dict[int, Any] = {signal.SIGTERM: signal.signal(signal.SIGTERM, _interrupt)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupt)
    return previous


def _interrupt(signum: int, frame: object) -> None:
    """Ignore SIGINT and SIGTERM from now on, then unwind: Terminated for SIGTERM, KeyboardInterrupt for SIGINT.

    Ignored at once, in the handler, not where the exception is caught: unwinding the
    batch's loop closes its generators, whose clean-up waits for the workers to end
    (``runner.run_in_processes``), and a second signal raised in there (a second Ctrl-C,
    a service manager's repeated SIGTERM) was printed as "Exception ignored in: <generator
    object run_in_processes>" with a traceback. The report is written and the process
    exits right after (``_exit_now``); ignored process-wide, as blocking them in this
    thread would not do while fetch's threads run (any thread may receive them).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class _FailureLines:
    """Say a run's failures, one line each: the first SHOWN_FAILURES (all with ``verbose``), then count the rest.

    The summary's count and ``--report`` (``reported``) keep every failure; ``close`` says
    how many lines were left out and where to see them.
    """

    def __init__(self, verbose: bool, *, reported: bool) -> None:
        self.verbose, self.reported = verbose, reported
        self.shown = self.hidden = 0

    def say(self, exc: BaseException, say: Callable[[str], None], place: str = "") -> None:
        if self.verbose or self.shown < SHOWN_FAILURES:
            fail_line(exc, self.verbose, say, place=place)
            self.shown += 1
        else:
            self.hidden += 1

    def close(self) -> None:
        if self.hidden:
            where = "see --report" if self.reported else "-v shows all, --report lists them"
            _to_stderr(f"... and {self.hidden:,} more failed ({where})")


def _print_outcome(outcome: Any, failures: _FailureLines, *, quiet: bool, progress: Any, single: bool) -> None:
    """Print what became of one result; with a progress bar, "wrote" lines give way to the bar."""
    say = progress.echo
    verbose = failures.verbose
    if outcome.error is not None:
        failures.say(outcome.error, say)
    if not quiet:  # said without -v, every one: the file kept lacks inputs given
        say_warnings(outcome.kept_other, verbose=True, say=say)
    if outcome.existing and (verbose or (single and not quiet)):
        for path in outcome.existing:
            say(f"{path} exists; kept (--overwrite replaces it)")
    for path in outcome.paths:
        if not quiet and not progress.enabled and path != "-":
            say(f"wrote {printable(path)}")
    report = outcome.report
    if report is None or quiet or outcome.skipped:  # nothing written: its repairs and warnings are no news
        return
    for line in (report.tempo, report.key, report.no_key if verbose else None):
        if line:
            say(printable(f"{outcome.place}: {line}"))
    if report.counts:
        counts = "; ".join(f"{n:,} {kind_words(kind, count=n, notices=report.notices)}"
                           for kind, n in report.counts.items())  # fmt: skip
        say(f"{printable(outcome.place)}: {counts}")
    for notice in report.notices:
        say(printable(cli_words(notice)))
    say_warnings(report.warnings, verbose=verbose, say=say)


def say_warnings(warnings: Sequence[str], *, verbose: bool, say: Callable[[str], None] | None = None) -> None:
    """Print a result's warnings, one line each (the first SHOWN_WARNINGS unless ``verbose``), through ``say``."""
    say = say or _to_stderr
    shown = warnings if verbose else warnings[:SHOWN_WARNINGS]
    for warning in shown:
        say(f"warning: {printable(cli_words(warning))}")
    if len(warnings) > len(shown):
        say(f"warning: ... and {len(warnings) - len(shown)} more (-v shows all)")


def fail_and_exit(exc: BaseException, verbose: bool) -> NoReturn:
    """Print ``exc`` as ``fail_line`` does and exit with status 1: an error that ends the command."""
    fail_line(exc, verbose)
    exit_with(failed=True)


def fail_line(exc: BaseException, verbose: bool, say: Callable[[str], None] | None = None, *, place: str = "") -> None:
    """Print an error as its one line through ``say`` (stderr by default).

    A MidiExportError is its message in the command line's words (``cli_words``), with
    ``verbose`` too; anything else is a bug, said as such (``errors.internal_error``: named
    by ``place``, the input it broke on, when known), its traceback first with ``verbose``.
    """
    from ..errors import MidiExportError, internal_error

    say = say or _to_stderr
    if isinstance(exc, MidiExportError):
        say(printable(cli_message(exc)))
        return
    if verbose:
        import traceback  # only with -v: it costs start-up

        lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
        say("\n".join(printable(line) for line in lines))
    say(printable(internal_error(exc, place)) + ("" if verbose else "; run with -v for the traceback"))
