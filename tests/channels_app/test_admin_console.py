"""The channel admin: actions, write-only credentials and the send-test page."""
import json

import pytest
from django.urls import reverse

from channels_app.admin import ChannelForm, describe_result, mask
from channels_app.models import Channel
from channels_app.providers.base import Outcome, SendResult

pytestmark = pytest.mark.django_db

CHANGELIST_URL = reverse("admin:channels_app_channel_changelist")
ADD_URL = reverse("admin:channels_app_channel_add")
TWILIO_TOKEN = "twilio-auth-token-0123456789abcdef"


def change_url(channel):
    return reverse("admin:channels_app_channel_change", args=[channel.pk])


def send_test_url(channel):
    return reverse("admin:channels_app_channel_send_test", args=[channel.pk])


def smtp_channel(server=None, **fields):
    config = {"host": "127.0.0.1", "port": server.port if server else 25,
              "from_email": "noreply@example.com"}
    values = {"name": "mail", "kind": "email", "provider": "smtp", "config": config}
    values.update(fields)
    return Channel.objects.create(**values)


def twilio_channel():
    channel = Channel(name="texts", kind="sms", provider="twilio",
                      config={"from_number": "+15005550006"})
    channel.credentials = {"account_sid": "AC" + "0" * 32, "auth_token": TWILIO_TOKEN}
    channel.save()
    return channel


def channel_data(channel, **fields):
    data = {"name": channel.name, "kind": channel.kind, "provider": channel.provider,
            "priority": 100, "enabled": "on", "is_healthy": "on",
            "config": json.dumps(channel.config)}
    data.update(fields)
    return data


def test_actions_enable_and_disable(staff_client):
    mail = smtp_channel()
    texts = twilio_channel()
    staff_client.post(CHANGELIST_URL, {"action": "disable_channels",
                                       "_selected_action": [mail.pk, texts.pk]})
    assert list(Channel.objects.filter(enabled=True)) == []
    staff_client.post(CHANGELIST_URL, {"action": "enable_channels",
                                       "_selected_action": [mail.pk]})
    mail.refresh_from_db()
    texts.refresh_from_db()
    assert mail.enabled
    assert not texts.enabled


def test_disable_changes_updated_at(staff_client):
    mail = smtp_channel()
    before = mail.updated_at
    staff_client.post(CHANGELIST_URL, {"action": "disable_channels", "_selected_action": [mail.pk]})
    mail.refresh_from_db()
    assert mail.updated_at > before


def test_changelist_shows_cost_and_test_link(staff_client):
    smtp_channel(rate_limit_per_second=20, cost_per_message="0.00100")
    page = staff_client.get(CHANGELIST_URL).content.decode()
    assert "0.00100" in page
    assert "/send-test/" in page


def test_change_page_masks_credentials(staff_client):
    channel = twilio_channel()
    page = staff_client.get(change_url(channel)).content.decode()
    assert TWILIO_TOKEN not in page
    assert "Currently stored, ending in …cdef." in page
    assert 'name="credential_auth_token"' in page


def test_mask_hides_short_secrets():
    assert mask("hunter2") == "stored"
    assert mask({"a": 1, "b": 2}) == "stored JSON object with 2 keys"


def test_blank_credential_keeps_stored(staff_client):
    channel = twilio_channel()
    response = staff_client.post(change_url(channel), channel_data(channel, priority=7))
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.priority == 7
    assert channel.credentials["auth_token"] == TWILIO_TOKEN


def test_retyped_credential_replaces_stored(staff_client):
    channel = twilio_channel()
    staff_client.post(change_url(channel),
                      channel_data(channel, credential_auth_token="new-token"))
    channel.refresh_from_db()
    assert channel.credentials["auth_token"] == "new-token"
    assert channel.credentials["account_sid"] == "AC" + "0" * 32


def test_optional_credential_can_be_removed(staff_client):
    channel = twilio_channel()
    staff_client.post(change_url(channel),
                      channel_data(channel, credential_webhook_shared_key="shared"))
    channel.refresh_from_db()
    assert channel.credentials["webhook_shared_key"] == "shared"
    staff_client.post(change_url(channel),
                      channel_data(channel, credential_webhook_shared_key_clear="on"))
    channel.refresh_from_db()
    assert "webhook_shared_key" not in channel.credentials


def test_add_requires_provider_credentials(staff_client):
    data = {"name": "texts", "kind": "sms", "provider": "twilio", "priority": 100,
            "enabled": "on", "is_healthy": "on", "config": '{"from_number": "+15005550006"}'}
    response = staff_client.post(ADD_URL, data)
    errors = response.context["adminform"].form.errors
    assert errors["credential_auth_token"] == ["This field is required."]
    assert not Channel.objects.exists()


