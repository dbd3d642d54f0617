"""Click redirects in SMS bodies and WeChat template messages, through the fakes."""
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import pytest
from django.test import Client

from analytics.models import EngagementEvent, HourlyStat
from channels_app.models import Channel, Contact
from preferences.links import read_link
from preferences.models import UserProfile
from sharestack_push.notifications.models import NotificationType, PushRecord
from tests.fakes.twilio import FakeTwilio
from tests.fakes.wechat import FakeWeChat

PUBLIC_BASE = "https://push.sharestack.example"
SENT_AT = datetime(2026, 6, 10, 4, tzinfo=UTC)
PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148"
SALE_URL = "https://shop.example.com/sale/summer-2026?utm_source=sms&utm_campaign=summer"
REDIRECT = re.compile(re.escape(PUBLIC_BASE) + r"/c/[A-Za-z0-9_-]+")


@pytest.fixture
def twilio(db, settings):
    settings.PUSH_PUBLIC_BASE_URL = PUBLIC_BASE
    with FakeTwilio() as fake:
        Channel.objects.create(
            name="twilio", kind="sms", provider="twilio",
            config={"from_number": "+15005550006", "base_url": fake.base_url},
            credentials={"account_sid": fake.account_sid, "auth_token": fake.auth_token},
        )
        UserProfile.objects.get_or_create(user_id="li")
        Contact.objects.create(user_id="li", kind="phone", address="+14155550100")
        yield fake


def push_sms(post_push, frozen_clock, body: str, **extra) -> PushRecord:
    frozen_clock.set(SENT_AT)
    response = post_push(notification_id=f"sms-{uuid.uuid4().hex}", user_id="li",
                         channels=["sms"], content={"title": "", "body": body}, **extra)
    assert response.status_code == 202
    return PushRecord.objects.get()


def test_sms_link_is_short_and_redirects(twilio, post_push, frozen_clock):
    body = f"Summer sale: {SALE_URL}. Ends Sunday."
    record = push_sms(post_push, frozen_clock, body)
    [message] = twilio.messages

    [link] = REDIRECT.findall(message["body"])
    assert message["body"] == f"Summer sale: {link}. Ends Sunday."
    token = link.removeprefix(f"{PUBLIC_BASE}/c/")
    # The link is the base URL, "/c/" and a 16-character token at most.
    assert len(token) <= 16
    added = len(message["body"]) - len(body)
    assert added == len(PUBLIC_BASE) + 3 + len(token) - len(SALE_URL)
    assert added < 0

    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    response = Client().get(urlsplit(link).path, HTTP_USER_AGENT=PHONE_BROWSER)

    assert response.status_code == 302
    assert response["Location"] == SALE_URL
    record.refresh_from_db()
    assert record.status == "clicked"
    assert HourlyStat.objects.get().clicked == 1


# (text before the link, the URL, text after it): the URL must end where the text does.
SMS_LINK_BODIES = [
    ("订单已发货，详情见", "https://shop.example.com/o/7", "，谢谢光临。"),
    ("详情：", "https://shop.example.com/o/7?from=sms&id=8", "。"),
    ("点击", "https://shop.example.com/o/7", "查看订单"),
    ("（详情见", "https://shop.example.com/o/7", "）请查收！"),
    ("活动链接「", "https://shop.example.com/s", "」今晚截止；"),
    ("【商城】优惠券", "https://shop.example.com/c#top", "、满减券均可用？"),
    ("Order shipped (see ", "https://shop.example.com/o/7", "). Thanks!"),
    ("Wiki: ", "https://en.example.org/wiki/Rust_(language)", ", read it."),
    ("Is it ", "https://shop.example.com/o/7", "?!"),
    ("Open ", "https://shop.example.com/o/7;v=2", ": now"),
    ("[", "https://shop.example.com/list[1]", "]"),
    ("Track ", "https://shop.example.com/o/7%E8%AE%A2", " today"),
]


@pytest.mark.parametrize(("before", "url", "after"), SMS_LINK_BODIES)
def test_sms_link_ends_with_url(twilio, post_push, frozen_clock, before, url, after):
    push_sms(post_push, frozen_clock, before + url + after)
    [message] = twilio.messages
    [link] = REDIRECT.findall(message["body"])

    assert message["body"] == before + link + after

    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    response = Client().get(urlsplit(link).path, HTTP_USER_AGENT=PHONE_BROWSER)
    assert response["Location"] == url


