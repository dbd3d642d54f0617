"""Type rules, frequency limits and channel choice through the pipeline.

Jobs run eagerly against the fake FCM server and Redis, with the pipeline's clock
frozen; one test runs with the database fallback instead of Redis.
"""
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
import redis

from channels_app.models import Channel, Contact
from preferences.models import UserPushPreference
from sharestack_push.notifications.models import NotificationType, PushRecord, PushTask
from tests.notifications.conftest import add_app_user

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=BERLIN)


def statuses(notification_type: str | None = None) -> list[tuple[str, str]]:
    records = PushRecord.objects.order_by("id")
    if notification_type:
        records = records.filter(task__notification_type=notification_type)
    return list(records.values_list("status", "reason"))


def record_of(notification_id: str) -> PushRecord:
    return PushRecord.objects.get(task__notification_id=notification_id)


def record_of_all(notification_id: str) -> list[str]:
    return list(
        PushRecord.objects.filter(task__notification_id=notification_id).values_list(
            "status", flat=True
        )
    )


def register(key: str, **fields) -> NotificationType:
    return NotificationType.objects.create(key=key, **fields)


def test_marketing_over_daily_limit_is_suppressed(fcm, frozen_clock, post_push):
    register("promo", category="marketing")
    add_app_user("ann", "tok-ann", daily_limit=2, timezone="Europe/Berlin")
    frozen_clock.set(berlin(9))
    for number in range(3):
        post_push(notification_id=f"n{number}", notification_type="promo", user_id="ann")
    assert statuses() == [("sent", ""), ("sent", ""), ("suppressed", "frequency_limit")]
    assert len(fcm.requests) == 2


def test_deferred_excess_counted_at_release(
    fcm, frozen_clock, post_push, beat_tick
):
    add_app_user("ann", "tok-ann", daily_limit=1, timezone="Europe/Berlin")
    frozen_clock.set(berlin(9))
    post_push(notification_id="first", user_id="ann")
    post_push(notification_id="second", user_id="ann")
    assert record_of("second").status == "deferred"
    assert record_of("second").next_attempt_at == berlin(0, day=11)

    frozen_clock.set(berlin(23, 59))
    beat_tick()
    assert record_of("second").status == "deferred"

    frozen_clock.set(berlin(0, day=11))
    beat_tick()
    assert record_of("second").status == "sent"
    assert len(fcm.requests) == 2

    # The released message used the new day's only slot.
    post_push(notification_id="third", user_id="ann")
    assert record_of("third").status == "deferred"
    assert record_of("third").next_attempt_at == berlin(0, day=12)


def test_min_interval_defers_transactional(fcm, frozen_clock, post_push, beat_tick):
    register("order", min_interval_seconds=600)
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    post_push(notification_id="first", user_id="ann")
    frozen_clock.set(berlin(9, 4))
    post_push(notification_id="second", user_id="ann")
    second = record_of("second")
    assert second.status == "deferred"
    assert second.reason == "min_interval"
    assert second.next_attempt_at == berlin(9, 10)

    frozen_clock.set(berlin(9, 10))
    beat_tick()
    assert record_of("second").status == "sent"
    assert len(fcm.requests) == 2


def test_min_interval_suppresses_marketing(fcm, frozen_clock, post_push):
    register("promo", category="marketing", min_interval_seconds=600)
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    post_push(notification_id="first", notification_type="promo", user_id="ann")
    frozen_clock.set(berlin(9, 5))
    post_push(notification_id="second", notification_type="promo", user_id="ann")
    assert statuses() == [("sent", ""), ("suppressed", "min_interval")]


def test_min_interval_applies_per_type(fcm, frozen_clock, post_push):
    register("order", min_interval_seconds=600)
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    post_push(notification_id="first", user_id="ann")
    post_push(notification_id="other", notification_type="news", user_id="ann")
    assert record_of("other").status == "sent"


def test_min_interval_counts_sends_from_database(fcm, frozen_clock, post_push, settings):
    # Redis lost its record (here: a fresh flush), so the database's last send counts.
    register("order", min_interval_seconds=600)
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    post_push(notification_id="first", user_id="ann")
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    frozen_clock.set(berlin(9, 1))
    post_push(notification_id="second", user_id="ann")
    assert record_of("second").reason == "min_interval"
    assert record_of("second").next_attempt_at == berlin(9, 10)


