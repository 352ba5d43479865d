"""The API client against a real HTTP server on 127.0.0.1 (see conftest.FakeApi).

Waits are made short through the client's own settings, never by patching sleep."""

from __future__ import annotations

import json
import time

import mido
import pytest

from conftest import API_KEY, api_notes, load_fixture, pretty, run
from midiexport.errors import ApiError, NetworkError
from midiexport.io.client import MIDI_RECORD_PATH, ApiClient, ClientSettings, fetch_record
from midiexport.io.http import check_base_url
from midiexport.jobs.fetch_tasks import FetchOptions, run_fetch
from midiexport.jobs.runner import Destination
from midiexport.options import ConvertOptions


def client_for(api, **overrides) -> ApiClient:
    settings = dict(api_key=API_KEY, base_url=api.url, backoff_s=0.01, backoff_max_s=0.05,
                    read_timeout_s=0.3, connect_timeout_s=0.5, not_found_grace_s=0.3, max_attempts=4)  # fmt: skip
    settings.update(overrides)
    return ApiClient(ClientSettings(**settings))


def wait_for(api, task_id, **options):
    with client_for(api) as client:
        return client.wait_for_record(task_id, poll_interval_s=options.pop("poll", 0.02), **options)


def test_complete_task_sends_the_key_in_the_header_and_the_id_in_the_query(fake_api, task):
    task_id = task("complete")
    answer = wait_for(fake_api, task_id)
    assert answer["data"]["taskId"] == task_id
    [request] = fake_api.seen(task_id)
    assert request["path"] == MIDI_RECORD_PATH
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(("scenario", "polls"), [("pending-then-complete", 3), ("running-then-complete", 2)])
def test_pending_task_is_polled_until_complete(fake_api, task, scenario, polls):
    task_id = task(scenario)
    told = []
    answer = wait_for(fake_api, task_id, progress=lambda *args: told.append(args[:2]))
    assert answer["data"]["successFlag"] == 1
    assert len(fake_api.seen(task_id)) == polls
    assert told == [(task_id, "pending")] * (polls - 1)


def test_no_wait_returns_the_pending_answer_after_one_request(fake_api, task):
    task_id = task("pending-forever")
    answer = wait_for(fake_api, task_id, wait=False)
    assert answer["data"]["successFlag"] == 0
    assert len(fake_api.seen(task_id)) == 1


def test_polling_goes_on_until_the_deadline_with_the_last_wait_shortened(fake_api, task):
    # Like --timeout 45 --poll-interval 15: polls at 0, 15, 30 and (just before) 45 s.
    task_id = task("pending-forever")
    with pytest.raises(NetworkError) as caught:
        wait_for(fake_api, task_id, timeout_s=0.45, poll=0.15)
    assert str(caught.value) == f"task {task_id}: still pending after 0.45 s; raise the timeout or fetch it later"
    assert caught.value.hint == "raise the timeout or fetch it later"  # flag-free: the CLI adds --timeout
    assert len(fake_api.seen(task_id)) == 4


def test_a_task_pending_past_the_timeout_is_task_pending_and_still_a_network_error(fake_api, task):
    import pickle

    from midiexport.errors import StillPending, TaskPending

    task_id = task("pending-forever")
    with pytest.raises(TaskPending) as caught:  # as the errors module's tree says: the task is still running
        wait_for(fake_api, task_id, timeout_s=0.3, poll=0.15)
    assert isinstance(caught.value, NetworkError) and not caught.value.retry  # callers catching that still do
    assert (caught.value.task_id, caught.value.timeout_s) == (task_id, 0.3)
    sent = pickle.loads(pickle.dumps(caught.value))  # as batch workers send it
    assert type(sent) is StillPending and sent.task_id == task_id and str(sent) == str(caught.value)


@pytest.mark.parametrize(
    ("scenario", "attempts"),
    [("rate-limited-retry-after", 2), ("rate-limited", 3), ("server-error-twice", 3), ("redirect-home", 2)],
)
def test_passing_failures_are_retried_until_an_answer(fake_api, task, scenario, attempts):
    task_id = task(scenario)
    assert wait_for(fake_api, task_id)["data"]["taskId"] == task_id
    assert len(fake_api.seen(task_id)) == attempts


