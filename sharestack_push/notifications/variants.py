"""A/B tests: which variant of a task each user gets, and counts per variant."""

import hashlib
from typing import Any

from django.db.models import Count, Q

from sharestack_push.notifications.models import PushRecord, PushTask


def variant_bucket(notification_id: str, user_id: str, total_weight: int) -> int:
    """Map (notification id, user id) to 0..total_weight-1, the same on every run.

    SHA-256 rather than hash(), which Python salts per process.
    """
    digest = hashlib.sha256(f"{notification_id}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total_weight


def assign_variant(task: PushTask, user_id: str) -> str:
    """Return the name of the user's variant, or "" for a task without variants."""
    variants: list[dict[str, Any]] = task.variants or []
    if not variants:
        return ""
    bucket = variant_bucket(
        task.notification_id, user_id, sum(entry["weight"] for entry in variants)
    )
    for entry in variants:
        if bucket < entry["weight"]:
            return entry["name"]
        bucket -= entry["weight"]
    raise AssertionError("the bucket lies below the total weight")


# Each count is of records that reached at least that stage: a click implies an open.
STAGE_FIELDS = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
}


def variant_counts(task: PushTask) -> dict[str, dict[str, int]]:
    """Return {variant: {records, sent, delivered, opened, clicked}} for one task."""
    if not task.variants:
        return {}
    aggregates = {
        stage: Count("id", filter=Q(**{f"{field}__isnull": False}))
        for stage, field in STAGE_FIELDS.items()
    }
    rows = (
        PushRecord.objects.filter(task=task)
        .values("variant")
        .annotate(records=Count("id"), **aggregates)
        .order_by("variant")
    )
    counts = {
        entry["name"]: dict.fromkeys(["records", *STAGE_FIELDS], 0)
        for entry in task.variants or ()
    }
    for row in rows:
        counts[row.pop("variant")] = row
    return counts
