"""The periodic job behind celery-beat: release work that has come due.

Rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED, so any number of workers may
run this job at once and each due row is released by exactly one of them. On SQLite,
which has no row locks, the conditional updates alone keep a row from going twice.
"""
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from preferences.policy import Action
from sharestack_push.notifications.constants import RecordStatus, TaskStatus
from sharestack_push.notifications.dispatch import (
    SendSink,
    enqueue_by_kind,
    finish_task_if_done,
)
from sharestack_push.notifications.fanout import History, PolicyInputs
from sharestack_push.notifications.models import PushRecord, PushTask

logger = logging.getLogger(__name__)

# A record left in sending this long belongs to a worker that died mid-send.
STALE_SENDING_AFTER = timedelta(minutes=15)


def release_scheduled_tasks(now: datetime, enqueue_dispatch) -> list[str]:
    with transaction.atomic():
        due = list(
            PushTask.objects.select_for_update(skip_locked=True)
            .filter(status=TaskStatus.SCHEDULED, schedule_time__lte=now)
            .order_by("schedule_time")
            .values_list("pk", flat=True)[: settings.PUSH_RELEASE_BATCH_SIZE]
        )
        if due:
            PushTask.objects.filter(pk__in=due, status=TaskStatus.SCHEDULED).update(
                status=TaskStatus.PENDING, updated_at=now
            )
            for task_id in due:
                transaction.on_commit(lambda task_id=task_id: enqueue_dispatch(str(task_id)))
    return [str(task_id) for task_id in due]


def recheck_deferred(records: list[PushRecord], now: datetime) -> None:
    """Apply the user's current preferences and limits to records held back.

    A preference changed while a message waited is honoured at release. A record that
    is released is counted against the frequency limits now, not when it was deferred.
    """
    by_task: dict[int, list[PushRecord]] = {}
    for record in records:
        by_task.setdefault(record.task_id, []).append(record)
    admitted: dict[str, History] = defaultdict(History)
    for task_records in by_task.values():
        user_ids = list({record.user_id for record in task_records})
        policy = PolicyInputs(task_records[0].task, user_ids, now, admitted)
        for record in task_records:
            decision = policy.decide(record.user_id, record.channel_kind)
            if decision.action == Action.SUPPRESS:
                record.status, record.reason = RecordStatus.SUPPRESSED, decision.reason
                record.next_attempt_at = None
            elif decision.action == Action.DEFER:
                record.status, record.reason = RecordStatus.DEFERRED, decision.reason
                record.next_attempt_at = decision.release_at
            else:
                record.status, record.next_attempt_at = RecordStatus.QUEUED, None


def release_due_records(now: datetime, enqueue_send: SendSink) -> list[int]:
    """Queue deferred and retrying records whose time has come; return their ids."""
    with transaction.atomic():
        due = list(
            PushRecord.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status__in=[RecordStatus.DEFERRED, RecordStatus.RETRYING],
                next_attempt_at__lte=now,
            )
            .select_related("task")
            .order_by("next_attempt_at")[: settings.PUSH_RELEASE_BATCH_SIZE]
        )
        if not due:
            return []
        deferred = [record for record in due if record.status == RecordStatus.DEFERRED]
        for record in due:
            if record.status == RecordStatus.RETRYING:
                record.status, record.next_attempt_at = RecordStatus.QUEUED, None
        recheck_deferred(deferred, now)
        for record in due:
            record.updated_at = now
        PushRecord.objects.bulk_update(
            due, ["status", "reason", "next_attempt_at", "updated_at"], batch_size=500
        )
        queued = [(record.pk, record.channel_kind) for record in due if record.status == RecordStatus.QUEUED]
        transaction.on_commit(lambda: enqueue_by_kind(queued, enqueue_send))
    for task_id in {record.task_id for record in due if record.status == RecordStatus.SUPPRESSED}:
        finish_task_if_done(task_id)
    return [record_id for record_id, _ in queued]


def recover_stale_sending(now: datetime) -> int:
    """Move records stuck in sending back to retrying, and return how many moved.

    NOTE: the provider may have accepted such a message before its worker died, so the
    retry can deliver it twice. Losing it silently would be worse.
    """
    return PushRecord.objects.filter(
        status=RecordStatus.SENDING, updated_at__lt=now - STALE_SENDING_AFTER
    ).update(status=RecordStatus.RETRYING, next_attempt_at=now, reason="send_interrupted", updated_at=now)


def finish_tasks() -> int:
    done = 0
    for task_id in PushTask.objects.filter(status=TaskStatus.PROCESSING).values_list("pk", flat=True)[:1000]:
        done += finish_task_if_done(task_id)
    return done
