"""ApnsProvider end to end against the fake APNs HTTP/2 server over TLS."""

import ssl
import time
import uuid

import httpx
import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from channels_app.providers.apns import (
    DEFAULT_TTL_SECONDS,
    ERROR_CODES,
    PRODUCTION_URL,
    SANDBOX_URL,
    ApnsProvider,
    classify,
    retry_after_seconds,
)
from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.tokens import LocalTokens
from tests.fakes.apns import FakeApns, device_token

# Written from Apple's table of APNs error reasons, independently of the adapter's.
EXPECTED_OUTCOMES = {
    "BadCollapseId": Outcome.PERMANENT,
    "BadDeviceToken": Outcome.INVALID_ADDRESS,
    "BadExpirationDate": Outcome.PERMANENT,
    "BadMessageId": Outcome.PERMANENT,
    "BadPriority": Outcome.PERMANENT,
    "BadTopic": Outcome.CONFIGURATION,
    "DeviceTokenNotForTopic": Outcome.INVALID_ADDRESS,
    "DuplicateHeaders": Outcome.PERMANENT,
    "IdleTimeout": Outcome.RETRYABLE,
    "InvalidPushType": Outcome.PERMANENT,
    "MissingDeviceToken": Outcome.PERMANENT,
    "MissingTopic": Outcome.CONFIGURATION,
    "PayloadEmpty": Outcome.PERMANENT,
    "TopicDisallowed": Outcome.CONFIGURATION,
    "BadCertificate": Outcome.CONFIGURATION,
    "BadCertificateEnvironment": Outcome.CONFIGURATION,
    "ExpiredProviderToken": Outcome.CONFIGURATION,
    "Forbidden": Outcome.CONFIGURATION,
    "InvalidProviderToken": Outcome.CONFIGURATION,
    "MissingProviderToken": Outcome.CONFIGURATION,
    "UnrelatedKeyIdInToken": Outcome.CONFIGURATION,
    "BadEnvironmentKeyInToken": Outcome.CONFIGURATION,
    "BadPath": Outcome.PERMANENT,
    "MethodNotAllowed": Outcome.PERMANENT,
    "ExpiredToken": Outcome.INVALID_ADDRESS,
    "Unregistered": Outcome.INVALID_ADDRESS,
    "PayloadTooLarge": Outcome.PERMANENT,
    "TooManyProviderTokenUpdates": Outcome.RETRYABLE,
    "TooManyRequests": Outcome.RETRYABLE,
    "InternalServerError": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE,
    "Shutdown": Outcome.RETRYABLE,
}


@pytest.fixture(scope="module")
def apns_server():
    with FakeApns() as fake:
        yield fake


@pytest.fixture
def fake_apns(apns_server):
    apns_server.clear()
    return apns_server


def build_provider(fake: FakeApns, channel_key: str | None = None, **config) -> ApnsProvider:
    config = {
        "team_id": fake.team_id,
        "key_id": fake.key_id,
        "bundle_id": fake.bundle_id,
        "base_url": fake.base_url,
        "ca_file": fake.ca_file,
        **config,
    }
    # A fresh key per test, so no provider token is shared with another test.
    return ApnsProvider(config, {"private_key": fake.private_key_pem}, timeout=5,
                        channel_key=channel_key or f"test-{uuid.uuid4().hex}")


@pytest.fixture
def provider(fake_apns):
    adapter = build_provider(fake_apns)
    yield adapter
    adapter.close()


def message(record_id: int = 1, token: str | None = None, *, title: str = "Deploy finished",
            body: str = "Build 42 is live", data: dict | None = None, **options) -> OutgoingMessage:
    priority = options.pop("priority", "normal")
    return OutgoingMessage(record_id, token or device_token(), title, body, data or {},
                           priority=priority, options=options)


def send_one(provider: ApnsProvider, outgoing: OutgoingMessage | None = None):
    [result] = provider.send([outgoing or message()])
    return result


# Success and the request on the wire


def test_success_stores_apns_id(provider, fake_apns):
    result = send_one(provider)

    [request] = fake_apns.requests
    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == request.headers["apns-id"]
    assert str(uuid.UUID(result.provider_message_id)) == result.provider_message_id


