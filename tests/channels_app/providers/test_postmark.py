"""PostmarkProvider end to end against the fake Postmark Email API, and its webhook."""

import base64
import json

import pytest
import requests
from django.test import Client, override_settings

from channels_app.models import Channel, Contact
from channels_app.providers.anymail_esp import PostmarkProvider
from channels_app.providers.base import Outcome, OutgoingMessage
from sharestack_push.notifications.models import PushRecord, PushTask
from tests.fakes.postmark import FakePostmark, bounce_event, tracking_event

FROM_EMAIL = "ShareStack <noreply@push.example.com>"
UNSUBSCRIBE = "<https://push.example.com/u/abc>, <mailto:unsub@push.example.com>"

# Written from Postmark's API error codes, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    "sent": Outcome.SENT,
    "queued": Outcome.SENT,
    "rejected": Outcome.INVALID_ADDRESS,
    "invalid": Outcome.INVALID_ADDRESS,
    "10": Outcome.CONFIGURATION,
    "100": Outcome.RETRYABLE,
    "300": Outcome.PERMANENT,
    "400": Outcome.CONFIGURATION,
    "401": Outcome.CONFIGURATION,
    "402": Outcome.PERMANENT,
    "403": Outcome.PERMANENT,
    "405": Outcome.CONFIGURATION,
    "409": Outcome.PERMANENT,
    "411": Outcome.PERMANENT,
    "412": Outcome.CONFIGURATION,
    "413": Outcome.CONFIGURATION,
    "429": Outcome.RETRYABLE,
    "http_500": Outcome.RETRYABLE,
    "http_503": Outcome.RETRYABLE,
}
# The fake's outcome that makes anymail report each recipient status.
STATUS_OUTCOMES = {"rejected": "inactive", "invalid": "invalid_to"}


def config(fake: FakePostmark, **extra) -> dict:
    return {"from_email": FROM_EMAIL, "api_url": fake.api_url, **extra}


def build_provider(fake: FakePostmark, credentials=None, **extra) -> PostmarkProvider:
    return PostmarkProvider(
        config(fake, **extra),
        credentials or {"server_token": fake.server_token},
        timeout=5,
    )


@pytest.fixture
def provider(fake_postmark):
    adapter = build_provider(fake_postmark)
    yield adapter
    adapter.close()


def message(
    record_id: int = 1, address: str = "ada@example.com", **fields
) -> OutgoingMessage:
    return OutgoingMessage(
        record_id, address, "Deploy finished", "Build 42 is live.", **fields
    )


def send_one(provider: PostmarkProvider, **fields):
    [result] = provider.send([message(**fields)])
    return result


# Success and the request on the wire


def test_success_stores_message_id(provider, fake_postmark):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    [received] = fake_postmark.messages
    assert result.provider_message_id == received.message_id


def test_text_and_html_parts_sent(provider, fake_postmark):
    send_one(provider, html="<p>Build <b>42</b> is live.</p>")

    [received] = fake_postmark.messages
    assert received.body["TextBody"] == "Build 42 is live."
    assert received.body["HtmlBody"] == "<p>Build <b>42</b> is live.</p>"
    assert received.body["Subject"] == "Deploy finished"
    assert received.body["To"] == "ada@example.com"
    assert received.body["From"] == FROM_EMAIL


def test_empty_html_sends_text_only(provider, fake_postmark):
    send_one(provider)

    [received] = fake_postmark.messages
    assert "HtmlBody" not in received.body


def test_unsubscribe_headers_on_wire(provider, fake_postmark):
    headers = {
        "List-Unsubscribe": UNSUBSCRIBE,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }

    send_one(provider, marketing=True, headers=headers)

    [received] = fake_postmark.messages
    assert received.mime_headers == headers


def test_record_id_sent_as_metadata(provider, fake_postmark):
    send_one(provider, record_id=4242)

    [received] = fake_postmark.messages
    assert received.body["Metadata"] == {"record_id": "4242"}


def test_server_token_header_sent(provider, fake_postmark):
    send_one(provider)

    [received] = fake_postmark.messages
    assert received.headers["X-Postmark-Server-Token"] == fake_postmark.server_token
    assert received.headers["Accept"] == "application/json"


def test_reply_to_option_overrides_config(fake_postmark):
    adapter = build_provider(fake_postmark, reply_to="support@example.com")

    send_one(adapter)
    send_one(adapter, options={"reply_to": "orders@example.com"})

    first, second = fake_postmark.messages
    assert first.body["ReplyTo"] == "support@example.com"
    assert second.body["ReplyTo"] == "orders@example.com"


def test_message_stream_from_config(fake_postmark):
    adapter = build_provider(fake_postmark, message_stream="alerts")

    send_one(adapter)

    assert fake_postmark.messages[0].body["MessageStream"] == "alerts"


