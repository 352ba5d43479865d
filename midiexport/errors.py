"""Every exception midiexport raises on purpose.

The tree, so callers catch at the level they need::

    MidiExportError
    ├── InputError          an input cannot be read or is not a MIDI record
    ├── RecordError         a record has nothing (valid) to convert
    │   ├── TaskPending     the task is still running
    │   │   └── StillPending    ... when a wait for it ran out (also a NetworkError)
    │   ├── TaskFailed      the API reports the task failed
    │   ├── EmptyRecord     no instruments, no valid notes, or a link instead of notes
    │   └── InvalidNote     a note with no obvious repair, under ``strict``
    ├── FetchError          the API could not be asked or answered an error
    │   ├── ApiError        the API answered, with an error code
    │   └── NetworkError    no usable answer: connection, timeout, not the API
    │       ├── StillPending    the task was still pending when the wait ran out
    │       └── UnconfirmedRequest  a POST was sent but its answer never came: it may
    │                               have created (and charged) a task; never resent
    ├── OutputError         a file cannot be written (exists, not writable, ...)
    ├── WorkerLost          a worker process died (killed) before it returned a result
    └── ChoiceNeeded        the user must choose (a song, a stem): a usage problem

Each message is one sentence: what failed, where, and what to do next. Context
travels as attributes so a caller need not parse the text; ``hint`` holds the "what to
do next" (also in the message) where the remedy is a setting the caller can change; not
every error that gives advice sets one. Messages reach a
Python caller, ``serve``'s log and answers and the ``--report`` as they are, so they
name no command-line flag: a setting is named in words ("raise the timeout"), a
``Phrase`` constant defined where it is said. A message that holds such phrases is
built with ``say``, which marks where each one stands (a ``Said``), so the command line
rewords exactly those spans with its flags (``cli/report.py``'s ``hints``, keyed by the
constants) and never a path or a name that happens to hold the same words. Warnings and
notices (``model.Report``) are built the same way. Library code never prints, exits or
imports click; ``cli/report.py`` turns these into one line each.
"""

from __future__ import annotations


class Phrase(str):
    """Words that name a setting or say what to do, true for every caller ("raise the timeout").

    A constant, defined once where it is said; a front end may reword it (the command
    line names its flag). Compares and prints as its words.
    """

    __slots__ = ()


class Said(str):
    """Text whose phrases are marked: ``phrases`` holds (start index, Phrase) in order.

    Made by ``say``; compares, hashes, prints and pickles as its words, marks kept. Any
    other str operation (slicing, an f-string, ``+``) gives a plain str without marks.
    """

    phrases: tuple[tuple[int, Phrase], ...] = ()

    def __reduce__(self) -> tuple[object, ...]:
        return (_said, (str(self), self.phrases))


def _said(text: str, phrases: tuple[tuple[int, Phrase], ...]) -> Said:
    said = Said(text)
    said.phrases = phrases
    return said


def say(*parts: str) -> Said:
    """Join ``parts`` into one text, marking where each Phrase stands (and keeping a Said part's marks)."""
    marks: list[tuple[int, Phrase]] = []
    at = 0
    for part in parts:
        if isinstance(part, Phrase):
            marks.append((at, part))
        elif isinstance(part, Said):
            marks += [(at + start, phrase) for start, phrase in part.phrases]
        at += len(part)
    return _said("".join(parts), tuple(marks))


def saved_marks(text: str) -> list[tuple[int, str]]:
    """Return ``text``'s marks as plain data to save beside it: (start index, phrase words); [] for plain text."""
    return [(start, str(phrase)) for start, phrase in getattr(text, "phrases", ())]


