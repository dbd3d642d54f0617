"""HuaweiProvider end to end against the fake Push Kit server and token endpoint."""

import json
import time
import uuid

import pytest
import redis
from django.test import RequestFactory

from channels_app.providers.base import (
    CallbackRejected,
    Outcome,
    OutgoingMessage,
    ReceiptEvent,
)
from channels_app.providers.huawei import (
    DEFAULT_BASE_URL,
    DEFAULT_TOKEN_URL,
    ERROR_CODES,
    HuaweiProvider,
    click_action,
    illegal_tokens,
    retry_after_seconds,
)
from channels_app.providers.tokens import LocalTokens
from tests.fakes.huawei import FakeHuawei, callback_header

# Written from Push Kit's result code table, independently of the adapter's.
EXPECTED_OUTCOMES = {
    "80100001": Outcome.PERMANENT,
    "80100003": Outcome.PERMANENT,
    "80100004": Outcome.PERMANENT,
    "80100013": Outcome.PERMANENT,
    "80100016": Outcome.PERMANENT,
    "80100017": Outcome.RETRYABLE,
    "80100018": Outcome.PERMANENT,
    "80200001": Outcome.CONFIGURATION,
    "80200003": Outcome.CONFIGURATION,
    "80300002": Outcome.CONFIGURATION,
    "80300007": Outcome.INVALID_ADDRESS,
    "80300008": Outcome.PERMANENT,
    "80300010": Outcome.PERMANENT,
    "80300011": Outcome.CONFIGURATION,
    "80300013": Outcome.CONFIGURATION,
    "80600003": Outcome.CONFIGURATION,
    "81000001": Outcome.RETRYABLE,
}


@pytest.fixture(scope="module")
def huawei_server():
    with FakeHuawei() as fake:
        yield fake


@pytest.fixture
def fake_huawei(huawei_server):
    huawei_server.clear()
    return huawei_server


def build_provider(fake: FakeHuawei, channel_key: str | None = None, **config) -> HuaweiProvider:
    return HuaweiProvider({**fake.channel_config(), **config}, fake.channel_credentials(),
                          timeout=5, channel_key=channel_key or f"test-{uuid.uuid4().hex}")


@pytest.fixture
def provider(fake_huawei):
    adapter = build_provider(fake_huawei)
    yield adapter
    adapter.close()


def message(record_id: int = 1, token: str | None = None, *, title: str = "Deploy finished",
            body: str = "Build 42 is live", data: dict | None = None, priority: str = "normal",
            **options) -> OutgoingMessage:
    return OutgoingMessage(record_id, token or f"tok-{uuid.uuid4().hex}", title, body,
                           data or {}, notification_type="deploy", priority=priority,
                           options=options)


def send_one(provider: HuaweiProvider, outgoing: OutgoingMessage | None = None):
    [result] = provider.send([outgoing or message()])
    return result


# Success and the request on the wire


def test_success_stores_request_id(provider, fake_huawei):
    result = send_one(provider)

    [request] = fake_huawei.requests
    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == request.request_id
    assert request.code == "80000000"


def test_request_carries_notification(provider, fake_huawei):
    outgoing = message(token="tok-a", data={"order_id": 7}, icon="/raw/ic", sound="/raw/chime",
                       image="https://cdn.test/a.png", badge=2, badge_class="com.x.Main",
                       click_action="https://shop.test/orders/7", ttl_seconds=600, collapse_key=3)

    send_one(provider, outgoing)

    [request] = fake_huawei.requests
    assert request.headers["Authorization"].startswith("Bearer CgB6e3x9")
    assert request.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert request.tokens == ["tok-a"]
    assert json.loads(request.message["data"]) == {"order_id": 7}
    android = request.message["android"]
    assert android["urgency"] == "NORMAL"
    assert android["ttl"] == "600s"
    assert android["collapse_key"] == 3
    assert android["bi_tag"] == "deploy"
    assert android["notification"] == {
        "title": "Deploy finished",
        "body": "Build 42 is live",
        "icon": "/raw/ic",
        "sound": "/raw/chime",
        "image": "https://cdn.test/a.png",
        "badge": {"set_num": 2, "class": "com.x.Main"},
        "click_action": {"type": 2, "url": "https://shop.test/orders/7"},
    }


