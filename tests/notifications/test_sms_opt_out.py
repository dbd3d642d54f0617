"""SMS replies end to end: a STOP or 退订 reply, then pushes through the pipeline.

Replies arrive at the channel's callback endpoint through the Django test client,
signed or tokened as the provider does. Pushes then go through the push API, the
fan-out and the adapter to the provider's fake server.
"""

import json
from datetime import UTC, datetime, time, timedelta

import pytest

from channels_app.models import Channel, Contact
from preferences.models import UserProfile, UserPushPreference
from preferences.sms_opt_out import Keyword, reply_keyword
from sharestack_push.notifications.models import NotificationType, PushRecord
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.fakes.tencent_sms import FakeTencentSms
from tests.fakes.twilio import FakeTwilio

PUBLIC_BASE = "https://push.sharestack.example"
US_NUMBER = "+14155550100"
CN_NUMBER = "+8613800000001"
NOON = datetime(2026, 6, 10, 12, tzinfo=UTC)


@pytest.fixture
def types(db):
    NotificationType.objects.create(key="promo", category="marketing")
    NotificationType.objects.create(key="login_code", category="transactional")


@pytest.fixture
def push_sms(frozen_clock, post_push, types):
    """Push one SMS to user li and return its record."""
    frozen_clock.set(NOON)
    pushes = iter(range(1, 100))

    def push(notification_type: str, body: str = "Sale today") -> PushRecord:
        notification_id = f"sms-{next(pushes)}"
        response = post_push(
            notification_id=notification_id,
            notification_type=notification_type,
            user_id="li",
            channels=["sms"],
            content={"title": "", "body": body},
        )
        assert response.status_code == 202
        return PushRecord.objects.get(task__notification_id=notification_id)

    return push


def add_phone(user_id: str, address: str) -> Contact:
    UserProfile.objects.get_or_create(user_id=user_id)
    return Contact.objects.create(user_id=user_id, kind="phone", address=address)


def profile(user_id: str = "li") -> UserProfile:
    return UserProfile.objects.get(user_id=user_id)


# Twilio


@pytest.fixture
def twilio(db, settings):
    settings.PUSH_PUBLIC_BASE_URL = PUBLIC_BASE
    with FakeTwilio() as fake:
        channel = Channel.objects.create(
            name="twilio",
            kind="sms",
            provider="twilio",
            config={"from_number": "+15005550006", "base_url": fake.base_url},
            credentials={
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
            },
        )
        fake.channel = channel
        yield fake


def text_twilio(client, fake, body: str, sender: str = US_NUMBER, signature=None):
    """Post an incoming message to the channel, as Twilio's webhook does."""
    path = f"/api/v1/callbacks/{fake.channel.pk}"
    form = fake.incoming_message(sender, body)
    signature = signature or fake.signature(PUBLIC_BASE + path, form)
    return client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature)


def test_stop_suppresses_marketing_sms(client, twilio, push_sms):
    add_phone("li", US_NUMBER)

    response = text_twilio(client, twilio, "STOP")
    record = push_sms("promo")

    assert response.status_code == 200
    assert (record.status, record.reason) == ("suppressed", "sms_opted_out")
    assert twilio.messages == []


def test_stop_keeps_transactional_sms(client, twilio, push_sms):
    # An account whose STOP filtering Twilio support turned off.
    twilio.stop_filtering = False
    add_phone("li", US_NUMBER)

    text_twilio(client, twilio, "STOP")
    record = push_sms("login_code", "Your code is 123456")

    assert record.status == "sent"
    [message] = twilio.messages
    assert message["body"] == "Your code is 123456"


def test_start_sends_marketing_again(client, twilio, push_sms):
    add_phone("li", US_NUMBER)
    UserProfile.objects.filter(user_id="li").update(locale="en-US")
    text_twilio(client, twilio, "STOP")

    text_twilio(client, twilio, "START")
    record = push_sms("promo")

    assert record.status == "sent"
    [message] = twilio.messages
    assert message["body"].startswith("Sale today")
    assert "/preferences/?token=" in message["body"]
    assert message["body"].endswith("\nReply STOP to opt out")


