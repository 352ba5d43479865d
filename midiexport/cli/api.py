"""The commands that ask the API: ``fetch`` (tasks by id) and ``generate`` (song -> MIDI)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from ..defaults import DEFAULT_BASE_URL, DEFAULT_POLL_INTERVAL_S, DEFAULT_TIMEOUT_S, MAX_ANSWER_BYTES
from ..display import plural, printable
from .common import (
    NOT_TEMPO_MAPPED,
    OUT_FORMS,
    ConversionCommand,
    Seconds,
    build_convert_options,
    build_destination,
    help_for,
    output_options,
    unused_help,
    with_options,
)
from .report import RUN_AGAIN, cli_message, drive, fail_and_exit, usage_error

# What fetch and generate do with the options they share with convert that read input files
# (cli.common.output_options): nothing, as the API's answers are JSON records, never files.
API_HELP = {
    "tempo_map": unused_help("fetch or generate", f"the API's answers are {NOT_TEMPO_MAPPED}."),
    "max_input_mb": unused_help("fetch or generate", f"an API answer is refused past {MAX_ANSWER_BYTES // 2**20} MiB "
                                "decoded."),
}  # fmt: skip

# What generate does with the options whose convert/fetch help speaks of inputs and batches.
GENERATE_HELP = {
    "out": f"{OUT_FORMS} Default: the current folder. "
    "The chain's state (MUSIC_TASK_ID.generate.json, or the .mid's name with .generate.json) is kept there.",
    "jobs": unused_help("generate", "it asks for one MIDI task and converts its answer in this process."),
}


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options shared by ``fetch`` and ``generate``: the key, the host, the waits, the kept JSON."""
    options = [
        click.option("--api-key", envvar="MIDIEXPORT_API_KEY", show_envvar=True, metavar="KEY",
                     help="API key, sent only in the Authorization header."),
        click.option("--base-url", envvar="MIDIEXPORT_BASE_URL", show_envvar=True, default=DEFAULT_BASE_URL,
                     show_default=True, help="API host; another provider of the same API goes here."),
        click.option("--timeout", "timeout_s", type=Seconds(1), default=DEFAULT_TIMEOUT_S, show_default=True,
                     help="Longest wait for one task in seconds, polling included."),
        click.option("--poll-interval", "poll_interval_s", type=Seconds(0.01), default=DEFAULT_POLL_INTERVAL_S,
                     show_default=True, help="Seconds between polls of a pending task (the API advises 10-30)."),
        click.option("--save-json/--no-save-json", default=True, show_default=True,
                     help="Keep the raw answer beside the .mid (the API forgets tasks after 14 days)."),
    ]  # fmt: skip
    return with_options(command, options)


def _check_api(options: dict[str, Any]) -> None:
    """Refuse a missing or unsendable key, or a base URL unfit for it, before anything is sent."""
    from ..io.http import check_api_key, check_base_url

    if not options["api_key"]:
        raise click.UsageError("no API key: pass --api-key or set MIDIEXPORT_API_KEY")
    try:
        check_api_key(options["api_key"])
    except ValueError as exc:
        raise usage_error(exc) from None
    try:
        check_base_url(options["base_url"])
    except ValueError as exc:  # say where the URL came from: an option or the environment
        raise click.UsageError(f"{cli_message(exc)} (set by --base-url or MIDIEXPORT_BASE_URL)") from None


@help_for(**API_HELP)
@click.command(cls=ConversionCommand)
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
    from ..jobs.fetch_tasks import run_fetch, unique_tasks

    _check_api(options)
    blank = [repr(t) for t in task_ids if not t.strip()]
    if blank:
        raise click.UsageError(f"a task id is empty ({', '.join(blank)}); give the id the API returned")
    unique, repeated = unique_tasks(task_ids)
    if repeated and not options["quiet"]:
        click.echo(f"{repeated} task {plural(repeated, 'id')} given again fetched once", err=True)
    destination = build_destination(options, several=len(unique) > 1, default_folder=".")
    fetch_options = _fetch_options(options, music_task=options["music_task"])
    status = PollStatus(enabled=not options["quiet"])
    convert_options = build_convert_options(options)
    drive(lambda jobs: run_fetch(unique, fetch_options, convert_options, destination, progress=status),
         options, total=len(unique), unit="task")  # fmt: skip


