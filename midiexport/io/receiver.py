"""Receiver: what ``midiexport serve`` does with a callback before answering it.

A callback is checked (signature, timestamp window), then its raw body is written
(a temporary file linked into place) and flushed to the disk with its name before the
server answers 200, so an accepted callback survives a crash of the process or the
machine. Flushes are shared: one round covers every body written before it began.
Bodies are stored by task and content::

    OUT/callbacks/<safe task id>/<sha256 of the body, 16 hex>.json    the raw body
    OUT/callbacks/<safe task id>/<same>.done                           its outcome, once handled

The same body twice is a repeat (counted, nothing new written); a different body for
the same task is kept beside the first, never replacing it. A body without a ``.done``
is backlog: the server converts it on start. Nothing here knows HTTP or ASGI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from . import files

CALLBACKS_FOLDER = "callbacks"
RAW_SUFFIX, DONE_SUFFIX = ".json", ".done"
DIGEST_HEX = 16  # 64 bits of SHA-256 name a body: collisions need ~4e9 bodies for one task
DEFAULT_WINDOW_S = 300.0  # no replay window is documented; five minutes, as common webhook schemes use


@dataclass(frozen=True)
class Stored:
    """One accepted callback: where its body lies, and whether it is new.

    ``repeat``: the same body was stored before. ``variant``: the task already had a
    different body, and this one was kept beside it.
    """

    path: Path
    repeat: bool
    variant: bool


class SignatureError(InputError):
    """A callback's signature is missing, wrong, or its timestamp is outside the window."""


def sign(key: str, task_id: str, timestamp: str) -> str:
    """Return the API's signature: base64(HMAC-SHA256(key, task_id + "." + timestamp))."""
    mac = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def check_signature(
    key: str, task_id: str, timestamp: str | None, signature: str | None, *, now_s: float,
    window_s: float = DEFAULT_WINDOW_S,
) -> None:  # fmt: skip
    """Raise SignatureError unless ``signature`` signs ``task_id`` at a ``timestamp`` within the window.

    ``timestamp`` is Unix seconds as sent in X-Webhook-Timestamp; the comparison of
    signatures takes constant time.
    """
    if not timestamp or not signature:
        raise SignatureError("unsigned callback")
    try:
        sent_s = float(timestamp)
    except ValueError:
        raise SignatureError("the timestamp is not a number") from None
    if not abs(now_s - sent_s) <= window_s:  # also refuses nan
        raise SignatureError(f"the timestamp is outside the {window_s:g} s window (a replay?)")
    if not hmac.compare_digest(sign(key, task_id, timestamp).encode(), signature.strip().encode()):
        raise SignatureError("wrong signature")


class CallbackStore:
    """Raw callbacks on disk, by task and content; see the module docstring for the layout."""

    def __init__(self, out_dir: Path) -> None:
        self.folder = out_dir / CALLBACKS_FOLDER

    def store(self, task_id: str, body: bytes) -> Stored:
        """Write ``body`` (atomically) unless the same body is stored; return what happened.

        The body survives a crash of the process at once, and of the machine once
        ``files.make_durable`` has flushed it (the server does that for many at a time).
        Raises OutputError when the folder cannot be written.
        """
        task_folder = self.folder / files.safe_name(task_id, fallback="task")
        name = hashlib.sha256(body).hexdigest()[:DIGEST_HEX] + RAW_SUFFIX
        path = task_folder / name
        if path.exists():
            return Stored(path, repeat=True, variant=False)
        variant = task_folder.is_dir() and any(task_folder.glob("*" + RAW_SUFFIX))
        try:
            files.write_atomic(path, body)
        except files.FileExists:  # the same body arrived twice at once: the other one stored it
            return Stored(path, repeat=True, variant=False)
        return Stored(path, repeat=False, variant=variant)

    def backlog(self) -> Iterator[Path]:
        """Yield the stored bodies not yet handled, oldest first."""
        if not self.folder.is_dir():
            return
        raws = [p for p in self.folder.glob("*/*" + RAW_SUFFIX) if not done_path(p).exists()]
        yield from sorted(raws, key=_mtime)

    def sweep(self) -> int:
        """Remove temporary files left by a killed process (no live writer may share the folder); return how many."""
        leftovers = [*self.folder.glob(f"*/{files.TEMP_PREFIX}*"), *self.folder.parent.glob(f"{files.TEMP_PREFIX}*")]
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def first_body(self, raw_path: Path) -> bool:
        """True when ``raw_path`` is the earliest body stored for its task (it takes the plain name)."""
        bodies = sorted(raw_path.parent.glob("*" + RAW_SUFFIX), key=lambda p: (_mtime(p), p.name))
        return not bodies or bodies[0] == raw_path


def done_path(raw_path: Path) -> Path:
    """Return the outcome marker of a stored body."""
    return raw_path.with_suffix(DONE_SUFFIX)


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