def test_request_headers(provider, fake_apns):
    token = device_token()
    before = int(time.time())

    send_one(provider, message(token=token))

    [request] = fake_apns.requests
    assert request.headers[":path"] == f"/3/device/{token}"
    assert request.headers["apns-topic"] == fake_apns.bundle_id
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["authorization"].startswith("bearer ey")
    assert int(request.headers["apns-expiration"]) >= before + DEFAULT_TTL_SECONDS
    assert "apns-collapse-id" not in request.headers


def test_alert_payload_with_options(provider, fake_apns):
    outgoing = message(
        data={"order_id": 7, "kind": "deploy"},
        sound="chime.caf", badge=3, category="DEPLOY_ACTIONS",
        buttons=["open", "dismiss"], image="https://cdn.test/a.png",
        click_action="app://deploys/42",
    )

    send_one(provider, outgoing)

    payload = fake_apns.requests[0].payload
    assert payload["aps"] == {
        "alert": {"title": "Deploy finished", "body": "Build 42 is live"},
        "sound": "chime.caf",
        "badge": 3,
        "category": "DEPLOY_ACTIONS",
        "mutable-content": 1,
    }
    assert payload["order_id"] == 7
    assert payload["kind"] == "deploy"
    assert payload["image"] == "https://cdn.test/a.png"
    assert payload["click_action"] == "app://deploys/42"


def test_data_only_message_is_background(provider, fake_apns):
    result = send_one(provider, message(title="", body="", data={"sync": True}))

    [request] = fake_apns.requests
    assert result.outcome == Outcome.SENT
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"
    assert request.payload == {"sync": True, "aps": {"content-available": 1}}


def test_low_priority_and_collapse_and_ttl(provider, fake_apns):
    before = int(time.time())

    send_one(provider, message(priority="low", collapse_key="deploys", ttl_seconds=60))

    headers = fake_apns.requests[0].headers
    assert headers["apns-priority"] == "5"
    assert headers["apns-collapse-id"] == "deploys"
    assert before + 60 <= int(headers["apns-expiration"]) <= int(time.time()) + 60


def test_zero_ttl_means_deliver_once(provider, fake_apns):
    send_one(provider, message(ttl_seconds=0))

    assert fake_apns.requests[0].headers["apns-expiration"] == "0"


def test_batch_results_match_record_ids(provider, fake_apns):
    dead, busy = device_token(), device_token()
    fake_apns.script(dead, "Unregistered")
    fake_apns.script(busy, "TooManyRequests")
    batch = [message(record_id) for record_id in range(1, 41)]
    batch += [message(100, dead), message(101, busy)]

    results = {result.record_id: result for result in provider.send(batch)}

    assert len(results) == len(batch)
    assert results[100].outcome == Outcome.INVALID_ADDRESS
    assert results[101].outcome == Outcome.RETRYABLE
    assert all(results[record_id].outcome == Outcome.SENT for record_id in range(1, 41))
    assert fake_apns.sent == 40


# Error classification


def test_expected_table_covers_adapter_reasons():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("reason", sorted(EXPECTED_OUTCOMES))
def test_error_reason_outcome(provider, fake_apns, reason):
    token = device_token()
    # An expired provider token is replaced and the message resent once.
    fake_apns.script(token, reason, reason)

    result = send_one(provider, message(token=token))

    assert result.outcome == EXPECTED_OUTCOMES[reason]
    assert result.error_code == reason
    assert result.provider_message_id == fake_apns.requests[-1].headers["apns-id"]


def test_unregistered_keeps_timestamp(provider, fake_apns):
    token = device_token()
    fake_apns.script(token, "Unregistered")

    result = send_one(provider, message(token=token))

    assert result.response_data["status"] == 410
    assert result.response_data["timestamp"] > 1_600_000_000_000


def test_payload_too_large_checked_by_server(provider, fake_apns):
    result = send_one(provider, message(body="x" * 5000))

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "PayloadTooLarge"
    assert result.response_data == {"status": 413}


def test_wrong_bundle_id_is_configuration(fake_apns):
    adapter = build_provider(fake_apns, bundle_id="com.example.other")
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "BadTopic"


def test_foreign_signing_key_is_configuration(fake_apns):
    other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    adapter = ApnsProvider(
        {"team_id": fake_apns.team_id, "key_id": fake_apns.key_id,
         "bundle_id": fake_apns.bundle_id, "base_url": fake_apns.base_url,
         "ca_file": fake_apns.ca_file},
        {"private_key": other_key}, timeout=5, channel_key=f"test-{uuid.uuid4().hex}",
    )
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "InvalidProviderToken"


