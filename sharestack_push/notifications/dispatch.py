"""Fan-out of a task: claim it, split its audience, and hand each chunk to a job."""
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db.models import F, Q, QuerySet

from sharestack_push.notifications import clock
from sharestack_push.notifications.audience import audience_chunks
from sharestack_push.notifications.constants import (
    OPEN_RECORD_STATUSES,
    Reason,
    RecordStatus,
    TaskStatus,
)
from sharestack_push.notifications.fanout import create_channel_records, create_chunk_records
from sharestack_push.notifications.models import FallbackState, PushRecord, PushTask

logger = logging.getLogger(__name__)

ChunkSink = Callable[[str, list[str]], None]
SendSink = Callable[[str, list[int]], None]


def claim_task(task_id: str, now: datetime) -> PushTask | None:
    """Move a pending task to processing; return it, or None if another job has it.

    A task left processing with no chunk count was interrupted mid fan-out (a worker
    died), so its redelivered job may fan out again: chunks are idempotent.
    """
    claimed = PushTask.objects.filter(pk=task_id, status=TaskStatus.PENDING).update(
        status=TaskStatus.PROCESSING, dispatched_at=now, updated_at=now
    )
    task = PushTask.objects.filter(pk=task_id).first()
    if task is None:
        logger.warning("dispatch: task %s not found", task_id)
        return None
    if claimed or (task.status == TaskStatus.PROCESSING and task.chunks_total is None):
        return task
    return None


def dispatch_task(task_id: str, enqueue_chunk: ChunkSink, enqueue_send: SendSink,
                  now: datetime | None = None) -> int:
    """Split a task's audience into chunks; return how many were enqueued."""
    now = now or clock.now()
    task = claim_task(task_id, now)
    if task is None:
        return 0
    enqueue_by_kind(create_channel_records(task), enqueue_send)
    count = 0
    for user_ids in audience_chunks(task, settings.PUSH_CHUNK_SIZE):
        enqueue_chunk(str(task.pk), user_ids)
        count += 1
    PushTask.objects.filter(pk=task.pk).update(chunks_total=count, updated_at=clock.now())
    logger.info("dispatch: task %s split into %s chunks", task.pk, count)
    # Chunk jobs may all finish before the count is stored, so check here as well.
    finish_task_if_done(task.pk)
    return count


# Records that no provider has received yet, which a cancel stops.
CANCELLABLE_RECORD_STATUSES = (RecordStatus.QUEUED, RecordStatus.DEFERRED, RecordStatus.RETRYING)


def stop_unsent_records(records: QuerySet[PushRecord], now: datetime) -> int:
    """Suppress the given records of a cancelled task that no provider has received."""
    return records.filter(status__in=CANCELLABLE_RECORD_STATUSES).update(
        status=RecordStatus.SUPPRESSED, reason=Reason.TASK_CANCELLED,
        next_attempt_at=None, updated_at=now,
    )


def process_chunk(task_id: str, user_ids: list[str], enqueue_send: SendSink,
                  now: datetime | None = None) -> int:
    """Create one chunk's records and enqueue the sendable ones; return how many.

    A cancel may commit while the records are being written, after its own update
    of the records ran. So the status is read again once they are stored, and a
    cancelled task's new records are stopped here instead of being sent.
    """
    task = PushTask.objects.filter(pk=task_id).first()
    if task is None or task.status == TaskStatus.CANCELLED:
        return 0
    queued = create_chunk_records(task, user_ids, now)
    if PushTask.objects.filter(pk=task.pk, status=TaskStatus.CANCELLED).exists():
        chunk = PushRecord.objects.filter(task=task, user_id__in=user_ids)
        stopped = stop_unsent_records(chunk, clock.now())
        logger.info("dispatch: task %s was cancelled during fan-out, %s records stopped",
                    task.pk, stopped)
        return 0
    enqueue_by_kind(queued, enqueue_send)
    PushTask.objects.filter(pk=task.pk).update(chunks_done=F("chunks_done") + 1)
    finish_task_if_done(task.pk)
    return len(queued)


def enqueue_by_kind(records: list[tuple[int, str]], enqueue_send: SendSink) -> None:
    """Group (id, channel kind) pairs by kind, so each kind's queue gets its batches."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for record_id, kind in records:
        by_kind[kind].append(record_id)
    size = settings.PUSH_SEND_BATCH_SIZE
    for kind, ids in by_kind.items():
        for start in range(0, len(ids), size):
            enqueue_send(kind, ids[start : start + size])


def finish_task_if_done(task_id) -> bool:
    """Mark a fanned-out task completed once no record has work ahead of it.

    A record waiting to see whether its fallback channel is needed has work ahead.
    """
    task = PushTask.objects.filter(pk=task_id, status=TaskStatus.PROCESSING).first()
    if task is None or task.chunks_total is None or task.chunks_done < task.chunks_total:
        return False
    ahead = Q(status__in=OPEN_RECORD_STATUSES) | Q(fallback_state=FallbackState.WAITING)
    if PushRecord.objects.filter(ahead, task_id=task_id).exists():
        return False
    now = clock.now()
    return bool(
        PushTask.objects.filter(pk=task_id, status=TaskStatus.PROCESSING).update(
            status=TaskStatus.COMPLETED, completed_at=now, updated_at=now
        )
    )
