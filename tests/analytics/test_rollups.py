"""Hourly roll-ups against direct counts over the records they summarise."""
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Q
from django.db.models.functions import Coalesce, TruncHour

from analytics.models import HourlyStat
from channels_app.models import Channel, Contact
from channels_app.providers.base import Receipt, ReceiptEvent
from sharestack_push.notifications.fanout import create_chunk_records
from sharestack_push.notifications.models import PushRecord
from sharestack_push.notifications.receipts import apply_receipts
from tests.notifications.conftest import add_app_user

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
EVENTS_URL = "/api/v1/notifications/events"
DIMENSIONS = ("hour", "channel_kind", "provider", "notification_type", "variant")


def direct_counts() -> dict[tuple, dict[str, int]]:
    """Count the records per roll-up row, straight from the record table."""
    rows = (
        PushRecord.objects.annotate(hour=TruncHour(Coalesce("sent_at", "updated_at"), tzinfo=UTC))
        .values("hour", "channel_kind", "provider", notification_type=Coalesce("task__notification_type", None), variant_name=Coalesce("variant", None))
        .annotate(
            sent=Count("id", filter=Q(sent_at__isnull=False)),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
            failed=Count("id", filter=Q(status="failed")),
        )
        .order_by()
    )
    counts = {}
    for row in rows:
        key = (row["hour"], row["channel_kind"], row["provider"], row["notification_type"],
               row["variant_name"])
        counts[key] = {name: row[name] for name in ("sent", "delivered", "opened", "clicked", "failed")}
    return counts


def rolled_up_counts() -> dict[tuple, dict[str, int]]:
    return {
        tuple(getattr(stat, name) for name in DIMENSIONS): {
            name: getattr(stat, name) for name in ("sent", "delivered", "opened", "clicked", "failed")
        }
        for stat in HourlyStat.objects.all()
    }


@pytest.fixture
def sms_channel():
    return Channel.objects.create(name="console-sms", kind="sms", provider="console",
                                  cost_per_message=Decimal("0.01"))


def generate(fcm, frozen_clock, post_push, push_client, settings, users: int) -> None:
    """Broadcast twice to `users` users an hour apart, then add events and receipts."""
    settings.PUSH_CHUNK_SIZE = 250
    chance = random.Random(7)
    for number in range(users):
        add_app_user(f"u{number}", f"tok-{number}")
        if number % 4 == 0:
            Contact.objects.create(user_id=f"u{number}", kind="phone",
                                   address=f"+4915100{number:06d}")
        if number % 37 == 0:
            fcm.script(f"tok-{number}", "UNREGISTERED")
    frozen_clock.set(START)
    response = post_push(notification_id="news", notification_type="news", broadcast=True,
              channels=["app", "sms"],
              content=None,
              variants=[{"name": name, "weight": 1,
                         "content": {"title": "News", "body": f"{name}: the news of the day. " * 4}}
                        for name in ("a", "b")])
    assert response.status_code == 202, response.content
    frozen_clock.set(START + timedelta(hours=1))
    post_push(notification_id="order", notification_type="order", broadcast=True)

    records = list(PushRecord.objects.filter(status="sent").order_by("pk"))
    frozen_clock.set(START + timedelta(hours=2))
    for record in chance.sample(records, len(records) // 2):
        event = chance.choice(["delivered", "opened", "clicked"])
        for _ in range(chance.choice([1, 2])):
            response = push_client.post(EVENTS_URL, {"record_id": record.pk, "event": event},
                                        format="json")
            assert response.status_code == 200, response.content
    sms = Channel.objects.get(kind="sms")
    sms_records = [record for record in records if record.channel_kind == "sms"]
    apply_receipts(sms, [Receipt(record.provider_message_id, ReceiptEvent.FAILED,
                                 address=record.address, error_code="30005")
                         for record in sms_records[:10]])


def test_rollups_equal_direct_counts(fcm, sms_channel, frozen_clock, post_push, push_client,
                                     settings):
    generate(fcm, frozen_clock, post_push, push_client, settings, users=1500)

    direct = direct_counts()
    assert PushRecord.objects.count() > 3000
    assert {key: counts for key, counts in direct.items() if any(counts.values())} == rolled_up_counts()


def test_rollup_totals_and_cost(fcm, sms_channel, frozen_clock, post_push, push_client, settings):
    generate(fcm, frozen_clock, post_push, push_client, settings, users=200)
    totals = {name: sum(getattr(stat, name) for stat in HourlyStat.objects.all())
              for name in ("sent", "failed", "segments", "cost")}
    sms_sent = PushRecord.objects.filter(channel_kind="sms", sent_at__isnull=False)

    assert totals["sent"] == PushRecord.objects.filter(sent_at__isnull=False).count()
    assert totals["failed"] == PushRecord.objects.filter(status="failed").count()
    assert totals["segments"] == sum(record.segments for record in sms_sent)
    assert totals["cost"] == Decimal("0.01") * totals["segments"]


def test_repeated_receipt_counts_once(fcm, frozen_clock, post_push, push_client):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(START)
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    for _ in range(3):
        push_client.post(EVENTS_URL, {"record_id": record.pk, "event": "opened"}, format="json")
    stat = HourlyStat.objects.get()
    assert (stat.sent, stat.delivered, stat.opened, stat.clicked) == (1, 1, 1, 0)


def test_fanout_failure_counts_once(frozen_clock, post_push):
    # No channel serves app push, so fan-out stores the record failed, with no send.
    add_app_user("ann", "tok-ann")
    frozen_clock.set(START)
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    create_chunk_records(record.task, ["ann"], START)

    assert (record.status, record.reason) == ("failed", "no_channel_configured")
    assert HourlyStat.objects.get().failed == 1
