"""The preference centre in a real browser: Playwright driving Debian's headless chromium.

The pages run on Django's live server and the API is called over HTTP, as a service
would. Chromium comes from scripts/install-system-packages.sh; nothing is downloaded
at run time. Each test saves screenshots under test-output/preference-pages/.
"""
import os
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from preferences.models import UserProfile
from sharestack_push.notifications.models import NotificationType

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-output" / "preference-pages"
PREFERENCES_API = "/api/v1/notifications/preferences"


@pytest.fixture(scope="module")
def chromium() -> Browser:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-packages.sh as root")
    # Playwright's sync API keeps an event loop open in this thread, and Django then
    # refuses ORM calls from it unless told that no coroutine shares the connection.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            yield browser
            browser.close()


@pytest.fixture
def api(live_server, preferences_client, settings) -> httpx.Client:
    """An HTTP client for the live server's API, holding a preferences-scope key."""
    settings.PUSH_PUBLIC_BASE_URL = live_server.url
    headers = {"Authorization": f"Api-Key {preferences_client.plain_key}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def types(transactional_db):
    NotificationType.objects.create(key="order", name="Orders", category="transactional")
    NotificationType.objects.create(key="promo", name="Offers", category="marketing")
    NotificationType.objects.create(
        key="security", name="Security alerts", category="transactional", is_critical=True
    )


def open_page(chromium: Browser, url: str, locale: str = "en-US") -> Page:
    context = chromium.new_context(locale=locale)
    page = context.new_page()
    page.goto(url)
    return page


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def preference_link(api: httpx.Client, user_id: str) -> str:
    response = api.post(f"{PREFERENCES_API}/link", json={"user_id": user_id})
    assert response.status_code == 200, response.text
    return response.json()["url"]


def box(page: Page, notification_type: str, channel: str):
    return page.locator(f'input[name="enabled/{channel}/{notification_type}"]')


def test_saved_settings_reach_api(chromium, api, types):
    page = open_page(chromium, preference_link(api, "alice"))
    screenshot(page, "centre-before-save")

    box(page, "promo", "email").uncheck()
    box(page, "order", "sms").uncheck()
    page.fill("#quiet_start", "22:30")
    page.fill("#quiet_end", "07:15")
    page.fill("#daily_limit", "6")
    page.select_option("#timezone", "Europe/Berlin")
    page.click("button[type=submit]")

    expect(page.get_by_role("status")).to_contain_text("Your preferences have been saved.")
    page.reload()
    screenshot(page, "centre-after-save")
    expect(box(page, "promo", "email")).not_to_be_checked()
    expect(box(page, "promo", "app")).to_be_checked()
    expect(page.locator("#quiet_start")).to_have_value("22:30")

    stored = api.get(PREFERENCES_API, params={"user_id": "alice"}).json()
    assert stored["quiet_hours"] == {"start": "22:30", "end": "07:15"}
    assert stored["frequency_limit"] == {"per_day": 6}
    assert stored["timezone"] == "Europe/Berlin"
    assert stored["locale"] == "en"
    assert stored["all_enabled"] is True
    disabled = {
        (row["notification_type"], row["channel"])
        for row in stored["preferences"]
        if not row["is_enabled"]
    }
    assert disabled == {("promo", "email"), ("order", "sms")}


def test_master_switch_reaches_api(chromium, api, types):
    page = open_page(chromium, preference_link(api, "alice"))

    page.uncheck("#all_enabled")
    page.click("button[type=submit]")
    expect(page.get_by_role("status")).to_be_visible()
    page.reload()

    expect(page.locator("#all_enabled")).not_to_be_checked()
    stored = api.get(PREFERENCES_API, params={"user_id": "alice"}).json()
    assert stored["all_enabled"] is False


def test_critical_type_stays_locked(chromium, api, types):
    page = open_page(chromium, preference_link(api, "alice"))
    locked = box(page, "security", "email")
    expect(locked).to_be_checked()
    expect(locked).to_be_disabled()
    expect(page.get_by_text("cannot be turned off")).to_be_visible()
    screenshot(page, "centre-critical-locked")

    # A user who edits the page can unlock and clear the box; the save ignores it.
    locked.evaluate("element => { element.disabled = false; element.checked = false; }")
    page.click("button[type=submit]")
    expect(page.get_by_role("status")).to_be_visible()

    expect(box(page, "security", "email")).to_be_checked()
    stored = api.get(PREFERENCES_API, params={"user_id": "alice"}).json()
    security_off = [
        row for row in stored["preferences"]
        if row["notification_type"] == "security" and not row["is_enabled"]
    ]
    assert security_off == []


def test_invalid_input_shows_error(chromium, api, types):
    page = open_page(chromium, preference_link(api, "alice"))

    page.fill("#quiet_start", "21:00")
    page.click("button[type=submit]")

    expect(page.get_by_role("alert")).to_contain_text("Give both a start and an end")
    screenshot(page, "centre-invalid-input")
    stored = api.get(PREFERENCES_API, params={"user_id": "alice"}).json()
    assert stored["quiet_hours"] is None


def test_tampered_link_page(chromium, api, types):
    url = preference_link(api, "alice")
    tampered = url[:-4] + quote("abcd")

    page = open_page(chromium, "about:blank")
    response = page.goto(tampered)

    assert response.status == 400
    expect(page.locator("h1")).to_have_text("This link is not valid")
    screenshot(page, "link-tampered")


def test_tampered_link_page_in_chinese(chromium, api, types):
    url = preference_link(api, "alice")

    page = open_page(chromium, "about:blank", locale="zh-CN")
    response = page.goto(url[:-4] + "abcd")

    assert response.status == 400
    expect(page.locator("h1")).to_have_text("此链接无效")


@pytest.mark.parametrize(
    "browser_locale, heading, save_label",
    [("zh-CN", "通知设置", "保存"), ("en-US", "Notification preferences", "Save")],
)
def test_page_language_follows_browser(chromium, api, types, browser_locale, heading, save_label):
    page = open_page(chromium, preference_link(api, "bob"), locale=browser_locale)

    expect(page.locator("h1")).to_have_text(heading)
    expect(page.locator("button[type=submit]")).to_have_text(save_label)
    screenshot(page, f"centre-{browser_locale}")


def test_profile_locale_beats_browser(chromium, api, types):
    UserProfile.objects.create(user_id="carol", locale="zh-hans")

    page = open_page(chromium, preference_link(api, "carol"), locale="en-US")

    expect(page.locator("h1")).to_have_text("通知设置")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