def test_high_priority_and_receipt_id(fake_huawei):
    adapter = build_provider(fake_huawei, receipt_id="RCP-1")
    try:
        send_one(adapter, message(priority="high", bi_tag="campaign-9"))
    finally:
        adapter.close()

    android = fake_huawei.requests[0].message["android"]
    assert android["urgency"] == "HIGH"
    assert android["receipt_id"] == "RCP-1"
    assert android["bi_tag"] == "campaign-9"


def test_data_only_message_has_no_notification(provider, fake_huawei):
    result = send_one(provider, message(title="", body="", data={"sync": True}))

    assert result.outcome == Outcome.SENT
    assert "notification" not in fake_huawei.requests[0].message["android"]


def test_click_action_types():
    assert click_action(None) == {"type": 3}
    assert click_action("http://x.test/1") == {"type": 2, "url": "http://x.test/1"}
    assert click_action("intent://orders/7#Intent;scheme=shop;end") == {
        "type": 1, "intent": "intent://orders/7#Intent;scheme=shop;end"}
    assert click_action("com.x.OPEN_ORDER") == {"type": 1, "action": "com.x.OPEN_ORDER"}


# Batching


def test_batch_split_at_1000_tokens(provider, fake_huawei):
    batch = [message(record_id, f"tok-{record_id}") for record_id in range(2500)]

    results = provider.send(batch)

    assert len(results) == 2500
    assert all(result.outcome == Outcome.SENT for result in results)
    assert [len(request.tokens) for request in fake_huawei.requests] == [1000, 1000, 500]
    by_id = {result.record_id: result for result in results}
    assert by_id[0].provider_message_id == fake_huawei.requests[0].request_id
    assert by_id[2499].provider_message_id == fake_huawei.requests[2].request_id


def test_different_content_sent_separately(provider, fake_huawei):
    batch = [message(1, "tok-1"), message(2, "tok-2"), message(3, "tok-3", title="Other")]

    provider.send(batch)

    assert sorted(len(request.tokens) for request in fake_huawei.requests) == [1, 2]


def test_partial_success_marks_illegal_tokens(provider, fake_huawei):
    fake_huawei.script("tok-dead", "illegal_token")
    batch = [message(1, "tok-live"), message(2, "tok-dead")]

    results = {result.record_id: result for result in provider.send(batch)}

    assert fake_huawei.requests[0].code == "80100000"
    assert results[1].outcome == Outcome.SENT
    assert results[2].outcome == Outcome.INVALID_ADDRESS
    assert results[2].error_code == "illegal_token"
    assert results[1].provider_message_id == results[2].provider_message_id


def test_all_tokens_illegal(provider, fake_huawei):
    fake_huawei.script("tok-dead", "illegal_token")

    result = send_one(provider, message(token="tok-dead"))

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "80300007"


def test_illegal_tokens_parser_tolerates_garbage():
    assert illegal_tokens('{"illegal_tokens": ["a"]}') == {"a"}
    assert illegal_tokens("not json") == set()
    assert illegal_tokens("[1]") == set()


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_result_code_outcome(provider, fake_huawei, code):
    # An expired access token is replaced and the message resent once.
    fake_huawei.script("tok-1", code, code)

    result = send_one(provider, message(token="tok-1"))

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == code


@pytest.mark.parametrize("outcome, status", [("http_503", 503), ("http_429", 429)])
def test_flow_control_is_retryable(provider, fake_huawei, outcome, status):
    fake_huawei.script("tok-1", outcome)

    result = send_one(provider, message(token="tok-1"))

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == str(status)
    assert result.retry_after == 3
    assert len(fake_huawei.requests) == 1


def test_too_many_tokens_checked_by_server(provider, fake_huawei, monkeypatch):
    monkeypatch.setattr("channels_app.providers.huawei.MAX_TOKENS_PER_REQUEST", 1001)
    batch = [message(record_id, f"tok-{record_id}") for record_id in range(1001)]

    results = provider.send(batch)

    assert {result.outcome for result in results} == {Outcome.PERMANENT}
    assert {result.error_code for result in results} == {"80300010"}


def test_body_too_large_checked_by_server(provider, fake_huawei):
    result = send_one(provider, message(body="x" * 5000))

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "80300008"


def test_wrong_app_id_is_configuration(fake_huawei):
    adapter = build_provider(fake_huawei)
    adapter.endpoint = adapter.endpoint.replace(fake_huawei.app_id, "999")
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "80300002"


