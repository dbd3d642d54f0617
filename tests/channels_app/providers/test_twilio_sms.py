"""TwilioProvider end to end against the fake Twilio REST API, and its status callbacks."""

import pytest

from channels_app.models import Channel, Contact
from preferences.models import UserProfile, UserPushPreference
from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.twilio_sms import ERROR_CODES, TwilioProvider, classify
from tests.channels_app.providers.conftest import callback_url
from sharestack_push.notifications.models import NotificationType
from tests.fakes.twilio import FakeTwilio

# Written from Twilio's error dictionary, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    20003: Outcome.CONFIGURATION,
    20404: Outcome.CONFIGURATION,
    20429: Outcome.RETRYABLE,
    20500: Outcome.RETRYABLE,
    20503: Outcome.RETRYABLE,
    21211: Outcome.INVALID_ADDRESS,
    21408: Outcome.CONFIGURATION,
    21601: Outcome.CONFIGURATION,
    21606: Outcome.CONFIGURATION,
    21608: Outcome.PERMANENT,
    21610: Outcome.PERMANENT,
    21612: Outcome.PERMANENT,
    21614: Outcome.INVALID_ADDRESS,
    21635: Outcome.INVALID_ADDRESS,
    21617: Outcome.PERMANENT,
    21730: Outcome.RETRYABLE,
    30003: Outcome.INVALID_ADDRESS,
    30005: Outcome.INVALID_ADDRESS,
    30006: Outcome.INVALID_ADDRESS,
    30007: Outcome.PERMANENT,
}
TO = "+14155550100"
PUBLIC_BASE = "https://push.sharestack.example"


@pytest.fixture(scope="module")
def server():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.clear()
    server.messages.clear()
    server.retry_after = None
    server.stop_filtering = True
    server.opted_out.clear()
    return server


def build_provider(fake, auth_token=None, callback="", **config):
    config = {"from_number": "+15005550006", "base_url": fake.base_url, **config}
    credentials = {
        "account_sid": fake.account_sid,
        "auth_token": auth_token or fake.auth_token,
    }
    return TwilioProvider(config, credentials, timeout=5, callback_url=callback)


@pytest.fixture
def provider(fake):
    adapter = build_provider(fake, callback=PUBLIC_BASE + "/api/v1/callbacks/7")
    yield adapter
    adapter.close()


def sms(record_id=1, address=TO, body="Your code is 123456", **fields):
    return OutgoingMessage(record_id, address, "", body, **fields)


def send_one(provider, **fields):
    [result] = provider.send([sms(**fields)])
    return result


# Sending


def test_success_returns_message_sid(provider, fake):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == fake.messages[0]["sid"]


def test_request_fields(provider, fake):
    send_one(provider)

    [request] = fake.requests
    assert request.fields["To"] == TO
    assert request.fields["From"] == "+15005550006"
    assert request.fields["Body"] == "Your code is 123456"
    assert request.fields["StatusCallback"] == PUBLIC_BASE + "/api/v1/callbacks/7"


def test_messaging_service_replaces_from(fake):
    provider = build_provider(
        fake, from_number="", messaging_service_sid="MG" + "0" * 32
    )

    send_one(provider)

    fields = fake.requests[0].fields
    assert fields["MessagingServiceSid"] == "MG" + "0" * 32
    assert "From" not in fields
    assert "StatusCallback" not in fields


def test_marketing_appends_english_opt_out(provider, fake):
    send_one(provider, body="Sale today", marketing=True, locale="en-US")

    assert fake.messages[0]["body"] == "Sale today\nReply STOP to opt out"


def test_marketing_appends_chinese_opt_out(provider, fake):
    send_one(provider, body="今日特价", marketing=True, locale="zh-Hans")

    assert fake.messages[0]["body"] == "今日特价\n拒收请回复R"


def test_segments_from_num_segments(provider, fake):
    result = send_one(provider, body="x" * 161)

    assert result.segments == 2
    assert fake.messages[0]["num_segments"] == "2"


def test_batch_sends_one_request_each(provider, fake):
    batch = [sms(i, f"+1415555{i:04d}") for i in range(40)]

    results = provider.send(batch)

    assert len(fake.requests) == 40
    assert sorted(r.record_id for r in results) == list(range(40))
    assert {r.outcome for r in results} == {Outcome.SENT}


def test_region_and_edge_environment_ignored(fake, monkeypatch):
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    provider = build_provider(fake)

    result = send_one(provider)

    assert result.outcome == Outcome.SENT


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake, code):
    fake.script(TO, str(code))

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[code]
    assert result.error_code == str(code)


def test_unsubscribed_recipient_is_flagged(provider, fake):
    fake.script(TO, "21610")

    result = send_one(provider)

    assert result.outcome == Outcome.PERMANENT
    assert result.recipient_opted_out is True