@help_for(**API_HELP, **GENERATE_HELP)
@click.command(cls=ConversionCommand)
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
    from ..errors import ChoiceNeeded, InputError
    from ..jobs import generate as chain_job

    _check_api(options)
    if not music_task.strip():
        raise click.UsageError("the music task id is empty; give the id the API returned")
    if options["stem"] is not None and not options["stem"].strip():
        raise click.UsageError("--stem is empty; give a stem's name (Bass, Drums, ...) or leave it out for all stems")
    if options["callback_url"] is not None:
        _check_callback_url(options["callback_url"])
    destination = build_destination(options, several=False, default_folder=".")
    wanted = chain_job.GenerateOptions(
        music_task=music_task.strip(), fetch=_fetch_options(options, music_task=None), audio_id=options["audio_id"],
        separation_task=options["separation_task"], stem=options["stem"], callback_url=options["callback_url"],
    )  # fmt: skip
    try:  # task ids are told even with -q: they are what saves paying twice
        chain = chain_job.open_chain(wanted, options["out"], resume=options["resume"],
                                     tell=lambda line: click.echo(line, err=True),
                                     progress=PollStatus(enabled=not options["quiet"]))  # fmt: skip
    except ChoiceNeeded as exc:
        raise usage_error(exc) from None
    except InputError as exc:  # an unreadable state file
        fail_and_exit(exc, options["verbose"])
    with chain.client:
        paid = chain_job.spending(chain.state)
        if paid and not options["yes"] and not sys.stdin.isatty():
            raise click.UsageError(f"generate spends credits ({'; '.join(paid)}): pass --yes to allow it when "
                                   "there is no terminal to ask on")  # fmt: skip

        def start(jobs: int) -> Iterator[Any]:  # prepared in drive: a signal while polling the music task ends the run
            failed = _prepare(chain, options)
            return chain_job.run_generate(chain, build_convert_options(options), destination, failed=failed)

        drive(start, options, total=1, again=lambda: _generate_again(chain.path), unit="task")


def _prepare(chain: Any, options: dict[str, Any]) -> Any:
    """Read the music task and choose the song, then ask before spending; return the error met, or None.

    A choice needed is a usage error. Declined (or Ctrl-C at the question): said with how
    to go on, as the state saved by then makes the same command without --resume refused.
    """
    from ..errors import ChoiceNeeded
    from ..jobs import generate as chain_job

    try:
        failed = chain_job.prepare(chain)
    except ChoiceNeeded as exc:
        raise usage_error(exc) from None
    if failed is None and chain_job.spending(chain.state) and not options["yes"]:
        try:
            click.confirm(f"This spends credits: {'; '.join(chain_job.spending(chain.state))}. Go on?", err=True,
                          abort=True)  # fmt: skip
        except click.Abort:
            click.echo(f"nothing was sent that costs credits; {_generate_again(chain.path)}", err=True)
            raise
    return failed


def _generate_again(state_file: Path) -> str:
    """What an interrupted generate says to do next (README "Generating").

    With its state saved, the same command without --resume is refused, so the line names it.
    """
    if os.path.lexists(state_file):
        return "run the same command with --resume to go on from the step it reached"
    return RUN_AGAIN


def _check_callback_url(url: str) -> None:
    """A UsageError unless ``url`` is an http(s) address with a host (``split_http_url``): the API is sent it as is."""
    from ..io.http import split_http_url

    try:
        split_http_url(url.strip())
    except ValueError:
        raise click.UsageError(f"--callback-url {url!r} is not an http(s) URL with a host, such as a running "
                               "`midiexport serve` (https://host:port/callback)") from None  # fmt: skip


def _fetch_options(options: dict[str, Any], *, music_task: str | None) -> Any:
    from ..jobs.fetch_tasks import FetchOptions

    asked = {"concurrency": options["jobs"]} if options["jobs"] else {}  # else FetchOptions' own default
    return FetchOptions(
        api_key=options["api_key"], base_url=options["base_url"], wait=options.get("wait", True),
        timeout_s=options["timeout_s"], poll_interval_s=options["poll_interval_s"], music_task=music_task,
        save_json=options["save_json"] and options["out"] != "-", **asked,
    )  # fmt: skip


class PollStatus:
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
