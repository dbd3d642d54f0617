"""AliyunPushProvider end to end against the fake Aliyun Mobile Push RPC API."""

import json
from datetime import UTC, datetime

import pytest
import requests

from channels_app.models import Channel, Device
from channels_app.providers.aliyun_push import (
    CODE_PREFIXES,
    ERROR_CODES,
    AliyunPushProvider,
    classify,
    signature,
)
from channels_app.providers.base import Outcome, OutgoingMessage
from sharestack_push.notifications.models import PushRecord
from tests.notifications.conftest import post_push, run_jobs  # noqa: F401

# Written from Aliyun Mobile Push's error table, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    "Throttling.User": Outcome.RETRYABLE, "Throttling.Api": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE, "InternalError": Outcome.RETRYABLE,
    "SignatureNonceUsed": Outcome.RETRYABLE, "InvalidParameter": Outcome.PERMANENT,
    "InvalidTarget": Outcome.PERMANENT, "InvalidJsonExtParameter": Outcome.PERMANENT,
    "AppLimitExceed": Outcome.PERMANENT,
    "InvalidAccessKeyId.NotFound": Outcome.CONFIGURATION,
    "SignatureDoesNotMatch": Outcome.CONFIGURATION, "Forbidden": Outcome.CONFIGURATION,
    "InvalidTimeStamp.Expired": Outcome.CONFIGURATION,
    "InvalidTimeStamp.Format": Outcome.CONFIGURATION,
    "AccountDisabled": Outcome.CONFIGURATION, "AccountInDebt": Outcome.CONFIGURATION,
    "AccountNotEnabled": Outcome.CONFIGURATION, "AccountNotSupported": Outcome.CONFIGURATION,
    "AccountProhibited": Outcome.CONFIGURATION, "AppNotConfigAndroid": Outcome.CONFIGURATION,
    "AppNotConfigIOS": Outcome.CONFIGURATION, "AppTypeNotIos": Outcome.CONFIGURATION,
    "CertificateExpired": Outcome.CONFIGURATION, "CertificateRevoked": Outcome.CONFIGURATION,
    "CertModeNotMatch": Outcome.CONFIGURATION,
    "ChannelConfigNotConfigured": Outcome.CONFIGURATION,
    "InvalidProduct.NotFound": Outcome.CONFIGURATION,
    "InvalidApi.NotFound": Outcome.CONFIGURATION,
    "InvalidProtocol.NeedSsl": Outcome.CONFIGURATION,
}
# One member of each code family that carries a parameter name.
FAMILY_EXAMPLES = {
    "Throttling.Tenant": Outcome.RETRYABLE,
    "MissingTitle": Outcome.PERMANENT,
    "InvalidDeviceIds.Format": Outcome.PERMANENT,
    "InvalidAppKey.NotFound": Outcome.PERMANENT,
}


def build_provider(fake, secret=None, **config) -> AliyunPushProvider:
    return AliyunPushProvider(
        {"app_key": fake.app_key, "base_url": fake.base_url, **config},
        {"access_key_id": fake.access_key_id,
         "access_key_secret": secret or fake.access_key_secret},
        timeout=5,
    )


@pytest.fixture
def provider(fake_aliyun_push):
    adapter = build_provider(fake_aliyun_push)
    yield adapter
    adapter.close()


def message(record_id=1, token="device-1", platform="android", **options) -> OutgoingMessage:
    return OutgoingMessage(record_id, token, "Order shipped", "Your parcel is on its way",
                           {"order": "A-17"}, platform=platform, options=options)


