"""MailgunProvider end to end against the fake Mailgun Messages API, and its webhook."""

import base64
import json

import pytest
import requests
from django.test import Client, override_settings

from channels_app.models import Channel, Contact
from channels_app.providers.anymail_esp import (
    MailgunProvider,
    fallback_outcome,
    retry_after_seconds,
)
from channels_app.providers.base import Outcome, OutgoingMessage
from sharestack_push.notifications.models import PushRecord, PushTask
from tests.fakes.mailgun import FakeMailgun, event_data

FROM_EMAIL = "ShareStack <noreply@mg.example.com>"
UNSUBSCRIBE = "<https://push.example.com/u/abc>, <mailto:unsub@push.example.com>"

# Written from Mailgun's API response codes, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    "queued": Outcome.SENT,
    "invalid_recipient": Outcome.INVALID_ADDRESS,
    "400": Outcome.PERMANENT,
    "401": Outcome.CONFIGURATION,
    "402": Outcome.PERMANENT,
    "403": Outcome.CONFIGURATION,
    "404": Outcome.CONFIGURATION,
    "413": Outcome.PERMANENT,
    "429": Outcome.RETRYABLE,
    "500": Outcome.RETRYABLE,
    "502": Outcome.RETRYABLE,
    "503": Outcome.RETRYABLE,
    "504": Outcome.RETRYABLE,
}


def config(fake: FakeMailgun, **extra) -> dict:
    return {"from_email": FROM_EMAIL, "api_url": fake.api_url, **extra}


def build_provider(fake: FakeMailgun, credentials=None, **extra) -> MailgunProvider:
    return MailgunProvider(
        config(fake, **extra), credentials or {"api_key": fake.api_key}, timeout=5
    )


@pytest.fixture
def provider(fake_mailgun):
    adapter = build_provider(fake_mailgun)
    yield adapter
    adapter.close()


def message(
    record_id: int = 1, address: str = "ada@example.com", **fields
) -> OutgoingMessage:
    return OutgoingMessage(
        record_id, address, "Deploy finished", "Build 42 is live.", **fields
    )


def send_one(provider: MailgunProvider, **fields):
    [result] = provider.send([message(**fields)])
    return result


# Success and the request on the wire


def test_success_stores_mailgun_id(provider, fake_mailgun):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    [received] = fake_mailgun.messages
    assert result.provider_message_id == received.message_id
    assert result.provider_message_id.endswith("@mg.example.com>")


def test_text_and_html_parts_sent(provider, fake_mailgun):
    send_one(provider, html="<p>Build <b>42</b> is live.</p>")

    [received] = fake_mailgun.messages
    assert received.field("text") == "Build 42 is live."
    assert received.field("html") == "<p>Build <b>42</b> is live.</p>"
    assert received.field("subject") == "Deploy finished"
    assert received.field("to") == "ada@example.com"
    assert received.field("from") == FROM_EMAIL


def test_empty_html_sends_text_only(provider, fake_mailgun):
    send_one(provider)

    [received] = fake_mailgun.messages
    assert received.field("text") == "Build 42 is live."
    assert "html" not in received.fields


