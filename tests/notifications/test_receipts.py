"""Receipts move records forward only, and the callback endpoint's responses."""
from datetime import UTC, datetime

import pytest

from channels_app.models import Channel, Contact
from channels_app.providers.base import Receipt, ReceiptEvent
from sharestack_push.notifications.models import PushRecord, PushTask
from sharestack_push.notifications.receipts import apply_receipts

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def channel():
    return Channel.objects.create(name="console-sms", kind="sms", provider="console")


def sent_record(channel, status="sent", address="+8613800000000", **fields) -> PushRecord:
    task = PushTask.objects.create(notification_id=f"n-{status}-{PushTask.objects.count()}",
                                   notification_type="order", target="user", user_id="ann",
                                   channels=["sms"])
    return PushRecord.objects.create(task=task, user_id="ann", channel_kind="sms", channel=channel,
                                     address=address, status=status,
                                     provider_message_id="msg-1", **fields)


def test_delivered_receipt_moves_a_sent_record(channel):
    record = sent_record(channel)
    assert apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.DELIVERED, occurred_at=WHEN)]) == 1
    record.refresh_from_db()
    assert (record.status, record.delivered_at) == ("delivered", WHEN)


def test_click_fills_the_times_it_implies(channel):
    record = sent_record(channel)
    apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.CLICKED, occurred_at=WHEN)])
    record.refresh_from_db()
    assert record.status == "clicked"
    assert record.delivered_at == record.opened_at == record.clicked_at == WHEN


def test_late_delivery_receipt_never_moves_a_clicked_record_back(channel):
    record = sent_record(channel, status="clicked", clicked_at=WHEN, opened_at=WHEN, delivered_at=WHEN)
    assert apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.DELIVERED)]) == 0
    record.refresh_from_db()
    assert record.status == "clicked"


def test_repeated_receipt_changes_nothing(channel):
    sent_record(channel)
    apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.DELIVERED, occurred_at=WHEN)])
    assert apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.DELIVERED)]) == 0


def test_failure_after_delivery_is_ignored(channel):
    record = sent_record(channel, status="delivered", delivered_at=WHEN)
    apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.FAILED, error_code="30003")])
    record.refresh_from_db()
    assert record.status == "delivered"


def test_failure_on_a_dead_number_deactivates_the_contact(channel):
    contact = Contact.objects.create(user_id="ann", kind="phone", address="+8613800000000")
    record = sent_record(channel, contact=contact)
    apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.FAILED, error_code="30005",
                                     error_message="unknown handset", invalid_address=True)])
    record.refresh_from_db()
    contact.refresh_from_db()
    assert (record.status, record.reason) == ("failed", "invalid_address")
    assert record.error_message == "30005: unknown handset"
    assert contact.is_active is False


def test_batch_receipt_matches_by_address(channel):
    first = sent_record(channel)
    second = sent_record(channel, address="+8613900000000")
    apply_receipts(channel, [Receipt("msg-1", ReceiptEvent.DELIVERED, address="+8613900000000")])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("sent", "delivered")


def test_receipt_for_another_channel_changes_nothing(channel):
    record = sent_record(channel)
    other = Channel.objects.create(name="other", kind="sms", provider="console")
    assert apply_receipts(other, [Receipt("msg-1", ReceiptEvent.DELIVERED)]) == 0
    record.refresh_from_db()
    assert record.status == "sent"


def test_callback_for_a_provider_without_callbacks_is_404(client, channel):
    response = client.post(f"/api/v1/callbacks/{channel.pk}", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert "sends no callbacks" in response.json()["error"]["message"]


def test_callback_for_an_unknown_channel_is_404(client):
    assert client.post("/api/v1/callbacks/999999").status_code == 404


def test_unparsable_huawei_receipt_is_a_400(client):
    channel = Channel.objects.create(
        name="huawei", kind="app", provider="huawei",
        config={"app_id": "10001", "callback_username": "receipts"},
        credentials={"client_secret": "secret", "callback_key": "key"},
    )
    response = client.post(
        f"/api/v1/callbacks/{channel.pk}", data="{}", content_type="application/json",
        HTTP_X_HUAWEI_CALLBACK_ID=f"timestamp={'9' * 400}; nonce=n; value=v",
    )
    assert response.status_code in (400, 403)


def test_unparsable_mailgun_webhook_is_a_400(client):
    channel = Channel.objects.create(
        name="mailgun", kind="email", provider="mailgun",
        config={"from_email": "news@mg.example.com"},
        credentials={"api_key": "key-1", "webhook_signing_key": "signing"},
    )
    response = client.post(f"/api/v1/callbacks/{channel.pk}", data="[1, 2]",
                           content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"

