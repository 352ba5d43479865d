"""Command line: options in, one library call, text out.

One module per command group (``convert``, ``api``: fetch and generate, ``serve``,
``info``: info and programs), the options they share (``common``) and the one place
where errors become output (``report``). A command's module is imported when the
command is named, so ``midiexport convert`` reads no server code; ``--help`` lists
them all, and none imports numpy, httpx or mido at its top.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import click

from .. import __version__

COMMANDS = {"convert": "convert", "fetch": "api", "generate": "api", "info": "info", "programs": "info",
            "serve": "serve"}  # fmt: skip
"""Each command and the module (of this package) that defines it."""


class _Commands(click.Group):
    """The command group, loading each command from its module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command: click.Command = getattr(import_module(f".{module}", __name__), cmd_name)
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="midiexport")
def main() -> None:
    """Turn the MIDI note data of Suno-style music APIs into Standard MIDI Files.

    \b
      midiexport convert record.json            writes record.mid beside it
      midiexport convert archive/ -o midi/      every .json/.jsonl/.mid/.zip in a folder
      midiexport fetch TASK_ID                  download a task (MIDIEXPORT_API_KEY)
      midiexport generate MUSIC_TASK_ID         song -> stems -> MIDI task -> .mid (costs credits)
      midiexport serve -o midi/                 receive the API's callbacks (extra [serve])
      midiexport info record.mid                what a record or a .mid holds

    Messages go to stderr, data to stdout. Exit status: 0 when every input became
    a .mid or was skipped (its files exist), 1 when any did not, 2 for a usage error,
    130/143 when interrupted (Ctrl-C/SIGTERM; finished files are kept).
    """
    from ..io.files import hold_closed_standard_fds

    hold_closed_standard_fds()


START_UP_ALLOCATIONS = 50_000
"""Objects a command line run allocates before its first cyclic garbage collection (Python's default: 700).

A convert's start-up (click, this package, numpy) allocates about 30,000 objects that live
until the end: modules, functions, classes. Python's collector examined each 700 new ones
as they came and again as they aged: 46-57 collections a convert (10 of them while click
is imported, before ``run``) that found a few hundred objects, 5-9 ms of converting a
10k-note song (docs/performance-notes.md, "Start-up: where the time goes").
"""


def _defer_first_collection() -> None:
    """Put off the first cyclic collection until START_UP_ALLOCATIONS objects; then Python's own thresholds.

    A long run (a batch, the server) collects as usual after its first collection, which
    examines the start-up's objects once. Forked workers start with the thresholds there
    were before. A threshold of 0 (collection off) is left alone.
    """
    import gc

    before = gc.get_threshold()
    if before[0] == 0 or before[0] >= START_UP_ALLOCATIONS:
        return
    raised = (START_UP_ALLOCATIONS, *before[1:])

    def restore(*_: object) -> None:
        if gc.get_threshold() == raised:  # not if someone has set other thresholds since
            gc.set_threshold(*before)
        if gc.callbacks and gc.callbacks[-1] is restore:  # removing another place would skip the next callback once
            gc.callbacks.pop()

    gc.set_threshold(*raised)
    gc.callbacks.append(restore)  # called as the first collection starts
    os.register_at_fork(after_in_child=restore)


def run() -> None:
    """Run ``main`` as the console script does, then end the process without Python's teardown.

    When the command is done (its files written and closed, its exit status known), the
    atexit handlers run, stdout and stderr are flushed, and ``os._exit`` ends the process:
    everything a normal exit does that anyone could observe, but not the freeing of every
    object and module one by one, which took 20-40 ms of a 10k-note ``convert`` (about a
    fifth of its time; issue 16's start-up target) for memory the system takes back anyway.
    A run that still has other threads, an exit status that is a message, streams that
    cannot be flushed (a closed pipe), or a profiler, tracer or ``python -i`` around it
    (they act after the program ends) leave the normal way instead.
    """
    import atexit
    import threading

    _defer_first_collection()
    try:
        main()
    except SystemExit as done:
        status = done.code
        watched = sys.getprofile() is not None or sys.gettrace() is not None or sys.flags.inspect
        if (status is not None and not isinstance(status, int)) or threading.active_count() > 1 or watched:
            raise
        atexit._run_exitfuncs()  # CPython's own exit runs these; it is the one step of it kept
        from .report import flush_standard_streams

        if not flush_standard_streams():
            raise done from None
        os._exit(status or 0)
