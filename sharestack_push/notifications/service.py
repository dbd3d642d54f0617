"""Task creation and cancellation shared by the push API and the admin's campaigns."""
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import TaskStatus
from sharestack_push.notifications.dispatch import stop_unsent_records
from sharestack_push.notifications.models import ApiKey, PushTask
from sharestack_push.notifications.serializers import PushSerializer
from sharestack_push.notifications.tasks import enqueue_dispatch

logger = logging.getLogger(__name__)

FINISHED_TASK_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
# Records in these states have not been handed to a provider, so a cancel stops them.


class TaskFinished(Exception):
    """The task is completed, failed or cancelled already, so it cannot be cancelled."""

    def __init__(self, task: PushTask) -> None:
        super().__init__(f"Task is already {task.status}.")
        self.task = task


def validate_push(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a push request body; raise rest_framework's ValidationError if invalid."""
    serializer = PushSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def task_from_request(data: dict, api_key: ApiKey | None) -> PushTask:
    """Build an unsaved task from validated push data."""
    schedule_time = data.get("schedule_time")
    target = PushTask.Target.USER
    if data.get("broadcast"):
        target = PushTask.Target.BROADCAST
    elif data.get("user_ids"):
        target = PushTask.Target.USERS
    elif not data.get("user_id"):
        target = PushTask.Target.CHANNELS
    scheduled = schedule_time is not None and schedule_time > clock.now()
    return PushTask(
        api_key=api_key,
        notification_id=data["notification_id"],
        notification_type=data["notification_type"],
        target=target,
        user_id=data.get("user_id", ""),
        user_ids=data.get("user_ids", []),
        channels=data["channels"],
        template_name=data.get("template", ""),
        content=data.get("content") or {},
        variables=data.get("variables") or {},
        options=data.get("options") or {},
        priority=data["priority"],
        schedule_time=schedule_time,
        send_at=data.get("send_at", ""),
        fallback=data.get("fallback") or {},
        variants=[dict(entry) for entry in data.get("variants", [])],
        status=TaskStatus.SCHEDULED if scheduled else TaskStatus.PENDING,
    )


def save_task(task: PushTask) -> None:
    """Store a new task and enqueue its dispatch when the transaction commits.

    A scheduled task is not enqueued: beat releases it when it is due. Raises
    IntegrityError when another task has the same key and notification id, or the
    same campaign.
    """
    with transaction.atomic():
        task.save()
        if task.status == TaskStatus.PENDING:
            transaction.on_commit(lambda: enqueue_dispatch(str(task.pk)))


def create_api_task(data: dict[str, Any], api_key: ApiKey) -> tuple[PushTask, bool]:
    """Create the task of a validated API request; return it and whether it is new.

    A repeated notification_id for the same key returns the existing task.
    """
    existing = PushTask.objects.filter(
        api_key=api_key, notification_id=data["notification_id"]
    ).first()
    if existing is not None:
        return existing, False
    task = task_from_request(data, api_key)
    try:
        save_task(task)
    except IntegrityError:
        # Another request with the same notification_id won the race.
        existing = PushTask.objects.get(api_key=api_key, notification_id=task.notification_id)
        return existing, False
    return task, True


def cancel_task(tasks: QuerySet[PushTask], task_id: Any) -> tuple[PushTask, int]:
    """Cancel a task among `tasks` and stop its records not yet handed to a provider.

    Returns the task and how many records were stopped; those become suppressed with
    reason task_cancelled. Raises Http404 when `tasks` has no such task and
    TaskFinished when it is finished already.
    """
    with transaction.atomic():
        task = get_object_or_404(tasks.select_for_update(), pk=task_id)
        if task.status in FINISHED_TASK_STATUSES:
            raise TaskFinished(task)
        now = clock.now()
        task.status, task.completed_at = TaskStatus.CANCELLED, now
        task.save(update_fields=["status", "completed_at", "updated_at"])
    # The status commits first: a chunk job that stores records after this point
    # reads it and stops them itself, and records stored before are caught here.
    stopped = stop_unsent_records(task.records.all(), now)
    logger.info("push: cancelled task %s, %s records stopped", task.pk, stopped)
    return task, stopped
