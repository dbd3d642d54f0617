"""The pipeline end to end: API, fan-out, policy, records and FCM sends.

Jobs run in this process (Celery's eager mode) against the fake FCM server, with the
pipeline's clock frozen so quiet hours can be tested at exact local times.
"""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from channels_app.models import Channel, Device
from preferences.models import UserProfile, UserPushPreference
from sharestack_push.notifications import dispatch
from sharestack_push.notifications.delivery import send_records
from sharestack_push.notifications.models import PushRecord, PushTask
from templates.models import PushTemplate
from tests.notifications.conftest import PUSH_URL, add_app_user

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = {"timezone": "Europe/Berlin", "quiet_hours_start": time(22), "quiet_hours_end": time(7)}


def berlin(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=BERLIN)


def test_night_push_deferred_then_released_once(fcm, frozen_clock, post_push, beat_tick):
    add_app_user("ute", "tok-ute", **NIGHT)
    frozen_clock.set(berlin(23, 30))
    post_push(notification_id="n1", user_id="ute")

    record = PushRecord.objects.get()
    assert record.status == "deferred"
    assert record.reason == "quiet_hours"
    assert record.next_attempt_at == berlin(7, 0, day=11)
    assert fcm.requests == []

    frozen_clock.set(berlin(6, 59, day=11))
    beat_tick()
    assert fcm.requests == []

    frozen_clock.set(berlin(7, 0, day=11))
    beat_tick()
    assert len(fcm.requests) == 1
    assert PushRecord.objects.get().status == "sent"

    beat_tick()
    assert len(fcm.requests) == 1


@pytest.mark.parametrize("hour, minute", [(21, 59), (7, 0)])
def test_push_outside_quiet_hours_sends_at_once(fcm, frozen_clock, post_push, hour, minute):
    add_app_user("ute", "tok-ute", **NIGHT)
    frozen_clock.set(berlin(hour, minute))
    post_push(notification_id="n1", user_id="ute")
    assert PushRecord.objects.get().status == "sent"
    assert len(fcm.requests) == 1


def test_early_morning_window_not_quiet_in_evening(fcm, frozen_clock, post_push):
    add_app_user("ute", "tok-ute", timezone="Europe/Berlin",
                 quiet_hours_start=time(0), quiet_hours_end=time(8))
    frozen_clock.set(berlin(21, 0))
    post_push(notification_id="n1", user_id="ute")
    assert PushRecord.objects.get().status == "sent"


def test_same_notification_id_twice_calls_provider_once(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(12))
    first = post_push(notification_id="dup", user_id="ann")
    second = post_push(notification_id="dup", user_id="ann")
    assert (first.status_code, second.status_code) == (202, 200)
    assert len(fcm.requests) == 1


def test_preference_off_after_scheduling_sends_nothing(
    fcm, frozen_clock, post_push, beat_tick, preferences_client
):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(12))
    accepted = post_push(notification_id="later", user_id="ann",
                         schedule_time=berlin(13).isoformat())
    assert accepted.json()["status"] == "scheduled"

    document = {"user_id": "ann", "all_enabled": True, "preferences": [
        {"notification_type": "order", "channel": "app", "is_enabled": False}]}
    assert preferences_client.put("/api/v1/notifications/preferences", document,
                                  format="json").status_code == 200

    frozen_clock.set(berlin(13, 0, ))
    beat_tick()
    record = PushRecord.objects.get()
    assert record.status == "suppressed"
    assert record.reason == "preference_disabled"
    assert fcm.requests == []
    assert PushTask.objects.get().status == "completed"


def test_scheduled_task_waits_until_due(fcm, frozen_clock, post_push, beat_tick):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(12))
    post_push(notification_id="later", user_id="ann", schedule_time=berlin(13).isoformat())
    frozen_clock.set(berlin(12, 59))
    beat_tick()
    assert PushRecord.objects.count() == 0
    frozen_clock.set(berlin(13, 1))
    beat_tick()
    assert PushRecord.objects.get().status == "sent"


def test_unregistered_token_deactivates_device(fcm, frozen_clock, post_push):
    device = add_app_user("ann", "tok-dead")
    fcm.script("tok-dead", "UNREGISTERED")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")

    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.reason == "invalid_address"
    device.refresh_from_db()
    assert device.is_active is False

    post_push(notification_id="n2", user_id="ann")
    assert len(fcm.requests) == 1
    second = PushRecord.objects.get(task__notification_id="n2")
    assert second.status == "suppressed"
    assert second.reason == "no_address"