def test_other_failures_are_not_opt_outs(provider, fake):
    fake.script(TO, "21211")

    result = send_one(provider)

    assert result.recipient_opted_out is False


def test_rate_limit_is_not_retried_by_sdk(provider, fake):
    fake.script(TO, "20429")

    send_one(provider)

    assert len(fake.requests) == 1


def test_rate_limit_honours_retry_after(provider, fake):
    fake.retry_after = 7
    fake.script(TO, "20429")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.retry_after == 7


def test_rate_limit_without_retry_after(provider, fake):
    fake.script(TO, "20429")

    result = send_one(provider)

    assert result.retry_after is None


def test_wrong_auth_token_is_configuration(fake):
    provider = build_provider(fake, auth_token="wrong-token")

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "20003"
    assert "wrong-token" not in result.error_message


def test_unreachable_server_is_retryable(fake):
    provider = build_provider(fake, base_url="http://127.0.0.1:9")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_codes_outside_table_use_status():
    assert classify(502, 20001) == Outcome.RETRYABLE
    assert classify(429, None) == Outcome.RETRYABLE
    assert classify(403, 20008) == Outcome.CONFIGURATION
    assert classify(400, 21999) == Outcome.PERMANENT


def test_validate_requires_one_sender():
    credentials = {"account_sid": "AC1", "auth_token": "t"}

    assert "config.from_number" in TwilioProvider.validate({}, credentials)
    assert "config.from_number" in TwilioProvider.validate(
        {"from_number": "+1", "messaging_service_sid": "MG1"}, credentials
    )
    assert TwilioProvider.validate({"from_number": "+1"}, credentials) == {}


# Status callbacks


@pytest.fixture
def channel(fake, db, settings):
    settings.PUSH_PUBLIC_BASE_URL = PUBLIC_BASE
    # The reverse proxy forwards to this process under its internal host name.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "backend.internal"]
    return Channel.objects.create(
        name="twilio",
        kind="sms",
        provider="twilio",
        config={"from_number": "+15005550006", "base_url": fake.base_url},
        credentials={"account_sid": fake.account_sid, "auth_token": fake.auth_token},
    )


def post_status(client, fake, channel, form, signature=None):
    path = callback_url(channel)
    # Twilio signs the public https URL; the request reaches us on another host.
    signature = signature or fake.signature(PUBLIC_BASE + path, form)
    return client.post(
        path, form, HTTP_X_TWILIO_SIGNATURE=signature, HTTP_HOST="backend.internal:8000"
    )


def send_for_record(fake, channel):
    provider = build_provider(fake, callback=PUBLIC_BASE + callback_url(channel))
    [result] = provider.send([sms()])
    return result.provider_message_id


def test_delivered_callback(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)

    response = post_status(
        client, fake, channel, fake.status_callback(sid, "delivered")
    )

    assert response.status_code == 200
    record.refresh_from_db()
    assert record.status == "delivered"
    assert record.delivered_at is not None


def test_undelivered_dead_number_deactivates(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)

    post_status(
        client, fake, channel, fake.status_callback(sid, "undelivered", "30005")
    )

    record.refresh_from_db()
    assert record.status == "failed"
    assert record.reason == "invalid_address"
    record.contact.refresh_from_db()
    assert record.contact.is_active is False


def test_filtered_message_keeps_contact(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)

    post_status(client, fake, channel, fake.status_callback(sid, "failed", "30007"))

    record.refresh_from_db()
    assert record.status == "failed"
    assert record.reason == "undelivered"
    record.contact.refresh_from_db()
    assert record.contact.is_active is True


def test_intermediate_status_changes_nothing(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)

    response = post_status(client, fake, channel, fake.status_callback(sid, "sent"))

    assert response.status_code == 200
    record.refresh_from_db()
    assert record.status == "sent"


def test_bad_signature_is_rejected(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)

    response = post_status(
        client,
        fake,
        channel,
        fake.status_callback(sid, "delivered"),
        signature="bm90IGEgc2lnbmF0dXJl",
    )

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == "sent"


def test_signature_over_internal_url_is_rejected(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)
    form = fake.status_callback(sid, "delivered")
    internal = fake.signature(
        "http://backend.internal:8000" + callback_url(channel), form
    )

    response = post_status(client, fake, channel, form, signature=internal)

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == "sent"


def test_missing_signature_is_rejected(client, fake, channel):
    response = client.post(callback_url(channel), {"MessageSid": "SM1"})

    assert response.status_code == 403


def test_read_status_marks_opened(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)

    post_status(client, fake, channel, fake.status_callback(sid, "read"))

    record.refresh_from_db()
    assert record.status == "opened"