def with_marks(text: str, marks: object) -> Said:
    """Return ``text`` with the marks ``saved_marks`` gave, as read back from a file.

    A mark is kept only where its words stand in ``text``, after the mark before it (a
    file may have been edited); the others are dropped, so a front end rewords those
    words and nothing else.
    """
    saved = marks if isinstance(marks, list) else []
    found = sorted((mark[0], mark[1]) for mark in saved if _is_mark(mark))
    kept: list[tuple[int, Phrase]] = []
    for start, words in found:
        if text.startswith(words, start) and (not kept or start >= kept[-1][0] + len(kept[-1][1])):
            kept.append((start, Phrase(words)))
    return _said(str(text), tuple(kept))


def _is_mark(mark: object) -> bool:
    """True for a saved mark: [start index >= 0, non-empty words]."""
    return (isinstance(mark, (list, tuple)) and len(mark) == 2 and type(mark[0]) is int and mark[0] >= 0
            and isinstance(mark[1], str) and bool(mark[1]))  # fmt: skip


def without_prefix(text: str, prefix: str) -> str:
    """Return ``text`` without a leading ``prefix``, its marks kept (``str.removeprefix`` drops them)."""
    if not text.startswith(prefix):
        return text
    cut = len(prefix)
    return _said(text[cut:], tuple((start - cut, phrase) for start, phrase in getattr(text, "phrases", ())))


