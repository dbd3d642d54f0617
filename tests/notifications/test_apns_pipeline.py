"""A push request through the whole pipeline to the fake APNs server."""
import pytest

from channels_app.models import Channel, Device
from sharestack_push.notifications.models import PushRecord
from tests.fakes.apns import FakeApns, device_token


@pytest.fixture(scope="module")
def apns_server():
    with FakeApns() as fake:
        yield fake


@pytest.fixture
def apns(apns_server, db):
    """The fake APNs server behind an enabled APNs channel.

    Each test's channel has a new primary key, so its shared provider token is new too.
    """
    apns_server.clear()
    Channel.objects.create(
        name="apns",
        kind="app",
        provider="apns",
        config={
            "team_id": apns_server.team_id,
            "key_id": apns_server.key_id,
            "bundle_id": apns_server.bundle_id,
            "base_url": apns_server.base_url,
            "ca_file": apns_server.ca_file,
        },
        credentials={"private_key": apns_server.private_key_pem},
    )
    return apns_server


def test_push_reaches_apns(apns, post_push):
    token = device_token()
    Device.objects.create(user_id="ines", platform="ios", provider="apns", token=token)

    post_push(notification_id="ios-1", user_id="ines")

    [request] = apns.requests
    record = PushRecord.objects.get()
    assert request.token == token
    assert request.payload["aps"]["alert"] == {
        "title": "Shipped", "body": "Your order is on its way"}
    assert record.status == "sent"
    assert record.provider == "apns"
    assert record.provider_message_id == request.headers["apns-id"]


def test_unregistered_device_deactivated(apns, post_push):
    token = device_token()
    device = Device.objects.create(user_id="ines", platform="ios", provider="apns", token=token)
    apns.script(token, "Unregistered")

    post_push(notification_id="ios-2", user_id="ines")

    device.refresh_from_db()
    assert PushRecord.objects.get().reason == "invalid_address"
    assert device.is_active is False


def test_410_older_than_the_registration_keeps_the_device(apns, post_push):
    token = device_token()
    device = Device.objects.create(user_id="ines", platform="ios", provider="apns", token=token)
    apns.unregister(token, at=device.registered_at.timestamp() - 3600)

    post_push(notification_id="ios-3", user_id="ines")

    device.refresh_from_db()
    record = PushRecord.objects.get()
    assert (record.status, record.reason) == ("failed", "invalid_address")
    assert device.is_active is True


def test_410_newer_than_the_registration_deactivates(apns, post_push):
    token = device_token()
    device = Device.objects.create(user_id="ines", platform="ios", provider="apns", token=token)
    apns.unregister(token, at=device.registered_at.timestamp() + 60)

    post_push(notification_id="ios-4", user_id="ines")

    device.refresh_from_db()
    assert device.is_active is False
