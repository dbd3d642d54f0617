"""Validation and idempotency of POST /api/v1/notifications/push."""
import pytest
from rest_framework.test import APIClient

from sharestack_push.notifications.models import PushRecord, PushTask
from templates.models import PushTemplate

PUSH_URL = "/api/v1/notifications/push"


def body(**overrides):
    data = {
        "notification_id": "n-1",
        "notification_type": "account",
        "user_id": "alice",
        "channels": ["email"],
        "content": {"title": "Hi", "body": "Hello"},
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_accepts_with_202(push_client):
    response = push_client.post(PUSH_URL, body(), format="json")
    assert response.status_code == 202
    assert response.json()["notification_id"] == "n-1"
    assert PushTask.objects.get().channels == ["email"]


def test_same_notification_id_returns_existing_task(push_client):
    first = push_client.post(PUSH_URL, body(), format="json")
    second = push_client.post(PUSH_URL, body(), format="json")
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert PushTask.objects.count() == 1


def test_other_key_same_id_is_new_task(make_client):
    make_client("push").post(PUSH_URL, body(), format="json")
    response = make_client("push").post(PUSH_URL, body(), format="json")
    assert response.status_code == 202
    assert PushTask.objects.count() == 2


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"channels": ["fax"]}, "channels[0]"),
        ({"channels": []}, "channels"),
        ({"channels": ["email", "email"]}, "channels"),
        ({"priority": "asap"}, "priority"),
        ({"notification_type": "has space"}, "notification_type"),
        ({"user_id": None}, "user_id"),
        ({"user_ids": ["bob"]}, "user_id"),
        ({"broadcast": True}, "user_id"),
        ({"content": None}, "template"),
        ({"template": "nope"}, "template"),
        ({"content": {"data": {}}}, "content.body"),
        ({"schedule_time": "2026-12-24T20:00:00"}, "schedule_time"),
        ({"schedule_time": "tomorrow"}, "schedule_time"),
        ({"user_id": "x" * 65}, "user_id"),
        ({"notification_id": None}, "notification_id"),
        ({"notification_id": 42}, "notification_id"),
        ({"notification_id": "a\u0000b"}, "notification_id"),
        ({"variables": {"name": "a\u0000"}}, "variables"),
        ({"content": {"body": "x", "data": {"k\u0000": "v"}}}, "content.data"),
        ({"user_ids": ["a", 5]}, "user_ids[1]"),
    ],
)
def test_invalid_input_names_field(push_client, overrides, field):
    response = push_client.post(PUSH_URL, body(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert PushTask.objects.count() == 0


def test_template_for_other_channel_only_is_rejected(push_client):
    PushTemplate.objects.create(name="welcome", channel="sms", content_template="Hi")
    response = push_client.post(PUSH_URL, body(content=None, template="welcome"), format="json")
    assert response.status_code == 400
    assert "template" in response.json()["error"]["fields"]


def test_future_schedule_time_waits(push_client):
    response = push_client.post(
        PUSH_URL, body(schedule_time="2099-01-01T08:00:00+08:00"), format="json"
    )
    assert response.status_code == 202
    assert response.json()["status"] == "scheduled"
    assert PushRecord.objects.count() == 0


def test_non_object_body_is_400(push_client):
    response = push_client.post(PUSH_URL, ["not", "an", "object"], format="json")
    assert response.status_code == 400


def test_status_of_other_keys_task_is_404(make_client):
    created = make_client("push").post(PUSH_URL, body(), format="json").json()
    response = make_client("push").get(f"{PUSH_URL}/{created['id']}")
    assert response.status_code == 404


def test_status_of_unknown_task_is_404(push_client):
    response = push_client.get(f"{PUSH_URL}/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_unknown_query_parameter_is_400(push_client):
    created = push_client.post(PUSH_URL, body(), format="json").json()
    response = push_client.get(f"{PUSH_URL}/{created['id']}", {"pagesize": 5})
    assert response.status_code == 400
    assert "pagesize" in response.json()["error"]["fields"]


def test_lone_surrogate_is_400(push_client):
    raw = '{"notification_id": "\\ud800", "notification_type": "t", "user_id": "a", ' \
        '"channels": ["email"], "content": {"body": "x"}}'
    response = push_client.post(PUSH_URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert "notification_id" in response.json()["error"]["fields"]


def test_form_body_is_415(push_client):
    response = push_client.post(PUSH_URL, {"notification_id": "x"}, format="multipart")
    assert response.status_code == 415


def test_unknown_api_path_is_json_404(push_client):
    response = push_client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"shedule_time": "2030-01-01T00:00:00+00:00"}, "shedule_time"),
        ({"content": {"body": "x", "titel": "y"}}, "content.titel"),
        ({"schedule_time": "2030-02-30T00:00:00+00:00"}, "schedule_time"),
        ({"schedule_time": "2030-01-01T24:00:00+00:00"}, "schedule_time"),
        ({"content": {"body": "x", "data": {"blob": "x" * 5000}}}, "content.data"),
    ],
)
def test_typos_and_impossible_values_are_400(push_client, overrides, field):
    response = push_client.post(PUSH_URL, body(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert PushTask.objects.count() == 0


def test_deeply_nested_json_is_400(push_client):
    nested = "[" * 100_000 + "]" * 100_000
    raw = '{"notification_id": "n", "content": {"body": "x", "data": {"k": ' + nested + "}}}"
    response = push_client.post(PUSH_URL, raw, content_type="application/json")
    assert response.status_code == 400


def test_oversized_body_is_json_400(push_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = push_client.post(PUSH_URL, body(content={"body": "x" * 2000}), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_not_found_message_names_no_model(push_client):
    response = push_client.get(f"{PUSH_URL}/00000000-0000-0000-0000-000000000000")
    assert response.json()["error"] == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_lowercase_auth_scheme_is_accepted(push_client):
    lower = APIClient()
    lower.credentials(HTTP_AUTHORIZATION=f"api-key {push_client.plain_key}")
    assert lower.post(PUSH_URL, body(), format="json").status_code == 202
