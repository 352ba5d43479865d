"""The transport against servers that misbehave at the socket level (conftest.RawServer):
every exchange ends by the deadline, answers are capped after decoding, every failure
line names its task, and the key never reaches a message."""

from __future__ import annotations

import time

import pytest

from conftest import API_KEY, run
from midiexport.errors import NetworkError, UnconfirmedRequest
from midiexport.io.client import ApiClient, ClientSettings
from midiexport.io.http import Transport, check_api_key, check_base_url, redact_url

SMALL_CAP = 2 * 2**20  # keeps the oversize cases quick; the default cap is tested through the CLI


def transport_for(api, **overrides) -> Transport:
    options = dict(connect_timeout_s=1.0, read_timeout_s=5.0, max_answer_bytes=SMALL_CAP)
    options.update(overrides)
    return Transport(API_KEY, api.url, **options)


def get(api, key, *, within_s=3.0, **overrides):
    with_transport = transport_for(api, **overrides)
    try:
        return with_transport.request("GET", "/api/v1/midi/record-info", task_id=key,
                                      deadline=time.monotonic() + within_s, params={"taskId": key})  # fmt: skip
    finally:
        with_transport.close()


@pytest.mark.parametrize("scenario", ["drip", "drip-then-stall", "drip-headers"])
def test_a_dripping_or_stalled_body_ends_at_the_deadline(raw_api, scenario):
    key = f"{scenario}~{time.monotonic_ns()}"
    began = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        get(raw_api, key, within_s=1.5)
    assert time.monotonic() - began < 4  # the deadline (1.5 s), not the read timeout (5 s) or the drip (300 s)
    assert (
        str(caught.value)
        == f"task {key}: no complete answer from {raw_api.url[7:]} before the deadline (the timeout); gave up"
    )


@pytest.mark.parametrize(
    ("scenario", "cap"),
    [("endless-chunks", SMALL_CAP), ("gzip-bomb", SMALL_CAP), ("huge-declared", SMALL_CAP)],
)
def test_an_answer_over_the_size_limit_is_refused_counted_after_decoding(raw_api, scenario, cap):
    key = f"{scenario}~{time.monotonic_ns()}"
    with pytest.raises(NetworkError) as caught:
        get(raw_api, key, within_s=20)
    assert str(caught.value) == (
        f"task {key}: the answer from {raw_api.url[7:]} is larger than 2 MiB once decoded; refused "
        "(no MIDI record is that large)"
    )
    assert caught.value.retry is False


def test_a_connection_reset_names_the_task_and_may_be_retried(raw_api):
    key = f"reset~{time.monotonic_ns()}"
    with pytest.raises(NetworkError) as caught:
        get(raw_api, key)
    assert str(caught.value).startswith(f"task {key}: cannot reach {raw_api.url[7:]}: ")
    assert (caught.value.retry, caught.value.sent) == (True, True)


def test_a_refused_connection_was_not_sent():
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = Transport(API_KEY, f"http://127.0.0.1:{port}", connect_timeout_s=1, read_timeout_s=1)
    with pytest.raises(NetworkError) as caught:
        transport.request("GET", "/x", task_id="t1", deadline=time.monotonic() + 2)
    assert (caught.value.retry, caught.value.sent) == (True, False)
    assert str(caught.value).startswith(f"task t1: cannot reach 127.0.0.1:{port}: ")


# --- POST: never sent twice when its fate is unknown -----------------------------------


def post(api, scenario, **overrides):
    settings = dict(api_key=API_KEY, base_url=api.url, read_timeout_s=0.3, connect_timeout_s=1.0,
                    backoff_s=0.01, backoff_max_s=0.02)  # fmt: skip
    settings.update(overrides)
    key = f"{scenario}~{time.monotonic_ns()}"
    with ApiClient(ClientSettings(**settings)) as client:
        return key, client.post_json(f"/api/v1/test/{key}", {"taskId": "sep-7", "callBackUrl": "https://cb.example"})