def test_retry_after_parsing():
    assert retry_after_seconds("4") == 4
    assert retry_after_seconds("later") is None
    assert retry_after_seconds(None) is None


# Access token


def test_token_shared_by_two_adapters(fake_huawei):
    key = f"test-{uuid.uuid4().hex}"
    first, second = build_provider(fake_huawei, key), build_provider(fake_huawei, key)
    before = fake_huawei.token_requests
    try:
        results = first.send([message(1)]) + second.send([message(2)])
    finally:
        first.close()
        second.close()

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert fake_huawei.token_requests == before + 1


def test_expired_token_refetched_and_resent_once(provider, fake_huawei):
    before = fake_huawei.token_requests
    fake_huawei.script("tok-1", "80200003")

    result = send_one(provider, message(token="tok-1"))

    assert result.outcome == Outcome.SENT
    assert fake_huawei.token_requests == before + 2
    first, second = fake_huawei.requests
    assert first.code == "80200003"
    assert second.headers["Authorization"] != first.headers["Authorization"]


def test_revoked_token_refetched(provider, fake_huawei):
    send_one(provider)
    fake_huawei.revoke_tokens()

    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert [request.code for request in fake_huawei.requests] == [
        "80000000", "80200003", "80000000"]


def test_wrong_client_secret_is_configuration(fake_huawei):
    adapter = HuaweiProvider(fake_huawei.channel_config(), {"client_secret": "wrong-secret"},
                             timeout=5, channel_key=f"test-{uuid.uuid4().hex}")
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "token_rejected"
    assert "wrong-secret" not in result.error_message
    assert fake_huawei.requests == []


def test_token_endpoint_down_is_retryable(fake_huawei):
    adapter = build_provider(fake_huawei, token_url="http://127.0.0.1:9/oauth2/v3/token")
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "token_fetch_failed"


def test_token_endpoint_error_page_is_retryable(fake_huawei):
    adapter = build_provider(fake_huawei, token_url=f"{fake_huawei.base_url}/missing")
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "token_fetch_failed"


def test_send_endpoint_down_is_retryable(fake_huawei):
    adapter = build_provider(fake_huawei)
    adapter.access_token()
    adapter.endpoint = "http://127.0.0.1:9/v1/x/messages:send"
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


# Receipt signature and parsing (the callback endpoint is tested in the pipeline tests)


def callback_request(fake: FakeHuawei, statuses: list, **signing):
    body, headers = fake.receipt(statuses, **signing)
    return RequestFactory().post("/api/v1/callbacks/1", data=body,
                                 content_type="application/json",
                                 headers={"X-HUAWEI-CALLBACK-ID": headers["X-HUAWEI-CALLBACK-ID"]})


def test_receipt_statuses_parsed(provider, fake_huawei):
    statuses = [fake_huawei.receipt_status("tok-1", "req-1", 0),
                fake_huawei.receipt_status("tok-2", "req-1", 2),
                fake_huawei.receipt_status("tok-3", "req-1", 6),
                fake_huawei.receipt_status("tok-4", "req-1", 999),
                {**fake_huawei.receipt_status("tok-5", "req-1"), "appid": "another-app"},
                {"token": "tok-6"}]

    result = provider.handle_callback(callback_request(fake_huawei, statuses))

    delivered, uninstalled, hidden, unknown = result.receipts
    assert delivered.event == ReceiptEvent.DELIVERED
    assert delivered.provider_message_id == "req-1"
    assert delivered.address == "tok-1"
    assert delivered.occurred_at is not None
    assert uninstalled.event == ReceiptEvent.FAILED
    assert uninstalled.invalid_address is True
    assert hidden.invalid_address is False
    assert hidden.error_code == "6"
    assert unknown.error_message == "Push Kit reported a failed delivery"
    assert json.loads(result.response.content) == {"errno": "0", "errmsg": "success"}


def test_receipt_with_wrong_key_rejected(provider, fake_huawei):
    request = callback_request(fake_huawei, [], key="not-the-key")

    with pytest.raises(CallbackRejected, match="does not match"):
        provider.handle_callback(request)


def test_receipt_with_stale_timestamp_rejected(provider, fake_huawei):
    request = callback_request(fake_huawei, [], timestamp_ms=int((time.time() - 900) * 1000))

    with pytest.raises(CallbackRejected, match="too old"):
        provider.handle_callback(request)