def test_marketing_uses_broadcast_stream(fake_postmark):
    adapter = build_provider(fake_postmark, broadcast_stream="newsletters")

    send_one(adapter, marketing=True)
    send_one(adapter)

    marketing, transactional = fake_postmark.messages
    assert marketing.body["MessageStream"] == "newsletters"
    assert "MessageStream" not in transactional.body


def test_batch_results_match_record_ids(provider, fake_postmark):
    fake_postmark.script("dead@example.com", "inactive")
    fake_postmark.script("busy@example.com", "http_503")
    batch = [
        message(record_id, f"user{record_id}@example.com") for record_id in range(1, 31)
    ]
    batch += [message(100, "dead@example.com"), message(101, "busy@example.com")]

    results = {result.record_id: result for result in provider.send(batch)}

    assert len(results) == len(batch)
    assert results[100].outcome == Outcome.INVALID_ADDRESS
    assert results[101].outcome == Outcome.RETRYABLE
    assert all(results[record_id].outcome == Outcome.SENT for record_id in range(1, 31))
    assert len(fake_postmark.messages) == 30


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(PostmarkProvider.CODES)


@pytest.mark.parametrize("code", sorted(set(EXPECTED_OUTCOMES) - {"sent", "queued"}))
def test_error_code_outcome(provider, fake_postmark, code):
    fake_postmark.script("ada@example.com", STATUS_OUTCOMES.get(code, code))

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == code
    assert fake_postmark.messages == []


@pytest.mark.parametrize(
    ("code", "script"), [("sent", "success"), ("queued", "delayed")]
)
def test_accepted_status_is_sent(provider, fake_postmark, code, script):
    fake_postmark.script("ada@example.com", script)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.provider_message_id == fake_postmark.messages[0].message_id


def test_inactive_recipient_message_kept(provider, fake_postmark):
    fake_postmark.script("Ada@Example.com", "inactive")

    result = send_one(provider, address="Ada@Example.com")

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert "Found inactive addresses: ada@example.com" in result.error_message
    assert result.response_data == {"status": 422}


def test_unlisted_code_falls_back_to_status(provider, fake_postmark):
    fake_postmark.script("ada@example.com", "unlisted")

    result = send_one(provider)

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "1101"
    assert result.response_data == {"status": 422}


def test_rate_limit_uses_retry_after(provider, fake_postmark):
    fake_postmark.script("ada@example.com", ("429", 30))

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.retry_after == 30


def test_server_error_not_retried_by_client(provider, fake_postmark):
    fake_postmark.script("ada@example.com", ("http_503", 1))

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.retry_after == 1
    assert fake_postmark.request_count == 1


def test_wrong_token_is_configuration(fake_postmark):
    adapter = build_provider(fake_postmark, {"server_token": "wrong-token"})

    result = send_one(adapter)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "10"
    assert "wrong-token" not in result.error_message


def test_unknown_sender_is_configuration(fake_postmark):
    adapter = build_provider(fake_postmark, from_email="someone@else.example.com")

    result = send_one(adapter)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "400"


def test_invalid_to_rejected_by_postmark(provider, fake_postmark):
    result = send_one(provider, address="ada@example")

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "invalid"


def test_empty_body_is_permanent(provider, fake_postmark):
    empty = OutgoingMessage(1, "ada@example.com", "Subject only", "")

    [result] = provider.send([empty])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "300"


def test_server_down_is_retryable(provider, fake_postmark):
    fake_postmark.stop()

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_django_settings_ignored(fake_postmark):
    anymail = {
        "POSTMARK_SERVER_TOKEN": "settings-token",
        "POSTMARK_API_URL": "http://127.0.0.1:9/",
        "POSTMARK_MESSAGE_STREAM": "from-settings",
    }
    with override_settings(ANYMAIL=anymail):
        result = send_one(build_provider(fake_postmark))

    assert result.outcome == Outcome.SENT
    assert "MessageStream" not in fake_postmark.messages[0].body


# Configuration checks


def test_validate_accepts_complete_settings():
    settings = {
        "from_email": FROM_EMAIL,
        "message_stream": "outbound",
        "broadcast_stream": "broadcast",
        "api_url": "https://api.postmarkapp.com/",
    }
    credentials = {
        "server_token": "token",
        "webhook_username": "hooks",
        "webhook_password": "secret",
    }

    assert PostmarkProvider.validate(settings, credentials) == {}


def test_validate_rejects_mailgun_keys():
    errors = PostmarkProvider.validate(
        {"from_email": FROM_EMAIL, "sender_domain": "mg.example.com"},
        {"server_token": "token", "webhook_signing_key": "key"},
    )

    assert set(errors) == {"config.sender_domain", "credentials.webhook_signing_key"}


# Tracking webhook through /api/v1/callbacks/<channel id>

WEBHOOK_USER = "hooks"
WEBHOOK_PASSWORD = "webhook-password-2"


@pytest.fixture
def channel(fake_postmark, db):
    return Channel.objects.create(
        name="postmark",
        kind="email",
        provider="postmark",
        config=config(fake_postmark),
        credentials={
            "server_token": fake_postmark.server_token,
            "webhook_username": WEBHOOK_USER,
            "webhook_password": WEBHOOK_PASSWORD,
        },
    )


