"""Response of churned users on a hand-made example, and the activity days behind it."""
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from analytics.activity import record_activity_days
from analytics.models import UserActivityDay
from preferences.activity import record_activity
from preferences.models import UserActiveHour
from sharestack_push.notifications.models import PushRecord, PushTask

pytestmark = pytest.mark.django_db

CHURN_URL = "/api/v1/notifications/stats/churn"
ACTIVITY_URL = "/api/v1/activity"
SENT = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
WEEK = timedelta(days=7)


@pytest.fixture
def task(db) -> PushTask:
    return PushTask.objects.create(
        notification_id="churn", notification_type="news", target="user", channels=["app"],
    )


def sent_record(task: PushTask, user_id: str, kind: str = "app", sent_at: datetime = SENT,
                **times: datetime) -> PushRecord:
    return PushRecord.objects.create(
        task=task, user_id=user_id, channel_kind=kind, provider="fcm", status="sent",
        sent_at=sent_at, **times,
    )


def churn(admin_client, query: str = "days=7") -> dict:
    response = admin_client.get(f"{CHURN_URL}?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_activity_days_keep_first_and_last(db):
    record_activity([("ann", SENT), ("ann", SENT - timedelta(hours=5)),
                     ("ann", SENT + timedelta(hours=3))])
    record_activity([("ann", SENT - timedelta(hours=9))])
    day = UserActivityDay.objects.get(user_id="ann")
    assert day.day == SENT.date()
    assert day.first_at == SENT - timedelta(hours=9)
    assert day.last_at == SENT + timedelta(hours=3)
    assert str(day) == "ann active on 2026-12-04"


def test_activity_days_split_by_utc_day(db):
    record_activity([("ann", datetime(2026, 12, 4, 23, 59, tzinfo=UTC)),
                     ("ann", datetime(2026, 12, 5, 0, 1, tzinfo=UTC))])
    days = list(UserActivityDay.objects.order_by("day").values_list("day", flat=True))
    assert [day.isoformat() for day in days] == ["2026-12-04", "2026-12-05"]


def test_activity_api_records_days(db, push_client):
    response = push_client.post(
        ACTIVITY_URL, {"user_id": "ann", "occurred_at": "2026-12-04T10:00:00+08:00"},
        format="json",
    )
    assert response.status_code == 202
    assert UserActivityDay.objects.get(user_id="ann").first_at == datetime(
        2026, 12, 4, 2, tzinfo=UTC
    )


def test_open_receipt_records_day(fcm, frozen_clock, post_push, push_client):
    from tests.notifications.conftest import add_app_user

    add_app_user("ann", "tok-ann")
    frozen_clock.set(SENT)
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    frozen_clock.set(datetime(2026, 12, 4, 11, tzinfo=UTC))
    push_client.post("/api/v1/notifications/events",
                     {"record_id": record.pk, "event": "opened",
                      "occurred_at": "2026-12-04T11:00:00Z"}, format="json")
    assert UserActivityDay.objects.get(user_id="ann").last_at == datetime(
        2026, 12, 4, 11, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "activity, segment",
    [
        (None, "churned"),
        (SENT - timedelta(days=3), "active"),
        (SENT - timedelta(days=10), "churned"),
        (SENT - WEEK, "active"),
        (SENT - WEEK - timedelta(seconds=1), "churned"),
        (SENT - timedelta(minutes=1), "active"),
        (SENT, "churned"),
        (SENT + timedelta(hours=1), "churned"),
    ],
)
def test_churn_window_edges(task, admin_client, activity, segment):
    if activity is not None:
        record_activity([("ann", activity)])
    sent_record(task, "ann")
    totals = churn(admin_client)["totals"]
    assert totals[segment]["sent"] == 1
    assert totals[segment]["users"] == 1


def test_churn_window_spans_days_between(task, admin_client):
    # Activity only before the window's first day and after the message's day.
    record_activity([("ann", SENT - timedelta(days=8)), ("ann", SENT + timedelta(days=1))])
    sent_record(task, "ann")
    assert churn(admin_client)["totals"]["churned"]["sent"] == 1


def test_churn_each_message_judged_on_its_own(task, admin_client):
    sent_record(task, "ann", opened_at=SENT + timedelta(hours=1))
    record_activity([("ann", SENT + timedelta(hours=1))])
    later = PushTask.objects.create(notification_id="later", notification_type="news",
                                    target="user", channels=["app"])
    sent_record(later, "ann", sent_at=SENT + timedelta(days=2))
    totals = churn(admin_client)["totals"]
    assert totals["churned"]["sent"] == 1
    assert totals["churned"]["opened"] == 1
    assert totals["active"]["sent"] == 1
    assert totals["active"]["opened"] == 0


@pytest.fixture
def audience(task):
    record_activity([("ann", SENT - timedelta(days=1)), ("bob", SENT - timedelta(days=2))])
    record_activity([("cid", SENT - timedelta(days=30))])
    sent_record(task, "ann", delivered_at=SENT, opened_at=SENT, clicked_at=SENT)
    sent_record(task, "bob", delivered_at=SENT)
    sent_record(task, "cid", delivered_at=SENT, opened_at=SENT)
    sent_record(task, "dan", kind="sms", delivered_at=SENT)
    sent_record(task, "eve")
    sent_record(task, "ann", kind="sms", delivered_at=SENT, opened_at=SENT)


def test_churn_totals(audience, admin_client):
    totals = churn(admin_client)["totals"]
    assert totals["active"] == {
        "users": 2, "sent": 3, "delivered": 3, "opened": 2, "clicked": 1, "failed": 0,
        "delivery_rate": 1.0, "open_rate": 0.6667, "click_rate": 0.3333,
    }
    assert totals["churned"] == {
        "users": 3, "sent": 3, "delivered": 2, "opened": 1, "clicked": 0, "failed": 0,
        "delivery_rate": 0.6667, "open_rate": 0.5, "click_rate": 0.0,
    }


def test_churn_groups_per_channel(audience, admin_client):
    groups = churn(admin_client)["groups"]
    assert [(g["channel"], g["segment"], g["sent"], g["opened"]) for g in groups] == [
        ("app", "churned", 2, 1), ("app", "active", 2, 1),
        ("sms", "churned", 1, 0), ("sms", "active", 1, 1),
    ]


def test_churn_longer_window(audience, admin_client):
    body = churn(admin_client, "days=60")
    assert body["days"] == 60
    assert body["totals"]["active"]["users"] == 3


def test_churn_filters(audience, admin_client):
    totals = churn(admin_client, "days=7&channel=sms")["totals"]
    assert (totals["active"]["sent"], totals["churned"]["sent"]) == (1, 1)


def test_churn_type_filter(audience, admin_client):
    totals = churn(admin_client, "type=order")["totals"]
    assert totals["active"]["sent"] + totals["churned"]["sent"] == 0


def test_churn_time_range(audience, admin_client):
    query = "from=2026-12-04T09:31:00Z"
    totals = churn(admin_client, query)["totals"]
    assert totals["churned"]["sent"] == 0
    assert totals["churned"]["delivery_rate"] is None


def test_churn_skips_unsent_records(task, admin_client):
    PushRecord.objects.create(task=task, user_id="ann", channel_kind="app", status="queued")
    totals = churn(admin_client)["totals"]
    assert totals["churned"]["sent"] + totals["active"]["sent"] == 0


@pytest.mark.parametrize(
    "query, param",
    [
        ("days=0", "days"),
        ("days=366", "days"),
        ("days=week", "days"),
        ("days=", "days"),
        ("channel=pager", "channel"),
        ("group_by=channel", "group_by"),
        ("to=2026-12-01T00:00:00Z&from=2026-12-02T00:00:00Z", "to"),
    ],
)
def test_churn_bad_param_is_400_naming_it(db, admin_client, query, param):
    response = admin_client.get(f"{CHURN_URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


def test_churn_needs_admin_scope(db, push_client):
    assert push_client.get(CHURN_URL).status_code == 403


def test_activity_days_ignore_empty_batch(db):
    record_activity_days([])
    assert not UserActivityDay.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_migration_fills_activity_days():
    call_command("migrate", "analytics", "0002", verbosity=0)
    task = PushTask.objects.create(notification_id="old", notification_type="news",
                                   target="user", channels=["app"])
    opened = SENT + timedelta(hours=1)
    sent_record(task, "ann", opened_at=opened, clicked_at=opened + timedelta(hours=2))
    sent_record(task, "bob")
    UserActiveHour.objects.create(user_id="cid", hour=9, count=3, last_active_at=SENT)

    call_command("migrate", "analytics", verbosity=0)

    days = {row.user_id: row for row in UserActivityDay.objects.all()}
    assert sorted(days) == ["ann", "cid"]
    assert days["ann"].first_at == opened
    assert days["ann"].last_at == opened + timedelta(hours=2)
    assert days["cid"].first_at == SENT
