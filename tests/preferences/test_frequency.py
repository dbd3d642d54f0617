"""The Redis frequency counter on its own: atomic check-and-count, expiry, seeding."""
from datetime import datetime, timedelta, timezone

import pytest
import redis
from django.conf import settings

from preferences.frequency import (
    KEY_PREFIX,
    CountRequest,
    RedisFrequencyCounter,
    frequency_counter,
)
from preferences.policy import LimitHit, Limits

NOON = datetime(2026, 6, 10, 12, tzinfo=timezone.utc)
DAY_START = datetime(2026, 6, 10, tzinfo=timezone.utc)
DAY_END = datetime(2026, 6, 11, tzinfo=timezone.utc)


@pytest.fixture
def client():
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def counter(client):
    return RedisFrequencyCounter(client)


def request(member: str, limits: Limits, now: datetime = NOON, **fields) -> CountRequest:
    return CountRequest(
        user_id="ann", member=member, notification_type="order", channel="app",
        limits=limits, now=now, day_start=DAY_START, day_end=DAY_END, **fields,
    )


def test_daily_limit_counts_distinct_tasks(counter):
    limits = Limits(daily=2)
    assert counter.take(request("t1", limits)) is None
    assert counter.take(request("t2", limits)) is None
    assert counter.take(request("t3", limits)) == LimitHit("frequency_limit")


def test_same_task_counted_once(counter):
    limits = Limits(daily=1)
    assert counter.take(request("t1", limits)) is None
    assert counter.take(request("t1", limits)) is None
    assert counter.take(request("t2", limits)) == LimitHit("frequency_limit")


def test_rejected_message_takes_nothing(counter):
    assert counter.take(request("t1", Limits(daily=1))) is None
    assert counter.take(request("t2", Limits(daily=1))) is not None
    # With room again (a higher limit), t2 still fits: its rejection counted nothing.
    assert counter.take(request("t2", Limits(daily=2))) is None


def test_channel_limit(counter):
    limits = Limits(channel_daily=1)
    assert counter.take(request("t1", limits)) is None
    assert counter.take(request("t2", limits)) == LimitHit("frequency_limit")


def test_min_interval_returns_retry_time(counter):
    limits = Limits(min_interval_seconds=600)
    assert counter.take(request("t1", limits)) is None
    hit = counter.take(request("t2", limits, now=NOON + timedelta(seconds=60)))
    assert hit == LimitHit("min_interval", NOON + timedelta(seconds=600))
    assert counter.take(request("t2", limits, now=NOON + timedelta(seconds=600))) is None


def test_min_interval_allows_same_task_on_second_channel(counter):
    limits = Limits(min_interval_seconds=600)
    assert counter.take(request("t1", limits)) is None
    assert counter.take(request("t1", limits, now=NOON + timedelta(seconds=1))) is None


def test_database_seeds_count(counter):
    limits = Limits(daily=2, min_interval_seconds=600)
    seeded = request("t3", limits, seen_today=["t1", "t2"])
    assert counter.take(seeded) == LimitHit("frequency_limit")
    last = request("t3", Limits(min_interval_seconds=600), last_sent_at=NOON - timedelta(seconds=1))
    assert counter.take(last) == LimitHit("min_interval", NOON + timedelta(seconds=599))


def test_unenforced_message_counted_without_check(counter):
    assert counter.take(request("t1", Limits(daily=1))) is None
    assert counter.take(request("urgent", Limits(daily=1, enforced=False))) is None
    assert counter.take(request("t2", Limits(daily=3))) is None
    assert counter.take(request("t3", Limits(daily=3))) == LimitHit("frequency_limit")


def test_every_key_expires(counter, client):
    limits = Limits(daily=5, channel_daily=5, min_interval_seconds=600)
    counter.take(request("t1", limits, seen_today=["t0"], seen_on_channel=["t0"]))
    keys = client.keys(KEY_PREFIX + "*")
    assert len(keys) == 3
    ttls = {key.decode().split(":")[2]: client.pttl(key) for key in keys}
    assert 0 < ttls["last"] <= 600_000
    day_ttl_ms = (DAY_END - NOON + timedelta(hours=1)).total_seconds() * 1000
    assert 0 < ttls["day"] <= day_ttl_ms
    assert 0 < ttls["channel"] <= day_ttl_ms


def test_user_ids_with_separators_get_own_keys(counter):
    limits = Limits(channel_daily=1)
    first = CountRequest(user_id="a:b", member="t1", notification_type="c", channel="app",
                         limits=limits, now=NOON, day_start=DAY_START, day_end=DAY_END)
    second = CountRequest(user_id="a", member="t2", notification_type="b:c", channel="app",
                          limits=limits, now=NOON, day_start=DAY_START, day_end=DAY_END)
    assert counter.take(first) is None
    assert counter.take(second) is None


def test_no_counter_without_redis(settings):
    settings.REDIS_URL = ""
    assert frequency_counter() is None


def test_counter_rebuilt_for_new_url(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    first = frequency_counter()
    assert frequency_counter() is first
    settings.REDIS_URL = settings.REDIS_URL + "?"
    assert frequency_counter() is not first
