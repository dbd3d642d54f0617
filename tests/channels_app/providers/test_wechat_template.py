"""WeChatTemplateProvider end to end against the fake WeChat API and its token endpoint."""

import base64
import logging
import threading
import uuid

import pytest

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.wechat_template import ERROR_CODES, WeChatTemplateProvider
from tests.fakes.wechat import FakeWeChat

APP_ID = "wx0a1b2c3d4e5f6a7b"
SECRET = "oa-secret-" + uuid.uuid4().hex
TEMPLATE = "tpl-order-shipped"

# Written from WeChat's global return codes and the template message guide,
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
    48004: Outcome.CONFIGURATION,
    40003: Outcome.INVALID_ADDRESS,
    43004: Outcome.INVALID_ADDRESS,
    43101: Outcome.PERMANENT,
    50002: Outcome.INVALID_ADDRESS,
    40037: Outcome.CONFIGURATION,
    47003: Outcome.PERMANENT,
    47001: Outcome.PERMANENT,
    45002: Outcome.PERMANENT,
    40066: Outcome.PERMANENT,
    45009: Outcome.RETRYABLE,
    45011: Outcome.RETRYABLE,
}
TOKEN_CODES = (40001, 40014, 42001)
SEND_PATH = "/cgi-bin/message/template/send"


@pytest.fixture
def fake():
    with FakeWeChat() as server:
        server.add_official_account(APP_ID, SECRET, {TEMPLATE, "tpl-default"})
        yield server


def build(fake: FakeWeChat, channel_key: str = "", **config) -> WeChatTemplateProvider:
    config = {"app_id": APP_ID, "base_url": fake.base_url, "template_id": TEMPLATE, **config}
    return WeChatTemplateProvider(config, {"app_secret": SECRET}, timeout=5,
                                  channel_key=channel_key or f"test-{uuid.uuid4().hex}")


@pytest.fixture
def provider(fake):
    adapter = build(fake)
    yield adapter
    adapter.close()


def message(record_id: int = 1, openid: str = "openid-li", **fields) -> OutgoingMessage:
    fields.setdefault("variables", {"order_id": "A-7", "amount": 42})
    return OutgoingMessage(record_id, openid, "Shipped", "Your order is on its way", **fields)


def send_one(provider: WeChatTemplateProvider, **fields):
    [result] = provider.send([message(**fields)])
    return result


# Success and the request on the wire


def test_success_stores_msgid(provider, fake):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id.isdigit()
    assert len(fake.requests_to(SEND_PATH)) == 1


def test_request_body_from_variables(provider, fake):
    send_one(provider, openid="openid-7")

    [request] = fake.requests_to(SEND_PATH)
    assert request.body == {
        "touser": "openid-7",
        "template_id": TEMPLATE,
        "data": {"order_id": {"value": "A-7"}, "amount": {"value": "42"}},
    }
    assert request.params["access_token"]


def test_options_override_template_data_and_link(provider, fake):
    options = {
        "template_id": "tpl-default",
        "data": {"thing1": "Parcel", "time2": {"value": "12:00", "color": "#173177"}},
        "click_action": "https://shop.example/orders/A-7",
        "miniprogram": {"appid": "wxmini", "pagepath": "pages/order?id=A-7"},
    }

    result = send_one(provider, options=options)

    assert result.outcome == Outcome.SENT
    [request] = fake.requests_to(SEND_PATH)
    assert request.body["template_id"] == "tpl-default"
    assert request.body["data"] == {
        "thing1": {"value": "Parcel"},
        "time2": {"value": "12:00", "color": "#173177"},
    }
    assert request.body["url"] == "https://shop.example/orders/A-7"
    assert request.body["miniprogram"] == {"appid": "wxmini", "pagepath": "pages/order?id=A-7"}


def test_template_chosen_by_notification_type(fake):
    adapter = build(fake, template_ids={"order": "tpl-default"})

    [result] = adapter.send([message(notification_type="order")])
    adapter.close()

    assert result.outcome == Outcome.SENT
    assert fake.requests_to(SEND_PATH)[0].body["template_id"] == "tpl-default"


