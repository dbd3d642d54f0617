"""Credential values masked in error texts, from the helper to the send-test page."""
import socket

import pytest
from django.urls import reverse

from channels_app.models import Channel
from channels_app.providers.base import OutgoingMessage, Outcome
from channels_app.redaction import redact_credentials
from sharestack_push.notifications.delivery import call_provider

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "twilio-auth-token-fedcba9876543210"


def test_redact_masks_each_value():
    text = f"url: /2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json token {AUTH_TOKEN}"
    credentials = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    assert redact_credentials(text, credentials) == (
        "url: /2010-04-01/Accounts/***/Messages.json token ***"
    )


def test_redact_masks_nested_values():
    credentials = {"service_account": {"private_key": "-----key-----", "ids": ["id-12345"]}}
    text = "bad -----key----- for id-12345"
    assert redact_credentials(text, credentials) == "bad *** for ***"


def test_redact_masks_longest_value_first():
    credentials = {"key": "abcd", "secret": "abcdefgh"}
    assert redact_credentials("x abcdefgh y", credentials) == "x *** y"


def test_redact_skips_short_and_non_text_values():
    credentials = {"pin": "abc", "port": 2525, "enabled": True}
    assert redact_credentials("abc 2525 True", credentials) == "abc 2525 True"


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable_twilio(db) -> Channel:
    channel = Channel(name="texts", kind="sms", provider="twilio", config={
        "from_number": "+15005550006", "base_url": f"http://127.0.0.1:{closed_port()}",
    })
    channel.credentials = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    channel.save()
    return channel


def test_send_test_hides_account_sid(staff_client, unreachable_twilio, caplog):
    url = reverse("admin:channels_app_channel_send_test", args=[unreachable_twilio.pk])
    response = staff_client.post(url, {"address": "+8613800138000", "title": "Test",
                                       "body": "Test body"})
    result = response.context["result"]
    assert result.outcome.value == "retryable"
    assert "/Accounts/***/" in result.error_message
    assert ACCOUNT_SID not in response.content.decode()
    assert ACCOUNT_SID not in caplog.text


def test_undecryptable_credentials_fail_the_batch(db):
    channel = Channel.objects.create(name="texts", kind="sms", provider="twilio",
                                     config={"from_number": "+15005550006"},
                                     encrypted_credentials="not-a-fernet-token")
    message = OutgoingMessage(record_id=1, address="+8613800138000", title="", body="b")

    [result] = call_provider(channel, [message])
    assert result.outcome == Outcome.CONFIGURATION
    assert "cannot be decrypted" in result.error_message
    channel.refresh_from_db()
    assert channel.is_healthy is False
    assert "cannot be decrypted" in channel.last_error
