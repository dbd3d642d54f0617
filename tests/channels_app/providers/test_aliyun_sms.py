"""AliyunSmsProvider end to end against the fake Dysmsapi server."""

import json

import pytest

from channels_app.providers.aliyun_sms import (
    ERROR_CODES,
    AliyunSmsProvider,
    aliyun_number,
    e164_candidates,
    rpc_signature,
)
from channels_app.providers.base import Outcome, OutgoingMessage
from tests.channels_app.providers.conftest import callback_url
from tests.fakes.aliyun_sms import FakeAliyunSms

# Written from Aliyun's error code list, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    "isv.BUSINESS_LIMIT_CONTROL": Outcome.DEFERRED,
    "isv.DAY_LIMIT_CONTROL": Outcome.RETRYABLE,
    "isv.MONTH_LIMIT_CONTROL": Outcome.CONFIGURATION,
    "isv.MOBILE_NUMBER_ILLEGAL": Outcome.INVALID_ADDRESS,
    "isv.MOBILE_COUNT_OVER_LIMIT": Outcome.PERMANENT,
    "isv.BLACK_KEY_CONTROL_LIMIT": Outcome.PERMANENT,
    "isv.TEMPLATE_MISSING_PARAMETERS": Outcome.PERMANENT,
    "isv.INVALID_JSON_PARAM": Outcome.PERMANENT,
    "isv.PARAM_LENGTH_LIMIT": Outcome.PERMANENT,
    "isv.PARAM_NOT_SUPPORT_URL": Outcome.PERMANENT,
    "isv.INVALID_PARAMETERS": Outcome.PERMANENT,
    "isv.SMS_CONTENT_ILLEGAL": Outcome.PERMANENT,
    "isv.SMS_TEMPLATE_ILLEGAL": Outcome.CONFIGURATION,
    "isv.SMS_SIGNATURE_ILLEGAL": Outcome.CONFIGURATION,
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": Outcome.CONFIGURATION,
    "isv.AMOUNT_NOT_ENOUGH": Outcome.CONFIGURATION,
    "isv.OUT_OF_SERVICE": Outcome.CONFIGURATION,
    "isv.ACCOUNT_ABNORMAL": Outcome.CONFIGURATION,
    "isv.ACCOUNT_NOT_EXISTS": Outcome.CONFIGURATION,
    "isv.PRODUCT_UN_SUBSCRIPT": Outcome.CONFIGURATION,
    "isv.DENY_IP_RANGE": Outcome.CONFIGURATION,
    "isp.RAM_PERMISSION_DENY": Outcome.CONFIGURATION,
    "isp.SYSTEM_ERROR": Outcome.RETRYABLE,
    "SignatureDoesNotMatch": Outcome.CONFIGURATION,
    "InvalidAccessKeyId.NotFound": Outcome.CONFIGURATION,
    "InvalidAccessKeyId.Inactive": Outcome.CONFIGURATION,
    "InvalidTimeStamp.Expired": Outcome.CONFIGURATION,
    "SignatureNonceUsed": Outcome.RETRYABLE,
    "Throttling.User": Outcome.RETRYABLE,
    "Throttling.Api": Outcome.RETRYABLE,
    "Throttling": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE,
}


@pytest.fixture(scope="module")
def server():
    with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.clear()
    server.deliveries.clear()
    return server


def build_provider(fake, credentials=None, **config):
    config = {
        "sign_name": "分享栈",
        "template_code": "SMS_100001",
        "base_url": fake.base_url,
        **config,
    }
    credentials = credentials or {
        "access_key_id": fake.access_key_id,
        "access_key_secret": fake.access_key_secret,
    }
    return AliyunSmsProvider(config, credentials, timeout=5)


@pytest.fixture
def provider(fake):
    adapter = build_provider(fake)
    yield adapter
    adapter.close()


def sms(record_id=1, address="+8613800000001", body="您的验证码是 123456", **fields):
    return OutgoingMessage(record_id, address, "", body, **fields)


def send_one(provider, **fields):
    [result] = provider.send([sms(**fields)])
    return result


# Success and the request on the wire


def test_success_returns_biz_id(provider, fake):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id.endswith("^0")
    assert fake.deliveries[0].biz_id == result.provider_message_id


