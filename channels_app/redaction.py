"""Removal of a channel's credential values from error texts before they are stored,
shown in the admin or logged.

Provider libraries put account ids and keys into their exception texts, for example
Twilio's account SID in the request path of a connection error. Replacing the
channel's own credential values catches them whatever the adapter or library.
"""
from typing import Any

MASK = "***"
# Shorter values are left alone, so that a short credential does not mask common
# words all through a message.
# NOTE: a credential shorter than this, or one that an adapter's 500-character limit
# cuts in two, can still appear in error texts.
MIN_SECRET_CHARS = 4


def secret_strings(value: Any) -> set[str]:
    """Collect the strings in a credentials value, nested objects and lists included."""
    if isinstance(value, str):
        return {value} if len(value) >= MIN_SECRET_CHARS else set()
    if isinstance(value, dict):
        return set().union(*(secret_strings(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(secret_strings(item) for item in value))
    return set()


def redact_credentials(text: str, credentials: dict[str, Any]) -> str:
    """Return `text` with each credential value replaced by `***`."""
    # Mask longer values first, so that a value containing another is masked whole.
    for secret in sorted(secret_strings(credentials), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
