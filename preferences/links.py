"""Signed, expiring links to one user's preference centre page.

The token carries the user id and its expiry time, signed with SECRET_KEY under its own
salt, so a link cannot be forged for another user or made to live longer. Each link
carries its own expiry because callers choose the lifetime per link. A link in a
message footer also carries the message's record id, so that an opt-out saved through
it counts against that message.
"""
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "sharestack-push.preference-centre"
DEFAULT_LIFETIME = timedelta(days=7)
MIN_LIFETIME = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=90)


class LinkError(Exception):
    """A preference link that cannot be used."""


class LinkInvalid(LinkError):
    """The token is damaged, altered, or was signed with another key."""


class LinkExpired(LinkError):
    """The token is genuine but its expiry time has passed."""


@dataclass(frozen=True)
class PreferenceLink:
    url: str
    token: str
    expires_at: datetime


def create_link(
    user_id: str,
    lifetime: timedelta = DEFAULT_LIFETIME,
    now: datetime | None = None,
    record_id: int | None = None,
) -> PreferenceLink:
    """Sign a link to the user's preference page that stops working after `lifetime`."""
    issued_at = now or datetime.now(UTC)
    expires_at = (issued_at + lifetime).replace(microsecond=0)
    # Short keys keep the URL short enough for an SMS footer.
    payload: dict[str, str | int] = {"u": user_id, "e": int(expires_at.timestamp())}
    if record_id is not None:
        payload["r"] = record_id
    token = signing.dumps(payload, salt=SALT, compress=True)
    query = urlencode({"token": token})
    url = f"{settings.PUSH_PUBLIC_BASE_URL}{reverse('preference-centre')}?{query}"
    return PreferenceLink(url=url, token=token, expires_at=expires_at)


def preference_url(user_id: str, record_id: int | None = None) -> str:
    """Return a link with the default lifetime, for the footer of the record's message."""
    return create_link(user_id, record_id=record_id).url


def read_token(token: str, now: datetime | None = None) -> str:
    """Return the user id a token was signed for.

    Raises LinkInvalid for a damaged or altered token and LinkExpired for one past its
    expiry time.
    """
    return read_link(token, now)[0]


def read_link(token: str, now: datetime | None = None) -> tuple[str, int | None]:
    """Return the user id and the record id (None if absent) a token was signed for.

    Raises LinkInvalid for a damaged or altered token and LinkExpired for one past its
    expiry time.
    """
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as error:
        raise LinkInvalid("The link signature does not match.") from error

    # Only create_link signs with this salt, but a payload of another shape is rejected
    # here rather than crashing the page.
    if not isinstance(payload, dict):
        raise LinkInvalid("The link payload is not an object.")
    user_id = payload.get("u")
    expires_at = payload.get("e")
    if not isinstance(user_id, str) or not user_id or not isinstance(expires_at, int):
        raise LinkInvalid("The link payload lacks the user id or the expiry time.")

    record_id = payload.get("r")
    if record_id is not None and not isinstance(record_id, int):
        raise LinkInvalid("The link payload has a record id that is not a number.")

    current = now or datetime.now(UTC)
    if current.timestamp() >= expires_at:
        raise LinkExpired("The link has expired.")
    return user_id, record_id
