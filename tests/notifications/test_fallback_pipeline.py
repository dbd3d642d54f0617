"""Multi-channel fallback end to end: email first, SMS when email stays unconfirmed."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test import Client

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications import tasks
from sharestack_push.notifications.fallback import release_due_fallbacks
from sharestack_push.notifications.models import PushRecord, PushTask
from tests.fakes.mailgun import event_data
from tests.fakes.twilio import FakeTwilio

SENT_AT = datetime(2026, 6, 10, 4, tzinfo=UTC)
PHONE = "+14155550100"
EMAIL = "li@example.com"


@pytest.fixture
def twilio(db, settings):
    settings.PUSH_PUBLIC_BASE_URL = "https://push.sharestack.example"
    with FakeTwilio() as fake:
        Channel.objects.create(
            name="twilio",
            kind="sms",
            provider="twilio",
            config={"from_number": "+15005550006", "base_url": fake.base_url},
            credentials={
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
            },
        )
        yield fake


@pytest.fixture
def mailgun(fake_mailgun, db):
    channel = Channel.objects.create(
        name="mailgun",
        kind="email",
        provider="mailgun",
        config={
            "from_email": "noreply@mg.example.com",
            "api_url": fake_mailgun.api_url,
        },
        credentials={
            "api_key": fake_mailgun.api_key,
            "webhook_signing_key": fake_mailgun.signing_key,
        },
    )
    fake_mailgun.channel = channel
    return fake_mailgun


def add_user(user_id: str = "li") -> None:
    UserProfile.objects.create(user_id=user_id, timezone="UTC")
    Contact.objects.create(user_id=user_id, kind="email", address=EMAIL)
    Contact.objects.create(user_id=user_id, kind="phone", address=PHONE)


@pytest.fixture
def push_with_fallback(frozen_clock, post_push):
    frozen_clock.set(SENT_AT)

    def push(**fallback):
        response = post_push(
            notification_id="order-1",
            user_id="li",
            channels=["email", "sms"],
            content={"title": "Shipped", "body": "Your order has shipped"},
            fallback={"after": "10m", **fallback},
        )
        assert response.status_code == 202
        return PushRecord.objects.get(channel_kind="email")

    return push


def report(fake, event: str, when: datetime) -> None:
    [message] = fake.messages
    body = fake.sign_event(
        event_data(event, message.message_id, EMAIL, timestamp=when.timestamp())
    )
    response = Client().post(
        f"/api/v1/callbacks/{fake.channel.pk}",
        data=json.dumps(body),
        content_type="application/json",
    )
    assert response.status_code == 200


def test_fallback_sends_sms_after_silent_window(
    mailgun, twilio, push_with_fallback, frozen_clock, beat_tick
):
    add_user()
    email = push_with_fallback()

    assert email.status == "sent"
    assert PushRecord.objects.filter(channel_kind="sms").count() == 0
    frozen_clock.set(SENT_AT + timedelta(minutes=9, seconds=59))
    beat_tick()
    assert twilio.messages == []
    assert PushTask.objects.get().status == "processing"

    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    beat_tick()
    beat_tick()

    [message] = twilio.messages
    assert message["to"] == PHONE
    assert "Your order has shipped" in message["body"]
    sms = PushRecord.objects.get(channel_kind="sms")
    assert sms.status == "sent"
    assert sms.fallback_step == 1
    assert sms.fallback_of_id == email.pk
    email.refresh_from_db()
    assert email.fallback_state == "continued"
    assert email.fallback_due_at == SENT_AT + timedelta(minutes=10)
    tasks.finish_tasks()
    assert PushTask.objects.get().status == "completed"


def test_delivered_receipt_in_time_stops_fallback(
    mailgun, twilio, push_with_fallback, frozen_clock, beat_tick
):
    add_user()
    email = push_with_fallback()

    frozen_clock.set(SENT_AT + timedelta(minutes=5))
    report(mailgun, "delivered", SENT_AT + timedelta(minutes=5))
    frozen_clock.set(SENT_AT + timedelta(hours=1))
    beat_tick()

    assert twilio.messages == []
    assert not PushRecord.objects.filter(channel_kind="sms").exists()
    email.refresh_from_db()
    assert email.status == "delivered"
    assert email.fallback_state == "stopped"
    assert PushTask.objects.get().status == "completed"


def test_late_receipt_does_not_stop_fallback(
    mailgun, twilio, push_with_fallback, frozen_clock, beat_tick
):
    add_user()
    push_with_fallback()

    frozen_clock.set(SENT_AT + timedelta(minutes=11))
    report(mailgun, "delivered", SENT_AT + timedelta(minutes=11))
    beat_tick()

    assert len(twilio.messages) == 1


def test_unless_opened_ignores_delivery(
    mailgun, twilio, push_with_fallback, frozen_clock, beat_tick
):
    add_user()
    push_with_fallback(unless="opened")

    report(mailgun, "delivered", SENT_AT + timedelta(minutes=1))
    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    beat_tick()

    assert len(twilio.messages) == 1


def test_open_in_time_stops_unless_opened(
    mailgun, twilio, push_with_fallback, frozen_clock, beat_tick
):
    add_user()
    push_with_fallback(unless="opened")

    report(mailgun, "opened", SENT_AT + timedelta(minutes=2))
    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    beat_tick()

    assert twilio.messages == []


def test_permanent_failure_falls_back_at_once(
    smtp_server, twilio, push_with_fallback, frozen_clock, beat_tick
):
    Channel.objects.create(
        name="smtp",
        kind="email",
        provider="smtp",
        config={
            "host": smtp_server.host,
            "port": smtp_server.port,
            "use_tls": False,
            "from_email": "noreply@sharestack.example",
        },
    )
    add_user()
    smtp_server.reject_recipient(EMAIL)
    email = push_with_fallback()
    assert email.status == "failed"

    beat_tick()

    [message] = twilio.messages
    assert message["to"] == PHONE
    assert PushRecord.objects.get(channel_kind="sms").fallback_of_id == email.pk


def test_user_without_email_gets_sms(mailgun, twilio, push_with_fallback, beat_tick):
    UserProfile.objects.create(user_id="li", timezone="UTC")
    Contact.objects.create(user_id="li", kind="phone", address=PHONE)
    email = push_with_fallback()
    assert (email.status, email.reason) == ("suppressed", "no_address")

    beat_tick()

    assert len(twilio.messages) == 1


def test_cancelled_task_stops_fallback(
    mailgun, twilio, push_with_fallback, push_client, frozen_clock, beat_tick
):
    add_user()
    UserProfile.objects.filter(user_id="li").update(
        quiet_hours_start="00:00", quiet_hours_end="23:59"
    )
    email = push_with_fallback()
    assert email.status == "deferred"
    task = PushTask.objects.get()

    response = push_client.post(f"/api/v1/notifications/push/{task.pk}/cancel")
    assert response.status_code == 200
    frozen_clock.set(SENT_AT + timedelta(days=1))
    beat_tick()

    assert twilio.messages == []
    email.refresh_from_db()
    assert email.fallback_state == "stopped"


def test_second_address_confirmed_stops_fallback(
    mailgun, twilio, push_with_fallback, frozen_clock, beat_tick
):
    add_user()
    Contact.objects.create(user_id="li", kind="email", address="li@work.example")
    with pytest.raises(PushRecord.MultipleObjectsReturned):
        push_with_fallback()
    assert len(mailgun.messages) == 2
    work = next(m for m in mailgun.messages if m.field("to") == "li@work.example")
    body = mailgun.sign_event(
        event_data(
            "delivered",
            work.message_id,
            "li@work.example",
            timestamp=(SENT_AT + timedelta(minutes=3)).timestamp(),
        )
    )
    Client().post(
        f"/api/v1/callbacks/{mailgun.channel.pk}",
        data=json.dumps(body),
        content_type="application/json",
    )

    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    beat_tick()

    assert twilio.messages == []


@pytest.mark.parametrize(
    ("fallback", "field"),
    [
        ({"after": "10"}, "fallback.after"),
        ({"after": "0m"}, "fallback.after"),
        ({"after": "200h"}, "fallback.after"),
        ({"after": 10}, "fallback.after"),
        ({"after": "10m", "unless": "clicked"}, "fallback.unless"),
        ({"unless": "delivered"}, "fallback.after"),
        ({"after": "10m", "later": True}, "fallback.later"),
    ],
)
def test_invalid_fallback_is_rejected(db, push_client, fallback, field):
    response = push_client.post(
        "/api/v1/notifications/push",
        {
            "notification_id": "n-1",
            "notification_type": "order",
            "user_id": "li",
            "channels": ["email", "sms"],
            "content": {"body": "Hi"},
            "fallback": fallback,
        },
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_fallback_needs_two_channel_kinds(db, push_client):
    response = push_client.post(
        "/api/v1/notifications/push",
        {
            "notification_id": "n-1",
            "notification_type": "order",
            "user_id": "li",
            "channels": ["email"],
            "content": {"body": "Hi"},
            "fallback": {"after": "1m"},
        },
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["fallback"]


def test_locked_due_record_is_skipped(transactional_db):
    Channel.objects.create(name="console-sms", kind="sms", provider="console")
    add_user()
    task = PushTask.objects.create(
        notification_id="n-1",
        notification_type="order",
        target="user",
        user_id="li",
        channels=["email", "sms"],
        content={"body": "Shipped"},
        fallback={"after": 600, "unless": "delivered"},
        status="processing",
    )
    email = PushRecord.objects.create(
        task=task,
        user_id="li",
        channel_kind="email",
        address=EMAIL,
        status="sent",
        sent_at=SENT_AT,
        fallback_state="waiting",
        fallback_due_at=SENT_AT + timedelta(minutes=10),
    )
    now = SENT_AT + timedelta(hours=1)
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic():
            PushRecord.objects.select_for_update().get(pk=email.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    sent: list[tuple[str, list[int]]] = []
    try:
        skipped = release_due_fallbacks(now, lambda kind, ids: sent.append((kind, ids)))
    finally:
        release.set()
        holder.join()
    taken = release_due_fallbacks(now, lambda kind, ids: sent.append((kind, ids)))
    again = release_due_fallbacks(now, lambda kind, ids: sent.append((kind, ids)))

    assert skipped == []
    assert len(taken) == 1
    assert again == []
    assert sent == [("sms", taken)]
    assert PushRecord.objects.filter(channel_kind="sms").count() == 1


def test_failed_address_waits_for_sent_one(
    smtp_server, twilio, push_with_fallback, frozen_clock, beat_tick
):
    Channel.objects.create(
        name="smtp", kind="email", provider="smtp",
        config={"host": smtp_server.host, "port": smtp_server.port, "use_tls": False,
                "from_email": "noreply@sharestack.example"},
    )
    add_user()
    Contact.objects.create(user_id="li", kind="email", address="gone@example.com")
    smtp_server.reject_recipient("gone@example.com")
    with pytest.raises(PushRecord.MultipleObjectsReturned):
        push_with_fallback()

    beat_tick()
    assert twilio.messages == []
    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    beat_tick()

    assert len(twilio.messages) == 1
    sent = PushRecord.objects.get(channel_kind="email", status="sent")
    assert PushRecord.objects.get(channel_kind="sms").fallback_of_id == sent.pk


def test_three_step_chain(mailgun, twilio, post_push, frozen_clock, beat_tick):
    add_user()
    frozen_clock.set(SENT_AT)
    post_push(notification_id="order-1", user_id="li", channels=["app", "email", "sms"],
              content={"title": "Shipped", "body": "Your order has shipped"},
              fallback={"after": "10m"})
    app = PushRecord.objects.get(channel_kind="app")
    assert (app.status, app.reason) == ("suppressed", "no_address")

    beat_tick()
    email = PushRecord.objects.get(channel_kind="email")
    assert (email.status, email.fallback_step, email.fallback_state) == ("sent", 1, "waiting")
    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    beat_tick()

    sms = PushRecord.objects.get(channel_kind="sms")
    assert (sms.status, sms.fallback_step, sms.fallback_state) == ("sent", 2, "")
    assert sms.fallback_of_id == email.pk
    assert len(mailgun.messages) == 1
    assert len(twilio.messages) == 1
