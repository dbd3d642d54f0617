"""Every provider's send outcomes through the whole pipeline, as one table.

Each test posts a push, lets the dispatch and send jobs run in this process against
the provider's fake server, and checks the stored record and the address behind it.
A sent record keeps the message id that the fake issued. A retryable failure is sent
on the next attempt. Only an invalid address deactivates the device or contact.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels_app.models import Channel, Contact, Device
from preferences.models import UserProfile
from sharestack_push.notifications.models import PushRecord
from tests.fakes.aliyun_push import FakeAliyunPush
from tests.fakes.aliyun_sms import FakeAliyunSms
from tests.fakes.apns import FakeApns, device_token
from tests.fakes.fcm import FakeFcm
from tests.fakes.huawei import ILLEGAL_TOKEN, FakeHuawei
from tests.fakes.jpush import FakeJPush
from tests.fakes.mailgun import FakeMailgun
from tests.fakes.postmark import FakePostmark
from tests.fakes.smtp import RecordingSmtpServer
from tests.fakes.sns import FakeSns
from tests.fakes.tencent_sms import FakeTencentSms
from tests.fakes.tpns import FakeTpns
from tests.fakes.twilio import FakeTwilio
from tests.fakes.wechat import FakeWeChat
from tests.fakes.xiaomi import FakeXiaomi

START = datetime(2026, 6, 10, 4, tzinfo=UTC)
USER = "li"
SUCCESS, RETRYABLE, PERMANENT, INVALID_ADDRESS = (
    "success", "retryable", "permanent", "invalid_address")
SUBSCRIBE_PATH = "/cgi-bin/message/subscribe/send"
TEMPLATE_PATH = "/cgi-bin/message/template/send"

OFFICIAL_ACCOUNT_ID = "wxoutcomes00000001"
MINI_PROGRAM_ID = "wxoutcomes00000002"
CORP_ID = "wwoutcomes00000003"
AGENT_ID = 1000002
TEMPLATE = "tpl-order-update"
WECHAT_SECRET = "secret-" + uuid.uuid4().hex
ROBOT_KEY = str(uuid.uuid4())
TENCENT_TEMPLATE = "500002"


@dataclass(frozen=True)
class Harness:
    """How one provider's fake is started, scripted and read, and its channel built."""

    provider: str
    channel_kind: str
    # The Device platform for app push, the Contact kind for the others, or "robot"
    # for a channel that is itself the address.
    address_kind: str
    address: str
    start: Callable[[], AbstractContextManager[Any]]
    # Returns the channel's config and credentials for a running fake.
    settings: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]]
    # Returns the message id that the fake issued for the last accepted send.
    issued_id: Callable[[Any, PushRecord], str]
    # What the fake is scripted with to produce each failure outcome. None marks an
    # outcome that this provider cannot produce, with the reason in a comment.
    codes: dict[str, Any]
    # The record's reason after the retryable failure: the adapter's error code.
    retry_reason: str
    # The address in the form the fake receives, where the adapter rewrites it.
    wire_address: str = ""

    def script(self, fake: Any, outcome: str) -> None:
        code = self.codes[outcome]
        address = self.wire_address or self.address
        if isinstance(fake, RecordingSmtpServer):
            stage, reply = code
            reject = fake.reject_recipient if stage == "rcpt" else fake.reject_data
            reject(address, reply)
        else:
            fake.script(address, code)

    def heal(self, fake: Any) -> None:
        """Let the next send succeed where the fake repeats a failure until cleared."""
        if isinstance(fake, RecordingSmtpServer):
            fake.accept(self.wire_address or self.address)

    @property
    def channels(self) -> list[str]:
        return [self.provider] if self.address_kind == "robot" else [self.channel_kind]


def last_key(issued: dict[str, Any]) -> str:
    return list(issued)[-1]


def started(fake_class: type, **setup: Any) -> Callable[[], Any]:
    """Return a factory of fakes with some attributes set before the test starts them."""

    def build() -> Any:
        fake = fake_class()
        for name, value in setup.items():
            setattr(fake, name, value)
        return fake

    return build


def wechat(setup: Callable[[FakeWeChat], None]) -> Callable[[], FakeWeChat]:
    def build() -> FakeWeChat:
        fake = FakeWeChat()
        setup(fake)
        return fake

    return build


def tencent() -> FakeTencentSms:
    fake = FakeTencentSms()
    fake.templates[TENCENT_TEMPLATE] = "您的订单已发货。"
    return fake