@pytest.mark.parametrize(
    ("scenario", "error", "message", "attempts"),
    [
        ("maintenance", ApiError, "the API is under maintenance (455: system maintenance)", 4),
        ("bad-key", ApiError, "the API key was rejected; check the key given (401: Unauthorized)", 1),
        ("no-credits", ApiError, "the account has no credits left (402: insufficient credits)", 1),
        ("not-found", ApiError, "not found (records are kept for 14 days) (404: task not found)", 1),
        (
            "truncated",
            NetworkError,
            "the answer was broken: not valid JSON (HTTP 200, application/json, 150 bytes); try again later",
            4,
        ),
        ("html-502", NetworkError, "the server failed (HTTP 502, text/html, 50 bytes); try again later", 4),
        (
            "html-200",
            NetworkError,
            "the server answered something that is not the API (HTTP 200, text/html, 42 bytes); check the base URL",
            1,  # a whole answer that is not the API's is no passing fault: asked once
        ),
        (
            "json-list",
            NetworkError,
            "the server answered something that is not the API (HTTP 200, application/json",
            1,  # a whole answer that is not the API's is no passing fault: asked once
        ),
        (
            "redirect-away",
            NetworkError,
            "the server redirected to elsewhere.invalid, another host; not following it",
            1,
        ),
    ],
)
def test_final_failures_are_one_line_naming_the_task(fake_api, task, scenario, error, message, attempts):
    task_id = task(scenario)
    with pytest.raises(error) as caught:
        wait_for(fake_api, task_id)
    assert str(caught.value).startswith(f"task {task_id}: {message}")
    assert "\n" not in str(caught.value)
    assert len(fake_api.seen(task_id)) == attempts


def test_record_null_is_retried_during_the_grace_period_then_not_found(fake_api, task):
    task_id = task("record-null")
    with pytest.raises(ApiError) as caught:
        with client_for(fake_api, max_attempts=50, backoff_s=0.05, backoff_max_s=0.05) as client:
            client.wait_for_record(task_id)
    assert str(caught.value) == (
        f"task {task_id}: not found (a new task may take a few seconds to appear; records are kept 14 days)"
    )
    assert len(fake_api.seen(task_id)) >= 3


def test_an_answer_slower_than_the_read_timeout_is_a_network_error(fake_api, task):
    task_id = task("slow")
    with pytest.raises(NetworkError, match=r"cannot reach 127\.0\.0\.1:\d+: no answer within 0.2 s"):
        with client_for(fake_api, read_timeout_s=0.2, max_attempts=2) as client:
            client.wait_for_record(task_id)
    assert len(fake_api.seen(task_id)) == 2


def test_an_unreachable_host_is_a_network_error():
    with pytest.raises(NetworkError, match=r"cannot reach 127\.0\.0\.1:9: "):
        with ApiClient(
            ClientSettings(api_key=API_KEY, base_url="http://127.0.0.1:9", max_attempts=2, backoff_s=0.01)
        ) as c:
            c.get_record(MIDI_RECORD_PATH, "x")


@pytest.mark.parametrize("url", ["http://api.example.com", "http://10.0.0.5:8080", "ftp://host"])
def test_plain_http_to_a_remote_host_is_refused(url):
    with pytest.raises(ValueError):
        check_base_url(url)


@pytest.mark.parametrize(
    "url", ["https://api.kie.ai", "http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80"]
)
def test_https_and_loopback_http_are_allowed(url):
    check_base_url(url)


def test_settings_never_show_the_key():
    assert API_KEY not in repr(ClientSettings(api_key=API_KEY)) + repr(FetchOptions(api_key=API_KEY))


def test_tasks_asked_at_once_stay_within_the_cap_however_asked():
    from midiexport.defaults import MAX_CONCURRENCY

    assert FetchOptions(api_key=API_KEY, concurrency=10).concurrency == MAX_CONCURRENCY
    assert FetchOptions(api_key=API_KEY, concurrency=0).concurrency == 1
    assert FetchOptions(api_key=API_KEY, concurrency=2).concurrency == 2


def test_the_command_asks_fetch_options_default_concurrency_unless_jobs_is_given():
    from midiexport.cli.api import _fetch_options

    given = {"api_key": API_KEY, "base_url": "https://api.example", "timeout_s": 5.0, "poll_interval_s": 1.0,
             "save_json": True, "out": None}  # fmt: skip
    assert _fetch_options({**given, "jobs": None}, music_task=None).concurrency == FetchOptions(API_KEY).concurrency
    assert _fetch_options({**given, "jobs": 1}, music_task=None).concurrency == 1


def test_fetch_record_is_usable_without_click(fake_api, task):
    task_id = task("complete")
    answer = fetch_record(task_id, api_key=API_KEY, base_url=fake_api.url)
    assert answer["data"]["midiData"]["instruments"][0]["name"] == "Drums"


