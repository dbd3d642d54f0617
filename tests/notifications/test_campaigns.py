"""Campaigns: uploaded audiences, sending once through the API's rules, and cancel."""
import io
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from preferences.models import UserProfile
from sharestack_push.notifications.audience import audience_chunks
from sharestack_push.notifications.campaigns import (
    AlreadySent,
    CampaignInvalid,
    UploadInvalid,
    audience_size,
    send_campaign,
    store_recipients,
)
from sharestack_push.notifications.models import (
    Campaign,
    CampaignRecipient,
    PushRecord,
    PushTask,
    Segment,
)
from sharestack_push.notifications.service import TaskFinished, cancel_task
from tests.notifications.conftest import add_app_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def csv_file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def upload_errors(campaign: Campaign, text: str) -> list[str]:
    with pytest.raises(UploadInvalid) as raised:
        store_recipients(campaign, csv_file(text))
    return raised.value.errors


def make_campaign(**fields) -> Campaign:
    values = {
        "name": "Winter sale", "notification_type": "promo", "title": "Winter sale",
        "body": "Half price until Sunday", "channels": ["app"],
        "audience": Campaign.Audience.UPLOAD,
    } | fields
    return Campaign.objects.create(**values)


@pytest.fixture
def campaign():
    return make_campaign()


def set_attributes(user_id: str, attributes: dict) -> None:
    UserProfile.objects.filter(user_id=user_id).update(attributes=attributes)


def stored_ids(campaign: Campaign) -> list[str]:
    rows = CampaignRecipient.objects.filter(campaign=campaign).order_by("user_id")
    return list(rows.values_list("user_id", flat=True))


# Uploads


def test_upload_drops_duplicates(campaign):
    stored = store_recipients(campaign, csv_file("user_id\nbo\nada\nbo\n\nada\n"))
    assert stored == 2
    assert stored_ids(campaign) == ["ada", "bo"]


def test_upload_reads_user_id_column(campaign):
    store_recipients(campaign, csv_file("name,User_ID\nAda,ada\n\"Bo, Jr\",bo\n"))
    assert stored_ids(campaign) == ["ada", "bo"]


def test_upload_strips_byte_order_mark(campaign):
    store_recipients(campaign, io.BytesIO("user_id\nada\n".encode("utf-8-sig")))
    assert stored_ids(campaign) == ["ada"]


def test_upload_wrong_header_names_line(campaign):
    assert upload_errors(campaign, "id,name\nada,Ada\n") == [
        "Line 1: the header must name a user_id column; found 'id, name'."
    ]


def test_upload_empty_file_rejected(campaign):
    assert upload_errors(campaign, "") == [
        "Line 1: the file is empty; start it with the header user_id."
    ]


def test_upload_empty_id_names_line(campaign):
    assert upload_errors(campaign, "user_id,name\nada,Ada\n ,Bo\n") == [
        "Line 3: user_id is empty."
    ]


def test_upload_long_id_names_line(campaign):
    errors = upload_errors(campaign, f"user_id\nada\nbo\n{'x' * 65}\n")
    assert errors == ["Line 4: user_id 'xxxxxxxxxxxxxxxx'… is longer than 64 characters."]


def test_upload_nul_names_line(campaign):
    assert upload_errors(campaign, "user_id\nada\nb\x00o\n") == [
        "Line 3: user_id contains a NUL character."
    ]


def test_upload_counts_unlisted_bad_lines(campaign):
    errors = upload_errors(campaign, "user_id\n" + ",\n" * 25)
    assert len(errors) == 21
    assert errors[0] == "Line 2: user_id is empty."
    assert errors[-1] == "… and 5 more bad lines."


def test_upload_not_utf8_rejected(campaign):
    with pytest.raises(UploadInvalid) as raised:
        store_recipients(campaign, io.BytesIO(b"user_id\nada\n\xff\xfe\n"))
    assert raised.value.errors == ["Line 3: the file is not UTF-8 text; save it as UTF-8."]


def test_failed_upload_keeps_previous_list(campaign):
    store_recipients(campaign, csv_file("user_id\nada\n"))
    upload_errors(campaign, "user_id\nbo\n\"\"\n")
    assert stored_ids(campaign) == ["ada"]