HARNESSES = [
    Harness(
        provider="fcm", channel_kind="app", address_kind="android",
        address="fcm-token-li", start=lambda: FakeFcm(project_id="outcomes"),
        settings=lambda fake: (
            {"project_id": fake.project_id, "base_url": fake.base_url},
            {"service_account": fake.service_account}),
        issued_id=lambda fake, record: fake.message_names[-1],
        codes={RETRYABLE: "UNAVAILABLE", PERMANENT: "INVALID_ARGUMENT",
               INVALID_ADDRESS: "UNREGISTERED"},
        retry_reason="UNAVAILABLE",
    ),
    Harness(
        provider="apns", channel_kind="app", address_kind="ios",
        address=device_token(), start=FakeApns,
        settings=lambda fake: (
            {"team_id": fake.team_id, "key_id": fake.key_id, "bundle_id": fake.bundle_id,
             "base_url": fake.base_url, "ca_file": fake.ca_file},
            {"private_key": fake.private_key_pem}),
        issued_id=lambda fake, record: fake.requests[-1].headers["apns-id"],
        codes={RETRYABLE: "ServiceUnavailable", PERMANENT: "PayloadTooLarge",
               INVALID_ADDRESS: "Unregistered"},
        retry_reason="ServiceUnavailable",
    ),
    Harness(
        provider="huawei", channel_kind="app", address_kind="android",
        address="hw-token-li", start=FakeHuawei,
        settings=lambda fake: (fake.channel_config(), fake.channel_credentials()),
        issued_id=lambda fake, record: fake.requests[-1].request_id,
        codes={RETRYABLE: "http_503", PERMANENT: "80100016", INVALID_ADDRESS: ILLEGAL_TOKEN},
        retry_reason="503",
    ),
    Harness(
        provider="xiaomi", channel_kind="app", address_kind="android",
        address="regid-li", start=FakeXiaomi,
        settings=lambda fake: (
            {"package_name": fake.package_name, "base_url": fake.base_url},
            {"app_secret": fake.app_secret}),
        issued_id=lambda fake, record: last_key(fake.messages),
        codes={RETRYABLE: "10002", PERMANENT: "65009", INVALID_ADDRESS: "20301"},
        retry_reason="10002",
    ),
    Harness(
        provider="jpush", channel_kind="app", address_kind="android",
        address="jpush-registration-li", start=FakeJPush,
        settings=lambda fake: (
            {"app_key": fake.app_key, "base_url": fake.base_url},
            {"master_secret": fake.master_secret}),
        issued_id=lambda fake, record: last_key(fake.pushes),
        codes={RETRYABLE: "1000", PERMANENT: "1005", INVALID_ADDRESS: "1011"},
        retry_reason="1000",
    ),
    Harness(
        provider="aliyun_push", channel_kind="app", address_kind="android",
        address="aliyun-device-li", start=FakeAliyunPush,
        settings=lambda fake: (
            {"app_key": fake.app_key, "base_url": fake.base_url},
            {"access_key_id": fake.access_key_id,
             "access_key_secret": fake.access_key_secret}),
        issued_id=lambda fake, record: last_key(fake.pushes),
        codes={RETRYABLE: "ServiceUnavailable", PERMANENT: "InvalidJsonExtParameter",
               # Aliyun's Push action reports no per-device failure, and the adapter
               # maps no Push response to an invalid address, so no row can test it.
               INVALID_ADDRESS: None},
        retry_reason="ServiceUnavailable",
    ),
    Harness(
        provider="tpns", channel_kind="app", address_kind="android",
        address="tpns-token-li", start=FakeTpns,
        settings=lambda fake: (
            {"access_id": fake.access_id, "base_url": fake.base_url},
            {"secret_key": fake.secret_key}),
        issued_id=lambda fake, record: last_key(fake.pushes),
        codes={RETRYABLE: "1008004", PERMANENT: "1008019", INVALID_ADDRESS: "1008029"},
        retry_reason="1008004",
    ),
    Harness(
        provider="smtp", channel_kind="email", address_kind="email",
        address="li@example.com", start=RecordingSmtpServer,
        settings=lambda fake: (
            {"host": fake.host, "port": fake.port, "use_tls": False,
             "from_email": "noreply@sharestack.example"},
            {}),
        issued_id=lambda fake, record: fake.mails[-1].message["Message-ID"],
        codes={RETRYABLE: ("rcpt", "450 4.2.1 Mailbox busy"),
               PERMANENT: ("data", "554 5.6.0 Message rejected"),
               INVALID_ADDRESS: ("rcpt", "550 5.1.1 User unknown")},
        retry_reason="450",
    ),
    Harness(
        provider="mailgun", channel_kind="email", address_kind="email",
        address="li@example.com", start=FakeMailgun,
        settings=lambda fake: (
            {"from_email": "noreply@mg.example.com", "api_url": fake.api_url},
            {"api_key": fake.api_key}),
        issued_id=lambda fake, record: fake.messages[-1].message_id,
        codes={RETRYABLE: "503", PERMANENT: "413", INVALID_ADDRESS: "invalid_recipient"},
        retry_reason="503",
    ),
    Harness(
        provider="postmark", channel_kind="email", address_kind="email",
        address="li@example.com", start=FakePostmark,
        settings=lambda fake: (
            {"from_email": fake.sender, "api_url": fake.api_url},
            {"server_token": fake.server_token}),
        issued_id=lambda fake, record: fake.messages[-1].message_id,
        codes={RETRYABLE: "100", PERMANENT: "300", INVALID_ADDRESS: "inactive"},
        retry_reason="100",
    ),
    Harness(
        provider="aliyun_sms", channel_kind="sms", address_kind="phone",
        address="+8613800000001", wire_address="13800000001", start=FakeAliyunSms,
        settings=lambda fake: (
            {"sign_name": "分享栈", "template_code": "SMS_100001", "base_url": fake.base_url},
            {"access_key_id": fake.access_key_id,
             "access_key_secret": fake.access_key_secret}),
        issued_id=lambda fake, record: fake.deliveries[-1].biz_id,
        codes={RETRYABLE: "isp.SYSTEM_ERROR", PERMANENT: "isv.SMS_CONTENT_ILLEGAL",
               INVALID_ADDRESS: "isv.MOBILE_NUMBER_ILLEGAL"},
        retry_reason="isp.SYSTEM_ERROR",
    ),
    Harness(
        provider="tencent_sms", channel_kind="sms", address_kind="phone",
        address="+8613800000001", start=tencent,
        settings=lambda fake: (
            {"sms_sdk_app_id": fake.sms_sdk_app_id, "sign_name": "分享栈",
             "template_id": TENCENT_TEMPLATE, "base_url": fake.base_url},
            {"secret_id": fake.secret_id, "secret_key": fake.secret_key}),
        issued_id=lambda fake, record: fake.deliveries[-1].serial_no,
        codes={RETRYABLE: "InternalError.Timeout",
               PERMANENT: "FailedOperation.ContainSensitiveWord",
               INVALID_ADDRESS: "InvalidParameterValue.IncorrectPhoneNumber"},
        retry_reason="InternalError.Timeout",
    ),
    Harness(
        provider="twilio", channel_kind="sms", address_kind="phone",
        address="+14155550100", start=started(FakeTwilio, retry_after=7),
        settings=lambda fake: (
            {"from_number": "+15005550006", "base_url": fake.base_url},
            {"account_sid": fake.account_sid, "auth_token": fake.auth_token}),
        issued_id=lambda fake, record: fake.messages[-1]["sid"],
        codes={RETRYABLE: "20503", PERMANENT: "30007", INVALID_ADDRESS: "21211"},
        retry_reason="20503",
    ),
    Harness(
        provider="sns", channel_kind="sms", address_kind="phone",
        address="+14155550100", start=FakeSns,
        settings=lambda fake: (
            {"region": fake.region, "base_url": fake.base_url},
            {"access_key_id": fake.access_key_id,
             "secret_access_key": fake.secret_access_key}),
        issued_id=lambda fake, record: fake.publications[-1].message_id,
        codes={RETRYABLE: "ServiceUnavailable", PERMANENT: "InvalidParameterValue",
               INVALID_ADDRESS: "InvalidParameter"},
        retry_reason="ServiceUnavailable",
    ),
    Harness(
        provider="wechat_template", channel_kind="wechat", address_kind="wechat_openid",
        address="openid-li",
        start=wechat(lambda fake: fake.add_official_account(
            OFFICIAL_ACCOUNT_ID, WECHAT_SECRET, {TEMPLATE})),
        settings=lambda fake: (
            {"app_id": OFFICIAL_ACCOUNT_ID, "base_url": fake.base_url,
             "template_id": TEMPLATE},
            {"app_secret": WECHAT_SECRET}),
        issued_id=lambda fake, record: fake.msgids[-1],
        codes={RETRYABLE: -1, PERMANENT: 45002, INVALID_ADDRESS: 43004},
        retry_reason="-1",
    ),
    Harness(
        provider="wechat_subscribe", channel_kind="wechat", address_kind="miniapp_openid",
        address="mini-openid-li",
        start=wechat(lambda fake: fake.add_mini_program(
            MINI_PROGRAM_ID, WECHAT_SECRET, {TEMPLATE})),
        settings=lambda fake: (
            {"app_id": MINI_PROGRAM_ID, "base_url": fake.base_url, "template_id": TEMPLATE},
            {"app_secret": WECHAT_SECRET}),
        issued_id=lambda fake, record: fake.msgids[-1],
        codes={RETRYABLE: 43108, PERMANENT: 43101, INVALID_ADDRESS: 40003},
        retry_reason="43108",
    ),
    Harness(
        provider="wecom_app", channel_kind="wechat", address_kind="wecom_userid",
        address="LiLei",
        start=wechat(lambda fake: fake.add_corp_app(CORP_ID, WECHAT_SECRET, AGENT_ID)),
        settings=lambda fake: (
            {"corp_id": CORP_ID, "agent_id": AGENT_ID, "base_url": fake.base_url},
            {"secret": WECHAT_SECRET}),
        issued_id=lambda fake, record: fake.msgids[-1],
        codes={RETRYABLE: 45033, PERMANENT: 45002, INVALID_ADDRESS: 81013},
        retry_reason="45033",
    ),
    Harness(
        provider="wecom_robot", channel_kind="wechat", address_kind="robot",
        address=ROBOT_KEY, start=wechat(lambda fake: fake.add_robot(ROBOT_KEY)),
        settings=lambda fake: ({"base_url": fake.base_url}, {"key": ROBOT_KEY}),
        # The robot API returns no message id, so the adapter names the message after
        # the record.
        issued_id=lambda fake, record: f"wecom-robot-{record.pk}",
        codes={RETRYABLE: 45033, PERMANENT: 40058,
               # A robot posts to a group, with no device or contact to deactivate.
               INVALID_ADDRESS: None},
        retry_reason="45033",
    ),
]
BY_PROVIDER = {harness.provider: harness for harness in HARNESSES}