def test_signature_matches_vendor_example():
    params = {
        "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }

    assert signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_signature_matches_push_vector():
    params = {
        "AccessKeyId": "testid", "Action": "Push", "AppKey": "23267207",
        "Body": "hello world", "DeviceType": "ANDROID", "Format": "JSON",
        "PushType": "NOTICE", "RegionId": "cn-hangzhou", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0", "Target": "DEVICE",
        "TargetValue": "deviceid1,deviceid2", "Timestamp": "2024-01-01T12:00:00Z",
        "Title": "t", "Version": "2016-08-01",
    }

    assert signature("POST", params, "testsecret") == "hQxjyCQRx/kWdlQ/HPPAGcnxYCo="


def test_success_stores_message_id(provider, fake_aliyun_push):
    [result] = provider.send([message()])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id in fake_aliyun_push.pushes


def test_android_parameters(provider, fake_aliyun_push):
    provider.send([message(icon="https://cdn.test/i.png", sound="chime",
                           click_action="https://shop.test/o/17",
                           image="https://cdn.test/p.png", channel_id="orders",
                           collapse_key="order-17", ttl_seconds=3600)])

    form = fake_aliyun_push.requests[0].form()
    assert form["Action"] == "Push"
    assert form["Format"] == "JSON"
    assert form["Version"] == "2016-08-01"
    assert form["DeviceType"] == "ANDROID"
    assert form["Target"] == "DEVICE"
    assert form["TargetValue"] == "device-1"
    assert form["Title"] == "Order shipped"
    assert form["Body"] == "Your parcel is on its way"
    assert json.loads(form["AndroidExtParameters"]) == {"order": "A-17"}
    assert form["AndroidOpenType"] == "URL"
    assert form["AndroidOpenUrl"] == "https://shop.test/o/17"
    assert form["AndroidImageUrl"] == "https://cdn.test/i.png"
    assert form["AndroidBigPictureUrl"] == "https://cdn.test/p.png"
    assert form["AndroidMusic"] == "chime"
    assert form["AndroidNotificationChannel"] == "orders"
    assert form["AndroidNotificationNotifyId"].isdigit()
    assert form["StoreOffline"] == "true"
    assert datetime.strptime(form["ExpireTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC) > datetime.now(UTC)


def test_activity_click_action(provider, fake_aliyun_push):
    provider.send([message(click_action="com.demo.OrderActivity")])

    form = fake_aliyun_push.requests[0].form()
    assert form["AndroidOpenType"] == "ACTIVITY"
    assert form["AndroidActivity"] == "com.demo.OrderActivity"


def test_ios_parameters(fake_aliyun_push):
    adapter = build_provider(fake_aliyun_push, apns_env="DEV")

    adapter.send([OutgoingMessage(1, "device-1", "t", "b", {"a": 1}, platform="ios",
                                  priority="urgent",
                                  options={"sound": "chime.caf", "badge": 2,
                                           "click_action": "app://o/17",
                                           "image": "https://cdn.test/p.png",
                                           "collapse_key": "o-17"})])
    adapter.close()

    form = fake_aliyun_push.requests[0].form()
    assert form["DeviceType"] == "iOS"
    assert form["iOSApnsEnv"] == "DEV"
    assert form["iOSMusic"] == "chime.caf"
    assert form["iOSBadge"] == "2"
    assert form["iOSMutableContent"] == "true"
    assert form["iOSNotificationCollapseId"] == "o-17"
    assert form["iOSInterruptionLevel"] == "time-sensitive"
    assert json.loads(form["iOSExtParameters"]) == {
        "a": 1, "click_action": "app://o/17", "image": "https://cdn.test/p.png"}


def test_high_priority_sets_bar_priority(provider, fake_aliyun_push):
    provider.send([OutgoingMessage(1, "device-1", "t", "b", priority="high")])

    assert fake_aliyun_push.requests[0].form()["AndroidNotificationBarPriority"] == "2"


def test_batches_split_at_1000(provider, fake_aliyun_push):
    results = provider.send([message(i, f"device-{i}") for i in range(1, 1202)])

    sizes = sorted(len(r.form()["TargetValue"].split(",")) for r in fake_aliyun_push.requests)
    assert sizes == [201, 1000]
    assert [r.outcome for r in results] == [Outcome.SENT] * 1201


def test_every_request_has_a_fresh_nonce(provider, fake_aliyun_push):
    provider.send([message(1)])
    provider.send([message(2)])

    nonces = {r.form()["SignatureNonce"] for r in fake_aliyun_push.requests}
    assert len(nonces) == 2


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)
    assert {prefix for prefix, _ in CODE_PREFIXES} == {"Throttling", "Missing", "Invalid"}


@pytest.mark.parametrize("code", sorted({**EXPECTED_OUTCOMES, **FAMILY_EXAMPLES}))
def test_error_code_outcome(provider, fake_aliyun_push, code):
    fake_aliyun_push.script("device-1", code)

    [result] = provider.send([message()])

    assert result.outcome == {**EXPECTED_OUTCOMES, **FAMILY_EXAMPLES}[code]
    assert result.error_code == code


def test_unknown_code_classified_by_status():
    assert classify(503, "Busy") == Outcome.RETRYABLE
    assert classify(403, "Denied") == Outcome.CONFIGURATION
    assert classify(400, "Odd") == Outcome.PERMANENT


def test_wrong_secret_is_configuration(fake_aliyun_push):
    adapter = build_provider(fake_aliyun_push, secret="wrong-secret")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "SignatureDoesNotMatch"
    assert result.response_data["status"] == 400


def test_wrong_app_key_is_permanent(fake_aliyun_push):
    adapter = AliyunPushProvider(
        {"app_key": "999", "base_url": fake_aliyun_push.base_url},
        {"access_key_id": fake_aliyun_push.access_key_id,
         "access_key_secret": fake_aliyun_push.access_key_secret}, timeout=5)

    [result] = adapter.send([message()])
    adapter.close()

    assert result.error_code == "InvalidAppKey.NotFound"


def test_connection_refused_is_retryable(provider, fake_aliyun_push):
    fake_aliyun_push.stop()

    [result] = provider.send([message()])

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_validate_checks_apns_env():
    errors = AliyunPushProvider.validate(
        {"app_key": "1", "apns_env": "prod"},
        {"access_key_id": "a", "access_key_secret": "b"})

    assert set(errors) == {"config.apns_env"}


def signed_request(fake, params: dict, method="POST") -> requests.Response:
    adapter = build_provider(fake)
    signed = adapter.signed(params)
    adapter.close()
    if method == "GET":
        signed["Signature"] = signature("GET", {k: v for k, v in signed.items()
                                                if k != "Signature"}, fake.access_key_secret)
        return requests.get(fake.base_url + "/", params=signed, timeout=5)
    return requests.post(fake.base_url + "/", data=signed, timeout=5)


def test_fake_rejects_reused_nonce(fake_aliyun_push):
    adapter = build_provider(fake_aliyun_push)
    signed = adapter.signed(adapter.params([message()]))
    adapter.close()

    first = requests.post(fake_aliyun_push.base_url + "/", data=signed, timeout=5)
    second = requests.post(fake_aliyun_push.base_url + "/", data=signed, timeout=5)

    assert first.status_code == 200
    assert second.json()["Code"] == "SignatureNonceUsed"


def test_fake_rejects_old_timestamp(fake_aliyun_push):
    adapter = build_provider(fake_aliyun_push)
    params = adapter.signed(adapter.params([message()]))
    params["Timestamp"] = "2020-01-01T00:00:00Z"
    del params["Signature"]
    params["Signature"] = signature("POST", params, fake_aliyun_push.access_key_secret)
    adapter.close()

    response = requests.post(fake_aliyun_push.base_url + "/", data=params, timeout=5)

    assert response.json()["Code"] == "InvalidTimeStamp.Expired"


def test_fake_checks_devices_over_get(fake_aliyun_push):
    fake_aliyun_push.invalid_tokens.add("dead")

    response = signed_request(fake_aliyun_push,
                              {"Action": "CheckDevices", "DeviceIds": "live,dead"}, "GET")

    infos = response.json()["DeviceCheckInfos"]["DeviceCheckInfo"]
    assert [info["Available"] for info in infos] == [True, False]


def test_fake_answers_xml_without_format(fake_aliyun_push):
    adapter = build_provider(fake_aliyun_push)
    params = adapter.signed(adapter.params([message()]))
    del params["Format"], params["Signature"]
    params["Signature"] = signature("POST", params, fake_aliyun_push.access_key_secret)
    adapter.close()

    response = requests.post(fake_aliyun_push.base_url + "/", data=params, timeout=5)

    assert response.text.startswith("<PushResponse>")


def test_fake_rejects_too_many_devices(fake_aliyun_push):
    adapter = build_provider(fake_aliyun_push)
    params = adapter.params([message(i, f"d{i}") for i in range(1001)])

    response = signed_request(fake_aliyun_push, params)

    assert response.json()["Code"] == "InvalidParameter"


def test_pipeline_sends_to_aliyun_device(fake_aliyun_push, post_push):  # noqa: F811
    Channel.objects.create(
        name="aliyun", kind="app", provider="aliyun_push",
        config={"app_key": fake_aliyun_push.app_key, "base_url": fake_aliyun_push.base_url},
        credentials={"access_key_id": fake_aliyun_push.access_key_id,
                     "access_key_secret": fake_aliyun_push.access_key_secret},
    )
    Device.objects.create(user_id="mei", platform="android", provider="aliyun_push",
                          token="device-mei")

    post_push(notification_id="n1", user_id="mei")

    record = PushRecord.objects.get()
    [request] = fake_aliyun_push.requests
    assert request.form()["TargetValue"] == "device-mei"
    assert record.status == "sent"
    assert record.provider_message_id in fake_aliyun_push.pushes


def test_invalid_badge_is_permanent(provider, fake_aliyun_push):
    [result] = provider.send([message(platform="ios", badge="many")])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_option"
    assert fake_aliyun_push.requests == []
