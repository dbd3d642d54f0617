"""Alert rules firing and resolving on a frozen clock, with messages to a fake robot."""
from datetime import datetime, timedelta, timezone

import pytest

from analytics.alerts import evaluate_alerts
from analytics.latency import latency_histograms
from analytics.models import AlertEvent, AlertRule, OptOutEvent
from channels_app.models import Channel
from preferences.sms_opt_out import set_marketing_sms
from preferences.unsubscribe import unsubscribe_url
from tests.analytics.conftest import ROBOT_SEND_PATH

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def robot_texts(fake) -> list[str]:
    return [request.body["text"]["content"] for request in fake.requests_to(ROBOT_SEND_PATH)]


def make_rule(alert_channel: Channel, kind: str, **fields) -> AlertRule:
    return AlertRule.objects.create(
        name=f"{kind} rule", kind=kind, alert_channel=alert_channel, **fields
    )


def evaluate_at(clock, moment: datetime) -> int:
    clock.set(moment)
    return evaluate_alerts()


def test_failure_rate_fires_once_and_resolves_once(robot, frozen_clock, add_records):
    fake, channel = robot
    rule = make_rule(channel, "failure_rate", channel_kind="email", window_minutes=10,
                     threshold=0.5, min_count=4)
    add_records("email", "smtp", "failed", 3, at=T0 - timedelta(minutes=1))
    add_records("email", "smtp", "sent", 1, at=T0 - timedelta(minutes=1))
    add_records("app", "fcm", "sent", 20, at=T0 - timedelta(minutes=1))

    assert evaluate_at(frozen_clock, T0) == 1
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=1)) == 0
    [firing] = robot_texts(fake)
    assert firing.startswith("[FIRING] failure_rate rule\n")
    assert "75.0% (3 of 4)" in firing
    rule.refresh_from_db()
    assert rule.firing is True

    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=12)) == 1
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=13)) == 0
    texts = robot_texts(fake)
    assert len(texts) == 2
    assert texts[1].startswith("[RESOLVED] failure_rate rule\n")
    states = list(AlertEvent.objects.order_by("created_at").values_list("state", flat=True))
    assert states == ["firing", "resolved"]
    assert AlertEvent.objects.filter(notified_at__isnull=True).count() == 0


def test_failure_rate_needs_min_count(robot, frozen_clock, add_records):
    fake, channel = robot
    make_rule(channel, "failure_rate", window_minutes=10, threshold=0.5, min_count=4)
    add_records("email", "smtp", "failed", 3, at=T0 - timedelta(minutes=1))

    assert evaluate_at(frozen_clock, T0) == 0
    assert robot_texts(fake) == []
    assert AlertRule.objects.get().last_value == 1.0


def test_failure_rate_of_one_channel(robot, frozen_clock, add_records):
    fake, channel = robot
    smtp = Channel.objects.create(name="smtp", kind="email", provider="smtp")
    make_rule(channel, "failure_rate", channel=smtp, window_minutes=10, threshold=0.5,
              min_count=1)
    add_records("email", "smtp", "failed", 2, at=T0 - timedelta(minutes=1))
    add_records("email", "smtp", "sent", 1, at=T0 - timedelta(minutes=1), channel=smtp)

    assert evaluate_at(frozen_clock, T0) == 0
    assert AlertRule.objects.get().last_value == 0.0


def test_backlog_fires_and_resolves(robot, frozen_clock, add_records):
    fake, channel = robot
    make_rule(channel, "backlog", channel_kind="app", threshold=2)
    add_records("app", "fcm", "queued", 2)
    add_records("app", "fcm", "retrying", 1)
    add_records("email", "smtp", "queued", 5)

    assert evaluate_at(frozen_clock, T0) == 1
    assert "Backlog of app channels is 3" in robot_texts(fake)[0]

    from sharestack_push.notifications.models import PushRecord

    PushRecord.objects.filter(channel_kind="app", status="queued").update(status="sent")
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=1)) == 1
    assert robot_texts(fake)[1].startswith("[RESOLVED]")