def test_add_with_credentials_stores_them(staff_client):
    data = {"name": "texts", "kind": "sms", "provider": "twilio", "priority": 100,
            "enabled": "on", "is_healthy": "on", "config": '{"from_number": "+15005550006"}',
            "credential_account_sid": "AC" + "1" * 32, "credential_auth_token": "token"}
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 302
    assert Channel.objects.get().credentials == {"account_sid": "AC" + "1" * 32,
                                                 "auth_token": "token"}


def test_add_page_shows_fields_of_provider(staff_client):
    page = staff_client.get(ADD_URL, {"provider": "twilio"}).content.decode()
    assert 'name="credential_account_sid"' in page


def test_object_credential_must_be_json(staff_client):
    data = {"name": "push", "kind": "app", "provider": "fcm", "priority": 100,
            "enabled": "on", "is_healthy": "on", "config": '{"project_id": "demo"}',
            "credential_service_account": "{not json"}
    errors = staff_client.post(ADD_URL, data).context["adminform"].form.errors
    assert errors["credential_service_account"] == ["Enter a valid JSON."]


def test_object_credential_checked_by_adapter(staff_client):
    data = {"name": "push", "kind": "app", "provider": "fcm", "priority": 100,
            "enabled": "on", "is_healthy": "on", "config": '{"project_id": "demo"}',
            "credential_service_account": '{"client_email": "a@example.com"}'}
    errors = staff_client.post(ADD_URL, data).context["adminform"].form.errors
    assert errors["credential_service_account"] == ["Missing keys: private_key, token_uri."]


def test_provider_change_drops_old_credentials():
    channel = twilio_channel()
    form = ChannelForm(instance=channel, data={
        "name": "mail", "kind": "email", "provider": "smtp", "priority": 100,
        "enabled": True, "is_healthy": True, "last_error": "",
        "config": '{"host": "127.0.0.1", "port": 25, "from_email": "noreply@example.com"}'})
    assert form.is_valid(), form.errors
    form.save()
    channel.refresh_from_db()
    assert channel.credentials == {}


def test_smtp_pair_error_on_field(staff_client):
    channel = smtp_channel()
    response = staff_client.post(change_url(channel),
                                 channel_data(channel, credential_username="user"))
    errors = response.context["adminform"].form.errors
    assert errors["credential_password"] == ["Give both username and password, or neither."]


def test_send_test_page_renders(staff_client):
    page = staff_client.get(send_test_url(smtp_channel())).content.decode()
    assert 'id="send-test-form"' in page


def test_send_test_delivers_mail(staff_client, smtp_server):
    channel = smtp_channel(smtp_server)
    response = staff_client.post(send_test_url(channel), {
        "address": "ann@example.com", "title": "Hello", "body": "Test body"})
    assert response.context["result"].outcome == Outcome.SENT
    [mail] = smtp_server.mails
    assert mail.rcpt_tos == ["ann@example.com"]
    assert mail.message["Subject"] == "Hello"
    assert "Sent. Provider message id:" in response.content.decode()


def test_send_test_shows_rejection(staff_client, smtp_server):
    smtp_server.reject_recipient("gone@example.com")
    channel = smtp_channel(smtp_server)
    response = staff_client.post(send_test_url(channel), {
        "address": "gone@example.com", "title": "Hello", "body": "Test body"})
    result = response.context["result"]
    assert result.outcome == Outcome.INVALID_ADDRESS
    assert 'data-outcome="invalid_address"' in response.content.decode()
    assert smtp_server.mails == []


def test_send_test_requires_address(staff_client):
    response = staff_client.post(send_test_url(smtp_channel()), {"title": "t", "body": "b"})
    assert response.context["form"].errors["address"] == ["This field is required."]
    assert response.context["result"] is None


def test_send_test_unknown_channel(staff_client):
    url = reverse("admin:channels_app_channel_send_test", args=[999999])
    assert staff_client.get(url).status_code == 404


def test_send_test_needs_staff(client):
    response = client.get(send_test_url(smtp_channel()))
    assert response.status_code == 302


@pytest.mark.parametrize(
    "result, text",
    [
        (SendResult(0, Outcome.SENT, provider_message_id="m-1"),
         "Sent. Provider message id: m-1."),
        (SendResult(0, Outcome.SENT), "Sent. Provider message id: none given."),
        (SendResult(0, Outcome.RETRYABLE, error_code="429", retry_after=30.0),
         "Not sent: retryable (429), retry after 30 s."),
        (SendResult(0, Outcome.PERMANENT), "Not sent: permanent."),
    ],
)
def test_describe_result(result, text):
    assert describe_result(result) == text
