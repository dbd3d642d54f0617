"""Email open pixel and click redirects, end to end through a real aiosmtpd server.

The pixel and links are parsed from the MIME message the server received and fetched
through Django's test client, as a mail client would.
"""
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.test import Client

from analytics.engagement import MAX_EVENT_ROWS
from analytics.models import EngagementEvent, HourlyStat, TrackedLink
from analytics.rewrite import LinkTracker, add_pixel, pixel_url
from analytics.tokens import click_token, open_token
from channels_app.models import Contact
from preferences.models import UserProfile
from sharestack_push.notifications.models import PushRecord, PushTask

SENT_AT = datetime(2026, 6, 10, 4, tzinfo=UTC)
LATER = SENT_AT + timedelta(minutes=30)
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
SHOP_URL = "https://shop.example.com/orders/7?ref=mail&lang=en"
HTML = (
    "<html><body><p>Your order shipped.</p>"
    f'<p><a href="{SHOP_URL.replace("&", "&amp;")}">Track it</a> or '
    "<a href='https://help.example.com/faq'>read the FAQ</a>, "
    '<a href="mailto:help@example.com">mail us</a>.</p></body></html>'
)


class LinkParser(HTMLParser):
    """Collect the hrefs of <a> and the srcs of <img> in an HTML part."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        if tag == "img" and values.get("src"):
            self.images.append(values["src"])


def parse_html(mail) -> LinkParser:
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    parser = LinkParser()
    parser.feed(html)
    return parser


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def channel(smtp_channel):
    return smtp_channel


@pytest.fixture
def send_email(channel, smtp_server, frozen_clock, post_push):
    UserProfile.objects.get_or_create(user_id="li")
    Contact.objects.create(user_id="li", kind="email", address="li@example.com")

    def send(**body):
        frozen_clock.set(SENT_AT)
        response = post_push(
            notification_id="mail-1", user_id="li", channels=["email"],
            content={"title": "Shipped", "body": "Your order shipped.", "html": HTML},
            **body,
        )
        assert response.status_code == 202
        [mail] = smtp_server.mails
        frozen_clock.set(LATER)
        return PushRecord.objects.get(), parse_html(mail)

    return send


def rollup() -> HourlyStat:
    return HourlyStat.objects.get()


def test_html_links_go_through_redirect(send_email, settings):
    record, parsed = send_email()
    redirect_prefix = f"{settings.PUSH_PUBLIC_BASE_URL}/c/"
    tracked = [href for href in parsed.hrefs if href.startswith(redirect_prefix)]
    assert len(tracked) == 2
    assert "mailto:help@example.com" in parsed.hrefs
    # The preference footer links straight to our own page.
    assert any(href.startswith(f"{settings.PUSH_PUBLIC_BASE_URL}/preferences/")
               for href in parsed.hrefs)


def test_pixel_marks_opened_once(send_email):
    record, parsed = send_email()
    [pixel] = parsed.images
    client = Client()

    first = client.get(path_of(pixel), HTTP_USER_AGENT=BROWSER)
    second = client.get(path_of(pixel), HTTP_USER_AGENT=BROWSER)

    assert first.status_code == 200
    assert first["Content-Type"] == "image/gif"
    assert first.content.startswith(b"GIF89a")
    assert "no-store" in first["Cache-Control"]
    assert second.status_code == 200
    record.refresh_from_db()
    assert record.status == "opened"
    assert record.opened_at == LATER
    assert rollup().opened == 1
    assert EngagementEvent.objects.filter(record=record, kind="open", machine=False).count() == 2


def test_click_redirects_and_marks_clicked(send_email):
    record, parsed = send_email()
    shop_link = parsed.hrefs[0]
    client = Client()

    first = client.get(path_of(shop_link), HTTP_USER_AGENT=BROWSER)
    second = client.get(path_of(shop_link), HTTP_USER_AGENT=BROWSER)

    assert first.status_code == 302
    assert first["Location"] == SHOP_URL
    assert second["Location"] == SHOP_URL
    record.refresh_from_db()
    assert record.status == "clicked"
    assert record.clicked_at == LATER
    assert rollup().clicked == 1
    # A click implies the open, counted once too.
    assert rollup().opened == 1
    event = EngagementEvent.objects.filter(record=record, kind="click").first()
    assert event.url == SHOP_URL
    assert event.client_ip == "127.0.0.1"
    assert event.user_agent == BROWSER


@pytest.mark.parametrize(
    ("method", "agent", "reason"),
    [
        ("get", "Mozilla/5.0", "apple_privacy_proxy"),
        ("get", "Mozilla/5.0 (compatible; Barracuda Sentinel)", "link_scanner"),
        ("get", "python-requests/2.32", "link_scanner"),
        ("get", "", "missing_user_agent"),
        ("head", BROWSER, "head_request"),
    ],
)
def test_machine_open_is_kept_out_of_opened(send_email, method, agent, reason):
    record, parsed = send_email()
    [pixel] = parsed.images

    response = getattr(Client(), method)(path_of(pixel), HTTP_USER_AGENT=agent)
    getattr(Client(), method)(path_of(pixel), HTTP_USER_AGENT=agent)

    assert response.status_code == 200
    record.refresh_from_db()
    assert record.opened_at is None
    assert record.status == "sent"
    stat = rollup()
    assert stat.opened == 0
    assert stat.machine_opened == 1
    events = EngagementEvent.objects.filter(record=record, kind="open")
    assert [event.machine_reason for event in events] == [reason, reason]


def test_click_right_after_send_is_machine(send_email, frozen_clock):
    record, parsed = send_email()
    frozen_clock.set(SENT_AT + timedelta(seconds=2))

    response = Client().get(path_of(parsed.hrefs[0]), HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 302
    record.refresh_from_db()
    assert record.clicked_at is None
    assert rollup().clicked == 0
    assert rollup().machine_clicked == 1
    event = EngagementEvent.objects.get(record=record)
    assert event.machine_reason == "too_soon_after_send"


def test_human_open_after_machine_open_counts(send_email):
    record, parsed = send_email()
    [pixel] = parsed.images
    client = Client()

    client.get(path_of(pixel), HTTP_USER_AGENT="Mozilla/5.0")
    client.get(path_of(pixel), HTTP_USER_AGENT=BROWSER)

    record.refresh_from_db()
    assert record.opened_at == LATER
    assert rollup().opened == 1
    assert rollup().machine_opened == 1


def event_rows(record: PushRecord, kind: str):
    return EngagementEvent.objects.filter(record=record, kind=kind)


def test_pixel_flood_stores_capped_rows(send_email):
    record, parsed = send_email()
    path = path_of(parsed.images[0])
    client = Client()

    client.head(path, HTTP_USER_AGENT=BROWSER)
    for _ in range(300):
        client.get(path, HTTP_USER_AGENT=BROWSER)

    rows = event_rows(record, "open")
    assert rows.count() == MAX_EVENT_ROWS
    assert rows.filter(machine=True).count() == 1
    assert rows.order_by("pk").first().machine_reason == "head_request"
    assert sum(rows.values_list("later_hits", flat=True)) == 301 - MAX_EVENT_ROWS
    assert rows.order_by("pk").last().later_hits == 301 - MAX_EVENT_ROWS
    record.refresh_from_db()
    assert record.opened_at == LATER
    assert rollup().opened == 1
    assert rollup().machine_opened == 1


def test_first_human_open_kept_after_flood(send_email):
    record, parsed = send_email()
    path = path_of(parsed.images[0])
    client = Client()

    for _ in range(300):
        client.get(path, HTTP_USER_AGENT="python-requests/2.32")
    client.get(path, HTTP_USER_AGENT=BROWSER)
    client.get(path, HTTP_USER_AGENT=BROWSER)

    rows = event_rows(record, "open")
    assert rows.count() == MAX_EVENT_ROWS + 1
    human = rows.get(machine=False)
    assert human.user_agent == BROWSER
    assert human.later_hits == 1
    assert sum(rows.values_list("later_hits", flat=True)) == 302 - MAX_EVENT_ROWS - 1
    record.refresh_from_db()
    assert record.opened_at == LATER
    assert rollup().opened == 1
    assert rollup().machine_opened == 1


def test_first_machine_click_kept_after_flood(send_email):
    record, parsed = send_email()
    path = path_of(parsed.hrefs[0])
    client = Client()

    for _ in range(300):
        response = client.get(path, HTTP_USER_AGENT=BROWSER)
        assert response["Location"] == SHOP_URL
    client.head(path, HTTP_USER_AGENT=BROWSER)

    rows = event_rows(record, "click")
    assert rows.count() == MAX_EVENT_ROWS + 1
    assert rows.get(machine=True).machine_reason == "head_request"
    assert sum(rows.values_list("later_hits", flat=True)) == 300 - MAX_EVENT_ROWS
    assert rollup().clicked == 1
    assert rollup().machine_clicked == 1


# (anchor HTML, the URL its href must redirect to)
ODD_ANCHORS = [
    ('<a data-href="https://a.example/x" href="https://b.example/y">b</a>',
     "https://b.example/y"),
    ("<a href=https://c.example/unquoted?x=1>c</a>", "https://c.example/unquoted?x=1"),
    ("<a class='x' href='https://d.example/single'>d</a>", "https://d.example/single"),
    ('<a title="go > there" href="https://e.example/gt">e</a>', "https://e.example/gt"),
    ('<A HREF="HTTPS://F.example/upper">f</A>', "HTTPS://F.example/upper"),
    ('<a href="https://g.example/a?x=1&amp;y=2">g</a>', "https://g.example/a?x=1&y=2"),
    ('<a\nhref = "https://h.example/spaced" >h</a>', "https://h.example/spaced"),
]


@pytest.mark.parametrize(("anchor", "url"), ODD_ANCHORS)
def test_html_rewrite_tracks_real_href(send_email, anchor, url):
    record, _ = send_email()
    html = f"<p>Before</p>{anchor}<p>After</p>"

    rewritten = LinkTracker().rewrite_html(record, html)
    parser = LinkParser()
    parser.feed(rewritten)
    [href] = parser.hrefs

    assert rewritten.startswith("<p>Before</p>")
    assert "<p>After</p>" in rewritten
    assert url not in href
    response = Client().get(path_of(href), HTTP_USER_AGENT=BROWSER)
    assert response["Location"] == url


def test_html_rewrite_leaves_data_href(send_email):
    record, _ = send_email()
    html = '<a data-href="https://a.example/x" href="https://b.example/y">b</a>'

    rewritten = LinkTracker().rewrite_html(record, html)

    assert rewritten.startswith('<a data-href="https://a.example/x" href="')


def test_html_rewrite_skips_comments_and_scripts(send_email):
    record, _ = send_email()
    html = (
        '<!-- <a href="https://old.example/">old</a> -->'
        '<script>var link = \'<a href="https://js.example/">\';</script>'
        "<a name=top>top</a><a href>empty</a>"
    )

    rewritten = LinkTracker().rewrite_html(record, html)

    assert rewritten == add_pixel(html, pixel_url(record))


def test_machine_events_stay_out_of_rates(send_email, admin_client):
    record, parsed = send_email()
    Client().get(path_of(parsed.images[0]), HTTP_USER_AGENT="Mozilla/5.0")
    Client().head(path_of(parsed.hrefs[0]), HTTP_USER_AGENT=BROWSER)
    PushRecord.objects.filter(pk=record.pk).update(status="delivered", delivered_at=LATER)
    HourlyStat.objects.update(delivered=1)

    totals = admin_client.get("/api/v1/notifications/stats").json()["totals"]

    assert totals["open_rate"] == 0.0
    assert totals["click_rate"] == 0.0
    assert totals["machine_opened"] == 1
    assert totals["machine_clicked"] == 1


@pytest.mark.parametrize("where", ["task", "channel"])
def test_tracking_off_leaves_links(send_email, channel, where):
    if where == "channel":
        channel.config = {**channel.config, "tracking": False}
        channel.save()
        record, parsed = send_email()
    else:
        record, parsed = send_email(options={"email": {"tracking": False}})
    assert parsed.hrefs[0] == SHOP_URL
    assert parsed.images == []


@pytest.mark.parametrize(
    "path",
    [
        "/o/AAAAAAAAAAAAAA",
        "/o/not*base64",
        "/c/AAAAAAAAAAAAAAAAAAAA",
        "/c/",
    ],
)
def test_invalid_tokens_are_not_found(db, path):
    response = Client().get(path, HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 404
    assert "Location" not in response


def test_token_of_deleted_record_not_found(db):
    response = Client().get(f"/o/{open_token(10**9)}", HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 404


def test_click_token_spellings_not_found(send_email):
    _, parsed = send_email()
    path = path_of(parsed.hrefs[0])
    client = Client()

    for spelling in [path + "==", path + "....", path + "=.=."]:
        response = client.get(spelling, HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 404, spelling
    assert client.get(path, HTTP_USER_AGENT=BROWSER).status_code == 302


def test_tampered_click_token_is_not_found(send_email):
    record, parsed = send_email()
    token = path_of(parsed.hrefs[0]).removeprefix("/c/")
    last = "A" if token[-1] != "A" else "B"

    response = Client().get(f"/c/{token[:-1]}{last}", HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 404
    record.refresh_from_db()
    assert record.clicked_at is None


def test_open_token_is_no_click_token(send_email):
    record, parsed = send_email()
    pixel_token = path_of(parsed.images[0]).removeprefix("/o/")

    response = Client().get(f"/c/{pixel_token}", HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 404


def test_click_token_of_other_task_link(send_email):
    record, parsed = send_email()
    other_task = PushTask.objects.create(notification_type="order", content={})
    foreign = TrackedLink.objects.create(task=other_task, url_hash="x" * 64,
                                         url="https://evil.example.net/")

    response = Client().get(f"/c/{click_token(record.pk, foreign.pk)}",
                            HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 404


def test_trusted_proxy_forwarded_address(send_email, settings):
    settings.PUSH_TRUSTED_PROXIES = ["10.0.0.0/8"]
    record, parsed = send_email()

    Client().get(path_of(parsed.images[0]), HTTP_USER_AGENT=BROWSER,
                 REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="198.51.100.7, 10.9.9.9")
    Client().get(path_of(parsed.images[0]), HTTP_USER_AGENT=BROWSER,
                 REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.8")

    addresses = list(
        EngagementEvent.objects.order_by("pk").values_list("client_ip", flat=True)
    )
    assert addresses == ["198.51.100.7", "192.0.2.1"]


def test_machine_network_open(send_email, settings):
    settings.PUSH_MACHINE_NETWORKS = ["172.224.0.0/12"]
    record, parsed = send_email()

    Client().get(path_of(parsed.images[0]), HTTP_USER_AGENT=BROWSER,
                 REMOTE_ADDR="172.225.1.2")

    event = EngagementEvent.objects.get()
    assert event.machine_reason == "apple_privacy_proxy"


def test_pixel_sits_inside_body(send_email, smtp_server):
    send_email()
    [mail] = smtp_server.mails
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    pixel = re.search(r'<img src="[^"]+/o/[^"]+"', html)
    assert pixel is not None
    assert pixel.start() < html.index("</body>")