def test_several_tasks_are_fetched_together_and_one_failure_does_not_stop_the_others(fake_api, task, tmp_path):
    ids = [task("complete"), task("bad-key"), task("server-error-twice"), task("pending-then-complete")]
    fetch = FetchOptions(api_key=API_KEY, base_url=fake_api.url, poll_interval_s=0.02)
    settings = ClientSettings(api_key=API_KEY, base_url=fake_api.url, backoff_s=0.01, backoff_max_s=0.02)
    results = {}  # each task as its download ends
    for pending in run_fetch(ids, fetch, ConvertOptions(), Destination(str(tmp_path)), settings=settings):
        try:
            results[pending.name] = [o.paths for o in pending.result()]
        except ApiError as exc:
            results[pending.name] = exc.code
    assert sorted(results) == sorted(f"task {i}" for i in ids)
    assert results[f"task {ids[1]}"] == 401
    assert [len(results[f"task {i}"][0]) for i in ids if i != ids[1]] == [2, 2, 2]  # .mid and .json each


# --- the command line ------------------------------------------------------------------


def fetch_cli(api, *args, env=None):
    env = {"MIDIEXPORT_API_KEY": API_KEY, "MIDIEXPORT_BASE_URL": api.url, **(env or {})}
    return run("fetch", *args, "--poll-interval", "0.02", env=env)


def assert_key_nowhere(result, folder):
    assert API_KEY not in result.stdout + result.stderr
    for path in folder.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_fetch_writes_the_mid_and_keeps_the_answer(fake_api, task, tmp_path):
    task_id = task("complete")
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{task_id}.json", f"{task_id}.mid"]
    midi = pretty((tmp_path / f"{task_id}.mid").read_bytes())
    assert [(i.name, i.is_drum, i.program) for i in midi.instruments] == [
        ("Drums", True, 0),
        ("Electric Bass (finger)", False, 33),
    ]
    assert_key_nowhere(result, tmp_path)


def test_converting_the_saved_answer_gives_a_byte_identical_file(fake_api, task, tmp_path):
    task_id = task("complete")
    assert fetch_cli(fake_api, task_id, "-o", str(tmp_path / "a")).exit_code == 0
    saved = next((tmp_path / "a").glob("*.json"))
    result = run("convert", str(saved), "-o", str(tmp_path / "b"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "b" / saved.with_suffix(".mid").name).read_bytes() == saved.with_suffix(".mid").read_bytes()


def test_no_save_json_writes_only_the_mid(fake_api, task, tmp_path):
    result = fetch_cli(fake_api, task("complete"), "-o", str(tmp_path), "--no-save-json")
    assert result.exit_code == 0
    assert [p.suffix for p in tmp_path.iterdir()] == [".mid"]


def test_pending_task_is_waited_for_with_a_status_line(fake_api, task, tmp_path):
    task_id = task("pending-then-complete")
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"task {task_id}: pending, waited 0 s; polling"
    assert len(fake_api.seen(task_id)) == 3


def test_no_wait_reports_a_pending_task_as_not_ready(fake_api, task, tmp_path):
    task_id = task("pending-forever")
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path), "--no-wait")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"task {task_id}: is still pending (successFlag 0); try again in a minute"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("scenario", "line"),
    [
        ("failed-create", "failed: the task could not be created (400: bad audio)"),
        ("failed-generation", "failed: MIDI generation failed (500: model crashed)"),
        ("empty", "has no notes: midiData is empty (this is documented for separations of type split_stem)"),
        ("missing", "has no notes: midiData is empty (this is documented for separations of type split_stem)"),
        ("bad-key", "the API key was rejected; check --api-key or MIDIEXPORT_API_KEY (401: Unauthorized)"),
        ("no-credits", "the account has no credits left (402: insufficient credits)"),
        ("not-found", "not found (records are kept for 14 days) (404: task not found)"),
    ],
)
def test_task_failures_are_one_line_and_exit_1(fake_api, task, tmp_path, scenario, line):
    task_id = task(scenario)
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"task {task_id}: {line}"
    assert list(tmp_path.iterdir()) == []


def test_the_key_stays_out_of_a_refusal_with_verbose_which_is_its_one_line(fake_api, task, tmp_path):
    task_id = task("bad-key")
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path), "-v")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(f"task {task_id}: the API key was rejected")
    assert "Traceback" not in result.stderr
    assert_key_nowhere(result, tmp_path)


def test_missing_key_is_a_usage_error(fake_api, task):
    result = run("fetch", task("complete"), env={"MIDIEXPORT_BASE_URL": fake_api.url})
    assert result.exit_code == 2
    assert "Error: no API key: pass --api-key or set MIDIEXPORT_API_KEY" in result.stderr


