"""FcmProvider end to end against the fake FCM HTTP v1 server and its token endpoint."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.fcm import ERROR_CODES, QUOTA_RETRY_SECONDS, FcmProvider
from tests.fakes.fcm import FakeFcm

REPO_ROOT = Path(__file__).resolve().parents[3]

# Written from FCM's error code reference, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    "UNREGISTERED": Outcome.INVALID_ADDRESS,
    "SENDER_ID_MISMATCH": Outcome.INVALID_ADDRESS,
    "INVALID_ARGUMENT": Outcome.PERMANENT,
    "QUOTA_EXCEEDED": Outcome.RETRYABLE,
    "UNAVAILABLE": Outcome.RETRYABLE,
    "INTERNAL": Outcome.RETRYABLE,
    "UNSPECIFIED_ERROR": Outcome.RETRYABLE,
    "THIRD_PARTY_AUTH_ERROR": Outcome.CONFIGURATION,
}


def build_provider(fake: FakeFcm, **config) -> FcmProvider:
    config = {"project_id": fake.project_id, "base_url": fake.base_url, **config}
    return FcmProvider(config, {"service_account": fake.service_account}, timeout=5)


@pytest.fixture
def provider(fake_fcm):
    adapter = build_provider(fake_fcm)
    yield adapter
    adapter.close()


def message(record_id: int = 1, token: str = "device-1", **data) -> OutgoingMessage:
    return OutgoingMessage(
        record_id, token, "Deploy finished", "Build 42 is live", data
    )


def send_one(provider: FcmProvider, token: str = "device-1"):
    [result] = provider.send([message(token=token)])
    return result


# Success and the request on the wire


def test_success_stores_message_name(provider, fake_fcm):
    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id.startswith("projects/demo-project/messages/")
    assert fake_fcm.sent == 1


def test_request_carries_token_and_notification(provider, fake_fcm):
    send_one(provider, token="device-7")

    [request] = fake_fcm.requests
    assert request.token == "device-7"
    assert request.message["notification"] == {
        "title": "Deploy finished",
        "body": "Build 42 is live",
    }
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith("Bearer ya29.fake-")


def test_data_values_sent_as_strings(provider, fake_fcm):
    outgoing = message(count=3, urgent=True, tags=["a", "b"], url="https://x.test/1")

    [result] = provider.send([outgoing])

    assert result.outcome == Outcome.SENT
    data = fake_fcm.requests[0].message["data"]
    assert data == {
        "count": "3",
        "urgent": "true",
        "tags": '["a", "b"]',
        "url": "https://x.test/1",
    }


def test_batch_results_match_record_ids(provider, fake_fcm):
    fake_fcm.script("dead", "UNREGISTERED")
    fake_fcm.script("busy", "UNAVAILABLE")
    batch = [message(record_id, f"device-{record_id}") for record_id in range(1, 41)]
    batch += [message(100, "dead"), message(101, "busy")]

    results = {result.record_id: result for result in provider.send(batch)}

    assert len(results) == len(batch)
    assert results[100].outcome == Outcome.INVALID_ADDRESS
    assert results[101].outcome == Outcome.RETRYABLE
    assert all(results[record_id].outcome == Outcome.SENT for record_id in range(1, 41))
    assert fake_fcm.sent == 40


# Error classification


def test_unregistered_is_invalid_address(provider, fake_fcm):
    fake_fcm.script("device-1", "UNREGISTERED")

    result = send_one(provider)

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "UNREGISTERED"
    assert result.response_data == {"status": 404}


def test_quota_exceeded_uses_retry_after(provider, fake_fcm):
    fake_fcm.script("device-1", ("QUOTA_EXCEEDED", 7))

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "QUOTA_EXCEEDED"
    assert result.retry_after == 7


def test_quota_exceeded_without_header_waits_a_minute(provider, fake_fcm):
    fake_fcm.script("device-1", "QUOTA_EXCEEDED")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.retry_after == QUOTA_RETRY_SECONDS


def test_unavailable_is_retryable(provider, fake_fcm):
    fake_fcm.script("device-1", "UNAVAILABLE")

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "UNAVAILABLE"
    assert result.retry_after is None


def test_unavailable_retry_after_http_date(provider, fake_fcm):
    # Retry-After may also be an HTTP-date, here one far in the future.
    fake_fcm.script("device-1", ("UNAVAILABLE", "Fri, 01 Jan 2100 00:00:00 GMT"))

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.retry_after > 365 * 24 * 3600


def test_invalid_argument_is_permanent(provider, fake_fcm):
    fake_fcm.script("device-1", "INVALID_ARGUMENT")

    result = send_one(provider)

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "INVALID_ARGUMENT"


def test_invalid_registration_token_is_invalid_address(provider, fake_fcm):
    fake_fcm.script("device-1", "INVALID_REGISTRATION")

    result = send_one(provider)

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "INVALID_ARGUMENT"
    assert "registration token is not a valid" in result.error_message


def test_third_party_auth_error_is_configuration(provider, fake_fcm):
    fake_fcm.script("device-1", "THIRD_PARTY_AUTH_ERROR")

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "THIRD_PARTY_AUTH_ERROR"
    # An APNs or web push credential problem is not fixed by a new OAuth token.
    assert fake_fcm.token_requests == 1
    assert len(fake_fcm.requests) == 1


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("error_code", sorted(EXPECTED_OUTCOMES))
def test_error_code_outcome(provider, fake_fcm, error_code):
    fake_fcm.script("device-1", error_code)

    result = send_one(provider)

    assert result.outcome == EXPECTED_OUTCOMES[error_code]
    assert result.error_code == error_code


def test_wrong_project_is_configuration(fake_fcm):
    adapter = build_provider(fake_fcm, project_id="someone-elses-project")
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "PERMISSION_DENIED"


# OAuth access token


def test_token_reused_across_batches(provider, fake_fcm):
    first = provider.send([message(1, "device-1"), message(2, "device-2")])
    second = provider.send([message(3, "device-3")])

    assert [r.outcome for r in first + second] == [Outcome.SENT] * 3
    assert fake_fcm.token_requests == 1
    tokens = {request.headers["Authorization"] for request in fake_fcm.requests}
    assert len(tokens) == 1


def test_expired_token_refreshed_once(provider, fake_fcm):
    fake_fcm.script("device-1", "expired_token")

    result = send_one(provider)

    assert result.outcome == Outcome.SENT
    assert fake_fcm.token_requests == 2
    first, second = fake_fcm.requests
    assert first.status == 401
    assert second.headers["Authorization"] != first.headers["Authorization"]


def test_revoked_tokens_refreshed_for_whole_batch(provider, fake_fcm):
    send_one(provider)
    fake_fcm.revoke_tokens()

    results = provider.send([message(2, "device-2"), message(3, "device-3")])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert fake_fcm.token_requests == 2


def test_token_rejected_twice_is_configuration(provider, fake_fcm):
    # The fake revokes the token on each expired_token response, so the refreshed
    # token is rejected too and the adapter must not loop.
    fake_fcm.script("device-1", "expired_token", "expired_token", "expired_token")

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "UNAUTHENTICATED"
    assert len(fake_fcm.requests) == 2
    assert fake_fcm.token_requests == 2


def test_rejected_grant_is_configuration(fake_fcm):
    account = {
        **fake_fcm.service_account,
        "client_email": "intruder@x.iam.gserviceaccount.com",
    }
    adapter = FcmProvider(
        {"project_id": fake_fcm.project_id, "base_url": fake_fcm.base_url},
        {"service_account": account},
        timeout=5,
    )

    [result] = adapter.send([message()])

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "token_rejected"
    assert "invalid_grant" in result.error_message
    assert fake_fcm.requests == []


def test_token_uri_from_config(fake_fcm):
    account = {**fake_fcm.service_account, "token_uri": "http://127.0.0.1:9/unused"}
    adapter = FcmProvider(
        {
            "project_id": fake_fcm.project_id,
            "base_url": fake_fcm.base_url,
            "token_uri": fake_fcm.token_uri,
        },
        {"service_account": account},
        timeout=5,
    )
    try:
        result = send_one(adapter)
    finally:
        adapter.close()

    assert result.outcome == Outcome.SENT
    assert fake_fcm.token_requests == 1


# Network failures and retries


def test_connection_refused_with_cached_token(provider, fake_fcm):
    send_one(provider)
    fake_fcm.stop()

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"


def test_connection_refused_on_token_fetch(fake_fcm):
    adapter = build_provider(fake_fcm)
    fake_fcm.stop()

    result = send_one(adapter)

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "token_fetch_failed"


def test_unavailable_not_retried_by_client(provider, fake_fcm):
    # pyfcm's default transport retries 503 and sleeps on Retry-After. This adapter
    # must leave every retry to the delivery pipeline.
    fake_fcm.script("device-1", ("UNAVAILABLE", 1))

    result = send_one(provider)

    assert result.outcome == Outcome.RETRYABLE
    assert len(fake_fcm.requests) == 1


# Configuration checks


def valid_account() -> dict:
    return {
        "client_email": "push@demo-project.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\n...",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def test_validate_accepts_complete_settings():
    errors = FcmProvider.validate(
        {"project_id": "demo-project"}, {"service_account": valid_account()}
    )

    assert errors == {}


def test_validate_names_missing_fields():
    errors = FcmProvider.validate({}, {})

    assert set(errors) == {"config.project_id", "credentials.service_account"}


def test_validate_rejects_non_object_account():
    errors = FcmProvider.validate(
        {"project_id": "demo-project"}, {"service_account": json.dumps(valid_account())}
    )

    assert set(errors) == {"credentials.service_account"}


def test_validate_lists_missing_account_keys():
    account = {"token_uri": "https://oauth2.googleapis.com/token"}

    errors = FcmProvider.validate(
        {"project_id": "demo-project"}, {"service_account": account}
    )

    assert (
        errors["credentials.service_account"]
        == "Missing keys: client_email, private_key."
    )


def test_validate_token_uri_may_come_from_config():
    account = valid_account()
    del account["token_uri"]
    config = {"project_id": "demo-project", "token_uri": "http://127.0.0.1:1/token"}

    assert FcmProvider.validate(config, {"service_account": account}) == {}
    assert "credentials.service_account" in FcmProvider.validate(
        {"project_id": "demo-project"}, {"service_account": account}
    )


def test_malformed_private_key_raises_value_error(fake_fcm):
    account = {**fake_fcm.service_account, "private_key": "not a key"}

    with pytest.raises(ValueError, match="invalid FCM service account"):
        FcmProvider(
            {"project_id": "demo-project"}, {"service_account": account}, timeout=5
        )


# The fake's own protocol checks, which the tests above rely on


@pytest.fixture
def bearer(fake_fcm):
    """Authorization header with an access token that the fake issued."""
    adapter = build_provider(fake_fcm)
    yield {"Authorization": f"Bearer {adapter.access_token()}"}
    adapter.close()


def send_raw(fake: FakeFcm, body: dict, headers: dict) -> requests.Response:
    url = f"{fake.base_url}/v1/projects/{fake.project_id}/messages:send"
    return requests.post(url, json=body, headers=headers, timeout=5)


def test_fake_rejects_bad_assertion(fake_fcm):
    response = requests.post(
        fake_fcm.token_uri,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": "x.y.z",
        },
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_fake_requires_bearer_token(fake_fcm):
    response = send_raw(fake_fcm, {"message": {"token": "device-1"}}, {})

    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_fake_rejects_non_string_data(fake_fcm, bearer):
    body = {"message": {"token": "device-1", "data": {"count": 3}}}

    response = send_raw(fake_fcm, body, bearer)

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_fake_requires_exactly_one_target(fake_fcm, bearer):
    both = send_raw(fake_fcm, {"message": {"token": "d", "topic": "news"}}, bearer)
    neither = send_raw(fake_fcm, {"message": {"data": {"a": "b"}}}, bearer)
    fid = send_raw(fake_fcm, {"message": {"fid": "installation-1"}}, bearer)

    assert both.status_code == 400
    assert neither.status_code == 400
    assert fid.status_code == 200


def test_fake_error_body_shape(fake_fcm, bearer):
    fake_fcm.script("device-1", "SENDER_ID_MISMATCH")

    response = send_raw(fake_fcm, {"message": {"token": "device-1"}}, bearer)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == 403
    assert error["status"] == "PERMISSION_DENIED"
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "SENDER_ID_MISMATCH",
        }
    ]


def test_fake_command_line_serves_stats(tmp_path):
    account_file = tmp_path / "service-account.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.fcm",
            "--port",
            "0",
            "--project",
            "cli-project",
            "--service-account-out",
            str(account_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        account = json.loads(account_file.read_text())
        adapter = FcmProvider(
            {"project_id": "cli-project", "base_url": base_url},
            {"service_account": account},
            timeout=5,
        )
        results = adapter.send([message(1, "device-1"), message(2, "device-2")])
        adapter.close()
        stats = requests.get(f"{base_url}/_fake/stats", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert stats == {"sent": 2, "requests": 2, "token_requests": 1}
    assert process.returncode == 0


def test_fake_rejects_other_grant_type(fake_fcm):
    response = requests.post(
        fake_fcm.token_uri,
        data={"grant_type": "client_credentials", "assertion": "x.y.z"},
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_two_workers_share_one_oauth_token(fake_fcm):
    """Adapters in different processes find the token in Redis instead of fetching."""
    config = {"project_id": fake_fcm.project_id, "base_url": fake_fcm.base_url}
    credentials = {"service_account": fake_fcm.service_account}
    first = FcmProvider(config, credentials, timeout=5, channel_key="channel-1-abc")
    second = FcmProvider(config, credentials, timeout=5, channel_key="channel-1-abc")
    try:
        first.send([message(1, "device-1")])
        second.send([message(2, "device-2")])
    finally:
        first.close()
        second.close()
    assert fake_fcm.token_requests == 1
    assert len(fake_fcm.requests) == 2


def test_unusable_option_fails_only_that_message(provider, fake_fcm):
    bad = OutgoingMessage(1, "device-1", "Hi", "There", options={"badge": "many"})
    good = OutgoingMessage(2, "device-2", "Hi", "There", options={"badge": 2})
    results = {result.record_id: result for result in provider.send([bad, good])}
    assert (results[1].outcome, results[1].error_code) == (Outcome.PERMANENT, "invalid_options")
    assert results[2].outcome == Outcome.SENT
    assert len(fake_fcm.requests) == 1
