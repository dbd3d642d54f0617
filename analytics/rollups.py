"""Roll-ups of record counters, kept up to date as records change status.

Two tables are kept: hourly rows per channel, provider, type, campaign and variant,
and daily rows per channel, provider, type, campaign and the user's idle days, which
the churn statistics read. The pipeline adds a batch of changes at once: counters are
summed per row in Python and written with one INSERT ... ON CONFLICT DO UPDATE per
table that adds them to the stored values, so concurrent workers never lose an
increment.
"""
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from django.db import connections, models, router

from analytics.activity import UNKNOWN_IDLE_DAYS
from analytics.models import HourlyStat, IdleDayStat
from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import ChannelKind, RecordStatus
from sharestack_push.notifications.models import PushRecord, PushTask

COUNTERS = (
    "sent", "delivered", "opened", "clicked", "failed", "unsubscribed", "segments",
    "machine_opened", "machine_clicked", "complained",
)
# campaign_id of records that belong to no campaign.
NO_CAMPAIGN = 0
KEY_FIELDS = ("hour", "channel_kind", "provider", "notification_type", "campaign_id", "variant")

Key = tuple[datetime, str, str, str, int, str]
# The counters of IdleDayStat, a subset of COUNTERS.
IDLE_COUNTERS = ("sent", "delivered", "opened", "clicked", "failed")
IDLE_KEY_FIELDS = (
    "day", "channel_kind", "provider", "notification_type", "campaign_id", "idle_days",
)
IdleKey = tuple[date, str, str, str, int, int]


class Changes:
    """Counter increments per roll-up row, summed before one write."""

    def __init__(self) -> None:
        self.rows: dict[Key, dict[str, int | Decimal]] = defaultdict(
            lambda: dict.fromkeys(COUNTERS, 0) | {"cost": Decimal(0)}
        )
        self.idle_rows: dict[IdleKey, dict[str, int | Decimal]] = defaultdict(
            lambda: dict.fromkeys(IDLE_COUNTERS, 0)
        )

    def add(self, record: PushRecord, notification_type: str, campaign_id: int | None,
            **increments: int | Decimal) -> None:
        row = self.rows[row_key(record, notification_type, campaign_id)]
        for name, amount in increments.items():
            row[name] += amount
        idle_increments = {
            name: amount for name, amount in increments.items() if name in IDLE_COUNTERS
        }
        if idle_increments:
            idle_row = self.idle_rows[idle_row_key(record, notification_type, campaign_id)]
            for name, amount in idle_increments.items():
                idle_row[name] += amount

    def save(self) -> None:
        """Write both tables' rows, one statement per table that has changes."""
        if self.rows:
            upsert(HourlyStat, KEY_FIELDS, [*COUNTERS, "cost"], self.rows)
        if self.idle_rows:
            upsert(IdleDayStat, IDLE_KEY_FIELDS, list(IDLE_COUNTERS), self.idle_rows)


def cohort_hour(record: PushRecord) -> datetime:
    """Return the UTC hour a record counts in: when it was sent, else when it failed."""
    moment = record.sent_at or record.updated_at or clock.now()
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def row_key(record: PushRecord, notification_type: str, campaign_id: int | None) -> Key:
    return (
        cohort_hour(record), record.channel_kind, record.provider, notification_type,
        campaign_id or NO_CAMPAIGN, record.variant,
    )


def idle_row_key(
    record: PushRecord, notification_type: str, campaign_id: int | None
) -> IdleKey:
    idle_days = UNKNOWN_IDLE_DAYS if record.idle_days is None else record.idle_days
    return (
        cohort_hour(record).date(), record.channel_kind, record.provider, notification_type,
        campaign_id or NO_CAMPAIGN, idle_days,
    )


def send_cost(record: PushRecord) -> tuple[int, Decimal]:
    """Return the billed segments and the cost of one sent record."""
    segments = (record.segments or 1) if record.channel_kind == ChannelKind.SMS else 0
    channel = record.channel
    price = channel.cost_per_message if channel is not None else None
    if price is None:
        return segments, Decimal(0)
    return segments, price * max(segments, 1)


def count_send_results(records: Iterable[PushRecord]) -> None:
    """Add records that a send left sent or failed, or that fan-out stored failed.

    Each status must be new: the records were claimed for this send, or just inserted.
    Their task must be loaded, for its notification type and campaign id, so that
    no record costs a query. Call it in the transaction that stores the records'
    new status.
    """
    changes = Changes()
    for record in records:
        task = record.task
        if record.status == RecordStatus.SENT:
            segments, cost = send_cost(record)
            changes.add(record, task.notification_type, task.campaign_id,
                        sent=1, segments=segments, cost=cost)
        elif record.status == RecordStatus.FAILED:
            changes.add(record, task.notification_type, task.campaign_id, failed=1)
    changes.save()


def count_receipt(record: PushRecord, set_times: Iterable[str], failed: bool) -> None:
    """Add one record's receipt to its roll-up.

    set_times names the engagement times (delivered_at, opened_at, clicked_at) that
    the receipt filled for the first time, so a repeated receipt adds nothing.
    """
    increments = {name.removesuffix("_at"): 1 for name in set_times}
    if failed:
        increments["failed"] = 1
    count_record(record, **increments)


def count_record(record: PushRecord, **increments: int) -> None:
    """Add counters such as unsubscribed=1 to the roll-up row of one record."""
    if not increments:
        return
    notification_type, campaign_id = PushTask.objects.values_list(
        "notification_type", "campaign_id"
    ).get(pk=record.task_id)
    changes = Changes()
    changes.add(record, notification_type, campaign_id, **increments)
    changes.save()


def upsert(
    model: type[models.Model],
    key_fields: tuple[str, ...],
    values: list[str],
    rows: dict[Any, dict[str, int | Decimal]],
) -> None:
    """Add counters to their rows of `model`, creating missing rows, in one statement.

    Rows are listed in key order, so that two workers updating the same rows tend to
    lock them in the same order rather than deadlock.
    """
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(name) for name in (*key_fields, *values))
    placeholders = "(" + ", ".join(["%s"] * (len(key_fields) + len(values))) + ")"
    updates = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in values
    )
    conflict = ", ".join(quote(name) for name in key_fields)
    ordered = sorted(
        rows.items(), key=lambda item: tuple("" if part is None else str(part) for part in item[0])
    )
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(ordered))} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )
    params: list = []
    for key, counters in ordered:
        params.extend(key)
        params.extend(counters[name] for name in values)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