def test_missing_template_is_permanent_without_request(fake):
    adapter = build(fake, template_id="")

    [result] = adapter.send([message(notification_type="order")])
    adapter.close()

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "template_id_missing"
    assert fake.requests_to(SEND_PATH) == []
    assert fake.token_requests(APP_ID) == 0


def test_batch_sent_concurrently_with_one_token(provider, fake):
    fake.script("openid-gone", 43004)
    batch = [message(record_id, f"openid-{record_id}") for record_id in range(1, 31)]
    batch.append(message(99, "openid-gone"))

    results = {result.record_id: result for result in provider.send(batch)}

    assert len(results) == 31
    assert all(results[record_id].outcome == Outcome.SENT for record_id in range(1, 31))
    assert results[99].outcome == Outcome.INVALID_ADDRESS
    assert len({results[record_id].provider_message_id for record_id in range(1, 31)}) == 30
    assert fake.token_requests(APP_ID) == 1


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("errcode", sorted(EXPECTED_OUTCOMES))
def test_errcode_outcome(provider, fake, errcode):
    # A token errcode is resent once with a new token, so script it twice.
    repeats = 2 if errcode in TOKEN_CODES else 1
    fake.script("openid-li", *[errcode] * repeats)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[errcode]
    assert result.error_code == str(errcode)
    assert "rid:" in result.error_message


def test_minute_quota_retries_after_a_minute(provider, fake):
    fake.script("openid-li", 45011)

    result = send_one(provider)

    assert result.retry_after == 60.0


def test_unknown_errcode_is_permanent(provider, fake):
    fake.script("openid-li", 61999)

    result = send_one(provider)

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "61999"


# Access token


def test_token_shared_by_two_instances(fake):
    key = f"test-{uuid.uuid4().hex}"
    first, second = build(fake, key), build(fake, key)

    results = first.send([message(1)]) + second.send([message(2)])
    first.close()
    second.close()

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert fake.token_requests(APP_ID) == 1
    tokens = {request.params["access_token"] for request in fake.requests_to(SEND_PATH)}
    assert len(tokens) == 1