def test_request_carries_sms_fields(provider, fake):
    send_one(provider, variables={"code": 123456, "minutes": 5})

    [request] = fake.requests
    assert request.fields["Action"] == "SendSms"
    assert request.fields["PhoneNumbers"] == "13800000001"
    assert request.fields["SignName"] == "分享栈"
    assert request.fields["TemplateCode"] == "SMS_100001"
    assert json.loads(request.fields["TemplateParam"]) == {
        "code": "123456",
        "minutes": "5",
    }
    assert request.fields["Format"] == "JSON"
    assert request.fields["AccessKeyId"] == fake.access_key_id


def test_options_override_sign_template_and_params(provider, fake):
    options = {"sign_name": "活动", "template_code": "SMS_900", "params": {"n": 1}}

    send_one(provider, options=options, variables={"ignored": "x"})

    [delivery] = fake.deliveries
    assert delivery.sign_name == "活动"
    assert delivery.template_code == "SMS_900"
    assert delivery.params == {"n": "1"}


def test_template_chosen_by_notification_type(fake):
    provider = build_provider(fake, template_codes={"login_code": "SMS_LOGIN"})

    send_one(provider, notification_type="login_code")
    send_one(provider, notification_type="other")

    assert [d.template_code for d in fake.deliveries] == ["SMS_LOGIN", "SMS_100001"]


def test_missing_template_is_permanent(fake):
    provider = build_provider(fake, template_code="")

    result = send_one(provider, notification_type="unknown")

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "template_missing"
    assert fake.requests == []


def test_international_number_keeps_country_code(provider, fake):
    send_one(provider, address="+85261234567")

    assert fake.deliveries[0].number == "85261234567"


def test_segments_count_sign_and_body(provider):
    result = send_one(provider, body="验" * 70)

    # The sign name in brackets pushes 70 UCS-2 characters into two parts.
    assert result.segments == 2


# Batching


def test_same_params_share_one_send_sms(provider, fake):
    batch = [sms(i, f"+86138000000{i:02d}", variables={"v": "1"}) for i in range(1, 31)]

    results = provider.send(batch)

    assert len(fake.requests) == 1
    assert fake.requests[0].fields["Action"] == "SendSms"
    assert len(fake.requests[0].fields["PhoneNumbers"].split(",")) == 30
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len({r.provider_message_id for r in results}) == 1


def test_different_params_use_send_batch_sms(provider, fake):
    batch = [
        sms(i, f"+861380000{i:04d}", variables={"name": f"user{i}"}) for i in range(250)
    ]

    results = provider.send(batch)

    actions = [r.fields["Action"] for r in fake.requests]
    assert actions == ["SendBatchSms"] * 3
    sizes = sorted(len(json.loads(r.fields["PhoneNumberJson"])) for r in fake.requests)
    assert sizes == [50, 100, 100]
    assert len(results) == 250
    assert {r.outcome for r in results} == {Outcome.SENT}
    by_number = {d.number: d.params for d in fake.deliveries}
    assert by_number["13800000007"] == {"name": "user7"}


def test_send_sms_splits_above_1000_numbers(provider, fake):
    batch = [sms(i, f"+86139{i:08d}") for i in range(1001)]

    results = provider.send(batch)

    assert len(fake.requests) == 2
    assert len(results) == 1001
    assert {r.outcome for r in results} == {Outcome.SENT}


def test_repeated_number_goes_into_another_request(provider, fake):
    provider.send([sms(1), sms(2)])

    assert len(fake.requests) == 2


def test_invalid_number_in_batch_is_found_alone(provider, fake):
    # Aliyun rejects every request that contains the number.
    fake.script("13800000002", *["isv.MOBILE_NUMBER_ILLEGAL"] * 3)
    batch = [
        sms(1, "+8613800000001"),
        sms(2, "+8613800000002"),
        sms(3, "+8613800000003"),
    ]

    results = {r.record_id: r for r in provider.send(batch)}

    assert results[2].outcome == Outcome.INVALID_ADDRESS
    assert results[1].outcome == Outcome.SENT
    assert results[3].outcome == Outcome.SENT
    # [1, 2, 3], then [1] and [2, 3], then [2] and [3].
    assert len(fake.requests) == 5


