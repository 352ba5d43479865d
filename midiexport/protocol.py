"""What an API answer means: task state, body codes, "try later", failure words.

Foundation: plain data in, plain words out; imports nothing from stages, io or jobs.
Both the HTTP client (should it poll, retry, give up?) and the normalize stage (what
status has this record?) read answers through this module, so they never disagree.

The rules (PRODUCT.md, "The API" and "The rest of the chain"):

- The body's ``code`` and ``msg`` are read first, the HTTP status second. 200 is
  success; resellers answer ``code`` 0 with ``message: "ok"``.
- ``successFlag`` of a MIDI record: 0 pending, 1 success, 2 and 3 failed.
- ``midiData.state``: ``complete`` or a failure word end the task; any other word
  (``running``, ``uploading``, a word never seen before) means "not finished yet".
- Some codes mean "try again later" (rate limit, maintenance, server error, and
  resellers' 405/430 for "too many requests"); 422 "recordInfo is null" means "not
  stored yet" just after a task is created.
- An unknown code that comes with complete note data is converted, with a warning.
- The separation record's ``successFlag`` is a word (PENDING, SUCCESS, ...); the music
  record has ``status`` words (PENDING, TEXT_SUCCESS, FIRST_SUCCESS, SUCCESS, ...).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .errors import Phrase, say
from .model import COMPLETE, EMPTY, FAILED, PENDING, api_int

RETENTION_HINT = "records are kept for 14 days"
NOT_FOUND_YET = "not found (a new task may take a few seconds to appear; records are kept 14 days)"

# --- successFlag and state words -----------------------------------------------------

MIDI_FLAGS: dict[int, tuple[str, str]] = {
    0: (PENDING, "is still pending (successFlag 0); try again in a minute"),
    1: (COMPLETE, ""),
    2: (FAILED, "failed: the task could not be created"),
    3: (FAILED, "failed: MIDI generation failed"),
}
"""A MIDI record's numeric ``successFlag``: (status, reason when there is nothing to convert)."""

FAILURE_WORDS = frozenset({"failed", "fail", "failure", "error", "errored"})
"""``midiData.state`` words that end a task without notes (compared case-insensitively)."""

COMPLETE_WORD = "complete"

SEPARATION_FLAGS: dict[str, str] = {
    "PENDING": PENDING,
    "SUCCESS": COMPLETE,
    "CREATE_TASK_FAILED": FAILED,
    "GENERATE_AUDIO_FAILED": FAILED,
    "CALLBACK_EXCEPTION": FAILED,
}
"""The separation record's (vocal-removal/record-info) ``successFlag``, a word."""

MUSIC_STATUSES: dict[str, str] = {
    "PENDING": PENDING,
    "TEXT_SUCCESS": PENDING,  # lyrics done, no audio yet
    "FIRST_SUCCESS": PENDING,  # the first song is done, the second is not
    "SUCCESS": COMPLETE,
    "CREATE_TASK_FAILED": FAILED,
    "GENERATE_AUDIO_FAILED": FAILED,
    "CALLBACK_EXCEPTION": FAILED,
    "SENSITIVE_WORD_ERROR": FAILED,
}
"""The music record's (generate/record-info) ``data.status`` words."""


def state_status(state: object) -> str:
    """Return the status a ``midiData.state`` word means: COMPLETE, FAILED, PENDING, or EMPTY (no word).

    Any word other than ``complete`` or a failure word is PENDING: the task is not
    finished ("running", "uploading", or a word this version has never seen).
    """
    if not isinstance(state, str) or not state.strip():
        return EMPTY
    word = state.strip().casefold()
    if word == COMPLETE_WORD:
        return COMPLETE
    return FAILED if word in FAILURE_WORDS else PENDING


def flag_status(flag: object) -> tuple[str, str] | None:
    """Return (status, reason) for a MIDI record's ``successFlag`` (number or digit string), None if unknown."""
    number = api_int(flag)
    return MIDI_FLAGS.get(number) if number is not None else None


