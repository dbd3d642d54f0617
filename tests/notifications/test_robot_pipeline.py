"""A push to a named group-robot channel, with no user, through the whole pipeline."""
import uuid

import pytest

from channels_app.models import Channel
from sharestack_push.notifications.models import PushRecord, PushTask
from tests.fakes.wechat import FakeWeChat

SEND_PATH = "/cgi-bin/webhook/send"


@pytest.fixture
def robot(db):
    key = str(uuid.uuid4())
    with FakeWeChat() as fake:
        fake.add_robot(key)
        channel = Channel.objects.create(
            name="ops-robot", kind="wechat", provider="wecom_robot",
            config={"base_url": fake.base_url}, credentials={"key": key},
        )
        yield fake, channel


def test_named_robot_gets_the_message_without_any_user(robot, post_push):
    fake, channel = robot
    response = post_push(notification_id="deploy-42", notification_type="ops", user_id=None,
                         channels=["ops-robot"],
                         content={"title": "Deploy", "body": "Build 42 is live"})
    assert response.status_code == 202
    [request] = fake.requests_to(SEND_PATH)
    assert "Build 42 is live" in request.body["text"]["content"]
    record = PushRecord.objects.get()
    assert (record.status, record.user_id, record.channel_id) == ("sent", "", channel.pk)
    assert record.provider == "wecom_robot"
    assert PushTask.objects.get().status == "completed"


def test_robot_and_users_in_one_push(robot, post_push, fcm):
    from tests.notifications.conftest import add_app_user

    fake, _ = robot
    add_app_user("ann", "tok-1")
    post_push(notification_id="deploy-43", user_id="ann", channels=["app", "ops-robot"])
    assert len(fake.requests_to(SEND_PATH)) == 1
    assert len(fcm.requests) == 1
    assert set(PushRecord.objects.values_list("status", flat=True)) == {"sent"}


def test_repeated_dispatch_sends_the_robot_once(robot, post_push):
    from sharestack_push.notifications import dispatch

    fake, _ = robot
    post_push(notification_id="deploy-44", user_id=None, channels=["ops-robot"])
    task = PushTask.objects.get()
    PushTask.objects.filter(pk=task.pk).update(status="pending")
    dispatch.dispatch_task(str(task.pk), lambda *args: None, lambda *args: None)
    assert PushRecord.objects.count() == 1
    assert len(fake.requests_to(SEND_PATH)) == 1


def test_robot_channel_is_never_picked_for_user_records(robot, post_push):
    from channels_app.models import Contact
    from preferences.models import UserProfile

    fake, _ = robot
    UserProfile.objects.create(user_id="ann")
    Contact.objects.create(user_id="ann", kind="wechat_openid", address="openid-1")
    post_push(notification_id="n1", user_id="ann", channels=["wechat"])
    record = PushRecord.objects.get()
    assert (record.status, record.reason) == ("failed", "no_channel_configured")
    assert fake.requests_to(SEND_PATH) == []
