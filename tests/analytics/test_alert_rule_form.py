"""The alert rule add form in the admin, posted by a logged-in staff client."""
import pytest

from analytics.models import AlertRule
from channels_app.models import Channel

ADD_URL = "/admin/analytics/alertrule/add/"


@pytest.fixture
def mail_channel(db) -> Channel:
    return Channel.objects.create(name="ops-mail", kind="email", provider="console")


def post_rule(client, channel: Channel, **fields):
    """Post the add form with valid defaults overridden by fields."""
    data = {
        "name": "rule", "kind": "backlog", "enabled": "on", "channel_kind": "",
        "window_minutes": "15", "threshold": "5", "min_count": "10",
        "alert_channel": str(channel.pk), "alert_address": "oncall@example.com",
        "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0", "events-MAX_NUM_FORMS": "1000",
    } | fields
    return client.post(ADD_URL, data)


def form_errors(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: list(errors) for name, errors in form.errors.items()}


def test_valid_rule_saves(staff_client, mail_channel):
    response = post_rule(staff_client, mail_channel)
    assert response.status_code == 302
    assert AlertRule.objects.get().window_minutes == 15


@pytest.mark.parametrize("field, value", [
    ("window_minutes", "0"),
    ("window_minutes", "10081"),
    ("window_minutes", "99999999999"),
    ("threshold", "nan"),
    ("threshold", "inf"),
    ("threshold", "-1"),
    ("threshold", "1e10"),
    ("min_count", "1000001"),
])
def test_out_of_range_number_is_rejected(staff_client, mail_channel, field, value):
    response = post_rule(staff_client, mail_channel, **{field: value})
    assert response.status_code == 200
    assert field in form_errors(response)
    assert not AlertRule.objects.exists()