def shared_key_headers(fake):
    settings_header = f"key={fake.webhook_shared_key_id},algorithm=HMAC_SHA256"
    return {"HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS": settings_header}


def test_shared_key_signature_accepted(client, fake, channel, sent_sms):
    credentials = {**channel.credentials, "webhook_shared_key": fake.webhook_shared_key}
    channel.credentials = credentials
    channel.save()
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)
    form = fake.status_callback(sid, "delivered")
    path = callback_url(channel)

    response = client.post(
        path,
        form,
        HTTP_X_TWILIO_SIGNATURE=fake.shared_key_signature(PUBLIC_BASE + path, form),
        **shared_key_headers(fake),
    )

    assert response.status_code == 200
    record.refresh_from_db()
    assert record.status == "delivered"


def test_shared_key_without_configured_key(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)
    form = fake.status_callback(sid, "delivered")
    path = callback_url(channel)

    response = client.post(
        path,
        form,
        HTTP_X_TWILIO_SIGNATURE=fake.shared_key_signature(PUBLIC_BASE + path, form),
        **shared_key_headers(fake),
    )

    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == "sent"


def test_callback_without_sid_changes_nothing(client, fake, channel):
    response = post_status(client, fake, channel, {"MessageStatus": "delivered"})

    assert response.status_code == 200


def test_unknown_message_answers_200(client, fake, channel):
    form = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}

    response = post_status(client, fake, channel, form)

    assert response.status_code == 200


# Incoming messages


@pytest.fixture
def subscriber(db):
    NotificationType.objects.create(key="promo", category="marketing")
    UserProfile.objects.create(user_id="ann")
    return Contact.objects.create(user_id="ann", kind="phone", address=TO)


def post_incoming(client, fake, channel, body, sender=TO, signature=None):
    return post_status(
        client, fake, channel, fake.incoming_message(sender, body), signature
    )


def test_incoming_stop_answers_empty_twiml(client, fake, channel, subscriber):
    response = post_incoming(client, fake, channel, "STOP")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.decode().endswith("<Response />")


def test_incoming_stop_opts_out(client, fake, channel, subscriber):
    post_incoming(client, fake, channel, "Stop")

    profile = UserProfile.objects.get(user_id="ann")
    assert profile.marketing_sms_opt_out is True
    row = UserPushPreference.objects.get(user_id="ann", notification_type="promo")
    assert (row.channel, row.is_enabled) == ("sms", False)


def test_incoming_start_opts_in(client, fake, channel, subscriber):
    post_incoming(client, fake, channel, "STOP")

    post_incoming(client, fake, channel, "start")

    profile = UserProfile.objects.get(user_id="ann")
    assert profile.marketing_sms_opt_out is False
    row = UserPushPreference.objects.get(user_id="ann", notification_type="promo")
    assert row.is_enabled is True


def test_incoming_text_without_keyword(client, fake, channel, subscriber):
    response = post_incoming(client, fake, channel, "please stop")

    assert response.status_code == 200
    assert UserProfile.objects.get(user_id="ann").marketing_sms_opt_out is False
    assert not UserPushPreference.objects.exists()


def test_incoming_with_bad_signature(client, fake, channel, subscriber):
    response = post_incoming(
        client, fake, channel, "STOP", signature="bm90IGEgc2lnbmF0dXJl"
    )

    assert response.status_code == 403
    assert UserProfile.objects.get(user_id="ann").marketing_sms_opt_out is False
    assert not UserPushPreference.objects.exists()


def test_incoming_from_unknown_number(client, fake, channel, subscriber, caplog):
    caplog.set_level("INFO", logger="preferences.sms_opt_out")

    response = post_incoming(client, fake, channel, "STOP", sender="+14155550199")

    assert response.status_code == 200
    assert UserProfile.objects.get(user_id="ann").marketing_sms_opt_out is False
    assert "without an active phone contact" in caplog.text
    assert "+14155550199" not in caplog.text


def test_incoming_without_sender_changes_nothing(client, fake, channel, subscriber):
    form = {"Body": "STOP", "SmsStatus": "received"}

    response = post_status(client, fake, channel, form)

    assert response.status_code == 200
    assert UserProfile.objects.get(user_id="ann").marketing_sms_opt_out is False


def test_status_callback_is_not_incoming(client, fake, channel, sent_sms):
    sid = send_for_record(fake, channel)
    record = sent_sms(channel, sid, TO)
    form = {**fake.status_callback(sid, "delivered"), "Body": "STOP"}

    response = post_status(client, fake, channel, form)

    assert response.status_code == 200
    record.refresh_from_db()
    assert record.status == "delivered"
    assert not UserProfile.objects.filter(marketing_sms_opt_out=True).exists()
