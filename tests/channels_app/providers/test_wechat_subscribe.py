"""WeChatSubscribeProvider end to end against the fake WeChat API."""

import uuid

import pytest

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.wechat_subscribe import (
    ERROR_CODES,
    WeChatSubscribeProvider,
    wechat_lang,
)
from tests.fakes.wechat import FakeWeChat

APP_ID = "wxmini0123456789ab"
SECRET = "mini-secret-" + uuid.uuid4().hex
TEMPLATE = "tpl-sub-shipped"
SEND_PATH = "/cgi-bin/message/subscribe/send"

# Written from WeChat's global return codes and the subscribeMessage.send reference,
# independently of the adapter's table.
EXPECTED_OUTCOMES = {
    -1: Outcome.RETRYABLE,
    40001: Outcome.CONFIGURATION,
    40014: Outcome.RETRYABLE,
    42001: Outcome.RETRYABLE,
    40013: Outcome.CONFIGURATION,
    40125: Outcome.CONFIGURATION,
    40164: Outcome.CONFIGURATION,
    48001: Outcome.CONFIGURATION,
    43107: Outcome.CONFIGURATION,
    40037: Outcome.CONFIGURATION,
    40003: Outcome.INVALID_ADDRESS,
    43101: Outcome.PERMANENT,
    47003: Outcome.PERMANENT,
    41030: Outcome.PERMANENT,
    45168: Outcome.PERMANENT,
    43108: Outcome.RETRYABLE,
    45009: Outcome.RETRYABLE,
    45011: Outcome.RETRYABLE,
}
TOKEN_CODES = (40001, 40014, 42001)


@pytest.fixture
def fake():
    with FakeWeChat() as server:
        server.add_mini_program(APP_ID, SECRET, {TEMPLATE, "tpl-other"})
        yield server


def build(fake: FakeWeChat, channel_key: str = "", **config) -> WeChatSubscribeProvider:
    config = {"app_id": APP_ID, "base_url": fake.base_url, "template_id": TEMPLATE, **config}
    return WeChatSubscribeProvider(config, {"app_secret": SECRET}, timeout=5,
                                   channel_key=channel_key or f"test-{uuid.uuid4().hex}")


@pytest.fixture
def provider(fake):
    adapter = build(fake)
    yield adapter
    adapter.close()


def message(record_id: int = 1, openid: str = "mini-openid-li", **fields) -> OutgoingMessage:
    fields.setdefault("variables", {"thing1": "Parcel", "number2": 3})
    return OutgoingMessage(record_id, openid, "Shipped", "On its way", **fields)


def send_one(provider: WeChatSubscribeProvider, **fields):
    [result] = provider.send([message(**fields)])
    return result


def test_success_sends_full_body(provider, fake):
    result = send_one(provider, locale="en")

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id.isdigit()
    [request] = fake.requests_to(SEND_PATH)
    assert request.body == {
        "touser": "mini-openid-li",
        "template_id": TEMPLATE,
        "data": {"thing1": {"value": "Parcel"}, "number2": {"value": "3"}},
        "miniprogram_state": "formal",
        "lang": "en_US",
    }


def test_options_set_page_state_and_lang(provider, fake):
    options = {"page": "pages/order?id=7", "miniprogram_state": "trial", "lang": "zh_TW",
               "template_id": "tpl-other", "data": {"thing9": "x"}}

    result = send_one(provider, options=options)

    assert result.outcome == Outcome.SENT
    [request] = fake.requests_to(SEND_PATH)
    assert request.body["page"] == "pages/order?id=7"
    assert request.body["miniprogram_state"] == "trial"
    assert request.body["lang"] == "zh_TW"
    assert request.body["template_id"] == "tpl-other"
    assert request.body["data"] == {"thing9": {"value": "x"}}


def test_config_sets_default_state_and_lang(fake):
    adapter = build(fake, miniprogram_state="developer", lang="zh_HK")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.SENT
    [request] = fake.requests_to(SEND_PATH)
    assert request.body["miniprogram_state"] == "developer"
    assert request.body["lang"] == "zh_HK"


@pytest.mark.parametrize(("locale", "lang"), [
    ("", "zh_CN"), ("zh-CN", "zh_CN"), ("en-GB", "en_US"), ("zh-TW", "zh_TW"),
    ("zh_HK", "zh_HK"), ("fr", "zh_CN"),
])
def test_lang_from_locale(locale, lang):
    assert wechat_lang(locale) == lang


def test_missing_template_is_permanent(fake):
    adapter = build(fake, template_id="")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "template_id_missing"


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("errcode", sorted(EXPECTED_OUTCOMES))
def test_errcode_outcome(provider, fake, errcode):
    repeats = 2 if errcode in TOKEN_CODES else 1
    fake.script("mini-openid-li", *[errcode] * repeats)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[errcode]
    assert result.error_code == str(errcode)


def test_refused_subscription_keeps_address(provider, fake):
    # 43101: the user has no subscription left; the openid itself is still valid.
    fake.script("mini-openid-li", 43101)

    result = send_one(provider)

    assert result.outcome != Outcome.INVALID_ADDRESS
    assert "user refuse to accept the msg" in result.error_message


def test_expired_token_refetched_and_resent_once(provider, fake):
    send_one(provider)
    fake.expire_tokens()

    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert fake.token_requests(APP_ID) == 2
    assert len(fake.requests_to(SEND_PATH)) == 3


def test_token_shared_by_two_instances(fake):
    key = f"test-{uuid.uuid4().hex}"
    first, second = build(fake, key), build(fake, key)

    results = first.send([message(1)]) + second.send([message(2)])
    first.close()
    second.close()

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert fake.token_requests(APP_ID) == 1


def test_official_account_token_rejected(fake):
    fake.add_official_account("wxoa", "oa-secret", {TEMPLATE})
    adapter = WeChatSubscribeProvider(
        {"app_id": "wxoa", "base_url": fake.base_url, "template_id": TEMPLATE},
        {"app_secret": "oa-secret"}, timeout=5, channel_key=f"test-{uuid.uuid4().hex}",
    )

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "48001"


def test_validate_checks_state_and_lang():
    errors = WeChatSubscribeProvider.validate(
        {"app_id": APP_ID, "miniprogram_state": "beta", "lang": "de_DE"}, {"app_secret": "s"}
    )

    assert set(errors) == {"config.miniprogram_state", "config.lang"}


def test_validate_accepts_complete_settings():
    errors = WeChatSubscribeProvider.validate(
        {"app_id": APP_ID, "miniprogram_state": "trial", "lang": "en_US",
         "template_ids": {"order": "tpl"}},
        {"app_secret": "s"},
    )

    assert errors == {}