def test_unsubscribe_headers_on_wire(provider, fake_mailgun):
    headers = {
        "List-Unsubscribe": UNSUBSCRIBE,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    send_one(provider, marketing=True, headers=headers)

    [received] = fake_mailgun.messages
    assert received.headers["List-Unsubscribe"] == UNSUBSCRIBE
    assert received.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_record_id_sent_as_custom_data(provider, fake_mailgun):
    send_one(provider, record_id=4242)

    [received] = fake_mailgun.messages
    assert received.variables == {"record_id": "4242"}


def test_reply_to_from_config(fake_mailgun):
    adapter = build_provider(fake_mailgun, reply_to="support@example.com")

    send_one(adapter)

    [received] = fake_mailgun.messages
    assert received.headers["Reply-To"] == "support@example.com"


def test_reply_to_option_overrides_config(fake_mailgun):
    adapter = build_provider(fake_mailgun, reply_to="support@example.com")

    send_one(adapter, options={"reply_to": "orders@example.com"})

    [received] = fake_mailgun.messages
    assert received.headers["Reply-To"] == "orders@example.com"


def test_invalid_reply_to_option_is_permanent(provider, fake_mailgun):
    result = send_one(provider, options={"reply_to": "not an address"})

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_reply_to"
    assert fake_mailgun.request_count == 0


def test_sender_domain_from_config(fake_mailgun):
    adapter = build_provider(
        fake_mailgun, from_email="noreply@example.com", sender_domain="mg.example.com"
    )

    result = send_one(adapter)

    assert result.outcome == Outcome.SENT
    assert fake_mailgun.messages[0].domain == "mg.example.com"


def test_batch_results_match_record_ids(provider, fake_mailgun):
    fake_mailgun.script("dead@example.com", "invalid_recipient")
    fake_mailgun.script("busy@example.com", "503")
    batch = [
        message(record_id, f"user{record_id}@example.com") for record_id in range(1, 31)
    ]
    batch += [message(100, "dead@example.com"), message(101, "busy@example.com")]

    results = {result.record_id: result for result in provider.send(batch)}

    assert len(results) == len(batch)
    assert results[100].outcome == Outcome.INVALID_ADDRESS
    assert results[101].outcome == Outcome.RETRYABLE
    assert all(results[record_id].outcome == Outcome.SENT for record_id in range(1, 31))
    assert len(fake_mailgun.messages) == 30
    assert (
        len({results[record_id].provider_message_id for record_id in range(1, 31)})
        == 30
    )


def test_connection_reused_across_batches(provider, fake_mailgun):
    provider.send([message(1)])
    connections = list(provider._connections)

    provider.send([message(2)])

    assert provider._connections == connections


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(MailgunProvider.CODES)


@pytest.mark.parametrize("code", sorted(set(EXPECTED_OUTCOMES) - {"queued"}))
def test_error_code_outcome(provider, fake_mailgun, code):
    fake_mailgun.script("ada@example.com", code)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == code
    assert fake_mailgun.messages == []


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, Outcome.RETRYABLE),
        (429, Outcome.RETRYABLE),
        (507, Outcome.RETRYABLE),
        (401, Outcome.CONFIGURATION),
        (403, Outcome.CONFIGURATION),
        (409, Outcome.PERMANENT),
        (422, Outcome.PERMANENT),
    ],
)
def test_fallback_outcome_by_status(status, outcome):
    assert fallback_outcome(status) == outcome


@pytest.mark.parametrize("header", [None, "", "soon", "-5"])
def test_retry_after_unusable_values(header):
    assert retry_after_seconds(header) in (None, 0.0)


def test_unsupported_feature_is_permanent(fake_mailgun):
    # Mailgun writes broken From headers for non-ASCII local parts, so anymail
    # rejects them before any request.
    adapter = build_provider(fake_mailgun, from_email="nöreply@mg.example.com")

    result = send_one(adapter)

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_message"
    assert fake_mailgun.request_count == 0


def test_rate_limit_uses_retry_after(provider, fake_mailgun):
    fake_mailgun.script("ada@example.com", ("429", 12))

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.retry_after == 12
    assert result.response_data == {"status": 429}


def test_retry_after_http_date(provider, fake_mailgun):
    fake_mailgun.script("ada@example.com", ("503", "Fri, 01 Jan 2100 00:00:00 GMT"))

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.retry_after > 365 * 24 * 3600


def test_server_error_not_retried_by_client(provider, fake_mailgun):
    fake_mailgun.script("ada@example.com", ("503", 1))

    send_one(provider)

    assert fake_mailgun.request_count == 1