@pytest.fixture
def sent_record(channel, fake_postmark):
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
    adapter = build_provider(fake_postmark)
    result = send_one(adapter)
    adapter.close()
    return PushRecord.objects.create(
        task=task,
        user_id="ada",
        channel_kind="email",
        channel=channel,
        provider="postmark",
        address_kind="email",
        address="ada@example.com",
        contact=contact,
        status="sent",
        provider_message_id=result.provider_message_id,
    )


def post_event(channel, body, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD)):
    headers = {}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
    return Client().post(
        f"/api/v1/callbacks/{channel.pk}",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


@pytest.mark.parametrize(
    ("record_type", "status", "time_field"),
    [
        ("Delivery", "delivered", "delivered_at"),
        ("Open", "opened", "opened_at"),
        ("Click", "clicked", "clicked_at"),
    ],
)
def test_webhook_moves_record_forward(
    channel, sent_record, record_type, status, time_field
):
    body = tracking_event(
        record_type, sent_record.provider_message_id, "ada@example.com"
    )

    response = post_event(channel, body)

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == status
    assert getattr(sent_record, time_field) is not None


def test_hard_bounce_deactivates_contact(channel, sent_record):
    body = bounce_event(sent_record.provider_message_id, "ada@example.com")

    response = post_event(channel, body)

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert sent_record.reason == "invalid_address"
    sent_record.contact.refresh_from_db()
    assert sent_record.contact.is_active is False


def test_soft_bounce_keeps_contact(channel, sent_record):
    body = bounce_event(
        sent_record.provider_message_id, "ada@example.com", "SoftBounce"
    )

    post_event(channel, body)

    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert sent_record.reason == "undelivered"
    sent_record.contact.refresh_from_db()
    assert sent_record.contact.is_active is True


def test_transient_bounce_changes_nothing(channel, sent_record):
    body = bounce_event(sent_record.provider_message_id, "ada@example.com", "Transient")

    post_event(channel, body)

    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_spam_complaint_keeps_record(channel, sent_record):
    body = tracking_event(
        "SpamComplaint", sent_record.provider_message_id, "ada@example.com"
    )

    response = post_event(channel, body)

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_wrong_password_is_rejected(channel, sent_record):
    body = tracking_event(
        "Delivery", sent_record.provider_message_id, "ada@example.com"
    )

    response = post_event(channel, body, auth=(WEBHOOK_USER, "guess"))

    assert response.status_code == 403
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_missing_auth_is_rejected(channel, sent_record):
    body = tracking_event(
        "Delivery", sent_record.provider_message_id, "ada@example.com"
    )

    response = post_event(channel, body, auth=None)

    assert response.status_code == 403
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_no_webhook_secret_rejects_all(fake_postmark, db):
    channel = Channel.objects.create(
        name="postmark",
        kind="email",
        provider="postmark",
        config=config(fake_postmark),
        credentials={"server_token": fake_postmark.server_token},
    )
    body = tracking_event(
        "Delivery", "00000000-0000-0000-0000-000000000000", "a@example.com"
    )

    assert post_event(channel, body, auth=None).status_code == 403


def test_unknown_message_answers_200(channel, sent_record):
    body = tracking_event(
        "Delivery", "00000000-0000-0000-0000-000000000000", "a@example.com"
    )

    response = post_event(channel, body)

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_unreadable_payload_answers_400(channel):
    response = Client().post(
        f"/api/v1/callbacks/{channel.pk}",
        data="not json",
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic "
        + base64.b64encode(f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}".encode()).decode(),
    )

    assert response.status_code == 400


# The fake's own protocol checks, which the tests above rely on


def post_raw(fake: FakePostmark, data, content_type="application/json"):
    headers = {
        "X-Postmark-Server-Token": fake.server_token,
        "Accept": "application/json",
        "Content-Type": content_type,
    }
    return requests.post(f"{fake.api_url}email", data=data, headers=headers, timeout=5)


def test_fake_requires_json(fake_postmark):
    response = post_raw(fake_postmark, "From=a", content_type="text/plain")

    assert response.status_code == 422
    assert response.json()["ErrorCode"] == 409


def test_fake_rejects_malformed_json(fake_postmark):
    response = post_raw(fake_postmark, "{not json")

    assert response.status_code == 422
    assert response.json()["ErrorCode"] == 402


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"From": "noreply@push.example.com"}, "Zero recipients specified"),
        (
            {"From": "noreply@push.example.com", "To": "a@example.com"},
            "Provide either email TextBody or HtmlBody or both.",
        ),
    ],
)
def test_fake_checks_fields(fake_postmark, body, text):
    response = post_raw(fake_postmark, json.dumps(body))

    assert response.status_code == 422
    assert response.json() == {"ErrorCode": 300, "Message": text}
