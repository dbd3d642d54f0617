"""Failover between channels of one kind, rate limits and per-kind options."""
from datetime import timedelta

import pytest

from channels_app.models import Channel, Contact
from channels_app.providers import REGISTRY
from channels_app.providers.base import Outcome, Provider, SendResult
from preferences.models import UserProfile
from sharestack_push.notifications.models import NotificationType, PushRecord
from tests.notifications.conftest import add_app_user
from tests.notifications.test_pipeline import berlin

pytestmark = pytest.mark.django_db(transaction=False)


def unreachable_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def broken_fcm_channel(fcm, **fields) -> Channel:
    """An FCM channel tried before the working one, on a port with no listener."""
    base = f"http://127.0.0.1:{unreachable_port()}"
    return Channel.objects.create(
        name="fcm-broken", kind="app", provider="fcm", priority=1,
        config={"project_id": fcm.project_id, "base_url": base, "token_uri": f"{fcm.base_url}/token"},
        credentials={"service_account": fcm.service_account}, **fields,
    )


def test_network_failure_fails_over_to_the_next_channel(fcm, frozen_clock, post_push):
    Channel.objects.filter(name="fcm").update(priority=2)
    broken_fcm_channel(fcm)
    add_app_user("ann", "tok-1")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert record.status == "sent"
    assert record.channel.name == "fcm"
    assert [step["channel"] for step in record.response_data["failover"]] == ["fcm-broken"]
    assert record.response_data["failover"][0]["error_code"] == "network"
    assert len(fcm.requests) == 1


def test_configuration_error_fails_over_and_marks_the_first_unhealthy(fcm, frozen_clock, post_push):
    Channel.objects.filter(name="fcm").update(priority=2)
    second = Channel.objects.create(
        name="fcm-second", kind="app", provider="fcm", priority=3,
        config={"project_id": fcm.project_id, "base_url": fcm.base_url},
        credentials={"service_account": fcm.service_account},
    )
    add_app_user("ann", "tok-auth")
    fcm.script("tok-auth", "THIRD_PARTY_AUTH_ERROR")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert record.channel_id == second.pk
    assert record.status == "sent"
    assert Channel.objects.get(name="fcm").is_healthy is False


def test_unhealthy_channel_is_tried_last(fcm, frozen_clock, post_push):
    Channel.objects.filter(name="fcm").update(priority=2)
    broken_fcm_channel(fcm, is_healthy=False)
    add_app_user("ann", "tok-1")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert record.channel.name == "fcm"
    assert "failover" not in record.response_data


def test_disabled_channel_is_skipped(fcm, frozen_clock, post_push):
    Channel.objects.filter(name="fcm").update(priority=2)
    broken_fcm_channel(fcm, enabled=False)
    add_app_user("ann", "tok-1")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    assert PushRecord.objects.get().response_data == {}


def test_invalid_address_does_not_fail_over(fcm, frozen_clock, post_push):
    second = Channel.objects.create(
        name="fcm-second", kind="app", provider="fcm", priority=200,
        config={"project_id": fcm.project_id, "base_url": fcm.base_url},
        credentials={"service_account": fcm.service_account},
    )
    add_app_user("ann", "tok-dead")
    fcm.script("tok-dead", "UNREGISTERED")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.channel_id != second.pk
    assert len(fcm.requests) == 1


def test_every_channel_failing_leaves_the_record_retrying_on_the_last(fcm, frozen_clock, post_push):
    Channel.objects.filter(name="fcm").delete()
    broken_fcm_channel(fcm)
    add_app_user("ann", "tok-1")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert record.status == "retrying"
    assert record.channel.name == "fcm-broken"


def test_device_of_another_provider_gets_no_fcm_channel(fcm, frozen_clock, post_push):
    UserProfile.objects.create(user_id="ann")
    from channels_app.models import Device

    Device.objects.create(user_id="ann", platform="ios", provider="apns", token="apns-tok")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert (record.status, record.reason) == ("failed", "no_channel_configured")