def rows(outcome: str) -> list[Any]:
    """Return the harnesses that can produce an outcome, as pytest params by provider."""
    return [
        pytest.param(harness, id=harness.provider)
        for harness in HARNESSES
        if outcome == SUCCESS or harness.codes[outcome] is not None
    ]


@pytest.fixture
def provider_fake(request, db, frozen_clock):
    """Start the harness's fake behind an enabled channel and register one address.

    Yields the harness, the running fake and the address's Device or Contact (None
    for a robot).
    """
    harness: Harness = request.param
    frozen_clock.set(START)
    with harness.start() as fake:
        config, credentials = harness.settings(fake)
        Channel.objects.create(name=harness.provider, kind=harness.channel_kind,
                               provider=harness.provider, config=config,
                               credentials=credentials)
        yield harness, fake, add_address(harness)


def add_address(harness: Harness) -> Device | Contact | None:
    if harness.address_kind == "robot":
        return None
    UserProfile.objects.get_or_create(user_id=USER)
    if harness.channel_kind == "app":
        return Device.objects.create(user_id=USER, platform=harness.address_kind,
                                     provider=harness.provider, token=harness.address)
    return Contact.objects.create(user_id=USER, kind=harness.address_kind,
                                  address=harness.address)


def push(post_push, harness: Harness) -> PushRecord:
    user_id = None if harness.address_kind == "robot" else USER
    response = post_push(notification_id=f"n-{uuid.uuid4().hex}", user_id=user_id,
                         channels=harness.channels)
    assert response.status_code == 202
    return PushRecord.objects.get()


