"""The /preferences/ page through Django's test client: CSRF, links, saves and errors."""
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from gettext import GNUTranslations
from pathlib import Path

import pytest
from django.test import Client

from preferences.links import create_link
from preferences.models import UserProfile, UserPushPreference
from sharestack_push.notifications.models import NotificationType

PAGE = "/preferences/"
LOCALE_DIR = Path(__file__).resolve().parents[2] / "preferences" / "locale"


@pytest.fixture
def types(db):
    NotificationType.objects.create(key="order", name="Orders", category="transactional")
    NotificationType.objects.create(key="promo", name="Offers", category="marketing")
    NotificationType.objects.create(
        key="security", name="Security alerts", category="transactional", is_critical=True
    )


@pytest.fixture
def browser():
    """A client that enforces CSRF like a browser session does."""
    return Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")


def page_url(user_id: str = "alice", **kwargs) -> str:
    link = create_link(user_id, **kwargs)
    return f"{PAGE}?token={link.token}"


def csrf_token(response) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())
    assert match, "the form has no CSRF token"
    return match.group(1)


def form_data(response, **fields) -> dict:
    data = {
        "csrfmiddlewaretoken": csrf_token(response),
        "all_enabled": "on",
        "timezone": "Asia/Shanghai",
        "locale": "en",
        "quiet_start": "",
        "quiet_end": "",
        "daily_limit": "",
    }
    for name in re.findall(r'name="(enabled/[^"]+)"[^>]* checked(?![^>]*disabled)',
                           response.content.decode()):
        data[name] = "on"
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def test_page_lists_types_by_channels(browser, types):
    response = browser.get(page_url())

    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Orders", "Offers", "Security alerts"):
        assert label in html
    assert 'name="enabled/email/promo"' in html
    assert 'name="enabled/wechat/order"' in html


def test_page_lists_unregistered_types_with_rows(browser, types):
    UserPushPreference.objects.create(
        user_id="alice", notification_type="legacy", channel="sms", is_enabled=False
    )

    html = browser.get(page_url()).content.decode()

    assert 'name="enabled/sms/legacy"' in html
    assert re.search(r'name="enabled/sms/legacy"[^>]*>', html).group(0).count("checked") == 0


def test_post_without_csrf_token_is_403(browser, types):
    url = page_url()
    browser.get(url)

    response = browser.post(url, {"all_enabled": "on", "timezone": "UTC", "locale": "en"})

    assert response.status_code == 403
    assert not UserProfile.objects.filter(user_id="alice").exists()


def test_save_writes_preferences(browser, types):
    url = page_url()
    form = browser.get(url)
    data = form_data(form, quiet_start="22:00", quiet_end="07:30", daily_limit="4",
                     timezone="Europe/Berlin")
    del data["enabled/email/promo"]

    response = browser.post(url, data)

    assert response.status_code == 303
    assert response["Location"].endswith("&saved=1")
    profile = UserProfile.objects.get(user_id="alice")
    assert profile.timezone == "Europe/Berlin"
    assert profile.daily_limit == 4
    assert profile.quiet_hours_start.strftime("%H:%M") == "22:00"
    assert profile.quiet_hours_end.strftime("%H:%M") == "07:30"
    rows = list(UserPushPreference.objects.filter(user_id="alice").values_list(
        "notification_type", "channel", "is_enabled"))
    assert rows == [("promo", "email", False)]


def test_saved_page_shows_confirmation(browser, types):
    url = page_url()
    response = browser.post(url, form_data(browser.get(url)))

    confirmation = browser.get(response["Location"])

    assert "Your preferences have been saved." in confirmation.content.decode()


def test_save_keeps_rows_it_does_not_change(browser, types):
    UserPushPreference.objects.create(
        user_id="alice", notification_type="", channel="sms", is_enabled=False
    )
    UserPushPreference.objects.create(
        user_id="alice", notification_type="order", channel="app", is_enabled=True,
        frequency_limit=2,
    )
    url = page_url()

    browser.post(url, form_data(browser.get(url)))

    rows = set(UserPushPreference.objects.filter(user_id="alice").values_list(
        "notification_type", "channel", "is_enabled", "frequency_limit"))
    # The critical type gets its own row, because the row for every type turns it off.
    assert rows == {
        ("", "sms", False, None),
        ("order", "app", True, 2),
        ("security", "sms", True, None),
    }


def test_checking_box_overrides_row_for_every_type(browser, types):
    UserPushPreference.objects.create(
        user_id="alice", notification_type="", channel="sms", is_enabled=False
    )
    url = page_url()

    browser.post(url, form_data(browser.get(url), **{"enabled/sms/order": "on"}))

    assert UserPushPreference.objects.get(
        user_id="alice", notification_type="order", channel="sms"
    ).is_enabled is True


def test_checking_box_updates_own_row(browser, types):
    UserPushPreference.objects.create(
        user_id="alice", notification_type="promo", channel="email", is_enabled=False,
        frequency_limit=3,
    )
    url = page_url()

    browser.post(url, form_data(browser.get(url), **{"enabled/email/promo": "on"}))

    row = UserPushPreference.objects.get(user_id="alice")
    assert row.is_enabled is True
    assert row.frequency_limit == 3


def test_critical_type_is_shown_locked(browser, types):
    html = browser.get(page_url()).content.decode()

    box = re.search(r'<input[^>]*name="enabled/email/security"[^>]*>', html).group(0)
    assert "checked" in box
    assert "disabled" in box
    assert "cannot be turned off" in html


