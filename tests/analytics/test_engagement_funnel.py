"""The funnel and rates of a hand-made example with human and machine events."""
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
