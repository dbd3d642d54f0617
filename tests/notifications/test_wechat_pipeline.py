"""WeChat Official Account end to end: push API, pipeline, fake WeChat, and the
TEMPLATESENDJOBFINISH callback through the callback endpoint."""
import base64
import hashlib
import os
import time
import uuid
from datetime import datetime, timezone

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from channels_app.models import Channel, Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import PushRecord
from tests.fakes.wechat import FakeWeChat

APP_ID = "wxpipeline00000001"
SECRET = "pipeline-secret-" + uuid.uuid4().hex
CALLBACK_TOKEN = "callback-token-" + uuid.uuid4().hex
TEMPLATE = "tpl-order-update"
SEND_PATH = "/cgi-bin/message/template/send"


@pytest.fixture(scope="module")
def wechat_server():
    with FakeWeChat() as fake:
        fake.add_official_account(APP_ID, SECRET, {TEMPLATE})
        yield fake


@pytest.fixture
def wechat(wechat_server, db):
    """The fake WeChat API with a fresh request log."""
    wechat_server.clear_requests()
    return wechat_server


@pytest.fixture
def channel(wechat):
    """An enabled Official Account template channel aimed at the fake."""
    return Channel.objects.create(
        name="wechat-oa", kind="wechat", provider="wechat_template",
        config={"app_id": APP_ID, "base_url": wechat.base_url, "template_id": TEMPLATE},
        credentials={"app_secret": SECRET, "callback_token": CALLBACK_TOKEN},
    )


def add_wechat_user(user_id: str, openid: str) -> Contact:
    UserProfile.objects.get_or_create(user_id=user_id)
    return Contact.objects.create(user_id=user_id, kind="wechat_openid", address=openid)


@pytest.fixture
def sent_record(channel, frozen_clock, post_push):
    add_wechat_user("li", "openid-li")
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=timezone.utc))
    response = post_push(notification_id=f"wx-{uuid.uuid4().hex}", user_id="li",
                         channels=["wechat"])
    assert response.status_code == 202
    return PushRecord.objects.get()


def test_template_message_reaches_wechat(sent_record, wechat):
    [request] = wechat.requests_to(SEND_PATH)
    assert request.body["touser"] == "openid-li"
    assert request.body["template_id"] == TEMPLATE
    assert sent_record.status == "sent"
    assert sent_record.provider == "wechat_template"
    assert sent_record.provider_message_id.isdigit()


def test_variables_become_template_data(wechat, channel, frozen_clock, post_push):
    add_wechat_user("li", "openid-li")
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=timezone.utc))

    post_push(notification_id="wx-vars", user_id="li", channels=["wechat"],
              variables={"order_id": "A-7"})

    [request] = wechat.requests_to(SEND_PATH)
    assert request.body["data"] == {"order_id": {"value": "A-7"}}


def test_unfollowed_user_deactivates_contact(wechat, channel, frozen_clock, post_push):
    contact = add_wechat_user("li", "openid-gone")
    wechat.script("openid-gone", 43004)
    frozen_clock.set(datetime(2026, 6, 10, 4, tzinfo=timezone.utc))

    post_push(notification_id="wx-gone", user_id="li", channels=["wechat"])

    record = PushRecord.objects.get()
    assert record.status == "failed"
    assert record.reason == "invalid_address"
    contact.refresh_from_db()
    assert contact.is_active is False


# The TEMPLATESENDJOBFINISH callback


def signed_query(token: str = CALLBACK_TOKEN, timestamp: str = "", nonce: str = "",
                 **extra: str) -> str:
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or uuid.uuid4().hex[:10]
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    params = {"signature": signature, "timestamp": timestamp, "nonce": nonce, **extra}
    return "&".join(f"{name}={value}" for name, value in params.items())


def job_finished(msgid: str, status: str, openid: str = "openid-li") -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        "<CreateTime>1781064000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>"
        f"<MsgID>{msgid}</MsgID><Status><![CDATA[{status}]]></Status></xml>"
    ).encode()


def post_callback(client, channel, body: bytes, query: str):
    return client.post(f"/api/v1/callbacks/{channel.pk}?{query}", data=body,
                       content_type="text/xml")


def test_success_status_marks_delivered(client, sent_record, channel):
    response = post_callback(client, channel,
                             job_finished(sent_record.provider_message_id, "success"),
                             signed_query())

    assert response.status_code == 200
    assert response.content == b"success"
    sent_record.refresh_from_db()
    assert sent_record.status == "delivered"
    assert sent_record.delivered_at == datetime.fromtimestamp(1781064000, tz=timezone.utc)


def test_user_block_fails_and_deactivates(client, sent_record, channel):
    post_callback(client, channel,
                  job_finished(sent_record.provider_message_id, "failed:user block"),
                  signed_query())

    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert sent_record.reason == "invalid_address"
    assert Contact.objects.get(address="openid-li").is_active is False