def is_active(owner: Device | Contact | None) -> bool | None:
    """Return the address's is_active from the database, or None for a robot."""
    if owner is None:
        return None
    owner.refresh_from_db()
    return owner.is_active


def expected_active(harness: Harness, active: bool) -> bool | None:
    return None if harness.address_kind == "robot" else active


@pytest.mark.parametrize("provider_fake", rows(SUCCESS), indirect=True)
def test_success_stores_issued_id(provider_fake, post_push):
    harness, fake, owner = provider_fake

    record = push(post_push, harness)

    assert record.status == "sent"
    assert record.reason == ""
    assert record.attempts == 1
    assert record.provider == harness.provider
    assert record.provider_message_id == harness.issued_id(fake, record)
    assert record.next_attempt_at is None
    assert is_active(owner) is expected_active(harness, True)


@pytest.mark.parametrize("provider_fake", rows(RETRYABLE), indirect=True)
def test_retryable_error_sent_on_retry(provider_fake, post_push, frozen_clock, beat_tick):
    harness, fake, owner = provider_fake
    harness.script(fake, RETRYABLE)

    record = push(post_push, harness)

    assert record.status == "retrying"
    assert record.reason == harness.retry_reason
    assert record.attempts == 1
    assert record.provider_message_id == ""
    assert record.next_attempt_at > START
    assert is_active(owner) is expected_active(harness, True)

    harness.heal(fake)
    frozen_clock.set(record.next_attempt_at)
    beat_tick()

    record.refresh_from_db()
    assert record.status == "sent"
    assert record.reason == ""
    assert record.attempts == 2
    assert record.provider_message_id == harness.issued_id(fake, record)
    assert record.next_attempt_at is None
    assert is_active(owner) is expected_active(harness, True)