def test_wrong_api_key_is_configuration(fake_mailgun):
    adapter = build_provider(fake_mailgun, {"api_key": "key-wrong"})

    result = send_one(adapter)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "401"
    assert "key-wrong" not in result.error_message
    assert fake_mailgun.messages == []


def test_unknown_domain_is_configuration(fake_mailgun):
    adapter = build_provider(fake_mailgun, from_email="noreply@other.example.com")

    result = send_one(adapter)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "404"
    assert "Domain not found" in result.error_message


def test_invalid_address_rejected_by_mailgun(provider, fake_mailgun):
    result = send_one(provider, address="ada@example")

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "invalid_recipient"


def test_unparsable_address_is_invalid(provider, fake_mailgun):
    result = send_one(provider, address="not-an-address")

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "invalid_address"
    assert fake_mailgun.request_count == 0


def test_empty_address_is_invalid(provider, fake_mailgun):
    result = send_one(provider, address="")

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "no_recipient"


def test_server_down_is_retryable(provider, fake_mailgun):
    fake_mailgun.stop()

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"
    assert fake_mailgun.api_key not in result.error_message


# Channel settings, not Django settings


def test_two_channels_use_own_keys(fake_mailgun):
    good = build_provider(fake_mailgun)
    bad = build_provider(fake_mailgun, {"api_key": "key-other-account"})

    assert send_one(good).outcome == Outcome.SENT
    assert send_one(bad).outcome == Outcome.CONFIGURATION


def test_django_settings_ignored(fake_mailgun):
    anymail = {
        "MAILGUN_API_KEY": "key-from-settings",
        "MAILGUN_API_URL": "http://127.0.0.1:9/v3",
        "MAILGUN_SENDER_DOMAIN": "settings.example.com",
        "SEND_DEFAULTS": {"tags": ["from-settings"]},
    }
    with override_settings(ANYMAIL=anymail):
        result = send_one(build_provider(fake_mailgun))

    assert result.outcome == Outcome.SENT
    [received] = fake_mailgun.messages
    assert received.domain == "mg.example.com"
    assert "o:tag" not in received.fields


# Configuration checks


def test_validate_accepts_complete_settings():
    credentials = {
        "api_key": "key-1",
        "webhook_signing_key": "sign-1",
        "webhook_username": "hooks",
        "webhook_password": "secret",
    }
    settings = {
        "from_email": FROM_EMAIL,
        "api_url": "https://api.eu.mailgun.net/v3",
        "sender_domain": "mg.example.com",
        "reply_to": "help@example.com",
        "concurrency": 4,
    }

    assert MailgunProvider.validate(settings, credentials) == {}


def test_validate_names_missing_fields():
    assert set(MailgunProvider.validate({}, {})) == {
        "config.from_email",
        "credentials.api_key",
    }


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"from_email": "not an address"}, "config.from_email"),
        ({"from_email": FROM_EMAIL, "reply_to": "nobody"}, "config.reply_to"),
        ({"from_email": FROM_EMAIL, "api_url": "ftp://x"}, "config.api_url"),
        ({"from_email": FROM_EMAIL, "concurrency": 0}, "config.concurrency"),
        ({"from_email": FROM_EMAIL, "concurrency": True}, "config.concurrency"),
        ({"from_email": FROM_EMAIL, "api_key": "key-1"}, "config.api_key"),
    ],
)
def test_validate_rejects_bad_config(settings, field):
    errors = MailgunProvider.validate(settings, {"api_key": "key-1"})

    assert set(errors) == {field}


def test_validate_needs_both_webhook_secrets():
    errors = MailgunProvider.validate(
        {"from_email": FROM_EMAIL}, {"api_key": "key-1", "webhook_username": "hooks"}
    )

    assert set(errors) == {"credentials.webhook_password"}


