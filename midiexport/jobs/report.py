"""The JSON report of a batch (``--report FILE``): what became of each input or task.

For scripts that should not parse stderr prose. One object::

    {"command": "convert", "version": "0.1.0", "interrupted": false, "written_mid_left_out": 0,
     "results": [{"input": "a.json", "outcome": "converted", "files": ["a.mid"], "existing": [],
                  "notes": 2214, "counts": {"invalid notes left out": 1, "overlapping notes cut": 3},
                  "notes_left_out": {"pitch": 1},
                  "warnings": ["a.json: \\"Drums\\", note 17: pitch 128 is outside 0-127"], "error": null}],
     "summary": {"converted": 1, "notes": 2214, "repaired": 1, "repairs": 3,
                 "notes_left_out": {"pitch": 1}, "skipped_exist": 0, "failed": 0}}

``written_mid_left_out`` (convert only) counts the .mid files midiexport wrote that the
batch left out (``convert_files.BatchInputs``): those its folder searches found, and those named
that another input of the run writes again; no input, so in no result.
``interrupted`` is true when Ctrl-C or SIGTERM stopped the batch: the results and totals
are then those finished before it. ``outcome`` is "converted", "skipped" (every file
existed and was kept) or "failed";
``counts`` holds the repairs and other news of the record by kind (model.py's labels).
A name holding bytes that are not UTF-8 is written with each such byte as ``\\xNN`` (four
characters), as the terminal lines show it (``display.json_text``): the report stays UTF-8.
``counts``, ``warnings`` and ``error`` are in the library's words, which name no
command-line option; the stderr lines say the same with the flags (``cli/report.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..defaults import WRITTEN_JSON_HEAD_BYTES
from ..display import json_text, printable
from ..errors import MidiExportError, OutputError, internal_error
from ..io import files

if TYPE_CHECKING:  # a folder search asks ``opens_a_report`` without the console's import
    from .console import Tally

STDOUT = "-"
REPORT_START = b'{\n  "command": '  # how every report this writer makes begins (``finish``)
OTHER_DATA = "holds something other than a midiexport report"
# How every report opens after ``REPORT_START`` (orjson keeps the keys in the order ``JsonReport``
# sets them): its command, then "version", a string (midiexport's). A song record never opens so.
_REPORT_OPENING = re.compile(re.escape(REPORT_START) + rb'"[a-z]+",\n  "version": "[^"\\\n]*"')


def holds_other_data(target: str) -> bool:
    """Whether ``target`` must not receive a report: a file is there that no report of ours wrote.

    A report replaces its target whole, so a path that names a record, a .mid, a saved
    answer or a generate state file would lose it; an earlier report, an empty file or
    no file at all is fine. Asked before the batch (an input named by mistake) and again
    before writing (a file the run itself wrote there meanwhile).
    """
    import os
    import stat

    if target == STDOUT:
        return False
    try:
        if not stat.S_ISREG(os.stat(target).st_mode):  # no file, a folder, a device or a pipe: never read here
            return False
        with open(target, "rb") as handle:
            head = handle.read(WRITTEN_JSON_HEAD_BYTES)
    except OSError:  # unreadable: writing will say why
        return False
    return bool(head) and not opens_a_report(head)


def opens_a_report(head: bytes) -> bool:
    """True when ``head``, a file's first bytes, opens a report this module writes.

    The one test of "is this our report": a folder search leaves such a file out
    (``convert_files``), and ``--report`` may replace it (``holds_other_data``).
    """
    return _REPORT_OPENING.match(head) is not None


class JsonReport:
    """Collects outcomes; ``finish`` writes the report to ``target`` (a path, or "-" for stdout)."""

    def __init__(self, target: str, command: str, *, left_out: int | None = None) -> None:
        """``left_out``: the .mid files midiexport wrote that a folder search left out (convert); None: no search."""
        from .. import __version__

        self.target = target
        self.data: dict[str, Any] = {"command": command, "version": __version__, "interrupted": False}
        if left_out is not None:
            self.data["written_mid_left_out"] = left_out
        self.data["results"] = []

    def add(self, outcome: Any) -> None:
        """Add one Outcome (runner.Outcome)."""
        report = outcome.report
        kind = "skipped" if outcome.skipped else "failed" if outcome.error is not None else "converted"
        self.data["results"].append({
            "input": outcome.place,
            "outcome": kind,
            "files": [p for p in outcome.paths if p != STDOUT],
            "existing": list(outcome.existing),
            "notes": outcome.notes,
            "counts": dict(report.counts) if report else {},
            "notes_left_out": dict(report.left_out) if report else {},
            "warnings": (list(report.warnings) if report else []) + list(outcome.kept_other),
            "error": str(outcome.error) if outcome.error is not None else None,
        })  # fmt: skip

    def add_failure(self, name: str, error: BaseException) -> None:
        """Add a unit that failed as a whole (unreadable input, a failed download, a bug: said as its line is)."""
        said = str(error) if isinstance(error, MidiExportError) else internal_error(error, name)
        entry = {"input": name, "outcome": "failed", "files": [], "existing": [], "notes": 0, "counts": {},
                 "notes_left_out": {}, "warnings": [], "error": said}  # fmt: skip
        self.data["results"].append(entry)

    def finish(self, tally: Tally, *, interrupted: bool = False) -> None:
        """Write the report with the summary's totals, all at once (never half a file). Raises OutputError.

        ``interrupted``: the batch was stopped; what finished before is written, so marked.
        """
        import orjson

        self.data["interrupted"] = interrupted
        self.data["summary"] = tally.totals()
        data = orjson.dumps(json_text(self.data), option=orjson.OPT_INDENT_2) + b"\n"
        if holds_other_data(self.target):
            raise OutputError(
                f"{printable(self.target)}: {OTHER_DATA}; kept, and the report not written", path=self.target
            )
        if self.target == STDOUT:
            files.write_stdout(data)
        else:
            files.write_atomic(Path(self.target), data, overwrite=True)