def test_rate_limit_hands_the_excess_back_without_counting_an_attempt(db, frozen_clock, post_push, settings):
    settings.PUSH_RATE_LIMIT_MAX_WAIT_SECONDS = 0
    Channel.objects.create(name="sms-console", kind="sms", provider="console", rate_limit_per_second=3)
    users = [f"u{number}" for number in range(5)]
    for user_id in users:
        UserProfile.objects.create(user_id=user_id)
        Contact.objects.create(user_id=user_id, kind="phone", address=f"+86138000000{len(user_id)}{user_id}")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_ids=users, channels=["sms"])
    statuses = sorted(PushRecord.objects.values_list("status", flat=True))
    assert statuses == ["retrying", "retrying", "sent", "sent", "sent"]
    waiting = PushRecord.objects.filter(status="retrying")
    assert set(waiting.values_list("reason", flat=True)) == {"rate_limited"}
    assert set(waiting.values_list("attempts", flat=True)) == {0}


def test_rate_limited_records_are_sent_by_a_later_tick(db, frozen_clock, post_push, beat_tick, settings):
    settings.PUSH_RATE_LIMIT_MAX_WAIT_SECONDS = 0
    Channel.objects.create(name="sms-console", kind="sms", provider="console", rate_limit_per_second=1)
    for user_id in ("a", "b"):
        UserProfile.objects.create(user_id=user_id)
        Contact.objects.create(user_id=user_id, kind="phone", address=f"+861380000000{len(user_id)}{ord(user_id)}")
    moment = berlin(12)
    frozen_clock.set(moment)
    post_push(notification_id="n1", user_ids=["a", "b"], channels=["sms"])
    import time

    time.sleep(1.1)  # the limiter runs on Redis's clock, not the frozen one
    frozen_clock.set(moment + timedelta(seconds=5))
    beat_tick()
    assert set(PushRecord.objects.values_list("status", flat=True)) == {"sent"}


def test_sms_record_stores_its_segments(db, frozen_clock, post_push):
    Channel.objects.create(name="sms-console", kind="sms", provider="console")
    UserProfile.objects.create(user_id="ann")
    Contact.objects.create(user_id="ann", kind="phone", address="+8613800000000")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann", channels=["sms"],
              content={"body": "您的订单已发货" * 11})
    assert PushRecord.objects.get().segments == 2


def test_app_options_reach_the_fcm_request(fcm, frozen_clock, post_push):
    add_app_user("ann", "tok-1")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann", options={"app": {
        "icon": "ic_order", "sound": "chime", "badge": 3,
        "click_action": "sharestack://orders/42", "collapse_key": "orders",
    }})
    message = fcm.requests[0].message
    assert message["android"]["notification"] == {
        "icon": "ic_order", "sound": "chime", "click_action": "sharestack://orders/42"}
    assert message["android"]["collapse_key"] == "orders"
    assert message["apns"]["payload"]["aps"] == {"badge": 3, "sound": "chime"}
    assert message["data"]["click_action"] == "sharestack://orders/42"


def test_marketing_email_carries_one_click_unsubscribe(db, frozen_clock, post_push, smtp_server):
    from tests.notifications.test_email_pipeline import smtp_channel

    smtp_channel(smtp_server)
    NotificationType.objects.create(key="promo", category="marketing")
    UserProfile.objects.create(user_id="ann")
    Contact.objects.create(user_id="ann", kind="email", address="ann@example.test")
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann", channels=["email"], notification_type="promo",
              content={"title": "Sale", "body": "Half price", "html": "<p>Half price</p>"})
    [mail] = smtp_server.mails
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(mail.message["List-Unsubscribe"]).strip().startswith("<http://127.0.0.1:8000/unsubscribe/")


class ScriptedAdapter(Provider):
    """Return the result a test sets for every message, to test what the pipeline
    does with results that the fakes cannot produce on demand."""

    key = "scripted"
    kinds = ("app",)
    address_kinds = ("fcm",)
    outcome: dict = {}

    def send(self, messages):
        return [SendResult(message.record_id, **self.outcome) for message in messages]


@pytest.fixture
def scripted(monkeypatch, db):
    monkeypatch.setitem(REGISTRY, "scripted", ScriptedAdapter)
    Channel.objects.create(name="scripted", kind="app", provider="scripted")
    return ScriptedAdapter


def test_device_registered_again_after_the_410_stays_active(scripted, frozen_clock, post_push):
    device = add_app_user("ann", "tok-1")
    moment = berlin(12)
    scripted.outcome = {"outcome": Outcome.INVALID_ADDRESS, "error_code": "Unregistered",
                        "invalid_since": device.registered_at - timedelta(days=1)}
    frozen_clock.set(moment)
    post_push(notification_id="n1", user_id="ann")
    device.refresh_from_db()
    assert device.is_active is True
    assert PushRecord.objects.get().reason == "invalid_address"


