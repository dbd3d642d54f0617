"""TpnsProvider end to end against the fake TPNS push API."""

import base64
import json
import time

import pytest
import requests

from channels_app.models import Channel, Device
from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.tpns import ERROR_CODES, TpnsProvider, sign
from sharestack_push.notifications.models import PushRecord
from tests.notifications.conftest import post_push, run_jobs  # noqa: F401

# Written from TPNS's server error codes, independently of the adapter's table. The
# invalid-token codes are for a single-token push; a list push makes them permanent.
EXPECTED_OUTCOMES = {
    1008004: Outcome.RETRYABLE, 1008028: Outcome.RETRYABLE,
    1008001: Outcome.PERMANENT, 1008002: Outcome.PERMANENT, 1008007: Outcome.PERMANENT,
    1008019: Outcome.PERMANENT, 10010012: Outcome.PERMANENT, 10010018: Outcome.PERMANENT,
    1008003: Outcome.CONFIGURATION, 10030002: Outcome.CONFIGURATION,
    1008023: Outcome.CONFIGURATION, 1008030: Outcome.CONFIGURATION,
    1008031: Outcome.CONFIGURATION, 1010001: Outcome.CONFIGURATION,
    1008029: Outcome.INVALID_ADDRESS, 1008006: Outcome.INVALID_ADDRESS,
    10010005: Outcome.INVALID_ADDRESS, 10110008: Outcome.INVALID_ADDRESS,
}


def build_provider(fake, secret=None, **config) -> TpnsProvider:
    return TpnsProvider({"access_id": fake.access_id, "base_url": fake.base_url, **config},
                        {"secret_key": secret or fake.secret_key}, timeout=5)


@pytest.fixture
def provider(fake_tpns):
    adapter = build_provider(fake_tpns)
    yield adapter
    adapter.close()


def message(record_id=1, token="tok-1", platform="android", **options) -> OutgoingMessage:
    return OutgoingMessage(record_id, token, "Order shipped", "Your parcel is on its way",
                           {"order": "A-17"}, platform=platform, options=options)


def test_sign_matches_published_vector():
    body = (b'{"audience_type":"token","token_list":["tok1"],"message_type":"notify",'
            b'"message":{"title":"t","content":"c"},"environment":"dev"}')

    result = sign("0123456789abcdef0123456789abcdef", "1500000001", "1700000000", body)

    assert base64.b64decode(result).decode() == (
        "7264080845cfe36e1ca65a8bd09db8cd00c12c13c3309a8afa792b20cfc22749")
    assert result == ("NzI2NDA4MDg0NWNmZTM2ZTFjYTY1YThiZDA5ZGI4Y2QwMGMxMmMxM2MzMzA5YThh"
                      "ZmE3OTJiMjBjZmMyMjc0OQ==")


def test_success_stores_push_id(provider, fake_tpns):
    [result] = provider.send([message()])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id in fake_tpns.pushes


def test_android_request(provider, fake_tpns):
    provider.send([message(icon="ic_order", sound="chime", badge=3,
                           click_action="https://shop.test/o/17",
                           image="https://cdn.test/p.png", channel_id="orders",
                           collapse_key="order-17", ttl_seconds=999999)])

    [request] = fake_tpns.requests
    push = request.json()
    android = push["message"]["android"]
    assert request.headers["AccessId"] == fake_tpns.access_id
    assert abs(int(request.headers["TimeStamp"]) - time.time()) < 60
    assert push["audience_type"] == "token"
    assert push["token_list"] == ["tok-1"]
    assert push["message_type"] == "notify"
    assert push["message"]["title"] == "Order shipped"
    assert push["message"]["content"] == "Your parcel is on its way"
    assert push["message"]["xg_media_resources"] == "https://cdn.test/p.png"
    assert json.loads(android["custom_content"]) == {"order": "A-17"}
    assert android["n_ch_id"] == "orders"
    assert android["small_icon"] == "ic_order"
    assert android["ring_raw"] == "chime"
    assert android["badge_type"] == 3
    assert android["action"] == {"action_type": 2,
                                 "browser": {"url": "https://shop.test/o/17", "confirm": 0}}
    assert push["expire_time"] == 72 * 3600
    assert isinstance(push["collapse_id"], int)
    assert push["environment"] == "product"


def test_intent_click_action(provider, fake_tpns):
    provider.send([message(click_action="xgscheme://com.demo/order?id=17")])

    action = fake_tpns.requests[0].json()["message"]["android"]["action"]
    assert action == {"action_type": 3, "intent": "xgscheme://com.demo/order?id=17"}


def test_ios_request(fake_tpns):
    adapter = build_provider(fake_tpns, environment="dev")

    adapter.send([message(platform="ios", sound="chime.caf", badge=5,
                          click_action="app://o/17", image="https://cdn.test/p.png")])
    adapter.close()

    push = fake_tpns.requests[0].json()
    ios = push["message"]["ios"]
    assert push["environment"] == "dev"
    assert ios["aps"]["alert"] == {"title": "Order shipped", "body": "Your parcel is on its way"}
    assert ios["aps"]["sound"] == "chime.caf"
    assert ios["aps"]["badge_type"] == 5
    assert ios["aps"]["mutable-content"] == 1
    assert json.loads(ios["custom_content"]) == {"order": "A-17", "click_action": "app://o/17"}


