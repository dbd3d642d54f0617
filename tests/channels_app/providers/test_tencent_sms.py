"""TencentSmsProvider end to end against the fake SMS API 2021-01-11 server."""

import json

import pytest

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.tencent_sms import (
    ERROR_CODES,
    TencentSmsProvider,
    classify,
    tc3_signature,
)
from tests.channels_app.providers.conftest import callback_url
from tests.fakes.tencent_sms import FakeTencentSms

# Written from Tencent's SendSms error codes, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": Outcome.DEFERRED,
    "LimitExceeded.PhoneNumberOneHourLimit": Outcome.DEFERRED,
    "LimitExceeded.PhoneNumberDailyLimit": Outcome.DEFERRED,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": Outcome.DEFERRED,
    "LimitExceeded.DeliveryFrequencyLimit": Outcome.RETRYABLE,
    "LimitExceeded.AppDailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.DailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.AppMainlandChinaDailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.AppGlobalDailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.PhoneNumberCountLimit": Outcome.PERMANENT,
    "InvalidParameterValue.IncorrectPhoneNumber": Outcome.INVALID_ADDRESS,
    "FailedOperation.PhoneNumberInBlacklist": Outcome.INVALID_ADDRESS,
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": Outcome.PERMANENT,
    "InvalidParameterValue.TemplateParameterFormatError": Outcome.PERMANENT,
    "InvalidParameterValue.TemplateParameterLengthLimit": Outcome.PERMANENT,
    "InvalidParameterValue.ContentLengthLimit": Outcome.PERMANENT,
    "FailedOperation.ContainSensitiveWord": Outcome.PERMANENT,
    "FailedOperation.SignatureIncorrectOrUnapproved": Outcome.CONFIGURATION,
    "FailedOperation.TemplateIncorrectOrUnapproved": Outcome.CONFIGURATION,
    "FailedOperation.InsufficientBalanceInSmsPackage": Outcome.CONFIGURATION,
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": Outcome.CONFIGURATION,
    "UnauthorizedOperation.RequestIpNotInWhitelist": Outcome.CONFIGURATION,
    "UnauthorizedOperation.SerivceSuspendDueToArrears": Outcome.CONFIGURATION,
    "AuthFailure.SignatureFailure": Outcome.CONFIGURATION,
    "AuthFailure.SignatureExpire": Outcome.CONFIGURATION,
    "AuthFailure.SecretIdNotFound": Outcome.CONFIGURATION,
    "AuthFailure.InvalidAuthorization": Outcome.CONFIGURATION,
    "AuthFailure.UnauthorizedOperation": Outcome.CONFIGURATION,
    "InternalError.Timeout": Outcome.RETRYABLE,
    "InternalError.SendAndRecvFail": Outcome.RETRYABLE,
    "InternalError": Outcome.RETRYABLE,
    "RequestLimitExceeded": Outcome.RETRYABLE,
}
CODE_TEMPLATE = "449739"


@pytest.fixture(scope="module")
def server():
    with FakeTencentSms() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.clear()
    server.deliveries.clear()
    return server


def build_provider(fake, credentials=None, **config):
    config = {
        "sms_sdk_app_id": fake.sms_sdk_app_id,
        "sign_name": "分享栈",
        "template_id": CODE_TEMPLATE,
        "param_order": ["code", "minutes"],
        "base_url": fake.base_url,
        **config,
    }
    credentials = credentials or {
        "secret_id": fake.secret_id,
        "secret_key": fake.secret_key,
    }
    return TencentSmsProvider(config, credentials, timeout=5)


@pytest.fixture
def provider(fake):
    adapter = build_provider(fake)
    yield adapter
    adapter.close()


def sms(record_id=1, address="+8613800000001", code="123456", **fields):
    fields.setdefault("variables", {"code": code, "minutes": 5})
    return OutgoingMessage(record_id, address, "", "您的验证码是123456", **fields)


def send_one(provider, **fields):
    [result] = provider.send([sms(**fields)])
    return result


# Success and the request on the wire


def test_success_returns_serial_no(provider, fake):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == fake.deliveries[0].serial_no


def test_request_headers_and_body(provider, fake):
    send_one(provider)

    [request] = fake.requests
    assert request.headers["X-TC-Action"] == "SendSms"
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["X-TC-Region"] == "ap-guangzhou"
    assert request.fields["PhoneNumberSet"] == ["+8613800000001"]
    assert request.fields["TemplateParamSet"] == ["123456", "5"]
    assert request.fields["SmsSdkAppId"] == fake.sms_sdk_app_id


def test_text_is_filled_template(provider, fake):
    send_one(provider, code="777777")

    assert fake.deliveries[0].text == "【分享栈】您的验证码是777777，5分钟内有效。"


def test_params_option_list_wins(provider, fake):
    send_one(provider, options={"params": ["42", 3]})

    assert fake.requests[0].fields["TemplateParamSet"] == ["42", "3"]


