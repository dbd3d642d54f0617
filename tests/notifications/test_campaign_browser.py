"""Campaigns in headless chromium: compose, send to the SMTP fake, watch, cancel."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from sharestack_push.notifications.models import Campaign, PushRecord, PushTask
from tests.notifications.test_email_pipeline import add_email_user, smtp_channel
from tests.staff import admin_page, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS_URL = "/api/v1/notifications/events"
VARIANTS = (
    '[{"name": "plain", "weight": 1}, {"name": "urgent", "weight": 1, '
    '"content": {"title": "Last days of the winter sale", "body": "Ends on Sunday"}}]'
)


def fill_basics(page: Page, name: str) -> None:
    page.fill("#id_name", name)
    page.fill("#id_notification_type", "promo")
    page.fill("#id_title", "Winter sale")
    page.fill("#id_body", "Half price until Sunday")
    page.check("input[name=channels][value=email]")


def send(page: Page) -> None:
    page.click("#campaign-send")
    page.wait_for_url("**/progress/")


def counter(page: Page, table: str, group: str, name: str):
    return page.locator(f'#{table} tr[data-group="{group}"] td[data-counter="{name}"]')


def test_compose_send_and_watch(chromium, live_server, staff_user, smtp_server,
                                push_client, tmp_path):
    smtp_channel(smtp_server)
    add_email_user("ada", "ada@example.com")
    add_email_user("bo", "bo@example.com")
    add_email_user("chen", "chen@example.com")
    upload = tmp_path / "winter.csv"
    upload.write_text("user_id,name\nada,Ada\nbo,Bo\nada,Ada again\n")

    page = admin_page(chromium, live_server, reverse("admin:notifications_campaign_add"))
    fill_basics(page, "Winter sale")
    page.fill("#id_variants", VARIANTS)
    page.select_option("#id_audience", "upload")
    page.set_input_files("#id_recipients_file", str(upload))
    screenshot(page, "campaign-compose")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("The audience holds 2 distinct user ids.")
    expect(page.locator(".field-audience_size .readonly")).to_have_text("2")

    send(page)
    expect(page.locator("#campaign-status")).to_contain_text("completed")
    expect(page.locator('#campaign-records td[data-status="sent"]')).to_have_text("2")
    expect(counter(page, "campaign-by-channel", "email", "sent")).to_have_text("2")
    assert sorted(mail.rcpt_tos[0] for mail in smtp_server.mails) == [
        "ada@example.com", "bo@example.com"
    ]

    campaign = Campaign.objects.get(name="Winter sale")
    ada, bo = PushRecord.objects.filter(task__campaign=campaign).order_by("user_id")
    for record, event in ((ada, "opened"), (bo, "delivered")):
        response = push_client.post(EVENTS_URL, {"record_id": record.pk, "event": event},
                                    format="json")
        assert response.status_code == 200, response.content
    page.reload()
    expect(counter(page, "campaign-by-channel", "email", "delivered")).to_have_text("2")
    expect(counter(page, "campaign-by-channel", "email", "opened")).to_have_text("1")
    expect(counter(page, "campaign-by-channel", "total", "opened")).to_have_text("1")
    expect(page.locator("#campaign-by-variant tr[data-group]")).to_have_count(
        len({ada.variant, bo.variant})
    )
    screenshot(page, "campaign-progress")

    page.goto(f"{live_server.url}{reverse('admin:notifications_campaign_change', args=[campaign.pk])}")
    expect(page.locator("#campaign-send")).to_have_count(0)
    assert PushTask.objects.filter(campaign=campaign).count() == 1


def test_schedule_then_cancel(chromium, live_server, staff_user, smtp_server):
    smtp_channel(smtp_server)
    add_email_user("ada", "ada@example.com")
    tomorrow = timezone.localtime() + timedelta(days=1)

    page = admin_page(chromium, live_server, reverse("admin:notifications_campaign_add"))
    fill_basics(page, "Christmas")
    page.select_option("#id_send_mode", "at")
    page.fill("#id_schedule_time_0", tomorrow.strftime("%Y-%m-%d"))
    page.fill("#id_schedule_time_1", "09:00:00")
    page.click("input[name=_continue]")

    send(page)
    expect(page.locator("#campaign-status")).to_contain_text("scheduled")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#campaign-cancel")
    expect(page.locator("#campaign-status")).to_contain_text("cancelled")
    expect(page.locator(".messagelist")).to_contain_text("cancelled; 0 unsent messages stopped")
    expect(page.locator("#campaign-cancel")).to_have_count(0)
    screenshot(page, "campaign-cancelled")

    task = PushTask.objects.get(campaign__name="Christmas")
    assert task.status == "cancelled"
    assert smtp_server.mails == []
