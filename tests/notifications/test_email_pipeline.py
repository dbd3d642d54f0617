"""Email end to end: API, pipeline and SMTP delivery to a real aiosmtpd server."""
from datetime import datetime, timezone

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import PushRecord
from templates.models import PushTemplate

EMAIL_TEMPLATE = {
    "name": "order_shipped",
    "channel": "email",
    "title_template": "订单 {{ order_id }} 已发货",
    "content_template": "{{ name }}，您好：您的订单 {{ order_id }} 已发货。",
    "variables": ["order_id", "name"],
}


def smtp_channel(server, **credentials):
    return Channel.objects.create(
        name="smtp", kind="email", provider="smtp",
        config={"host": server.host, "port": server.port, "use_tls": False,
                "from_email": "noreply@sharestack.example"},
        credentials=credentials,
    )


def add_email_user(user_id: str, address: str) -> Contact:
    UserProfile.objects.get_or_create(user_id=user_id)
    return Contact.objects.create(user_id=user_id, kind="email", address=address)


def test_email_arrives_with_rendered_subject_and_body(smtp_server, frozen_clock, post_push):
    smtp_channel(smtp_server)
    add_email_user("li", "li@example.com")
    PushTemplate.objects.create(**EMAIL_TEMPLATE)
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=timezone.utc))

    response = post_push(notification_id="mail-1", user_id="li", channels=["email"],
                         content=None, template="order_shipped",
                         variables={"order_id": "A-7", "name": "李雷"})
    assert response.status_code == 202

    [mail] = smtp_server.mails
    assert mail.rcpt_tos == ["li@example.com"]
    assert mail.mail_from == "noreply@sharestack.example"
    assert mail.message["Subject"] == "订单 A-7 已发货"
    content = mail.message.get_content().replace("\r\n", "\n")
    text, footer = content.split("\n\n-- \n")
    assert text == "李雷，您好：您的订单 A-7 已发货。"
    assert footer.startswith("管理通知设置：http://")
    record = PushRecord.objects.get()
    assert record.status == "sent"
    assert record.provider == "smtp"
    assert record.provider_message_id == mail.message["Message-ID"]


def test_rejected_mailbox_deactivates_contact(smtp_server, frozen_clock, post_push):
    smtp_channel(smtp_server)
    contact = add_email_user("li", "gone@example.com")
    smtp_server.reject_recipient("gone@example.com")
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=timezone.utc))

    post_push(notification_id="mail-1", user_id="li", channels=["email"])
    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.reason == "invalid_address"
    contact.refresh_from_db()
    assert contact.is_active is False
    assert smtp_server.mails == []


def test_email_and_app_in_one_task(smtp_server, fcm, frozen_clock, post_push):
    smtp_channel(smtp_server)
    add_email_user("li", "li@example.com")
    from tests.notifications.conftest import add_app_user

    add_app_user("li", "tok-li")
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=timezone.utc))
    post_push(notification_id="both", user_id="li", channels=["app", "email"])
    assert len(smtp_server.mails) == 1
    assert len(fcm.requests) == 1
    assert set(PushRecord.objects.values_list("channel_kind", "status")) == {
        ("app", "sent"), ("email", "sent")}
