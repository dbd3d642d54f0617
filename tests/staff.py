"""A logged-in superuser for tests of the Django admin console, by client or browser."""
import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture
def staff_user(db) -> User:
    return User.objects.create_superuser("staff", "staff@example.com", STAFF_PASSWORD)


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "admin"
STAFF_PASSWORD = "staff-password"


@pytest.fixture(scope="module")
def chromium() -> Browser:
    """Debian's headless chromium, driven by Playwright's sync API."""
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


def admin_page(chromium: Browser, live_server: Any, path: str) -> Page:
    """Log in to the admin on the live server as `staff` and open a page."""
    page = chromium.new_context().new_page()
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.fill("#id_username", "staff")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{path}")
    return page


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
