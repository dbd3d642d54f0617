"""Active-time delivery: the activity API, learnt local hours and release by beat."""

from datetime import UTC, datetime, time, timedelta

import pytest

from channels_app.models import Channel
from channels_app.providers.base import Receipt, ReceiptEvent
from preferences.models import UserActiveHour, UserProfile
from sharestack_push.notifications.models import NotificationType, PushRecord
from sharestack_push.notifications.receipts import apply_receipts
from tests.notifications.conftest import add_app_user

ACTIVITY_URL = "/api/v1/activity"
NEW_YORK = "America/New_York"


def learn(push_client, user_id: str, *moments: datetime) -> None:
    events = [
        {"user_id": user_id, "occurred_at": moment.isoformat()} for moment in moments
    ]
    response = push_client.post(ACTIVITY_URL, {"events": events}, format="json")
    assert response.status_code == 202
    assert response.json() == {"recorded": len(moments)}


def push_optimal(post_push, **body):
    response = post_push(
        notification_id="digest-1", user_id="ann", send_at="optimal", **body
    )
    assert response.status_code == 202
    return PushRecord.objects.get()


def test_activity_counts_local_hours(push_client, frozen_clock):
    frozen_clock.set(datetime(2026, 6, 11, 2, 0, tzinfo=UTC))
    UserProfile.objects.create(user_id="ann", timezone="Asia/Shanghai")
    response = push_client.post(
        ACTIVITY_URL,
        {"user_id": "ann", "occurred_at": "2026-06-10T01:30:00Z"},
        format="json",
    )
    learn(push_client, "ann", datetime(2026, 6, 11, 1, 5, tzinfo=UTC))

    assert response.status_code == 202
    bar = UserActiveHour.objects.get()
    assert (bar.hour, bar.count) == (9, 2)
    assert bar.last_active_at == datetime(2026, 6, 11, 1, 5, tzinfo=UTC)


def test_activity_of_unknown_user_uses_default_zone(push_client, settings, frozen_clock):
    frozen_clock.set(datetime(2026, 6, 11, 0, 0, tzinfo=UTC))
    settings.PUSH_DEFAULT_TIMEZONE = "UTC"
    learn(push_client, "bob", datetime(2026, 6, 10, 23, 59, tzinfo=UTC))
    assert UserActiveHour.objects.get().hour == 23


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "ann", "occurred_at": "2026-06-10T01:30:00"}, "occurred_at"),
        ({"user_id": "ann"}, "occurred_at"),
        ({"occurred_at": "2026-06-10T01:30:00Z"}, "user_id"),
        ({}, "events"),
        (
            {"user_id": "ann", "occurred_at": "2026-06-10T01:30:00Z", "events": []},
            "events",
        ),
        ({"events": [{"user_id": "ann"}]}, "events[0].occurred_at"),
        ({"user_id": "ann", "occurred_at": "2026-06-10T02:06:00Z"}, "occurred_at"),
        ({"user_id": "ann", "occurred_at": "2026-05-10T01:59:00Z"}, "occurred_at"),
        ({"user_id": "ann", "occurred_at": "9999-12-31T23:59:59Z"}, "occurred_at"),
        (
            {"events": [{"user_id": "ann", "occurred_at": "2026-06-10T01:00:00Z"},
                        {"user_id": "bob", "occurred_at": "1970-01-01T00:00:00Z"}]},
            "events[1].occurred_at",
        ),
    ],
)
def test_activity_rejects_invalid_events(push_client, frozen_clock, body, field):
    frozen_clock.set(datetime(2026, 6, 10, 2, 0, tzinfo=UTC))
    response = push_client.post(ACTIVITY_URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not UserActiveHour.objects.exists()


def test_activity_accepts_edges_of_window(push_client, frozen_clock):
    frozen_clock.set(datetime(2026, 6, 10, 2, 0, tzinfo=UTC))
    learn(push_client, "ann", datetime(2026, 5, 11, 2, 0, tzinfo=UTC),
          datetime(2026, 6, 10, 2, 5, tzinfo=UTC))


def test_activity_needs_push_scope(preferences_client):
    response = preferences_client.post(
        ACTIVITY_URL,
        {"user_id": "ann", "occurred_at": "2026-06-10T01:30:00Z"},
        format="json",
    )
    assert response.status_code == 403


def test_open_receipt_counts_as_activity(db):
    channel = Channel.objects.create(name="console", kind="app", provider="console")
    UserProfile.objects.create(user_id="ann", timezone="UTC")
    PushRecord.objects.create(
        task=push_task(),
        user_id="ann",
        channel_kind="app",
        channel=channel,
        address="token",
        status="sent",
        provider_message_id="m-1",
    )
    opened = datetime(2026, 6, 10, 7, 40, tzinfo=UTC)

    apply_receipts(channel, [Receipt("m-1", ReceiptEvent.OPENED, occurred_at=opened)])
    apply_receipts(
        channel, [Receipt("m-1", ReceiptEvent.DELIVERED, occurred_at=opened)]
    )

    bar = UserActiveHour.objects.get()
    assert (bar.hour, bar.count) == (7, 1)


def push_task():
    from sharestack_push.notifications.models import PushTask

    return PushTask.objects.create(
        notification_id="n-1",
        notification_type="order",
        target="user",
        user_id="ann",
        channels=["app"],
    )


def test_learnt_hour_survives_dst_change(
    fcm, push_client, post_push, frozen_clock, beat_tick
):
    add_app_user("ann", "token-ann", timezone=NEW_YORK)
    # 13:15 UTC is 08:15 in New York before the clocks go forward on 8 March 2026.
    mornings = [datetime(2026, 3, day, 13, 15, tzinfo=UTC) for day in (2, 3, 4)]
    evening = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)  # 20:00 on 4 March
    frozen_clock.set(evening)
    learn(push_client, "ann", *mornings, evening)
    # 22:00 UTC on 8 March is 18:00 EDT, the first day of daylight saving time.
    frozen_clock.set(datetime(2026, 3, 8, 22, 0, tzinfo=UTC))

    record = push_optimal(post_push)

    # 08:00 EDT on 9 March is 12:00 UTC, an hour earlier than in the learnt week.
    release = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    assert (record.status, record.reason) == ("deferred", "optimal_time")
    assert record.next_attempt_at == release
    frozen_clock.set(release - timedelta(seconds=1))
    beat_tick()
    assert fcm.requests == []
    frozen_clock.set(release)
    beat_tick()
    record.refresh_from_db()
    assert record.status == "sent"
    assert len(fcm.requests) == 1