def test_unhealthy_channel_fires_and_resolves(robot, frozen_clock):
    fake, channel = robot
    fcm = Channel.objects.create(name="fcm-main", kind="app", provider="fcm", is_healthy=False)
    Channel.objects.create(name="fcm-old", kind="app", provider="fcm", is_healthy=False,
                           enabled=False)
    make_rule(channel, "unhealthy", channel_kind="app")

    assert evaluate_at(frozen_clock, T0) == 1
    assert "Unhealthy: fcm-main." in robot_texts(fake)[0]

    Channel.objects.filter(pk=fcm.pk).update(is_healthy=True)
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=1)) == 1
    assert "Every channel in app channels is healthy." in robot_texts(fake)[1]


def unsubscribe(client, user_id: str, notification_type: str = "promo") -> None:
    url = unsubscribe_url(user_id, notification_type, "email")
    response = client.post(url.removeprefix("http://127.0.0.1:8000"))
    assert response.status_code == 200


def test_unsubscribes_rising_fires_and_resolves(robot, frozen_clock, client):
    fake, channel = robot
    make_rule(channel, "opt_outs_rising", channel_kind="email", window_minutes=10,
              threshold=3, min_count=3)
    frozen_clock.set(T0 - timedelta(minutes=15))
    unsubscribe(client, "ann")
    frozen_clock.set(T0 - timedelta(minutes=2))
    for user_id in ["bob", "cid", "dee"]:
        unsubscribe(client, user_id)

    assert evaluate_at(frozen_clock, T0) == 1
    assert "3 in the last 10 min against 1" in robot_texts(fake)[0]
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=7)) == 0
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=10)) == 1
    assert robot_texts(fake)[1].startswith("[RESOLVED]")


def test_unsubscribes_below_ratio_do_not_fire(robot, frozen_clock, client):
    fake, channel = robot
    make_rule(channel, "opt_outs_rising", window_minutes=10, threshold=3, min_count=3)
    frozen_clock.set(T0 - timedelta(minutes=15))
    unsubscribe(client, "ann")
    unsubscribe(client, "bob")
    frozen_clock.set(T0 - timedelta(minutes=2))
    for user_id in ["cid", "dee", "eve"]:
        unsubscribe(client, user_id)

    assert evaluate_at(frozen_clock, T0) == 0
    assert AlertRule.objects.get().last_value == 3


def test_repeated_unsubscribe_is_one_event(frozen_clock, client, db):
    frozen_clock.set(T0)
    unsubscribe(client, "ann")
    unsubscribe(client, "ann")
    event = OptOutEvent.objects.get()
    assert (event.source, event.channel_kind, event.notification_type) == (
        "unsubscribe_link", "email", "promo")
    assert event.created_at == T0


def test_sms_opt_out_writes_events(frozen_clock, db):
    frozen_clock.set(T0)
    users = set_marketing_sms(["ann", "bob"], False, T0)
    set_marketing_sms(["ann"], True, T0 + timedelta(seconds=1))
    assert sorted(users) == ["ann", "bob"]
    events = OptOutEvent.objects.order_by("user_id")
    assert [(e.user_id, e.source, e.channel_kind) for e in events] == [
        ("ann", "sms_opt_out", "sms"), ("bob", "sms_opt_out", "sms")]


def test_failed_alert_send_is_tried_again(robot, frozen_clock, add_records):
    fake, channel = robot
    make_rule(channel, "backlog", threshold=0)
    add_records("app", "fcm", "queued", 1)
    fake.script_raw(ROBOT_SEND_PATH, 502, b"bad gateway")

    assert evaluate_at(frozen_clock, T0) == 0
    event = AlertEvent.objects.get()
    assert event.notified_at is None
    assert event.notify_error.startswith("retryable")

    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=1)) == 1
    event.refresh_from_db()
    assert event.notified_at == T0 + timedelta(minutes=1)
    assert event.notify_error == ""
    assert len(robot_texts(fake)) == 1