def test_plain_http_base_url_is_a_usage_error(fake_api, task):
    result = fetch_cli(fake_api, task("complete"), "--base-url", "http://api.example.com")
    assert result.exit_code == 2
    assert "refusing to send the API key over plain http to api.example.com" in result.stderr


def test_a_base_url_from_the_environment_that_is_no_url_names_where_it_came_from(fake_api, task):
    result = fetch_cli(fake_api, task("complete"), env={"MIDIEXPORT_BASE_URL": "127.0.0.1"})
    assert result.exit_code == 2
    assert "base URL must look like https://host, got '127.0.0.1' (set by --base-url or MIDIEXPORT_BASE_URL)" in (
        result.stderr
    )


def test_music_task_names_the_file_and_fills_the_conductor(fake_api, task, tmp_path):
    result = fetch_cli(fake_api, task("complete"), "--music-task", task("music-hostile"), "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["_.._etc_passwd_CON_ _b_Neon_b_ _ _.json", "_.._etc_passwd_CON_ _b_Neon_b_ _ _.mid"]
    midi = mido.MidiFile(tmp_path / names[1])
    assert abs(midi.length - 200.5) < 1e-3  # the song's duration ends the file
    conductor = [m for m in midi.tracks[0] if m.is_meta]
    texts = [m.text.removeprefix("@I") for m in conductor if m.type == "text"]  # karaoke "information"
    assert "tags: synthwave, 128 bpm" in texts and "model: chirp-v4" in texts
    saved = json.loads((tmp_path / names[0]).read_text())
    assert set(saved) == {"midiRecord", "musicRecord"}
    again = run("convert", str(tmp_path / names[0]), "-o", str(tmp_path / "again"))
    assert again.exit_code == 0
    assert (tmp_path / "again" / names[1]).read_bytes() == (tmp_path / names[1]).read_bytes()


def test_music_task_without_a_matching_song_warns_and_uses_the_task_id(fake_api, task, tmp_path):
    task_id = task("complete")
    result = fetch_cli(fake_api, task_id, "--music-task", task("music-nomatch"), "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "no song of the music task has id" in result.stderr
    assert (tmp_path / f"{task_id}.mid").exists()


def test_several_tasks_on_the_command_line(fake_api, task, tmp_path):
    ids = [task("complete"), task("not-found"), task("pending-then-complete")]
    result = fetch_cli(fake_api, *ids, "-o", str(tmp_path))
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[-1] == "2 converted (6 notes), 0 repaired (0 repairs), 0 skipped (exist), 1 failed"
    )
    assert len(list(tmp_path.glob("*.mid"))) == 2


def test_an_uploading_task_is_polled_by_fetch_wait(fake_api, task, tmp_path):
    task_id = task("uploading-then-complete")
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert len(fake_api.seen(task_id)) == 3
    assert (tmp_path / f"{task_id}.mid").exists()


def test_a_code_0_reseller_answer_is_fetched_and_converted(fake_api, task, tmp_path):
    task_id = task("reseller-code-0")
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    midi = pretty((tmp_path / f"{task_id}.mid").read_bytes())
    assert sorted((i.name, len(i.notes)) for i in midi.instruments) == [("Drums", 2), ("Electric Bass (finger)", 1)]


def test_an_unknown_code_with_complete_notes_converts_with_a_warning(fake_api, task, tmp_path):
    task_id = task("unknown-code-notes")
    result = fetch_cli(fake_api, task_id, "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert (
        f"warning: task {task_id}: the API answered code 209 (partial content) with complete notes; converted them"
        in result.stderr.splitlines()
    )
    assert len(fake_api.seen(task_id)) == 1


def test_a_task_id_from_the_server_cannot_write_outside_the_output_folder(fake_api, task, tmp_path):
    out = tmp_path / "a" / "b"
    result = fetch_cli(fake_api, task("hostile-id"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["a/b/x_.._.._escaped.json", "a/b/x_.._.._escaped.mid"]


def test_every_failure_line_names_its_task(raw_api, tmp_path):
    stamp = time.monotonic_ns()
    ok, reset, chunks = f"complete~{stamp}", f"reset~{stamp}", f"huge-declared~{stamp}"
    env = {"MIDIEXPORT_API_KEY": API_KEY, "MIDIEXPORT_BASE_URL": raw_api.url}
    result = run("fetch", ok, reset, chunks, "-o", str(tmp_path), "--timeout", "2", env=env)
    assert result.exit_code == 1
    failures = [line for line in result.stderr.splitlines() if "cannot reach" in line or "refused" in line]
    # each line as its task ends (tasks named by their ids are written as they finish)
    assert sorted(line.split(":")[0] for line in failures) == sorted([f"task {reset}", f"task {chunks}"])
    assert (tmp_path / f"{ok}.mid").exists()


def test_a_task_of_several_songs_into_one_named_file_is_refused_before_any_write(tmp_path):
    from midiexport.errors import OutputError
    from midiexport.jobs.runner import OutputFile, Pending, Rendered

    out = tmp_path / "x.mid"
    songs = [Rendered("task t", f"song-{n}", (OutputFile("", ".mid", b"MThd"),)) for n in (1, 2)]
    destination = Destination(str(out))
    with pytest.raises(OutputError, match="names one file but there are several results; give a folder instead"):
        Pending("task t", lambda: songs, destination).result()
    assert not out.exists()  # not even the first song
    [written] = Pending("task t", lambda: songs[:1], destination).result()  # one song fits
    assert written.paths == (str(out),) and out.read_bytes() == b"MThd"
    with pytest.raises(OutputError, match="several results"):  # the file written counts
        Pending("task u", lambda: songs[1:], destination).result()


def test_a_unit_is_refused_one_named_file_by_the_mid_files_it_would_write():
    from midiexport.errors import InputError
    from midiexport.jobs.runner import OutputFile, Pending, Rendered

    def refusal(*rendered: Rendered) -> str | None:
        return Pending("a.json", lambda: list(rendered), Destination("x.mid")).refusal()

    song = Rendered("a.json", "a", (OutputFile("", ".mid", b"MThd"), OutputFile("", ".json", b"{}")))
    split = Rendered("a.json", "a", (OutputFile(" (Bass)", ".mid", b"MThd"), OutputFile(" (Keys)", ".mid", b"MThd")))
    failed = Rendered("a.json: line 2", "a-2", error=InputError("a.json: line 2 is not valid JSON"))
    assert refusal(song, failed) is None  # a companion (.json) and a failure write no .mid
    assert refusal(split) is not None  # one song, two .mid files (--split)
    assert refusal(song, song) is not None


def test_a_task_id_given_twice_is_fetched_once(fake_api, task, tmp_path):
    task_id = task("complete")
    result = fetch_cli(fake_api, task_id, task_id, "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert len(fake_api.seen(task_id)) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{task_id}.json", f"{task_id}.mid"]  # no -2
    lines = result.stderr.splitlines()
    assert lines[0] == "1 task id given again fetched once"
    assert lines[-1].startswith("1 converted (")


def test_a_finished_task_is_written_while_one_before_it_is_pending_and_ctrl_c_keeps_it(fake_api, task, tmp_path):
    import signal
    import subprocess
    import sys

    from conftest import package_env
    from midiexport.io.files import TEMP_PREFIX

    pending, done, out = task("pending-forever"), task("complete"), tmp_path / "out"
    env = package_env(MIDIEXPORT_API_KEY=API_KEY, MIDIEXPORT_BASE_URL=fake_api.url)
    command = [sys.executable, "-m", "midiexport", "fetch", pending, done, "-o", str(out), "--poll-interval", "0.05"]
    batch = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 30
    while not (out / f"{done}.json").exists() and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.01)
    assert (out / f"{done}.json").exists(), "the finished task was not written while the first one was pending"
    assert batch.poll() is None  # the first task is still polled
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=30)
    assert batch.returncode == 130, stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{done}.json", f"{done}.mid"]  # whole files only
    assert not any(p.name.startswith(TEMP_PREFIX) for p in out.iterdir())
    sent = api_notes(load_fixture("record-info.json"))  # what the server answers for a complete task
    written = pretty((out / f"{done}.mid").read_bytes()).instruments
    assert [len(instrument.notes) for instrument in written] == [len(notes) for notes in sent.values()]
    assert json.loads((out / f"{done}.json").read_text())["data"]["taskId"] == done
    assert b"interrupted: 1 converted" in stderr


@pytest.mark.parametrize("command", ["fetch", "generate"])
def test_api_commands_help_says_tempo_map_and_max_input_mb_are_not_used(command):
    text = " ".join(run(command, "--help").output.split())
    assert "For .mid input" not in text and "Largest input file" not in text
    assert "--tempo-map [bpm|keep] Not used by fetch or generate" in text
    assert "--max-input-mb MB Not used by fetch or generate: an API answer is refused past 64 MiB" in text
    convert = " ".join(run("convert", "--help").output.split())  # convert reads files: the options keep their help
    assert "For .mid input" in convert and "Largest input file" in convert
