"""The engagement events endpoint and the statistics endpoint."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from analytics.models import HourlyStat
from channels_app.models import Channel
from sharestack_push.notifications.models import PushRecord
from tests.notifications.conftest import add_app_user

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
EVENTS_URL = "/api/v1/notifications/events"
STATS_URL = "/api/v1/notifications/stats"


@pytest.fixture
def sent_record(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(START)
    post_push(notification_id="n1", user_id="ann")
    return PushRecord.objects.get()


def post_event(client, **body):
    return client.post(EVENTS_URL, body, format="json")


def test_event_by_record_id_moves_record(sent_record, push_client, frozen_clock):
    frozen_clock.set(START + timedelta(hours=1))
    response = post_event(push_client, record_id=sent_record.pk, event="opened",
                          occurred_at="2026-12-04T10:00:00Z")
    sent_record.refresh_from_db()
    assert response.json() == {"records": [sent_record.pk], "changed": 1}
    assert sent_record.status == "opened"
    assert sent_record.opened_at == datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert sent_record.delivered_at == sent_record.opened_at


def test_event_by_message_id(sent_record, push_client):
    response = post_event(push_client, message_id=sent_record.provider_message_id, event="clicked")
    sent_record.refresh_from_db()
    assert response.status_code == 200
    assert sent_record.status == "clicked"


def test_repeated_event_changes_nothing(sent_record, push_client):
    post_event(push_client, record_id=sent_record.pk, event="delivered")
    response = post_event(push_client, record_id=sent_record.pk, event="delivered")
    assert response.status_code == 200
    assert response.json()["changed"] == 0


def test_event_never_moves_record_back(sent_record, push_client):
    post_event(push_client, record_id=sent_record.pk, event="clicked")
    post_event(push_client, record_id=sent_record.pk, event="delivered")
    sent_record.refresh_from_db()
    assert sent_record.status == "clicked"


def test_event_on_unknown_record_is_404(db, push_client):
    response = post_event(push_client, record_id=999999, event="opened")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_event_on_unknown_message_id_is_404(db, push_client):
    response = post_event(push_client, message_id="projects/x/messages/none", event="opened")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"record_id": 1, "event": "read"}, "event"),
        ({"record_id": "one", "event": "opened"}, "record_id"),
        ({"event": "opened"}, "record_id"),
        ({"record_id": 1, "message_id": "m", "event": "opened"}, "record_id"),
        ({"record_id": 1, "event": "opened", "occurred_at": "yesterday"}, "occurred_at"),
        ({"record_id": 1}, "event"),
    ],
)
def test_bad_event_is_400_naming_field(db, push_client, body, field):
    response = post_event(push_client, **body)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


@pytest.mark.parametrize("occurred_at", [
    "1970-01-01T00:00:00Z",
    "2026-12-04T09:29:59Z",
    "2026-12-04T09:35:01Z",
    "2027-06-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
])
def test_event_time_outside_send_and_now(sent_record, push_client, occurred_at):
    response = post_event(push_client, record_id=sent_record.pk, event="opened",
                          occurred_at=occurred_at)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["occurred_at"]
    sent_record.refresh_from_db()
    assert sent_record.opened_at is None


@pytest.mark.parametrize("occurred_at", ["2026-12-04T09:30:00Z", "2026-12-04T09:35:00Z"])
def test_event_time_at_bounds_is_accepted(sent_record, push_client, occurred_at):
    response = post_event(push_client, record_id=sent_record.pk, event="opened",
                          occurred_at=occurred_at)
    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.opened_at.isoformat().replace("+00:00", "Z") == occurred_at


def test_event_unknown_field_is_400(sent_record, push_client):
    response = post_event(push_client, record_id=sent_record.pk, event="opened", extra=1)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["extra"]


def test_events_need_push_scope(db, make_client):
    response = post_event(make_client("preferences"), record_id=1, event="opened")
    assert response.status_code == 403


def test_funnel_and_rates_from_pipeline(fcm, frozen_clock, post_push, push_client, admin_client):
    Channel.objects.filter(kind="app").update(cost_per_message=Decimal("0.002"))
    for number in range(10):
        add_app_user(f"u{number}", f"tok-{number}")
    fcm.script("tok-8", "UNREGISTERED")
    fcm.script("tok-9", "UNREGISTERED")
    frozen_clock.set(START)
    post_push(notification_id="all", broadcast=True)
    records = {record.user_id: record.pk for record in PushRecord.objects.all()}
    for number in range(6):
        post_event(push_client, record_id=records[f"u{number}"], event="delivered")
    for number in range(3):
        post_event(push_client, record_id=records[f"u{number}"], event="opened")
    post_event(push_client, record_id=records["u3"], event="clicked")

    totals = admin_client.get(STATS_URL).json()["totals"]
    assert totals == {
        "sent": 8, "delivered": 6, "opened": 4, "clicked": 1, "failed": 2,
        "unsubscribed": 0, "segments": 0, "cost": "0.01600",
        "machine_opened": 0, "machine_clicked": 0, "complained": 0,
        "delivery_rate": 0.75, "open_rate": 0.6667, "click_rate": 0.1667,
    }


def stat(hour: datetime, **fields) -> HourlyStat:
    defaults = {"channel_kind": "app", "provider": "fcm", "notification_type": "order",
                "variant": "", "sent": 10, "delivered": 8, "opened": 4, "clicked": 2,
                "failed": 1, "cost": Decimal("0.1")}
    return HourlyStat.objects.create(hour=hour, **(defaults | fields))


@pytest.fixture
def stats(db):
    day = datetime(2026, 12, 1, tzinfo=UTC)
    stat(day + timedelta(hours=9))
    stat(day + timedelta(hours=10), variant="a")
    stat(day + timedelta(hours=9), channel_kind="sms", provider="twilio", sent=5, delivered=5,
         opened=0, clicked=0, failed=0, segments=7, cost=Decimal("0.35"))
    stat(day + timedelta(days=1, hours=9), notification_type="news", variant="b")


def test_stats_totals_without_filters(stats, admin_client):
    totals = admin_client.get(STATS_URL).json()["totals"]
    assert (totals["sent"], totals["delivered"], totals["failed"]) == (35, 29, 3)
    assert totals["cost"] == "0.65000"


@pytest.mark.parametrize(
    "query, sent",
    [
        ("channel=sms", 5),
        ("channel=app,sms", 35),
        ("provider=fcm", 30),
        ("type=news", 10),
        ("variant=a,b", 20),
        ("from=2026-12-01T10:00:00Z", 20),
        ("to=2026-12-01T10:00:00Z", 15),
        ("from=2026-12-01T10:00:00Z&to=2026-12-02T00:00:00Z", 10),
    ],
)
def test_stats_filters(stats, admin_client, query, sent):
    assert admin_client.get(f"{STATS_URL}?{query}").json()["totals"]["sent"] == sent


def test_stats_group_by_channel_and_day(stats, admin_client):
    body = admin_client.get(f"{STATS_URL}?group_by=channel,day").json()
    groups = [(group["channel"], group["day"], group["sent"]) for group in body["groups"]]
    assert body["group_by"] == ["channel", "day"]
    assert groups == [("app", "2026-12-01", 20), ("app", "2026-12-02", 10),
                      ("sms", "2026-12-01", 5)]


def test_stats_group_by_hour_of_day(stats, admin_client):
    body = admin_client.get(f"{STATS_URL}?group_by=hour_of_day").json()
    assert [(group["hour_of_day"], group["sent"]) for group in body["groups"]] == [(9, 25), (10, 10)]


@pytest.mark.parametrize("name", ["provider", "type", "variant"])
def test_stats_group_by_one_key(stats, admin_client, name):
    body = admin_client.get(f"{STATS_URL}?group_by={name}").json()
    assert sum(group["sent"] for group in body["groups"]) == 35


def test_stats_group_rates(stats, admin_client):
    body = admin_client.get(f"{STATS_URL}?group_by=provider&provider=twilio").json()
    assert body["groups"] == [{
        "provider": "twilio", "sent": 5, "delivered": 5, "opened": 0, "clicked": 0,
        "failed": 0, "unsubscribed": 0, "segments": 7, "cost": "0.35000",
        "machine_opened": 0, "machine_clicked": 0, "complained": 0,
        "delivery_rate": 1.0, "open_rate": 0.0, "click_rate": 0.0,
    }]


def test_stats_rates_without_sends_are_null(db, admin_client):
    totals = admin_client.get(STATS_URL).json()["totals"]
    assert totals["delivery_rate"] is None
    assert totals["open_rate"] is None


@pytest.mark.parametrize(
    "query, param",
    [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to"),
        ("channel=fax", "channel"),
        ("channel=app,,sms", "channel"),
        ("group_by=month", "group_by"),
        ("group_by=day,day", "group_by"),
        ("provider=", "provider"),
        ("groupby=day", "groupby"),
        ("variant_of=not-a-uuid", "variant_of"),
    ],
)
def test_stats_bad_param_is_400_naming_it(db, admin_client, query, param):
    response = admin_client.get(f"{STATS_URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


def test_stats_need_admin_scope(db, push_client):
    assert push_client.get(STATS_URL).status_code == 403


def test_variant_counts_need_push_scope(db, make_client):
    response = make_client("preferences").get(
        f"{STATS_URL}?variant_of=4b0c3c56-8ad3-4bb8-8d6b-6ea4aa2c9e0e")
    assert response.status_code == 403


def engagement_url(user_id: str, query: str = "") -> str:
    return f"/api/v1/users/{user_id}/engagement{query}"


def test_user_engagement_per_channel_and_type(fcm, frozen_clock, post_push, push_client,
                                              admin_client):
    add_app_user("ann", "tok-ann")
    add_app_user("bob", "tok-bob")
    frozen_clock.set(START)
    for number in range(4):
        post_push(notification_id=f"o{number}", user_id="ann", notification_type="order")
    post_push(notification_id="news", user_id="ann", notification_type="news")
    post_push(notification_id="bob", user_id="bob", notification_type="order")
    orders = list(PushRecord.objects.filter(user_id="ann", task__notification_type="order").order_by("pk"))
    for record in orders[:3]:
        post_event(push_client, record_id=record.pk, event="delivered")
    post_event(push_client, record_id=orders[0].pk, event="clicked")

    body = admin_client.get(engagement_url("ann")).json()
    assert body["channels"] == [
        {"channel_kind": "app", "notification_type": "news", "sent": 1, "delivered": 0,
         "opened": 0, "clicked": 0, "failed": 0, "last_opened_at": None,
         "delivery_rate": 0.0, "open_rate": None, "click_rate": None},
        {"channel_kind": "app", "notification_type": "order", "sent": 4, "delivered": 3,
         "opened": 1, "clicked": 1, "failed": 0,
         "last_opened_at": body["channels"][1]["last_opened_at"],
         "delivery_rate": 0.75, "open_rate": 0.3333, "click_rate": 0.3333},
    ]
    assert body["channels"][1]["last_opened_at"] is not None


def test_user_engagement_window(fcm, frozen_clock, post_push, admin_client):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(START)
    post_push(notification_id="old", user_id="ann")
    frozen_clock.set(START + timedelta(days=10))
    assert admin_client.get(engagement_url("ann", "?days=5")).json()["channels"] == []
    assert len(admin_client.get(engagement_url("ann", "?days=11")).json()["channels"]) == 1


@pytest.mark.parametrize("query, param", [("?days=0", "days"), ("?days=x", "days"),
                                          ("?days=", "days"), ("?day=3", "day")])
def test_user_engagement_bad_param(db, admin_client, query, param):
    response = admin_client.get(engagement_url("ann", query))
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [param]


def test_user_engagement_needs_admin_scope(db, push_client):
    assert push_client.get(engagement_url("ann")).status_code == 403


def test_hourly_stat_str(db):
    row = stat(datetime(2026, 12, 1, 9, tzinfo=UTC))
    assert str(row) == "2026-12-01 09:00 app/fcm order"
