"""Generate: the job of ``midiexport generate``: music task -> song -> separation -> MIDI task -> .mid.

The chain is a small state machine. ``ChainState`` holds what is known (the song, the
separation task, the MIDI task and every answer); each step is a function that does
nothing when its result is already in the state, so the same list of steps both runs a
new chain and resumes one. The state is saved as JSON beside the output
(``<music task>.generate.json``) the moment anything is learnt, above all a task id
that a paid request returned, so nothing is paid for twice:

1. ``read_music``: the music task's record-info (polled while it is still generating).
2. ``choose_song``: ``--audio-id``, or the only song; several songs: ``ChoiceNeeded``.
3. ``request_separation``: POST a ``split_stem`` separation (paid), unless one is given.
4. ``wait_separation``: poll its record-info until it succeeds (``TaskFailed`` if not).
5. ``choose_stem``: all stems, or the one named by ``--stem`` (its id becomes audioId).
6. ``request_midi``: POST the MIDI request (paid).
7. ``wait_midi``: poll the MIDI record until it ends; then ``fetch``'s rendering.

A POST whose fate is unknown (``UnconfirmedRequest``) is never sent again: the state
remembers it, and a resume refuses to send it again until the user names the task
(``--separation-task``) or fetches the MIDI task (``midiexport fetch``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import gm, protocol
from ..defaults import GENERATE_STATE_SUFFIX
from ..errors import (
    ApiError,
    ChoiceNeeded,
    EmptyRecord,
    InputError,
    MidiExportError,
    Phrase,
    TaskFailed,
    UnconfirmedRequest,
    saved_marks,
    say,
    with_marks,
)
from ..io import files
from ..io.client import MIDI_RECORD_PATH, MUSIC_RECORD_PATH, ApiClient, ClientSettings, Progress
from ..model import COMPLETE, FAILED, PENDING
from ..options import ConvertOptions
from .fetch_tasks import FetchOptions, render_answer
from .runner import Destination, Pending, Rendered, names_one_file

SEPARATION_PATH = "/api/v1/vocal-removal/generate"
SEPARATION_RECORD_PATH = "/api/v1/vocal-removal/record-info"
MIDI_GENERATE_PATH = "/api/v1/midi/generate"
SEPARATION_TYPE = "split_stem"  # the separation that gives stems MIDI can be made from
SEPARATION_CREDITS = 50  # the API's documented price of a split_stem separation (separate_vocal: 10)
PLACEHOLDER_CALLBACK = "https://example.invalid/midiexport-callback"
"""``callBackUrl`` sent without ``--callback-url``: the API requires one; ``.invalid`` never resolves
(RFC 2606), so the callback goes nowhere and the task is polled instead."""
STEP_NAMES = {"separation": "separation", "midi": "MIDI"}  # the paid steps, as told to the user
RESUME_PHRASE = Phrase("resume it to go on without paying again")
RESUME_HINT = say(RESUME_PHRASE, ", or remove the file to start over (and pay again)")  # a state file exists
REWRITE_PHRASE = Phrase("resume it to write its files again where missing, asking the API nothing")
REWRITE_HINT = say(REWRITE_PHRASE, ", or remove the file to start over (and pay again)")  # a finished chain's file
AUDIO_ID_HINT = Phrase("choose one by its audio id")  # a music task of several songs
STEM_HINT = Phrase("resume with one of them as the stem")  # a stem name that matches none
SAME_OUTPUT_HINT = Phrase("give the same output as the first run")  # nothing to resume
AUDIO_ID, STEM = Phrase("audio id"), Phrase("stem")  # the choices a resumed run must keep
SEPARATION_FOLLOW = Phrase("resume this generate with its id as the separation task")  # after an unanswered POST
FETCH_FOLLOW = Phrase("fetch it by its id")  # after an unanswered MIDI request
STATE_VERSION = 1
# How a state file opens (``ChainState.to_json``): its first keys "version" (this one) and "music_task".
_STATE_OPENING = re.compile(rb'\A\{\s*"version"\s*:\s*%d\s*,\s*"music_task"\s*:' % STATE_VERSION)
UNCONFIRMED_MARKS = "unconfirmed_marks"  # the state file's key: the marks of the ``unconfirmed`` reasons' phrases

Tell = Callable[[str], None]
"""Called with a line for the user (``separation task: ...``): the CLI prints it to stderr."""


@dataclass(frozen=True)
class GenerateOptions:
    """What ``midiexport generate`` asks for; ``fetch`` holds the key, URL and waits (seconds)."""

    music_task: str
    fetch: FetchOptions
    audio_id: str | None = None
    separation_task: str | None = None
    stem: str | None = None
    callback_url: str | None = None


@dataclass
class ChainState:
    """What is known of one chain; saved as JSON after every change (``save_state``).

    ``answers``: every answer of the chain by step (music, separationRequest,
    separation, midiRequest, midi). ``unconfirmed``: per paid step ("separation",
    "midi"), the message of a POST that was sent but never answered.
    """

    music_task: str
    audio_id: str | None = None
    separation_task: str | None = None
    stem: str | None = None
    stem_id: str | None = None
    midi_task: str | None = None
    callback_url: str = PLACEHOLDER_CALLBACK
    unconfirmed: dict[str, str] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Return the state as JSON, with the marks of the unconfirmed reasons' phrases (a resume says them alike)."""
        import orjson

        marks = {step: found for step, why in self.unconfirmed.items() if (found := saved_marks(why))}
        state = {"version": STATE_VERSION, **asdict(self), UNCONFIRMED_MARKS: marks}
        return orjson.dumps(state, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, source: str) -> ChainState:
        """Read a saved state; raises InputError when it is not one."""
        import orjson

        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{source}: not a generate state file ({exc})", input=source) from exc
        if not isinstance(value, dict) or value.pop("version", None) != STATE_VERSION or "music_task" not in value:
            raise InputError(f"{source}: not a generate state file of this version", input=source)
        marks = _dict(value.get(UNCONFIRMED_MARKS))
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        state = cls(**known)
        unconfirmed = _dict(state.unconfirmed)
        state.unconfirmed = {step: with_marks(str(why), marks.get(step)) for step, why in unconfirmed.items()}
        return state

    @property
    def finished(self) -> bool:
        """True when the MIDI task has ended (done or failed): nothing is left to ask the API."""
        return "midi" in self.answers and protocol.task_status(self.answers["midi"]) != PENDING

    def describe(self) -> str:
        """Name the tasks known so far: 'separation task S, MIDI task M'."""
        known = [f"{what} {task}" for what, task in (("separation task", self.separation_task),
                                                     ("MIDI task", self.midi_task)) if task]  # fmt: skip
        return ", ".join(known) or "no task created yet"


