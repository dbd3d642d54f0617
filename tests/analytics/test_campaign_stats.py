"""Campaign ids in the hourly roll-ups and the stats API's campaign filter."""
import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count, Q

from analytics.models import HourlyStat
from analytics.rollups import count_send_results
from sharestack_push.notifications.campaigns import send_campaign, store_recipients
from sharestack_push.notifications.models import Campaign, PushRecord, PushTask
from tests.notifications.conftest import add_app_user

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
EVENTS_URL = "/api/v1/notifications/events"
STATS_URL = "/api/v1/notifications/stats"
COUNTERS = ("sent", "delivered", "opened", "clicked", "failed")


def direct_counts(records) -> dict[str, int]:
    """Count records straight from the record table, as the roll-ups should."""
    return records.aggregate(
        sent=Count("id", filter=Q(sent_at__isnull=False)),
        delivered=Count("id", filter=Q(delivered_at__isnull=False)),
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        failed=Count("id", filter=Q(status="failed")),
    )


@pytest.fixture
def sent_campaign(fcm, frozen_clock, post_push, push_client, run_jobs):
    """A campaign to 60 users with variants, a plain push to all 80, and events on both."""
    for number in range(80):
        add_app_user(f"u{number}", f"tok-{number}")
        if number % 9 == 0:
            fcm.script(f"tok-{number}", "UNREGISTERED")
    campaign = Campaign.objects.create(
        name="Spring", notification_type="promo", title="Spring", body="New season",
        channels=["app"], audience="upload",
        variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
    )
    ids = "".join(f"u{number}\n" for number in range(60))
    store_recipients(campaign, io.BytesIO(f"user_id\n{ids}".encode()))
    frozen_clock.set(START)
    run_jobs(send_campaign, campaign.pk, None)
    frozen_clock.set(START + timedelta(hours=1))
    assert post_push(notification_id="plain", broadcast=True).status_code == 202

    chance = random.Random(11)
    sent = list(PushRecord.objects.filter(status="sent").order_by("pk"))
    frozen_clock.set(START + timedelta(hours=2))
    for record in chance.sample(sent, len(sent) // 2):
        event = chance.choice(["delivered", "opened", "clicked"])
        response = push_client.post(EVENTS_URL, {"record_id": record.pk, "event": event},
                                    format="json")
        assert response.status_code == 200, response.content
    return campaign


def stats(admin_client, **query) -> dict:
    response = admin_client.get(STATS_URL, query)
    assert response.status_code == 200, response.content
    return response.json()


def test_rollups_carry_campaign_id(sent_campaign):
    campaign_records = PushRecord.objects.filter(task__campaign=sent_campaign)
    rows = HourlyStat.objects.filter(campaign_id=sent_campaign.pk)
    rolled = {name: sum(getattr(row, name) for row in rows) for name in COUNTERS}
    assert rolled == direct_counts(campaign_records)


def test_rollups_without_campaign_use_zero(sent_campaign):
    plain_records = PushRecord.objects.filter(task__campaign__isnull=True)
    rows = HourlyStat.objects.filter(campaign_id=0)
    rolled = {name: sum(getattr(row, name) for row in rows) for name in COUNTERS}
    assert rolled == direct_counts(plain_records)


def test_stats_campaign_filter_equals_direct_count(sent_campaign, admin_client):
    totals = stats(admin_client, campaign=str(sent_campaign.pk))["totals"]
    direct = direct_counts(PushRecord.objects.filter(task__campaign=sent_campaign))
    assert {name: totals[name] for name in COUNTERS} == direct
    assert direct["sent"] > 0
    assert direct["failed"] > 0


def test_stats_group_by_campaign(sent_campaign, admin_client):
    body = stats(admin_client, group_by="campaign")
    sent = {row["campaign"]: row["sent"] for row in body["groups"]}
    assert sent == {
        0: PushRecord.objects.filter(task__campaign__isnull=True, sent_at__isnull=False).count(),
        sent_campaign.pk: PushRecord.objects.filter(
            task__campaign=sent_campaign, sent_at__isnull=False
        ).count(),
    }


def test_stats_campaign_and_variant(sent_campaign, admin_client):
    body = stats(admin_client, campaign=str(sent_campaign.pk), group_by="variant")
    opened = {row["variant"]: row["opened"] for row in body["groups"]}
    records = PushRecord.objects.filter(task__campaign=sent_campaign, opened_at__isnull=False)
    assert opened == {
        name: records.filter(variant=name).count() for name in ("a", "b")
    }


@pytest.mark.parametrize("value", ["abc", "1,-2", "٣"])
def test_stats_bad_campaign_is_400(db, admin_client, value):
    response = admin_client.get(STATS_URL, {"campaign": value})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["campaign"]


def test_send_results_cost_no_query_per_record(db, django_assert_num_queries):
    campaign = Campaign.objects.create(name="c", notification_type="promo", title="t")
    task = PushTask.objects.create(notification_id="t", notification_type="promo",
                                   target="upload", channels=["app"], campaign=campaign)
    now = datetime(2026, 12, 4, 9, tzinfo=UTC)
    records = [PushRecord(task=task, user_id=f"u{number}", channel_kind="app",
                          status="sent", sent_at=now) for number in range(50)]
    # One upsert into the hourly roll-ups and one into the idle-day roll-ups.
    with django_assert_num_queries(2):
        count_send_results(records)
    assert HourlyStat.objects.get().campaign_id == campaign.pk
