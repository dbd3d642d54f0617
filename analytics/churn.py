"""Response of churned users compared with active ones, counted from the records.

A message goes to a churned user when the user had no activity (an open, a click or
an event posted to the activity API) in the N days before it was sent. Each message
is judged on its own, so a user who comes back counts as active for later messages.
"""
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet

from analytics.activity import active_before
from analytics.query import ratio
from sharestack_push.notifications.constants import RecordStatus
from sharestack_push.notifications.models import PushRecord

SEGMENTS = ("churned", "active")
COUNTS = {
    "users": Count("user_id", distinct=True),
    "sent": Count("id"),
    "delivered": Count("id", filter=Q(delivered_at__isnull=False)),
    "opened": Count("id", filter=Q(opened_at__isnull=False)),
    "clicked": Count("id", filter=Q(clicked_at__isnull=False)),
    "failed": Count("id", filter=Q(status=RecordStatus.FAILED)),
}
# Filter parameter: the record field it matches.
FILTERS = {
    "channel": "channel_kind",
    "provider": "provider",
    "type": "task__notification_type",
    "variant": "variant",
}


def messaged(params: dict[str, Any]) -> QuerySet[PushRecord]:
    """Select the records sent to a user in [from, to) that match the filters."""
    records = PushRecord.objects.filter(sent_at__isnull=False).exclude(user_id="")
    if params.get("from") is not None:
        records = records.filter(sent_at__gte=params["from"])
    if params.get("to") is not None:
        records = records.filter(sent_at__lt=params["to"])
    for name, field in FILTERS.items():
        if params.get(name):
            records = records.filter(**{f"{field}__in": params[name]})
    return records


def with_response_rates(row: dict[str, Any]) -> dict[str, Any]:
    """Add the delivery rate (over sent) and the open and click rates (over delivered)."""
    row["delivery_rate"] = ratio(row["delivered"], row["sent"])
    row["open_rate"] = ratio(row["opened"], row["delivered"])
    row["click_rate"] = ratio(row["clicked"], row["delivered"])
    return row


def churn_response(params: dict[str, Any]) -> dict[str, Any]:
    """Count the messages to churned and to active users, in total and per channel kind.

    params["days"] is N. A user counted in one segment for one message may count in
    the other for another message, so the segments' user counts may overlap.
    """
    records = messaged(params).annotate(
        was_active=active_before(timedelta(days=params["days"]))
    )
    rows = records.values("channel_kind", "was_active").annotate(**COUNTS).order_by()
    groups = [
        with_response_rates(
            {"channel": row["channel_kind"], "segment": segment_name(row["was_active"])}
            | {name: row[name] for name in COUNTS}
        )
        for row in rows
    ]
    groups.sort(key=lambda group: (group["channel"], SEGMENTS.index(group["segment"])))
    totals = records.values("was_active").annotate(**COUNTS).order_by()
    by_segment = {segment_name(row["was_active"]): row for row in totals}
    return {
        "days": params["days"],
        "totals": {
            segment: with_response_rates(
                {name: by_segment.get(segment, {}).get(name, 0) for name in COUNTS}
            )
            for segment in SEGMENTS
        },
        "groups": groups,
    }


def segment_name(was_active: bool) -> str:
    return "active" if was_active else "churned"
