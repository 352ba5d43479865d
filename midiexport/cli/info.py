"""``midiexport info`` and ``midiexport programs``: what a file holds, what --program accepts."""

from __future__ import annotations

import click

from .common import max_input_option, nonblank_inputs
from .report import exit_with, fail_line, say_warnings


@click.command()
def programs() -> None:
    """List the program names --program accepts: GM programs, other spellings, stem and drum names."""
    from ..gm import program_table

    click.echo("\n".join(program_table()))


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...", callback=nonblank_inputs)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (channels 0-based).")
@max_input_option
def info(files: tuple[str, ...], as_json: bool, max_input_mb: float) -> None:
    """Show what a record or a .mid holds.

    Per instrument or track: name, program, channel, notes, pitch range, first and
    last note time; plus status, task id and duration.

    \b
      midiexport info task.json song.mid
      midiexport info --json song.mid | jq '.[0].parts'
    """
    from ..errors import OutputError
    from ..io.files import find_inputs, write_stdout
    from ..jobs.info import Summary, format_table, summaries_json, summarize_file

    summaries: list[Summary] = []
    failed = False
    for name in files:
        try:
            for source in find_inputs([name]):
                for item in summarize_file(source, max_input_mb=max_input_mb):
                    say_warnings(item.warnings, verbose=True)  # all (info has no -v): a .zip's non-records, no failure
                    if item.error is not None:  # a .zip member or a JSON Lines line failed alone; the others go on
                        fail_line(item.error, False)
                        failed = True
                    elif item.summary is not None:
                        summaries.append(item.summary)
        except Exception as exc:  # noqa: BLE001 - one line per file, the others go on
            fail_line(exc, False, place=name)
            failed = True
    text = summaries_json(summaries) if as_json else "\n\n".join(format_table(s) for s in summaries)
    try:
        if as_json or summaries:
            write_stdout((text + "\n").encode("utf-8", "backslashreplace"))
    except OutputError as exc:
        fail_line(exc, False)
        failed = True
    exit_with(failed=failed)
