"""Multi-channel fallback: try a task's channel kinds one at a time per user.

A task with `fallback` {"after": seconds, "unless": "delivered" or "opened"} first
writes records for its first channel kind only, marked waiting. Once such a record is
sent, its window closes `after` seconds later. Once it fails or is suppressed, the
window closes at that moment. When the window has closed and no record of that user's
step reached `unless` in time, the next channel kind gets records of its own, with
the same content, once. The beat job claims due records with SKIP LOCKED, and the
records' unique key stops a step from being written twice.
"""

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from sharestack_push.notifications.constants import (
    OPEN_RECORD_STATUSES,
    Reason,
    RecordStatus,
    TaskStatus,
)
from sharestack_push.notifications.dispatch import (
    SendSink,
    enqueue_by_kind,
    finish_task_if_done,
)
from sharestack_push.notifications.fanout import build_records, store_records
from sharestack_push.notifications.models import FallbackState, PushRecord, PushTask
from sharestack_push.notifications.strategy import chain_kinds

logger = logging.getLogger(__name__)

DURATION = re.compile(r"^([1-9]\d{0,5})([smh])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
MAX_AFTER_SECONDS = 7 * 24 * 3600
# The record time that counts as confirmation for each `unless` value. An open implies
# delivery (receipts fill delivered_at as well), so "delivered|opened" is "delivered".
UNLESS_FIELDS = {
    "delivered": "delivered_at",
    "opened": "opened_at",
    "delivered|opened": "delivered_at",
}
# Statuses whose records reached the provider; their window starts at sent_at.
REACHED_STATUSES = (
    RecordStatus.SENT,
    RecordStatus.DELIVERED,
    RecordStatus.OPENED,
    RecordStatus.CLICKED,
)


def parse_duration(text: str) -> int | None:
    """Return the seconds of "30s", "10m" or "2h", or None for anything else."""
    match = DURATION.match(text)
    if match is None:
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def arm_waiting_records(now: datetime) -> int:
    """Set when the window of each newly finished waiting record closes.

    A sent record's window closes `after` seconds past sent_at, and a failed or
    suppressed record's at once. Return how many records were armed.
    """
    unarmed = PushRecord.objects.filter(
        fallback_state=FallbackState.WAITING, fallback_due_at__isnull=True
    )
    armed = unarmed.filter(reason=Reason.TASK_CANCELLED).update(
        fallback_state=FallbackState.STOPPED
    )
    # The beat job runs every few seconds, so now is close to the moment of failure.
    armed += unarmed.filter(
        status__in=[RecordStatus.FAILED, RecordStatus.SUPPRESSED]
    ).update(fallback_due_at=now)
    sent = unarmed.filter(status__in=REACHED_STATUSES, sent_at__isnull=False)
    task_ids = set(sent.values_list("task_id", flat=True).distinct())
    for task_id, fallback in PushTask.objects.filter(pk__in=task_ids).values_list(
        "pk", "fallback"
    ):
        after = timedelta(seconds=fallback["after"])
        armed += sent.filter(task_id=task_id).update(
            fallback_due_at=F("sent_at") + after
        )
    return armed


def release_due_fallbacks(now: datetime, enqueue_send: SendSink) -> list[int]:
    """Move every due waiting record's user on to the next channel kind if needed.

    Return the ids of the new records queued for sending.
    """
    arm_waiting_records(now)
    queued: list[tuple[int, str]] = []
    with transaction.atomic():
        due = list(
            PushRecord.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(fallback_state=FallbackState.WAITING, fallback_due_at__lte=now)
            .select_related("task")
            .order_by("fallback_due_at")[: settings.PUSH_RELEASE_BATCH_SIZE]
        )
        for record in due:
            queued.extend(advance(record, now))
        transaction.on_commit(lambda: enqueue_by_kind(queued, enqueue_send))
    # A chain that stopped may have been the task's last work.
    for task_id in {record.task_id for record in due}:
        finish_task_if_done(task_id)
    return [record_id for record_id, _ in queued]


def confirmed_in_time(record: PushRecord, unless_field: str) -> bool:
    confirmed_at = getattr(record, unless_field)
    if confirmed_at is None:
        return False
    return record.fallback_due_at is None or confirmed_at <= record.fallback_due_at


def still_pending(record: PushRecord, now: datetime) -> bool:
    """Tell whether a record of the same step may still be confirmed or fail."""
    if record.status in OPEN_RECORD_STATUSES:
        return True
    return record.fallback_state == FallbackState.WAITING and (
        record.fallback_due_at is None or record.fallback_due_at > now
    )


def advance(record: PushRecord, now: datetime) -> list[tuple[int, str]]:
    """Decide one due record's chain; return (id, kind) of next-step records to send.

    The user's other records of the same step (other devices or addresses) count too:
    one confirmed in time stops the chain, and one still pending decides later.
    """
    task = record.task
    step = list(
        PushRecord.objects.filter(
            task=task, user_id=record.user_id, fallback_step=record.fallback_step
        )
    )
    others = [other for other in step if other.pk != record.pk]
    waiting = [
        other.pk for other in step if other.fallback_state == FallbackState.WAITING
    ]
    unless_field = UNLESS_FIELDS[task.fallback["unless"]]

    if task.status == TaskStatus.CANCELLED or any(
        confirmed_in_time(other, unless_field) for other in step
    ):
        set_state(waiting, FallbackState.STOPPED)
        return []
    if any(still_pending(other, now) for other in others):
        set_state([record.pk], FallbackState.STOPPED)
        return []

    kinds = chain_kinds(task)
    next_index = kinds.index(record.channel_kind) + 1
    set_state(waiting, FallbackState.CONTINUED)
    return create_step(
        task, record, kinds[next_index], next_index < len(kinds) - 1, now
    )


def set_state(record_ids: list[int], state: FallbackState) -> None:
    PushRecord.objects.filter(
        pk__in=record_ids, fallback_state=FallbackState.WAITING
    ).update(fallback_state=state)


def create_step(
    task: PushTask, previous: PushRecord, kind: str, more: bool, now: datetime
) -> list[tuple[int, str]]:
    """Write the user's records on the next channel kind; return those ready to send."""
    records = build_records(task, [previous.user_id], now, kinds=[kind])
    for record in records:
        record.fallback_step = previous.fallback_step + 1
        record.fallback_of_id = previous.pk
        record.fallback_state = FallbackState.WAITING if more else FallbackState.NONE
    store_records(records)
    logger.info(
        "fallback: task %s user %s moves from %s to %s after record %s",
        task.pk,
        previous.user_id,
        previous.channel_kind,
        kind,
        previous.pk,
    )
    return list(
        PushRecord.objects.filter(
            task=task,
            user_id=previous.user_id,
            channel_kind=kind,
            status=RecordStatus.QUEUED,
        ).values_list("id", "channel_kind")
    )
