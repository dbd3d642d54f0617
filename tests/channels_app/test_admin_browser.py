"""The channel send-test page in headless chromium, sending to a real SMTP server."""
import pytest
from django.urls import reverse
from playwright.sync_api import expect

from channels_app.models import Channel
from tests.staff import admin_page, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mail_channel(transactional_db, smtp_server):
    channel = Channel(
        name="mail",
        kind="email",
        provider="smtp",
        config={"host": "127.0.0.1", "port": smtp_server.port, "from_email": "noreply@example.com"},
    )
    channel.credentials = {}
    channel.save()
    return channel


def test_send_test_shows_outcome(chromium, live_server, staff_user, mail_channel, smtp_server):
    change = reverse("admin:channels_app_channel_change", args=[mail_channel.pk])
    page = admin_page(chromium, live_server, change)
    expect(page.locator("#id_credential_password")).to_have_value("")
    screenshot(page, "channel-change")
    page.click("text=Send test")

    page.fill("#id_address", "ann@example.com")
    page.fill("#id_title", "Admin test")
    page.click("input[type=submit]")
    expect(page.locator("#send-test-result")).to_have_attribute("data-outcome", "sent")
    expect(page.locator(".messagelist")).to_contain_text("Sent. Provider message id:")
    screenshot(page, "channel-send-test")
    [mail] = smtp_server.mails
    assert mail.rcpt_tos == ["ann@example.com"]
    assert mail.message["Subject"] == "Admin test"

    smtp_server.reject_recipient("gone@example.com")
    page.fill("#id_address", "gone@example.com")
    page.click("input[type=submit]")
    expect(page.locator("#send-test-result")).to_have_attribute(
        "data-outcome", "invalid_address"
    )
    screenshot(page, "channel-send-test-rejected")
    assert len(smtp_server.mails) == 1
