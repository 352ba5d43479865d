"""Output names: the default ones, and names from a template (``--name "{title} - {task_id}"``).

Fields (options.NAME_FIELDS): ``stem`` the input file's name without its extension,
``record`` the record's numbers inside its input ("12" for line 12, "" for a file of
one record), ``task_id``, ``audio_id``, ``title`` (the song's title, else its task id),
``instrument`` (with --split; without it, the field is empty). A missing value is
empty; a name that comes out empty is the default one. The result is made safe like
every name (``files.safe_name``).

The same fields name a song read from .mid stems or a .zip (``convert_files.render_stems``):
``stem`` is the archive's name, or what a song's stem files share ("Song" for
"Song (Bass).mid"; the default name is the song's title, but a song's only stem in the
run is named as its file, "Song (Bass)": ``convert_files._lone_stems``); ``record`` is a
JSON record's number in a .zip member of several, else empty; ``task_id`` and
``audio_id`` are empty for a .mid, which holds neither.

A JSON record inside a .zip is a song of the archive, titled like its .mid songs after its
title, else its task id; one with neither takes its member's name (``titled_after_member``),
for ``convert`` and ``info`` alike. A member of one record names its file by that title;
a member of several names each as a plain file of the same content does (``member_stem``):
the member's name plus the record's number ("arr-2"), or its line's number for a member
read as JSON Lines (``json_input``, "saved-3"), as a plain .jsonl.
"""

from __future__ import annotations

import dataclasses
import re
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


def record_number(record: Record, *, many: bool) -> str:
    """Return a record's numbers in its input ("12" for line 12, "3-2" for record 2 of line 3); "" unless ``many``."""
    return "-".join(re.findall(r"\d+", record.locator)) if many else ""


def known_before_reading(template: str, fields: set[str]) -> bool:
    """True when a template uses only ``fields``, whose values are known before any work."""
    return name_fields(template) <= fields


def place_name(template: str | None, default: str, *, fallback: str | None = None, **values: str) -> str | None:
    """Return the name a record or task takes from its place alone, or None when only its content tells.

    ``default`` without a template; a template of the fields in ``values`` only, filled in
    with them (``fallback``, else ``default``, when it comes out empty). Convert's values
    are ``stem`` and ``record`` (``default``: the file's stem plus the record's number,
    ``numbered_stem``, made safe): how a run plans an input's name before reading it
    (``convert_files.plan_unit``) and how a JSON line that cannot be read claims its name,
    the same rule, so the two agree. Fetch's are ``task_id`` and ``stem``.
    """
    if template is None:
        return default
    if known_before_reading(template, set(values)):
        return fill(template, fallback=default if fallback is None else fallback, **values)
    return None


def member_stem(record: Record, member_name: str, *, number: str) -> str:
    """Return the default file name (no suffix, not made safe) of a JSON record read from a .zip member.

    A member of several records (``number``: the record's number, ``record_number``) names
    each as a plain file of the same content does (``convert_files.record_stem``): the
    member's stem plus the number, "arr-2" for the second record of "arr.json", "saved-3"
    for line 3 of "saved.jsonl", whatever their titles. A name so depends on the record's
    place alone: a line that failed on a first run takes no name from the lines after it,
    so a re-run after mending it writes it under its own name. A member of one record is
    named by its title, else its task id, else the member's stem.
    """
    if not number and (record.title or record.task_id):
        return song_title(record)
    return numbered_stem(member_name, number)


def numbered_stem(name: str, number: str) -> str:
    """Return a file name's stem and a record's number joined ("saved.jsonl", "3" -> "saved-3"; no number: "saved")."""
    return "-".join(p for p in (PurePath(name).stem, number) if p)


def titled_after_member(record: Record, member_name: str) -> Record:
    """Return a record read from a .zip member, titled after the member's stem when it has no title or task id.

    Without it the song's name would fall back on ``record.source`` ("songs.zip: record.json"),
    which names the archive and the member together and becomes no file name a user expects
    ("songs.zip_ record.mid"); the member alone is what its file would be called.
    """
    if record.title or record.task_id:
        return record
    return dataclasses.replace(record, title=PurePath(member_name).stem)