def test_daily_count_includes_database_sends(fcm, frozen_clock, post_push, settings):
    add_app_user("ann", "tok-ann", timezone="Europe/Berlin")
    frozen_clock.set(berlin(9))
    post_push(notification_id="before-limit", user_id="ann")
    # The limit is set after one message went out today.
    add_app_user("ann", "tok-ann-2", daily_limit=1, timezone="Europe/Berlin")
    post_push(notification_id="after-limit", user_id="ann")
    assert record_of_all("before-limit") == ["sent"]
    assert record_of_all("after-limit") == ["deferred", "deferred"]


def test_channel_limit_counts_per_type_and_channel(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann")
    UserPushPreference.objects.create(
        user_id="ann", notification_type="order", channel="app", frequency_limit=1
    )
    frozen_clock.set(berlin(9))
    post_push(notification_id="order-1", user_id="ann")
    post_push(notification_id="order-2", user_id="ann")
    post_push(notification_id="news-1", notification_type="news", user_id="ann")
    assert record_of("order-1").status == "sent"
    assert record_of("order-2").status == "deferred"
    assert record_of("order-2").reason == "frequency_limit"
    assert record_of("news-1").status == "sent"


def test_two_devices_count_once(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann-1", daily_limit=2)
    add_app_user("ann", "tok-ann-2", daily_limit=2)
    frozen_clock.set(berlin(9))
    post_push(notification_id="first", user_id="ann")
    post_push(notification_id="second", user_id="ann")
    assert record_of_all("second") == ["sent", "sent"]
    assert len(fcm.requests) == 4


def test_quiet_deferral_counted_at_release(fcm, frozen_clock, post_push, beat_tick):
    add_app_user("ann", "tok-ann", daily_limit=2, timezone="Europe/Berlin",
                 quiet_hours_start=time(6), quiet_hours_end=time(8))
    frozen_clock.set(berlin(7))
    post_push(notification_id="early", user_id="ann")
    assert record_of("early").status == "deferred"
    frozen_clock.set(berlin(8))
    beat_tick()
    beat_tick()
    post_push(notification_id="second", user_id="ann")
    post_push(notification_id="third", user_id="ann")
    assert record_of("early").status == "sent"
    assert record_of("second").status == "sent"
    assert record_of("third").status == "deferred"


def test_urgent_critical_bypasses_quiet_hours_and_limits(fcm, frozen_clock, post_push):
    register("security", is_critical=True, min_interval_seconds=3600)
    add_app_user("ann", "tok-ann", daily_limit=1, timezone="Europe/Berlin",
                 quiet_hours_start=time(22), quiet_hours_end=time(7))
    frozen_clock.set(berlin(23))
    for number in range(3):
        post_push(notification_id=f"alert-{number}", notification_type="security",
                  user_id="ann", priority="urgent")
    assert statuses() == [("sent", "")] * 3


def test_urgent_critical_counts_against_daily_limit(fcm, frozen_clock, post_push):
    register("security", is_critical=True)
    add_app_user("ann", "tok-ann", daily_limit=1, timezone="Europe/Berlin")
    frozen_clock.set(berlin(9))
    post_push(notification_id="alert", notification_type="security", user_id="ann",
              priority="urgent")
    post_push(notification_id="order", user_id="ann")
    assert record_of("alert").status == "sent"
    assert record_of("order").status == "deferred"


def test_critical_normal_priority_respects_limit(fcm, frozen_clock, post_push):
    register("security", is_critical=True)
    add_app_user("ann", "tok-ann", daily_limit=1)
    frozen_clock.set(berlin(9))
    post_push(notification_id="a", notification_type="security", user_id="ann")
    post_push(notification_id="b", notification_type="security", user_id="ann")
    assert record_of("b").status == "deferred"


def test_critical_type_ignores_stored_opt_outs(fcm, frozen_clock, post_push):
    register("security", is_critical=True)
    add_app_user("ann", "tok-ann", all_enabled=False)
    UserPushPreference.objects.create(
        user_id="ann", notification_type="security", channel="app", is_enabled=False
    )
    frozen_clock.set(berlin(9))
    post_push(notification_id="alert", notification_type="security", user_id="ann")
    post_push(notification_id="order", user_id="ann")
    assert record_of("alert").status == "sent"
    assert record_of("order").reason == "all_disabled"


def test_marketing_respects_disabled_row(fcm, frozen_clock, post_push):
    register("promo", category="marketing")
    add_app_user("ann", "tok-ann")
    UserPushPreference.objects.create(
        user_id="ann", notification_type="promo", channel="app", is_enabled=False
    )
    frozen_clock.set(berlin(9))
    post_push(notification_id="promo", notification_type="promo", user_id="ann",
              priority="urgent")
    assert statuses() == [("suppressed", "preference_disabled")]


def test_urgent_marketing_waits_for_quiet_hours(fcm, frozen_clock, post_push):
    register("promo", category="marketing")
    add_app_user("ann", "tok-ann", timezone="Europe/Berlin",
                 quiet_hours_start=time(22), quiet_hours_end=time(7))
    frozen_clock.set(berlin(23))
    post_push(notification_id="promo", notification_type="promo", user_id="ann",
              priority="urgent")
    assert statuses() == [("deferred", "quiet_hours")]


def test_suppressed_by_preference_is_not_counted(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann", daily_limit=1)
    UserPushPreference.objects.create(
        user_id="ann", notification_type="news", channel="app", is_enabled=False
    )
    frozen_clock.set(berlin(9))
    post_push(notification_id="news", notification_type="news", user_id="ann")
    post_push(notification_id="order", user_id="ann")
    assert record_of("news").status == "suppressed"
    assert record_of("order").status == "sent"


def test_daily_limit_without_redis_counts_database(fcm, frozen_clock, post_push, settings):
    settings.REDIS_URL = ""
    register("promo", category="marketing")
    add_app_user("ann", "tok-ann", daily_limit=1)
    frozen_clock.set(berlin(9))
    post_push(notification_id="a", notification_type="promo", user_id="ann")
    post_push(notification_id="b", notification_type="promo", user_id="ann")
    assert statuses() == [("sent", ""), ("suppressed", "frequency_limit")]


def test_min_interval_without_redis_counts_database(fcm, frozen_clock, post_push, settings):
    settings.REDIS_URL = ""
    register("order", min_interval_seconds=600)
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    post_push(notification_id="a", user_id="ann")
    frozen_clock.set(berlin(9, 1))
    post_push(notification_id="b", user_id="ann")
    assert record_of("b").reason == "min_interval"
    assert record_of("b").next_attempt_at == berlin(9, 10)



@pytest.mark.parametrize("redis_url", ["", "keep"])
def test_release_pass_counts_what_it_releases(fcm, frozen_clock, post_push, beat_tick, settings,
                                              redis_url):
    """Three messages held by a limit of one per day: the next day releases one."""
    if redis_url == "":
        settings.REDIS_URL = ""
    add_app_user("ann", "tok-ann", daily_limit=1, timezone="Europe/Berlin")
    frozen_clock.set(berlin(9))
    for name in ("a", "b", "c", "d"):
        post_push(notification_id=name, user_id="ann")
    assert [record_of(name).status for name in "abcd"] == ["sent", "deferred", "deferred", "deferred"]

    frozen_clock.set(record_of("b").next_attempt_at)
    beat_tick()
    released = [record_of(name).status for name in "bcd"]
    assert released.count("sent") == 1
    assert released.count("deferred") == 2


def test_release_pass_respects_min_interval_without_redis(fcm, frozen_clock, post_push, beat_tick,
                                                          settings):
    settings.REDIS_URL = ""
    register("order", min_interval_seconds=600)
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    for name in ("a", "b", "c"):
        post_push(notification_id=name, user_id="ann")
    frozen_clock.set(berlin(9, 10))
    beat_tick()
    released = [record_of(name).status for name in "bc"]
    assert released.count("sent") == 1
    assert released.count("deferred") == 1


# Channel choice.


@pytest.fixture
def console_sms(db):
    return Channel.objects.create(name="sms-console", kind="sms", provider="console")


def test_type_default_channels_used_without_channels(fcm, frozen_clock, post_push):
    register("order", default_channels=["app"])
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    response = post_push(notification_id="n1", user_id="ann", channels=None)
    assert response.status_code == 202
    assert PushTask.objects.get().channels == ["app"]
    assert statuses() == [("sent", "")]


def test_missing_channels_without_defaults_is_400(fcm, frozen_clock, post_push):
    frozen_clock.set(berlin(9))
    response = post_push(notification_id="n1", user_id="ann", channels=None)
    assert response.status_code == 400
    assert "channels" in response.json()["error"]["fields"]
    assert PushTask.objects.count() == 0


def test_urgent_adds_sms_for_allowed_type(fcm, frozen_clock, post_push, console_sms):
    register("security", is_critical=True, default_channels=["app"], sms_for_urgent=True)
    add_app_user("ann", "tok-ann")
    Contact.objects.create(user_id="ann", kind="phone", address="+8613800000000")
    frozen_clock.set(berlin(9))
    post_push(notification_id="n1", notification_type="security", user_id="ann",
              channels=None, priority="urgent")
    assert PushTask.objects.get().channels == ["app", "sms"]
    records = PushRecord.objects.order_by("id").values_list("channel_kind", "status")
    assert list(records) == [("app", "sent"), ("sms", "sent")]


def test_normal_priority_adds_no_sms(fcm, frozen_clock, post_push, console_sms):
    register("security", is_critical=True, default_channels=["app"], sms_for_urgent=True)
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(9))
    post_push(notification_id="n1", notification_type="security", user_id="ann",
              channels=None)
    assert PushTask.objects.get().channels == ["app"]


def test_disabled_default_channel_sends_nothing(fcm, frozen_clock, post_push, console_sms):
    register("order", default_channels=["sms", "app"])
    add_app_user("ann", "tok-ann")
    Contact.objects.create(user_id="ann", kind="phone", address="+8613800000000")
    UserPushPreference.objects.create(user_id="ann", channel="sms", is_enabled=False)
    frozen_clock.set(berlin(9))
    post_push(notification_id="n1", user_id="ann", channels=None)
    records = PushRecord.objects.order_by("channel_kind").values_list(
        "channel_kind", "status", "reason")
    assert list(records) == [("app", "sent", ""), ("sms", "suppressed", "preference_disabled")]


def test_group_push_gets_no_urgent_sms(frozen_clock, push_client):
    register("ops", sms_for_urgent=True, default_channels=["app"])
    Channel.objects.create(name="ops-robot", kind="wechat", provider="wecom_robot",
                           credentials={"key": "robot-key"})
    frozen_clock.set(berlin(9))
    response = push_client.post("/api/v1/notifications/push", {
        "notification_id": "deploy", "notification_type": "ops", "channels": ["ops-robot"],
        "priority": "urgent", "content": {"body": "Deploy finished"},
    }, format="json")
    assert response.status_code == 202
    assert PushTask.objects.get().channels == ["ops-robot"]


def test_group_push_without_channels_is_400(frozen_clock, push_client):
    register("ops", default_channels=["app"])
    frozen_clock.set(berlin(9))
    response = push_client.post("/api/v1/notifications/push", {
        "notification_id": "deploy", "notification_type": "ops",
        "content": {"body": "Deploy finished"},
    }, format="json")
    assert response.status_code == 400
    assert "channels" in response.json()["error"]["fields"]


def test_release_over_limit_defers_again(fcm, frozen_clock, post_push, beat_tick):
    register("security", is_critical=True)
    add_app_user("ann", "tok-ann", daily_limit=1, timezone="Europe/Berlin",
                 quiet_hours_start=time(6), quiet_hours_end=time(8))
    frozen_clock.set(berlin(7))
    post_push(notification_id="order", user_id="ann")
    post_push(notification_id="alert", notification_type="security", user_id="ann",
              priority="urgent")
    assert record_of("alert").status == "sent"

    frozen_clock.set(berlin(8))
    beat_tick()
    order = record_of("order")
    assert order.status == "deferred"
    assert order.reason == "frequency_limit"
    assert order.next_attempt_at == berlin(0, day=11)