def test_validate_rejects_colon_in_username():
    credentials = {
        "api_key": "key-1",
        "webhook_username": "a:b",
        "webhook_password": "c",
    }

    errors = MailgunProvider.validate({"from_email": FROM_EMAIL}, credentials)

    assert set(errors) == {"credentials.webhook_username"}


# Tracking webhook through /api/v1/callbacks/<channel id>

WEBHOOK_USER = "hooks"
WEBHOOK_PASSWORD = "webhook-password-1"


@pytest.fixture
def channel(fake_mailgun, db):
    return Channel.objects.create(
        name="mailgun",
        kind="email",
        provider="mailgun",
        config=config(fake_mailgun),
        credentials={
            "api_key": fake_mailgun.api_key,
            "webhook_signing_key": fake_mailgun.signing_key,
            "webhook_username": WEBHOOK_USER,
            "webhook_password": WEBHOOK_PASSWORD,
        },
    )


@pytest.fixture
def sent_record(channel, fake_mailgun):
    """A record in status sent whose message the fake accepted."""
    contact = Contact.objects.create(
        user_id="ada", kind="email", address="ada@example.com"
    )
    task = PushTask.objects.create(
        notification_id="n-1",
        notification_type="order",
        target="user",
        user_id="ada",
        channels=["email"],
    )
    adapter = build_provider(fake_mailgun)
    result = send_one(adapter)
    adapter.close()
    return PushRecord.objects.create(
        task=task,
        user_id="ada",
        channel_kind="email",
        channel=channel,
        provider="mailgun",
        address_kind="email",
        address="ada@example.com",
        contact=contact,
        status="sent",
        provider_message_id=result.provider_message_id,
    )


