"""The preference-centre footer end to end: push API, pipeline, SMTP and Twilio fakes."""
from datetime import UTC, datetime

import pytest

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import NotificationType
from tests.fakes.twilio import FakeTwilio
from tests.preferences.test_footer import user_of

SENT_AT = datetime(2026, 6, 10, 4, tzinfo=UTC)


@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.PUSH_PUBLIC_BASE_URL = "https://push.example.com"


def test_marketing_sms_through_twilio_has_link(db, frozen_clock, post_push):
    NotificationType.objects.create(key="promo", category="marketing")
    UserProfile.objects.create(user_id="li", locale="en")
    Contact.objects.create(user_id="li", kind="phone", address="+14155550100")
    frozen_clock.set(SENT_AT)
    with FakeTwilio() as fake:
        Channel.objects.create(
            name="twilio", kind="sms", provider="twilio",
            config={"from_number": "+15005550006", "base_url": fake.base_url},
            credentials={"account_sid": fake.account_sid, "auth_token": fake.auth_token},
        )

        response = post_push(
            notification_id="promo-1", notification_type="promo", user_id="li",
            channels=["sms"], content={"title": "", "body": "Half price today"},
        )

    assert response.status_code == 202
    [message] = fake.messages
    assert message["body"].startswith("Half price today Manage notifications: https://")
    assert user_of(message["body"]) == "li"


def test_email_through_smtp_has_link(db, smtp_server, frozen_clock, post_push):
    UserProfile.objects.create(user_id="li", locale="zh-hans")
    Contact.objects.create(user_id="li", kind="email", address="li@example.com")
    Channel.objects.create(
        name="smtp", kind="email", provider="smtp",
        config={"host": smtp_server.host, "port": smtp_server.port, "use_tls": False,
                "from_email": "noreply@sharestack.example"},
        credentials={},
    )
    frozen_clock.set(SENT_AT)

    post_push(notification_id="mail-1", user_id="li", channels=["email"],
              content={"title": "Shipped", "body": "On its way",
                       "html": "<html><body><p>On its way</p></body></html>"})

    [mail] = smtp_server.mails
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert "管理通知设置：https://push.example.com/preferences/" in text
    assert user_of(text) == "li"
    assert user_of(html) == "li"
