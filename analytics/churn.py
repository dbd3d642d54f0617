"""Response of churned users compared with active ones, summed from the daily roll-ups.

Fan-out stores on each record how many whole days its user had been idle (no open,
click or event posted to the activity API) at that moment. A message went to a
churned user for N when that count is N or more, or the user was never active. Each
message is judged on its own, so a user who comes back counts as active for later
messages. Records without the count (created before it was stored, or addressed to a
channel rather than a user) are left out of both segments.
"""
from datetime import timezone
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Sum, Value, When

from analytics.activity import UNKNOWN_IDLE_DAYS
from analytics.models import IdleDayStat
from analytics.query import apply_filters, ratio
from analytics.rollups import IDLE_COUNTERS

SEGMENTS = ("churned", "active")
# Filter parameter: the roll-up field it matches. campaign 0 matches the roll-ups'
# campaign_id of messages of no campaign.
FILTERS = {
    "channel": "channel_kind",
    "provider": "provider",
    "type": "notification_type",
    "campaign": "campaign_id",
}


def filtered_rows(params: dict[str, Any]) -> QuerySet[IdleDayStat]:
    """Select the roll-up rows of days in [from, to) that match the filters.

    from and to must be UTC midnights, which the endpoint's serializer checks.
    """
    rows = IdleDayStat.objects.exclude(idle_days=UNKNOWN_IDLE_DAYS)
    days = {
        name: params[name].astimezone(timezone.utc).date()
        for name in ("from", "to")
        if params.get(name) is not None
    }
    return apply_filters(rows, params | days, "day", FILTERS)


def with_response_rates(row: dict[str, Any]) -> dict[str, Any]:
    """Add the delivery rate (over sent) and the open and click rates (over delivered)."""
    row["delivery_rate"] = ratio(row["delivered"], row["sent"])
    row["open_rate"] = ratio(row["opened"], row["delivered"])
    row["click_rate"] = ratio(row["clicked"], row["delivered"])
    return row


def churn_response(params: dict[str, Any]) -> dict[str, Any]:
    """Count the messages to churned and to active users, in total and per channel kind.

    params["days"] is N. Churned rows have idle_days >= N, which includes
    NEVER_ACTIVE, and active rows the rest.
    """
    churned = Q(idle_days__gte=params["days"])
    segment = Case(When(churned, then=Value(0)), default=Value(1), output_field=IntegerField())
    grouped = (
        filtered_rows(params)
        .values("channel_kind", segment=segment)
        .annotate(**{name: Sum(name) for name in IDLE_COUNTERS})
        .order_by("channel_kind", "segment")
    )
    totals = {name: dict.fromkeys(IDLE_COUNTERS, 0) for name in SEGMENTS}
    groups = []
    for row in grouped:
        name = SEGMENTS[row["segment"]]
        counts = {counter: int(row[counter] or 0) for counter in IDLE_COUNTERS}
        for counter, value in counts.items():
            totals[name][counter] += value
        groups.append(
            with_response_rates({"channel": row["channel_kind"], "segment": name} | counts)
        )
    return {
        "days": params["days"],
        "totals": {name: with_response_rates(counts) for name, counts in totals.items()},
        "groups": groups,
    }