def test_classify_falls_back_to_status():
    assert classify(410, "SomethingNew") == Outcome.INVALID_ADDRESS
    assert classify(502, "SomethingNew") == Outcome.RETRYABLE
    assert classify(400, "SomethingNew") == Outcome.PERMANENT


def test_retry_after_header_forms():
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Fri, 01 Jan 2100 00:00:00 GMT") > 365 * 24 * 3600
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


# Provider token


def test_token_reused_across_batches(provider, fake_apns):
    provider.send([message(1), message(2)])
    provider.send([message(3)])

    tokens = {request.headers["authorization"] for request in fake_apns.requests}
    assert len(tokens) == 1


def test_token_shared_by_two_adapters(fake_apns):
    key = f"test-{uuid.uuid4().hex}"
    first, second = build_provider(fake_apns, key), build_provider(fake_apns, key)
    try:
        results = first.send([message(1)]) + second.send([message(2)])
    finally:
        first.close()
        second.close()

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    tokens = {request.headers["authorization"] for request in fake_apns.requests}
    assert len(tokens) == 1


def test_separate_tokens_rejected_as_too_many_updates(fake_apns):
    # Two adapters that each sign their own token look to APNs like a token
    # refreshed too often; the shared token above avoids this.
    first, second = build_provider(fake_apns), build_provider(fake_apns)
    try:
        first_result = send_one(first)
        second_result = send_one(second)
    finally:
        first.close()
        second.close()

    assert first_result.outcome == Outcome.SENT
    assert second_result.outcome == Outcome.RETRYABLE
    assert second_result.error_code == "TooManyProviderTokenUpdates"


def test_expired_token_replaced_and_resent_once(provider, fake_apns):
    token = device_token()
    fake_apns.script(token, "ExpiredProviderToken")

    result = send_one(provider, message(token=token))

    assert result.outcome == Outcome.SENT
    first, second = fake_apns.requests
    assert first.status == 403
    assert second.status == 200
    assert second.headers["authorization"] != first.headers["authorization"]