def test_receipt_without_header_rejected(provider):
    request = RequestFactory().post("/", data=b"{}", content_type="application/json")

    with pytest.raises(CallbackRejected, match="malformed"):
        provider.handle_callback(request)


def test_receipt_rejected_without_configured_key(fake_huawei):
    config = {**fake_huawei.channel_config()}
    del config["callback_username"]
    adapter = HuaweiProvider(config, {"client_secret": "s"}, timeout=5)
    header = callback_header("receipts", "key")
    request = RequestFactory().post("/", data=b"{}", content_type="application/json",
                                    headers={"X-HUAWEI-CALLBACK-ID": header})

    with pytest.raises(CallbackRejected, match="must be set"):
        adapter.handle_callback(request)


def test_receipt_with_bad_body_has_no_receipts(provider, fake_huawei):
    header = callback_header(fake_huawei.callback_username, fake_huawei.callback_key)
    request = RequestFactory().post("/", data=b"[1, 2]", content_type="application/json",
                                    headers={"X-HUAWEI-CALLBACK-ID": header})

    assert provider.handle_callback(request).receipts == []


# Configuration


def test_validate_names_missing_and_unknown_fields():
    errors = HuaweiProvider.validate({"appid": "1"}, {"client_id": "x"})

    assert set(errors) == {"config.app_id", "config.appid", "credentials.client_secret",
                           "credentials.client_id"}


def test_default_urls():
    adapter = HuaweiProvider({"app_id": "42"}, {"client_secret": "s"}, timeout=5)

    assert adapter.endpoint == f"{DEFAULT_BASE_URL}/v1/42/messages:send"
    assert adapter.token_url == DEFAULT_TOKEN_URL
    assert adapter.token_key == "huawei-42:access-token"
    adapter.close()


# The fake's own checks


def test_fake_requires_click_action_and_title(provider, fake_huawei):
    adapter_body = provider.request_body(message(), ["tok-1"])
    del adapter_body["message"]["android"]["notification"]["click_action"]
    token = provider.access_token()
    headers = {"Authorization": f"Bearer {token}"}

    response = provider._client.post(provider.endpoint, json=adapter_body, headers=headers)
    unauthenticated = provider._client.post(provider.endpoint, json=adapter_body)

    assert response.json()["code"] == "80100001"
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == "80200001"


def test_fake_rejects_unknown_script_outcome(fake_huawei):
    with pytest.raises(ValueError, match="unknown Push Kit outcome"):
        fake_huawei.script("tok-1", "99999999")


class UndroppableTokens(LocalTokens):
    """A token store whose drop() fails, as when Redis goes away mid-send."""

    def drop(self, key, token):
        raise redis.ConnectionError("Connection refused")


class BrokenTokenStore(UndroppableTokens):
    """A token store whose Redis is unreachable."""

    def get(self, key, fetch, wait_seconds=0):
        raise redis.ConnectionError("Connection refused")


def test_token_store_down_is_retryable(provider, fake_huawei, monkeypatch):
    monkeypatch.setattr("channels_app.providers.huawei.shared_tokens", BrokenTokenStore)

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "token_cache_failed"
    assert fake_huawei.requests == []


def test_failed_drop_still_resends_once(provider, fake_huawei, monkeypatch):
    store = UndroppableTokens()
    monkeypatch.setattr("channels_app.providers.huawei.shared_tokens", lambda: store)
    fake_huawei.script("tok-1", "80200003")

    result = send_one(provider, message(token="tok-1"))

    # The revoked token stays cached, so the resend is rejected too, and only once.
    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "80200003"
    assert len(fake_huawei.requests) == 2


def test_invalid_ttl_option_is_permanent(provider, fake_huawei):
    result = send_one(provider, message(ttl_seconds="a day"))

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_options"
    assert fake_huawei.requests == []


def test_urgent_priority_is_high_urgency(provider, fake_huawei):
    send_one(provider, message(priority="urgent"))

    assert fake_huawei.requests[0].message["android"]["urgency"] == "HIGH"


def test_validate_requires_callback_pair():
    errors = HuaweiProvider.validate({"app_id": "1", "callback_username": "receipts"},
                                     {"client_secret": "s"})
    complete = HuaweiProvider.validate({"app_id": "1", "callback_username": "receipts"},
                                       {"client_secret": "s", "callback_key": "k"})

    assert set(errors) == {"credentials.callback_key"}
    assert complete == {}
