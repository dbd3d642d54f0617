"""JPushProvider end to end against the fake JPush push API."""

import base64

import pytest
import requests

from channels_app.models import Channel, Device
from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.jpush import ERROR_CODES, JPushProvider
from sharestack_push.notifications.models import PushRecord
from tests.fakes.jpush import RATE_LIMIT_RESET
from tests.notifications.conftest import post_push, run_jobs  # noqa: F401

# Written from JPush's HTTP status code reference, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    1000: Outcome.RETRYABLE, 1030: Outcome.RETRYABLE, 2002: Outcome.RETRYABLE,
    1001: Outcome.PERMANENT, 1002: Outcome.PERMANENT, 1003: Outcome.PERMANENT,
    1005: Outcome.PERMANENT, 1009: Outcome.PERMANENT, 1012: Outcome.PERMANENT,
    2005: Outcome.PERMANENT, 1011: Outcome.INVALID_ADDRESS,
    1004: Outcome.CONFIGURATION, 1008: Outcome.CONFIGURATION, 1020: Outcome.CONFIGURATION,
    2003: Outcome.CONFIGURATION, 2004: Outcome.CONFIGURATION, 2006: Outcome.CONFIGURATION,
    2007: Outcome.CONFIGURATION,
}


def build_provider(fake, secret=None, **config) -> JPushProvider:
    return JPushProvider({"app_key": fake.app_key, "base_url": fake.base_url, **config},
                         {"master_secret": secret or fake.master_secret}, timeout=5)


@pytest.fixture
def provider(fake_jpush):
    adapter = build_provider(fake_jpush)
    yield adapter
    adapter.close()


def message(record_id=1, token="rid-1", platform="android", **options) -> OutgoingMessage:
    return OutgoingMessage(record_id, token, "Order shipped", "Your parcel is on its way",
                           {"order": "A-17"}, platform=platform, options=options)


def test_success_stores_msg_id(provider, fake_jpush):
    [result] = provider.send([message()])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id in fake_jpush.pushes


def test_basic_auth_matches_documented_vector():
    adapter = JPushProvider({"app_key": "7d431e42dfa6a6d693ac2d04"},
                            {"master_secret": "5e987ac6d2e04d95a9d8f0d1"}, timeout=5)

    header = adapter._headers["Authorization"]
    adapter.close()

    assert header == ("Basic N2Q0MzFlNDJkZmE2YTZkNjkzYWMyZDA0OjVlOTg3YWM2ZDJl"
                      "MDRkOTVhOWQ4ZjBkMQ==")


def test_android_push_object(provider, fake_jpush):
    provider.send([message(icon="https://cdn.test/i.png", click_action="app://order/17",
                           image="https://cdn.test/p.png", channel_id="orders",
                           ttl_seconds=600, sound="chime")])

    push = fake_jpush.requests[0].json()
    android = push["notification"]["android"]
    assert push["platform"] == ["android"]
    assert push["audience"] == {"registration_id": ["rid-1"]}
    assert android["alert"] == "Your parcel is on its way"
    assert android["title"] == "Order shipped"
    assert android["extras"] == {"order": "A-17"}
    assert android["large_icon"] == "https://cdn.test/i.png"
    assert android["intent"] == {"url": "app://order/17"}
    assert android["big_pic_path"] == "https://cdn.test/p.png"
    assert android["channel_id"] == "orders"
    assert "sound" not in android
    assert push["options"] == {"apns_production": True, "time_to_live": 600}
    assert push["cid"].startswith(fake_jpush.app_key + "-")


def test_ios_push_object(provider, fake_jpush):
    provider.send([message(platform="ios", sound="chime.caf", badge="+1",
                           click_action="app://order/17", image="https://cdn.test/p.png",
                           collapse_key="order-17")])

    push = fake_jpush.requests[0].json()
    ios = push["notification"]["ios"]
    assert push["platform"] == ["ios"]
    assert ios["alert"] == {"title": "Order shipped", "body": "Your parcel is on its way"}
    assert ios["sound"] == "chime.caf"
    assert ios["badge"] == "+1"
    assert ios["mutable-content"] is True
    assert ios["extras"] == {"order": "A-17", "click_action": "app://order/17",
                             "image": "https://cdn.test/p.png"}
    assert push["options"]["apns_collapse_id"] == "order-17"


def test_numeric_badge_and_sandbox(fake_jpush):
    adapter = build_provider(fake_jpush, apns_production=False)

    adapter.send([message(platform="ios", badge="3")])
    adapter.close()

    push = fake_jpush.requests[0].json()
    assert push["notification"]["ios"]["badge"] == 3
    assert push["options"]["apns_production"] is False


@pytest.mark.parametrize("priority, expected", [("low", -1), ("normal", 0), ("urgent", 2)])
def test_priority_sets_android_priority(provider, fake_jpush, priority, expected):
    provider.send([OutgoingMessage(1, "rid-1", "t", "b", priority=priority)])

    assert fake_jpush.requests[0].json()["notification"]["android"]["priority"] == expected