def test_expired_token_resend_covers_only_rejected(provider, fake_apns):
    token = device_token()
    fake_apns.script(token, "ExpiredProviderToken")

    results = provider.send([message(1, token), message(2)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    # Record 2 is resent only if its request also met the expired token.
    assert fake_apns.sent == 2


def test_unusable_private_key_is_configuration(fake_apns):
    adapter = ApnsProvider(
        {"team_id": "T", "key_id": "K", "bundle_id": fake_apns.bundle_id,
         "base_url": fake_apns.base_url, "ca_file": fake_apns.ca_file},
        {"private_key": "not a key"}, timeout=5, channel_key=f"test-{uuid.uuid4().hex}",
    )

    result = send_one(adapter)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "token_signing_failed"
    assert "not a key" not in result.error_message
    assert fake_apns.requests == []


# Connections


def test_connection_reused_across_batches(fake_apns):
    adapter = build_provider(fake_apns)
    opened_before = fake_apns.connections
    try:
        first = adapter.send([message(record_id) for record_id in range(50)])
        second = adapter.send([message(record_id) for record_id in range(50, 100)])
    finally:
        adapter.close()

    assert all(r.outcome == Outcome.SENT for r in first + second)
    assert fake_apns.connections == opened_before + 1
    assert {request.connection for request in fake_apns.requests} == {fake_apns.connections}


def test_untrusted_certificate_is_retryable(fake_apns):
    adapter = build_provider(fake_apns)
    # The system's CAs, none of which signed the fake's certificate.
    adapter._verify = True
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"
    assert fake_apns.requests == []


def test_server_down_is_retryable():
    with FakeApns() as fake:
        adapter = build_provider(fake)
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


# Configuration checks


def test_validate_accepts_complete_settings(fake_apns):
    config = {"team_id": "T", "key_id": "K", "bundle_id": "com.x", "use_sandbox": True}

    assert ApnsProvider.validate(config, {"private_key": fake_apns.private_key_pem}) == {}


def test_validate_names_missing_and_unknown_fields():
    errors = ApnsProvider.validate({"bundleid": "com.x"}, {})

    assert set(errors) == {
        "config.team_id", "config.key_id", "config.bundle_id", "config.bundleid",
        "credentials.private_key",
    }


def test_validate_rejects_bad_key_and_sandbox_flag():
    config = {"team_id": "T", "key_id": "K", "bundle_id": "com.x", "use_sandbox": "yes"}

    errors = ApnsProvider.validate(config, {"private_key": "-----BEGIN PRIVATE KEY-----"})

    assert set(errors) == {"config.use_sandbox", "credentials.private_key"}
    assert "BEGIN" not in errors["credentials.private_key"]


def test_base_url_defaults():
    credentials = {"private_key": "unused"}
    base = {"team_id": "T", "key_id": "K", "bundle_id": "com.x"}

    production = ApnsProvider(base, credentials, timeout=5)
    sandbox = ApnsProvider({**base, "use_sandbox": True}, credentials, timeout=5)

    assert production.base_url == PRODUCTION_URL
    assert sandbox.base_url == SANDBOX_URL
    assert production.token_key == "apns-T-K:provider-token"


# The fake's own protocol checks, which the tests above rely on


def raw_post(fake: FakeApns, token: str, headers: dict, body: bytes = b'{"aps":{}}'):
    context = ssl.create_default_context(cafile=fake.ca_file)
    with httpx.Client(http1=False, http2=True, verify=context) as client:
        return client.post(f"{fake.base_url}/3/device/{token}", content=body,
                           headers=headers)


def provider_token(fake: FakeApns, issued_at: float) -> str:
    return jwt.encode({"iss": fake.team_id, "iat": int(issued_at)}, fake.private_key_pem,
                      algorithm="ES256", headers={"kid": fake.key_id})


def test_fake_speaks_http2_with_error_body(fake_apns):
    response = raw_post(fake_apns, device_token(), {"apns-topic": fake_apns.bundle_id})

    assert response.http_version == "HTTP/2"
    assert response.status_code == 403
    assert response.json() == {"reason": "MissingProviderToken"}
    assert uuid.UUID(response.headers["apns-id"])


def test_fake_rejects_token_older_than_an_hour(fake_apns):
    headers = {"authorization": f"bearer {provider_token(fake_apns, time.time() - 3700)}",
               "apns-topic": fake_apns.bundle_id}

    response = raw_post(fake_apns, device_token(), headers)

    assert response.status_code == 403
    assert response.json() == {"reason": "ExpiredProviderToken"}


def test_fake_checks_token_format_and_headers(fake_apns):
    headers = {"authorization": f"bearer {provider_token(fake_apns, time.time())}",
               "apns-topic": fake_apns.bundle_id}

    bad_token = raw_post(fake_apns, "not-hex", headers)
    bad_priority = raw_post(fake_apns, device_token(), {**headers, "apns-priority": "7"})
    empty = raw_post(fake_apns, device_token(), headers, body=b"")

    assert bad_token.json() == {"reason": "BadDeviceToken"}
    assert bad_priority.json() == {"reason": "BadPriority"}
    assert empty.json() == {"reason": "PayloadEmpty"}


def test_fake_rejects_unknown_script_reason(fake_apns):
    with pytest.raises(ValueError, match="unknown APNs reason"):
        fake_apns.script(device_token(), "NotAReason")



class UndroppableTokens(LocalTokens):
    """A token store whose drop() fails, as when Redis goes away mid-send."""

    def drop(self, key, token):
        raise redis.ConnectionError("Connection refused")


class BrokenTokenStore(UndroppableTokens):
    """A token store whose Redis is unreachable."""

    def get(self, key, fetch, wait_seconds=0):
        raise redis.ConnectionError("Connection refused")


def test_token_store_down_is_retryable(provider, fake_apns, monkeypatch):
    monkeypatch.setattr("channels_app.providers.apns.shared_tokens", BrokenTokenStore)

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "token_cache_failed"
    assert fake_apns.requests == []


def test_failed_drop_still_resends_once(provider, fake_apns, monkeypatch):
    store = UndroppableTokens()
    monkeypatch.setattr("channels_app.providers.apns.shared_tokens", lambda: store)
    token = device_token()
    fake_apns.script(token, "ExpiredProviderToken")

    result = send_one(provider, message(token=token))

    # The expired token stays cached, so the resend is rejected too, and only once.
    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "ExpiredProviderToken"
    assert len(fake_apns.requests) == 2


def test_invalid_ttl_option_is_permanent(provider, fake_apns):
    result = send_one(provider, message(ttl_seconds="a day"))

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "invalid_options"
    assert fake_apns.requests == []
