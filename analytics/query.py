"""The delivery statistics API's aggregation over the hourly roll-ups."""
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import ExtractHour, TruncDay

from analytics.models import HourlyStat
from analytics.rollups import COUNTERS
from sharestack_push.notifications.constants import RecordStatus
from sharestack_push.notifications.models import PushRecord

# group_by value: the expression it groups on.
GROUPS: dict[str, Any] = {
    "channel": F("channel_kind"),
    "provider": F("provider"),
    "type": F("notification_type"),
    "variant": F("variant"),
    "campaign": F("campaign_id"),
    "day": TruncDay("hour", tzinfo=timezone.utc),
    "hour_of_day": ExtractHour("hour", tzinfo=timezone.utc),
}
# Filter parameter: the roll-up field it matches.
FILTERS = {
    "channel": "channel_kind",
    "provider": "provider",
    "type": "notification_type",
    "variant": "variant",
    "campaign": "campaign_id",
}


def filtered_stats(params: dict[str, Any]) -> QuerySet[HourlyStat]:
    """Select the roll-up rows in [from, to) that match the given filters."""
    rows = HourlyStat.objects.all()
    if params.get("from") is not None:
        rows = rows.filter(hour__gte=params["from"])
    if params.get("to") is not None:
        rows = rows.filter(hour__lt=params["to"])
    for name, field in FILTERS.items():
        if params.get(name):
            rows = rows.filter(**{f"{field}__in": params[name]})
    return rows


def with_rates(counters: dict[str, Any]) -> dict[str, Any]:
    """Add the delivery, open and click rates to a row of summed counters.

    The delivery rate is delivered over sent, and the open and click rates are over
    delivered. A rate is None when its denominator is zero.
    """
    sent, delivered = counters["sent"], counters["delivered"]
    counters["delivery_rate"] = round(delivered / sent, 4) if sent else None
    counters["open_rate"] = round(counters["opened"] / delivered, 4) if delivered else None
    counters["click_rate"] = round(counters["clicked"] / delivered, 4) if delivered else None
    counters["cost"] = str(counters["cost"] or Decimal(0))
    return counters


def summed(rows: QuerySet[HourlyStat], group_by: list[str]) -> list[dict[str, Any]]:
    sums = {name: Sum(name) for name in (*COUNTERS, "cost")}
    if not group_by:
        total = rows.aggregate(**sums)
        return [with_rates({name: total[name] or 0 for name in sums})]
    grouped = (
        rows.values(**{f"group_{name}": GROUPS[name] for name in group_by})
        .annotate(**sums)
        .order_by(*(f"group_{name}" for name in group_by))
    )
    results = []
    for row in grouped:
        entry: dict[str, Any] = {name: row[f"group_{name}"] for name in group_by}
        if "day" in entry:
            entry["day"] = entry["day"].date().isoformat()
        entry.update(with_rates({name: row[name] or 0 for name in sums}))
        results.append(entry)
    return results


def delivery_stats(params: dict[str, Any]) -> dict[str, Any]:
    """Return the totals and, with group_by, one row per group."""
    rows = filtered_stats(params)
    group_by = params.get("group_by") or []
    body: dict[str, Any] = {"totals": summed(rows, [])[0]}
    if group_by:
        body["group_by"] = group_by
        body["groups"] = summed(rows, group_by)
    return body


def user_engagement(user_id: str, since: datetime) -> list[dict[str, Any]]:
    """Count one user's messages sent since `since` per channel kind and type, with rates.

    Reads the records directly. The (user_id, sent_at) index bounds the scan to that
    user's messages in the window.
    """
    rows = (
        PushRecord.objects.filter(user_id=user_id, sent_at__gte=since)
        .values("channel_kind", notification_type=F("task__notification_type"))
        .annotate(
            sent=Count("id"),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
            failed=Count("id", filter=Q(status=RecordStatus.FAILED)),
            last_opened_at=Max("opened_at"),
        )
        .order_by("channel_kind", "notification_type")
    )
    results = []
    for row in rows:
        entry = dict(row, unsubscribed=0, segments=0, cost=Decimal(0))
        with_rates(entry)
        for name in ("unsubscribed", "segments", "cost"):
            del entry[name]
        results.append(entry)
    return results