def test_platforms_sent_separately(provider, fake_jpush):
    results = provider.send([message(1, "rid-1"), message(2, "rid-2", platform="ios")])

    platforms = sorted(r.json()["platform"][0] for r in fake_jpush.requests)
    assert platforms == ["android", "ios"]
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]


def test_batches_split_at_1000(provider, fake_jpush):
    results = provider.send([message(i, f"rid-{i}") for i in range(1, 2002)])

    sizes = sorted(len(r.json()["audience"]["registration_id"]) for r in fake_jpush.requests)
    assert sizes == [1, 1000, 1000]
    assert [r.outcome for r in results] == [Outcome.SENT] * 2001
    assert len({r.provider_message_id for r in results}) == 3


def test_retried_batch_is_not_pushed_twice(provider, fake_jpush):
    first = provider.send([message(1, "rid-1"), message(2, "rid-2")])
    second = provider.send([message(1, "rid-1"), message(2, "rid-2")])

    cids = {r.json()["cid"] for r in fake_jpush.requests}
    assert len(cids) == 1
    assert second[0].provider_message_id == first[0].provider_message_id
    assert len(fake_jpush.pushes) == 1


def test_unknown_single_id_is_invalid_address(provider, fake_jpush):
    fake_jpush.invalid_tokens.add("rid-1")

    [result] = provider.send([message()])

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "1011"


def test_no_match_in_batch_resent_one_by_one(provider, fake_jpush):
    fake_jpush.invalid_tokens.update({"rid-1", "rid-2"})

    results = provider.send([message(1, "rid-1"), message(2, "rid-2")])

    assert [r.outcome for r in results] == [Outcome.INVALID_ADDRESS] * 2
    assert len(fake_jpush.requests) == 3


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake_jpush, code):
    fake_jpush.script("rid-1", str(code))

    [result] = provider.send([message()])

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == str(code)


def test_rate_limit_uses_reset_header(provider, fake_jpush):
    fake_jpush.script("rid-1", "2002")

    [result] = provider.send([message()])

    assert result.retry_after == RATE_LIMIT_RESET
    assert result.response_data == {"status": 429}


def test_wrong_secret_is_configuration(fake_jpush):
    adapter = build_provider(fake_jpush, secret="wrong-master-secret")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "1004"


def test_body_without_code_classified_by_status(fake_jpush):
    adapter = build_provider(fake_jpush, base_url=fake_jpush.base_url + "/missing")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "404"


def test_connection_refused_is_retryable(provider, fake_jpush):
    fake_jpush.stop()

    [result] = provider.send([message()])

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_validate_checks_apns_production():
    errors = JPushProvider.validate({"app_key": "k", "apns_production": "yes"},
                                    {"master_secret": "s"})

    assert set(errors) == {"config.apns_production"}


def auth(fake) -> dict:
    pair = f"{fake.app_key}:{fake.master_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def test_fake_rejects_too_many_ids(fake_jpush):
    push = {"platform": ["android"],
            "audience": {"registration_id": [f"r{i}" for i in range(1001)]},
            "notification": {"android": {"alert": "a"}}}

    response = requests.post(f"{fake_jpush.base_url}/v3/push", json=push,
                             headers=auth(fake_jpush), timeout=5)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 1003


def test_fake_rejects_android_sound(fake_jpush):
    push = {"platform": ["android"], "audience": {"registration_id": ["r1"]},
            "notification": {"android": {"alert": "a", "sound": "x"}}}

    response = requests.post(f"{fake_jpush.base_url}/v3/push", json=push,
                             headers=auth(fake_jpush), timeout=5)

    assert response.json()["error"]["code"] == 1009
    assert response.headers["X-Rate-Limit-Quota"] == "600"


def test_pipeline_sends_to_jpush_device(fake_jpush, post_push):  # noqa: F811
    Channel.objects.create(
        name="jpush", kind="app", provider="jpush",
        config={"app_key": fake_jpush.app_key, "base_url": fake_jpush.base_url},
        credentials={"master_secret": fake_jpush.master_secret},
    )
    Device.objects.create(user_id="mei", platform="android", provider="jpush", token="rid-mei")

    post_push(notification_id="n1", user_id="mei")

    record = PushRecord.objects.get()
    [request] = fake_jpush.requests
    assert request.json()["audience"] == {"registration_id": ["rid-mei"]}
    assert record.status == "sent"
    assert record.provider_message_id in fake_jpush.pushes


def test_invalid_badge_is_permanent(provider, fake_jpush):
    [result] = provider.send([message(platform="ios", badge="many")])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_option"
    assert fake_jpush.requests == []


def test_classify_without_code_uses_status():
    from channels_app.providers.jpush import classify

    assert classify(502, None) == Outcome.RETRYABLE
    assert classify(400, None) == Outcome.PERMANENT
    assert classify(429, 9999) == Outcome.RETRYABLE
