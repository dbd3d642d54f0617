import pytest

from sharestack_push.notifications.models import ApiKey

PUSH_URL = "/api/v1/notifications/push"
PUSH_BODY = {
    "notification_id": "n-1",
    "notification_type": "account",
    "user_id": "alice",
    "channels": ["email"],
    "content": {"title": "Hi", "body": "Hello"},
}


def test_missing_key_is_401(client, db):
    response = client.post(PUSH_URL, PUSH_BODY, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_wrong_key_is_401(client, db):
    response = client.post(
        PUSH_URL, PUSH_BODY, content_type="application/json",
        HTTP_AUTHORIZATION="Api-Key ssp_deadbeef_not-a-real-secret",
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


def test_wrong_secret_for_real_prefix_is_401(client, make_client):
    real = make_client("push").plain_key
    forged = real[: real.rindex("_") + 1] + "forged"
    response = client.post(
        PUSH_URL, PUSH_BODY, content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {forged}",
    )
    assert response.status_code == 401


def test_bearer_scheme_is_401(client, make_client):
    key = make_client("push").plain_key
    response = client.post(
        PUSH_URL, PUSH_BODY, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 401


def test_revoked_key_is_401(make_client):
    api = make_client("push")
    ApiKey.objects.update(is_active=False)
    assert api.post(PUSH_URL, PUSH_BODY, format="json").status_code == 401


def test_missing_scope_is_403(make_client):
    response = make_client("preferences").post(PUSH_URL, PUSH_BODY, format="json")
    assert response.status_code == 403
    assert "push" in response.json()["error"]["message"]


def test_key_is_stored_hashed(make_client):
    plain = make_client("push").plain_key
    stored = ApiKey.objects.get()
    assert plain.split("_", 2)[2] not in stored.key_hash
    assert stored.prefix in plain


@pytest.mark.parametrize("url", ["/api/v1/channels", "/api/v1/templates"])
def test_admin_endpoints_need_admin_scope(make_client, url):
    assert make_client("push").get(url).status_code == 403
    assert make_client("admin").get(url).status_code == 200