def word_status(word: object, table: dict[str, str]) -> str:
    """Return the status of a separation ``successFlag`` or music ``status`` word (SEPARATION_FLAGS, MUSIC_STATUSES).

    A word not in the table is PENDING unless it names a failure (``..._FAILED``,
    ``..._ERROR``, ``..._EXCEPTION``): an unknown word must not end a wait early.
    """
    key = str(word or "").strip().upper()
    if key in table:
        return table[key]
    return FAILED if key.endswith(("FAILED", "ERROR", "EXCEPTION")) else PENDING


def separation_status(answer: Any) -> str:
    """Return PENDING, COMPLETE or FAILED for a separation record-info answer (``data.successFlag``, a word)."""
    data = answer.get("data") if isinstance(answer, dict) else None
    return word_status(data.get("successFlag") if isinstance(data, dict) else None, SEPARATION_FLAGS)


def music_status(answer: Any) -> str:
    """Return PENDING, COMPLETE or FAILED for a music record-info answer (``data.status``, a word)."""
    data = answer.get("data") if isinstance(answer, dict) else None
    return word_status(data.get("status") if isinstance(data, dict) else None, MUSIC_STATUSES)


# --- body codes ------------------------------------------------------------------------

OK, RETRY, NOT_STORED_YET, REFUSED = "ok", "retry", "not stored yet", "refused"
"""What a body code tells the client to do (``Verdict.action``)."""

SUCCESS_CODES = frozenset({200})
RESELLER_SUCCESS_CODES = frozenset({0})  # with an "ok"/"success" message, or no message
OK_MESSAGES = frozenset({"", "ok", "success", "succeeded"})

RETRY_CODES = frozenset({429, 455, 500, 502, 503, 504, 405, 430})
"""Body codes that mean "try again later"; 405/430 are resellers' "too many requests"."""

