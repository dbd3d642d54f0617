"""Pieces shared by the SMS adapters: templates, batching, callbacks and threads."""

import hmac
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from django.http import HttpRequest

from channels_app.providers.base import CallbackRejected, OutgoingMessage

T = TypeVar("T")
R = TypeVar("R")

# Aliyun and Tencent report times as "YYYY-MM-DD hh:mm:ss" in China Standard Time.
CHINA_TIME = timezone(timedelta(hours=8))


def template_for(
    message: OutgoingMessage,
    config: dict[str, Any],
    option: str,
    by_type: str,
    default: str,
) -> str:
    """Pick a template: the message's option, else by notification type, else default.

    For example option="template_code", by_type="template_codes" and
    default="template_code" read options.template_code, then
    config.template_codes[notification_type], then config.template_code.
    """
    chosen = message.options.get(option) or (config.get(by_type) or {}).get(
        message.notification_type
    )
    return str(chosen or config.get(default) or "")


def as_string(value: Any) -> str:
    """SMS template parameters are strings; booleans are written in lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def chunks_with_unique_addresses(
    items: Iterable[T], size: int, address: Callable[[T], str]
) -> Iterator[list[T]]:
    """Yield chunks of at most `size` items in which no address appears twice.

    A provider that reports per number cannot tell two messages to one number apart
    within one request, so a repeated number goes into a later chunk.
    """
    pending = list(items)
    while pending:
        chunk: list[T] = []
        seen: set[str] = set()
        later: list[T] = []
        for item in pending:
            key = address(item)
            if len(chunk) < size and key not in seen:
                chunk.append(item)
                seen.add(key)
            else:
                later.append(item)
        yield chunk
        pending = later


def run_concurrently(
    function: Callable[[T], R], items: list[T], workers: int
) -> list[R]:
    """Call `function` on each item from up to `workers` threads; keep the order."""
    if len(items) <= 1 or workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))


def check_concurrency(config: dict[str, Any], errors: dict[str, str]) -> None:
    """Add an error when config.concurrency is set but not a positive integer."""
    value = config.get("concurrency")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        errors["config.concurrency"] = "Must be a positive integer, such as 8."


def check_callback_token(request: HttpRequest, credentials: dict[str, Any]) -> None:
    """Compare the `token` query parameter with credentials.callback_token.

    Raises CallbackRejected when the channel has no callback_token or the request
    carries another one. The comparison takes constant time.
    """
    expected = str(credentials.get("callback_token") or "")
    if not expected:
        raise CallbackRejected(
            "the channel has no callback_token, so it takes no callbacks"
        )
    received = request.GET.get("token", "")
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise CallbackRejected("the token query parameter does not match")


def china_time(text: Any) -> datetime | None:
    """Parse "YYYY-MM-DD hh:mm:ss" in China Standard Time; None when malformed."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=CHINA_TIME
        )
    except ValueError:
        return None
