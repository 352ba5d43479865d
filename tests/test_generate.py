"""`midiexport generate` against a loopback fake of the whole chain (conftest.ChainApi).

Every test counts the POSTs the server saw per path: a paid request is never sent
twice, and never sent at all without consent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from conftest import (
    API_KEY,
    CHAIN_MIDI,
    CHAIN_MIDI_POST,
    CHAIN_SEPARATE,
    CHAIN_SEPARATION,
    package_env,
    run,
)
from midiexport.jobs.generate import PLACEHOLDER_CALLBACK

MUSIC = "music-1"
FAST = ["--poll-interval", "0.02", "--timeout", "5"]


def generate(api, out: Path, *args: str, yes: bool = True):
    env = {"MIDIEXPORT_BASE_URL": api.url, "MIDIEXPORT_API_KEY": API_KEY}
    extra = ["--yes"] if yes else []
    return run("generate", MUSIC, "-o", str(out), *FAST, *extra, *args, env=env)


def posts(api) -> tuple[int, int]:
    """(separation POSTs, MIDI POSTs) the server saw."""
    return api.posts(CHAIN_SEPARATE), api.posts(CHAIN_MIDI_POST)


def state(out: Path) -> dict:
    return json.loads((out / f"{MUSIC}.generate.json").read_text())


# --- the whole chain -------------------------------------------------------------------


def test_generate_walks_the_chain_and_writes_a_mid_that_mido_reads(chain_api, tmp_path):
    result = generate(chain_api, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert posts(chain_api) == (1, 1)
    assert "separation task: sep-1\n" in result.stderr
    assert "MIDI task: midi-1\n" in result.stderr
    [separate] = chain_api.seen(CHAIN_SEPARATE, "POST")
    assert separate["body"] == {"taskId": MUSIC, "audioId": "song-a", "callBackUrl": PLACEHOLDER_CALLBACK,
                                "type": "split_stem"}  # fmt: skip
    [ask_midi] = chain_api.seen(CHAIN_MIDI_POST, "POST")
    assert ask_midi["body"] == {"taskId": "sep-1", "callBackUrl": PLACEHOLDER_CALLBACK}
    midi = mido.MidiFile(tmp_path / "Neon Rain.mid")
    assert sum(m.type == "note_on" and m.velocity > 0 for t in midi.tracks for m in t) > 0
    assert {t.name for t in midi.tracks} >= {"Drums"}


def test_the_kept_json_holds_every_answer_and_converts_to_the_same_mid(chain_api, tmp_path):
    assert generate(chain_api, tmp_path).exit_code == 0
    kept = json.loads((tmp_path / "Neon Rain.json").read_text())
    assert kept["musicRecord"]["data"]["response"]["sunoData"][0]["id"] == "song-a"
    assert kept["separationRecord"]["data"]["successFlag"] == "SUCCESS"
    assert kept["requests"]["separation"]["data"]["taskId"] == "sep-1"
    assert kept["requests"]["midi"]["data"]["taskId"] == "midi-1"
    assert kept["midiRecord"]["data"]["taskId"] == "midi-1"
    assert kept["chain"]["separationTask"] == "sep-1"
    again = run("convert", str(tmp_path / "Neon Rain.json"), "-o", str(tmp_path / "again"))
    assert again.exit_code == 0, again.stderr
    assert (tmp_path / "again" / "Neon Rain.mid").read_bytes() == (tmp_path / "Neon Rain.mid").read_bytes()


def test_callback_url_is_sent_in_both_requests(chain_api, tmp_path):
    assert generate(chain_api, tmp_path, "--callback-url", "http://127.0.0.1:8000/callback").exit_code == 0
    bodies = [r["body"] for r in chain_api.requests if r.get("method") == "POST"]
    assert [b["callBackUrl"] for b in bodies] == ["http://127.0.0.1:8000/callback"] * 2


def test_a_rate_limited_post_is_sent_again_and_failing_polls_are_retried(chain_api, tmp_path):
    # 429 says the request was not carried out: sending it again cannot pay twice.
    chain_api.separation_post = "rate-limited-once"
    chain_api.faults = {CHAIN_SEPARATION: [429], CHAIN_MIDI: [500]}
    result = generate(chain_api, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert posts(chain_api) == (2, 1)
    assert (tmp_path / "Neon Rain.mid").exists()


# --- credits: asked before spending ----------------------------------------------------


def test_without_yes_and_without_a_terminal_nothing_is_sent(chain_api, tmp_path):
    result = generate(chain_api, tmp_path, yes=False)
    assert result.exit_code == 2
    assert "pass --yes" in result.stderr and "50 credits" in result.stderr
    assert chain_api.requests == []


def answering_no(api, out: Path) -> tuple[int, str]:
    """Run ``generate`` without --yes on a terminal, answer "n" to its question; return the exit status and stderr."""
    import pty

    leader, follower = pty.openpty()
    env = package_env(MIDIEXPORT_BASE_URL=api.url, MIDIEXPORT_API_KEY=API_KEY)
    process = subprocess.Popen(
        [sys.executable, "-m", "midiexport", "generate", MUSIC, "-o", str(out), *FAST],
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=out,
    )  # fmt: skip
    os.close(follower)
    os.write(leader, b"n\n")
    _, stderr = process.communicate(timeout=60)
    os.close(leader)
    return process.returncode, stderr.decode()


def test_answering_no_on_a_terminal_sends_nothing(chain_api, tmp_path):
    status, stderr = answering_no(chain_api, tmp_path)
    assert status == 1
    assert "This spends credits: a split_stem separation: 50 credits" in stderr
    assert "price is not stated" in stderr
    assert posts(chain_api) == (0, 0)


# --- choosing the song and the stem ------------------------------------------------------


def test_two_songs_without_audio_id_are_listed_and_nothing_is_paid(chain_api, tmp_path):
    chain_api.songs = [{"id": "song-a", "title": "Neon Rain", "duration": 201.4},
                       {"id": "song-b", "title": "Neon Rain (take 2)", "duration": 187.0}]  # fmt: skip
    result = generate(chain_api, tmp_path)
    assert result.exit_code == 2
    assert "has 2 songs; choose one with --audio-id" in result.stderr
    assert "song-a  Neon Rain  201 s" in result.stderr and "song-b  Neon Rain (take 2)  187 s" in result.stderr
    assert posts(chain_api) == (0, 0)


def test_audio_id_chooses_one_of_two_songs(chain_api, tmp_path):
    chain_api.songs = [{"id": "song-a", "title": "One"}, {"id": "song-b", "title": "Two"}]
    assert generate(chain_api, tmp_path, "--audio-id", "song-b").exit_code == 0
    [separate] = chain_api.seen(CHAIN_SEPARATE, "POST")
    assert separate["body"]["audioId"] == "song-b"
    assert (tmp_path / "Two.mid").exists()


def test_stem_sends_that_stems_id_as_audio_id(chain_api, tmp_path):
    assert generate(chain_api, tmp_path, "--stem", "bass").exit_code == 0
    [ask_midi] = chain_api.seen(CHAIN_MIDI_POST, "POST")
    assert ask_midi["body"] == {"taskId": "sep-1", "callBackUrl": PLACEHOLDER_CALLBACK, "audioId": "stem-bass"}


def test_an_unknown_stem_names_the_closest_and_asks_nothing_more(chain_api, tmp_path):
    result = generate(chain_api, tmp_path, "--stem", "Bas")
    assert result.exit_code == 1
    assert "separation task sep-1 has no stem 'Bas'; did you mean 'Bass'? its stems: Vocals, Bass, Drums" in (
        result.stderr
    )
    assert "its stems: Vocals, Bass, Drums (continue with --resume --stem NAME)\n" in result.stderr
    assert posts(chain_api) == (1, 0)


def test_a_stem_that_matched_none_is_replaced_on_resume_without_paying_the_separation_again(chain_api, tmp_path):
    assert generate(chain_api, tmp_path, "--stem", "Bas").exit_code == 1  # as the line says: continue with --resume
    resumed = generate(chain_api, tmp_path, "--resume", "--stem", "Bass")
    assert resumed.exit_code == 0, resumed.stderr
    assert posts(chain_api) == (1, 1)
    [ask_midi] = chain_api.seen(CHAIN_MIDI_POST, "POST")
    assert ask_midi["body"]["audioId"] == "stem-bass"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--stem", " ", "--stem is empty; give a stem's name"),
        ("--callback-url", "notaurl", "--callback-url 'notaurl' is not an http(s) URL with a host"),
        ("--callback-url", "ftp://host/cb", "--callback-url 'ftp://host/cb' is not an http(s) URL"),
        ("--callback-url", "http://[::1", "--callback-url 'http://[::1' is not an http(s) URL"),
        ("--callback-url", "http://h:abc/cb", "--callback-url 'http://h:abc/cb' is not an http(s) URL"),
    ],
)
def test_an_empty_stem_or_a_callback_url_that_is_no_url_is_refused_before_anything_is_paid(
    chain_api, tmp_path, flag, value, message
):
    result = generate(chain_api, tmp_path, flag, value)
    assert result.exit_code == 2
    assert message in result.stderr
    assert posts(chain_api) == (0, 0)


def test_resuming_nothing_or_with_another_stem_is_a_usage_error_naming_the_flags(chain_api, tmp_path):
    nothing = generate(chain_api, tmp_path, "--resume")
    assert nothing.exit_code == 2 and "does not exist (give the same -o as the first run)" in nothing.stderr
    assert generate(chain_api, tmp_path, "--stem", "bass").exit_code == 0
    other = generate(chain_api, tmp_path, "--resume", "--stem", "drums")
    assert other.exit_code == 2 and "was started with --stem bass, not drums; remove it to start over" in other.stderr


# --- failures: one line naming the task ---------------------------------------------------


def test_a_failed_separation_ends_in_one_line_naming_it(chain_api, tmp_path):
    chain_api.separation_flags = ["PENDING", "GENERATE_AUDIO_FAILED"]
    result = generate(chain_api, tmp_path, "-q")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "separation task: sep-1\nseparation task sep-1: failed (GENERATE_AUDIO_FAILED: audio too short)\n"
    )
    assert posts(chain_api) == (1, 0)


def test_a_failed_midi_task_ends_in_one_line_naming_it(chain_api, tmp_path):
    chain_api.midi_flags = [0, 3]
    result = generate(chain_api, tmp_path, "-q")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "\nMIDI task: midi-1\ntask midi-1: failed: MIDI generation failed (500: model crashed)\n"
    )
    assert posts(chain_api) == (1, 1)


# --- never twice: unconfirmed POSTs, resuming from each step -------------------------------


def test_a_separation_post_that_times_out_after_creating_its_task_is_not_sent_again(chain_api, tmp_path):
    chain_api.separation_post = "timeout"
    result = generate(chain_api, tmp_path, "--timeout", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"task {MUSIC}: the separation request was sent, but no complete answer from 127.0.0.1:"
    )
    assert "before the deadline (--timeout); gave up" in result.stderr  # the library's phrase, in the CLI's words
    assert (
        "a separation task may have been created (and charged), so it is not sent again: find it in your "
        f"account and continue with `midiexport generate {MUSIC} --resume --separation-task ID`"
    ) in result.stderr
    assert posts(chain_api) == (1, 0)
    refused = generate(chain_api, tmp_path, "--resume")  # the fate is still unknown: refuse, send nothing
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"task {MUSIC}: the separation request of an earlier run was never answered")
    assert posts(chain_api) == (1, 0)
    chain_api.separation_post = "ok"
    resumed = generate(chain_api, tmp_path, "--resume", "--separation-task", "sep-1")
    assert resumed.exit_code == 0, resumed.stderr
    assert posts(chain_api) == (1, 1)
    assert (tmp_path / "Neon Rain.mid").exists()


def test_a_resume_says_the_saved_reason_in_the_words_the_first_run_said_it(chain_api, tmp_path):
    chain_api.separation_post = "timeout"
    first = generate(chain_api, tmp_path, "--timeout", "1")
    assert first.exit_code == 1
    reason = first.stderr.split("the separation request was sent, but ", 1)[1].split("; a separation task", 1)[0]
    assert reason.endswith("before the deadline (--timeout); gave up")  # the library's phrase in the CLI's words
    assert state(tmp_path)["unconfirmed_marks"]["separation"]  # the phrase's place is saved with the reason
    resumed = generate(chain_api, tmp_path, "--resume")
    assert resumed.exit_code == 1
    assert resumed.stderr.startswith(
        f"task {MUSIC}: the separation request of an earlier run was never answered ({reason}); "
    )
    assert "the timeout" not in resumed.stderr
    assert posts(chain_api) == (1, 0)


def test_a_midi_post_answered_500_is_not_sent_again_and_fetch_takes_over(chain_api, tmp_path):
    chain_api.midi_post = "server-error"
    result = generate(chain_api, tmp_path)
    assert result.exit_code == 1
    assert (
        "\ntask sep-1: the MIDI request was sent, but the API "
        "answered 500 (internal error); a MIDI task may have been created (and charged), "
        "so it is not sent again: find it in your account and run `midiexport fetch ID`"
    ) in result.stderr
    assert posts(chain_api) == (1, 1)
    assert generate(chain_api, tmp_path, "--resume").exit_code == 1
    assert posts(chain_api) == (1, 1)
    chain_api.created[CHAIN_MIDI_POST] = "midi-7"  # the task the user found in the account
    env = {"MIDIEXPORT_BASE_URL": chain_api.url, "MIDIEXPORT_API_KEY": API_KEY}
    fetched = run("fetch", "midi-7", "-o", str(tmp_path), *FAST, env=env)
    assert fetched.exit_code == 0, fetched.stderr
    assert posts(chain_api) == (1, 1)


def test_resume_after_the_separation_post_pays_nothing_again(chain_api, tmp_path):
    chain_api.separation_flags = ["PENDING"]  # stopped while the separation runs
    first = generate(chain_api, tmp_path, "--timeout", "1")
    assert first.exit_code == 1  # still pending at --timeout (or its last poll cut by it)
    assert state(tmp_path)["separation_task"] == "sep-1"
    chain_api.separation_flags = ["SUCCESS"]
    resumed = generate(chain_api, tmp_path, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert posts(chain_api) == (1, 1)


def test_resume_after_the_separation_succeeded_pays_only_for_midi(chain_api, tmp_path):
    chain_api.midi_post = "no-credits"  # stopped after the separation, before a MIDI task exists
    first = generate(chain_api, tmp_path)
    assert first.exit_code == 1 and "the account has no credits left" in first.stderr
    assert state(tmp_path)["answers"]["separation"]["data"]["successFlag"] == "SUCCESS"
    chain_api.midi_post = "ok"
    polled = len(chain_api.seen(CHAIN_SEPARATION))
    resumed = generate(chain_api, tmp_path, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert posts(chain_api) == (1, 2)  # the refused MIDI request, then the one that was answered
    assert len(chain_api.seen(CHAIN_SEPARATION)) == polled  # the saved answer is used


def polling_midi(api, out: Path) -> subprocess.Popen[bytes]:
    """Start ``generate`` in a child (SIGINT as from a terminal) and return it once it polls a MIDI task that never ends."""
    api.midi_flags = [0]
    return generating_until(api, out, b"MIDI task: ")


def generating_until(api, out: Path, told: bytes, *args: str) -> subprocess.Popen[bytes]:
    """Start ``generate`` in a child (SIGINT as from a terminal) and return it once a line it tells starts with ``told``."""
    import signal

    env = package_env(MIDIEXPORT_BASE_URL=api.url, MIDIEXPORT_API_KEY=API_KEY)
    process = subprocess.Popen(
        [sys.executable, "-m", "midiexport", "generate", MUSIC, "-o", str(out), "--yes", "--poll-interval", "0.05",
         *args],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=out,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert process.stderr is not None
    lines = []
    while not lines or not lines[-1].startswith(told):
        lines.append(process.stderr.readline())
        assert lines[-1], b"".join(lines)
    return process


def test_resume_after_a_kill_following_the_midi_post_sends_no_post(chain_api, tmp_path):
    process = polling_midi(chain_api, tmp_path)
    process.kill()  # SIGKILL: no clean-up runs
    process.wait()
    assert process.stderr is not None
    process.stderr.close()
    assert state(tmp_path)["midi_task"] == "midi-1"
    chain_api.midi_flags = [1]
    resumed = generate(chain_api, tmp_path, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert posts(chain_api) == (1, 1)
    assert (tmp_path / "Neon Rain.mid").exists()


def test_ctrl_c_while_the_midi_task_is_polled_says_to_run_again_with_resume_which_then_finishes(chain_api, tmp_path):
    import signal

    process = polling_midi(chain_api, tmp_path)
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    rest = process.stderr.read().decode()
    process.wait(timeout=30)
    process.stderr.close()
    assert process.returncode == 130, rest
    assert "interrupted: 0 converted; run the same command with --resume to go on from the step it reached" in rest
    chain_api.midi_flags = [1]
    assert generate(chain_api, tmp_path).exit_code == 2  # as the line says: without --resume it is refused
    resumed = generate(chain_api, tmp_path, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert posts(chain_api) == (1, 1)


def test_ctrl_c_while_the_music_task_is_polled_says_interrupted_and_to_run_the_same_command_again(chain_api, tmp_path):
    import signal

    chain_api.music_status = "PENDING"  # nothing is known yet: no state saved, nothing to resume
    process = generating_until(chain_api, tmp_path, f"task {MUSIC}: ".encode())  # polling the music task
    assert process.stderr is not None
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read().decode()
    process.wait(timeout=30)
    process.stderr.close()
    assert process.returncode == 130, rest
    assert (
        rest.splitlines()[-1] == "interrupted: 0 converted; run the same command again to finish "
        "(finished files are kept)"
    )
    assert not (tmp_path / f"{MUSIC}.generate.json").exists() and posts(chain_api) == (0, 0)


@pytest.mark.parametrize(("signum", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_the_music_task_is_polled_is_said_and_writes_the_report_marked_interrupted(
    chain_api, tmp_path, signum, status
):
    import signal

    chain_api.music_status = "PENDING"  # the music task never ends: the chain's own steps never begin
    report = tmp_path / "report.json"
    process = generating_until(chain_api, tmp_path, f"task {MUSIC}: ".encode(), "--report", str(report))
    assert process.stderr is not None
    process.send_signal(getattr(signal, signum))
    rest = process.stderr.read().decode()
    process.wait(timeout=30)
    process.stderr.close()
    assert process.returncode == status, rest
    assert rest.splitlines()[-1].startswith("interrupted: 0 converted; run the same command again to finish"), rest
    data = json.loads(report.read_text())
    assert data["interrupted"] is True and data["command"] == "generate"
    assert posts(chain_api) == (0, 0)


def test_ctrl_c_at_the_question_declines_it_and_sends_nothing(chain_api, tmp_path):
    import pty
    import signal

    leader, follower = pty.openpty()
    env = package_env(MIDIEXPORT_BASE_URL=chain_api.url, MIDIEXPORT_API_KEY=API_KEY)
    process = subprocess.Popen(
        [sys.executable, "-m", "midiexport", "generate", MUSIC, "-o", str(tmp_path), *FAST],
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.close(follower)
    assert process.stderr is not None
    told = b""
    while b"Go on?" not in told:  # the question is asked: the music task was read
        told += process.stderr.read1(4096)
        assert process.poll() is None, told
    while Path(f"/proc/{process.pid}/stat").read_text().split(") ")[-1][0] != "S":  # until it waits for the answer
        assert process.poll() is None  # (a signal before its read began would wait unseen until a key is pressed)
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read().decode()
    process.wait(timeout=30)
    process.stderr.close()
    assert process.stdout is not None
    process.stdout.close()
    os.close(leader)
    assert process.returncode == 1, rest
    assert "nothing was sent that costs credits; run the same command with --resume" in rest
    assert "interrupted" not in rest and posts(chain_api) == (0, 0)


def test_declining_at_the_question_says_to_resume_as_the_state_is_saved(chain_api, tmp_path):
    status, stderr = answering_no(chain_api, tmp_path)
    assert status == 1
    assert ("nothing was sent that costs credits; run the same command with --resume to go on from the step it "
            "reached") in stderr  # fmt: skip
    assert posts(chain_api) == (0, 0)
    assert generate(chain_api, tmp_path).exit_code == 2  # as the line says: without --resume it is refused
    assert generate(chain_api, tmp_path, "--resume").exit_code == 0


def test_a_second_run_without_resume_refuses_before_sending_anything(chain_api, tmp_path):
    assert generate(chain_api, tmp_path, "--stem", "Bas").exit_code == 1  # stopped half-way: no stem matched
    seen = len(chain_api.requests)
    again = generate(chain_api, tmp_path, "--stem", "Bass")
    assert again.exit_code == 2
    assert "started earlier (separation task sep-1); pass --resume to continue it without paying again" in again.stderr
    assert len(chain_api.requests) == seen


def test_a_finished_chain_run_again_without_resume_is_said_finished(chain_api, tmp_path):
    assert generate(chain_api, tmp_path).exit_code == 0
    seen = len(chain_api.requests)
    again = generate(chain_api, tmp_path)
    assert again.exit_code == 2
    assert f"holds a finished generate of music task {MUSIC} (" in again.stderr
    assert "pass --resume to write its files again where missing (the API is not asked)" in again.stderr
    assert "started earlier" not in again.stderr and len(chain_api.requests) == seen
    kept = generate(chain_api, tmp_path, "--resume")  # as the line says: the file there is kept
    assert kept.exit_code == 0 and "1 skipped (exist)" in kept.stderr, kept.stderr
    assert kept.stderr.splitlines()[-1].startswith("1 task skipped: its files exist and were kept (--overwrite")
    replaced = generate(chain_api, tmp_path, "--resume", "--overwrite")
    assert replaced.exit_code == 0 and "1 converted" in replaced.stderr, replaced.stderr
    assert len(chain_api.requests) == seen


def test_resuming_a_finished_chain_writes_again_without_asking_the_api(chain_api, tmp_path):
    assert generate(chain_api, tmp_path).exit_code == 0
    (tmp_path / "Neon Rain.mid").unlink()
    seen = len(chain_api.requests)
    again = generate(chain_api, tmp_path, "--resume", yes=False)
    assert again.exit_code == 0, again.stderr
    assert len(chain_api.requests) == seen
    assert (tmp_path / "Neon Rain.mid").exists()


def test_pending_separation_and_midi_tasks_are_polled_until_they_end(chain_api, tmp_path):
    chain_api.separation_flags = ["PENDING", "PENDING", "SUCCESS"]
    assert generate(chain_api, tmp_path).exit_code == 0
    assert len(chain_api.seen(CHAIN_SEPARATION)) == 3
    assert len(chain_api.seen(CHAIN_MIDI)) == 2


def test_a_midi_post_past_the_read_timeout_is_sent_once_and_a_resume_refuses_to_repeat_it(chain_api, tmp_path):
    # The library with a short read timeout: the server creates midi-1, then answers too late.
    from midiexport.errors import UnconfirmedRequest
    from midiexport.io.client import ClientSettings
    from midiexport.jobs.fetch_tasks import FetchOptions
    from midiexport.jobs.generate import GenerateOptions, open_chain, walk

    chain_api.midi_post, chain_api.post_sleep_s = "timeout", 1.0
    settings = ClientSettings(api_key=API_KEY, base_url=chain_api.url, read_timeout_s=0.3, backoff_s=0.01)
    wanted = GenerateOptions(MUSIC, FetchOptions(API_KEY, chain_api.url, poll_interval_s=0.02, timeout_s=5))
    told: list[str] = []
    for resume in (False, True):
        chain = open_chain(wanted, str(tmp_path), resume=resume, tell=told.append, settings=settings)
        with chain.client, pytest.raises(UnconfirmedRequest) as caught:
            walk(chain)
        assert caught.value.path == CHAIN_MIDI_POST
    assert told == ["separation task: sep-1"]
    assert posts(chain_api) == (1, 1)
    assert chain_api.created[CHAIN_MIDI_POST] == "midi-1"  # the task exists; only the user can name it now
    assert state(tmp_path)["unconfirmed"]["midi"].endswith("no answer within 0.3 s")


def test_a_damaged_state_file_is_one_line_and_nothing_is_sent(chain_api, tmp_path):
    (tmp_path / f"{MUSIC}.generate.json").write_text("{not json")
    result = generate(chain_api, tmp_path, "--resume")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{tmp_path / MUSIC}.generate.json: not a generate state file (")
    assert chain_api.requests == []


@pytest.mark.parametrize("make", ["folder", "loop", "unreadable", "unsearchable"])
def test_a_state_path_that_cannot_be_read_is_one_line_and_nothing_is_sent(chain_api, tmp_path, make):
    path = tmp_path / f"{MUSIC}.generate.json"
    reason = {"folder": "Is a directory", "loop": "Too many levels of symbolic links"}.get(make, "Permission denied")
    if make == "folder":
        path.mkdir()
    elif make == "loop":
        path.symlink_to(tmp_path / "other")
        (tmp_path / "other").symlink_to(path)
    elif os.geteuid() == 0:
        pytest.skip("root reads and searches without permission")
    elif make == "unreadable":
        path.write_text("{}")
        path.chmod(0)
    try:
        if make == "unsearchable":
            tmp_path.chmod(0o600)  # its entries cannot be looked at
        for args in ([], ["--resume"], ["--resume", "-v"]):
            result = generate(chain_api, tmp_path, *args)
            assert (result.exit_code, result.stderr.splitlines()) == (1, [
                f"{path}: cannot read the generate state ({reason}); make it a readable file, or move it away to "
                "start over"])  # fmt: skip
    finally:
        tmp_path.chmod(0o700)
    assert chain_api.requests == []


def test_a_file_in_the_way_of_the_output_folder_is_said_as_convert_says_it(chain_api, tmp_path):
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("x")
    env = {"MIDIEXPORT_BASE_URL": chain_api.url, "MIDIEXPORT_API_KEY": API_KEY}
    result = run("generate", MUSIC, "-o", f"{in_the_way}/", *FAST, "--yes", env=env)  # its state: afile/<task>...
    assert result.exit_code == 1, result.stderr
    assert "cannot read the generate state" not in result.stderr  # no state file is there to make readable
    assert "afile is a file, not a folder" in result.stderr, result.stderr
    assert posts(chain_api) == (0, 0)  # nothing paid