def test_param_order_per_template(fake):
    fake.templates["500001"] = "{1}，您的订单{2}已发货"
    provider = build_provider(
        fake,
        template_ids={"order": "500001"},
        param_order={"500001": ["name", "order"], CODE_TEMPLATE: ["code", "minutes"]},
    )

    result = send_one(
        provider, notification_type="order", variables={"order": "A-7", "name": "李雷"}
    )

    assert result.outcome == Outcome.SENT
    assert fake.deliveries[0].text == "【分享栈】李雷，您的订单A-7已发货"


def test_missing_template_is_permanent(fake):
    provider = build_provider(fake, template_id="")

    result = send_one(provider)

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "template_missing"


def test_segments_come_from_fee(provider, fake):
    long_code = "码" * 60

    result = send_one(provider, code=long_code)

    # 【分享栈】 + the filled template is over 70 UCS-2 characters: two parts.
    assert result.segments == 2


# Batching


def test_same_params_share_one_request(provider, fake):
    batch = [sms(i, f"+86138{i:08d}") for i in range(450)]

    results = provider.send(batch)

    sizes = sorted(len(r.fields["PhoneNumberSet"]) for r in fake.requests)
    assert sizes == [50, 200, 200]
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len({r.provider_message_id for r in results}) == 450


def test_different_params_send_separately(provider, fake):
    results = provider.send(
        [sms(1, code="111111"), sms(2, "+8613800000002", code="222222")]
    )

    assert len(fake.requests) == 2
    assert {r.outcome for r in results} == {Outcome.SENT}


def test_mainland_and_other_numbers_split(provider, fake):
    results = provider.send([sms(1), sms(2, "+85261234567"), sms(3, "+8613800000003")])

    numbers = sorted(sorted(r.fields["PhoneNumberSet"]) for r in fake.requests)
    assert numbers == [["+85261234567"], ["+8613800000001", "+8613800000003"]]
    assert {r.outcome for r in results} == {Outcome.SENT}


def test_per_number_failure_in_batch(provider, fake):
    fake.script("+8613800000002", "InvalidParameterValue.IncorrectPhoneNumber")
    batch = [sms(1), sms(2, "+8613800000002"), sms(3, "+8613800000003")]

    results = {r.record_id: r for r in provider.send(batch)}

    assert len(fake.requests) == 1
    assert results[2].outcome == Outcome.INVALID_ADDRESS
    assert results[1].outcome == Outcome.SENT
    assert results[3].outcome == Outcome.SENT


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake, code):
    fake.script("+8613800000001", code)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == code


def test_daily_limit_retries_after_an_hour(provider, fake):
    fake.script("+8613800000001", "LimitExceeded.PhoneNumberDailyLimit")

    result = send_one(provider)

    assert result.retry_after == 3600


def test_wrong_secret_is_signature_failure(fake):
    provider = build_provider(
        fake, credentials={"secret_id": fake.secret_id, "secret_key": "wrong-key"}
    )

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "AuthFailure.SignatureFailure"
    assert fake.deliveries == []


def test_wrong_app_id(fake):
    provider = build_provider(fake, sms_sdk_app_id="1400000000")

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "UnauthorizedOperation.SmsSdkAppIdVerifyFail"


def test_unapproved_template_is_configuration(fake):
    provider = build_provider(fake, template_id="999")

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "FailedOperation.TemplateIncorrectOrUnapproved"


def test_codes_outside_table():
    assert classify("FailedOperation.SomethingNew") == Outcome.PERMANENT
    assert classify("AuthFailure.SomethingNew") == Outcome.CONFIGURATION
    assert classify("InternalError.SomethingNew") == Outcome.RETRYABLE


def test_unreachable_server_is_retryable(fake):
    provider = build_provider(fake, base_url="http://127.0.0.1:9")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_html_bad_gateway_is_retryable(provider, fake):
    fake.script("+8613800000001", "bad_gateway")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "http_502"


def test_number_missing_from_answer_is_retryable():
    result = TencentSmsProvider._result(sms(), None)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "no_status"


# Signing and validation


