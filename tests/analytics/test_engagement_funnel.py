"""The funnel and rates of a hand-made example with human and machine events."""
import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from analytics.machine import client_ip, machine_reason
from analytics.metrics import render_metrics
from analytics.models import EngagementEvent, TrackedLink
from analytics.tokens import (
    TokenInvalid,
    click_token,
    decode_varints,
    encode_varint,
    open_token,
    read_click_token,
    read_open_token,
)
from channels_app.models import Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import PushRecord

SENT_AT = datetime(2026, 6, 10, 4, tzinfo=UTC)
LATER = SENT_AT + timedelta(hours=1)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0"
APPLE_PROXY = "Mozilla/5.0"
SCANNER = "Mozilla/5.0 (compatible; Mimecast URL Protect)"
HTML = '<p><a href="https://shop.example.com/a">A</a></p>'


@pytest.fixture
def records(smtp_channel, frozen_clock, post_push):
    """Four emails sent at SENT_AT to users u0 to u3, in one roll-up row."""
    for number in range(4):
        UserProfile.objects.get_or_create(user_id=f"u{number}")
        Contact.objects.create(user_id=f"u{number}", kind="email",
                               address=f"u{number}@example.com")
    frozen_clock.set(SENT_AT)
    post_push(notification_id="funnel", user_ids=[f"u{n}" for n in range(4)],
              channels=["email"], content={"title": "Hi", "body": "Hi", "html": HTML})
    frozen_clock.set(LATER)
    return {record.user_id: record for record in PushRecord.objects.all()}


def open_as(record: PushRecord, agent: str, method: str = "get") -> None:
    getattr(Client(), method)(f"/o/{open_token(record.pk)}", HTTP_USER_AGENT=agent)


def click_as(record: PushRecord, agent: str) -> None:
    link_id = TrackedLink.objects.get().pk
    Client().get(f"/c/{click_token(record.pk, link_id)}", HTTP_USER_AGENT=agent)


def test_funnel_with_machine_events(records, push_client, admin_client):
    for record in records.values():
        response = push_client.post("/api/v1/notifications/events",
                                    {"record_id": record.pk, "event": "delivered"},
                                    format="json")
        assert response.status_code == 200
    # u0: Apple's proxy prefetch, then the person opens and clicks.
    open_as(records["u0"], APPLE_PROXY)
    open_as(records["u0"], BROWSER)
    click_as(records["u0"], BROWSER)
    # u1: only the prefetch, twice.
    open_as(records["u1"], APPLE_PROXY)
    open_as(records["u1"], APPLE_PROXY)
    # u2: a security gateway follows the link and fetches the pixel.
    click_as(records["u2"], SCANNER)
    open_as(records["u2"], SCANNER)
    # u3: the person opens in the app, reported by the SDK.
    push_client.post("/api/v1/notifications/events",
                     {"record_id": records["u3"].pk, "event": "opened"}, format="json")

    totals = admin_client.get("/api/v1/notifications/stats").json()["totals"]

    assert totals["sent"] == 4
    assert totals["delivered"] == 4
    assert totals["opened"] == 2
    assert totals["clicked"] == 1
    assert totals["machine_opened"] == 3
    assert totals["machine_clicked"] == 1
    assert totals["open_rate"] == 0.5
    assert totals["click_rate"] == 0.25
    sdk_event = EngagementEvent.objects.get(record=records["u3"])
    assert (sdk_event.source, sdk_event.machine) == ("sdk", False)


def test_metrics_list_engagement(records):
    open_as(records["u0"], APPLE_PROXY)
    open_as(records["u1"], BROWSER)

    text = render_metrics()

    labels = 'channel_kind="email",provider="smtp"'
    assert f'sharestack_push_engagement_messages{{{labels},event="opened"}} 1' in text
    assert f'sharestack_push_engagement_messages{{{labels},event="machine_opened"}} 1' in text
    assert f'sharestack_push_engagement_messages{{{labels},event="complained"}} 0' in text


def test_tokens_round_trip(db):
    assert read_open_token(open_token(7)) == 7
    assert read_click_token(click_token(2**40, 3)) == (2**40, 3)


@pytest.mark.parametrize(
    "token",
    ["", "A", "!!!!", open_token(7)[:-2], click_token(7, 1)],
)
def test_open_token_rejects(db, token):
    with pytest.raises(TokenInvalid):
        read_open_token(token)


