"""XiaomiProvider end to end against the fake MiPush server, receipts included."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from channels_app.models import Channel, Device
from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.xiaomi import ERROR_CODES, XiaomiProvider
from sharestack_push.notifications.models import PushRecord
from tests.notifications.conftest import post_push, run_jobs  # noqa: F401

CALLBACK_URL = "https://push.example.test/api/v1/callbacks/1"

# Written from MiPush's error code list, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    -1: Outcome.RETRYABLE, 1: Outcome.RETRYABLE, 10001: Outcome.RETRYABLE,
    10002: Outcome.RETRYABLE, 10003: Outcome.RETRYABLE, 10027: Outcome.RETRYABLE,
    10034: Outcome.RETRYABLE, 26004: Outcome.RETRYABLE, 10008: Outcome.PERMANENT,
    10016: Outcome.PERMANENT, 10017: Outcome.PERMANENT, 21305: Outcome.PERMANENT,
    65009: Outcome.PERMANENT, 65003: Outcome.PERMANENT, 20301: Outcome.INVALID_ADDRESS,
    22022: Outcome.CONFIGURATION, 21301: Outcome.CONFIGURATION,
    21302: Outcome.CONFIGURATION, 22000: Outcome.CONFIGURATION,
    10031: Outcome.CONFIGURATION, 10036: Outcome.CONFIGURATION,
}


def build_provider(fake, secret=None, **credentials) -> XiaomiProvider:
    return XiaomiProvider(
        {"package_name": fake.package_name, "base_url": fake.base_url},
        {"app_secret": secret or fake.app_secret, **credentials},
        timeout=5, callback_url=CALLBACK_URL,
    )


@pytest.fixture
def provider(fake_xiaomi):
    adapter = build_provider(fake_xiaomi)
    yield adapter
    adapter.close()


def message(record_id=1, token="regid-1", **options) -> OutgoingMessage:
    return OutgoingMessage(record_id, token, "Order shipped", "Your parcel is on its way",
                           {"order": "A-17"}, platform="android", options=options)


def test_success_stores_message_id(provider, fake_xiaomi):
    [result] = provider.send([message()])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id in fake_xiaomi.messages


def test_request_form_fields(provider, fake_xiaomi):
    provider.send([message()])

    [request] = fake_xiaomi.requests
    form = request.form()
    assert request.path == "/v3/message/regid"
    assert request.headers["Authorization"] == f"key={fake_xiaomi.app_secret}"
    assert form["registration_id"] == "regid-1"
    assert form["restricted_package_name"] == "com.sharestack.demo"
    assert form["title"] == "Order shipped"
    assert form["description"] == "Your parcel is on its way"
    assert json.loads(form["payload"]) == {"order": "A-17"}
    assert form["pass_through"] == "0"
    assert form["extra.notify_effect"] == "1"
    assert "extra.callback" not in form


def test_options_map_to_extra_fields(provider, fake_xiaomi):
    provider.send([message(click_action="https://shop.test/o/17", sound="chime",
                           channel_id="orders", collapse_key="order-17", ttl_seconds=60)])

    form = fake_xiaomi.requests[0].form()
    assert form["extra.notify_effect"] == "3"
    assert form["extra.web_uri"] == "https://shop.test/o/17"
    assert form["extra.sound_uri"] == "android.resource://com.sharestack.demo/raw/chime"
    assert form["extra.channel_id"] == "orders"
    assert form["time_to_live"] == "60000"
    assert form["notify_id"].isdigit()


def test_intent_click_action(provider, fake_xiaomi):
    provider.send([message(click_action="intent:#Intent;component=demo/.Order;end")])

    form = fake_xiaomi.requests[0].form()
    assert form["extra.notify_effect"] == "2"
    assert form["extra.intent_uri"] == "intent:#Intent;component=demo/.Order;end"


def test_high_priority_uses_configured_channel(fake_xiaomi):
    adapter = XiaomiProvider(
        {"package_name": fake_xiaomi.package_name, "base_url": fake_xiaomi.base_url,
         "channel_id": "default", "high_priority_channel_id": "alerts"},
        {"app_secret": fake_xiaomi.app_secret}, timeout=5,
    )
    urgent = OutgoingMessage(1, "regid-1", "Alarm", "Door open", priority="urgent")
    normal = OutgoingMessage(2, "regid-2", "News", "Weekly digest")

    adapter.send([urgent, normal])
    adapter.close()

    channels = sorted(r.form()["extra.channel_id"] for r in fake_xiaomi.requests)
    assert channels == ["alerts", "default"]


def test_equal_messages_share_one_request(provider, fake_xiaomi):
    results = provider.send([message(i, f"regid-{i}") for i in range(1, 4)])

    [request] = fake_xiaomi.requests
    assert request.form()["registration_id"] == "regid-1,regid-2,regid-3"
    assert len({r.provider_message_id for r in results}) == 1


def test_batches_split_at_1000(provider, fake_xiaomi):
    results = provider.send([message(i, f"regid-{i}") for i in range(1, 2502)])

    sizes = sorted(len(r.form()["registration_id"].split(",")) for r in fake_xiaomi.requests)
    assert sizes == [501, 1000, 1000]
    assert [r.outcome for r in results] == [Outcome.SENT] * 2501


def test_bad_regids_are_invalid_addresses(provider, fake_xiaomi):
    fake_xiaomi.invalid_tokens.add("regid-2")

    results = {r.record_id: r for r in provider.send([message(1, "regid-1"),
                                                      message(2, "regid-2")])}

    assert results[1].outcome == Outcome.SENT
    assert results[2].outcome == Outcome.INVALID_ADDRESS
    assert results[2].error_code == "bad_regid"


def test_no_valid_target_resent_one_by_one(provider, fake_xiaomi):
    fake_xiaomi.invalid_tokens.update({"regid-1", "regid-2"})

    results = provider.send([message(1, "regid-1"), message(2, "regid-2")])

    assert [r.outcome for r in results] == [Outcome.INVALID_ADDRESS] * 2
    assert [r.error_code for r in results] == ["20301", "20301"]
    assert len(fake_xiaomi.requests) == 3


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake_xiaomi, code):
    fake_xiaomi.script("regid-1", str(code))

    [result] = provider.send([message()])

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == str(code)


def test_rate_error_waits(provider, fake_xiaomi):
    fake_xiaomi.script("regid-1", "10027")

    [result] = provider.send([message()])

    assert result.retry_after == 60.0


def test_wrong_secret_is_configuration(fake_xiaomi):
    adapter = build_provider(fake_xiaomi, secret="not-the-secret")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "21301"


def test_wrong_package_is_configuration(fake_xiaomi):
    adapter = XiaomiProvider({"package_name": "com.other", "base_url": fake_xiaomi.base_url},
                             {"app_secret": fake_xiaomi.app_secret}, timeout=5)

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "22022"


def test_connection_refused_is_retryable(provider, fake_xiaomi):
    fake_xiaomi.stop()

    [result] = provider.send([message()])

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_non_json_answer_is_classified_by_status(fake_xiaomi):
    adapter = XiaomiProvider({"package_name": "p", "base_url": fake_xiaomi.base_url + "/x"},
                             {"app_secret": "s"}, timeout=5)

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "404"


def test_callback_requested_with_secret(fake_xiaomi):
    adapter = build_provider(fake_xiaomi, callback_secret="receipt-secret")

    adapter.send([message()])
    adapter.close()

    form = fake_xiaomi.requests[0].form()
    callback = urlsplit(form["extra.callback"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == CALLBACK_URL
    assert parse_qs(callback.query) == {"secret": ["receipt-secret"]}
    assert form["extra.callback.type"] == "19"


def test_validate_rejects_unknown_and_missing():
    errors = XiaomiProvider.validate({"package": "x"}, {})

    assert set(errors) == {"config.package_name", "config.package",
                           "credentials.app_secret"}


def test_fake_rejects_too_many_regids(fake_xiaomi):
    form = {"registration_id": ",".join(f"r{i}" for i in range(1001)),
            "restricted_package_name": fake_xiaomi.package_name, "payload": "{}",
            "title": "t", "description": "d"}

    reply = requests.post(f"{fake_xiaomi.base_url}/v3/message/regid", data=form,
                          headers={"Authorization": f"key={fake_xiaomi.app_secret}"},
                          timeout=5).json()

    assert reply["code"] == 10017
    assert reply["result"] == "error"


# Receipts through the callback endpoint, after a send through the whole pipeline


@pytest.fixture
def xiaomi_channel(fake_xiaomi, db):
    return Channel.objects.create(
        name="xiaomi", kind="app", provider="xiaomi",
        config={"package_name": fake_xiaomi.package_name, "base_url": fake_xiaomi.base_url},
        credentials={"app_secret": fake_xiaomi.app_secret, "callback_secret": "receipt-secret"},
    )


@pytest.fixture
def sent_record(xiaomi_channel, fake_xiaomi, post_push):  # noqa: F811
    Device.objects.create(user_id="mei", platform="android", provider="xiaomi",
                          token="regid-mei")
    post_push(notification_id="n1", user_id="mei")
    return PushRecord.objects.get()


def callback(channel, data, secret="receipt-secret"):
    return Client().post(f"/api/v1/callbacks/{channel.pk}?secret={secret}",
                         {"data": json.dumps(data)})


def test_pipeline_sends_to_xiaomi_device(sent_record, fake_xiaomi):
    [request] = fake_xiaomi.requests
    form = request.form()
    assert form["registration_id"] == "regid-mei"
    assert sent_record.status == "sent"
    assert sent_record.provider_message_id in fake_xiaomi.messages
    assert form["extra.callback"].endswith(f"/api/v1/callbacks/{sent_record.channel_id}"
                                           "?secret=receipt-secret")


def test_delivered_receipt_moves_record(sent_record, xiaomi_channel):
    data = {sent_record.provider_message_id: {"param": "", "type": 1,
                                              "targets": "regid-mei", "jobkey": ""}}

    response = callback(xiaomi_channel, data)

    sent_record.refresh_from_db()
    assert response.status_code == 200
    assert sent_record.status == "delivered"
    assert sent_record.delivered_at is not None


def test_clicked_receipt_moves_record(sent_record, xiaomi_channel):
    data = {sent_record.provider_message_id: {"type": 2, "targets": "regid-mei"}}

    callback(xiaomi_channel, data)

    sent_record.refresh_from_db()
    assert sent_record.status == "clicked"


def test_invalid_target_receipt_deactivates_device(sent_record, xiaomi_channel):
    data = {sent_record.provider_message_id: {"type": 16, "targets": "regid-mei"}}

    callback(xiaomi_channel, data)

    sent_record.refresh_from_db()
    assert sent_record.status == "failed"
    assert Device.objects.get().is_active is False


def test_receipt_with_bad_secret_rejected(sent_record, xiaomi_channel):
    data = {sent_record.provider_message_id: {"type": 1, "targets": "regid-mei"}}

    response = callback(xiaomi_channel, data, secret="guess")

    sent_record.refresh_from_db()
    assert response.status_code == 403
    assert sent_record.status == "sent"


def test_receipt_without_configured_secret_rejected(sent_record, xiaomi_channel):
    xiaomi_channel.credentials = {"app_secret": "s"}
    xiaomi_channel.save()

    response = callback(xiaomi_channel, {"x": {"type": 1, "targets": "regid-mei"}}, secret="")

    assert response.status_code == 403


def test_receipt_for_unknown_message_is_ok(sent_record, xiaomi_channel):
    response = callback(xiaomi_channel, {"unknown-id": {"type": 1, "targets": "regid-mei"}})

    sent_record.refresh_from_db()
    assert response.status_code == 200
    assert sent_record.status == "sent"


def test_receipt_with_malformed_data_rejected(xiaomi_channel):
    response = Client().post(f"/api/v1/callbacks/{xiaomi_channel.pk}?secret=receipt-secret",
                             {"data": "not json"})

    assert response.status_code == 403


def test_receipt_skips_unrequested_types(sent_record, xiaomi_channel):
    data = {sent_record.provider_message_id: {"type": 64, "targets": "regid-mei"},
            "other": "not an object"}

    response = callback(xiaomi_channel, data)

    sent_record.refresh_from_db()
    assert response.status_code == 200
    assert sent_record.status == "sent"


def test_invalid_ttl_is_permanent(provider, fake_xiaomi):
    [result] = provider.send([message(ttl_seconds="soon")])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_option"
    assert fake_xiaomi.requests == []


def test_parse_report_skips_bad_type():
    from channels_app.providers.xiaomi import parse_report

    assert parse_report("m1", {"type": "delivered", "targets": "r1"}) == []


def test_receipt_with_list_data_rejected(xiaomi_channel):
    response = Client().post(f"/api/v1/callbacks/{xiaomi_channel.pk}?secret=receipt-secret",
                             {"data": "[1, 2]"})

    assert response.status_code == 403