def post_event(channel, body, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD)):
    client = Client()
    headers = {}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
    return client.post(
        f"/api/v1/callbacks/{channel.pk}",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


@pytest.mark.parametrize(
    ("event", "status", "time_field"),
    [
        ("delivered", "delivered", "delivered_at"),
        ("opened", "opened", "opened_at"),
        ("clicked", "clicked", "clicked_at"),
    ],
)
def test_webhook_moves_record_forward(
    channel, sent_record, fake_mailgun, event, status, time_field
):
    extra = {"url": "https://push.example.com/orders/7"} if event == "clicked" else {}
    body = fake_mailgun.sign_event(
        event_data(event, sent_record.provider_message_id, "ada@example.com", **extra)
    )

    response = post_event(channel, body)

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == status
    assert getattr(sent_record, time_field) is not None


def test_permanent_bounce_deactivates_contact(channel, sent_record, fake_mailgun):
    data = event_data(
        "failed",
        sent_record.provider_message_id,
        "ada@example.com",
        severity="permanent",
        reason="bounce",
        **{
            "delivery-status": {
                "code": 550,
                "message": "5.1.1 mailbox does not exist",
                "description": "Not delivered",
            }
        },
    )

    response = post_event(channel, fake_mailgun.sign_event(data))

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert sent_record.reason == "invalid_address"
    assert "Not delivered" in sent_record.error_message
    sent_record.contact.refresh_from_db()
    assert sent_record.contact.is_active is False


def test_temporary_failure_changes_nothing(channel, sent_record, fake_mailgun):
    data = event_data(
        "failed",
        sent_record.provider_message_id,
        "ada@example.com",
        severity="temporary",
        reason="generic",
    )

    response = post_event(channel, fake_mailgun.sign_event(data))

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_rejected_fails_without_deactivation(channel, sent_record, fake_mailgun):
    data = event_data(
        "rejected",
        sent_record.provider_message_id,
        "ada@example.com",
        reject={"reason": "Sandbox subdomains are for test purposes only"},
    )

    post_event(channel, fake_mailgun.sign_event(data))

    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert sent_record.reason == "undelivered"
    sent_record.contact.refresh_from_db()
    assert sent_record.contact.is_active is True


def test_complaint_keeps_record(channel, sent_record, fake_mailgun):
    data = event_data("complained", sent_record.provider_message_id, "ada@example.com")

    response = post_event(channel, fake_mailgun.sign_event(data))

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_wrong_signature_is_rejected(channel, sent_record, fake_mailgun):
    data = event_data("delivered", sent_record.provider_message_id, "ada@example.com")

    response = post_event(
        channel, fake_mailgun.sign_event(data, signing_key="other-key")
    )

    assert response.status_code == 403
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_wrong_basic_auth_is_rejected(channel, sent_record, fake_mailgun):
    data = event_data("delivered", sent_record.provider_message_id, "ada@example.com")

    response = post_event(
        channel, fake_mailgun.sign_event(data), auth=(WEBHOOK_USER, "guess")
    )

    assert response.status_code == 403
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_missing_basic_auth_is_rejected(channel, sent_record, fake_mailgun):
    data = event_data("delivered", sent_record.provider_message_id, "ada@example.com")

    response = post_event(channel, fake_mailgun.sign_event(data), auth=None)

    assert response.status_code == 403


def test_signature_alone_when_no_basic_auth(fake_mailgun, db):
    channel = Channel.objects.create(
        name="mailgun",
        kind="email",
        provider="mailgun",
        config=config(fake_mailgun),
        credentials={
            "api_key": fake_mailgun.api_key,
            "webhook_signing_key": fake_mailgun.signing_key,
        },
    )
    body = fake_mailgun.sign_event(event_data("delivered", "<x@mg>", "ada@example.com"))

    assert post_event(channel, body, auth=None).status_code == 200


def test_no_signing_key_rejects_all(fake_mailgun, db):
    channel = Channel.objects.create(
        name="mailgun",
        kind="email",
        provider="mailgun",
        config=config(fake_mailgun),
        credentials={"api_key": fake_mailgun.api_key},
    )
    body = fake_mailgun.sign_event(event_data("delivered", "<x@mg>", "ada@example.com"))

    assert post_event(channel, body, auth=None).status_code == 403


def test_unknown_message_answers_200(channel, sent_record, fake_mailgun):
    body = fake_mailgun.sign_event(
        event_data("delivered", "<unknown@mg.example.com>", "ada@example.com")
    )

    response = post_event(channel, body)

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_head_request_answers_200(channel):
    assert Client().head(f"/api/v1/callbacks/{channel.pk}").status_code == 200


def test_get_request_answers_405(channel):
    assert Client().get(f"/api/v1/callbacks/{channel.pk}").status_code == 405


# The fake's own protocol checks, which the tests above rely on


def test_fake_requires_api_user(fake_mailgun):
    url = f"{fake_mailgun.api_url}/{fake_mailgun.domain}/messages"

    response = requests.post(url, auth=("user", fake_mailgun.api_key), timeout=5)

    assert response.status_code == 401
    assert response.text == "Forbidden"


@pytest.mark.parametrize(
    ("form", "text"),
    [
        (
            {"to": "a@example.com", "subject": "s", "text": "t"},
            "from parameter is missing",
        ),
        (
            {"from": "n@mg.example.com", "to": "a@example.com", "subject": "s"},
            "Need at least one of",
        ),
        (
            {
                "from": "n@mg.example.com",
                "to": "a@example.com",
                "subject": "s",
                "text": "t",
                "cc": "nobody",
            },
            "cc parameter is not a valid address",
        ),
    ],
)
def test_fake_checks_form_fields(fake_mailgun, form, text):
    url = f"{fake_mailgun.api_url}/{fake_mailgun.domain}/messages"

    response = requests.post(
        url, data=form, auth=("api", fake_mailgun.api_key), timeout=5
    )

    assert response.status_code == 400
    assert text in response.json()["message"]


def test_fake_rejects_unknown_outcome(fake_mailgun):
    with pytest.raises(ValueError, match="unknown outcome"):
        fake_mailgun.script("ada@example.com", "teapot")
