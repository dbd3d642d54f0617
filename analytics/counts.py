"""Record counts, the raw material of delivery statistics."""
from django.db.models import Count

from sharestack_push.notifications.models import PushRecord


def task_counts(task_id) -> tuple[dict[str, dict[str, int]], int]:
    """Return {channel kind: {status: count}} for one task, and the total."""
    counts: dict[str, dict[str, int]] = {}
    total = 0
    rows = (
        PushRecord.objects.filter(task_id=task_id)
        .values("channel_kind", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts.setdefault(row["channel_kind"], {})[row["status"]] = row["n"]
        total += row["n"]
    return counts, total