def test_upload_streams_100000_ids(campaign):
    lines = "".join(f"user-{number:06d}\n" for number in range(100_000))
    stored = store_recipients(campaign, csv_file("user_id\n" + lines + "user-000007\n"))
    assert stored == 100_000
    chunks = list(audience_chunks(PushTask(target="upload", campaign=campaign), 30_000))
    assert [len(chunk) for chunk in chunks] == [30_000, 30_000, 30_000, 10_000]
    assert chunks[0][0] == "user-000000"
    assert chunks[-1][-1] == "user-099999"


def upload_peak_bytes(campaign: Campaign, count: int) -> int:
    """Measure the peak Python memory of storing an upload of `count` ids."""
    upload = csv_file("user_id\n" + "".join(f"user-{number:07d}\n" for number in range(count)))
    tracemalloc.start()
    try:
        store_recipients(campaign, upload)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_upload_memory_stays_flat(campaign):
    small = upload_peak_bytes(campaign, 20_000)
    large = upload_peak_bytes(campaign, 100_000)
    # Five times the ids. Holding them all in a list would add to the peak in
    # proportion to their count (an estimated 5 MB more here), and streaming adds none.
    assert large < small * 1.5


# Audience size


def test_audience_size_by_kind(campaign):
    add_app_user("ada", "token-ada")
    add_app_user("bo", "token-bo")
    segment = Segment.objects.create(
        name="ada only", conditions=[{"attribute": "name", "operator": "exists"}]
    )
    set_attributes("ada", {"name": "Ada"})
    store_recipients(campaign, csv_file("user_id\nx\ny\nz\n"))

    assert audience_size(campaign) == 3
    assert audience_size(make_campaign(audience="all")) == 2
    assert audience_size(make_campaign(audience="segment", segment=segment)) == 1


# Sending


def test_send_reaches_uploaded_users_only(fcm, campaign, run_jobs):
    add_app_user("ada", "token-ada")
    add_app_user("bo", "token-bo")
    add_app_user("chen", "token-chen")
    store_recipients(campaign, csv_file("user_id\nada\nchen\n"))

    task = run_jobs(send_campaign, campaign.pk, None)

    task.refresh_from_db()
    assert task.target == PushTask.Target.UPLOAD
    assert task.campaign == campaign
    assert task.status == "completed"
    records = PushRecord.objects.filter(task=task).order_by("user_id")
    assert [record.user_id for record in records] == ["ada", "chen"]
    assert {record.status for record in records} == {"sent"}
    assert sorted(request.token for request in fcm.requests) == ["token-ada", "token-chen"]


def test_send_segment_audience(fcm, run_jobs):
    add_app_user("ada", "token-ada")
    add_app_user("bo", "token-bo")
    set_attributes("bo", {"plan": "pro"})
    segment = Segment.objects.create(
        name="pro", conditions=[{"attribute": "plan", "operator": "equals", "value": "pro"}]
    )
    campaign = make_campaign(audience="segment", segment=segment)

    task = run_jobs(send_campaign, campaign.pk, None)

    assert task.target == PushTask.Target.SEGMENT
    assert list(PushRecord.objects.filter(task=task).values_list("user_id", flat=True)) == ["bo"]


def test_send_twice_creates_one_task(fcm, campaign, run_jobs):
    store_recipients(campaign, csv_file("user_id\nada\n"))
    run_jobs(send_campaign, campaign.pk, None)

    with pytest.raises(AlreadySent):
        run_jobs(send_campaign, campaign.pk, None)
    assert PushTask.objects.filter(campaign=campaign).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_create_one_task():
    campaign = make_campaign(send_mode="at", schedule_time=datetime(2099, 1, 1, tzinfo=UTC))
    store_recipients(campaign, csv_file("user_id\nada\n"))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def click() -> None:
        barrier.wait()
        try:
            send_campaign(campaign.pk, None)
            outcomes.append("sent")
        except AlreadySent:
            outcomes.append("already sent")
        finally:
            connection.close()

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()

    assert sorted(outcomes) == ["already sent", "sent"]
    assert PushTask.objects.filter(campaign=campaign).count() == 1