def test_user_in_active_hour_gets_it_now(fcm, push_client, post_push, frozen_clock):
    add_app_user("ann", "token-ann", timezone="UTC")
    frozen_clock.set(datetime(2026, 6, 10, 9, 45, tzinfo=UTC))
    learn(push_client, "ann", datetime(2026, 6, 9, 9, 30, tzinfo=UTC))

    record = push_optimal(post_push)

    assert record.status == "sent"


def test_tied_hours_take_the_next_one(fcm, push_client, post_push, frozen_clock):
    add_app_user("ann", "token-ann", timezone="UTC")
    frozen_clock.set(datetime(2026, 6, 10, 10, 0, tzinfo=UTC))
    learn(
        push_client,
        "ann",
        datetime(2026, 6, 8, 8, 0, tzinfo=UTC),
        datetime(2026, 6, 9, 8, 0, tzinfo=UTC),
        datetime(2026, 6, 8, 20, 0, tzinfo=UTC),
        datetime(2026, 6, 9, 20, 0, tzinfo=UTC),
        datetime(2026, 6, 9, 14, 0, tzinfo=UTC),
    )
    frozen_clock.set(datetime(2026, 6, 10, 10, 0, tzinfo=UTC))

    record = push_optimal(post_push)

    assert record.next_attempt_at == datetime(2026, 6, 10, 20, 0, tzinfo=UTC)


def test_unknown_user_waits_for_type_default_time(fcm, post_push, frozen_clock):
    add_app_user("ann", "token-ann", timezone="Asia/Shanghai")
    NotificationType.objects.create(key="order", default_send_time=time(9, 0))
    frozen_clock.set(datetime(2026, 6, 10, 4, 0, tzinfo=UTC))  # 12:00 in Shanghai

    record = push_optimal(post_push)

    assert record.reason == "optimal_time"
    assert record.next_attempt_at == datetime(2026, 6, 11, 1, 0, tzinfo=UTC)


def test_unknown_user_without_default_gets_it_now(fcm, post_push, frozen_clock):
    add_app_user("ann", "token-ann")
    frozen_clock.set(datetime(2026, 6, 10, 4, 0, tzinfo=UTC))

    record = push_optimal(post_push)

    assert record.status == "sent"


def test_opt_out_before_optimal_hour_is_honoured(
    fcm, push_client, post_push, frozen_clock, beat_tick
):
    add_app_user("ann", "token-ann", timezone="UTC")
    frozen_clock.set(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))
    learn(push_client, "ann", datetime(2026, 6, 9, 18, 0, tzinfo=UTC))
    record = push_optimal(post_push)
    UserProfile.objects.filter(user_id="ann").update(all_enabled=False)

    frozen_clock.set(datetime(2026, 6, 10, 18, 0, tzinfo=UTC))
    beat_tick()

    record.refresh_from_db()
    assert (record.status, record.reason) == ("suppressed", "all_disabled")
    assert fcm.requests == []


def test_send_at_accepts_only_optimal(push_client):
    response = push_client.post(
        "/api/v1/notifications/push",
        {
            "notification_id": "n-1",
            "notification_type": "order",
            "user_id": "ann",
            "channels": ["app"],
            "content": {"body": "Hi"},
            "send_at": "soon",
        },
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["send_at"]