def test_stop_covers_types_created_later(client, twilio, push_sms):
    add_phone("li", US_NUMBER)
    text_twilio(client, twilio, "stop")
    NotificationType.objects.create(key="flash_sale", category="marketing")

    record = push_sms("flash_sale")

    assert (record.status, record.reason) == ("suppressed", "sms_opted_out")
    assert not UserPushPreference.objects.filter(
        notification_type="flash_sale"
    ).exists()
    assert twilio.messages == []


def test_stop_writes_preference_rows(client, twilio, types):
    add_phone("li", US_NUMBER)

    text_twilio(client, twilio, "UNSUBSCRIBE")

    rows = UserPushPreference.objects.filter(user_id="li")
    assert [(row.notification_type, row.channel, row.is_enabled) for row in rows] == [
        ("promo", "sms", False)
    ]


def test_stop_reaches_every_user_of_the_number(client, twilio, types):
    add_phone("li", US_NUMBER)
    add_phone("wang", US_NUMBER)

    text_twilio(client, twilio, "QUIT")

    assert profile("li").marketing_sms_opt_out is True
    assert profile("wang").marketing_sms_opt_out is True


def test_bad_signature_changes_nothing(client, twilio, push_sms):
    add_phone("li", US_NUMBER)
    twilio.stop_filtering = False

    response = text_twilio(client, twilio, "STOP", signature="bm90IGEgc2lnbmF0dXJl")
    record = push_sms("promo")

    assert response.status_code == 403
    assert profile().marketing_sms_opt_out is False
    assert record.status == "sent"


def test_unknown_number_is_logged(client, twilio, types, caplog):
    add_phone("li", US_NUMBER)
    caplog.set_level("INFO", logger="preferences.sms_opt_out")

    response = text_twilio(client, twilio, "STOP", sender="+14155550199")

    assert response.status_code == 200
    assert "opt_out reply on channel" in caplog.text
    assert "without an active phone contact" in caplog.text
    assert profile().marketing_sms_opt_out is False


def test_inactive_contact_is_not_opted_out(client, twilio, types):
    contact = add_phone("li", US_NUMBER)
    contact.is_active = False
    contact.save()

    text_twilio(client, twilio, "STOP")

    assert profile().marketing_sms_opt_out is False


def test_twilio_21610_opts_out_keeps_contact(twilio, push_sms):
    # The number replied STOP to Twilio, but the reply never reached our webhook.
    contact = add_phone("li", US_NUMBER)
    twilio.opted_out.add(US_NUMBER)

    record = push_sms("promo")

    assert (record.status, record.reason) == ("failed", "sms_opted_out")
    assert record.error_message.startswith("21610")
    contact.refresh_from_db()
    assert contact.is_active is True
    assert profile().marketing_sms_opt_out is True
    assert (
        UserPushPreference.objects.get(
            user_id="li", notification_type="promo"
        ).is_enabled
        is False
    )


def test_marketing_after_21610_is_suppressed(twilio, push_sms):
    add_phone("li", US_NUMBER)
    twilio.opted_out.add(US_NUMBER)
    push_sms("promo")
    requests_before = len(twilio.requests)

    record = push_sms("promo")

    assert (record.status, record.reason) == ("suppressed", "sms_opted_out")
    assert len(twilio.requests) == requests_before


def test_transactional_21610_then_start(client, twilio, push_sms):
    contact = add_phone("li", US_NUMBER)
    text_twilio(client, twilio, "STOP")

    rejected = push_sms("login_code", "Your code is 123456")
    text_twilio(client, twilio, "START")
    sent = push_sms("login_code", "Your code is 654321")

    assert (rejected.status, rejected.reason) == ("failed", "sms_opted_out")
    contact.refresh_from_db()
    assert contact.is_active is True
    assert sent.status == "sent"
    assert profile().marketing_sms_opt_out is False


