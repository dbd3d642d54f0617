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


@pytest.fixture
def robot_channel(db) -> Channel:
    return Channel.objects.create(name="ops-robot", kind="wechat", provider="wecom_robot")


@pytest.mark.parametrize("fields, field", [
    ({"channel_kind": "fax"}, "channel_kind"),
    ({"kind": "failure_rate", "threshold": "7"}, "threshold"),
    ({"kind": "failure_rate", "threshold": "1.01"}, "threshold"),
    ({"kind": "opt_outs_rising", "threshold": "0.5"}, "threshold"),
    ({"alert_address": ""}, "alert_address"),
    ({"alert_address": "not an email"}, "alert_address"),
])
def test_unusable_rule_is_rejected(staff_client, mail_channel, fields, field):
    response = post_rule(staff_client, mail_channel, **fields)
    assert response.status_code == 200
    assert field in form_errors(response)
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize("threshold", ["0", "1"])
def test_failure_rate_bounds_are_accepted(staff_client, mail_channel, threshold):
    response = post_rule(staff_client, mail_channel, kind="failure_rate", threshold=threshold)
    assert response.status_code == 302


def test_robot_rule_needs_no_address(staff_client, robot_channel):
    response = post_rule(staff_client, robot_channel, alert_address="")
    assert response.status_code == 302
    assert AlertRule.objects.get().alert_address == ""


def test_robot_rule_rejects_an_address(staff_client, robot_channel):
    response = post_rule(staff_client, robot_channel, alert_address="ops@example.com")
    assert "alert_address" in form_errors(response)


def test_sms_alert_channel_is_rejected(staff_client):
    sms = Channel.objects.create(name="sms", kind="sms", provider="console")
    response = post_rule(staff_client, sms, alert_address="")
    assert "alert_channel" in form_errors(response)