def opens_a_state(head: bytes) -> bool:
    """True when ``head``, a file's first bytes, opens a state file: first keys ``version``, ``music_task``.

    As ``ChainState.to_json`` writes it; a folder search leaves it out (``convert_files``,
    which asks only for a file named ``<task>`` + ``GENERATE_STATE_SUFFIX``).
    """
    return _STATE_OPENING.match(head) is not None


def state_path(music_task: str, out: str | None) -> Path:
    """Return where the chain of ``music_task`` keeps its state: beside the output.

    ``out`` a .mid path: ``<that name>.generate.json``; a folder: inside it; None or
    "-": the current folder, named after the music task.
    """
    if out is not None and out != "-" and names_one_file(out):
        return Path(out).with_suffix(GENERATE_STATE_SUFFIX)
    folder = Path(out) if out not in (None, "-") else Path(".")
    return folder / (files.safe_name(music_task, fallback="music-task") + GENERATE_STATE_SUFFIX)


def load_state(path: Path) -> ChainState:
    """Read the state saved at ``path``; raises InputError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable_state(path, exc) from exc
    return ChainState.from_json(data, source=str(path))


def state_exists(path: Path) -> bool:
    """True when something is at ``path`` (a file, a folder, a link, even a broken one); False when nothing is.

    Raises InputError when the path cannot be looked at (a folder on the way that may not
    be searched): ``Path.exists`` raised PermissionError there, and called a link loop
    nothing, so a resume said there was nothing to resume.
    """
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # a file where a folder is needed: the write says so
        return False
    except OSError as exc:
        raise _unreadable_state(path, exc) from exc
    return True


def _unreadable_state(path: Path, exc: OSError) -> InputError:
    """The error of a state path that cannot be read (no permission, a folder or a link loop in its place)."""
    return InputError(f"{path}: cannot read the generate state ({exc.strerror or exc}); make it a readable file, "
                      "or move it away to start over", input=str(path))  # fmt: skip


def save_state(state: ChainState, path: Path) -> None:
    """Write the state atomically (a crash leaves the old or the new file, never half of one)."""
    files.write_atomic(path, state.to_json(), overwrite=True)  # makes the folder


def spending(state: ChainState) -> list[str]:
    """Return the paid requests still to make, one phrase each (empty when nothing is to be paid)."""
    if state.separation_task is None and "separation" in state.unconfirmed:
        return []  # nothing more is sent until the user names the task that request may have made
    paid = []
    if state.separation_task is None:
        paid.append(f"a {SEPARATION_TYPE} separation: {SEPARATION_CREDITS} credits (the API's documented price)")
    if state.midi_task is None and "midi" not in state.unconfirmed:
        paid.append("a MIDI generation request: its price is not stated in the API's docs (see your account)")
    return paid


@dataclass
class Chain:
    """One chain being walked: the state, where it is saved, the client, and how to tell the user."""

    state: ChainState
    path: Path
    client: ApiClient
    options: GenerateOptions
    tell: Tell
    progress: Progress | None = None

    def save(self) -> None:
        save_state(self.state, self.path)

    def deadline(self) -> float:
        return time.monotonic() + self.options.fetch.timeout_s

    def wait(self, task_id: str, path: str, status: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
        fetch = self.options.fetch
        return self.client.wait_for_record(task_id, path=path, status=status, timeout_s=fetch.timeout_s,
                                           poll_interval_s=fetch.poll_interval_s, progress=self.progress)  # fmt: skip


Step = Callable[[Chain], None]


def read_music(chain: Chain) -> None:
    """Read the music task (polled while its songs are being made); failed: TaskFailed."""
    state = chain.state
    if "music" in state.answers:
        return
    answer = chain.wait(state.music_task, MUSIC_RECORD_PATH, protocol.music_status)
    if protocol.music_status(answer) == FAILED:
        raise TaskFailed(f"music task {state.music_task}: failed ({_data(answer).get('status')}); "
                         "it has no song to separate", task_id=state.music_task)  # fmt: skip
    state.answers["music"] = answer
    chain.save()


def choose_song(chain: Chain) -> None:
    """Take ``--audio-id`` (which must be a song of the task), or the only song; else ChoiceNeeded."""
    state = chain.state
    if state.separation_task is not None and state.audio_id is None:
        return  # a separation was given: the song is already chosen
    songs = _list(_dict(_data(state.answers["music"]).get("response")).get("sunoData"))
    ids = [str(s.get("id")) for s in songs]
    lines = tuple(_song_line(s) for s in songs)
    if not songs:
        raise EmptyRecord(f"music task {state.music_task}: has no songs", task_id=state.music_task)
    if state.audio_id is None and len(songs) == 1:
        state.audio_id = ids[0]
    elif state.audio_id is None:
        raise ChoiceNeeded(say(f"music task {state.music_task} has {len(songs)} songs; ", AUDIO_ID_HINT,
                               ":\n" + "\n".join(lines)), choices=tuple(ids), hint=AUDIO_ID_HINT)  # fmt: skip
    elif state.audio_id not in ids:
        raise ChoiceNeeded(f"music task {state.music_task} has no song {state.audio_id!r}; its songs:\n"
                           + "\n".join(lines), choices=tuple(ids))  # fmt: skip
    chain.save()


def request_separation(chain: Chain) -> None:
    """POST a split_stem separation of the song (paid) unless a separation task is known."""
    state = chain.state
    if state.separation_task is not None:
        return
    body = {"taskId": state.music_task, "audioId": state.audio_id, "callBackUrl": state.callback_url,
            "type": SEPARATION_TYPE}  # fmt: skip
    _paid_request(chain, "separation", SEPARATION_PATH, body, state.music_task)


def wait_separation(chain: Chain) -> None:
    """Poll the separation until it succeeds; a failed separation raises TaskFailed naming it."""
    state = chain.state
    assert state.separation_task is not None
    if protocol.separation_status(state.answers.get("separation")) == COMPLETE:
        return
    answer = chain.wait(state.separation_task, SEPARATION_RECORD_PATH, protocol.separation_status)
    state.answers["separation"] = answer
    chain.save()
    if protocol.separation_status(answer) == FAILED:
        data = _data(answer)
        detail = ": ".join(str(p) for p in (data.get("successFlag"), data.get("errorMessage")) if p)
        raise TaskFailed(f"separation task {state.separation_task}: failed ({detail})",
                         task_id=state.separation_task, error_message=str(data.get("errorMessage") or ""))  # fmt: skip


def choose_stem(chain: Chain) -> None:
    """All stems (no audioId), or the stem named by ``--stem`` (case-insensitive; 'did you mean' on a miss)."""
    state = chain.state
    if state.stem is None or state.stem_id is not None:
        return
    stems = _list(_dict(_data(state.answers["separation"]).get("response")).get("originData"))
    names = [str(s.get("stem_type_group_name") or "") for s in stems]
    match = next((s for s, n in zip(stems, names) if n.casefold() == state.stem.casefold()), None)
    if match is None:
        close = gm.closest(state.stem, [n for n in names if n])
        guess = f"did you mean {close!r}? " if close else ""
        raise ChoiceNeeded(say(f"separation task {state.separation_task} has no stem {state.stem!r}; {guess}"
                               f"its stems: {', '.join(names) or 'none'} (", STEM_HINT, ")"),
                           choices=tuple(names), hint=STEM_HINT)  # fmt: skip
    state.stem_id = str(match.get("id"))
    chain.save()


def request_midi(chain: Chain) -> None:
    """POST the MIDI request for the separation (paid), for one stem when one was chosen."""
    state = chain.state
    if state.midi_task is not None:
        return
    assert state.separation_task is not None
    body: dict[str, Any] = {"taskId": state.separation_task, "callBackUrl": state.callback_url}
    if state.stem_id is not None:
        body["audioId"] = state.stem_id
    _paid_request(chain, "midi", MIDI_GENERATE_PATH, body, state.separation_task)


def wait_midi(chain: Chain) -> None:
    """Poll the MIDI record until the task ends (its failure is told by the conversion, like fetch)."""
    state = chain.state
    assert state.midi_task is not None
    if state.finished:
        return
    state.answers["midi"] = chain.wait(state.midi_task, MIDI_RECORD_PATH, protocol.task_status)
    chain.save()


PREPARE_STEPS: tuple[Step, ...] = (read_music, choose_song)
"""The steps before anything is paid: the command line runs them first (a choice needed is a usage error)."""
STEPS: tuple[Step, ...] = (*PREPARE_STEPS, request_separation, wait_separation, choose_stem, request_midi,
                           wait_midi)  # fmt: skip


def start_state(options: GenerateOptions, path: Path, *, resume: bool) -> ChainState:
    """Return the state to walk: a new one, or the one saved at ``path`` (``resume``).

    Raises ChoiceNeeded when a state exists and ``resume`` is off (it would pay again; of a
    finished chain, said so: a resume writes its files again),
    when none exists to resume, or when the options contradict the saved choices;
    InputError when the state's path cannot be read (``state_exists``, ``load_state``).
    """
    exists = state_exists(path)
    if exists and not resume:
        state = load_state(path)
        if state.finished:  # nothing to continue: a resume only writes the files again
            raise ChoiceNeeded(say(f"{path} holds a finished generate of music task {state.music_task} "
                                   f"({state.describe()}); ", REWRITE_HINT), hint=REWRITE_HINT)  # fmt: skip
        raise ChoiceNeeded(say(f"{path} holds a generate of music task {state.music_task} started earlier "
                               f"({state.describe()}); ", RESUME_HINT), hint=RESUME_HINT)  # fmt: skip
    if not exists and resume:
        raise ChoiceNeeded(
            say(f"nothing to resume: {path} does not exist (", SAME_OUTPUT_HINT, ")"), hint=SAME_OUTPUT_HINT
        )
    state = load_state(path) if exists else ChainState(options.music_task)
    if state.music_task != options.music_task:
        raise ChoiceNeeded(f"{path} is for music task {state.music_task}, not {options.music_task}")
    if state.stem_id is None and options.stem is not None:  # a stem that matched none paid for nothing yet
        state.stem = options.stem
    for what, given, saved in ((AUDIO_ID, options.audio_id, state.audio_id), (STEM, options.stem, state.stem)):
        if given is not None and saved is not None and given != saved:
            raise ChoiceNeeded(
                say(f"{path} was started with ", what, f" {saved}, not {given}; remove it to start over")
            )
    state.audio_id = state.audio_id or options.audio_id
    state.stem = state.stem or options.stem
    if options.separation_task is not None:
        if state.separation_task not in (None, options.separation_task):
            raise ChoiceNeeded(f"{path} already has separation task {state.separation_task}")
        state.separation_task = options.separation_task
        state.unconfirmed.pop("separation", None)  # the user found the task that request created
    if options.callback_url is not None:
        state.callback_url = options.callback_url
    return state


def open_chain(
    options: GenerateOptions,
    out: str | None,
    *,
    resume: bool,
    tell: Tell,
    progress: Progress | None = None,
    settings: ClientSettings | None = None,
) -> Chain:
    """Return the chain of ``options.music_task`` for the output ``out`` (its state beside it), not yet walked.

    ``settings`` overrides the client's timeouts and retries. Raises ChoiceNeeded (see
    ``start_state``); nothing is sent.
    """
    path = state_path(options.music_task, out)
    state = start_state(options, path, resume=resume)
    fetch = options.fetch
    client = ApiClient(settings or ClientSettings(api_key=fetch.api_key, base_url=fetch.base_url))
    return Chain(state, path, client, options, tell, progress)


def prepare(chain: Chain) -> MidiExportError | None:
    """Walk the steps before anything is paid; return the error that stopped them (None: all done).

    ChoiceNeeded is raised instead (several songs, an unknown audio id): a usage problem.
    """
    try:
        walk(chain, PREPARE_STEPS)
    except ChoiceNeeded:
        raise
    except MidiExportError as exc:
        return exc
    return None


def walk(chain: Chain, steps: tuple[Step, ...] = STEPS) -> None:
    """Run the steps in order; each one skips itself when the state already holds its result."""
    for step in steps:
        step(chain)


def run_generate(
    chain: Chain, options: ConvertOptions, destination: Destination, *, failed: Exception | None = None
) -> Iterator[Pending]:
    """Yield the one result of the chain: its ``result()`` walks the remaining steps and converts.

    ``failed``: an error met while preparing (reading the music task), raised by ``result()``
    so that it is told and reported like any other failure.
    """

    def get() -> list[Rendered]:
        if failed is not None:
            raise failed
        walk(chain)
        return render_chain(chain, options)

    yield Pending(f"music task {chain.state.music_task}", get, destination)


def render_chain(chain: Chain, options: ConvertOptions) -> list[Rendered]:
    """Convert the MIDI answer as ``fetch`` does; the kept JSON holds every answer of the chain."""
    state = chain.state
    assert state.midi_task is not None
    answers = state.answers
    payload = {
        "midiRecord": answers["midi"], "musicRecord": answers["music"],
        "separationRecord": answers.get("separation"),
        "requests": {"separation": answers.get("separationRequest"), "midi": answers.get("midiRequest")},
        "chain": {"musicTask": state.music_task, "audioId": state.audio_id, "separationTask": state.separation_task,
                  "stem": state.stem, "stemId": state.stem_id, "midiTask": state.midi_task,
                  "callBackUrl": state.callback_url},
    }  # fmt: skip
    return render_answer(state.midi_task, payload, save_json=chain.options.fetch.save_json, options=options)


def _paid_request(chain: Chain, step: str, path: str, body: dict[str, Any], about: str) -> None:
    """Send a paid request once; keep its answer and the task id it created, save, and tell the id.

    Refuses (UnconfirmedRequest) while an earlier request of this step is unanswered.
    """
    state = chain.state
    if step in state.unconfirmed:
        advice = _unconfirmed_advice(chain, step)
        raise UnconfirmedRequest(
            say(f"task {about}: the {STEP_NAMES[step]} request of an earlier run was never answered (",
                state.unconfirmed[step], "); ", advice),
            task_id=about, path=path, hint=advice,
        )  # fmt: skip
    answer = _post(chain, step, path, body, about)
    state.answers[f"{step}Request"] = answer
    task = _created_task(answer, STEP_NAMES[step], about)
    if step == "separation":
        state.separation_task = task
    else:
        state.midi_task = task
    chain.save()
    chain.tell(f"{STEP_NAMES[step]} task: {task}")


def _post(chain: Chain, step: str, path: str, body: dict[str, Any], about: str) -> dict[str, Any]:
    """POST once; when its fate is unknown, remember it in the state and say how to continue."""
    try:
        return chain.client.post_json(path, body, task_id=about, deadline=chain.deadline())
    except UnconfirmedRequest as exc:
        why = exc.reason or exc.message
        chain.state.unconfirmed[step] = why
        chain.save()
        advice = _unconfirmed_advice(chain, step)
        raise UnconfirmedRequest(
            say(f"task {about}: the {STEP_NAMES[step]} request was sent, but ", why, "; ", advice),
            task_id=about,
            path=path,
            reason=why,
            hint=advice,
        ) from exc


def _unconfirmed_advice(chain: Chain, step: str) -> str:
    """Say what an unanswered paid request may have done and how to go on without paying twice."""
    follow = SEPARATION_FOLLOW if step == "separation" else FETCH_FOLLOW
    return say(f"a {STEP_NAMES[step]} task may have been created (and charged), so it is not sent again: find it in "
               "your account and ", follow, f", or remove {chain.path} to ask (and pay) again")  # fmt: skip


def _created_task(answer: dict[str, Any], what: str, about: str) -> str:
    task = _data(answer).get("taskId")
    if not isinstance(task, str) or not task.strip():
        raise ApiError(f"task {about}: the {what} request was accepted but the answer names no task "
                       "(data.taskId); look for it in your account before asking again", task_id=about)  # fmt: skip
    return task


def _song_line(song: dict[str, Any]) -> str:
    duration = song.get("duration")
    shown = f"{duration:.0f} s" if isinstance(duration, (int, float)) and not isinstance(duration, bool) else "?"
    return f"  {song.get('id')}  {str(song.get('title') or '(untitled)')[:60]}  {shown}"


def _data(answer: Any) -> dict[str, Any]:
    return _dict(answer.get("data") if isinstance(answer, dict) else None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
