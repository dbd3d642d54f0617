"""Channels, contacts and devices through the API."""
import logging

import pytest

from channels_app.models import Channel, Contact, Device
from preferences.models import UserProfile

CHANNELS = "/api/v1/channels"
SMTP_CHANNEL = {
    "name": "mail",
    "kind": "email",
    "provider": "smtp",
    "config": {"host": "127.0.0.1", "port": 2525, "use_tls": False, "from_email": "a@b.example"},
    "credentials": {"username": "mailer", "password": "hunter2-secret"},
}


def test_create_channel_hides_credentials(admin_client):
    response = admin_client.post(CHANNELS, SMTP_CHANNEL, format="json")
    assert response.status_code == 201
    assert "credentials" not in response.json()
    assert response.json()["has_credentials"] is True
    assert "hunter2-secret" not in response.content.decode()


def test_credentials_are_encrypted_at_rest(admin_client):
    admin_client.post(CHANNELS, SMTP_CHANNEL, format="json")
    channel = Channel.objects.get()
    assert "hunter2-secret" not in channel.encrypted_credentials
    assert channel.credentials["password"] == "hunter2-secret"


def test_credentials_never_logged(admin_client, caplog):
    with caplog.at_level(logging.DEBUG):
        admin_client.post(CHANNELS, SMTP_CHANNEL, format="json")
    assert "hunter2-secret" not in caplog.text


def test_list_channels_hides_credentials(admin_client):
    admin_client.post(CHANNELS, SMTP_CHANNEL, format="json")
    listed = admin_client.get(CHANNELS)
    assert listed.status_code == 200
    assert "hunter2-secret" not in listed.content.decode()
    assert listed.json()[0]["name"] == "mail"


def test_patch_keeps_credentials_unless_given(admin_client):
    channel_id = admin_client.post(CHANNELS, SMTP_CHANNEL, format="json").json()["id"]
    response = admin_client.patch(f"{CHANNELS}/{channel_id}", {"enabled": False}, format="json")
    assert response.status_code == 200
    channel = Channel.objects.get()
    assert channel.enabled is False
    assert channel.credentials["password"] == "hunter2-secret"


def test_patch_replaces_credentials(admin_client):
    channel_id = admin_client.post(CHANNELS, SMTP_CHANNEL, format="json").json()["id"]
    admin_client.patch(f"{CHANNELS}/{channel_id}",
                       {"credentials": {"username": "u", "password": "new"}}, format="json")
    assert Channel.objects.get().credentials["password"] == "new"