@pytest.mark.parametrize("provider_fake", rows(PERMANENT), indirect=True)
def test_permanent_error_never_retried(provider_fake, post_push, frozen_clock, beat_tick):
    harness, fake, owner = provider_fake
    harness.script(fake, PERMANENT)

    record = push(post_push, harness)

    assert record.status == "failed"
    assert record.reason == "permanent_error"
    assert record.attempts == 1
    assert record.provider_message_id == ""
    assert record.next_attempt_at is None
    assert is_active(owner) is expected_active(harness, True)

    frozen_clock.set(START + timedelta(days=1))
    beat_tick()

    record.refresh_from_db()
    assert record.status == "failed"
    assert record.attempts == 1


@pytest.mark.parametrize("provider_fake", rows(INVALID_ADDRESS), indirect=True)
def test_invalid_address_deactivates(provider_fake, post_push):
    harness, fake, owner = provider_fake
    harness.script(fake, INVALID_ADDRESS)

    record = push(post_push, harness)

    assert record.status == "failed"
    assert record.reason == "invalid_address"
    assert record.attempts == 1
    assert record.provider_message_id == ""
    assert record.next_attempt_at is None
    assert is_active(owner) is False


# A 429 with Retry-After: 7 from each fake that can send that header.
RATE_LIMITS = [
    pytest.param(BY_PROVIDER["apns"], ("TooManyRequests", 7), "TooManyRequests", id="apns"),
    pytest.param(BY_PROVIDER["mailgun"], ("429", 7), "429", id="mailgun"),
    pytest.param(BY_PROVIDER["postmark"], ("429", 7), "429", id="postmark"),
    # The Twilio fake sends its retry_after attribute, 7 here, with every 429.
    pytest.param(BY_PROVIDER["twilio"], "20429", "20429", id="twilio"),
]


@pytest.mark.parametrize("provider_fake, code, reason", RATE_LIMITS,
                         indirect=["provider_fake"])
def test_retry_after_waits_seven_seconds(provider_fake, code, reason, post_push,
                                         frozen_clock, beat_tick):
    harness, fake, owner = provider_fake
    fake.script(harness.address, code)

    record = push(post_push, harness)

    assert record.status == "retrying"
    assert record.reason == reason
    assert record.attempts == 1
    assert record.next_attempt_at >= START + timedelta(seconds=7)

    frozen_clock.set(START + timedelta(seconds=6.9))
    beat_tick()
    record.refresh_from_db()
    assert record.status == "retrying"
    assert record.attempts == 1

    frozen_clock.set(record.next_attempt_at)
    beat_tick()
    record.refresh_from_db()
    assert record.status == "sent"
    assert record.attempts == 2
    assert record.provider_message_id == harness.issued_id(fake, record)
    assert is_active(owner) is True


# 43101 is the Mini Program's "user refused" (no subscription left for the template).
# The Official Account's table does not name it, so its fallback must be permanent too.
USER_REFUSED = [
    pytest.param(BY_PROVIDER["wechat_subscribe"], SUBSCRIBE_PATH, id="wechat_subscribe"),
    pytest.param(BY_PROVIDER["wechat_template"], TEMPLATE_PATH, id="wechat_template"),
]


@pytest.mark.parametrize("provider_fake, send_path", USER_REFUSED, indirect=["provider_fake"])
def test_wechat_user_refused_never_retried(provider_fake, send_path, post_push,
                                           frozen_clock, beat_tick):
    harness, fake, owner = provider_fake
    fake.script(harness.address, 43101)

    record = push(post_push, harness)

    assert record.status == "failed"
    assert record.reason == "permanent_error"
    assert record.next_attempt_at is None
    assert is_active(owner) is True

    for hours in (1, 24, 24 * 7):
        frozen_clock.set(START + timedelta(hours=hours))
        beat_tick()

    record.refresh_from_db()
    assert record.status == "failed"
    assert record.attempts == 1
    assert len(fake.requests_to(send_path)) == 1
