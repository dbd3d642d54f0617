"""The delivery statistics API's aggregation over the hourly roll-ups."""
from datetime import datetime, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import (
    ExtractHour,
    ExtractIsoWeekDay,
    TruncDay,
    TruncWeek,
)

from analytics.models import HourlyStat
from analytics.rollups import COUNTERS
from sharestack_push.notifications.constants import RecordStatus
from sharestack_push.notifications.models import PushRecord

# group_by value: the roll-up field it groups on.
FIELD_GROUPS = {
    "channel": "channel_kind",
    "provider": "provider",
    "type": "notification_type",
    "variant": "variant",
    "campaign": "campaign_id",
}
# group_by value: the expression on the roll-up's UTC hour, read in a time zone. A
# zone whose offset is not whole hours puts each roll-up hour in the local hour, day
# or week its start falls in.
TIME_GROUPS = {
    "day": TruncDay,
    "week": TruncWeek,
    "weekday": ExtractIsoWeekDay,
    "hour_of_day": ExtractHour,
}
GROUPS = [*FIELD_GROUPS, *TIME_GROUPS]
# Filter parameter: the roll-up field it matches.
FILTERS = {
    "channel": "channel_kind",
    "provider": "provider",
    "type": "notification_type",
    "variant": "variant",
    "campaign": "campaign_id",
}


def time_zone(name: str) -> ZoneInfo:
    """Return the zone of an IANA name; raise ValueError naming it when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"Unknown time zone {name!r}. Use an IANA name such as Asia/Shanghai."
        ) from None


def apply_filters(
    rows: QuerySet, params: dict[str, Any], time_field: str, fields: dict[str, str]
) -> QuerySet:
    """Keep the rows whose time_field is in [from, to) and that match each list filter.

    fields maps a filter parameter to the field it matches.
    """
    if params.get("from") is not None:
        rows = rows.filter(**{f"{time_field}__gte": params["from"]})
    if params.get("to") is not None:
        rows = rows.filter(**{f"{time_field}__lt": params["to"]})
    for name, field in fields.items():
        if params.get(name):
            rows = rows.filter(**{f"{field}__in": params[name]})
    return rows


def filtered_stats(params: dict[str, Any]) -> QuerySet[HourlyStat]:
    """Select the roll-up rows in [from, to) that match the given filters."""
    return apply_filters(HourlyStat.objects.all(), params, "hour", FILTERS)


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


def group_expression(name: str, zone: tzinfo) -> Any:
    if name in FIELD_GROUPS:
        return F(FIELD_GROUPS[name])
    return TIME_GROUPS[name]("hour", tzinfo=zone)


def group_label(name: str, value: Any) -> Any:
    """Return a group value as JSON shows it: days and weeks (their Monday) as dates."""
    if name in ("day", "week"):
        return value.date().isoformat()
    return value


def summed(
    rows: QuerySet[HourlyStat], group_by: list[str], zone: tzinfo = timezone.utc
) -> list[dict[str, Any]]:
    sums = {name: Sum(name) for name in (*COUNTERS, "cost")}
    if not group_by:
        total = rows.aggregate(**sums)
        return [with_rates({name: total[name] or 0 for name in sums})]
    grouped = (
        rows.values(**{f"group_{name}": group_expression(name, zone) for name in group_by})
        .annotate(**sums)
        .order_by(*(f"group_{name}" for name in group_by))
    )
    results = []
    for row in grouped:
        entry: dict[str, Any] = {
            name: group_label(name, row[f"group_{name}"]) for name in group_by
        }
        entry.update(with_rates({name: row[name] or 0 for name in sums}))
        results.append(entry)
    return results


def delivery_stats(params: dict[str, Any]) -> dict[str, Any]:
    """Return the totals and, with group_by, one row per group.

    params["tz"] (a tzinfo, default UTC) sets where days, weeks, weekdays and hours of
    the day begin.
    """
    rows = filtered_stats(params)
    group_by = params.get("group_by") or []
    body: dict[str, Any] = {"totals": summed(rows, [])[0]}
    if group_by:
        body["group_by"] = group_by
        body["groups"] = summed(rows, group_by, params.get("tz") or timezone.utc)
    return body


def ratio(numerator: Any, denominator: Any, places: int = 4) -> float | None:
    return round(float(numerator) / float(denominator), places) if denominator else None


def channel_comparison(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Compare channel kinds and providers: counts, rates and cost per message.

    The failure rate is failed over sent plus failed. Costs are per sent and per
    delivered message, None without any.
    """
    # NOTE: a message sent and later reported failed counts as sent and as failed, so
    # the failure rate is a lower bound when providers report failures after sending.
    results = []
    for row in summed(filtered_stats(params), ["channel", "provider"]):
        cost = Decimal(row["cost"])
        row["failure_rate"] = ratio(row["failed"], row["sent"] + row["failed"])
        row["cost_per_message"] = ratio(cost, row["sent"], 6)
        row["cost_per_delivered"] = ratio(cost, row["delivered"], 6)
        results.append(row)
    return results


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