def test_device_reported_dead_after_its_registration_is_deactivated(scripted, frozen_clock, post_push):
    device = add_app_user("ann", "tok-1")
    scripted.outcome = {"outcome": Outcome.INVALID_ADDRESS, "error_code": "Unregistered",
                        "invalid_since": device.registered_at + timedelta(seconds=1)}
    frozen_clock.set(berlin(12))
    post_push(notification_id="n1", user_id="ann")
    device.refresh_from_db()
    assert device.is_active is False


def test_provider_deferral_waits_without_counting_an_attempt(scripted, frozen_clock, post_push, beat_tick):
    add_app_user("ann", "tok-1")
    moment = berlin(12)
    scripted.outcome = {"outcome": Outcome.DEFERRED, "error_code": "isv.BUSINESS_LIMIT_CONTROL",
                        "retry_after": 600}
    frozen_clock.set(moment)
    post_push(notification_id="n1", user_id="ann")
    record = PushRecord.objects.get()
    assert (record.status, record.reason, record.attempts) == ("deferred", "isv.BUSINESS_LIMIT_CONTROL", 0)
    assert record.next_attempt_at == moment + timedelta(seconds=600)

    scripted.outcome = {"outcome": Outcome.SENT, "provider_message_id": "m-1"}
    frozen_clock.set(moment + timedelta(seconds=599))
    beat_tick()
    assert PushRecord.objects.get().status == "deferred"
    frozen_clock.set(moment + timedelta(seconds=600))
    beat_tick()
    record = PushRecord.objects.get()
    assert (record.status, record.attempts, record.provider_message_id) == ("sent", 1, "m-1")


class RaisingAdapter(ScriptedAdapter):
    """Raise on any message whose body is "boom", as an adapter bug would."""

    key = "raising"

    def send(self, messages):
        if any(message.body == "boom" for message in messages):
            raise TypeError("'int' object is not iterable")
        return [SendResult(message.record_id, Outcome.SENT, provider_message_id=f"m-{message.record_id}")
                for message in messages]


def test_adapter_exception_fails_only_its_message(monkeypatch, db, frozen_clock, post_push, beat_tick):
    monkeypatch.setitem(REGISTRY, "raising", RaisingAdapter)
    Channel.objects.create(name="raising", kind="app", provider="raising")
    add_app_user("ann", "tok-1")
    add_app_user("bob", "tok-2")
    moment = berlin(12)
    frozen_clock.set(moment)
    post_push(notification_id="n1", user_ids=["ann", "bob"])
    post_push(notification_id="n2", user_id="ann", content={"title": "x", "body": "boom"})
    statuses = {record.task.notification_id + record.user_id: (record.status, record.reason)
                for record in PushRecord.objects.select_related("task")}
    assert statuses["n1ann"] == ("sent", "")
    assert statuses["n1bob"] == ("sent", "")
    assert statuses["n2ann"] == ("failed", "permanent_error")
    frozen_clock.set(moment + timedelta(hours=1))
    beat_tick()
    assert PushRecord.objects.filter(status="sending").count() == 0


def test_batch_with_one_bad_message_sends_the_rest(monkeypatch, db):
    from sharestack_push.notifications.delivery import guarded_send
    from channels_app.providers.base import OutgoingMessage

    channel = Channel.objects.create(name="raising", kind="app", provider="raising")
    adapter = RaisingAdapter({}, {}, 5)
    results = guarded_send(adapter, channel, [
        OutgoingMessage(1, "a", "t", "fine"), OutgoingMessage(2, "b", "t", "boom"),
        OutgoingMessage(3, "c", "t", "fine")])
    assert [result.outcome for result in results] == [Outcome.SENT, Outcome.PERMANENT, Outcome.SENT]
    assert results[1].error_code == "adapter_error"


def test_failover_shows_in_the_status_api(fcm, frozen_clock, post_push, push_client):
    Channel.objects.filter(name="fcm").update(priority=2)
    broken_fcm_channel(fcm)
    add_app_user("ann", "tok-1")
    frozen_clock.set(berlin(12))
    task_id = post_push(notification_id="n1", user_id="ann").json()["id"]
    [record] = push_client.get(f"/api/v1/notifications/push/{task_id}").json()["records"]["results"]
    assert [step["channel"] for step in record["failover"]] == ["fcm-broken"]
    assert record["channel_name"] == "fcm"