def test_deferred_marketing_is_suppressed_at_release(
    client, twilio, push_sms, frozen_clock, beat_tick
):
    add_phone("li", US_NUMBER)
    UserProfile.objects.filter(user_id="li").update(
        timezone="UTC", quiet_hours_start=time(11), quiet_hours_end=time(13)
    )
    record = push_sms("promo")
    assert (record.status, record.reason) == ("deferred", "quiet_hours")

    text_twilio(client, twilio, "STOP")
    frozen_clock.set(NOON + timedelta(hours=1))
    beat_tick()

    record.refresh_from_db()
    assert (record.status, record.reason) == ("suppressed", "sms_opted_out")
    assert twilio.messages == []


# Aliyun SmsUp and Tencent reply callbacks


@pytest.fixture
def aliyun(db):
    with FakeAliyunSms() as fake:
        fake.channel = Channel.objects.create(
            name="aliyun",
            kind="sms",
            provider="aliyun_sms",
            config={
                "sign_name": "分享栈",
                "template_codes": {"promo": "SMS_200001", "login_code": "SMS_100001"},
                "base_url": fake.base_url,
            },
            credentials={
                "access_key_id": fake.access_key_id,
                "access_key_secret": fake.access_key_secret,
                "callback_token": "aliyun-token-1",
            },
        )
        yield fake


def push_to_aliyun(client, fake, items, token="aliyun-token-1"):
    return client.post(
        f"/api/v1/callbacks/{fake.channel.pk}?token={token}",
        json.dumps(items),
        content_type="application/json",
    )


@pytest.mark.parametrize("text", ["R", "退订", " td ", "ｔ", "退。"])
def test_aliyun_reply_suppresses_marketing(client, aliyun, push_sms, text):
    add_phone("li", CN_NUMBER)

    response = push_to_aliyun(client, aliyun, [aliyun.sms_up("13800000001", text)])
    record = push_sms("promo")

    assert response.status_code == 200
    assert (record.status, record.reason) == ("suppressed", "sms_opted_out")
    assert aliyun.deliveries == []


def test_aliyun_reply_keeps_verification_codes(client, aliyun, push_sms):
    add_phone("li", CN_NUMBER)

    push_to_aliyun(client, aliyun, [aliyun.sms_up("13800000001", "退订")])
    record = push_sms("login_code", "123456")

    assert record.status == "sent"
    [delivery] = aliyun.deliveries
    assert delivery.template_code == "SMS_100001"


def test_aliyun_wrong_token_changes_nothing(client, aliyun, push_sms):
    add_phone("li", CN_NUMBER)

    response = push_to_aliyun(
        client, aliyun, [aliyun.sms_up("13800000001", "R")], token="guess"
    )
    record = push_sms("promo")

    assert response.status_code == 403
    assert profile().marketing_sms_opt_out is False
    assert record.status == "sent"


def test_aliyun_retried_stop_after_start_is_ignored(client, aliyun, push_sms):
    add_phone("li", CN_NUMBER)
    stop = aliyun.sms_up("13800000001", "退订", send_time="2026-06-10 19:00:00")
    start = aliyun.sms_up("13800000001", "START", send_time="2026-06-10 19:05:00")
    push_to_aliyun(client, aliyun, [stop])
    push_to_aliyun(client, aliyun, [start])

    # Aliyun retries a push that timed out, so the STOP arrives a second time.
    push_to_aliyun(client, aliyun, [stop])
    record = push_sms("promo")

    assert profile().marketing_sms_opt_out is False
    assert record.status == "sent"


def test_aliyun_batch_applies_in_send_order(client, aliyun, types):
    add_phone("li", CN_NUMBER)
    later = aliyun.sms_up("13800000001", "R", send_time="2026-06-10 19:05:00")
    earlier = aliyun.sms_up("13800000001", "START", send_time="2026-06-10 19:00:00")

    push_to_aliyun(client, aliyun, [later, earlier])

    assert profile().marketing_sms_opt_out is True


