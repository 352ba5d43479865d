"""What an API answer means (midiexport/protocol.py), and that the client and normalize agree on it."""

from __future__ import annotations

import pytest

from conftest import fixture_path, load_fixture
from midiexport import model, protocol
from midiexport.stages.normalize import normalize_payload


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("complete", model.COMPLETE),
        ("Complete ", model.COMPLETE),
        ("failed", model.FAILED),
        ("ERROR", model.FAILED),
        ("running", model.PENDING),
        ("uploading", model.PENDING),
        ("a-word-never-seen", model.PENDING),
        ("", model.EMPTY),
        (None, model.EMPTY),
        (3, model.EMPTY),
    ],
)
def test_state_words_mean_pending_unless_complete_or_a_failure(state, status):
    assert protocol.state_status(state) == status


@pytest.mark.parametrize(
    ("body", "http_status", "action", "code"),
    [
        ({"code": 200, "msg": "success"}, 200, protocol.OK, 200),
        ({"code": 0, "message": "ok"}, 200, protocol.OK, 0),
        ({"code": "0", "msg": "success"}, 200, protocol.OK, 0),
        ({"code": 0, "message": "task failed"}, 200, protocol.REFUSED, 0),
        ({"code": 429, "msg": "slow down"}, 200, protocol.RETRY, 429),
        ({"code": 455, "msg": "maintenance"}, 200, protocol.RETRY, 455),
        ({"code": 430, "msg": "too many"}, 200, protocol.RETRY, 430),
        ({"code": 405, "msg": "too many"}, 200, protocol.RETRY, 405),
        ({"code": 422, "msg": "recordInfo is null"}, 200, protocol.NOT_STORED_YET, 422),
        ({"code": 422, "msg": "taskId is required"}, 200, protocol.REFUSED, 422),
        ({"code": 401, "msg": "Unauthorized"}, 200, protocol.REFUSED, 401),
        ({"code": 200, "msg": "success"}, 503, protocol.RETRY, 503),  # the body says ok, the status does not
        ({"msg": "no code at all"}, 502, protocol.RETRY, 502),
        ({"code": 201, "msg": "created"}, 200, protocol.REFUSED, 201),  # unknown code, no notes
    ],
)
def test_the_body_code_is_read_before_the_http_status(body, http_status, action, code):
    verdict = protocol.read_code(body, http_status)
    assert (verdict.action, verdict.code) == (action, code)


def test_an_unknown_code_with_complete_notes_is_used_with_a_warning_naming_the_code():
    body = {**load_fixture("record-info.json"), "code": 201, "msg": "created"}
    verdict = protocol.read_code(body)
    assert verdict.action == protocol.OK
    assert verdict.warning == "the API answered code 201 (created) with complete notes; converted them"


@pytest.mark.parametrize(
    ("word", "table", "status"),
    [
        ("PENDING", protocol.SEPARATION_FLAGS, model.PENDING),
        ("SUCCESS", protocol.SEPARATION_FLAGS, model.COMPLETE),
        ("CREATE_TASK_FAILED", protocol.SEPARATION_FLAGS, model.FAILED),
        ("CALLBACK_EXCEPTION", protocol.SEPARATION_FLAGS, model.FAILED),
        ("FIRST_SUCCESS", protocol.MUSIC_STATUSES, model.PENDING),
        ("SUCCESS", protocol.MUSIC_STATUSES, model.COMPLETE),
        ("SENSITIVE_WORD_ERROR", protocol.MUSIC_STATUSES, model.FAILED),
        ("SOME_NEW_FAILED", protocol.MUSIC_STATUSES, model.FAILED),
        ("QUEUED", protocol.MUSIC_STATUSES, model.PENDING),
    ],
)
def test_separation_and_music_words_have_a_status(word, table, status):
    assert protocol.word_status(word, table) == status


ANSWERS = {
    "uploading": {"code": 200, "data": {"taskId": "t1", "midiData": {"state": "uploading"}}},
    "flag as text": {"code": 200, "data": {"taskId": "t1", "successFlag": " 0", "midiData": None}},
    "flag 0 with notes": {
        "code": 200,
        "data": {"successFlag": 0, "midiData": {"state": "complete", "instruments": [{"name": "Piano", "notes": []}]}},
    },  # fmt: skip
    "running, empty list": {"code": 200, "data": {"midiData": {"state": "running", "instruments": []}}},
    "reseller running": {"code": 0, "message": "ok", "data": {"state": "running"}},
    "bare running": {"state": "queued"},
    "failed": {"code": 200, "data": {"successFlag": 3, "midiData": None}},
    "failed word": {"code": 200, "data": {"midiData": {"state": "error"}}},
    "empty": {"code": 200, "data": {"successFlag": 1, "midiData": {}}},
    "complete": load_fixture("record-info.json"),
    "code 0": load_fixture("reseller-code-0-ok.json"),
}


@pytest.mark.parametrize("name", ANSWERS)
def test_the_client_and_normalize_agree_on_pending(name):
    answer = ANSWERS[name]
    polled = protocol.task_status(answer) == model.PENDING
    [record] = normalize_payload(answer)
    assert polled == (record.status == model.PENDING), (protocol.task_status(answer), record.status)


def test_a_code_0_reseller_record_converts():
    from conftest import mido_file
    from midiexport.jobs.api import convert_payload

    data = convert_payload(fixture_path("reseller-code-0-ok.json").read_bytes())
    notes = [m for t in mido_file(data).tracks for m in t if m.type == "note_on"]
    assert len(notes) == 3
