"""``midiexport convert``: saved JSON records and Suno's .mid exports into .mid files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from .common import ConversionCommand, build_convert_options, build_destination, nonblank_inputs, output_options
from .report import cli_words, drive, fail_and_exit, refuse_batch, usage_error


@click.command(cls=ConversionCommand)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...", callback=nonblank_inputs)
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
    from ..jobs.convert_files import find_batch_inputs

    # Several results for one -o file are found by the batch as it reads ahead (the .mid
    # stems of one song make one result, issue 14; a lone input is read first to count its songs).
    destination = build_destination(options, several=False)
    problem = destination.stdin_problem(inputs)
    if problem is not None:
        raise click.UsageError(cli_words(problem))
    try:
        found = find_batch_inputs(inputs, destination=destination, split=options["split"])
    except Exception as exc:  # noqa: BLE001 - a bug (input errors are the refusal): one line, exit 1
        fail_and_exit(exc, options["verbose"])
    if found.refusal is not None:  # no batch: its one line, and the report asked for
        refuse_batch(found.refusal, options, left_out=found.written_left_out)
    for line in [] if options["quiet"] else found.left_out_lines():
        click.echo(line, err=True)
    sources = found.sources
    # The bar counts inputs, known now; JSON Lines' records are counted beside them as they are read.
    drive(lambda jobs: _batch(sources, options, destination, jobs), options, total=len(sources),
          left_out=found.written_left_out, records=any(source.lines for source in sources),
          size=_lines_size(sources))  # fmt: skip


def _lines_size(sources: Any) -> int | None:
    """The bytes of a batch's one JSON Lines input when it is a regular file (the bar follows them), else None.

    A file named is sized by the search's own stat (``InputFile.size``); one found in a folder is stat'ed here.
    """
    import os
    import stat

    from ..io.files import STDIN

    if len(sources) != 1 or not sources[0].lines or sources[0].path == STDIN:
        return None
    if sources[0].file_id is not None:  # named: stat'ed by the search
        return sources[0].size or None
    try:
        found = os.stat(sources[0].path)
    except OSError:  # gone: the bar counts records only
        return None
    return found.st_size if stat.S_ISREG(found.st_mode) and found.st_size else None


def _batch(sources: Any, options: dict[str, Any], destination: Any, jobs: int) -> Iterable[Any]:
    from ..errors import OutputError
    from ..jobs.convert_files import run_batch

    try:
        return run_batch(sources, build_convert_options(options), destination, jobs=jobs)
    except OutputError as exc:  # before any work: several results for one -o file
        raise usage_error(exc) from None