def test_send_rejects_what_api_rejects(campaign):
    campaign.template_name, campaign.title, campaign.body = "no_such_template", "", ""
    campaign.save()
    store_recipients(campaign, csv_file("user_id\nada\n"))

    with pytest.raises(CampaignInvalid) as raised:
        send_campaign(campaign.pk, None)
    assert raised.value.errors == {
        "template_name": ["No active template named 'no_such_template' for channels app."]
    }
    assert not PushTask.objects.exists()


def test_send_rejects_invalid_variant(campaign):
    campaign.variants = [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]
    campaign.save()
    store_recipients(campaign, csv_file("user_id\nada\n"))

    with pytest.raises(CampaignInvalid) as raised:
        send_campaign(campaign.pk, None)
    assert raised.value.errors == {"variants": ["Give each variant a different name."]}


def test_send_upload_without_list_rejected(campaign):
    with pytest.raises(CampaignInvalid) as raised:
        send_campaign(campaign.pk, None)
    assert raised.value.errors == {"recipients_file": ["Upload a CSV of user ids first."]}


def test_variant_without_content_uses_campaign_content(fcm, campaign, run_jobs):
    add_app_user("ada", "token-ada")
    campaign.variants = [
        {"name": "plain", "weight": 1},
        {"name": "loud", "weight": 1, "content": {"title": "WINTER SALE", "body": "Now"}},
    ]
    campaign.save()
    store_recipients(campaign, csv_file("user_id\nada\n"))

    task = run_jobs(send_campaign, campaign.pk, None)

    assert task.variants[0]["content"] == {
        "title": "Winter sale", "body": "Half price until Sunday", "data": {}
    }
    assert task.variants[1]["content"]["title"] == "WINTER SALE"


def test_scheduled_send_waits(frozen_clock, campaign):
    frozen_clock.set(NOW)
    campaign.send_mode, campaign.schedule_time = "at", NOW + timedelta(days=1)
    campaign.save()
    store_recipients(campaign, csv_file("user_id\nada\n"))

    task = send_campaign(campaign.pk, None)

    assert task.status == "scheduled"
    assert task.schedule_time == NOW + timedelta(days=1)


def test_optimal_send_mode_sets_send_at(campaign):
    campaign.send_mode = "optimal"
    campaign.save()
    store_recipients(campaign, csv_file("user_id\nada\n"))
    assert send_campaign(campaign.pk, None).send_at == "optimal"


# Cancel


def test_cancel_stops_queued_records(campaign):
    store_recipients(campaign, csv_file("user_id\nada\n"))
    task = send_campaign(campaign.pk, None)
    PushTask.objects.filter(pk=task.pk).update(status="processing")
    queued = PushRecord.objects.create(task=task, user_id="ada", channel_kind="app")
    sent = PushRecord.objects.create(task=task, user_id="bo", channel_kind="app", status="sent")

    _, stopped = cancel_task(PushTask.objects.all(), task.pk)

    assert stopped == 1
    queued.refresh_from_db()
    sent.refresh_from_db()
    assert (queued.status, queued.reason) == ("suppressed", "task_cancelled")
    assert sent.status == "sent"
    task.refresh_from_db()
    assert task.status == "cancelled"


def test_cancel_finished_task_raises(campaign):
    store_recipients(campaign, csv_file("user_id\nada\n"))
    task = send_campaign(campaign.pk, None)
    PushTask.objects.filter(pk=task.pk).update(status="completed")
    with pytest.raises(TaskFinished):
        cancel_task(PushTask.objects.all(), task.pk)


# Admin views


def send_url(campaign: Campaign) -> str:
    return reverse("admin:notifications_campaign_send", args=[campaign.pk])


def test_admin_double_submit_sends_once(staff_client, fcm, campaign, run_jobs):
    store_recipients(campaign, csv_file("user_id\nada\n"))

    first = run_jobs(staff_client.post, send_url(campaign))
    second = run_jobs(staff_client.post, send_url(campaign))

    progress = reverse("admin:notifications_campaign_progress", args=[campaign.pk])
    assert first.url == progress
    assert second.url == progress
    assert PushTask.objects.filter(campaign=campaign).count() == 1


def test_admin_send_shows_api_error(staff_client, campaign):
    response = staff_client.post(send_url(campaign), follow=True)
    notices = [str(message) for message in response.context["messages"]]
    assert notices == ["Not sent. recipients_file: Upload a CSV of user ids first."]
    assert not PushTask.objects.exists()


