"""Celery jobs: thin wrappers that load ids and call the pipeline's functions."""
from celery import shared_task

from sharestack_push.notifications import clock, dispatch, fallback, scheduler
from sharestack_push.notifications.delivery import send_records


def enqueue_dispatch(task_id: str) -> None:
    dispatch_task_job.delay(task_id)


def enqueue_chunk(task_id: str, user_ids: list[str]) -> None:
    process_chunk_job.delay(task_id, user_ids)


def enqueue_send(kind: str, record_ids: list[int]) -> None:
    send_records_job.apply_async((record_ids,), queue=f"send.{kind}")


@shared_task(name="notifications.dispatch_task")
def dispatch_task_job(task_id: str) -> int:
    return dispatch.dispatch_task(task_id, enqueue_chunk, enqueue_send)


@shared_task(name="notifications.process_chunk")
def process_chunk_job(task_id: str, user_ids: list[str]) -> int:
    return dispatch.process_chunk(task_id, user_ids, enqueue_send)


@shared_task(name="notifications.send_records")
def send_records_job(record_ids: list[int]) -> dict[str, int]:
    return send_records(record_ids)


@shared_task(name="notifications.release_due_work")
def release_due_work() -> dict[str, int]:
    now = clock.now()
    tasks = scheduler.release_scheduled_tasks(now, enqueue_dispatch)
    records = scheduler.release_due_records(now, enqueue_send)
    fallbacks = fallback.release_due_fallbacks(now, enqueue_send)
    stale = scheduler.recover_stale_sending(now)
    return {
        "tasks": len(tasks), "records": len(records), "fallbacks": len(fallbacks),
        "stale": stale,
    }


@shared_task(name="notifications.finish_tasks")
def finish_tasks() -> int:
    return scheduler.finish_tasks()
