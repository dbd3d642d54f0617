"""Delivery-strategy rules through real Celery worker processes over Redis.

Nothing runs eagerly: the API enqueues on commit, worker processes consume from the
Redis broker, and the first worker's embedded beat releases deferred messages on the
real clock.
"""
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.celery import app as celery_app
from sharestack_push.notifications.models import NotificationType, PushRecord
from templates.models import PushTemplate
from tests.fakes.twilio import FakeTwilio
from tests.notifications.conftest import PUSH_URL, add_app_user
from tests.notifications.test_worker import REPO_ROOT, wait_for

PUBLIC_BASE = "https://push.sharestack.example"


@pytest.fixture
def workers(transactional_db, tmp_path):
    """Start two worker processes, the first with embedded beat; return their logs."""
    celery_app.conf.task_always_eager = False
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PUSH_BEAT_INTERVAL_SECONDS": "1",
        "SHARESTACK_VAR_DIR": str(tmp_path),
    }
    processes, logs = [], []
    for number in range(2):
        log_path = tmp_path / f"worker-{number}.log"
        argv = [sys.executable, "-m", "celery", "-A", "sharestack_push", "worker",
                "--pool=solo", "--loglevel=INFO", f"--hostname=strategy{number}@%h"]
        if number == 0:
            argv += ["--beat", "--schedule", str(tmp_path / "beat-schedule")]
        with open(log_path, "w") as log:
            processes.append(subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT))
        logs.append(log_path)
    try:
        yield logs
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def tail(logs) -> str:
    return "\n".join(path.read_text()[-2000:] for path in logs)


def fcm_channel(fcm_server) -> None:
    fcm_server.clear_requests()
    Channel.objects.create(
        name="fcm", kind="app", provider="fcm",
        config={"project_id": fcm_server.project_id, "base_url": fcm_server.base_url},
        credentials={"service_account": fcm_server.service_account},
    )


def push(push_client, **body) -> str:
    data = {"notification_type": "order", "content": {"title": "Hi", "body": "There"}, **body}
    data = {key: value for key, value in data.items() if value is not None}
    response = push_client.post(PUSH_URL, data, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


@pytest.mark.worker
def test_daily_limit_holds_across_two_workers(workers, fcm_server, push_client):
    fcm_channel(fcm_server)
    NotificationType.objects.create(key="promo", category="marketing")
    add_app_user("ann", "tok-limit", daily_limit=3)

    for number in range(20):
        push(push_client, notification_id=f"promo-{number}", notification_type="promo",
             user_id="ann", channels=["app"])

    def all_decided():
        return PushRecord.objects.exclude(status__in=["queued", "sending"]).count() == 20

    assert wait_for(all_decided), tail(workers)
    statuses = list(PushRecord.objects.values_list("status", "reason"))
    assert statuses.count(("sent", "")) == 3
    assert statuses.count(("suppressed", "frequency_limit")) == 17
    assert len(fcm_server.requests) == 3


@pytest.mark.worker
def test_quiet_hours_release_at_the_window_end(workers, fcm_server, push_client):
    fcm_channel(fcm_server)
    now = datetime.now(UTC)
    if now.second >= 55:  # too close to the boundary to see the deferral first
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    window_end = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    add_app_user("ann", "tok-quiet", timezone="UTC",
                 quiet_hours_start=now.replace(second=0, microsecond=0).time(),
                 quiet_hours_end=window_end.time())

    push(push_client, notification_id="quiet", user_id="ann", channels=["app"])

    assert wait_for(lambda: PushRecord.objects.filter(status="deferred").exists()), tail(workers)
    record = PushRecord.objects.get()
    assert (record.reason, record.next_attempt_at) == ("quiet_hours", window_end)
    assert wait_for(lambda: PushRecord.objects.filter(status="sent").exists(), timeout=90), tail(workers)
    record.refresh_from_db()
    assert record.sent_at >= window_end
    assert len(fcm_server.requests) == 1


@pytest.mark.worker
def test_urgent_type_adds_sms_and_personalises_variants(workers, fcm_server, push_client):
    fcm_channel(fcm_server)
    Channel.objects.create(name="sms", kind="sms", provider="console")
    NotificationType.objects.create(key="security", default_channels=["app"], sms_for_urgent=True)
    PushTemplate.objects.create(
        name="alert-b", channel="app", title_template="{{ user.name }}",
        content_template="New sign-in, {{ user.name }}",
        variables=[{"name": "user.name", "default": "there"}])
    PushTemplate.objects.create(
        name="alert-b", channel="sms", content_template="New sign-in, {{ user.name }}",
        variables=[{"name": "user.name", "default": "there"}])
    add_app_user("ann", "tok-urgent")
    UserProfile.objects.filter(user_id="ann").update(attributes={"name": "Ann"})
    Contact.objects.create(user_id="ann", kind="phone", address="+8613800000001")

    push(push_client, notification_id="alert", notification_type="security", user_id="ann",
         priority="urgent", content=None,
         variants=[{"name": "a", "weight": 1, "template": "alert-b"},
                   {"name": "b", "weight": 1, "template": "alert-b"}])

    def both_sent():
        return PushRecord.objects.filter(status="sent").count() == 2

    assert wait_for(both_sent), tail(workers)
    variants = dict(PushRecord.objects.values_list("channel_kind", "variant"))
    assert set(variants) == {"app", "sms"}
    assert variants["app"] == variants["sms"] in {"a", "b"}
    [request] = fcm_server.requests
    assert request.message["notification"]["body"] == "New sign-in, Ann"


@pytest.mark.worker
def test_stop_reply_suppresses_marketing_sms(workers, push_client, client, settings):
    settings.PUSH_PUBLIC_BASE_URL = PUBLIC_BASE
    NotificationType.objects.create(key="promo", category="marketing")
    NotificationType.objects.create(key="login_code", category="transactional")
    UserProfile.objects.create(user_id="li", locale="en-us")
    Contact.objects.create(user_id="li", kind="phone", address="+14155550100")
    with FakeTwilio() as fake:
        # Twilio's own STOP filtering would also block the code; an account may have
        # it turned off, and then only this service keeps marketing away.
        fake.stop_filtering = False
        channel = Channel.objects.create(
            name="twilio", kind="sms", provider="twilio",
            config={"from_number": "+15005550006", "base_url": fake.base_url},
            credentials={"account_sid": fake.account_sid, "auth_token": fake.auth_token},
        )
        path = f"/api/v1/callbacks/{channel.pk}"
        form = fake.incoming_message("+14155550100", "STOP")
        reply = client.post(path, form, HTTP_X_TWILIO_SIGNATURE=fake.signature(PUBLIC_BASE + path, form))
        assert reply.status_code == 200

        push(push_client, notification_id="promo", notification_type="promo", user_id="li",
             channels=["sms"])
        push(push_client, notification_id="code", notification_type="login_code", user_id="li",
             channels=["sms"], content={"body": "Your code is 123456"})

        def decided():
            return PushRecord.objects.exclude(status__in=["queued", "sending"]).count() == 2

        assert wait_for(decided), tail(workers)
        outcome = dict(PushRecord.objects.values_list("task__notification_id", "reason"))
        assert outcome == {"promo": "sms_opted_out", "code": ""}
        assert [message["body"] for message in fake.messages] == ["Your code is 123456"]