class MidiExportError(Exception):
    """Base of every error midiexport raises on purpose."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint  # what to do next, in words true for every caller (a Phrase or a Said); part of ``message``

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuild from the message and attributes: subclasses take other arguments,
        # and batch workers send errors between processes.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[MidiExportError], message: str, state: dict[str, object]) -> MidiExportError:
    error = cls.__new__(cls)
    MidiExportError.__init__(error, message)
    error.__dict__.update(state)
    return error


class InputError(MidiExportError):
    """An input cannot be read, is not JSON, or holds no MIDI record."""

    def __init__(self, message: str, *, input: str = "", line: int | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.input = input
        self.line = line


class RecordError(MidiExportError):
    """A record was read but has nothing valid to convert."""

    def __init__(self, message: str, *, task_id: str | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.task_id = task_id


class TaskPending(RecordError):
    """The task has not finished: its MIDI data is not there yet."""


class TaskFailed(RecordError):
    """The API reports that the task failed (successFlag 2 or 3, or an error code)."""

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        super().__init__(message, task_id=task_id)
        self.error_code = error_code
        self.error_message = error_message


class EmptyRecord(RecordError):
    """The record has no instruments, no valid notes, or only a link to a file."""


class InvalidNote(RecordError):
    """A note with no obvious repair, raised instead of a warning under ``strict``."""

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        instrument: str = "",
        note_index: int = -1,
        field: str = "",
        value: object = None,
    ) -> None:
        super().__init__(message, task_id=task_id)
        self.instrument = instrument
        self.note_index = note_index
        self.field = field
        self.value = value


class FetchError(MidiExportError):
    """The API could not be asked, or answered with an error."""

    def __init__(self, message: str, *, task_id: str | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.task_id = task_id


class ApiError(FetchError):
    """The API answered with an error: an HTTP status or a body ``code`` that is not 200."""

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        code: int | None = None,
        http_status: int | None = None,
        api_message: str | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, task_id=task_id, hint=hint)
        self.code = code
        self.http_status = http_status
        self.api_message = api_message


class NetworkError(FetchError):
    """No usable answer: the host cannot be reached, timed out, or is not the API.

    ``retry``: another attempt may pass (a refused connection, a timeout, a 502 page),
    as opposed to a final refusal (a redirect to another host, a body over the size
    limit, the deadline). ``sent``: the request may have reached the server (the
    connection broke or timed out after it was sent), so only an idempotent request
    may be sent again.
    """

    def __init__(self, message: str, *, task_id: str | None = None, retry: bool = False, sent: bool = False,
                 hint: str = "") -> None:  # fmt: skip
        super().__init__(message, task_id=task_id, hint=hint)
        self.retry = retry
        self.sent = sent


class UnconfirmedRequest(NetworkError):
    """A request that may create something (a POST) was sent, but no answer said what became of it.

    It may have created a task, and the API charges credits per task, so it is never
    sent again on its own. ``method`` and ``path`` name the request, ``task_id`` the
    task it was about (the job's input, e.g. the separation task a MIDI task is asked
    for), ``reason`` why its fate is unknown. The message says how to find out whether
    the task exists before asking again.
    """

    def __init__(self, message: str, *, task_id: str | None = None, method: str = "POST", path: str = "",
                 reason: str = "", hint: str = "") -> None:  # fmt: skip
        super().__init__(message, task_id=task_id, retry=False, sent=True, hint=hint)
        self.method = method
        self.path = path
        self.reason = reason


class StillPending(TaskPending, NetworkError):
    """The task was still pending when the wait for it ran out (``timeout_s``, in seconds).

    A TaskPending, as a record of it converted would say; and a NetworkError, as
    ``fetch_record`` says an answer that did not come in time, for callers that catch
    that. Never ``retry``: asking again at once finds it pending; later, it may be done.
    """

    def __init__(self, message: str, *, task_id: str | None = None, timeout_s: float = 0.0, hint: str = "") -> None:
        NetworkError.__init__(self, message, task_id=task_id, hint=hint)
        self.timeout_s = timeout_s


class OutputError(MidiExportError):
    """A file cannot be written: it exists, or the folder is not writable."""

    def __init__(self, message: str, *, path: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path


class WorkerLost(MidiExportError):
    """A worker process of a batch died before it returned its result (killed, out of memory).

    Nothing was written for that job; the batch goes on without it. ``signal`` is the
    number of the signal that ended the worker (9: SIGKILL), or None when it exited;
    ``how`` says how it ended, as the message does ("was killed by SIGKILL").
    """

    def __init__(self, message: str, *, signal: int | None = None, how: str = "ended") -> None:
        super().__init__(message)
        self.signal = signal
        self.how = how


class ChoiceNeeded(MidiExportError):
    """The user must choose: several songs and no audio id, or a stem name that matches none.

    A usage problem (the command line exits 2); ``choices`` lists what may be chosen.
    """

    def __init__(self, message: str, *, choices: tuple[str, ...] = (), hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.choices = choices


ARGUMENT_HINTS = {  # what to pass instead, by the type expected (a parameter's usual mix-up)
    "Record": "a Record comes from normalize_payload or read_midi",
    "Song": "convert_record makes a Song of a Record",
    "ConvertOptions": "build one: ConvertOptions(bpm=90)",
    "bytes": "pass the file's bytes, as Path(...).read_bytes() gives them",
}


def internal_error(exc: BaseException, place: str = "") -> str:
    """Return what a bug (no MidiExportError) is said as: "a.json: internal error: KeyError 'boom'".

    ``place``: the input it broke on, named first as an error of the data names it ("" for none).
    The command line's line and the ``--report``'s error both say it so.
    """
    detail = f"{type(exc).__name__} {exc}".strip()
    return f"{place}: internal error: {detail}" if place else f"internal error: {detail}"


def check_argument(where: str, name: str, value: object, expected: type | tuple[type, ...]) -> None:
    """Raise one TypeError naming the function, the parameter and the type it takes, for a public entry point.

    A dict given for ``options``, a Record for a Song or None would otherwise fail deep
    inside as an AttributeError naming neither. Checked once where the caller hands it
    in (one ``isinstance``: cheap per record); ``ARGUMENT_HINTS`` says what to pass instead.
    """
    if isinstance(value, expected):
        return
    types = expected if isinstance(expected, tuple) else (expected,)
    wanted = " or ".join(t.__name__ for t in types)
    hint = ARGUMENT_HINTS.get(types[0].__name__)
    raise TypeError(f"{where}: {name} must be {wanted}, got {type(value).__name__}" + (f"; {hint}" if hint else ""))
