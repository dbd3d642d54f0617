"""SnsProvider end to end against the fake SNS query API with SigV4 checks."""

import pytest

from channels_app.models import Channel
from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.sns import ERROR_CODES, SnsProvider
from tests.channels_app.providers.conftest import callback_url
from tests.fakes.sns import INVALID_SENDER_ID, FakeSns

# Written from the SNS API reference, independently of the adapter's table. The
# fake's InvalidParameter names the PhoneNumber, so it means a dead address.
EXPECTED_OUTCOMES = {
    "Throttling": Outcome.RETRYABLE,
    "ThrottlingException": Outcome.RETRYABLE,
    "Throttled": Outcome.RETRYABLE,
    "InternalError": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE,
    "KMSThrottling": Outcome.RETRYABLE,
    "InvalidParameter": Outcome.INVALID_ADDRESS,
    "InvalidParameterValue": Outcome.PERMANENT,
    "ParameterValueInvalid": Outcome.PERMANENT,
    "ValidationException": Outcome.PERMANENT,
    "AuthorizationError": Outcome.CONFIGURATION,
    "InvalidClientTokenId": Outcome.CONFIGURATION,
    "SignatureDoesNotMatch": Outcome.CONFIGURATION,
    "InvalidSecurity": Outcome.CONFIGURATION,
    "IncompleteSignature": Outcome.CONFIGURATION,
    "ExpiredToken": Outcome.CONFIGURATION,
    "AccessDenied": Outcome.CONFIGURATION,
    "OptInRequired": Outcome.CONFIGURATION,
    "NotFound": Outcome.CONFIGURATION,
    "KMSDisabled": Outcome.CONFIGURATION,
    "KMSNotFound": Outcome.CONFIGURATION,
    "KMSAccessDenied": Outcome.CONFIGURATION,
    "KMSInvalidState": Outcome.CONFIGURATION,
    "KMSOptInRequired": Outcome.CONFIGURATION,
}
TO = "+14155550100"


@pytest.fixture(scope="module")
def server():
    with FakeSns() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.clear()
    server.publications.clear()
    server.opted_out.clear()
    return server


def build_provider(fake, secret=None, **config):
    config = {"region": fake.region, "base_url": fake.base_url, **config}
    credentials = {
        "access_key_id": fake.access_key_id,
        "secret_access_key": secret or fake.secret_access_key,
    }
    return SnsProvider(config, credentials, timeout=5)


@pytest.fixture
def provider(fake):
    adapter = build_provider(fake)
    yield adapter
    adapter.close()


def sms(record_id=1, address=TO, body="Your code is 123456", **fields):
    return OutgoingMessage(record_id, address, "", body, **fields)


def send_one(provider, **fields):
    [result] = provider.send([sms(**fields)])
    return result


# Sending


def test_success_returns_message_id(provider, fake):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == fake.publications[0].message_id


def test_transactional_by_default(provider, fake):
    send_one(provider)

    attributes = fake.publications[0].attributes
    assert attributes["AWS.SNS.SMS.SMSType"] == ("String", "Transactional")
    assert "AWS.SNS.SMS.SenderID" not in attributes


def test_marketing_is_promotional_with_opt_out(provider, fake):
    send_one(provider, body="Sale today", marketing=True, locale="en")

    [publication] = fake.publications
    assert publication.attributes["AWS.SNS.SMS.SMSType"] == ("String", "Promotional")
    assert publication.message == "Sale today\nReply STOP to opt out"


def test_sender_id_and_max_price(fake):
    provider = build_provider(
        fake,
        sender_id="ShareStack",
        max_price="0.05",
        origination_number="+15005550006",
    )

    send_one(provider)

    attributes = fake.publications[0].attributes
    assert attributes["AWS.SNS.SMS.SenderID"] == ("String", "ShareStack")
    assert attributes["AWS.SNS.SMS.MaxPrice"] == ("Number", "0.05")
    assert attributes["AWS.MM.SMS.OriginationNumber"] == ("String", "+15005550006")


def test_segments_gsm_text(provider):
    assert send_one(provider, body="a" * 160).segments == 1
    assert send_one(provider, body="a" * 161).segments == 2


def test_segments_chinese_text(provider):
    assert send_one(provider, body="您" * 70).segments == 1
    assert send_one(provider, body="您" * 71).segments == 2


def test_opted_out_number_is_accepted(provider, fake):
    fake.opted_out.add(TO)

    result = send_one(provider)

    # SNS drops it later; only its delivery logs show the opt-out.
    assert result.outcome == Outcome.SENT
    assert fake.publications[0].delivered is False


def test_batch_sends_one_request_each(provider, fake):
    batch = [sms(i, f"+1415555{i:04d}") for i in range(30)]

    results = provider.send(batch)

    assert len(fake.requests) == 30
    assert {r.outcome for r in results} == {Outcome.SENT}


# Errors


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake, code):
    fake.script(TO, code)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == code


def test_sdk_does_not_retry(provider, fake):
    fake.script(TO, "InternalError")

    send_one(provider)

    assert len(fake.requests) == 1


def test_invalid_sender_id_is_permanent(provider, fake):
    fake.script(TO, INVALID_SENDER_ID)

    result = send_one(provider)

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "InvalidParameter"


def test_malformed_number_is_invalid_address(provider, fake):
    result = send_one(provider, address="+0123")

    assert result.outcome == Outcome.INVALID_ADDRESS


def test_every_number_rejected_is_configuration(provider, fake):
    numbers = [f"+1415555{i:04d}" for i in range(3)]
    for number in numbers:
        fake.script(number, "InvalidParameter")

    results = provider.send([sms(i, number) for i, number in enumerate(numbers)])

    assert {r.outcome for r in results} == {Outcome.CONFIGURATION}


def test_one_rejected_number_in_batch(provider, fake):
    fake.script("+14155550001", "InvalidParameter")

    results = provider.send([sms(1, "+14155550001"), sms(2, "+14155550002")])

    outcomes = {r.record_id: r.outcome for r in results}
    assert outcomes == {1: Outcome.INVALID_ADDRESS, 2: Outcome.SENT}


def test_wrong_secret_is_signature_mismatch(fake):
    provider = build_provider(fake, secret="wrong-secret")

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "SignatureDoesNotMatch"
    assert "wrong-secret" not in result.error_message
    assert fake.publications == []


def test_unreachable_server_is_retryable(fake):
    provider = build_provider(fake, base_url="http://127.0.0.1:9")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_validate_rejects_bad_max_price():
    errors = SnsProvider.validate(
        {"region": "us-east-1", "max_price": "cheap"},
        {"access_key_id": "a", "secret_access_key": "b"},
    )

    assert "config.max_price" in errors


def test_callbacks_not_supported(client, fake, db):
    channel = Channel.objects.create(
        name="sns",
        kind="sms",
        provider="sns",
        config={"region": "us-east-1"},
        credentials={"access_key_id": "a", "secret_access_key": "b"},
    )

    response = client.post(callback_url(channel), {})

    assert response.status_code == 404
