"""Response of churned users from the idle-day roll-ups, and the activity days behind it.

Records go into the roll-ups through the functions the pipeline calls, with the idle
days fan-out would store. Each response is compared with a count over the records and
the raw activity events.
"""
import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.activity import (
    MAX_IDLE_DAYS,
    NEVER_ACTIVE,
    idle_days_before,
    record_activity_days,
)
from analytics.models import IdleDayStat, UserActivityDay
from analytics.rollups import count_receipt, count_send_results
from preferences.activity import record_activity
from preferences.models import UserActiveHour
from sharestack_push.notifications.fanout import build_records
from sharestack_push.notifications.models import Campaign, PushRecord, PushTask
from tests.notifications.conftest import add_app_user

pytestmark = pytest.mark.django_db

CHURN_URL = "/api/v1/notifications/stats/churn"
ACTIVITY_URL = "/api/v1/activity"
SENT = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
WEEK = timedelta(days=7)
COUNTERS = ("sent", "delivered", "opened", "clicked", "failed")
ENGAGEMENT = ("delivered_at", "opened_at", "clicked_at")
ADDRESSES = (f"address-{number}" for number in itertools.count())


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


def fanned_out_record(task: PushTask, user_id: str, kind: str = "app",
                     fanned_out: datetime = SENT - timedelta(minutes=5),
                     sent_at: datetime | None = SENT, **times: datetime) -> PushRecord:
    """Store a record with the idle days fan-out gives it, and count it in the roll-ups.

    A record without sent_at is stored failed at fanned_out. Engagement times in
    `times` are counted as one receipt.
    """
    record = PushRecord.objects.create(
        task=task, user_id=user_id, channel_kind=kind, provider="fcm",
        address=next(ADDRESSES), status="sent" if sent_at else "failed", sent_at=sent_at,
        idle_days=idle_days_before([user_id], fanned_out)[user_id],
    )
    if sent_at is None:
        PushRecord.objects.filter(pk=record.pk).update(updated_at=fanned_out)
        record.updated_at = fanned_out
    count_send_results([record])
    if times:
        PushRecord.objects.filter(pk=record.pk).update(**times)
        for name, moment in times.items():
            setattr(record, name, moment)
        count_receipt(record, list(times), failed=False)
    return record


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
    "activity, idle_days",
    [
        ([], NEVER_ACTIVE),
        ([SENT - timedelta(days=3)], 3),
        ([SENT - WEEK], 7),
        ([SENT - WEEK + timedelta(seconds=1)], 6),
        ([SENT - timedelta(minutes=1)], 0),
        ([SENT], NEVER_ACTIVE),
        ([SENT + timedelta(hours=1)], NEVER_ACTIVE),
        ([SENT - timedelta(days=8), SENT + timedelta(days=1)], 8),
        ([SENT - timedelta(hours=2), SENT + timedelta(hours=2)], 0),
        ([SENT - timedelta(days=366, hours=12)], MAX_IDLE_DAYS),
        ([SENT - timedelta(days=400)], NEVER_ACTIVE),
    ],
)
def test_idle_days_before_moment(db, activity, idle_days):
    record_activity([("ann", moment) for moment in activity])
    assert idle_days_before(["ann"], SENT) == {"ann": idle_days}


def test_idle_days_one_query_per_chunk(db):
    record_activity([("ann", SENT - WEEK), ("bob", SENT - timedelta(days=2))])
    users = ["ann", "bob", "cid", "dan"]
    with CaptureQueriesContext(connection) as queries:
        days = idle_days_before(users, SENT)
    assert days == {"ann": 7, "bob": 2, "cid": NEVER_ACTIVE, "dan": NEVER_ACTIVE}
    assert len(queries) == 1


def test_fan_out_stores_idle_days(db):
    record_activity([("ann", SENT - timedelta(days=3))])
    add_app_user("ann", "tok-ann")
    add_app_user("bob", "tok-bob")
    task = PushTask.objects.create(notification_id="fan", notification_type="news",
                                   target="user", channels=["app"],
                                   content={"title": "Hi", "body": "News"})
    records = build_records(task, ["ann", "bob"], SENT)
    assert {record.user_id: record.idle_days for record in records} == {
        "ann": 3, "bob": NEVER_ACTIVE,
    }


@pytest.mark.parametrize(
    "activity, segment",
    [
        (None, "churned"),
        (SENT - timedelta(days=3), "active"),
        (SENT - timedelta(days=10), "churned"),
        (SENT - WEEK, "churned"),
        (SENT - WEEK + timedelta(seconds=1), "active"),
        (SENT - timedelta(minutes=1), "active"),
        (SENT, "churned"),
        (SENT + timedelta(hours=1), "churned"),
    ],
)
def test_churn_window_edges(task, admin_client, activity, segment):
    if activity is not None:
        record_activity([("ann", activity)])
    fanned_out_record(task, "ann", fanned_out=SENT)
    totals = churn(admin_client)["totals"]
    assert totals[segment]["sent"] == 1
    other = "active" if segment == "churned" else "churned"
    assert totals[other]["sent"] == 0


