"""The statistics questions on hand-made roll-ups: weeks, weekdays, time zones, channels."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.analytics.conftest import add_stat

pytestmark = pytest.mark.django_db

STATS_URL = "/api/v1/notifications/stats"
CHANNELS_URL = "/api/v1/notifications/stats/channels"
# Sunday 20:00 UTC is Monday 04:00 in Asia/Shanghai (UTC+8).
SUNDAY_EVENING = datetime(2026, 12, 6, 20, tzinfo=UTC)
# Monday 02:00 UTC is Monday 10:00 in Shanghai.
MONDAY_MORNING = datetime(2026, 12, 7, 2, tzinfo=UTC)
# Wednesday a week earlier, 12:00 UTC.
EARLIER_WEDNESDAY = datetime(2026, 12, 2, 12, tzinfo=UTC)


@pytest.fixture
def week_stats(db):
    add_stat(SUNDAY_EVENING, sent=1)
    add_stat(MONDAY_MORNING, sent=2)
    add_stat(EARLIER_WEDNESDAY, sent=4)


def sent_by(admin_client, query: str) -> dict:
    response = admin_client.get(f"{STATS_URL}?{query}")
    assert response.status_code == 200, response.content
    body = response.json()
    name = body["group_by"][0]
    return {group[name]: group["sent"] for group in body["groups"]}


def test_weekday_in_utc(week_stats, admin_client):
    assert sent_by(admin_client, "group_by=weekday") == {1: 2, 3: 4, 7: 1}


def test_weekday_in_shanghai(week_stats, admin_client):
    assert sent_by(admin_client, "group_by=weekday&tz=Asia/Shanghai") == {1: 3, 3: 4}


def test_week_labelled_by_monday_in_utc(week_stats, admin_client):
    assert sent_by(admin_client, "group_by=week") == {"2026-11-30": 5, "2026-12-07": 2}


def test_week_in_shanghai(week_stats, admin_client):
    assert sent_by(admin_client, "group_by=week&tz=Asia/Shanghai") == {
        "2026-11-30": 4, "2026-12-07": 3,
    }


def test_day_in_shanghai(week_stats, admin_client):
    assert sent_by(admin_client, "group_by=day&tz=Asia/Shanghai") == {
        "2026-12-02": 4, "2026-12-07": 3,
    }


def test_hour_of_day_in_shanghai(week_stats, admin_client):
    assert sent_by(admin_client, "group_by=hour_of_day&tz=Asia/Shanghai") == {
        4: 1, 10: 2, 20: 4,
    }


def test_time_zone_leaves_totals(week_stats, admin_client):
    utc = admin_client.get(f"{STATS_URL}?group_by=day").json()
    shanghai = admin_client.get(f"{STATS_URL}?group_by=day&tz=Asia/Shanghai").json()
    assert shanghai["totals"] == utc["totals"]


def test_weekday_with_channel_grouping(week_stats, admin_client):
    add_stat(MONDAY_MORNING, channel_kind="sms", provider="twilio", sent=5)
    groups = admin_client.get(f"{STATS_URL}?group_by=channel,weekday").json()["groups"]
    assert [(g["channel"], g["weekday"], g["sent"]) for g in groups] == [
        ("app", 1, 2), ("app", 3, 4), ("app", 7, 1), ("sms", 1, 5),
    ]


@pytest.mark.parametrize(
    "query, param",
    [
        ("tz=Mars/Olympus", "tz"),
        ("tz=", "tz"),
        ("tz=../etc/passwd", "tz"),
        ("group_by=weekday,weekday", "group_by"),
        ("type=news%00", "type"),
        ("tz=Asia/Shanghai%00", "tz"),
        ("group_by=fortnight", "group_by"),
    ],
)
def test_stats_time_param_is_400_naming_it(db, admin_client, query, param):
    response = admin_client.get(f"{STATS_URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


@pytest.fixture
def channel_stats(db):
    add_stat(MONDAY_MORNING)
    add_stat(EARLIER_WEDNESDAY, notification_type="news")
    add_stat(MONDAY_MORNING, channel_kind="sms", provider="twilio", sent=5, delivered=4,
         opened=0, clicked=0, failed=3, segments=7, cost=Decimal("0.35"))
    add_stat(MONDAY_MORNING, channel_kind="email", provider="smtp", sent=0, delivered=0,
         opened=0, clicked=0, failed=2, cost=Decimal(0))


def comparison(admin_client, query: str = "") -> dict[tuple[str, str], dict]:
    response = admin_client.get(f"{CHANNELS_URL}?{query}")
    assert response.status_code == 200, response.content
    return {(row["channel"], row["provider"]): row for row in response.json()["channels"]}


def test_channel_comparison_rates(channel_stats, admin_client):
    app = comparison(admin_client)[("app", "fcm")]
    assert (app["sent"], app["delivered"], app["failed"]) == (20, 16, 2)
    assert app["delivery_rate"] == 0.8
    assert app["open_rate"] == 0.5
    assert app["click_rate"] == 0.25
    assert app["failure_rate"] == round(2 / 22, 4)


def test_channel_comparison_costs(channel_stats, admin_client):
    rows = comparison(admin_client)
    assert rows[("app", "fcm")]["cost"] == "0.20000"
    assert rows[("app", "fcm")]["cost_per_message"] == 0.01
    assert rows[("app", "fcm")]["cost_per_delivered"] == 0.0125
    assert rows[("sms", "twilio")]["cost_per_message"] == 0.07
    assert rows[("sms", "twilio")]["cost_per_delivered"] == 0.0875
    assert rows[("sms", "twilio")]["segments"] == 7


def test_channel_comparison_without_sends(channel_stats, admin_client):
    email = comparison(admin_client)[("email", "smtp")]
    assert email["failure_rate"] == 1.0
    assert email["delivery_rate"] is None
    assert email["cost_per_message"] is None
    assert email["cost_per_delivered"] is None


def test_channel_comparison_order(channel_stats, admin_client):
    assert list(comparison(admin_client)) == [
        ("app", "fcm"), ("email", "smtp"), ("sms", "twilio"),
    ]


def test_channel_comparison_filters(channel_stats, admin_client):
    rows = comparison(admin_client, "type=news")
    assert list(rows) == [("app", "fcm")]
    assert rows[("app", "fcm")]["sent"] == 10


def test_channel_comparison_time_range(channel_stats, admin_client):
    rows = comparison(admin_client, "from=2026-12-07T00:00:00Z&channel=app,sms")
    assert {key: row["sent"] for key, row in rows.items()} == {
        ("app", "fcm"): 10, ("sms", "twilio"): 5,
    }


@pytest.mark.parametrize(
    "query, param",
    [
        ("channel=fax", "channel"),
        ("from=monday", "from"),
        ("from=2026-12-07T00:00:00Z&to=2026-12-06T00:00:00Z", "to"),
        ("type=", "type"),
        ("group_by=channel", "group_by"),
        ("tz=UTC", "tz"),
    ],
)
def test_channel_comparison_bad_param(db, admin_client, query, param):
    response = admin_client.get(f"{CHANNELS_URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


def test_channel_comparison_needs_admin_scope(db, push_client):
    assert push_client.get(CHANNELS_URL).status_code == 403