def test_quota_exceeded_waits_retry_after(fcm, frozen_clock, post_push, beat_tick):
    add_app_user("ann", "tok-busy")
    fcm.script("tok-busy", ("QUOTA_EXCEEDED", 7))
    start = berlin(12)
    frozen_clock.set(start)
    post_push(notification_id="n1", user_id="ann")

    record = PushRecord.objects.get()
    assert record.status == "retrying"
    assert record.attempts == 1
    assert record.next_attempt_at >= start + timedelta(seconds=7)

    frozen_clock.set(start + timedelta(seconds=6))
    beat_tick()
    assert len(fcm.requests) == 1

    frozen_clock.set(record.next_attempt_at)
    beat_tick()
    record.refresh_from_db()
    assert record.status == "sent"
    assert record.attempts == 2
    assert len(fcm.requests) == 2


def test_retries_stop_at_max_attempts(fcm, frozen_clock, post_push, beat_tick, settings):
    settings.PUSH_MAX_ATTEMPTS = 3
    add_app_user("ann", "tok-down")
    fcm.script("tok-down", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE")
    moment = berlin(12)
    frozen_clock.set(moment)
    post_push(notification_id="n1", user_id="ann")
    for _ in range(5):
        moment += timedelta(hours=2)
        frozen_clock.set(moment)
        beat_tick()
    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.reason == "max_attempts"
    assert record.attempts == 3
    assert len(fcm.requests) == 3


def test_backoff_grows_between_attempts(fcm, frozen_clock, post_push, beat_tick):
    add_app_user("ann", "tok-down")
    fcm.script("tok-down", "INTERNAL", "INTERNAL")
    moment = berlin(12)
    frozen_clock.set(moment)
    post_push(notification_id="n1", user_id="ann")
    first_delay = PushRecord.objects.get().next_attempt_at - moment
    moment = PushRecord.objects.get().next_attempt_at
    frozen_clock.set(moment)
    beat_tick()
    second_delay = PushRecord.objects.get().next_attempt_at - moment
    assert timedelta(seconds=15) <= first_delay <= timedelta(seconds=30)
    assert timedelta(seconds=30) <= second_delay <= timedelta(seconds=60)


def test_daily_limit_defers_transactional_excess(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann", daily_limit=2, timezone="Europe/Berlin")
    frozen_clock.set(berlin(9))
    for number in range(3):
        post_push(notification_id=f"n{number}", user_id="ann")
    statuses = list(PushRecord.objects.order_by("id").values_list("status", "reason"))
    assert statuses == [("sent", ""), ("sent", ""), ("deferred", "frequency_limit")]
    assert PushRecord.objects.get(status="deferred").next_attempt_at == berlin(0, day=11)
    assert len(fcm.requests) == 2


def test_daily_limit_resets_on_local_day(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann", daily_limit=1, timezone="Europe/Berlin")
    frozen_clock.set(berlin(23, 50))
    post_push(notification_id="n1", user_id="ann")
    frozen_clock.set(berlin(0, 10, day=11))
    post_push(notification_id="n2", user_id="ann")
    assert len(fcm.requests) == 2


def test_missing_template_variable_fails_record(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann")
    PushTemplate.objects.create(name="shipped", channel="app", title_template="Order {{ order_id }}",
                                content_template="Hi {{ name }}", variables=["order_id", "name"])
    frozen_clock.set(berlin(12))
    response = post_push(notification_id="n1", user_id="ann", content=None, template="shipped",
                         variables={"order_id": "A1"})
    assert response.status_code == 202
    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.reason == "template_variable_missing:name"
    assert fcm.requests == []


def test_template_renders_into_push(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann")
    PushTemplate.objects.create(name="shipped", channel="app", title_template="Order {{ order_id }}",
                                content_template="Hi {{ name }}", variables=["order_id", "name"],
                                action_template={"deep_link": "shop://orders/{{ order_id }}"})
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann", content=None, template="shipped",
              variables={"order_id": "A1", "name": "Ann"})
    message = fcm.requests[0].message
    assert message["notification"] == {"title": "Order A1", "body": "Hi Ann"}
    assert message["data"] == {"deep_link": "shop://orders/A1"}


def test_send_records_twice_sends_once(fcm, frozen_clock, push_client, run_jobs, monkeypatch):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(12))
    from sharestack_push.notifications import tasks

    monkeypatch.setattr(tasks, "enqueue_send", lambda kind, ids: None)
    run_jobs(push_client.post, PUSH_URL, {
        "notification_id": "n1", "notification_type": "order", "user_id": "ann",
        "channels": ["app"], "content": {"body": "x"}}, format="json")
    record_ids = list(PushRecord.objects.values_list("id", flat=True))
    assert send_records(record_ids) == {"sent": 1}
    assert send_records(record_ids) == {}
    assert len(fcm.requests) == 1


def test_disabled_channel_fails_with_reason(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann")
    Channel.objects.update(enabled=False)
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.reason == "no_channel_configured"


def test_user_list_fans_out_in_chunks(fcm, frozen_clock, post_push, settings):
    settings.PUSH_CHUNK_SIZE = 2
    for number in range(5):
        add_app_user(f"u{number}", f"tok-{number}")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_ids=[f"u{n}" for n in range(5)] + ["u0"])
    task = PushTask.objects.get()
    assert task.chunks_total == 3
    assert task.chunks_done == 3
    assert task.status == "completed"
    assert PushRecord.objects.filter(status="sent").count() == 5


def test_broadcast_reaches_every_profile(fcm, frozen_clock, post_push, settings):
    settings.PUSH_CHUNK_SIZE = 3
    for number in range(7):
        add_app_user(f"u{number}", f"tok-{number}")
    UserProfile.objects.create(user_id="no-device")
    frozen_clock.set(berlin(12))
    post_push(notification_id="all", broadcast=True)
    assert len(fcm.requests) == 7
    assert PushRecord.objects.get(user_id="no-device").reason == "no_address"


def test_all_disabled_user_gets_nothing(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-ann", all_enabled=False)
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    assert PushRecord.objects.get().reason == "all_disabled"
    assert fcm.requests == []


def test_preference_change_before_release_is_honoured(fcm, frozen_clock, post_push, beat_tick):
    add_app_user("ute", "tok-ute", **NIGHT)
    frozen_clock.set(berlin(23, 30))
    post_push(notification_id="n1", user_id="ute")
    UserPushPreference.objects.create(user_id="ute", notification_type="", channel="app",
                                      is_enabled=False)
    frozen_clock.set(berlin(7, 0, day=11))
    beat_tick()
    assert PushRecord.objects.get().status == "suppressed"
    assert fcm.requests == []


def test_urgent_push_skips_quiet_hours(fcm, frozen_clock, post_push):
    add_app_user("ute", "tok-ute", **NIGHT)
    frozen_clock.set(berlin(23, 30))
    post_push(notification_id="n1", user_id="ute", priority="urgent")
    assert PushRecord.objects.get().status == "sent"


def test_status_endpoint_counts_records(fcm, frozen_clock, post_push, push_client):
    add_app_user("ann", "tok-ann")
    Device.objects.create(user_id="ann", platform="ios", provider="fcm", token="tok-2")
    fcm.script("tok-2", "UNREGISTERED")
    frozen_clock.set(berlin(12))
    task_id = post_push(notification_id="n1", user_id="ann").json()["id"]
    status = push_client.get(f"{PUSH_URL}/{task_id}", {"page_size": 1}).json()
    assert status["counts"] == {"app": {"sent": 1, "failed": 1}}
    assert status["total"] == 2
    assert status["records"]["count"] == 2
    assert len(status["records"]["results"]) == 1
    assert status["records"]["next"] is not None
    assert status["task"]["status"] == "completed"


def test_configuration_error_marks_channel_unhealthy(fcm, frozen_clock, post_push, beat_tick):
    add_app_user("ann", "tok-auth")
    fcm.script("tok-auth", "THIRD_PARTY_AUTH_ERROR")
    moment = berlin(12)
    frozen_clock.set(moment)
    post_push(notification_id="n1", user_id="ann")
    channel = Channel.objects.get()
    assert channel.is_healthy is False
    assert "THIRD_PARTY_AUTH_ERROR" in channel.last_error
    assert PushRecord.objects.get().reason == "configuration_error"

    frozen_clock.set(moment + timedelta(hours=1))
    beat_tick()
    channel.refresh_from_db()
    assert channel.is_healthy is True
    assert channel.last_error == ""
    assert PushRecord.objects.get().status == "sent"


def test_send_job_claims_in_small_batches(fcm, frozen_clock, post_push, settings):
    settings.PUSH_CLAIM_BATCH_SIZE = 2
    for number in range(5):
        add_app_user(f"u{number}", f"tok-{number}")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_ids=[f"u{n}" for n in range(5)])
    assert PushRecord.objects.filter(status="sent").count() == 5
    assert len(fcm.requests) == 5


def test_cancelled_scheduled_task_never_sends(fcm, frozen_clock, post_push, beat_tick, push_client):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(12))
    task_id = post_push(notification_id="later", user_id="ann",
                        schedule_time=berlin(13).isoformat()).json()["id"]
    response = push_client.post(f"{PUSH_URL}/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    frozen_clock.set(berlin(14))
    beat_tick()
    assert PushRecord.objects.count() == 0
    assert fcm.requests == []


def test_cancel_stops_deferred_records(fcm, frozen_clock, post_push, beat_tick, push_client):
    add_app_user("ute", "tok-ute", **NIGHT)
    frozen_clock.set(berlin(23, 30))
    task_id = post_push(notification_id="n1", user_id="ute").json()["id"]
    push_client.post(f"{PUSH_URL}/{task_id}/cancel")
    record = PushRecord.objects.get()
    assert record.status == "suppressed"
    assert record.reason == "task_cancelled"
    frozen_clock.set(berlin(7, 0, day=11))
    beat_tick()
    assert fcm.requests == []


def test_cancel_during_fanout_sends_nothing(fcm, frozen_clock, post_push, push_client,
                                            monkeypatch):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(12))
    task_id = post_push(notification_id="later", user_id="ann",
                        schedule_time=berlin(13).isoformat()).json()["id"]
    store_records = dispatch.create_chunk_records

    def cancel_then_store(task, user_ids, now):
        # The cancel commits after the chunk job read the status, before its records
        # exist, so the cancel's own update finds nothing to stop.
        assert push_client.post(f"{PUSH_URL}/{task_id}/cancel").status_code == 200
        return store_records(task, user_ids, now)

    monkeypatch.setattr(dispatch, "create_chunk_records", cancel_then_store)
    sent = dispatch.process_chunk(task_id, ["ann"], lambda kind, ids: send_records(ids))

    record = PushRecord.objects.get()
    assert sent == 0
    assert (record.status, record.reason) == ("suppressed", "task_cancelled")
    assert fcm.requests == []


def test_cancel_finished_task_is_409(fcm, frozen_clock, post_push, push_client):
    add_app_user("ann", "tok-ann")
    frozen_clock.set(berlin(12))
    task_id = post_push(notification_id="n1", user_id="ann").json()["id"]
    response = push_client.post(f"{PUSH_URL}/{task_id}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert PushTask.objects.get().status == "completed"


def test_cancel_other_keys_task_is_404(fcm, frozen_clock, post_push, make_client):
    frozen_clock.set(berlin(12))
    task_id = post_push(notification_id="later", user_id="ann",
                        schedule_time=berlin(13).isoformat()).json()["id"]
    response = make_client("push").post(f"{PUSH_URL}/{task_id}/cancel")
    assert response.status_code == 404
    assert PushTask.objects.get().status == "scheduled"


def test_record_prototype_copies_are_independent(db):
    from sharestack_push.notifications.fanout import RecordPrototype
    from sharestack_push.notifications.models import PushTask

    task = PushTask.objects.create(notification_id="p1", notification_type="order",
                                   target="users", channels=["app"])
    prototype = RecordPrototype(task)
    first = prototype.copy(user_id="a", channel_kind="app", address="x")
    second = prototype.copy(user_id="b", channel_kind="app", address="y")
    first.save()
    assert first.pk is not None
    assert (second.pk, second._state.adding) == (None, True)
    assert (second.user_id, second.task) == ("b", task)
    assert second.status == "queued"
    assert first.response_data is not second.response_data