def test_churn_uses_fan_out_time(task, admin_client):
    # Active two days before fan-out, but the message waited eight days to be sent.
    record_activity([("ann", SENT - timedelta(days=2))])
    fanned_out_record(task, "ann", fanned_out=SENT, sent_at=SENT + timedelta(days=8))
    assert churn(admin_client)["totals"]["active"]["sent"] == 1


def test_churn_each_message_judged_on_its_own(task, admin_client):
    fanned_out_record(task, "ann", opened_at=SENT + timedelta(hours=1))
    record_activity([("ann", SENT + timedelta(hours=1))])
    later = PushTask.objects.create(notification_id="later", notification_type="news",
                                    target="user", channels=["app"])
    fanned_out_record(later, "ann", fanned_out=SENT + timedelta(days=2),
                      sent_at=SENT + timedelta(days=2))
    totals = churn(admin_client)["totals"]
    assert totals["churned"]["sent"] == 1
    assert totals["churned"]["opened"] == 1
    assert totals["active"]["sent"] == 1
    assert totals["active"]["opened"] == 0


@pytest.fixture
def audience(task):
    record_activity([("ann", SENT - timedelta(days=1)), ("bob", SENT - timedelta(days=2))])
    record_activity([("cid", SENT - timedelta(days=30))])
    fanned_out_record(task, "ann", delivered_at=SENT, opened_at=SENT, clicked_at=SENT)
    fanned_out_record(task, "bob", delivered_at=SENT)
    fanned_out_record(task, "cid", delivered_at=SENT, opened_at=SENT)
    fanned_out_record(task, "dan", kind="sms", delivered_at=SENT)
    fanned_out_record(task, "eve")
    fanned_out_record(task, "ann", kind="sms", delivered_at=SENT, opened_at=SENT)
    fanned_out_record(task, "bob", sent_at=None)


