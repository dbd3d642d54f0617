"""Bad query parameters of the statistics endpoints give a 400 naming them."""
import pytest

pytestmark = pytest.mark.django_db

STATS = "/api/v1/notifications/stats"
CHANNELS = "/api/v1/notifications/stats/channels"
CHURN = "/api/v1/notifications/stats/churn"
ENGAGEMENT = "/api/v1/users/{}/engagement"


def error_fields(response) -> list[str]:
    return list(response.json()["error"]["fields"])


@pytest.mark.parametrize("url", [STATS, CHANNELS, CHURN])
@pytest.mark.parametrize("campaign", [
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999",
    "1,9223372036854775808",
])
def test_campaign_beyond_64_bits(admin_client, url, campaign):
    response = admin_client.get(url, {"campaign": campaign})
    assert response.status_code == 400
    assert error_fields(response) == ["campaign"]


@pytest.mark.parametrize("url", [STATS, CHANNELS, CHURN])
def test_largest_campaign_id_is_accepted(admin_client, url):
    response = admin_client.get(url, {"campaign": "9223372036854775807"})
    assert response.status_code == 200


@pytest.mark.parametrize("url", [STATS, CHANNELS, CHURN])
@pytest.mark.parametrize("field, value", [
    ("from", "2026-01-01T00:00:00"),
    ("to", "2026-01-01T00:00:00"),
    ("from", "2026-01-01"),
    ("from", "0001-01-02T00:00:00Z"),
    ("to", "9999-12-31T00:00:00Z"),
])
def test_time_without_offset_or_out_of_range(admin_client, url, field, value):
    response = admin_client.get(url, {field: value})
    assert response.status_code == 400
    assert error_fields(response) == [field]


def test_time_with_offset_is_accepted(admin_client):
    response = admin_client.get(STATS, {"from": "2026-01-01T00:00:00+08:00"})
    assert response.status_code == 200


@pytest.mark.parametrize("url, query, field", [
    (STATS, "tz=UTC&tz=Asia/Shanghai", "tz"),
    (STATS, "channel=app&channel=sms", "channel"),
    (CHANNELS, "from=2026-01-01T00:00:00Z&from=2026-02-01T00:00:00Z", "from"),
    (CHURN, "days=7&days=30", "days"),
    (ENGAGEMENT.format("ann"), "days=7&days=30", "days"),
])
def test_repeated_parameter_is_400(admin_client, url, query, field):
    response = admin_client.get(f"{url}?{query}")
    assert response.status_code == 400
    assert error_fields(response) == [field]


@pytest.mark.parametrize("user_id", ["%00", "a%00b", "x" * 65])
def test_engagement_bad_user_id(admin_client, user_id):
    response = admin_client.get(ENGAGEMENT.format(user_id))
    assert response.status_code == 400
    assert error_fields(response) == ["user_id"]


def test_engagement_user_id_of_64_characters(admin_client):
    response = admin_client.get(ENGAGEMENT.format("x" * 64))
    assert response.status_code == 200
    assert response.json()["user_id"] == "x" * 64


@pytest.mark.parametrize("url", [CHURN, ENGAGEMENT.format("ann")])
@pytest.mark.parametrize("days", ["٣", "%2B5", "%205", "5.0", "1e1"])
def test_days_needs_ascii_digits(admin_client, url, days):
    response = admin_client.get(f"{url}?days={days}")
    assert response.status_code == 400
    assert error_fields(response) == ["days"]


@pytest.mark.parametrize("url", [CHURN, ENGAGEMENT.format("ann")])
def test_days_in_ascii_digits_is_accepted(admin_client, url):
    response = admin_client.get(f"{url}?days=7")
    assert response.status_code == 200
