"""The admin dashboard page through Django's test client: access, filters and numbers."""
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharestack_push.notifications.models import Campaign
from tests.analytics.conftest import add_stat

pytestmark = pytest.mark.django_db

URL = "/admin/analytics/dashboard/"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 23:00 UTC on 1 December is 07:00 on 2 December in Shanghai.
LATE_EVENING = datetime(2026, 12, 1, 23, tzinfo=ZoneInfo("UTC"))


@pytest.fixture
def stats(db):
    add_stat(LATE_EVENING)
    add_stat(LATE_EVENING + timedelta(days=1), channel_kind="sms", provider="twilio", sent=5,
         delivered=5, opened=0, clicked=0, failed=0, cost=Decimal("0.35"))
    add_stat(LATE_EVENING, notification_type="news", sent=3, delivered=3, opened=3, clicked=3)


FILTERS = {"start": "2026-12-01", "end": "2026-12-05", "tz": "Asia/Shanghai"}


def funnel(response) -> dict[str, int]:
    return {stage["stage"]: stage["count"] for stage in response.context["funnel"]}


def test_dashboard_needs_login(db):
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_dashboard_rejects_non_staff(db):
    user = User.objects.create_user("viewer", password="viewer-password")
    client = Client()
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_index_links_dashboard(staff_client):
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert f'href="{URL}"'.encode() in response.content


def test_dashboard_funnel(stats, staff_client):
    response = staff_client.get(URL, FILTERS)
    assert response.status_code == 200
    assert funnel(response) == {"sent": 18, "delivered": 16, "opened": 7, "clicked": 5}


def test_dashboard_channel_filter(stats, staff_client):
    response = staff_client.get(URL, FILTERS | {"channel": "sms"})
    assert funnel(response) == {"sent": 5, "delivered": 5, "opened": 0, "clicked": 0}


def test_dashboard_type_filter(stats, staff_client):
    response = staff_client.get(URL, FILTERS | {"type": "news"})
    assert funnel(response)["sent"] == 3


def test_dashboard_campaign_filter(stats, staff_client):
    campaign = Campaign.objects.create(name="Winter sale", notification_type="promo")
    add_stat(LATE_EVENING, notification_type="promo", campaign_id=campaign.pk, sent=4,
             delivered=4, opened=1, clicked=0)
    response = staff_client.get(URL, FILTERS | {"campaign": str(campaign.pk)})
    assert funnel(response) == {"sent": 4, "delivered": 4, "opened": 1, "clicked": 0}


def test_dashboard_link_with_campaign_only(staff_client):
    yesterday = (timezone.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    campaign = Campaign.objects.create(name="Winter sale", notification_type="promo")
    add_stat(yesterday, notification_type="promo", campaign_id=campaign.pk, sent=4)
    add_stat(yesterday, sent=9)
    response = staff_client.get(URL, {"campaign": str(campaign.pk)})
    assert response.context["form"].errors == {}
    assert funnel(response)["sent"] == 4


def test_dashboard_outside_campaigns(stats, staff_client):
    campaign = Campaign.objects.create(name="Winter sale", notification_type="promo")
    add_stat(LATE_EVENING, notification_type="promo", campaign_id=campaign.pk, sent=4)
    response = staff_client.get(URL, FILTERS | {"campaign": "0"})
    assert funnel(response)["sent"] == 18


def test_dashboard_rejects_unknown_campaign(stats, staff_client):
    response = staff_client.get(URL, FILTERS | {"campaign": "999"})
    assert "campaign" in response.context["form"].errors


def test_dashboard_counts_machine_opens(staff_client):
    add_stat(LATE_EVENING, machine_opened=6, machine_clicked=2, complained=1, unsubscribed=3)
    response = staff_client.get(URL, FILTERS)
    other = response.content.decode().split('id="funnel-other"')[1].split("</p>")[0]
    assert " ".join(other.split()) == (
        ">Not in the funnel: 6 opened and 2 clicked by software (mail privacy proxies, "
        "link scanners), 1 failed, 3 unsubscribed, 1 spam complaints."
    )


def test_dashboard_type_choices(stats, staff_client):
    choices = staff_client.get(URL).context["form"].fields["type"].choices
    assert [value for value, _ in choices] == ["", "news", "order"]


def test_dashboard_series_in_time_zone(stats, staff_client):
    series = staff_client.get(URL, FILTERS).context["series"]
    assert [row["day"] for row in series] == [
        "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05",
    ]
    assert [row["sent"] for row in series] == [0, 13, 5, 0, 0]


def test_dashboard_series_in_utc(stats, staff_client):
    series = staff_client.get(URL, FILTERS | {"tz": "UTC"}).context["series"]
    assert [row["sent"] for row in series] == [13, 5, 0, 0, 0]


def test_dashboard_range_excludes_days(stats, staff_client):
    response = staff_client.get(URL, FILTERS | {"start": "2026-12-03"})
    assert funnel(response)["sent"] == 5


def test_dashboard_channel_table(stats, staff_client):
    response = staff_client.get(URL, FILTERS)
    rows = {(row["channel"], row["provider"]): row for row in response.context["channels"]}
    assert rows[("sms", "twilio")]["cost_per_message"] == 0.07
    assert b"<td>twilio</td>" in response.content


def test_dashboard_embeds_chart_data(stats, staff_client):
    content = staff_client.get(URL, FILTERS).content
    assert b'id="funnel-data"' in content
    assert b'id="series-data"' in content
    assert b"/static/vendor/plotly.min.js" in content


@pytest.mark.parametrize(
    "change, field",
    [
        ({"tz": "Moon/Base"}, "tz"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-11-30"}, "end"),
        ({"start": "2024-01-01"}, "end"),
        ({"channel": "fax"}, "channel"),
    ],
)
def test_dashboard_bad_filter_shows_error(stats, staff_client, change, field):
    response = staff_client.get(URL, FILTERS | change)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert b"The filters are invalid" in response.content


def test_dashboard_default_range(staff_client, settings):
    settings.PUSH_DEFAULT_TIMEZONE = "Asia/Shanghai"
    response = staff_client.get(URL)
    series = response.context["series"]
    assert len(series) == 30
    assert series[-1]["day"] == timezone.now().astimezone(SHANGHAI).date().isoformat()
    assert response.context["zone"] == "Asia/Shanghai"


@pytest.mark.parametrize("start, end, tz", [
    ("9999-12-31", "9999-12-31", "UTC"),
    ("0001-01-01", "0001-01-02", "Asia/Shanghai"),
    ("0001-01-01", "0001-01-02", "America/New_York"),
    ("1969-12-31", "1970-01-01", "UTC"),
    ("8999-12-31", "9000-01-01", "UTC"),
])
def test_dashboard_rejects_extreme_days(db, staff_client, start, end, tz):
    response = staff_client.get(URL, {"start": start, "end": end, "tz": tz})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors
    assert set(errors) <= {"start", "end"}
    assert "Choose a day from 1970-01-01 to 8999-12-31." in response.content.decode()


def test_dashboard_accepts_range_limits(db, staff_client):
    response = staff_client.get(URL, {"start": "8999-12-31", "end": "8999-12-31", "tz": "UTC"})
    assert response.status_code == 200
    assert not response.context["form"].errors