@pytest.mark.parametrize("scenario", ["slow-answer", "reset", "server-error", "drip"])
def test_a_post_whose_answer_never_came_is_sent_exactly_once(raw_api, scenario):
    with pytest.raises(UnconfirmedRequest) as caught:
        post(raw_api, scenario, max_attempts=6)
    [request] = raw_api.seen(caught.value.path.rsplit("/", 1)[-1], "POST")
    assert request["body"] == b'{"taskId":"sep-7","callBackUrl":"https://cb.example"}'
    message = str(caught.value)
    assert message.startswith(f"task sep-7: POST {caught.value.path} was sent, but ")
    assert message.endswith(
        "it may have created a new task (and used credits), so it was not sent again: look for that task "
        "(its callback, or the account's task list) before asking again"
    )


def test_a_post_refused_with_rate_limit_is_sent_again(raw_api):
    key, answer = post(raw_api, "rate-limited-once")
    assert answer["data"]["taskId"] == "created-1"
    assert len(raw_api.seen(key, "POST")) == 2


# --- the key and the base URL ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (API_KEY + "\r", "the API key contains a control character (a line end copied with it?)"),
        ("abc\ndef", "the API key contains a control character (a line end copied with it?)"),
        ("clé-secrète", "the API key contains a character that is not ASCII; check that it was copied whole"),
        (" " + API_KEY, "the API key contains a space; check that it was copied whole"),
        ("", "the API key is empty"),
    ],
)
def test_a_key_unfit_for_a_header_is_refused_without_showing_it(key, message):
    with pytest.raises(ValueError) as caught:
        check_api_key(key)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "url",
    ["http://alice:PASS@127.0.0.1:8000", "https://alice:PASS@api.kie.ai", "https://PASS@api.kie.ai/x",
     "http://alice:PASS@127.0.0.1:notaport"],
)  # fmt: skip
def test_credentials_in_the_base_url_are_refused_and_never_shown(url):
    with pytest.raises(ValueError) as caught:
        check_base_url(url)
    assert "PASS" not in str(caught.value) and "***@" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:PASS@127.0.0.1:8000/a?b=c", "http://***@127.0.0.1:8000/a?b=c"),
        ("https://api.kie.ai/x", "https://api.kie.ai/x"),
        ("alice:PASS@host/x", "***@host/x"),
        ("https://a@b@host", "https://***@host"),
    ],
)
def test_redact_url_hides_userinfo(url, shown):
    assert redact_url(url) == shown


def fetch_cli(*args, env=None):
    return run("fetch", *args, env={"MIDIEXPORT_API_KEY": API_KEY, **(env or {})})


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["t1", "--api-key", API_KEY + "\r"], {}, "Error: the API key contains a control character"),
        (["t1"], {"MIDIEXPORT_API_KEY": "clé"}, "Error: the API key contains a character that is not ASCII"),
        (["t1", "--base-url", "http://alice:PASS@127.0.0.1:9"], {}, "Error: base URL 'http://***@127.0.0.1:9' "
         "holds a user name or password; remove it (the API key goes in --api-key)"),
        (["t1"], {"MIDIEXPORT_BASE_URL": "https://alice:PASS@api.kie.ai"}, "Error: base URL "),
        ([""], {}, "Error: a task id is empty (''); give the id the API returned"),
        (["ok", "  "], {}, "Error: a task id is empty ('  '); give the id the API returned"),
        (["t1", "--timeout", "nan"], {}, "Error: Invalid value for '--timeout': 'nan' is not a finite number"),
        (["t1", "--timeout", "inf"], {}, "Error: Invalid value for '--timeout': 'inf' is not a finite number"),
        (["t1", "--timeout", "-5"], {}, "Error: Invalid value for '--timeout': '-5' is not a finite number"),
        (["t1", "--poll-interval", "nan"], {}, "Error: Invalid value for '--poll-interval': 'nan' is not a finite"),
        (["t1", "--poll-interval", "-inf"], {}, "Error: Invalid value for '--poll-interval': '-inf' is not a"),
    ],
)  # fmt: skip
def test_usage_errors_come_before_any_request(args, env, line):
    result = fetch_cli(*args, env=env)
    assert result.exit_code == 2
    assert line in result.stderr
    assert API_KEY not in result.stderr and "PASS" not in result.stderr and "clé" not in result.stderr


