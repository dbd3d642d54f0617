"""Signed one-click unsubscribe links."""
import pytest

from preferences.models import UserPushPreference
from preferences.unsubscribe import unsubscribe_url

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def test_one_click_post_turns_off_that_type_by_email(client):
    url = path_of(unsubscribe_url("ann", "promo", "email"))
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    row = UserPushPreference.objects.get(user_id="ann", notification_type="promo", channel="email")
    assert row.is_enabled is False


def test_get_only_asks(client):
    response = client.get(path_of(unsubscribe_url("ann", "promo", "email")))
    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert not UserPushPreference.objects.exists()


def test_tampered_link_gets_a_clear_page(client):
    url = path_of(unsubscribe_url("ann", "promo", "email"))
    response = client.post(url[:-3] + "xyz")
    assert response.status_code == 400
    assert "damaged".encode() in response.content
    assert not UserPushPreference.objects.exists()


def test_other_methods_are_refused(client):
    assert client.put(path_of(unsubscribe_url("ann", "promo", "email"))).status_code == 405

