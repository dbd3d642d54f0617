"""Push request validation for options, HTML and named channels."""
import pytest

from channels_app.models import Channel
from sharestack_push.notifications.models import PushTask

PUSH_URL = "/api/v1/notifications/push"
pytestmark = pytest.mark.django_db


def body(**overrides):
    data = {
        "notification_id": "n1", "notification_type": "order", "user_id": "ann",
        "channels": ["app"], "content": {"title": "Hi", "body": "There"},
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_options_are_stored_per_kind(push_client):
    options = {"app": {"sound": "chime"}, "sms": {"template_code": "SMS_1"}}
    response = push_client.post(PUSH_URL, body(options=options), format="json")
    assert response.status_code == 202
    assert PushTask.objects.get().options == options


def test_options_for_an_unknown_kind_are_refused(push_client):
    response = push_client.post(PUSH_URL, body(options={"fax": {}}), format="json")
    assert response.status_code == 400
    assert "fax" in response.json()["error"]["fields"]["options"][0]


def test_options_of_a_kind_must_be_an_object(push_client):
    response = push_client.post(PUSH_URL, body(options={"app": "loud"}), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["options.app"] == ["Must be an object."]


def test_unknown_channel_name_is_refused_by_position(push_client):
    response = push_client.post(PUSH_URL, body(channels=["app", "ops-room"]), format="json")
    assert response.status_code == 400
    assert "channels[1]" in response.json()["error"]["fields"]


def test_a_channel_that_needs_addresses_cannot_be_named(push_client):
    Channel.objects.create(name="mail", kind="email", provider="console")
    response = push_client.post(PUSH_URL, body(channels=["mail"]), format="json")
    assert response.status_code == 400
    assert "channels[0]" in response.json()["error"]["fields"]


def test_kinds_need_a_user(push_client):
    response = push_client.post(PUSH_URL, body(user_id=None), format="json")
    assert response.status_code == 400
    assert "user_id" in response.json()["error"]["fields"]


def test_html_part_is_kept_with_the_content(push_client):
    content = {"title": "Hi", "body": "There", "html": "<p>There</p>"}
    response = push_client.post(PUSH_URL, body(content=content, channels=["email"]), format="json")
    assert response.status_code == 202
    assert PushTask.objects.get().content["html"] == "<p>There</p>"
