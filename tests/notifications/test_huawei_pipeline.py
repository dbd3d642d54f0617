"""A push request through the pipeline to the fake Push Kit, and its receipts back."""
import pytest

from channels_app.models import Channel, Device
from sharestack_push.notifications.models import PushRecord
from tests.fakes.huawei import FakeHuawei

CALLBACKS_URL = "/api/v1/callbacks/{}"


@pytest.fixture(scope="module")
def huawei_server():
    with FakeHuawei() as fake:
        yield fake


@pytest.fixture
def huawei(huawei_server, db):
    """The fake Push Kit behind an enabled Huawei channel, stored as `channel`."""
    huawei_server.clear()
    huawei_server.channel = Channel.objects.create(
        name="huawei",
        kind="app",
        provider="huawei",
        config=huawei_server.channel_config(),
        credentials=huawei_server.channel_credentials(),
    )
    return huawei_server


@pytest.fixture
def sent_record(huawei, post_push):
    Device.objects.create(user_id="hana", platform="android", provider="huawei", token="hw-1")
    post_push(notification_id="hw-1", user_id="hana")
    return PushRecord.objects.get()


def post_receipt(client, fake: FakeHuawei, statuses: list, **signing):
    body, headers = fake.receipt(statuses, **signing)
    return client.post(CALLBACKS_URL.format(fake.channel.pk), data=body,
                       content_type="application/json",
                       headers={"X-HUAWEI-CALLBACK-ID": headers["X-HUAWEI-CALLBACK-ID"]})


def test_push_reaches_push_kit(huawei, sent_record):
    [request] = huawei.requests
    assert request.tokens == ["hw-1"]
    assert request.message["android"]["notification"]["title"] == "Shipped"
    assert sent_record.status == "sent"
    assert sent_record.provider == "huawei"
    assert sent_record.provider_message_id == request.request_id


def test_delivered_receipt_moves_record(client, huawei, sent_record):
    status = huawei.receipt_status("hw-1", sent_record.provider_message_id, 0)

    response = post_receipt(client, huawei, [status])

    sent_record.refresh_from_db()
    assert response.status_code == 200
    assert response.json() == {"errno": "0", "errmsg": "success"}
    assert sent_record.status == "delivered"
    assert sent_record.delivered_at is not None


def test_uninstalled_receipt_deactivates_device(client, huawei, sent_record):
    status = huawei.receipt_status("hw-1", sent_record.provider_message_id, 2)

    post_receipt(client, huawei, [status])

    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert sent_record.reason == "invalid_address"
    assert Device.objects.get(token="hw-1").is_active is False


def test_receipt_with_bad_secret_changes_nothing(client, huawei, sent_record):
    status = huawei.receipt_status("hw-1", sent_record.provider_message_id, 0)

    response = post_receipt(client, huawei, [status], key="guessed-key")

    sent_record.refresh_from_db()
    assert response.status_code == 403
    assert sent_record.status == "sent"


def test_receipt_for_unknown_message_ignored(client, huawei, sent_record):
    status = huawei.receipt_status("hw-1", "no-such-request", 0)

    response = post_receipt(client, huawei, [status])

    sent_record.refresh_from_db()
    assert response.status_code == 200
    assert sent_record.status == "sent"


def test_receipt_names_one_token_of_a_batch(client, huawei, post_push):
    for user, token in (("hana", "hw-1"), ("omar", "hw-2")):
        Device.objects.create(user_id=user, platform="android", provider="huawei", token=token)
    post_push(notification_id="hw-batch", user_ids=["hana", "omar"])
    [request] = huawei.requests
    assert sorted(request.tokens) == ["hw-1", "hw-2"]

    post_receipt(client, huawei, [huawei.receipt_status("hw-2", request.request_id, 0)])

    statuses = dict(PushRecord.objects.values_list("address", "status"))
    assert statuses == {"hw-1": "sent", "hw-2": "delivered"}