def test_invalid_number_search_is_logarithmic(provider, fake):
    fake.script("13800000042", *["isv.MOBILE_NUMBER_ILLEGAL"] * 20)
    batch = [sms(i, f"+86138000000{i:02d}") for i in range(64)]

    results = {r.record_id: r for r in provider.send(batch)}

    assert results[42].outcome == Outcome.INVALID_ADDRESS
    assert sum(r.outcome == Outcome.SENT for r in results.values()) == 63
    # One request per halving on the path to the number, plus its sibling halves.
    assert len(fake.requests) == 1 + 2 * 6


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake, code):
    fake.script("13800000001", code)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == code


def test_business_limit_sets_retry_after(provider, fake):
    fake.script("13800000001", "isv.BUSINESS_LIMIT_CONTROL")

    result = send_one(provider)

    assert result.retry_after == 60


def test_wrong_secret_is_signature_mismatch(fake):
    provider = build_provider(
        fake,
        credentials={
            "access_key_id": fake.access_key_id,
            "access_key_secret": "wrong-secret",
        },
    )

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "SignatureDoesNotMatch"
    assert "wrong-secret" not in result.error_message
    assert fake.deliveries == []


def test_unknown_access_key(fake):
    provider = build_provider(
        fake,
        credentials={
            "access_key_id": "LTAIunknown",
            "access_key_secret": fake.access_key_secret,
        },
    )

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "InvalidAccessKeyId.NotFound"


def test_unreachable_server_is_retryable(fake):
    provider = build_provider(fake, base_url="http://127.0.0.1:9")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_unknown_path_is_permanent(fake):
    provider = build_provider(fake, base_url=fake.base_url + "/nowhere")

    result = send_one(provider)

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "InvalidAction.NotFound"


def test_html_bad_gateway_is_retryable(provider, fake):
    fake.script("13800000001", "bad_gateway")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "http_502"


def test_params_option_must_be_object(provider, fake):
    send_one(provider, options={"params": ["x"]}, variables={"code": "1"})

    assert fake.deliveries[0].params == {"code": "1"}


# Helpers and validation


def test_signature_matches_documented_example():
    # The worked example in Alibaba Cloud's RPC signature documentation.
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }

    assert rpc_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_number_formats():
    assert aliyun_number("+8613800000001") == "13800000001"
    assert aliyun_number("+14155550100") == "14155550100"
    assert e164_candidates("13800000001") == ["+8613800000001", "+13800000001"]
    assert e164_candidates("85261234567") == ["+85261234567"]
    assert e164_candidates("") == []


def test_validate_rejects_bad_template_codes():
    errors = AliyunSmsProvider.validate(
        {"sign_name": "x", "template_codes": ["SMS_1"]},
        {"access_key_id": "a", "access_key_secret": "b"},
    )

    assert "config.template_codes" in errors


def test_validate_accepts_full_config():
    errors = AliyunSmsProvider.validate(
        {
            "sign_name": "x",
            "template_codes": {"login": "SMS_1"},
            "region_id": "cn-hangzhou",
        },
        {"access_key_id": "a", "access_key_secret": "b", "callback_token": "t"},
    )

    assert errors == {}


# Status reports


@pytest.fixture
def channel(fake, db):
    from channels_app.models import Channel

    return Channel.objects.create(
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
            "callback_token": "report-token-1",
        },
    )


def report(biz_id, number="13800000001", success=True, err_code="DELIVERED"):
    return {
        "phone_number": number,
        "send_time": "2026-06-10 12:00:00",
        "report_time": "2026-06-10 12:00:05",
        "success": success,
        "err_code": err_code,
        "err_msg": "用户接收成功" if success else "失败",
        "sms_size": "1",
        "biz_id": biz_id,
        "out_id": "",
    }


def post_reports(client, channel, reports, token="report-token-1"):
    return client.post(
        callback_url(channel, token=token),
        json.dumps(reports),
        content_type="application/json",
    )