def test_token_fetched_once_by_five_threads():
    with FakeWeChat(token_delay=0.3) as slow_fake:
        slow_fake.add_official_account(APP_ID, SECRET, {TEMPLATE})
        key = f"test-{uuid.uuid4().hex}"
        adapters = [build(slow_fake, key) for _ in range(5)]
        start = threading.Barrier(5)
        results = []

        def worker(adapter, record_id):
            start.wait()
            results.extend(adapter.send([message(record_id)]))

        threads = [threading.Thread(target=worker, args=(adapter, index))
                   for index, adapter in enumerate(adapters)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        for adapter in adapters:
            adapter.close()

        assert [r.outcome for r in results] == [Outcome.SENT] * 5
        assert slow_fake.token_requests(APP_ID) == 1


def test_expired_token_refetched_and_resent_once(provider, fake):
    send_one(provider)
    fake.expire_tokens()

    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert fake.token_requests(APP_ID) == 2
    first, expired, resent = fake.requests_to(SEND_PATH)
    assert expired.params["access_token"] == first.params["access_token"]
    assert resent.params["access_token"] != expired.params["access_token"]


def test_expired_token_refetched_once_for_whole_batch(provider, fake):
    send_one(provider)
    fake.expire_tokens()

    results = provider.send([message(2, "openid-2"), message(3, "openid-3")])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert fake.token_requests(APP_ID) == 2
    assert len(fake.requests_to(SEND_PATH)) == 5


def test_token_rejected_twice_is_not_looped(provider, fake):
    fake.script("openid-li", 40001, 40001, 40001)

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert len(fake.requests_to(SEND_PATH)) == 2
    assert fake.token_requests(APP_ID) == 2


def test_wrong_secret_is_configuration(fake):
    adapter = WeChatTemplateProvider(
        {"app_id": APP_ID, "base_url": fake.base_url, "template_id": TEMPLATE},
        {"app_secret": "wrong-secret"}, timeout=5, channel_key=f"test-{uuid.uuid4().hex}",
    )

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "40125"
    assert fake.requests_to(SEND_PATH) == []


def test_unknown_appid_is_configuration(fake):
    adapter = build(fake, app_id="wxunknown")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "40013"


def test_token_of_other_account_kind_is_rejected(fake):
    fake.add_mini_program("wxmini", "mini-secret", {TEMPLATE})
    adapter = WeChatTemplateProvider(
        {"app_id": "wxmini", "base_url": fake.base_url, "template_id": TEMPLATE},
        {"app_secret": "mini-secret"}, timeout=5, channel_key=f"test-{uuid.uuid4().hex}",
    )

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "48001"


# HTTP and network failures, and secrets


def test_gateway_error_is_retryable(provider, fake):
    fake.script_raw(SEND_PATH, 502, b"<html>Bad Gateway</html>")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "http_502"


def test_non_json_answer_is_retryable(provider, fake):
    fake.script_raw(SEND_PATH, 200, b"<html>maintenance</html>")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "invalid_response"


@pytest.mark.parametrize(("status", "body", "code"), [
    (503, b"{}", "http_503"),
    (200, b"<html></html>", "http_502"),
    (200, b"[]", "http_502"),
    (200, b'{"expires_in": 7200}', "http_502"),
])
def test_broken_token_answer_is_retryable(provider, fake, status, body, code):
    fake.script_raw("/cgi-bin/token", status, body)

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == code
    assert fake.requests_to(SEND_PATH) == []


def test_token_refetch_failure_after_expiry(provider, fake):
    send_one(provider)
    fake.expire_tokens()
    fake.script_raw("/cgi-bin/token", 503, b"{}")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "http_503"
    assert len(fake.requests_to(SEND_PATH)) == 2



def test_connection_refused_on_token_fetch(fake):
    adapter = build(fake)
    fake.stop()

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "token_fetch_failed"
    assert SECRET not in result.error_message


def test_connection_refused_with_cached_token(provider, fake):
    send_one(provider)
    fake.stop()

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"
    assert "access_token=***" in result.error_message


def test_secret_and_token_absent_from_debug_logs(provider, fake, caplog):
    caplog.set_level(logging.DEBUG)

    send_one(provider)

    token = fake.requests_to(SEND_PATH)[0].params["access_token"]
    assert "access_token=***" in caplog.text
    assert SECRET not in caplog.text
    assert token not in caplog.text


# Configuration checks


def test_validate_accepts_complete_settings():
    errors = WeChatTemplateProvider.validate(
        {"app_id": APP_ID, "template_ids": {"order": "tpl"}},
        {"app_secret": "s", "callback_token": "t"},
    )

    assert errors == {}


def test_validate_names_missing_and_unknown_fields():
    errors = WeChatTemplateProvider.validate({"appid": APP_ID}, {})

    assert set(errors) == {"config.app_id", "config.appid", "credentials.app_secret"}


def test_validate_accepts_aes_key():
    key = base64.b64encode(bytes(range(32))).decode()[:43]

    errors = WeChatTemplateProvider.validate(
        {"app_id": APP_ID}, {"app_secret": "s", "callback_token": "t", "callback_aes_key": key}
    )

    assert errors == {}


@pytest.mark.parametrize("key", ["short", "!" * 43, 43])
def test_validate_rejects_malformed_aes_key(key):
    errors = WeChatTemplateProvider.validate(
        {"app_id": APP_ID}, {"app_secret": "s", "callback_token": "t", "callback_aes_key": key}
    )

    assert set(errors) == {"credentials.callback_aes_key"}


def test_validate_aes_key_needs_callback_token():
    key = base64.b64encode(bytes(range(32))).decode()[:43]

    errors = WeChatTemplateProvider.validate(
        {"app_id": APP_ID}, {"app_secret": "s", "callback_aes_key": key}
    )

    assert set(errors) == {"credentials.callback_token"}


def test_validate_rejects_malformed_template_ids():
    errors = WeChatTemplateProvider.validate(
        {"app_id": APP_ID, "template_ids": ["tpl"]}, {"app_secret": "s"}
    )

    assert set(errors) == {"config.template_ids"}
