"""The statistics questions against direct counts over generated records.

Records are generated with random send times over four weeks that include the end of
daylight saving time in New York, and go into the roll-ups through the same functions
the pipeline calls. Each response is then compared with a count over the records.
"""
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analytics.rollups import count_receipt, count_send_results
from channels_app.models import Channel
from sharestack_push.notifications.models import PushRecord, PushTask

pytestmark = pytest.mark.django_db

STATS_URL = "/api/v1/notifications/stats"
START = datetime(2026, 10, 19, tzinfo=UTC)
SPAN = timedelta(days=28)
USERS = [f"u{number}" for number in range(40)]
ENGAGEMENT = ("delivered_at", "opened_at", "clicked_at")


def random_moment(chance: random.Random, start: datetime, span: timedelta) -> datetime:
    return start + timedelta(seconds=chance.randrange(int(span.total_seconds())))


def make_record(chance, task, channel, number: int) -> PushRecord:
    sent_at = random_moment(chance, START, SPAN)
    failed = chance.random() < 0.1
    record = PushRecord(
        task=task, user_id=chance.choice(USERS), channel_kind=channel.kind,
        provider=channel.provider, channel=channel, address=f"address-{number}",
        status="failed" if failed else "sent", sent_at=None if failed else sent_at,
        segments=chance.choice([1, 2, 3]) if channel.kind == "sms" else None,
    )
    record.failed_at = sent_at
    return record


def engage(chance: random.Random, record: PushRecord) -> None:
    """Fill the first 0 to 3 engagement times and add them to the roll-ups."""
    steps = chance.choice([0, 0, 1, 1, 2, 3])
    names = list(ENGAGEMENT[:steps])
    for name in names:
        setattr(record, name, record.sent_at + timedelta(minutes=5))
    if names:
        PushRecord.objects.filter(pk=record.pk).update(**{n: getattr(record, n) for n in names})
        count_receipt(record, names, failed=False)


@pytest.fixture
def generated(db) -> list[PushRecord]:
    chance = random.Random(11)
    channels = [
        Channel.objects.create(name="fcm", kind="app", provider="fcm",
                               cost_per_message=Decimal("0.002")),
        Channel.objects.create(name="twilio", kind="sms", provider="twilio",
                               cost_per_message=Decimal("0.05")),
        Channel.objects.create(name="smtp", kind="email", provider="smtp"),
    ]
    tasks = [
        PushTask.objects.create(notification_id=name, notification_type=name, target="user",
                                channels=["app", "sms", "email"])
        for name in ("news", "order")
    ]
    records = [make_record(chance, chance.choice(tasks), chance.choice(channels), number)
               for number in range(1200)]
    moments = [record.failed_at for record in records]
    PushRecord.objects.bulk_create(records)
    for record, moment in zip(records, moments):
        if record.status == "failed":
            # The roll-up counts a record that failed unsent in the hour it last changed.
            PushRecord.objects.filter(pk=record.pk).update(updated_at=moment)
            record.updated_at = moment
    count_send_results(records)
    for record in records:
        if record.status == "sent":
            engage(chance, record)
    return records


def local_group(record: PushRecord, name: str, zone: ZoneInfo):
    moment = (record.sent_at or record.updated_at).astimezone(zone)
    if name == "weekday":
        return moment.isoweekday()
    if name == "hour_of_day":
        return moment.hour
    if name == "day":
        return moment.date().isoformat()
    return (moment.date() - timedelta(days=moment.weekday())).isoformat()


def direct_sent(records: list[PushRecord], name: str, zone: ZoneInfo) -> dict:
    return dict(Counter(local_group(r, name, zone) for r in records if r.sent_at))


@pytest.mark.parametrize("name", ["weekday", "week", "day", "hour_of_day"])
@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York"])
def test_time_groups_equal_direct_counts(generated, admin_client, name, zone):
    response = admin_client.get(f"{STATS_URL}?group_by={name}&tz={zone}")
    assert response.status_code == 200, response.content
    answer = {group[name]: group["sent"] for group in response.json()["groups"]}
    expected = direct_sent(generated, name, ZoneInfo(zone))
    assert {key: sent for key, sent in answer.items() if sent} == expected


def test_weekday_failed_equal_direct_counts(generated, admin_client):
    zone = ZoneInfo("Asia/Shanghai")
    groups = admin_client.get(f"{STATS_URL}?group_by=weekday&tz=Asia/Shanghai").json()["groups"]
    expected = Counter(local_group(r, "weekday", zone) for r in generated if r.status == "failed")
    assert {g["weekday"]: g["failed"] for g in groups if g["failed"]} == dict(expected)


def direct_comparison(records: list[PushRecord]) -> dict[tuple[str, str], dict]:
    rows: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"sent": 0, "delivered": 0, "failed": 0, "cost": Decimal(0)}
    )
    for record in records:
        row = rows[(record.channel_kind, record.provider)]
        if record.status == "failed":
            row["failed"] += 1
            continue
        row["sent"] += 1
        row["delivered"] += record.delivered_at is not None
        price = record.channel.cost_per_message or Decimal(0)
        row["cost"] += price * (record.segments or 1)
    return rows


def test_channel_comparison_equals_direct_counts(generated, admin_client):
    response = admin_client.get("/api/v1/notifications/stats/channels")
    answer = {(row["channel"], row["provider"]): row for row in response.json()["channels"]}
    expected = direct_comparison(generated)
    assert set(answer) == set(expected)
    for key, row in expected.items():
        assert (answer[key]["sent"], answer[key]["delivered"], answer[key]["failed"]) == (
            row["sent"], row["delivered"], row["failed"]), key
        assert Decimal(answer[key]["cost"]) == row["cost"], key
        assert answer[key]["cost_per_message"] == (
            round(float(row["cost"]) / row["sent"], 6) if row["cost"] else 0.0
        ), key
        assert answer[key]["failure_rate"] == round(
            row["failed"] / (row["sent"] + row["failed"]), 4
        ), key