def test_crafted_post_cannot_disable_critical_type(browser, types):
    url = page_url()
    data = form_data(browser.get(url))
    for channel in ("email", "app", "sms", "wechat"):
        data.pop(f"enabled/{channel}/security", None)

    response = browser.post(url, data)

    assert response.status_code == 303
    assert not UserPushPreference.objects.filter(
        user_id="alice", notification_type="security", is_enabled=False
    ).exists()


def test_save_reenables_critical_type_disabled_elsewhere(browser, types):
    UserPushPreference.objects.create(
        user_id="alice", notification_type="", channel="email", is_enabled=False
    )
    url = page_url()

    browser.post(url, form_data(browser.get(url)))

    assert UserPushPreference.objects.get(
        user_id="alice", notification_type="security", channel="email"
    ).is_enabled is True


@pytest.mark.parametrize(
    "fields, label",
    [
        ({"timezone": "Mars/Base"}, "Time zone"),
        ({"locale": "fr"}, "Language"),
        ({"daily_limit": "many"}, "Daily limit"),
        ({"daily_limit": "20000"}, "Daily limit"),
        ({"quiet_start": "22:00"}, "Quiet hours"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "Quiet hours"),
    ],
)
def test_invalid_save_shows_error_and_changes_nothing(browser, types, fields, label):
    UserProfile.objects.create(user_id="alice", locale="en", daily_limit=9)
    url = page_url()

    response = browser.post(url, form_data(browser.get(url), **fields))

    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was saved." in html
    assert f"<strong>{label}</strong>" in html
    assert UserProfile.objects.get(user_id="alice").daily_limit == 9
    assert not UserPushPreference.objects.filter(user_id="alice").exists()


def test_invalid_save_keeps_posted_values(browser, types):
    UserProfile.objects.create(user_id="alice", locale="en")
    url = page_url()

    response = browser.post(url, form_data(browser.get(url), daily_limit="many"))

    assert 'value="many"' in response.content.decode()


def test_half_quiet_hours_gets_one_error(browser, types):
    UserProfile.objects.create(user_id="alice", locale="en")
    url = page_url()

    response = browser.post(url, form_data(browser.get(url), quiet_end="07:00"))

    assert response.content.decode().count("<strong>Quiet hours</strong>") == 1


def test_tampered_link_gets_400_page(browser, types):
    token = create_link("alice").token

    response = browser.get(f"{PAGE}?token={token[:-3]}xyz")

    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()


def test_missing_token_gets_400_page(browser):
    response = browser.get(PAGE)

    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()


def test_expired_link_gets_403_page(browser, types):
    past = datetime.now(UTC) - timedelta(days=8)
    url = page_url(now=past)

    response = browser.get(url)

    assert response.status_code == 403
    assert "This link has expired" in response.content.decode()


def test_expired_link_cannot_save(browser, types):
    url = page_url()
    form = browser.get(url)
    expired = page_url(now=datetime.now(UTC) - timedelta(days=8))

    response = browser.post(expired, form_data(form, daily_limit="1"))

    assert response.status_code == 403
    assert not UserProfile.objects.filter(user_id="alice").exists()


def test_expired_page_follows_browser_language(types):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    url = page_url(now=datetime.now(UTC) - timedelta(days=8))

    response = client.get(url)

    assert "此链接已过期" in response.content.decode()
    assert response["Content-Language"] == "zh-hans"


def test_profile_locale_wins_over_browser(types):
    UserProfile.objects.create(user_id="alice", locale="zh-hans")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")

    response = client.get(page_url())

    html = response.content.decode()
    assert "通知设置" in html
    assert '<html lang="zh-hans">' in html


def test_browser_language_without_profile(types):
    client = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    response = client.get(page_url())

    assert "Notification preferences" in response.content.decode()
    assert 'option value="en" selected' in response.content.decode()


def test_put_method_is_405(db):
    # CSRF rejects a PUT first under enforce_csrf_checks, so this client skips it.
    assert Client().put(page_url()).status_code == 405


def test_page_is_not_cached(browser, types):
    response = browser.get(page_url())

    assert "no-cache" in response["Cache-Control"]


def test_stored_zone_outside_list_is_offered(browser, types):
    UserProfile.objects.create(user_id="alice", locale="en", timezone="Africa/Nairobi")

    html = browser.get(page_url()).content.decode()

    assert '<option value="Africa/Nairobi" selected>' in html


def test_page_without_types_says_so(browser, db):
    html = browser.get(page_url()).content.decode()

    assert "No notification types are defined yet." in html


def test_committed_catalogue_matches_po_file(tmp_path):
    """The committed .mo is what msgfmt builds from the committed .po."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("msgfmt missing: run scripts/install-system-packages.sh")
    messages = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES"
    built = tmp_path / "django.mo"
    subprocess.run([msgfmt, "--check", "-o", built, messages / "django.po"], check=True)

    with open(built, "rb") as fresh, open(messages / "django.mo", "rb") as committed:
        assert GNUTranslations(fresh)._catalog == GNUTranslations(committed)._catalog


def test_type_users_cannot_disable_is_locked_and_saves(browser, types):
    NotificationType.objects.create(key="receipt", name="Receipts", user_can_disable=False)
    url = page_url()
    html = browser.get(url).content.decode()
    box = re.search(r'<input[^>]*name="enabled/email/receipt"[^>]*>', html).group(0)
    assert "disabled" in box

    data = form_data(browser.get(url))
    for channel in ("email", "app", "sms", "wechat"):
        data.pop(f"enabled/{channel}/receipt", None)
    response = browser.post(url, data)

    assert response.status_code == 303
    assert not UserPushPreference.objects.filter(
        user_id="alice", notification_type="receipt", is_enabled=False
    ).exists()