def test_report_marks_delivered(client, channel, sent_sms):
    record = sent_sms(channel, "900619746936498440^0")

    response = post_reports(client, channel, [report("900619746936498440^0")])

    assert response.status_code == 200
    assert response.json() == {"code": 0, "msg": "接收成功"}
    record.refresh_from_db()
    assert record.status == "delivered"
    assert record.delivered_at.isoformat() == "2026-06-10T04:00:05+00:00"


def test_report_names_the_number_in_a_batch(client, channel, sent_sms):
    first = sent_sms(channel, "9006^0", "+8613800000001", user_id="li")
    second = sent_sms(channel, "9006^0", "+8613800000002", user_id="wang")

    post_reports(client, channel, [report("9006^0", "13800000002", False, "MK:0001")])

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "sent"
    assert second.status == "failed"
    assert second.reason == "undelivered"
    assert "MK:0001" in second.error_message


def test_report_with_wrong_token_is_rejected(client, channel, sent_sms):
    record = sent_sms(channel, "9007^0")

    response = post_reports(client, channel, [report("9007^0")], token="guess")

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == "sent"


def test_report_without_configured_token_is_rejected(client, fake, db, sent_sms):
    from channels_app.models import Channel

    channel = Channel.objects.create(
        name="aliyun-open",
        kind="sms",
        provider="aliyun_sms",
        config={"sign_name": "分享栈"},
        credentials={"access_key_id": "a", "access_key_secret": "b"},
    )
    record = sent_sms(channel, "9008^0")

    response = post_reports(client, channel, [report("9008^0")], token="")

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == "sent"


def test_report_for_unknown_message(client, channel):
    response = post_reports(client, channel, [report("0000^0")])

    assert response.status_code == 200


def test_report_body_must_be_array(client, channel):
    response = post_reports(client, channel, {"biz_id": "1"})

    assert response.status_code == 400


def test_report_for_north_american_number(client, channel, sent_sms):
    record = sent_sms(channel, "9009^0", "+14155550100")

    post_reports(client, channel, [report("9009^0", "14155550100")])

    record.refresh_from_db()
    assert record.status == "delivered"


def test_report_without_biz_id_is_skipped(client, channel, sent_sms):
    record = sent_sms(channel, "9010^0")

    response = post_reports(client, channel, [report(""), "not an object"])

    assert response.status_code == 200
    record.refresh_from_db()
    assert record.status == "sent"


# Replies (SmsUp)


@pytest.fixture
def subscriber(db):
    from channels_app.models import Contact
    from sharestack_push.notifications.models import NotificationType

    NotificationType.objects.create(key="promo", category="marketing")
    return Contact.objects.create(user_id="li", kind="phone", address="+8613800000001")


def opted_out(user_id="li"):
    from preferences.models import UserProfile

    profile = UserProfile.objects.filter(user_id=user_id).first()
    return profile is not None and profile.marketing_sms_opt_out


def test_reply_r_opts_out(client, fake, channel, subscriber):
    response = post_reports(client, channel, [fake.sms_up("13800000001", "R")])

    assert response.status_code == 200
    assert response.json() == {"code": 0, "msg": "接收成功"}
    assert opted_out()


def test_reply_keeps_its_send_time(client, fake, channel, subscriber):
    from preferences.models import UserProfile

    post_reports(client, channel, [fake.sms_up("13800000001", "退订")])

    profile = UserProfile.objects.get(user_id="li")
    assert profile.marketing_sms_changed_at.isoformat() == "2026-06-10T04:00:00+00:00"


def test_reply_and_report_in_one_push(client, fake, channel, subscriber, sent_sms):
    record = sent_sms(channel, "9011^0")

    post_reports(
        client, channel, [report("9011^0"), fake.sms_up("13800000001", "TD")]
    )

    record.refresh_from_db()
    assert record.status == "delivered"
    assert opted_out()


def test_reply_with_wrong_token_is_rejected(client, fake, channel, subscriber):
    response = post_reports(
        client, channel, [fake.sms_up("13800000001", "R")], token="guess"
    )

    assert response.status_code == 403
    assert not opted_out()


def test_reply_without_number_is_skipped(client, fake, channel, subscriber):
    response = post_reports(client, channel, [fake.sms_up("", "R")])

    assert response.status_code == 200
    assert not opted_out()
