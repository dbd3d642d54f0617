"""POST /api/v1/notifications/preferences/link and the signed tokens behind it."""
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing

from preferences.links import (
    SALT,
    LinkExpired,
    LinkInvalid,
    create_link,
    read_token,
)

URL = "/api/v1/notifications/preferences/link"
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_link_api_returns_signed_url(preferences_client, settings):
    settings.PUSH_PUBLIC_BASE_URL = "https://push.example.com"
    before = datetime.now(UTC)

    response = preferences_client.post(URL, {"user_id": "alice"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["url"].startswith("https://push.example.com/preferences/?token=")
    assert read_token(token_of(body["url"])) == "alice"
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(days=7) - timedelta(seconds=2) <= expires_at
    assert expires_at <= datetime.now(UTC) + timedelta(days=7)


def test_link_api_honours_expires_in(preferences_client):
    response = preferences_client.post(
        URL, {"user_id": "alice", "expires_in": 3600}, format="json"
    )

    expires_at = datetime.fromisoformat(response.json()["expires_at"])
    remaining = expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < remaining <= timedelta(hours=1)


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": 7}, "user_id"),
        ({"user_id": "alice", "expires_in": 5}, "expires_in"),
        ({"user_id": "alice", "expires_in": 91 * 86400}, "expires_in"),
        ({"user_id": "alice", "expires_in": "3600"}, "expires_in"),
        ({"user_id": "alice", "lifetime": 3600}, "lifetime"),
    ],
)
def test_link_api_rejects_invalid_body(preferences_client, body, field):
    response = preferences_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_link_api_needs_preferences_scope(push_client):
    response = push_client.post(URL, {"user_id": "alice"}, format="json")

    assert response.status_code == 403


def test_token_expires_after_lifetime():
    link = create_link("alice", timedelta(hours=1), now=NOW)

    assert read_token(link.token, now=NOW + timedelta(minutes=59)) == "alice"
    with pytest.raises(LinkExpired):
        read_token(link.token, now=NOW + timedelta(hours=1))


def test_altered_token_is_invalid():
    link = create_link("alice", now=NOW)
    altered = link.token[:-2] + ("AA" if not link.token.endswith("AA") else "BB")

    with pytest.raises(LinkInvalid):
        read_token(altered, now=NOW)


def test_token_for_other_salt_is_invalid():
    unsubscribe_token = signing.dumps({"u": "alice", "e": 2**40}, salt="other")

    with pytest.raises(LinkInvalid):
        read_token(unsubscribe_token, now=NOW)


@pytest.mark.parametrize(
    "payload",
    [["alice", 2**40], {"u": "alice"}, {"u": "", "e": 2**40}, {"u": 5, "e": 2**40}],
)
def test_token_of_wrong_shape_is_invalid(payload):
    token = signing.dumps(payload, salt=SALT)

    with pytest.raises(LinkInvalid):
        read_token(token, now=NOW)