def test_broken_alert_channel_keeps_the_event(frozen_clock, add_records):
    broken = Channel.objects.create(name="gone", kind="wechat", provider="no_such_provider")
    make_rule(broken, "backlog", threshold=0)
    add_records("app", "fcm", "queued", 1)

    assert evaluate_at(frozen_clock, T0) == 0
    event = AlertEvent.objects.get()
    assert event.notify_error.startswith("LookupError")


def test_disabled_rule_is_not_evaluated(robot, frozen_clock, add_records):
    fake, channel = robot
    make_rule(channel, "backlog", threshold=0, enabled=False)
    add_records("app", "fcm", "queued", 1)

    assert evaluate_at(frozen_clock, T0) == 0
    assert AlertRule.objects.get().last_evaluated_at is None


def test_alert_send_records_provider_latency(robot, frozen_clock, add_records):
    fake, channel = robot
    make_rule(channel, "backlog", threshold=0)
    add_records("app", "fcm", "queued", 1)

    evaluate_at(frozen_clock, T0)
    assert latency_histograms()["wecom_robot"]["count"] == 1


def alert_mail_channel(smtp_server) -> Channel:
    return Channel.objects.create(
        name="ops-mail", kind="email", provider="smtp",
        config={"host": smtp_server.host, "port": smtp_server.port, "use_tls": False,
                "from_email": "alerts@sharestack.example"},
    )


def test_alert_by_email(smtp_server, frozen_clock, add_records):
    smtp = alert_mail_channel(smtp_server)
    make_rule(smtp, "backlog", threshold=0, alert_address="oncall@example.com")
    add_records("app", "fcm", "queued", 1)

    assert evaluate_at(frozen_clock, T0) == 1
    [mail] = smtp_server.mails
    assert mail.rcpt_tos == ["oncall@example.com"]
    assert mail.message["Subject"] == "[FIRING] backlog rule"


def test_evaluate_alerts_task(robot, frozen_clock, add_records):
    from analytics.tasks import evaluate_alerts_job

    fake, channel = robot
    make_rule(channel, "backlog", threshold=0)
    add_records("app", "fcm", "queued", 1)
    frozen_clock.set(T0)

    assert evaluate_alerts_job.delay().get() == 1
    assert len(robot_texts(fake)) == 1


def test_broken_rule_does_not_stop_others(robot, frozen_clock, add_records, caplog):
    fake, channel = robot
    # Saved before the form checked the range: subtracting the window overflows.
    broken = make_rule(channel, "failure_rate", window_minutes=99_999_999_999)
    make_rule(channel, "backlog", threshold=0)
    add_records("app", "fcm", "deferred", 1)

    assert evaluate_at(frozen_clock, T0) == 1
    assert robot_texts(fake)[0].startswith("[FIRING] backlog rule\n")
    [failure] = [r for r in caplog.records if r.name == "analytics.alerts" and r.exc_info]
    assert failure.args == (broken.pk,)
    assert failure.exc_info[0] is OverflowError


def test_alert_to_no_address_stays_unsent(smtp_server, frozen_clock, add_records):
    smtp = alert_mail_channel(smtp_server)
    # Saved without the form, which rejects an email channel without an address.
    make_rule(smtp, "backlog", threshold=0, alert_address="")
    add_records("app", "fcm", "queued", 1)

    assert evaluate_at(frozen_clock, T0) == 0
    assert smtp_server.mails == []
    event = AlertEvent.objects.get()
    assert event.notified_at is None
    assert "email address" in event.notify_error


def test_rule_disabled_while_firing_resolves(robot, frozen_clock, add_records):
    fake, channel = robot
    rule = make_rule(channel, "backlog", threshold=0)
    add_records("app", "fcm", "queued", 1)
    assert evaluate_at(frozen_clock, T0) == 1

    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=1)) == 1
    assert evaluate_at(frozen_clock, T0 + timedelta(minutes=2)) == 0
    resolved = robot_texts(fake)[1]
    assert resolved.startswith("[RESOLVED] backlog rule\n")
    assert "disabled while firing" in resolved
    rule.refresh_from_db()
    assert rule.firing is False
    assert rule.last_evaluated_at == T0
