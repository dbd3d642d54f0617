"""Complaints and traced unsubscribes, counted in the roll-up row of their message."""
import base64
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client

from analytics.alerts import evaluate_alerts
from analytics.models import AlertRule, EngagementEvent, HourlyStat, OptOutEvent
from analytics.optouts import record_opt_out, traced_record
from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import NotificationType, PushRecord
from tests.fakes.mailgun import event_data
from tests.fakes.postmark import tracking_event
from tests.fakes.twilio import FakeTwilio

FIRST_HOUR = datetime(2026, 6, 10, 4, tzinfo=UTC)
SECOND_HOUR = datetime(2026, 6, 10, 6, tzinfo=UTC)
LATER = datetime(2026, 6, 10, 8, tzinfo=UTC)
CONTENT = {"title": "Sale", "body": "Big sale", "html": "<p>Big sale</p>"}


@pytest.fixture
def email_user(db):
    NotificationType.objects.create(key="promo", category="marketing")
    UserProfile.objects.get_or_create(user_id="li")
    return Contact.objects.create(user_id="li", kind="email", address="li@example.com")


def push_at(post_push, frozen_clock, moment: datetime, notification_id: str) -> PushRecord:
    frozen_clock.set(moment)
    response = post_push(notification_id=notification_id, notification_type="promo",
                         user_id="li", channels=["email"], content=CONTENT)
    assert response.status_code == 202
    return PushRecord.objects.get(task__notification_id=notification_id)


def row(moment: datetime) -> HourlyStat:
    return HourlyStat.objects.get(hour=moment)


def post_mailgun(fake, channel: Channel, event: str, message_id: str, **extra):
    body = fake.sign_event(event_data(event, message_id, "li@example.com", **extra))
    return Client().post(f"/api/v1/callbacks/{channel.pk}", data=json.dumps(body),
                         content_type="application/json")


@pytest.fixture
def mailgun(fake_mailgun, db) -> Channel:
    return Channel.objects.create(
        name="mailgun", kind="email", provider="mailgun",
        config={"from_email": "noreply@mg.example.com", "api_url": fake_mailgun.api_url},
        credentials={"api_key": fake_mailgun.api_key,
                     "webhook_signing_key": fake_mailgun.signing_key},
    )


def test_mailgun_complaint_counted_once(fake_mailgun, mailgun, email_user, post_push,
                                        frozen_clock):
    channel = mailgun
    record = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")

    first = post_mailgun(fake_mailgun, channel, "complained", record.provider_message_id)
    again = post_mailgun(fake_mailgun, channel, "complained", record.provider_message_id)

    assert first.status_code == 200
    assert again.status_code == 200
    assert row(FIRST_HOUR).complained == 1
    [event] = OptOutEvent.objects.all()
    assert event.source == "complaint"
    assert event.record_id == record.pk
    assert event.notification_type == "promo"
    record.refresh_from_db()
    assert record.status == "sent"


@pytest.fixture
def postmark(fake_postmark, db) -> Channel:
    return Channel.objects.create(
        name="postmark", kind="email", provider="postmark",
        config={"from_email": fake_postmark.sender, "api_url": fake_postmark.api_url},
        credentials={"server_token": fake_postmark.server_token,
                     "webhook_username": "hooks", "webhook_password": "hook-password"},
    )


