"""Put click redirects and the open pixel into outgoing messages.

Only http and https links are rewritten. Links into this service itself (the preference
page and unsubscribe links, under PUSH_PUBLIC_BASE_URL) stay as they are, so they keep
working without a redirect. A click link is PUSH_PUBLIC_BASE_URL + "/c/" + a token
(see analytics.tokens) of 16 characters while record ids stay below 2**28 and link ids
below 2**14. With the base URL "https://push.example.com" that makes an SMS link 43
characters long, whatever the length of the original URL.
"""
import hashlib
import html as html_lib
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils.html import escape

from analytics.models import TrackedLink
from analytics.tokens import click_token, open_token
from sharestack_push.notifications.models import PushRecord

# One attribute of a start tag's source: its name, then an optional value that is
# double-quoted, single-quoted or unquoted, as the HTML syntax allows.
TAG_ATTRIBUTE = re.compile(r"""([^\s/>"'=][^\s/>=]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
# A URL in running text is made of the ASCII characters RFC 3986 allows, apart from
# the quote ', so it ends at a space, a quote, an angle bracket or any non-ASCII character. Chinese text puts no
# space after a link, and its full-width punctuation (，。）」 and so on) and CJK
# characters are therefore never part of the URL.
TEXT_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]+", re.IGNORECASE)
# ASCII punctuation that ends a sentence rather than a URL when it is the URL's last
# character.
TRAILING_PUNCTUATION = ".,;:!?"
CLOSING_BRACKETS = {")": "(", "]": "[", "}": "{"}
CLOSING_BODY_TAG = re.compile(r"</body\s*>", re.IGNORECASE)
# Option keys that carry a link in WeChat template messages and WeCom text cards.
# A mini program page path is not a URL and is left alone.
URL_OPTIONS = ("url", "click_action")


def trackable(url: str) -> bool:
    if not url.lower().startswith(("http://", "https://")):
        return False
    return not url.startswith(f"{settings.PUSH_PUBLIC_BASE_URL}/")


def tracking_enabled(options: dict[str, Any], channel_config: dict[str, Any]) -> bool:
    """Return False when the task's options or the channel's config turn tracking off."""
    return options.get("tracking") is not False and channel_config.get("tracking") is not False


class LinkTracker:
    """The link rewriter of one send batch, with a cache of link ids per task and URL."""

    def __init__(self) -> None:
        self.link_ids: dict[tuple[Any, str], int] = {}

    def link_id(self, task_id: Any, url: str) -> int:
        key = (task_id, url)
        if key not in self.link_ids:
            url_hash = hashlib.sha256(url.encode()).hexdigest()
            link, _ = TrackedLink.objects.get_or_create(
                task_id=task_id, url_hash=url_hash, defaults={"url": url}
            )
            self.link_ids[key] = link.pk
        return self.link_ids[key]

    def click_url(self, record: PushRecord, url: str) -> str:
        if not trackable(url):
            return url
        token = click_token(record.pk, self.link_id(record.task_id, url))
        return f"{settings.PUSH_PUBLIC_BASE_URL}{reverse('click-redirect', args=[token])}"

    def rewrite_html(self, record: PushRecord, html: str) -> str:
        """Send every http(s) href through the redirect and add the open pixel."""

        pieces = []
        copied = 0
        for offset, tag in anchor_tags(html):
            new_tag = replace_href(tag, lambda url: self.click_url(record, url))
            pieces.append(html[copied:offset])
            pieces.append(new_tag)
            copied = offset + len(tag)
        pieces.append(html[copied:])
        return add_pixel("".join(pieces), pixel_url(record))

    def rewrite_text(self, record: PushRecord, text: str) -> str:
        """Send every http(s) URL in plain text, such as an SMS body, through the redirect."""

        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            url = trim_text_url(found)
            if not has_host(url):
                return found
            return self.click_url(record, url) + found[len(url):]

        return TEXT_URL.sub(replace, text)

    def rewrite_options(self, record: PushRecord, options: dict[str, Any]) -> dict[str, Any]:
        """Send the url and click_action options through the redirect."""
        rewritten = dict(options)
        for name in URL_OPTIONS:
            value = rewritten.get(name)
            if isinstance(value, str):
                rewritten[name] = self.click_url(record, value)
        return rewritten


class AnchorTagFinder(HTMLParser):
    """Collect the source text and offset of every <a> start tag.

    html.parser reports no tags inside comments or <script> and <style> content, and
    it reads quoted attribute values whole, so a "<a" or ">" inside them neither
    starts nor ends a tag.
    """

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", html)]
        self.tags: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        text = self.get_starttag_text() or ""
        line, column = self.getpos()
        offset = self.line_starts[line - 1] + column
        # The offset comes from the parser's line and column count. Skip the tag
        # rather than corrupt the message if the two ever disagree.
        if self.html.startswith(text, offset):
            self.tags.append((offset, text))


def anchor_tags(html: str) -> list[tuple[int, str]]:
    """Return (offset, source text) of each <a> start tag of an HTML document."""
    finder = AnchorTagFinder(html)
    finder.feed(html)
    finder.close()
    return finder.tags


def replace_href(tag: str, rewrite: Callable[[str], str]) -> str:
    """Rewrite the URL of the first href attribute of one start tag's source.

    Only an attribute named exactly href counts, so data-href stays as it is. A quoted
    value keeps its quote character, and an unquoted one is written in double quotes.
    """
    for match in TAG_ATTRIBUTE.finditer(tag, 2):
        if match.group(1).lower() != "href":
            continue
        raw = match.group(2)
        if not raw:
            return tag
        if raw[0] in "\"'":
            quote, value = raw[0], raw[1:-1]
        else:
            quote, value = "", raw
        url = html_lib.unescape(value.strip())
        tracked = rewrite(url)
        if tracked == url:
            return tag
        new_quote = quote or '"'
        value = f"{new_quote}{escape(tracked)}{new_quote}"
        return f"{tag[:match.start(2)]}{value}{tag[match.end(2):]}"
    return tag


def trim_text_url(found: str) -> str:
    """Strip trailing sentence punctuation and unbalanced closing brackets from a URL.

    "https://a.example/x)." becomes "https://a.example/x", while
    "https://a.example/wiki/Rust_(language)" keeps its balanced ")".
    """
    url = found
    while url:
        last = url[-1]
        unbalanced = last in CLOSING_BRACKETS and (
            url.count(last) > url.count(CLOSING_BRACKETS[last])
        )
        if last not in TRAILING_PUNCTUATION and not unbalanced:
            break
        url = url[:-1]
    return url


def has_host(url: str) -> bool:
    """Return True when the URL parses and names a host, unlike "https://" or "http://[x"."""
    try:
        return bool(urlsplit(url).netloc)
    except ValueError:
        return False


def pixel_url(record: PushRecord) -> str:
    token = open_token(record.pk)
    return f"{settings.PUSH_PUBLIC_BASE_URL}{reverse('open-pixel', args=[token])}"


def add_pixel(html: str, url: str) -> str:
    """Add a 1x1 image at the end of the HTML body, or of the fragment."""
    image = (
        f'<img src="{escape(url)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    closing = list(CLOSING_BODY_TAG.finditer(html))
    if closing:
        position = closing[-1].start()
        return f"{html[:position]}{image}{html[position:]}"
    return f"{html}{image}"
