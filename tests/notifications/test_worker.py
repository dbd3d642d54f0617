"""The pipeline through a real Celery worker process with embedded beat, over Redis.

Nothing runs eagerly here: the API enqueues on commit, the worker consumes from the
Redis broker, and beat releases a scheduled task and a message held back by a type's
minimum interval.
"""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from channels_app.models import Channel, Contact
from sharestack_push.celery import app as celery_app
from sharestack_push.notifications.models import NotificationType, PushRecord
from tests.notifications.conftest import PUSH_URL, add_app_user

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60


def wait_for(condition, timeout=WAIT_SECONDS, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A worker process with embedded beat, on the test database and a clean broker."""
    celery_app.conf.task_always_eager = False
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PUSH_BEAT_INTERVAL_SECONDS": "1",
        "SHARESTACK_VAR_DIR": str(tmp_path),
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "sharestack_push", "worker", "--beat",
             "--pool=solo", "--loglevel=INFO", "--schedule", str(tmp_path / "beat-schedule")],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        yield log_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.worker
def test_push_and_scheduled_push_through_real_worker(worker, fcm_server, push_client):
    fcm_server.clear_requests()
    Channel.objects.create(
        name="fcm", kind="app", provider="fcm",
        config={"project_id": fcm_server.project_id, "base_url": fcm_server.base_url},
        credentials={"service_account": fcm_server.service_account},
    )
    add_app_user("wanda", "tok-worker")

    response = push_client.post(PUSH_URL, {
        "notification_id": "now", "notification_type": "order", "user_id": "wanda",
        "channels": ["app"], "content": {"title": "Now", "body": "Sent by a worker"},
    }, format="json")
    assert response.status_code == 202

    def sent(notification_id):
        return PushRecord.objects.filter(task__notification_id=notification_id, status="sent").exists()

    assert wait_for(lambda: sent("now")), worker.read_text()[-3000:]
    assert [request.message["notification"]["title"] for request in fcm_server.requests] == ["Now"]

    later = timezone.now() + timedelta(seconds=3)
    response = push_client.post(PUSH_URL, {
        "notification_id": "later", "notification_type": "order", "user_id": "wanda",
        "channels": ["app"], "content": {"title": "Later", "body": "Released by beat"},
        "schedule_time": later.isoformat(),
    }, format="json")
    assert response.json()["status"] == "scheduled"
    assert wait_for(lambda: sent("later")), worker.read_text()[-3000:]
    record = PushRecord.objects.get(task__notification_id="later")
    assert record.sent_at >= later
    assert len(fcm_server.requests) == 2


@pytest.mark.worker
def test_min_interval_deferral_released_by_beat(worker, fcm_server, push_client):
    fcm_server.clear_requests()
    Channel.objects.create(
        name="fcm", kind="app", provider="fcm",
        config={"project_id": fcm_server.project_id, "base_url": fcm_server.base_url},
        credentials={"service_account": fcm_server.service_account},
    )
    NotificationType.objects.create(key="order", min_interval_seconds=5)
    add_app_user("wanda", "tok-worker")

    def push(notification_id):
        response = push_client.post(PUSH_URL, {
            "notification_id": notification_id, "notification_type": "order",
            "user_id": "wanda", "channels": ["app"],
            "content": {"title": notification_id, "body": "Order update"},
        }, format="json")
        assert response.status_code == 202

    def status(notification_id):
        record = PushRecord.objects.filter(task__notification_id=notification_id).first()
        return record.status if record else None

    push("first")
    assert wait_for(lambda: status("first") == "sent"), worker.read_text()[-3000:]
    first_sent = PushRecord.objects.get(task__notification_id="first").sent_at
    push("second")
    assert wait_for(lambda: status("second") is not None), worker.read_text()[-3000:]
    second = PushRecord.objects.get(task__notification_id="second")
    assert second.status == "deferred"
    assert second.reason == "min_interval"
    release_at = second.next_attempt_at
    # The interval runs from the first message's send, which Redis keeps in milliseconds.
    assert timedelta(seconds=4.999) <= release_at - first_sent <= timedelta(seconds=5)

    assert wait_for(lambda: status("second") == "sent"), worker.read_text()[-3000:]
    second.refresh_from_db()
    assert second.sent_at >= release_at
    assert [request.message["notification"]["title"] for request in fcm_server.requests] == [
        "first", "second"]


@pytest.mark.worker
def test_fallback_through_real_worker(worker, fcm_server, smtp_server, push_client):
    fcm_server.clear_requests()
    Channel.objects.create(
        name="fcm", kind="app", provider="fcm",
        config={"project_id": fcm_server.project_id, "base_url": fcm_server.base_url},
        credentials={"service_account": fcm_server.service_account},
    )
    Channel.objects.create(
        name="smtp", kind="email", provider="smtp",
        config={"host": smtp_server.host, "port": smtp_server.port, "use_tls": False,
                "from_email": "noreply@sharestack.example"},
    )
    add_app_user("wanda", "tok-fallback")
    Contact.objects.create(user_id="wanda", kind="email", address="wanda@example.com")

    response = push_client.post(PUSH_URL, {
        "notification_id": "fallback", "notification_type": "order", "user_id": "wanda",
        "channels": ["app", "email"], "content": {"title": "Code", "body": "Your code"},
        "fallback": {"after": "2s"},
    }, format="json")
    assert response.status_code == 202

    def email_sent():
        return PushRecord.objects.filter(channel_kind="email", status="sent").exists()

    assert wait_for(email_sent), worker.read_text()[-3000:]
    app = PushRecord.objects.get(channel_kind="app")
    email = PushRecord.objects.get(channel_kind="email")
    assert email.sent_at >= app.sent_at + timedelta(seconds=2)
    assert email.fallback_of_id == app.pk
    assert [mail.rcpt_tos for mail in smtp_server.mails] == [["wanda@example.com"]]
    assert len(fcm_server.requests) == 1
