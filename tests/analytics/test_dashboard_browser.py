"""The admin dashboard in headless chromium: charts drawn by plotly.js, and filtering."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from analytics.models import HourlyStat
from tests.staff import admin_page, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/analytics/dashboard/"


@pytest.fixture
def stats(transactional_db):
    """Three days of app and SMS roll-ups inside the dashboard's default 30 days."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    for day in range(3):
        HourlyStat.objects.create(
            hour=hour + timedelta(days=day), channel_kind="app", provider="fcm",
            notification_type="order", sent=100 + day, delivered=90, opened=40,
            clicked=10, failed=5, cost=Decimal("0.2"),
        )
        HourlyStat.objects.create(
            hour=hour + timedelta(days=day), channel_kind="sms", provider="twilio",
            notification_type="order", sent=20, delivered=18, opened=0, clicked=2,
            failed=2, segments=30, cost=Decimal("1.5"),
        )


def chart_data(page: Page, element_id: str) -> list[dict]:
    """Return the traces plotly.js drew in one chart element."""
    return page.evaluate(
        "(id) => document.getElementById(id).data.map("
        "(trace) => ({type: trace.type, name: trace.name, x: trace.x, y: trace.y}))",
        element_id,
    )


def test_dashboard_draws_charts(chromium, live_server, staff_user, stats):
    page = admin_page(chromium, live_server, URL)
    for chart in ("funnel-chart", "channel-chart", "series-chart"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()

    funnel = chart_data(page, "funnel-chart")
    assert [trace["type"] for trace in funnel] == ["funnel"]
    assert funnel[0]["y"] == ["sent", "delivered", "opened", "clicked"]
    assert funnel[0]["x"] == [363, 324, 120, 36]
    assert page.locator("#funnel-chart .funnellayer .point").count() == 4

    channels = chart_data(page, "channel-chart")
    assert [trace["name"] for trace in channels] == [
        "Delivery rate", "Open rate", "Click rate", "Failure rate",
    ]
    assert channels[0]["x"] == ["app/fcm", "sms/twilio"]
    assert channels[0]["y"] == [0.8911, 0.9]
    assert page.locator("#channel-chart .barlayer .trace").count() == 4
    assert page.locator("#channel-chart .barlayer .point").count() == 8

    series = chart_data(page, "series-chart")
    assert [trace["name"] for trace in series] == [
        "sent", "delivered", "opened", "clicked", "failed",
    ]
    assert len(series[0]["x"]) == 30
    assert sum(series[0]["y"]) == 363
    assert page.locator("#series-chart .scatterlayer .trace").count() == 5

    expect(page.locator("#funnel-table tbody tr").first).to_contain_text("363")
    screenshot(page, "dashboard")


def test_dashboard_filter_changes_numbers(chromium, live_server, staff_user, stats):
    page = admin_page(chromium, live_server, URL)
    page.select_option("#id_channel", "sms")
    page.click("#dashboard-filters input[type=submit]")
    page.wait_for_url("**channel=sms**")
    expect(page.locator("#funnel-chart .main-svg").first).to_be_visible()

    funnel = chart_data(page, "funnel-chart")
    assert funnel[0]["x"] == [60, 54, 0, 6]
    assert chart_data(page, "channel-chart")[0]["x"] == ["sms/twilio"]
    assert sum(chart_data(page, "series-chart")[0]["y"]) == 60
    expect(page.locator("#funnel-table tbody tr").first).to_contain_text("60")
    expect(page.locator("#channel-table tbody tr")).to_have_count(1)
    screenshot(page, "dashboard-sms")


def chart_axes(page: Page, element_id: str) -> dict:
    """Return the x and y axes that plotly.js laid out in one chart element."""
    return page.evaluate(
        "(id) => { const layout = document.getElementById(id)._fullLayout;"
        " return {x: {visible: layout.xaxis.visible, range: layout.xaxis.range,"
        " dtick: layout.xaxis.dtick, tickformat: layout.xaxis.tickformat},"
        " y: {range: layout.yaxis.range},"
        " notes: (layout.annotations || []).map((note) => note.text)}; }",
        element_id,
    )


def test_dashboard_axes_without_data(chromium, live_server, staff_user):
    page = admin_page(chromium, live_server, URL)
    page.goto(f"{live_server.url}{URL}?start=2026-12-01&end=2026-12-01&tz=UTC")
    expect(page.locator("#series-chart .main-svg").first).to_be_visible()

    channels = chart_axes(page, "channel-chart")
    assert channels["x"]["visible"] is False
    assert channels["notes"] == ["No messages in this range"]

    series = chart_axes(page, "series-chart")
    assert series["x"]["dtick"] == 86400000
    assert series["x"]["tickformat"] == "%Y-%m-%d"
    assert series["y"]["range"][0] >= 0
    tick_labels = page.locator("#series-chart .xtick text").all_text_contents()
    assert tick_labels
    assert all(label.startswith("2026-1") for label in tick_labels), tick_labels
    assert not any(":" in label for label in tick_labels), tick_labels
    screenshot(page, "dashboard-empty")