def test_admin_cancel_action(staff_client, frozen_clock, campaign):
    frozen_clock.set(NOW)
    campaign.send_mode, campaign.schedule_time = "at", NOW + timedelta(hours=2)
    campaign.save()
    store_recipients(campaign, csv_file("user_id\nada\n"))
    task = send_campaign(campaign.pk, None)

    staff_client.post(
        reverse("admin:notifications_campaign_changelist"),
        {"action": "cancel_campaigns", "_selected_action": [campaign.pk]},
    )

    task.refresh_from_db()
    assert task.status == "cancelled"


def test_admin_cancel_unsent_campaign_reports(staff_client, campaign):
    url = reverse("admin:notifications_campaign_cancel", args=[campaign.pk])
    response = staff_client.post(url, follow=True)
    notices = [str(message) for message in response.context["messages"]]
    assert notices == ["Campaign 'Winter sale' was not sent, so nothing to cancel."]


def test_admin_form_rejects_unknown_template(staff_client):
    response = staff_client.post(reverse("admin:notifications_campaign_add"), {
        "name": "Bad", "notification_type": "promo", "priority": "normal",
        "template_name": "missing", "variables": "{}", "options": "{}", "variants": "[]",
        "audience": "all", "channels": ["email"], "send_mode": "now",
    })
    errors = response.context["adminform"].form.errors
    assert errors["template_name"] == ["No active template named 'missing' for channels email."]
    assert not Campaign.objects.exists()


def test_admin_form_upload_error_names_line(staff_client):
    upload = io.BytesIO(b"user_id\nada\n\n,x\n")
    upload.name = "users.csv"
    response = staff_client.post(reverse("admin:notifications_campaign_add"), {
        "name": "Bad list", "notification_type": "promo", "priority": "normal",
        "title": "Hi", "body": "", "variables": "{}", "options": "{}", "variants": "[]",
        "audience": "upload", "channels": ["email"], "send_mode": "now",
        "recipients_file": upload,
    })
    errors = response.context["adminform"].form.errors
    assert errors["recipients_file"] == ["Line 4: user_id is empty."]
    assert not Campaign.objects.exists()


def test_sent_campaign_is_read_only(staff_client, campaign):
    store_recipients(campaign, csv_file("user_id\nada\n"))
    send_campaign(campaign.pk, None)
    url = reverse("admin:notifications_campaign_change", args=[campaign.pk])

    staff_client.post(url, {"name": "Renamed"})

    campaign.refresh_from_db()
    assert campaign.name == "Winter sale"


def progress_page(staff_client, campaign: Campaign) -> str:
    url = reverse("admin:notifications_campaign_progress", args=[campaign.pk])
    return staff_client.get(url).content.decode()


def test_progress_reloads_while_sending(staff_client, campaign):
    store_recipients(campaign, csv_file("user_id\nada\n"))
    task = send_campaign(campaign.pk, None)
    PushTask.objects.filter(pk=task.pk).update(status="processing")
    assert '<meta http-equiv="refresh" content="3">' in progress_page(staff_client, campaign)


def test_progress_stops_reloading_when_done(staff_client, campaign):
    store_recipients(campaign, csv_file("user_id\nada\n"))
    task = send_campaign(campaign.pk, None)
    PushTask.objects.filter(pk=task.pk).update(status="completed")
    page = progress_page(staff_client, campaign)
    assert 'http-equiv="refresh"' not in page
    assert "completed" in page


def test_progress_of_unsent_campaign(staff_client, campaign):
    assert "Not sent yet." in progress_page(staff_client, campaign)


def test_segment_admin_previews_count(staff_client):
    add_app_user("ada", "token-ada")
    add_app_user("bo", "token-bo")
    set_attributes("ada", {"plan": "pro"})
    segment = Segment.objects.create(
        name="pro", conditions=[{"attribute": "plan", "operator": "equals", "value": "pro"}]
    )
    response = staff_client.get(reverse("admin:notifications_segment_change", args=[segment.pk]))
    assert response.status_code == 200
    assert '<div class="readonly">1</div>' in response.content.decode()
