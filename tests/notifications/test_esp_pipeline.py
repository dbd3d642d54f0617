"""Email end to end through an ESP: push API, pipeline, fake ESP API, tracking webhook."""

import base64
import json
from datetime import UTC, datetime

from django.test import Client

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import PushRecord
from tests.fakes.mailgun import event_data
from tests.fakes.postmark import tracking_event

SHIPPED = {"title": "Shipped", "body": "Your order is on its way"}


def add_email_user(user_id: str, address: str) -> Contact:
    UserProfile.objects.get_or_create(user_id=user_id)
    return Contact.objects.create(user_id=user_id, kind="email", address=address)


def mailgun_channel(fake) -> Channel:
    return Channel.objects.create(
        name="mailgun",
        kind="email",
        provider="mailgun",
        config={"from_email": "noreply@mg.example.com", "api_url": fake.api_url},
        credentials={"api_key": fake.api_key, "webhook_signing_key": fake.signing_key},
    )


def postmark_channel(fake) -> Channel:
    return Channel.objects.create(
        name="postmark",
        kind="email",
        provider="postmark",
        config={"from_email": fake.sender, "api_url": fake.api_url},
        credentials={
            "server_token": fake.server_token,
            "webhook_username": "hooks",
            "webhook_password": "hook-password",
        },
    )


def test_mailgun_sends_and_tracks(fake_mailgun, frozen_clock, post_push):
    channel = mailgun_channel(fake_mailgun)
    add_email_user("li", "li@example.com")
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=UTC))

    response = post_push(
        notification_id="mail-1", user_id="li", channels=["email"], content=SHIPPED
    )

    assert response.status_code == 202
    [received] = fake_mailgun.messages
    assert received.field("to") == "li@example.com"
    assert received.field("subject") == "Shipped"
    # The text part ends with the preference-centre footer.
    assert received.field("text").split("\n\n-- \n")[0] == "Your order is on its way"
    record = PushRecord.objects.get()
    assert record.status == "sent"
    assert record.provider == "mailgun"
    assert record.provider_message_id == received.message_id
    assert received.variables == {"record_id": str(record.pk)}

    body = fake_mailgun.sign_event(
        event_data("delivered", received.message_id, "li@example.com")
    )
    callback = Client().post(
        f"/api/v1/callbacks/{channel.pk}",
        data=json.dumps(body),
        content_type="application/json",
    )

    assert callback.status_code == 200
    record.refresh_from_db()
    assert record.status == "delivered"


def test_postmark_sends_and_tracks(fake_postmark, frozen_clock, post_push):
    channel = postmark_channel(fake_postmark)
    add_email_user("li", "li@example.com")
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=UTC))

    response = post_push(
        notification_id="mail-1", user_id="li", channels=["email"], content=SHIPPED
    )

    assert response.status_code == 202
    [received] = fake_postmark.messages
    assert received.body["To"] == "li@example.com"
    assert received.body["TextBody"].split("\n\n-- \n")[0] == "Your order is on its way"
    record = PushRecord.objects.get()
    assert record.status == "sent"
    assert record.provider == "postmark"
    assert record.provider_message_id == received.message_id
    assert received.body["Metadata"] == {"record_id": str(record.pk)}

    auth = base64.b64encode(b"hooks:hook-password").decode()
    body = tracking_event("Open", received.message_id, "li@example.com")
    callback = Client().post(
        f"/api/v1/callbacks/{channel.pk}",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )

    assert callback.status_code == 200
    record.refresh_from_db()
    assert record.status == "opened"


def test_postmark_inactive_deactivates_contact(fake_postmark, frozen_clock, post_push):
    postmark_channel(fake_postmark)
    contact = add_email_user("li", "gone@example.com")
    fake_postmark.script("gone@example.com", "inactive")
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=UTC))

    post_push(
        notification_id="mail-1", user_id="li", channels=["email"], content=SHIPPED
    )

    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.reason == "invalid_address"
    contact.refresh_from_db()
    assert contact.is_active is False
    assert fake_postmark.messages == []


def test_mailgun_outage_schedules_retry(fake_mailgun, frozen_clock, post_push):
    mailgun_channel(fake_mailgun)
    add_email_user("li", "li@example.com")
    fake_mailgun.script("li@example.com", ("503", 30))
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=UTC))

    post_push(
        notification_id="mail-1", user_id="li", channels=["email"], content=SHIPPED
    )

    record = PushRecord.objects.get()
    assert record.status == "retrying"
    assert record.next_attempt_at is not None
    assert fake_mailgun.messages == []
