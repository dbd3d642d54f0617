"""The preference-centre footer on emails and marketing SMS."""
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from preferences.footer import add_preference_footer
from preferences.links import read_token

URL_PATTERN = re.compile(r"https?://\S+/preferences/\?token=[^\s\"<]+")


def user_of(text: str) -> str:
    url = URL_PATTERN.search(text).group(0).replace("&amp;", "&")
    return read_token(parse_qs(urlsplit(url).query)["token"][0])


@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.PUSH_PUBLIC_BASE_URL = "https://push.example.com"


def test_email_text_gets_footer(db):
    body, html = add_preference_footer("email", False, "alice", "en", "Hello", "")

    text, footer = body.split("\n\n-- \n")
    assert text == "Hello"
    assert footer.startswith("Manage your notification preferences: https://push.example.com/")
    assert user_of(footer) == "alice"
    assert html == ""


def test_email_footer_in_chinese(db):
    body, _ = add_preference_footer("email", False, "alice", "zh-hans", "您好", "")

    assert "管理通知设置：https://push.example.com/preferences/" in body


def test_email_html_footer_goes_inside_body(db):
    _, html = add_preference_footer(
        "email", False, "alice", "en", "Hi", "<html><body><p>Hi</p></BODY></html>"
    )

    assert html.startswith("<html><body><p>Hi</p><p ")
    assert html.endswith("</a></p></BODY></html>")
    assert ">Manage your notification preferences</a>" in html
    assert user_of(html) == "alice"


def test_email_html_fragment_gets_footer_at_end(db):
    _, html = add_preference_footer("email", False, "alice", "en", "Hi", "<p>Hi</p>")

    assert html.startswith("<p>Hi</p><p ")
    assert user_of(html) == "alice"


def test_empty_email_body_is_footer_alone(db):
    body, _ = add_preference_footer("email", False, "alice", "en", "", "")

    assert body.startswith("Manage your notification preferences: ")


def test_marketing_sms_gets_short_line(db):
    body, _ = add_preference_footer("sms", True, "alice", "en", "Sale today", "")

    assert body.startswith("Sale today Manage notifications: https://push.example.com/")
    assert user_of(body) == "alice"


@pytest.mark.parametrize(
    "kind, marketing, user_id",
    [("sms", False, "alice"), ("app", True, "alice"), ("wechat", True, "alice"),
     ("email", True, ""), ("sms", True, "")],
)
def test_other_messages_are_unchanged(db, kind, marketing, user_id):
    assert add_preference_footer(kind, marketing, user_id, "en", "Hi", "<p>Hi</p>") == (
        "Hi",
        "<p>Hi</p>",
    )