def other_spellings(token: str) -> list[str]:
    """Return spellings of a token that a lenient base64 decoder reads as the same bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    padded = token + "=" * (-len(token) % 4)
    return [
        token[:-1] + alphabet[last ^ 1],
        padded,
        token + "===",
        padded + "....",
        "...." + padded,
        token.replace("-", "+").replace("_", "/"),
    ]


def lenient_decode(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_token_spellings_rejected(db):
    # 7 bytes make 10 characters, so the last character carries 4 unused bits.
    record_id = next(n for n in range(1, 1000) if set(open_token(n)) & set("-_"))
    token = open_token(record_id)
    assert len(lenient_decode(token)) % 3 != 0

    for spelling in other_spellings(token):
        assert spelling != token
        assert lenient_decode(spelling) == lenient_decode(token), spelling
        with pytest.raises(TokenInvalid):
            read_open_token(spelling)


def test_token_from_other_key_rejected(db, settings):
    token = click_token(7, 1)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(TokenInvalid):
        read_click_token(token)


def test_varints_reject_truncation():
    with pytest.raises(TokenInvalid):
        decode_varints(encode_varint(300)[:1])


def test_varints_reject_oversized():
    with pytest.raises(TokenInvalid):
        decode_varints(b"\xff" * 10 + b"\x01")


def test_varint_rejects_negative():
    with pytest.raises(ValueError):
        encode_varint(-1)


@pytest.mark.parametrize(
    ("agent", "seconds", "reason"),
    [
        (BROWSER, 60, ""),
        (BROWSER, 4, "too_soon_after_send"),
        (APPLE_PROXY, 60, "apple_privacy_proxy"),
        ("  ", 60, "missing_user_agent"),
        ("Mozilla/5.0 (compatible; Proofpoint URL Defense)", 60, "link_scanner"),
        ("curl/8.5.0", 60, "link_scanner"),
    ],
)
def test_machine_reason_rules(settings, agent, seconds, reason):
    settings.PUSH_MACHINE_NETWORKS = []
    now = SENT_AT + timedelta(seconds=seconds)
    assert machine_reason("GET", "198.51.100.1", agent, SENT_AT, now) == reason


SCANNER_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Googlebot-Image/1.0",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "DuckDuckBot-Https/1.1; (+https://duckduckgo.com/duckduckbot)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/120.0.6099.71 Safari/537.36"),
    "Mozilla/5.0 (compatible; Barracuda Sentinel)",
    "Mozilla/5.0 (compatible; Mimecast URL Protect)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) BingPreview/1.0b",
    "Cisco IronPort link checker",
    "python-requests/2.32.3",
    "Python-urllib/3.11",
    "Python/3.11 aiohttp/3.9.5",
    "Go-http-client/2.0",
    "Wget/1.21.4",
    "libwww-perl/6.72",
    "Java/17.0.9",
    "okhttp/4.12.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "Mozilla/5.0 (compatible; bot)",
]
PERSON_AGENTS = [
    ("Mozilla/5.0 (Linux; Android 12; CUBOT KINGKONG 7) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/119.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Linux; Android 13; CUBOT_P80 Build/TP1A.220624.014; wv) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Linux; Android 11; Cubot Note 20 Pro) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/118.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0 Safari/537.36"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0 Mobile Safari/537.36"),
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0",
    ("Mozilla/5.0 (Linux; Android 13; Robotics Edition) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Safari/605.1.15 (San Francisco office)"),
    ("Mozilla/5.0 (Linux; Android 12; M2101K6G) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.44 JavaScriptCore"),
    # Desktop Outlook fetches images itself when a person opens the message.
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
]


@pytest.mark.parametrize("agent", SCANNER_AGENTS)
def test_scanner_agent_is_machine(settings, agent):
    settings.PUSH_MACHINE_NETWORKS = []
    now = SENT_AT + timedelta(minutes=5)
    assert machine_reason("GET", "198.51.100.1", agent, SENT_AT, now) == "link_scanner"


@pytest.mark.parametrize("agent", PERSON_AGENTS)
def test_person_agent_is_human(settings, agent):
    settings.PUSH_MACHINE_NETWORKS = []
    now = SENT_AT + timedelta(minutes=5)
    assert machine_reason("GET", "198.51.100.1", agent, SENT_AT, now) == ""


def test_machine_reason_bad_address(settings):
    settings.PUSH_MACHINE_NETWORKS = ["17.0.0.0/8"]
    assert machine_reason("GET", "not-an-ip", BROWSER, None, SENT_AT) == ""


def test_client_ip_ignores_header_from_untrusted(rf, settings):
    settings.PUSH_TRUSTED_PROXIES = ["10.0.0.1"]
    request = rf.get("/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert client_ip(request) == "203.0.113.5"


def test_client_ip_bad_forwarded_entry(rf, settings):
    settings.PUSH_TRUSTED_PROXIES = ["10.0.0.1"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="junk")
    assert client_ip(request) == "10.0.0.1"


def test_client_ip_only_proxies(rf, settings):
    settings.PUSH_TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.0.0.2")
    assert client_ip(request) == "10.0.0.1"