def test_system_failure_fails_without_deactivating(client, sent_record, channel):
    post_callback(client, channel,
                  job_finished(sent_record.provider_message_id, "failed: system failed"),
                  signed_query())

    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert sent_record.reason == "undelivered"
    assert Contact.objects.get(address="openid-li").is_active is True


def test_bad_signature_rejected_and_nothing_changes(client, sent_record, channel):
    response = post_callback(client, channel,
                             job_finished(sent_record.provider_message_id, "success"),
                             signed_query(token="someone-else"))

    assert response.status_code == 403
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_unknown_msgid_answered_success(client, sent_record, channel):
    response = post_callback(client, channel, job_finished("1234567", "success"),
                             signed_query())

    assert response.status_code == 200
    assert response.content == b"success"
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_other_events_answered_success(client, channel):
    body = (b"<xml><ToUserName>gh_1</ToUserName><FromUserName>openid-li</FromUserName>"
            b"<CreateTime>1781064000</CreateTime><MsgType>event</MsgType>"
            b"<Event>subscribe</Event></xml>")

    response = post_callback(client, channel, body, signed_query())

    assert response.status_code == 200
    assert response.content == b"success"


def test_unreadable_body_answered_success(client, channel):
    response = post_callback(client, channel, b"<xml><Msg", signed_query())

    assert response.status_code == 200


def test_encrypted_callback_without_key_acknowledged(client, channel):
    body = b"<xml><ToUserName>gh_1</ToUserName><Encrypt>c2VjcmV0</Encrypt></xml>"

    response = post_callback(client, channel, body,
                             signed_query(encrypt_type="aes", msg_signature="x"))

    assert response.status_code == 200
    assert response.content == b"success"


@pytest.fixture
def aes_key():
    return base64.b64encode(os.urandom(32)).decode()[:43]


@pytest.fixture
def safe_mode_channel(channel, aes_key):
    channel.credentials = {"app_secret": SECRET, "callback_token": CALLBACK_TOKEN,
                           "callback_aes_key": aes_key}
    channel.save()
    return channel


def encrypted(body: bytes, aes_key: str, app_id: str = APP_ID) -> tuple[bytes, str]:
    """Encrypt a callback body as WeChat does in safe mode; return (body, query)."""
    nonce, timestamp = uuid.uuid4().hex[:10], str(int(time.time()))
    reply = WeChatCrypto(CALLBACK_TOKEN, aes_key, app_id).encrypt_message(
        body.decode(), nonce, timestamp)
    fields = xmltodict.parse(reply)["xml"]
    query = signed_query(timestamp=timestamp, nonce=nonce, encrypt_type="aes",
                         msg_signature=fields["MsgSignature"])
    wire_body = f"<xml><ToUserName>gh_1</ToUserName><Encrypt>{fields['Encrypt']}</Encrypt></xml>"
    return wire_body.encode(), query


def test_encrypted_callback_marks_delivered(client, sent_record, safe_mode_channel, aes_key):
    body, query = encrypted(job_finished(sent_record.provider_message_id, "success"), aes_key)

    response = post_callback(client, safe_mode_channel, body, query)

    assert response.status_code == 200
    sent_record.refresh_from_db()
    assert sent_record.status == "delivered"


def test_encrypted_callback_bad_msg_signature(client, sent_record, safe_mode_channel, aes_key):
    body, query = encrypted(job_finished(sent_record.provider_message_id, "success"), aes_key)
    query = query.replace("msg_signature=", "msg_signature=0")

    response = post_callback(client, safe_mode_channel, body, query)

    assert response.status_code == 403
    sent_record.refresh_from_db()
    assert sent_record.status == "sent"


def test_encrypted_callback_for_other_app(client, sent_record, safe_mode_channel, aes_key):
    body, query = encrypted(job_finished(sent_record.provider_message_id, "success"), aes_key,
                            app_id="wxsomeoneelse")

    response = post_callback(client, safe_mode_channel, body, query)

    assert response.status_code == 403


def test_server_verification_echoes_echostr(client, channel):
    response = client.get(f"/api/v1/callbacks/{channel.pk}?"
                          f"{signed_query(echostr='5837397818215477')}")

    assert response.status_code == 200
    assert response.content == b"5837397818215477"


def test_server_verification_with_bad_signature(client, channel):
    response = client.get(f"/api/v1/callbacks/{channel.pk}?"
                          f"{signed_query(token='wrong', echostr='5837397818215477')}")

    assert response.status_code == 403


def test_non_ascii_signature_rejected(client, channel):
    response = client.get(f"/api/v1/callbacks/{channel.pk}?signature=%E7%AD%BE&echostr=1")

    assert response.status_code == 403


def test_channel_without_callback_token_rejects(client, wechat):
    other = Channel.objects.create(
        name="wechat-oa-2", kind="wechat", provider="wechat_template",
        config={"app_id": APP_ID, "base_url": wechat.base_url},
        credentials={"app_secret": SECRET},
    )

    response = client.get(f"/api/v1/callbacks/{other.pk}?{signed_query(echostr='1')}")

    assert response.status_code == 403