def test_get_one_channel(admin_client):
    channel_id = admin_client.post(CHANNELS, SMTP_CHANNEL, format="json").json()["id"]
    assert admin_client.get(f"{CHANNELS}/{channel_id}").json()["provider"] == "smtp"
    assert admin_client.get(f"{CHANNELS}/999999").status_code == 404


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"provider": "pigeon"}, "provider"),
        ({"kind": "sms"}, "kind"),
        ({"config": {"port": 25, "from_email": "a@b.example"}}, "config.host"),
        ({"config": {"host": "h", "port": "x", "from_email": "a@b.example"}}, "config.port"),
        ({"config": {"host": "h", "port": 25, "from_email": "a@b.example",
                     "use_tls": True, "use_ssl": True}}, "config.use_ssl"),
        ({"config": "text"}, "config"),
    ],
)
def test_invalid_channel_names_field(admin_client, overrides, field):
    response = admin_client.post(CHANNELS, {**SMTP_CHANNEL, **overrides}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Channel.objects.count() == 0


def test_invalid_patch_changes_nothing(admin_client):
    channel_id = admin_client.post(CHANNELS, SMTP_CHANNEL, format="json").json()["id"]
    response = admin_client.patch(f"{CHANNELS}/{channel_id}", {"config": {"host": "x"}}, format="json")
    assert response.status_code == 400
    assert Channel.objects.get().config["port"] == 2525


def test_fcm_channel_requires_service_account(admin_client):
    body = {"name": "fcm", "kind": "app", "provider": "fcm", "config": {"project_id": "p"},
            "credentials": {"service_account": {"client_email": "x"}}}
    response = admin_client.post(CHANNELS, body, format="json")
    assert response.status_code == 400
    assert "private_key" in response.json()["error"]["fields"]["credentials.service_account"][0]


def test_contact_registration_is_idempotent(push_client):
    body = {"user_id": "alice", "kind": "email", "address": " Alice@Example.com "}
    first = push_client.post("/api/v1/contacts", body, format="json")
    second = push_client.post("/api/v1/contacts", body, format="json")
    assert first.status_code == 201
    assert second.status_code == 200
    assert Contact.objects.get().address == "alice@example.com"
    assert UserProfile.objects.filter(user_id="alice").exists()


def test_contact_reactivates(push_client):
    body = {"user_id": "alice", "kind": "phone", "address": "+86 138-0013-8000"}
    push_client.post("/api/v1/contacts", body, format="json")
    Contact.objects.update(is_active=False)
    push_client.post("/api/v1/contacts", body, format="json")
    contact = Contact.objects.get()
    assert contact.is_active is True
    assert contact.address == "+8613800138000"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"user_id": "a", "kind": "email", "address": "not-an-email"}, "address"),
        ({"user_id": "a", "kind": "phone", "address": "12345"}, "address"),
        ({"user_id": "a", "kind": "pager", "address": "1"}, "kind"),
        ({"kind": "email", "address": "a@b.example"}, "user_id"),
    ],
)
def test_invalid_contact_names_field(push_client, body, field):
    response = push_client.post("/api/v1/contacts", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_device_registration_is_idempotent_and_moves_owner(push_client):
    body = {"user_id": "alice", "platform": "android", "provider": "fcm", "token": "tok-1"}
    assert push_client.post("/api/v1/devices", body, format="json").status_code == 201
    Device.objects.update(is_active=False)
    again = push_client.post("/api/v1/devices", {**body, "user_id": "bob"}, format="json")
    assert again.status_code == 200
    device = Device.objects.get()
    assert device.user_id == "bob"
    assert device.is_active is True


def test_invalid_device_names_field(push_client):
    body = {"user_id": "alice", "platform": "symbian", "provider": "fcm", "token": "t"}
    response = push_client.post("/api/v1/devices", body, format="json")
    assert response.status_code == 400
    assert "platform" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"config": {**SMTP_CHANNEL["config"], "password": "leak"}}, "config.password"),
        ({"credentials": {"username": "u", "password": "p", "token": "t"}}, "credentials.token"),
        ({"config": {**SMTP_CHANNEL["config"], "from_email": "not-an-email"}}, "config.from_email"),
        ({"config": {**SMTP_CHANNEL["config"], "use_tls": "yes"}}, "config.use_tls"),
        ({"credentials": {"username": "u"}}, "credentials.password"),
        ({"has_credentials": False}, "has_credentials"),
    ],
)
def test_channel_rejects_unknown_and_invalid_keys(admin_client, changes, field):
    response = admin_client.post(CHANNELS, {**SMTP_CHANNEL, **changes}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_named_sender_is_accepted(admin_client):
    config = {**SMTP_CHANNEL["config"], "from_email": "ShareStack <noreply@example.com>"}
    response = admin_client.post(CHANNELS, {**SMTP_CHANNEL, "config": config}, format="json")
    assert response.status_code == 201


def test_provider_change_needs_new_credentials(admin_client):
    channel_id = admin_client.post(CHANNELS, SMTP_CHANNEL, format="json").json()["id"]
    response = admin_client.patch(f"{CHANNELS}/{channel_id}",
                                  {"provider": "console", "config": {}}, format="json")
    assert response.status_code == 400
    assert "credentials" in response.json()["error"]["fields"]
    assert Channel.objects.get().provider == "smtp"


def test_device_read_only_field_is_400(push_client):
    body = {"user_id": "a", "platform": "ios", "provider": "fcm", "token": "t", "is_active": False}
    response = push_client.post("/api/v1/devices", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["is_active"] == ["This field is read-only."]


def test_unregistered_device_gets_no_more_sends(push_client):
    body = {"user_id": "alice", "platform": "android", "provider": "fcm", "token": "tok-1"}
    device_id = push_client.post("/api/v1/devices", body, format="json").json()["id"]
    response = push_client.delete(f"/api/v1/devices/{device_id}")
    assert response.status_code == 204
    device = Device.objects.get()
    assert device.is_active is False
    assert device.deactivation_reason == "unregistered"
    assert push_client.delete(f"/api/v1/devices/{device_id}").status_code == 204


def test_unregister_contact_and_unknown_id(push_client):
    body = {"user_id": "alice", "kind": "email", "address": "a@example.com"}
    contact_id = push_client.post("/api/v1/contacts", body, format="json").json()["id"]
    assert push_client.delete(f"/api/v1/contacts/{contact_id}").status_code == 204
    assert Contact.objects.get().is_active is False
    assert push_client.delete("/api/v1/contacts/999999").status_code == 404


def test_channel_setup_errors_name_the_field(admin_client):
    cases = [
        ({"concurrency": 0}, "config.concurrency"),
        ({"concurrency": "abc"}, "config.concurrency"),
        ({"base_url": 123}, "config.base_url"),
        ({"base_url": "ftp://x"}, "config.base_url"),
        ({"host\u0000": "x"}, "config"),
    ]
    for extra, field in cases:
        body = {"name": f"fcm-{field}-{extra!r}"[:90], "kind": "app", "provider": "fcm",
                "config": {"project_id": "p", **extra},
                "credentials": {"service_account": {"client_email": "a@b", "private_key": "k",
                                                    "token_uri": "http://127.0.0.1/t"}}}
        response = admin_client.post("/api/v1/channels", body, format="json")
        assert response.status_code == 400, extra
        assert field in response.json()["error"]["fields"], extra


def test_string_credentials_must_be_strings(admin_client):
    body = {"name": "robot", "kind": "wechat", "provider": "wecom_robot",
            "config": {}, "credentials": {"key": ["a"]}}
    response = admin_client.post("/api/v1/channels", body, format="json")
    assert response.status_code == 400
    assert "credentials.key" in response.json()["error"]["fields"]


def test_zero_rate_limit_is_rejected(admin_client):
    body = {"name": "c", "kind": "email", "provider": "console", "rate_limit_per_second": 0}
    response = admin_client.post("/api/v1/channels", body, format="json")
    assert response.status_code == 400
    assert "rate_limit_per_second" in response.json()["error"]["fields"]


def test_new_credentials_make_an_unhealthy_channel_healthy(admin_client):
    from channels_app.models import Channel

    channel = Channel.objects.create(name="mail", kind="email", provider="smtp",
                                     config={"host": "127.0.0.1", "port": 25, "from_email": "noreply@example.com"},
                                     is_healthy=False, last_error="535: bad login")
    response = admin_client.patch(f"/api/v1/channels/{channel.pk}",
                                  {"credentials": {"username": "u", "password": "right"}}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["is_healthy"], response.json()["last_error"]) == (True, "")


def test_device_provider_must_be_an_app_provider(push_client):
    for provider in ("nope", "smtp"):
        response = push_client.post("/api/v1/devices", {"user_id": "u1", "platform": "android",
                                                         "provider": provider, "token": "t"},
                                    format="json")
        assert response.status_code == 400, provider
        assert "provider" in response.json()["error"]["fields"], provider