def test_sms_bare_scheme_is_kept(twilio, post_push, frozen_clock):
    body = "请用 https:// 开头的地址，或 http://[bad 这样的不算。"
    push_sms(post_push, frozen_clock, body)
    [message] = twilio.messages

    assert message["body"] == body


def test_sms_link_preview_is_machine(twilio, post_push, frozen_clock):
    record = push_sms(post_push, frozen_clock, f"Sale {SALE_URL}")
    [message] = twilio.messages
    [link] = REDIRECT.findall(message["body"])
    frozen_clock.set(SENT_AT + timedelta(minutes=10))

    Client().get(urlsplit(link).path,
                 HTTP_USER_AGENT="facebookexternalhit/1.1 Facebot Twitterbot/1.0")

    record.refresh_from_db()
    assert record.clicked_at is None
    assert HourlyStat.objects.get().machine_clicked == 1


def test_sms_preference_link_carries_no_record(twilio, post_push, frozen_clock):
    NotificationType.objects.create(key="promo", category="marketing")
    push_sms(post_push, frozen_clock, "Sale today", notification_type="promo")
    [message] = twilio.messages

    [token] = re.findall(r"/preferences/\?token=([^\s]+)", message["body"])

    assert read_link(unquote(token)) == ("li", None)


def test_sms_tracking_option_off(twilio, post_push, frozen_clock):
    push_sms(post_push, frozen_clock, f"Sale {SALE_URL}",
             options={"sms": {"tracking": False}})
    [message] = twilio.messages
    assert message["body"] == f"Sale {SALE_URL}"


def test_tracking_option_must_be_boolean(twilio, push_client):
    response = push_client.post(
        "/api/v1/notifications/push",
        {"notification_id": "bad", "notification_type": "order", "user_id": "li",
         "channels": ["sms"], "content": {"title": "", "body": "x"},
         "options": {"sms": {"tracking": "no"}}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"options.sms.tracking": ["Must be true or false."]}


def test_channel_tracking_config_must_be_boolean(admin_client, db):
    response = admin_client.post(
        "/api/v1/channels",
        {"name": "c", "kind": "email", "provider": "console", "config": {"tracking": 1}},
        format="json",
    )
    assert response.status_code == 400
    assert "config.tracking" in response.json()["error"]["fields"]


APP_ID = "wxtracking00000001"
SECRET = "tracking-secret-" + uuid.uuid4().hex
TEMPLATE = "tpl-order-update"
MINI_PROGRAM = {"appid": "wxmini000000001", "pagepath": "pages/order?id=7"}


@pytest.fixture
def wechat(db, settings):
    settings.PUSH_PUBLIC_BASE_URL = PUBLIC_BASE
    with FakeWeChat() as fake:
        fake.add_official_account(APP_ID, SECRET, {TEMPLATE})
        Channel.objects.create(
            name="wechat-oa", kind="wechat", provider="wechat_template",
            config={"app_id": APP_ID, "base_url": fake.base_url, "template_id": TEMPLATE},
            credentials={"app_secret": SECRET},
        )
        UserProfile.objects.get_or_create(user_id="li")
        Contact.objects.create(user_id="li", kind="wechat_openid", address="openid-li")
        yield fake


def test_wechat_template_url_is_rewritten(wechat, post_push, frozen_clock):
    frozen_clock.set(SENT_AT)
    post_push(notification_id="wx-1", user_id="li", channels=["wechat"],
              options={"wechat": {"url": SALE_URL, "miniprogram": MINI_PROGRAM}})
    [request] = wechat.requests_to("/cgi-bin/message/template/send")
    record = PushRecord.objects.get()

    assert REDIRECT.fullmatch(request.body["url"])
    assert request.body["miniprogram"] == MINI_PROGRAM

    frozen_clock.set(SENT_AT + timedelta(minutes=10))
    response = Client().get(urlsplit(request.body["url"]).path,
                            HTTP_USER_AGENT=PHONE_BROWSER)
    assert response["Location"] == SALE_URL
    record.refresh_from_db()
    assert record.clicked_at == SENT_AT + timedelta(minutes=10)
    assert EngagementEvent.objects.get().source == "redirect"
