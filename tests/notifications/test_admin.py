"""The task and record admin: searchable, filterable and read-only."""
import pytest
from django.urls import reverse

from sharestack_push.notifications.models import PushRecord, PushTask

pytestmark = pytest.mark.django_db

TASKS_URL = reverse("admin:notifications_pushtask_changelist")
RECORDS_URL = reverse("admin:notifications_pushrecord_changelist")


@pytest.fixture
def order_task():
    task = PushTask.objects.create(
        notification_id="order-17", notification_type="order", target="user",
        user_id="alice", channels=["email", "sms"],
    )
    PushRecord.objects.create(task=task, user_id="alice", channel_kind="email",
                              provider="smtp", status="sent", provider_message_id="msg-1")
    PushRecord.objects.create(task=task, user_id="alice", channel_kind="sms",
                              provider="twilio", status="failed", reason="invalid_address",
                              address="+15005550001")
    PushRecord.objects.create(task=task, user_id="alice", channel_kind="sms",
                              provider="twilio", status="sent", address="+15005550002")
    return task


@pytest.fixture
def promo_task():
    return PushTask.objects.create(
        notification_id="promo-3", notification_type="promo", target="broadcast",
        channels=["app"], status="completed",
    )


def listed(response):
    return list(response.context["cl"].result_list)


def test_task_search_by_notification_id(staff_client, order_task, promo_task):
    response = staff_client.get(TASKS_URL, {"q": "order-17"})
    assert listed(response) == [order_task]


def test_task_search_by_user(staff_client, order_task, promo_task):
    assert listed(staff_client.get(TASKS_URL, {"q": "alice"})) == [order_task]


def test_task_search_by_id(staff_client, order_task, promo_task):
    assert listed(staff_client.get(TASKS_URL, {"q": str(promo_task.pk)})) == [promo_task]


def test_task_filter_by_status(staff_client, order_task, promo_task):
    assert listed(staff_client.get(TASKS_URL, {"status__exact": "completed"})) == [promo_task]


def test_task_page_counts_records(staff_client, order_task):
    url = reverse("admin:notifications_pushtask_change", args=[order_task.pk])
    page = staff_client.get(url).content.decode()
    assert "failed: 1, sent: 2" in page


def test_task_page_is_read_only(staff_client, order_task):
    url = reverse("admin:notifications_pushtask_change", args=[order_task.pk])
    response = staff_client.post(url, {"notification_id": "changed"})
    order_task.refresh_from_db()
    assert response.status_code == 403
    assert order_task.notification_id == "order-17"


def test_task_cannot_be_added(staff_client):
    assert staff_client.get(reverse("admin:notifications_pushtask_add")).status_code == 403


def test_task_cannot_be_deleted(staff_client, order_task):
    url = reverse("admin:notifications_pushtask_delete", args=[order_task.pk])
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 403
    assert PushTask.objects.filter(pk=order_task.pk).exists()


def test_record_filter_by_status(staff_client, order_task):
    records = listed(staff_client.get(RECORDS_URL, {"status__exact": "failed"}))
    assert [record.reason for record in records] == ["invalid_address"]


def test_record_filter_by_provider(staff_client, order_task):
    records = listed(staff_client.get(RECORDS_URL, {"provider__exact": "twilio"}))
    assert len(records) == 2


def test_record_search_by_message_id(staff_client, order_task):
    records = listed(staff_client.get(RECORDS_URL, {"q": "msg-1"}))
    assert [record.provider for record in records] == ["smtp"]


def test_record_search_by_reason(staff_client, order_task):
    records = listed(staff_client.get(RECORDS_URL, {"q": "invalid_address"}))
    assert [record.status for record in records] == ["failed"]


def test_record_search_by_task(staff_client, order_task, promo_task):
    records = listed(staff_client.get(RECORDS_URL, {"q": "order-17"}))
    assert len(records) == 3


def test_record_page_is_read_only(staff_client, order_task):
    record = order_task.records.first()
    url = reverse("admin:notifications_pushrecord_change", args=[record.pk])
    response = staff_client.get(url)
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert 'name="status"' not in response.content.decode()