def test_churn_totals(audience, admin_client):
    totals = churn(admin_client)["totals"]
    assert totals["active"] == {
        "sent": 3, "delivered": 3, "opened": 2, "clicked": 1, "failed": 1,
        "delivery_rate": 1.0, "open_rate": 0.6667, "click_rate": 0.3333,
    }
    assert totals["churned"] == {
        "sent": 3, "delivered": 2, "opened": 1, "clicked": 0, "failed": 0,
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
    assert body["totals"]["active"]["sent"] == 4


def test_churn_filters(audience, admin_client):
    totals = churn(admin_client, "days=7&channel=sms")["totals"]
    assert (totals["active"]["sent"], totals["churned"]["sent"]) == (1, 1)


def test_churn_type_filter(audience, admin_client):
    totals = churn(admin_client, "type=order")["totals"]
    assert totals["active"]["sent"] + totals["churned"]["sent"] == 0


def test_churn_time_range_is_whole_days(audience, admin_client):
    totals = churn(admin_client, "days=7&from=2026-12-05T00:00:00Z")["totals"]
    assert totals["churned"]["sent"] == 0
    assert totals["churned"]["delivery_rate"] is None
    query = "days=7&from=2026-12-04T00:00:00Z&to=2026-12-05T00:00:00Z"
    assert churn(admin_client, query)["totals"]["churned"]["sent"] == 3


def test_churn_leaves_out_unknown_idle_days(task, admin_client):
    record = PushRecord.objects.create(task=task, user_id="ann", channel_kind="app",
                                       provider="fcm", status="sent", sent_at=SENT)
    count_send_results([record])
    row = IdleDayStat.objects.get()
    assert row.idle_days == -1
    assert str(row) == "2026-12-04 app/fcm news, -1 idle days"
    totals = churn(admin_client)["totals"]
    assert totals["churned"]["sent"] + totals["active"]["sent"] == 0


def test_churn_repeated_events_count_once(fcm, frozen_clock, post_push, push_client,
                                          admin_client):
    add_app_user("ann", "tok-ann")
    record_activity([("ann", SENT - timedelta(days=3))])
    frozen_clock.set(SENT)
    assert post_push(notification_id="n1", user_id="ann").status_code == 202
    record = PushRecord.objects.get()
    assert record.idle_days == 3
    for _ in range(2):
        for event in ("opened", "clicked"):
            response = push_client.post(
                "/api/v1/notifications/events",
                {"record_id": record.pk, "event": event,
                 "occurred_at": (SENT + timedelta(minutes=1)).isoformat()},
                format="json",
            )
            assert response.status_code == 200, response.content
    active = churn(admin_client)["totals"]["active"]
    assert (active["sent"], active["delivered"]) == (1, 1)
    assert active["opened"] == 1
    assert active["clicked"] == 1


def test_churn_campaign_filter(task, admin_client):
    campaign = Campaign.objects.create(name="Spring", notification_type="news",
                                       title="Spring", body="New season", channels=["app"])
    in_campaign = PushTask.objects.create(notification_id="spring", notification_type="news",
                                          target="user", channels=["app"], campaign=campaign)
    fanned_out_record(in_campaign, "ann")
    fanned_out_record(in_campaign, "bob")
    fanned_out_record(task, "cid")
    churned = {
        query: churn(admin_client, query)["totals"]["churned"]["sent"]
        for query in (f"campaign={campaign.pk}", "campaign=0", f"campaign=0,{campaign.pk}")
    }
    assert churned == {f"campaign={campaign.pk}": 2, "campaign=0": 1,
                       f"campaign=0,{campaign.pk}": 3}


@pytest.mark.parametrize(
    "query, param",
    [
        ("days=0", "days"),
        ("days=366", "days"),
        ("days=week", "days"),
        ("days=", "days"),
        ("channel=pager", "channel"),
        ("group_by=channel", "group_by"),
        ("variant=a", "variant"),
        ("campaign=spring", "campaign"),
        ("from=2026-12-01T09:00:00Z", "from"),
        ("to=2026-12-01T00:00:00%2B08:00", "to"),
        ("to=2026-12-01T00:00:00Z&from=2026-12-02T00:00:00Z", "to"),
    ],
)
def test_churn_bad_param_is_400_naming_it(db, admin_client, query, param):
    response = admin_client.get(f"{CHURN_URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


def test_churn_needs_admin_scope(db, push_client):
    assert push_client.get(CHURN_URL).status_code == 403


GENERATED_START = datetime(2026, 10, 19, tzinfo=UTC)
USERS = [f"u{number}" for number in range(40)]


@pytest.fixture
def activity(db) -> list[tuple[str, datetime]]:
    """Random activity of 40 users from 60 days before the records to their end."""
    chance = random.Random(5)
    events = [
        (chance.choice(USERS), GENERATED_START - timedelta(days=60)
         + timedelta(seconds=chance.randrange(86 * 86400)))
        for _ in range(200)
    ]
    for first in range(0, len(events), 40):
        record_activity(events[first:first + 40])
    return events


@pytest.fixture
def generated(activity) -> list[PushRecord]:
    """600 records over 28 days, a tenth failed unsent, fanned out up to 3 days early."""
    chance = random.Random(11)
    tasks = [
        PushTask.objects.create(notification_id=name, notification_type=name,
                                target="user", channels=["app", "sms"])
        for name in ("news", "order")
    ]
    records = []
    for _ in range(600):
        moment = GENERATED_START + timedelta(seconds=chance.randrange(28 * 86400))
        fanned_out = moment - timedelta(seconds=chance.randrange(3 * 86400))
        user_id = chance.choice(USERS)
        failed = chance.random() < 0.1
        steps = chance.choice([0, 1, 2, 3])
        times = {} if failed else {name: moment + timedelta(minutes=5)
                                   for name in ENGAGEMENT[:steps]}
        record = fanned_out_record(chance.choice(tasks), user_id,
                                   kind=chance.choice(["app", "sms"]), fanned_out=fanned_out,
                                   sent_at=None if failed else moment, **times)
        record.fanned_out = fanned_out
        records.append(record)
    return records


def direct_churn(records, events, days: int, since=None, until=None) -> dict:
    """Count each (channel kind, segment) straight from the records and raw events."""
    times = defaultdict(list)
    for user_id, moment in events:
        times[user_id].append(moment)
    rows: dict = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for record in records:
        cohort = (record.sent_at or record.updated_at).date()
        if since is not None and not since <= cohort < until:
            continue
        before = [moment for moment in times[record.user_id] if moment < record.fanned_out]
        churned = not before or record.fanned_out - max(before) >= timedelta(days=days)
        row = rows[(record.channel_kind, "churned" if churned else "active")]
        row["sent"] += record.sent_at is not None
        row["failed"] += record.sent_at is None
        for name in ENGAGEMENT:
            row[name.removesuffix("_at")] += getattr(record, name) is not None
    return dict(rows)


def churn_groups(admin_client, query: str) -> dict:
    return {
        (group["channel"], group["segment"]): {name: group[name] for name in COUNTERS}
        for group in churn(admin_client, query)["groups"]
    }


@pytest.mark.parametrize("days", [1, 3, 7, 20, 365])
def test_churn_equals_direct_counts(generated, activity, admin_client, days):
    assert churn_groups(admin_client, f"days={days}") == direct_churn(generated, activity, days)


def test_churn_in_range_equals_direct_counts(generated, activity, admin_client):
    query = "days=5&from=2026-10-28T00:00:00Z&to=2026-11-04T00:00:00Z"
    expected = direct_churn(generated, activity, 5, datetime(2026, 10, 28).date(),
                            datetime(2026, 11, 4).date())
    assert sum(row["sent"] for row in expected.values()) > 100
    assert churn_groups(admin_client, query) == expected


def test_churn_generated_has_both_segments(generated, admin_client):
    totals = churn(admin_client, "days=7")["totals"]
    assert totals["churned"]["sent"] > 50
    assert totals["active"]["sent"] > 50


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