def test_signature_matches_published_example():
    # Tencent's TC3 demo: CVM DescribeInstances, secret "Gu5t9xGARNpq86cd98joQYCN3*******".
    body = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], '
        b'"Name": "instance-name"}]}'
    )
    signature = tc3_signature(
        "Gu5t9xGARNpq86cd98joQYCN3*******",
        "cvm.tencentcloudapi.com",
        body,
        1551113065,
        service="cvm",
    )

    assert (
        signature == "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


def test_validate_rejects_bad_template_ids():
    errors = TencentSmsProvider.validate(
        {"sms_sdk_app_id": "1", "sign_name": "x", "template_ids": ["449739"]},
        {"secret_id": "a", "secret_key": "b"},
    )

    assert "config.template_ids" in errors


def test_validate_rejects_bad_param_order():
    errors = TencentSmsProvider.validate(
        {"sms_sdk_app_id": "1", "sign_name": "x", "param_order": "code"},
        {"secret_id": "a", "secret_key": "b"},
    )

    assert "config.param_order" in errors


# Status reports


@pytest.fixture
def channel(fake, db):
    from channels_app.models import Channel

    return Channel.objects.create(
        name="tencent",
        kind="sms",
        provider="tencent_sms",
        config={
            "sms_sdk_app_id": fake.sms_sdk_app_id,
            "sign_name": "分享栈",
            "template_id": CODE_TEMPLATE,
            "base_url": fake.base_url,
        },
        credentials={
            "secret_id": fake.secret_id,
            "secret_key": fake.secret_key,
            "callback_token": "status-token-1",
        },
    )


def status_report(sid, success=True, errmsg="DELIVRD"):
    return {
        "user_receive_time": "2026-06-10 12:00:05",
        "nationcode": "86",
        "mobile": "13800000001",
        "report_status": "SUCCESS" if success else "FAIL",
        "errmsg": errmsg,
        "description": "用户短信送达成功" if success else "用户短信接收失败",
        "sid": sid,
    }


def post_reports(client, channel, reports, token="status-token-1"):
    return client.post(
        callback_url(channel, token=token),
        json.dumps(reports),
        content_type="application/json",
    )


def test_report_marks_delivered(client, channel, sent_sms):
    record = sent_sms(channel, "2028:0000000000000000001")

    response = post_reports(
        client, channel, [status_report("2028:0000000000000000001")]
    )

    assert response.status_code == 200
    assert response.json() == {"result": 0, "errmsg": "OK"}
    record.refresh_from_db()
    assert record.status == "delivered"
    assert record.delivered_at.isoformat() == "2026-06-10T04:00:05+00:00"


def test_report_marks_failed(client, channel, sent_sms):
    record = sent_sms(channel, "2028:0000000000000000002")

    post_reports(
        client, channel, [status_report("2028:0000000000000000002", False, "MK:0001")]
    )

    record.refresh_from_db()
    assert record.status == "failed"
    assert record.error_message.startswith("MK:0001")
    record.contact.refresh_from_db()
    assert record.contact.is_active is True


def test_report_with_wrong_token_is_rejected(client, channel, sent_sms):
    record = sent_sms(channel, "2028:0000000000000000003")

    response = post_reports(
        client,
        channel,
        [status_report("2028:0000000000000000003")],
        token="status-token-2",
    )

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == "sent"


def test_report_for_unknown_message(client, channel):
    response = post_reports(client, channel, [status_report("2028:9")])

    assert response.status_code == 200


def test_report_body_must_be_array(client, channel):
    response = post_reports(client, channel, "not json")

    assert response.status_code == 400


def test_malformed_number_alone_is_an_invalid_address(provider, fake):
    result = send_one(provider, address="+86abc")

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "InvalidParameterValue.IncorrectPhoneNumber"


def test_malformed_number_in_a_batch_deactivates_nobody(provider, fake):
    results = provider.send([sms(1, "+8613800000001"), sms(2, "+86abc")])

    assert {result.outcome for result in results} == {Outcome.PERMANENT}
    assert fake.deliveries == []


# Replies


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


def test_reply_td_opts_out(client, fake, channel, subscriber):
    response = post_reports(client, channel, fake.reply("13800000001", "TD"))

    assert response.status_code == 200
    assert response.json() == {"result": 0, "errmsg": "OK"}
    assert opted_out()


def test_reply_keeps_its_time(client, fake, channel, subscriber):
    from preferences.models import UserProfile

    post_reports(client, channel, fake.reply("13800000001", "退订"))

    profile = UserProfile.objects.get(user_id="li")
    assert profile.marketing_sms_changed_at.isoformat() == "2026-06-10T04:00:00+00:00"


def test_reply_joins_nation_code(client, fake, channel, db):
    from channels_app.models import Contact

    Contact.objects.create(user_id="ann", kind="phone", address="+14155550100")

    post_reports(client, channel, fake.reply("4155550100", "STOP", nationcode="1"))

    assert opted_out("ann")


def test_reply_in_an_array(client, fake, channel, subscriber):
    response = post_reports(client, channel, [fake.reply("13800000001", "T")])

    assert response.status_code == 200
    assert opted_out()


def test_reply_with_wrong_token_is_rejected(client, fake, channel, subscriber):
    response = post_reports(
        client, channel, fake.reply("13800000001", "TD"), token="status-token-2"
    )

    assert response.status_code == 403
    assert not opted_out()


def test_object_that_is_no_reply_is_rejected(client, channel, subscriber):
    response = post_reports(client, channel, {"sid": "2028:1"})

    assert response.status_code == 400


def test_reply_with_malformed_time(client, fake, channel, subscriber):
    from preferences.models import UserProfile

    body = {**fake.reply("13800000001", "TD"), "time": "yesterday"}

    response = post_reports(client, channel, body)

    assert response.status_code == 200
    profile = UserProfile.objects.get(user_id="li")
    assert profile.marketing_sms_opt_out is True
    assert profile.marketing_sms_changed_at is not None
