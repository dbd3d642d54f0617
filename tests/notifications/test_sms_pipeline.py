"""SMS end to end: push API, pipeline and each SMS provider's fake server."""

from datetime import UTC, datetime

import pytest

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import PushRecord
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.fakes.sns import FakeSns
from tests.fakes.tencent_sms import FakeTencentSms
from tests.fakes.twilio import FakeTwilio

NUMBER = "+8613800000001"
SENT_AT = datetime(2026, 6, 10, 4, tzinfo=UTC)


def add_phone_user(user_id: str, address: str) -> Contact:
    UserProfile.objects.get_or_create(user_id=user_id)
    return Contact.objects.create(user_id=user_id, kind="phone", address=address)


@pytest.fixture
def push_sms(frozen_clock, post_push):
    frozen_clock.set(SENT_AT)

    def push(**body):
        response = post_push(
            notification_id="sms-1",
            user_id="li",
            channels=["sms"],
            content={"title": "", "body": "Your order has shipped"},
            **body,
        )
        assert response.status_code == 202
        return PushRecord.objects.get()

    return push


def test_aliyun_sms_delivers(db, push_sms):
    with FakeAliyunSms() as fake:
        Channel.objects.create(
            name="aliyun",
            kind="sms",
            provider="aliyun_sms",
            config={
                "sign_name": "分享栈",
                "template_code": "SMS_100001",
                "base_url": fake.base_url,
            },
            credentials={
                "access_key_id": fake.access_key_id,
                "access_key_secret": fake.access_key_secret,
            },
        )
        add_phone_user("li", NUMBER)

        record = push_sms()

        [delivery] = fake.deliveries
    assert delivery.number == "13800000001"
    assert delivery.template_code == "SMS_100001"
    assert record.status == "sent"
    assert record.provider_message_id == delivery.biz_id


def test_tencent_sms_delivers(db, push_sms):
    with FakeTencentSms() as fake:
        fake.templates["500002"] = "您的订单已发货。"
        Channel.objects.create(
            name="tencent",
            kind="sms",
            provider="tencent_sms",
            config={
                "sms_sdk_app_id": fake.sms_sdk_app_id,
                "sign_name": "分享栈",
                "template_id": "500002",
                "base_url": fake.base_url,
            },
            credentials={"secret_id": fake.secret_id, "secret_key": fake.secret_key},
        )
        add_phone_user("li", NUMBER)

        record = push_sms()

        [delivery] = fake.deliveries
    assert delivery.number == NUMBER
    assert delivery.text == "【分享栈】您的订单已发货。"
    assert record.status == "sent"
    assert record.provider_message_id == delivery.serial_no


def test_twilio_delivers_and_takes_status(db, push_sms, client, settings):
    settings.PUSH_PUBLIC_BASE_URL = "https://push.sharestack.example"
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
        add_phone_user("li", "+14155550100")

        record = push_sms()

        [message] = fake.messages
        path = f"/api/v1/callbacks/{channel.pk}"
        form = fake.status_callback(message["sid"], "delivered")
        response = client.post(
            path,
            form,
            HTTP_X_TWILIO_SIGNATURE=fake.signature(message["status_callback"], form),
        )
    assert message["body"] == "Your order has shipped"
    assert message["status_callback"] == "https://push.sharestack.example" + path
    assert record.status == "sent"
    assert response.status_code == 200
    record.refresh_from_db()
    assert record.status == "delivered"


def test_sns_delivers(db, push_sms):
    with FakeSns() as fake:
        Channel.objects.create(
            name="sns",
            kind="sms",
            provider="sns",
            config={"region": fake.region, "base_url": fake.base_url},
            credentials={
                "access_key_id": fake.access_key_id,
                "secret_access_key": fake.secret_access_key,
            },
        )
        add_phone_user("li", "+14155550100")

        record = push_sms()

        [publication] = fake.publications
    assert publication.phone_number == "+14155550100"
    assert publication.message == "Your order has shipped"
    assert record.status == "sent"
    assert record.provider_message_id == publication.message_id


def test_invalid_number_deactivates_contact(db, push_sms):
    with FakeTencentSms() as fake:
        fake.templates["500002"] = "您的订单已发货。"
        fake.script(NUMBER, "InvalidParameterValue.IncorrectPhoneNumber")
        Channel.objects.create(
            name="tencent",
            kind="sms",
            provider="tencent_sms",
            config={
                "sms_sdk_app_id": fake.sms_sdk_app_id,
                "sign_name": "分享栈",
                "template_id": "500002",
                "base_url": fake.base_url,
            },
            credentials={"secret_id": fake.secret_id, "secret_key": fake.secret_key},
        )
        contact = add_phone_user("li", NUMBER)

        record = push_sms()

    assert record.status == "failed"
    assert record.reason == "invalid_address"
    contact.refresh_from_db()
    assert contact.is_active is False


def aliyun_channel(fake) -> Channel:
    return Channel.objects.create(
        name="aliyun", kind="sms", provider="aliyun_sms",
        config={"sign_name": "分享栈", "template_code": "SMS_100001", "base_url": fake.base_url},
        credentials={"access_key_id": fake.access_key_id,
                     "access_key_secret": fake.access_key_secret},
    )


def test_aliyun_number_limit_defers_that_number(db, push_sms, frozen_clock, beat_tick):
    with FakeAliyunSms() as fake:
        aliyun_channel(fake)
        contact = add_phone_user("li", NUMBER)
        fake.script("13800000001", "isv.BUSINESS_LIMIT_CONTROL")

        record = push_sms()

        assert (record.status, record.reason) == ("deferred", "isv.BUSINESS_LIMIT_CONTROL")
        assert record.attempts == 0
        assert record.next_attempt_at > SENT_AT
        contact.refresh_from_db()
        assert contact.is_active is True

        frozen_clock.set(record.next_attempt_at)
        beat_tick()
        record.refresh_from_db()
        [delivery] = fake.deliveries
    assert (record.status, record.attempts) == ("sent", 1)
    assert record.provider_message_id == delivery.biz_id