# --- no byte written anywhere holds a secret -------------------------------------------

FAKE_API_FAULTS = ["complete", "bad-key", "no-credits", "record-null", "maintenance", "truncated", "html-502",
                   "redirect-away", "redirect-userinfo", "slow", "failed-generation", "hostile-id"]  # fmt: skip
RAW_FAULTS = [
    "drip",
    "drip-then-stall",
    "drip-headers",
    "reset",
    "endless-chunks",
    "gzip-bomb",
    "huge-declared",
    "server-error",
]


def test_no_output_holds_the_key_or_the_base_url_password(fake_api, raw_api, tmp_path):
    """Every scenario with -v and without: stdout, stderr and every file are scanned."""
    from conftest import URL_PASSWORD

    runs = []
    stamp = time.monotonic_ns()
    for api, faults in ((fake_api, FAKE_API_FAULTS), (raw_api, RAW_FAULTS)):
        for verbose in ([], ["-v"]):
            ids = [f"{fault}~{stamp}-{len(verbose)}" for fault in faults]
            args = ["fetch", *ids, "-o", str(tmp_path / "out"), "--timeout", "1", "--poll-interval", "0.05", *verbose]
            runs.append(run(*args, env={"MIDIEXPORT_API_KEY": API_KEY, "MIDIEXPORT_BASE_URL": api.url}))
    port = raw_api.url.rsplit(":", 1)[1]
    for base in (f"http://alice:{URL_PASSWORD}@127.0.0.1:{port}", f"https://{URL_PASSWORD}@api.kie.ai"):
        runs.append(run("fetch", "t1", "-v", "--base-url", base, env={"MIDIEXPORT_API_KEY": API_KEY}))
    runs.append(run("fetch", "t1", "-v", "--api-key", API_KEY + "\r"))
    runs.append(run("fetch", "t1", "-v", "--api-key", API_KEY + "é"))
    assert not any("Traceback" in result.stderr for result in runs)  # -v says these errors in their one line too
    written = [result.stdout_bytes + result.stderr_bytes for result in runs]
    written += [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) > len(runs)  # files were written too (the complete tasks)
    for data in written:
        assert API_KEY.encode() not in data
        assert URL_PASSWORD.encode() not in data


# The peak resident memory of this process: VmHWM, because getrusage's ru_maxrss survives
# execve on Linux and would report the forking pytest process's own peak.
PEAK_SCRIPT = """
import sys
from midiexport.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("peak_rss_kib", peak, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("scenario", ["gzip-bomb", "endless-chunks"])
def test_memory_stays_bounded_by_the_answer_limit(raw_api, tmp_path, scenario):
    """A real process fetching a gzip bomb (4 GiB inflated) or an endless body peaks near the 64 MiB limit."""
    import subprocess
    import sys

    from conftest import package_env

    key = f"{scenario}~{time.monotonic_ns()}"
    env = package_env(MIDIEXPORT_API_KEY=API_KEY, MIDIEXPORT_BASE_URL=raw_api.url)
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, "fetch", key, "-o", str(tmp_path), "--timeout", "60"],
                          env=env, capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert f"task {key}: the answer from {raw_api.url[7:]} is larger than 64 MiB once decoded; refused" in done.stderr
    peak_mib = int(done.stderr.split("peak_rss_kib")[1].split()[0]) / 1024
    print(f"{scenario}: peak RSS {peak_mib:.0f} MiB")
    assert peak_mib < 200  # the interpreter and libraries (~35 MiB) plus the 64 MiB limit
