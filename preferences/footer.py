"""The preference-centre link added to the end of every email and marketing SMS."""
import re

from django.conf import settings
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext

from preferences.links import preference_url
from sharestack_push.notifications.constants import ChannelKind

CLOSING_BODY_TAG = re.compile(r"</body\s*>", re.IGNORECASE)


def email_footer(body: str, html: str, url: str) -> tuple[str, str]:
    text_line = gettext("Manage your notification preferences: %(url)s") % {"url": url}
    body = f"{body}\n\n-- \n{text_line}" if body else text_line
    if not html:
        return body, html

    link_text = escape(gettext("Manage your notification preferences"))
    paragraph = (
        '<p style="font-size:12px;color:#57606a">'
        f'<a href="{escape(url)}">{link_text}</a></p>'
    )
    # Inside <body> when the HTML is a whole document, else at its end.
    closing = list(CLOSING_BODY_TAG.finditer(html))
    if closing:
        position = closing[-1].start()
        return body, f"{html[:position]}{paragraph}{html[position:]}"
    return body, f"{html}{paragraph}"


def sms_footer(body: str, url: str) -> str:
    line = gettext("Manage notifications: %(url)s") % {"url": url}
    return f"{body} {line}" if body else line


def add_preference_footer(
    channel_kind: str,
    marketing: bool,
    user_id: str,
    locale: str,
    body: str,
    html: str,
    record_id: int | None = None,
) -> tuple[str, str]:
    """Return the body and HTML with a footer linking to the user's preference page.

    Every email gets the footer in its text and HTML parts, marketing SMS a short line.
    Other messages, and messages not addressed to a known user, come back unchanged.
    An email's link carries record_id, so an opt-out saved through it counts against
    that email. An SMS link leaves it out, because it would add 18 characters to every
    marketing SMS, and an SMS opt-out is traced through the STOP reply instead.
    NOTE: template-based SMS providers (Aliyun, Tencent) send an approved template, not
    the body, so their marketing templates must carry the link themselves.
    """
    if not user_id:
        return body, html
    wants_footer = channel_kind == ChannelKind.EMAIL or (
        channel_kind == ChannelKind.SMS and marketing
    )
    if not wants_footer:
        return body, html

    traced = record_id if channel_kind == ChannelKind.EMAIL else None
    url = preference_url(user_id, traced)
    with translation.override(locale or settings.PUSH_DEFAULT_LOCALE):
        if channel_kind == ChannelKind.EMAIL:
            return email_footer(body, html, url)
        return sms_footer(body, url), html
