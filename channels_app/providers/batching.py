"""Helpers for app-push providers that take many device tokens in one request.

Messages with the same rendered content are grouped and sent as one request per
`max_targets` tokens. Requests run on a small thread pool over one shared httpx
client, so connections are reused across batches.
"""
import json
import logging
import zlib
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from channels_app.providers.base import Outcome, OutgoingMessage, SendResult

logger = logging.getLogger(__name__)

# The options keys that the app-push adapters read; each adapter documents which of
# them its provider supports.
PUSH_OPTIONS = (
    "icon", "sound", "badge", "click_action", "buttons", "image", "collapse_key",
    "ttl_seconds", "channel_id",
)
HIGH_PRIORITIES = ("high", "urgent")
DEFAULT_WORKERS = 8


def content_key(message: OutgoingMessage) -> str:
    """Return a key that is equal for messages a provider can send in one request."""
    return json.dumps(
        [message.title, message.body, message.data, message.platform, message.priority,
         message.options],
        sort_keys=True, default=str,
    )


def group_batches(
    messages: list[OutgoingMessage],
    max_targets: int,
    key: Callable[[OutgoingMessage], Hashable] = content_key,
) -> list[list[OutgoingMessage]]:
    """Group messages with equal content, then split each group into chunks of max_targets."""
    groups: dict[Hashable, list[OutgoingMessage]] = {}
    for message in messages:
        groups.setdefault(key(message), []).append(message)
    batches = []
    for group in groups.values():
        for start in range(0, len(group), max_targets):
            batches.append(group[start : start + max_targets])
    return batches


def send_batches(
    batches: list[list[OutgoingMessage]],
    send_batch: Callable[[list[OutgoingMessage]], list[SendResult]],
    workers: int = DEFAULT_WORKERS,
) -> list[SendResult]:
    """Run send_batch for every batch, up to `workers` at a time; concatenate results."""
    if len(batches) == 1:
        return send_batch(batches[0])
    with ThreadPoolExecutor(max_workers=min(workers, len(batches))) as pool:
        return [result for results in pool.map(send_batch, batches) for result in results]


def results_for(
    batch: list[OutgoingMessage], outcome: Outcome, **fields: Any
) -> list[SendResult]:
    """Return the same result for every message of a batch."""
    return [SendResult(message.record_id, outcome, **fields) for message in batch]


def invalid_options(batch: list[OutgoingMessage], error: Exception) -> list[SendResult]:
    """Return a permanent failure for a batch whose options could not be converted."""
    return results_for(
        batch, Outcome.PERMANENT, error_code="invalid_option",
        error_message=f"invalid push option: {error}"[:500],
    )


def network_failure(batch: list[OutgoingMessage], error: httpx.HTTPError) -> list[SendResult]:
    return results_for(
        batch, Outcome.RETRYABLE, error_code="network",
        error_message=str(error)[:500] or type(error).__name__,
    )


def ttl_seconds(message: OutgoingMessage) -> int | None:
    """Return options.ttl_seconds as a non-negative int, or None when unset."""
    value = message.options.get("ttl_seconds")
    if value in (None, ""):
        return None
    return max(int(value), 0)


def notify_id(collapse_key: str) -> int:
    """Map options.collapse_key to the positive 31-bit notification id some providers use."""
    return zlib.crc32(collapse_key.encode()) & 0x7FFFFFFF


def is_web_url(action: str) -> bool:
    return action.startswith(("http://", "https://"))


def android_channel(message: OutgoingMessage, config: dict[str, Any]) -> str:
    """Return the Android notification channel for a message.

    options.channel_id wins; otherwise high and urgent messages use the channel's
    `high_priority_channel_id` and the rest its `channel_id`.
    """
    if message.options.get("channel_id"):
        return str(message.options["channel_id"])
    if message.priority in HIGH_PRIORITIES and config.get("high_priority_channel_id"):
        return str(config["high_priority_channel_id"])
    return str(config.get("channel_id") or "")


def json_string(data: dict[str, Any]) -> str:
    """Encode a data map as the compact JSON string that providers take for extras."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
