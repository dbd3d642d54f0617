"""GET and PUT /api/v1/notifications/preferences."""
import pytest

from preferences.models import UserProfile, UserPushPreference

URL = "/api/v1/notifications/preferences"


def document(**overrides):
    data = {
        "user_id": "alice",
        "all_enabled": True,
        "timezone": "Europe/Berlin",
        "quiet_hours": {"start": "22:00", "end": "08:00"},
        "frequency_limit": {"per_day": 5},
        "preferences": [
            {"notification_type": "marketing", "channel": "sms", "is_enabled": False},
            {"notification_type": "order", "channel": "app", "is_enabled": True,
             "quiet_hours_start": "23:00", "quiet_hours_end": "06:30", "frequency_limit": 2},
        ],
    }
    data.update(overrides)
    return data


def test_get_unknown_user_returns_defaults(preferences_client):
    response = preferences_client.get(URL, {"user_id": "nobody"})
    assert response.status_code == 200
    assert response.json()["all_enabled"] is True
    assert response.json()["preferences"] == []
    assert response.json()["timezone"] == "Asia/Shanghai"


def test_put_then_get_round_trips(preferences_client):
    put = preferences_client.put(URL, document(), format="json")
    assert put.status_code == 200
    got = preferences_client.get(URL, {"user_id": "alice"}).json()
    assert got["quiet_hours"] == {"start": "22:00", "end": "08:00"}
    assert got["frequency_limit"] == {"per_day": 5}
    assert got["timezone"] == "Europe/Berlin"
    order_row = next(row for row in got["preferences"] if row["notification_type"] == "order")
    assert order_row["quiet_hours_start"] == "23:00"
    assert order_row["frequency_limit"] == 2


def test_put_replaces_rows(preferences_client):
    preferences_client.put(URL, document(), format="json")
    preferences_client.put(URL, document(preferences=[]), format="json")
    assert UserPushPreference.objects.filter(user_id="alice").count() == 0


def test_put_clears_quiet_hours_and_limit(preferences_client):
    preferences_client.put(URL, document(), format="json")
    preferences_client.put(URL, document(quiet_hours=None, frequency_limit=None), format="json")
    profile = UserProfile.objects.get(user_id="alice")
    assert profile.quiet_hours_start is None
    assert profile.daily_limit is None


def test_wildcard_type_is_stored_empty(preferences_client):
    rows = [{"notification_type": "*", "channel": "email", "is_enabled": False}]
    preferences_client.put(URL, document(preferences=rows), format="json")
    assert UserPushPreference.objects.get().notification_type == ""


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
        ({"frequency_limit": {"per_day": -1}}, "frequency_limit.per_day"),
        ({"preferences": [{"channel": "fax"}]}, "preferences[0].channel"),
        ({"preferences": [{"channel": "sms", "quiet_hours_start": "01:00"}]},
         "preferences[0].quiet_hours_end"),
        ({"preferences": [{"channel": "sms"}, {"channel": "sms"}]}, "preferences"),
        ({"user_id": ""}, "user_id"),
    ],
)
def test_invalid_document_names_field_and_keeps_stored(preferences_client, overrides, field):
    preferences_client.put(URL, document(), format="json")
    response = preferences_client.put(URL, document(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert UserPushPreference.objects.filter(user_id="alice").count() == 2
    assert UserProfile.objects.get(user_id="alice").daily_limit == 5


def test_get_without_user_id_is_400(preferences_client):
    response = preferences_client.get(URL)
    assert response.status_code == 400
    assert "user_id" in response.json()["error"]["fields"]


def test_push_scope_cannot_read_preferences(push_client):
    assert push_client.get(URL, {"user_id": "alice"}).status_code == 403


def test_wildcard_row_reads_back_as_star(preferences_client):
    rows = [{"notification_type": "*", "channel": "email", "is_enabled": False}]
    preferences_client.put(URL, document(preferences=rows), format="json")
    got = preferences_client.get(URL, {"user_id": "alice"}).json()
    assert got["preferences"][0]["notification_type"] == "*"


def test_get_document_puts_back_unchanged(preferences_client):
    preferences_client.put(URL, document(), format="json")
    got = preferences_client.get(URL, {"user_id": "alice"}).json()
    again = preferences_client.put(URL, got, format="json")
    assert again.status_code == 200
    assert again.json() == got


def test_misspelt_field_is_400_and_keeps_stored(preferences_client):
    preferences_client.put(URL, document(), format="json")
    bad = {key: value for key, value in document().items() if key != "quiet_hours"}
    response = preferences_client.put(URL, {**bad, "quiet_hour": {"start": "01:00", "end": "02:00"}},
                                      format="json")
    assert response.status_code == 400
    assert "quiet_hour" in response.json()["error"]["fields"]
    assert UserProfile.objects.get(user_id="alice").quiet_hours_start is not None


def test_get_with_nul_in_user_id_is_400(preferences_client):
    response = preferences_client.get(URL, {"user_id": "a\x00b"})
    assert response.status_code == 400
    assert "user_id" in response.json()["error"]["fields"]


def test_disabling_critical_type_is_400_naming_row(preferences_client):
    from sharestack_push.notifications.models import NotificationType

    NotificationType.objects.create(key="security", is_critical=True)
    rows = [
        {"notification_type": "order", "channel": "app", "is_enabled": False},
        {"notification_type": "security", "channel": "sms", "is_enabled": False},
    ]
    response = preferences_client.put(URL, document(preferences=rows), format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["preferences[1].is_enabled"]
    assert "security" in fields["preferences[1].is_enabled"][0]
    assert not UserPushPreference.objects.exists()


def test_disabling_type_users_cannot_disable_is_400(preferences_client):
    from sharestack_push.notifications.models import NotificationType

    NotificationType.objects.create(key="receipt", user_can_disable=False)
    rows = [{"notification_type": "receipt", "channel": "email", "is_enabled": False}]
    response = preferences_client.put(URL, document(preferences=rows), format="json")
    assert "preferences[0].is_enabled" in response.json()["error"]["fields"]


def test_critical_type_row_with_quiet_hours_is_accepted(preferences_client):
    from sharestack_push.notifications.models import NotificationType

    NotificationType.objects.create(key="security", is_critical=True)
    rows = [{"notification_type": "security", "channel": "app", "is_enabled": True,
             "quiet_hours_start": "23:00", "quiet_hours_end": "06:00"}]
    response = preferences_client.put(URL, document(preferences=rows), format="json")
    assert response.status_code == 200


def test_disabling_marketing_and_wildcard_is_accepted(preferences_client):
    from sharestack_push.notifications.models import NotificationType

    NotificationType.objects.create(key="promo", category="marketing")
    rows = [{"notification_type": "promo", "channel": "email", "is_enabled": False},
            {"notification_type": "*", "channel": "sms", "is_enabled": False}]
    response = preferences_client.put(URL, document(preferences=rows), format="json")
    assert response.status_code == 200
    assert UserPushPreference.objects.count() == 2