@pytest.fixture
def tencent(db):
    with FakeTencentSms() as fake:
        fake.templates["500001"] = "今日特价。拒收请回复R"
        fake.templates["500002"] = "您的验证码是{1}。"
        fake.channel = Channel.objects.create(
            name="tencent",
            kind="sms",
            provider="tencent_sms",
            config={
                "sms_sdk_app_id": fake.sms_sdk_app_id,
                "sign_name": "分享栈",
                "template_ids": {"promo": "500001", "login_code": "500002"},
                "param_order": {"500002": ["code"]},
                "base_url": fake.base_url,
            },
            credentials={
                "secret_id": fake.secret_id,
                "secret_key": fake.secret_key,
                "callback_token": "tencent-token-1",
            },
        )
        yield fake


def reply_to_tencent(client, fake, body, token="tencent-token-1"):
    return client.post(
        f"/api/v1/callbacks/{fake.channel.pk}?token={token}",
        json.dumps(body),
        content_type="application/json",
    )


def test_tencent_reply_suppresses_marketing(client, tencent, push_sms):
    add_phone("li", CN_NUMBER)

    response = reply_to_tencent(client, tencent, tencent.reply("13800000001", "TD"))
    record = push_sms("promo")

    assert response.status_code == 200
    assert (record.status, record.reason) == ("suppressed", "sms_opted_out")
    assert tencent.deliveries == []


def test_tencent_reply_keeps_verification_codes(client, tencent, push_sms, post_push):
    add_phone("li", CN_NUMBER)
    reply_to_tencent(client, tencent, tencent.reply("13800000001", "退订"))

    response = post_push(
        notification_id="code-1",
        notification_type="login_code",
        user_id="li",
        channels=["sms"],
        content={"title": "", "body": "Your code is {{ code }}"},
        variables={"code": "123456"},
    )

    assert response.status_code == 202
    record = PushRecord.objects.get(task__notification_id="code-1")
    assert record.status == "sent"
    [delivery] = tencent.deliveries
    assert delivery.text == "【分享栈】您的验证码是123456。"


def test_tencent_start_sends_marketing_again(client, tencent, push_sms):
    add_phone("li", CN_NUMBER)
    reply_to_tencent(
        client, tencent, tencent.reply("13800000001", "TD", sent=1781064000)
    )

    reply_to_tencent(
        client, tencent, tencent.reply("13800000001", "START", sent=1781064060)
    )
    record = push_sms("promo")

    assert record.status == "sent"
    [delivery] = tencent.deliveries
    assert delivery.template_id == "500001"


def test_tencent_wrong_token_changes_nothing(client, tencent, types):
    add_phone("li", CN_NUMBER)

    response = reply_to_tencent(
        client, tencent, tencent.reply("13800000001", "TD"), token="guess"
    )

    assert response.status_code == 403
    assert profile().marketing_sms_opt_out is False
    assert not UserPushPreference.objects.exists()


def test_tencent_unknown_number_answers_200(client, tencent, types, caplog):
    caplog.set_level("INFO", logger="preferences.sms_opt_out")

    response = reply_to_tencent(client, tencent, tencent.reply("13900000009", "TD"))

    assert response.status_code == 200
    assert "without an active phone contact" in caplog.text


# Keywords


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOP ALL",
        "stopall",
        "UNSUBSCRIBE",
        "Cancel",
        "end",
        "QUIT",
        "revoke",
        "OPTOUT",
        "退订",
        "退订。",
        "退",
        "TD",
        "td",
        "T",
        "N",
        "R",
        "r",
        "ＳＴＯＰ",
        "Ｒ",
        "\u3000退订\u3000",
    ],
)
def test_opt_out_keywords(text):
    assert reply_keyword(text) == Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["START", "start", "Unstop", "YES", " yes! "])
def test_opt_in_keywords(text):
    assert reply_keyword(text) == Keyword.OPT_IN


@pytest.mark.parametrize(
    "text", ["", "please stop", "STOP PLEASE", "stopped", "谢谢", "TDD", "RR", "1"]
)
def test_other_text_is_no_keyword(text):
    assert reply_keyword(text) is None
