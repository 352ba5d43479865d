"""Output names: the default ones, and names from a template (``--name "{title} - {task_id}"``).

Fields (options.NAME_FIELDS): ``stem`` the input file's name without its extension,
``record`` the record's numbers inside its input ("12" for line 12, "" for a file of
one record), ``task_id``, ``audio_id``, ``title`` (the song's title, else its task id),
``instrument`` (with --split; without it, the field is empty). A missing value is
empty. The result is made safe like every name (``files.safe_name``).

A JSON record inside a .zip is a song of the archive, named like its .mid songs after its
title, else its task id; one with neither takes its member's name (``titled_after_member``),
for ``convert`` and ``info`` alike.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePath

from ..io import files
from ..model import Record
from ..options import name_fields
from ..stages.convert import song_title


def fill(template: str, *, fallback: str, **values: str | None) -> str:
    """Return the template with its fields filled in, made safe as a file name (no suffix)."""
    return files.safe_name(template.format_map({k: v or "" for k, v in values.items()}).strip(" -_"),
                           fallback=fallback)  # fmt: skip


def record_values(record: Record, *, stem: str, number: str) -> dict[str, str | None]:
    """Return a record's template fields (without ``instrument``)."""
    return {"stem": stem, "record": number, "task_id": record.task_id, "audio_id": record.audio_id,
            "title": song_title(record), "instrument": ""}  # fmt: skip


def name_record(template: str, record: Record, *, fallback: str, stem: str,
                number: str) -> tuple[str, dict[str, str | None]]:  # fmt: skip
    """Name a record by ``template``: the filled-in name (``fallback`` when it comes out empty) and its fields.

    ``stem`` and ``number`` are the fields the record does not hold (see ``record_values``).
    """
    values = record_values(record, stem=stem, number=number)
    return fill(template, fallback=fallback, **values), values


def known_before_reading(template: str, fields: set[str]) -> bool:
    """True when a template uses only ``fields``, whose values are known before any work."""
    return name_fields(template) <= fields


def titled_after_member(record: Record, member_name: str) -> Record:
    """Return a record read from a .zip member, titled after the member's stem when it has no title or task id.

    Without it the song's name would fall back on ``record.source`` ("songs.zip: record.json"),
    which names the archive and the member together and becomes no file name a user expects
    ("songs.zip_ record.mid"); the member alone is what its file would be called.
    """
    if record.title or record.task_id:
        return record
    return dataclasses.replace(record, title=PurePath(member_name).stem)
