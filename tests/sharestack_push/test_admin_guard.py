"""Admin query strings with NUL characters get a 400, not a database error."""
import pytest

from tests.staff import staff_client, staff_user  # noqa: F401

RECORDS = "/admin/notifications/pushrecord/"


@pytest.mark.parametrize("query", ["reason=%00", "provider=a%00", "q=x&user_id=%00", "%00=1"])
def test_admin_list_rejects_nul(staff_client, query):  # noqa: F811
    response = staff_client.get(f"{RECORDS}?{query}")
    assert response.status_code == 400
    assert b"NUL character" in response.content


def test_admin_list_filter_still_works(staff_client):  # noqa: F811
    assert staff_client.get(f"{RECORDS}?reason=no_address").status_code == 200


def test_api_keeps_its_own_nul_check(admin_client):
    response = admin_client.get("/api/v1/notifications/stats?type=%00")
    assert list(response.json()["error"]["fields"]) == ["type"]
