"""The periodic job behind celery-beat: release work that has come due.

Rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED, so any number of workers may
run this job at once and each due row is released by exactly one of them. On SQLite,
which has no row locks, the conditional updates alone keep a row from going twice.
"""
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from preferences.policy import Action, Counters, decide, resolve_settings
from sharestack_push.notifications.constants import RecordStatus, TaskStatus
from sharestack_push.notifications.dispatch import (
    SendSink,
    enqueue_by_kind,
    finish_task_if_done,
)
from sharestack_push.notifications.fanout import (
    default_profile,
    load_counters,
    load_preference_rows,
    load_profiles,
)
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
    """Apply the user's current preferences to records held back for quiet hours.

    A preference changed while a message waited is honoured at release.
    """
    by_task: dict[int, list[PushRecord]] = {}
    for record in records:
        by_task.setdefault(record.task_id, []).append(record)
    for task_records in by_task.values():
        task = task_records[0].task
        user_ids = list({record.user_id for record in task_records})
        profiles = load_profiles(user_ids)
        rows = load_preference_rows(user_ids)
        counts = load_counters(task, user_ids, profiles, rows, now)
        for record in task_records:
            profile, _ = profiles.get(record.user_id, default_profile())
            settings_for_channel = resolve_settings(
                profile, rows.get(record.user_id, []), task.notification_type, record.channel_kind
            )
            user_counts = counts.get(record.user_id)
            counters = Counters()
            if user_counts is not None:
                counters = Counters(
                    len(user_counts["tasks"]),
                    user_counts["channels"][(record.channel_kind, task.notification_type)],
                )
            decision = decide(settings_for_channel, counters, task.priority, profile.timezone, now)
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