def post_postmark(channel: Channel, record_type: str, message_id: str):
    auth = base64.b64encode(b"hooks:hook-password").decode()
    return Client().post(
        f"/api/v1/callbacks/{channel.pk}",
        data=json.dumps(tracking_event(record_type, message_id, "li@example.com")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def test_postmark_complaint_counted(postmark, email_user, post_push, frozen_clock):
    record = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")

    response = post_postmark(postmark, "SpamComplaint", record.provider_message_id)

    assert response.status_code == 200
    assert row(FIRST_HOUR).complained == 1
    assert OptOutEvent.objects.get().source == "complaint"


def test_postmark_open_stored_as_event(postmark, email_user, post_push, frozen_clock):
    record = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")

    post_postmark(postmark, "Open", record.provider_message_id)

    event = EngagementEvent.objects.get()
    assert (event.record_id, event.kind) == (record.pk, "open")
    assert (event.source, event.machine) == ("provider", False)


def test_complaints_fire_opt_out_alert(fake_mailgun, mailgun, email_user, post_push,
                                       frozen_clock):
    channel = mailgun
    record = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")
    complained_at = FIRST_HOUR + timedelta(minutes=1)
    post_mailgun(fake_mailgun, channel, "complained", record.provider_message_id,
                 timestamp=complained_at.timestamp())
    rule = AlertRule.objects.create(
        name="complaints", kind="opt_outs_rising", channel_kind="email",
        window_minutes=10, threshold=1, min_count=1, alert_channel=channel,
        alert_address="ops@example.com",
    )

    frozen_clock.set(FIRST_HOUR + timedelta(minutes=2))
    evaluate_alerts()

    rule.refresh_from_db()
    assert rule.firing is True
    assert rule.last_value == 1


def unsubscribe_path(mail) -> str:
    # The header may be folded over several lines.
    header = "".join(str(mail.message["List-Unsubscribe"]).split())
    return urlsplit(header.strip("<>")).path


def test_one_click_unsubscribe_counts_in_message_row(
    smtp_channel, smtp_server, email_user, post_push, frozen_clock
):
    first = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")
    push_at(post_push, frozen_clock, SECOND_HOUR, "mail-2")
    first_mail = smtp_server.mails[0]

    response = Client().post(unsubscribe_path(first_mail),
                             {"List-Unsubscribe": "One-Click"})
    Client().post(unsubscribe_path(first_mail), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert row(FIRST_HOUR).unsubscribed == 1
    assert row(SECOND_HOUR).unsubscribed == 0
    [event] = OptOutEvent.objects.all()
    assert event.record_id == first.pk


def test_unsubscribe_get_counts_nothing(
    smtp_channel, smtp_server, email_user, post_push, frozen_clock
):
    push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")

    response = Client().get(unsubscribe_path(smtp_server.mails[0]))

    assert response.status_code == 200
    assert row(FIRST_HOUR).unsubscribed == 0


def test_preference_page_opt_out_counts_in_message_row(
    smtp_channel, smtp_server, email_user, post_push, frozen_clock
):
    push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")
    second = push_at(post_push, frozen_clock, SECOND_HOUR, "mail-2")
    html = smtp_server.mails[1].message.get_body(preferencelist=("html",)).get_content()
    [link] = re.findall(r'href="([^"]+/preferences/\?token=[^"]+)"', html)
    path = urlsplit(link.replace("&amp;", "&"))
    page = f"{path.path}?{path.query}"

    # Every box left out of the post means off.
    response = Client().post(page, {"all_enabled": "on", "timezone": "Asia/Shanghai",
                                    "locale": "zh-hans"})

    assert response.status_code == 303
    assert row(SECOND_HOUR).unsubscribed == 1
    assert row(FIRST_HOUR).unsubscribed == 0
    assert OptOutEvent.objects.get().record_id == second.pk


def test_preference_page_save_without_opt_out(
    smtp_channel, smtp_server, email_user, post_push, frozen_clock
):
    push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")
    html = smtp_server.mails[0].message.get_body(preferencelist=("html",)).get_content()
    [link] = re.findall(r'href="([^"]+/preferences/\?token=[^"]+)"', html)
    path = urlsplit(link.replace("&amp;", "&"))
    cells = {f"enabled/{kind}/promo": "on" for kind in ("email", "app", "sms", "wechat")}

    response = Client().post(f"{path.path}?{path.query}",
                             {"all_enabled": "on", "timezone": "Asia/Shanghai",
                              "locale": "zh-hans", **cells})

    assert response.status_code == 303
    assert row(FIRST_HOUR).unsubscribed == 0
    assert not OptOutEvent.objects.exists()


PUBLIC_BASE = "https://push.sharestack.example"
NUMBER = "+14155550100"


@pytest.fixture
def stop_after(db, settings, client, post_push, frozen_clock):
    """Send li a marketing SMS at FIRST_HOUR, then reply STOP after `delay`."""
    settings.PUSH_PUBLIC_BASE_URL = PUBLIC_BASE
    NotificationType.objects.create(key="promo", category="marketing")
    UserProfile.objects.get_or_create(user_id="li")
    Contact.objects.create(user_id="li", kind="phone", address=NUMBER)

    def run(delay: timedelta) -> PushRecord:
        with FakeTwilio() as fake:
            channel = Channel.objects.create(
                name="twilio", kind="sms", provider="twilio",
                config={"from_number": "+15005550006", "base_url": fake.base_url},
                credentials={"account_sid": fake.account_sid,
                             "auth_token": fake.auth_token},
            )
            frozen_clock.set(FIRST_HOUR)
            post_push(notification_id="sms-1", notification_type="promo", user_id="li",
                      channels=["sms"], content={"title": "", "body": "Sale today"})
            frozen_clock.set(FIRST_HOUR + delay)
            path = f"/api/v1/callbacks/{channel.pk}"
            form = fake.incoming_message(NUMBER, "STOP")
            signature = fake.signature(PUBLIC_BASE + path, form)
            response = client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature)
        assert response.status_code == 200
        return PushRecord.objects.get()

    return run


def test_sms_stop_counts_against_marketing_sms(stop_after):
    record = stop_after(timedelta(hours=3))

    assert row(FIRST_HOUR).unsubscribed == 1
    event = OptOutEvent.objects.get()
    assert event.record_id == record.pk
    assert event.notification_type == "promo"


def test_sms_stop_long_after_send_not_traced(stop_after):
    stop_after(timedelta(days=8))

    assert row(FIRST_HOUR).unsubscribed == 0
    assert OptOutEvent.objects.get().record_id is None


def test_mailgun_unsubscribe_event_only_logged(fake_mailgun, mailgun, email_user, post_push,
                                               frozen_clock):
    record = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")

    response = post_mailgun(fake_mailgun, mailgun, "unsubscribed", record.provider_message_id)

    assert response.status_code == 200
    assert row(FIRST_HOUR).unsubscribed == 0
    assert not OptOutEvent.objects.exists()


def test_opt_out_of_other_users_record(smtp_channel, email_user, post_push, frozen_clock):
    record = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")

    assert traced_record(record.pk, "someone-else") is None


def test_second_opt_out_of_record_not_counted(smtp_channel, email_user, post_push,
                                              frozen_clock):
    record = push_at(post_push, frozen_clock, FIRST_HOUR, "mail-1")

    first = record_opt_out("li", "unsubscribe_link", "email", "promo", LATER, record)
    second = record_opt_out("li", "preference_page", "email", "promo", LATER, record)

    assert row(FIRST_HOUR).unsubscribed == 1
    assert first.record_id == record.pk
    assert second.record_id is None