RETRY_HTTP = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth another try when the body says nothing better."""

NOT_PROCESSED_CODES = frozenset({429, 455, 503, 405, 430})
"""Retry codes that also say the request was not carried out, so even a POST (which may
create a paid task) can be sent again. 500/502/504 are not among them: the task may exist."""

KEY_HINT = Phrase("check the key given")  # the API refused the key (401)
CODE_HINTS: dict[int, Phrase] = {401: KEY_HINT}
"""What to do about a body code, where its meaning (CODE_MEANINGS) ends with advice."""

CODE_MEANINGS: dict[int, str] = {
    401: say("the API key was rejected; ", KEY_HINT),
    402: "the account has no credits left",
    404: f"not found ({RETENTION_HINT})",
    405: "rate limited: too many requests",
    422: "the request was refused as invalid",
    429: "rate limited: too many requests",
    430: "rate limited: too many requests",
    455: "the API is under maintenance",
    500: "the API had a server error",
}


class Verdict(NamedTuple):
    """What one answer's body code means.

    ``action``: OK (use the body), RETRY (try later), NOT_STORED_YET (422 "recordInfo
    is null": retry during the grace period, then "not found"), REFUSED (final).
    ``code`` is the body code (the HTTP status when the body has none); ``message``
    the server's own words; ``meaning`` a phrase for the one-line error; ``warning``
    is set when an unknown code came with complete notes (the body is used anyway).
    """

    action: str
    code: int
    message: str
    meaning: str = ""
    warning: str = ""


def body_message(body: dict[str, Any]) -> str:
    """Return the server's message (``msg``, or resellers' ``message``), stripped and cut to 200 characters."""
    for key in ("msg", "message"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return ""


def read_code(body: dict[str, Any], http_status: int = 200) -> Verdict:
    """Return what an answer means from its body ``code``/``msg`` first, its HTTP status second."""
    message = body_message(body)
    body_code = api_int(body.get("code"))
    code = body_code if body_code is not None else http_status
    if _is_success(code, message) and http_status < 300:
        return Verdict(OK, code, message)
    if _is_success(code, message):  # a success body with an error status: trust neither, report the status
        code = http_status
    if code == 422 and "recordinfo is null" in message.casefold():
        return Verdict(NOT_STORED_YET, code, message, NOT_FOUND_YET)
    if code in RETRY_CODES or (code == http_status and code in RETRY_HTTP):
        return Verdict(RETRY, code, message, meaning_of(code))
    if code not in CODE_MEANINGS and http_status < 300 and carries_notes(body):
        warning = f"the API answered code {code} ({message or 'no message'}) with complete notes; converted them"
        return Verdict(OK, code, message, meaning_of(code), warning)
    return Verdict(REFUSED, code, message, meaning_of(code))


def meaning_of(code: int) -> str:
    """Return a phrase for a final body code: 'the account has no credits left'."""
    return CODE_MEANINGS.get(code) or f"the API answered code {code}"


def _is_success(code: int, message: str) -> bool:
    return code in SUCCESS_CODES or (code in RESELLER_SUCCESS_CODES and message.casefold() in OK_MESSAGES)


# --- where the notes and the state are -------------------------------------------------

# Every key read from one envelope level of an answer, a callback or a saved file
# (PRODUCT.md, "Shapes seen in the wild"): the body code and message, the nesting, the
# state and flag, the ids and error fields, a saved music task. The normalize stage reads
# these; typed_json's schema declares each (a key not listed is skipped by that schema).
ENVELOPE_KEYS = (
    "code", "msg", "message",  # read_code
    "data", "midiData", "instruments",  # the nesting down to the notes
    "state", "midi_url", "successFlag",
    "taskId", "task_id", "audioId", "audio_id", "errorCode", "errorMessage", "title",
    "midiRecord", "musicRecord",  # saved by `fetch --music-task`
    "response",  # a music task's answer (not MIDI data): named as such
)  # fmt: skip


def midi_part(answer: Any) -> dict[str, Any] | None:
    """Return the object holding ``state``/``instruments`` in an answer, or None.

    Looks where the envelopes put it: ``data.midiData``, ``data`` itself (callbacks,
    resellers), the first item of a ``data`` list, or the answer itself (bare midiData).
    """
    data = answer.get("data", answer) if isinstance(answer, dict) else None
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return None
    midi = data.get("midiData")
    if isinstance(midi, dict):
        return midi
    return data if "instruments" in data or "state" in data else None


def carries_notes(answer: Any) -> bool:
    """Return True when an answer holds a non-empty ``instruments`` list or name -> notes object."""
    midi = midi_part(answer)
    instruments = midi.get("instruments") if midi is not None else None
    return isinstance(instruments, (list, dict)) and bool(instruments)


def task_status(answer: Any) -> str:
    """Return PENDING while the MIDI task of an answer runs, else COMPLETE, FAILED or EMPTY.

    Used by the client to decide whether to poll again; the normalize stage reads
    the same flag and state words through ``flag_status`` and ``state_status``.
    """
    data = answer.get("data") if isinstance(answer, dict) else None
    flag = flag_status(data.get("successFlag")) if isinstance(data, dict) else None
    if flag is not None and flag[0] in (PENDING, FAILED):
        return flag[0]
    midi = midi_part(answer)
    if midi is None:
        return EMPTY
    state = state_status(midi.get("state"))
    if state == FAILED or (state == PENDING and not carries_notes(answer)):
        return state
    return COMPLETE if carries_notes(answer) else EMPTY


# Callbacks POSTed to callBackUrl (PRODUCT.md "Callbacks"): where the task id stands, and
# which ones carry no notes to convert.
CALLBACK_TASK_ID_FIELDS = (("task_id",), ("data", "task_id"), ("taskId",), ("data", "taskId"))
NOTE_KEYS = frozenset({"instruments", "midiData", "state"})
NOTE_FIELDS = ("pitch", "start", "end", "velocity")  # a note object's fields, in the order columns are read
UTF8_BOM = b"\xef\xbb\xbf"  # allowed before a JSON text (some tools save one)


def callback_task_id(payload: Any) -> str | None:
    """Return the task id a callback names (``task_id``, ``data.task_id``, ``taskId``, ``data.taskId``)."""
    for path in CALLBACK_TASK_ID_FIELDS:
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def is_separation_callback(payload: Any) -> bool:
    """True for a separation's callback (``data.task_id``, stems, no notes): nothing to convert."""
    data = payload.get("data") if isinstance(payload, dict) else None
    return isinstance(data, dict) and "task_id" in data and not NOTE_KEYS & data.keys()
