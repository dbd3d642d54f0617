"""Frequency limits under real concurrency: many threads fan out to one user at once.

Each thread has its own PostgreSQL connection and runs the chunk job and the send job
of its own task, as twenty workers would; Redis counts for all of them.
"""
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timezone

import pytest
from django.db import connection

from channels_app.models import Channel
from preferences.policy import next_local_day_start
from sharestack_push.notifications import dispatch
from sharestack_push.notifications.delivery import send_records
from sharestack_push.notifications.models import NotificationType, PushRecord, PushTask
from tests.notifications.conftest import add_app_user

CONCURRENT_PUSHES = 20
DAILY_LIMIT = 3


def fcm_channel(fcm_server) -> None:
    fcm_server.clear_requests()
    Channel.objects.create(
        name="fcm", kind="app", provider="fcm",
        config={"project_id": fcm_server.project_id, "base_url": fcm_server.base_url},
        credentials={"service_account": fcm_server.service_account},
    )


def make_tasks(notification_type: str) -> list[PushTask]:
    return [
        PushTask.objects.create(
            notification_id=f"n{number}", notification_type=notification_type,
            target=PushTask.Target.USER, user_id="ann", channels=["app"],
            content={"title": "Hello", "body": f"Message {number}"},
            status="processing", chunks_total=1,
        )
        for number in range(CONCURRENT_PUSHES)
    ]


def fan_out_concurrently(tasks: list[PushTask]) -> None:
    barrier = threading.Barrier(len(tasks))

    def send_now(kind: str, record_ids: list[int]) -> None:
        send_records(record_ids)

    def fan_out(task: PushTask) -> int:
        try:
            barrier.wait(timeout=30)
            return dispatch.process_chunk(str(task.pk), ["ann"], send_now)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        list(pool.map(fan_out, tasks))


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_marketing_pushes_send_three(fcm_server):
    fcm_channel(fcm_server)
    NotificationType.objects.create(key="promo", category="marketing")
    add_app_user("ann", "tok-ann", daily_limit=DAILY_LIMIT)

    fan_out_concurrently(make_tasks("promo"))

    outcomes = Counter(PushRecord.objects.values_list("status", "reason"))
    assert outcomes[("sent", "")] == DAILY_LIMIT
    assert outcomes[("suppressed", "frequency_limit")] == CONCURRENT_PUSHES - DAILY_LIMIT
    assert len(fcm_server.requests) == DAILY_LIMIT


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_transactional_pushes_defer_excess(fcm_server):
    fcm_channel(fcm_server)
    add_app_user("ann", "tok-ann", daily_limit=DAILY_LIMIT, timezone="Asia/Shanghai",
                 quiet_hours_start=time(0), quiet_hours_end=time(0))
    before = datetime.now(timezone.utc)

    fan_out_concurrently(make_tasks("order"))

    outcomes = Counter(PushRecord.objects.values_list("status", "reason"))
    assert outcomes[("sent", "")] == DAILY_LIMIT
    assert outcomes[("deferred", "frequency_limit")] == CONCURRENT_PUSHES - DAILY_LIMIT
    assert len(fcm_server.requests) == DAILY_LIMIT
    release_times = set(
        PushRecord.objects.filter(status="deferred").values_list("next_attempt_at", flat=True)
    )
    assert release_times == {next_local_day_start(before, "Asia/Shanghai")}
