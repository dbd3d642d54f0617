"""The delivery statistics API's aggregation over the hourly roll-ups."""
from datetime import timezone
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.db.models.functions import ExtractHour, TruncDay

from analytics.models import HourlyStat
from analytics.rollups import COUNTERS

# group_by value: the expression it groups on.
GROUPS: dict[str, Any] = {
    "channel": F("channel_kind"),
    "provider": F("provider"),
    "type": F("notification_type"),
    "variant": F("variant"),
    "day": TruncDay("hour", tzinfo=timezone.utc),
    "hour_of_day": ExtractHour("hour", tzinfo=timezone.utc),
}
# Filter parameter: the roll-up field it matches.
FILTERS = {
    "channel": "channel_kind",
    "provider": "provider",
    "type": "notification_type",
    "variant": "variant",
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