def test_high_priority_uses_configured_channel(fake_tpns):
    adapter = build_provider(fake_tpns, high_priority_channel_id="alerts")

    adapter.send([OutgoingMessage(1, "tok-1", "Alarm", "Door open", priority="high")])
    adapter.close()

    assert fake_tpns.requests[0].json()["message"]["android"]["n_ch_id"] == "alerts"


def test_batches_split_at_1000(provider, fake_tpns):
    results = provider.send([message(i, f"tok-{i}") for i in range(1, 1502)])

    pushes = [r.json() for r in fake_tpns.requests]
    assert sorted(len(p["token_list"]) for p in pushes) == [501, 1000]
    assert {p["audience_type"] for p in pushes} == {"token_list"}
    assert [r.outcome for r in results] == [Outcome.SENT] * 1501


def test_invalid_single_token_is_invalid_address(provider, fake_tpns):
    fake_tpns.invalid_tokens.add("tok-1")

    [result] = provider.send([message()])

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "1008029"


def test_invalid_code_in_list_is_permanent(provider, fake_tpns):
    fake_tpns.script("tok-2", "10010005")

    results = provider.send([message(1, "tok-1"), message(2, "tok-2")])

    assert [r.outcome for r in results] == [Outcome.PERMANENT] * 2


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake_tpns, code):
    fake_tpns.script("tok-1", str(code))

    [result] = provider.send([message()])

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == str(code)


def test_too_fast_waits_a_second(provider, fake_tpns):
    fake_tpns.script("tok-1", "1008028")

    [result] = provider.send([message()])

    assert result.retry_after == 1.0


def test_wrong_secret_is_configuration(fake_tpns):
    adapter = build_provider(fake_tpns, secret="0" * 32)

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "1008003"


def test_unknown_access_id_is_configuration(fake_tpns):
    adapter = TpnsProvider({"access_id": "1599999999", "base_url": fake_tpns.base_url},
                           {"secret_key": fake_tpns.secret_key}, timeout=5)

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "403"


def test_connection_refused_is_retryable(provider, fake_tpns):
    fake_tpns.stop()

    [result] = provider.send([message()])

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_validate_checks_environment():
    errors = TpnsProvider.validate({"access_id": "1", "environment": "prod"},
                                   {"secret_key": "s"})

    assert set(errors) == {"config.environment"}


def basic(fake, secret=None) -> dict:
    pair = f"{fake.access_id}:{secret or fake.secret_key}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def test_fake_accepts_basic_auth(fake_tpns):
    push = {"audience_type": "token", "token_list": ["t"], "message_type": "notify",
            "message": {"title": "t", "content": "c"}}

    good = requests.post(f"{fake_tpns.base_url}/v3/push/app", json=push,
                         headers=basic(fake_tpns), timeout=5).json()
    bad = requests.post(f"{fake_tpns.base_url}/v3/push/app", json=push,
                        headers=basic(fake_tpns, "wrong"), timeout=5).json()

    assert good["ret_code"] == 0
    assert bad["ret_code"] == 1008003


def test_fake_rejects_object_custom_content(fake_tpns):
    push = {"audience_type": "token", "token_list": ["t"], "message_type": "notify",
            "message": {"title": "t", "content": "c", "android": {"custom_content": {}}}}

    reply = requests.post(f"{fake_tpns.base_url}/v3/push/app", json=push,
                          headers=basic(fake_tpns), timeout=5).json()

    assert reply["ret_code"] == 1008001


def test_fake_requires_environment_for_ios(fake_tpns):
    push = {"audience_type": "token", "token_list": ["t"], "message_type": "notify",
            "message": {"title": "t", "content": "c", "ios": {"aps": {}}}}

    reply = requests.post(f"{fake_tpns.base_url}/v3/push/app", json=push,
                          headers=basic(fake_tpns), timeout=5).json()

    assert reply["ret_code"] == 1008002


def test_fake_rejects_too_many_tokens(fake_tpns):
    push = {"audience_type": "token_list", "token_list": [f"t{i}" for i in range(1001)],
            "message_type": "notify", "message": {"title": "t", "content": "c"}}

    reply = requests.post(f"{fake_tpns.base_url}/v3/push/app", json=push,
                          headers=basic(fake_tpns), timeout=5).json()

    assert reply["ret_code"] == 1008007


def test_pipeline_sends_to_tpns_device(fake_tpns, post_push):  # noqa: F811
    Channel.objects.create(
        name="tpns", kind="app", provider="tpns",
        config={"access_id": fake_tpns.access_id, "base_url": fake_tpns.base_url},
        credentials={"secret_key": fake_tpns.secret_key},
    )
    Device.objects.create(user_id="mei", platform="android", provider="tpns", token="tok-mei")

    post_push(notification_id="n1", user_id="mei")

    record = PushRecord.objects.get()
    [request] = fake_tpns.requests
    assert request.json()["token_list"] == ["tok-mei"]
    assert record.status == "sent"
    assert record.provider_message_id in fake_tpns.pushes


def test_signature_covers_utf8_body(provider, fake_tpns):
    [result] = provider.send([OutgoingMessage(1, "tok-1", "订单已发货", "包裹在路上")])

    assert result.outcome == Outcome.SENT
    assert fake_tpns.requests[0].json()["message"]["title"] == "订单已发货"


def test_invalid_badge_is_permanent(provider, fake_tpns):
    [result] = provider.send([message(badge="many")])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_option"
    assert fake_tpns.requests == []
