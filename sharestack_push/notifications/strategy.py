"""Per-task delivery strategy applied to the first records of each user.

A task with a fallback starts on its first channel kind only and marks those records
as waiting for confirmation. A task sent at the "optimal" time defers each ready record
to the user's next most active hour.
"""

from datetime import datetime

from django.conf import settings

from preferences.activity import load_histograms, optimal_send_time
from preferences.models import UserProfile
from sharestack_push.notifications.constants import ChannelKind, Reason, RecordStatus
from sharestack_push.notifications.models import (
    FallbackState,
    NotificationType,
    PushRecord,
    PushTask,
)

OPTIMAL = "optimal"


def chain_kinds(task: PushTask) -> list[str]:
    """Return the task's channel kinds in the order the request gave them."""
    return [kind for kind in task.channels if kind in ChannelKind.values]


def first_kinds(task: PushTask) -> list[str]:
    """Return the channel kinds a task's fan-out writes records for at first."""
    kinds = chain_kinds(task)
    return kinds[:1] if task.fallback else kinds


def plan_first_step(task: PushTask, records: list[PushRecord], now: datetime) -> None:
    """Mark fallback records as waiting and hold records for the optimal hour."""
    if task.fallback and len(chain_kinds(task)) > 1:
        for record in records:
            record.fallback_state = FallbackState.WAITING
    if task.send_at == OPTIMAL:
        defer_to_active_hours(task, records, now)


def defer_to_active_hours(
    task: PushTask, records: list[PushRecord], now: datetime
) -> None:
    """Defer each ready record to its user's next most active hour within 24 hours.

    The beat job releases the deferred record at that moment, after checking the
    user's preferences again.
    """
    ready = [record for record in records if record.status == RecordStatus.QUEUED]
    if not ready:
        return
    user_ids = {record.user_id for record in ready}
    zones = dict(
        UserProfile.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "timezone"
        )
    )
    histograms = load_histograms(user_ids)
    default_time = (
        NotificationType.objects.filter(key=task.notification_type)
        .values_list("default_send_time", flat=True)
        .first()
    )
    moments: dict[str, datetime] = {}
    for record in ready:
        if record.user_id not in moments:
            moments[record.user_id] = optimal_send_time(
                histograms.get(record.user_id, {}),
                zones.get(record.user_id, settings.PUSH_DEFAULT_TIMEZONE),
                now,
                default_time,
            )
        if moments[record.user_id] > now:
            record.status, record.reason = RecordStatus.DEFERRED, Reason.OPTIMAL_TIME
            record.next_attempt_at = moments[record.user_id]
