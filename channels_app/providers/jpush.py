"""JPush (Jiguang) over its REST API v3 push endpoint.

One JSON POST to `/v3/push` carries up to 1000 registration ids and returns one msg_id
for all of them. Each result of a batch gets that id. Auth is HTTP Basic with
the AppKey as user name and the Master Secret as password. Every request carries a
`cid` derived from the AppKey and the batch's record ids, so that JPush returns the
first push's result for a retried batch instead of pushing it twice.

Options read from OutgoingMessage.options:
- icon: Android large icon URL (android.large_icon).
- sound: iOS sound file name (ios.sound). JPush rejects `sound` for Android (1009),
  where the notification channel decides the sound.
- badge: iOS badge number, or "+1" to increment it.
- click_action: Android intent URL (android.intent.url); on iOS it is added to the
  extras as `click_action` for the app to open.
- image: Android big picture (style 3, big_pic_path); on iOS mutable-content is set
  and the URL is added to the extras as `image` for a notification service extension.
- channel_id: Android notification channel (see also the channel_id and
  high_priority_channel_id config keys).
- collapse_key: iOS apns_collapse_id.
- ttl_seconds: offline retention (options.time_to_live); no effect on iOS APNs.
buttons have no field in this API and are ignored. Priority high and urgent set the
Android notification priority to 2, low to -1.
"""
import base64
import logging
import uuid
from typing import Any

import httpx

from channels_app.providers import batching
from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.jpush.cn"
PUSH_PATH = "/v3/push"
MAX_TARGETS = 1000
CID_NAMESPACE = uuid.UUID("6f1c7a5e-4d0b-4bd8-9a57-0f3e2b8c9d41")
ANDROID_PRIORITY = {"low": -1, "normal": 0, "high": 2, "urgent": 2}

# error.code from JPush's error body, from its HTTP status code reference.
ERROR_CODES: dict[int, Outcome] = {
    1000: Outcome.RETRYABLE,  # internal error
    1030: Outcome.RETRYABLE,  # internal service timeout
    2002: Outcome.RETRYABLE,  # API rate limit for this AppKey
    1001: Outcome.PERMANENT,  # only POST supported
    1002: Outcome.PERMANENT,  # missing required parameter
    1003: Outcome.PERMANENT,  # invalid parameter value
    1005: Outcome.PERMANENT,  # body too large
    1009: Outcome.PERMANENT,  # unsupported key in the push object
    1012: Outcome.PERMANENT,  # throttled push limit exceeded
    2005: Outcome.PERMANENT,  # message volume judged excessive
    1011: Outcome.INVALID_ADDRESS,  # no device matches the audience
    1004: Outcome.CONFIGURATION,  # authentication failed
    1008: Outcome.CONFIGURATION,  # invalid app_key
    1020: Outcome.CONFIGURATION,  # HTTPS required
    2003: Outcome.CONFIGURATION,  # AppKey blacklisted
    2004: Outcome.CONFIGURATION,  # caller IP not in the whitelist
    2006: Outcome.CONFIGURATION,  # VIP-only API
    2007: Outcome.CONFIGURATION,  # no permission for this API
}
# Used when the body carries no error code.
STATUS_CODES: dict[int, Outcome] = {
    401: Outcome.CONFIGURATION,
    403: Outcome.CONFIGURATION,
    404: Outcome.CONFIGURATION,
    410: Outcome.CONFIGURATION,
    429: Outcome.RETRYABLE,
}


def classify(status: int, code: int | None) -> Outcome:
    if code is not None and code in ERROR_CODES:
        return ERROR_CODES[code]
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    return Outcome.RETRYABLE if status >= 500 else Outcome.PERMANENT


def parse_error(response: httpx.Response) -> tuple[int | None, str]:
    """Return (error.code, error.message) from a JPush error body."""
    try:
        error = response.json()["error"]
        return int(error["code"]), str(error.get("message", ""))[:500]
    except (ValueError, KeyError, TypeError):
        return None, response.text[:500]


def reset_seconds(response: httpx.Response) -> float | None:
    """Return X-Rate-Limit-Reset, the seconds until JPush's one-minute window resets."""
    try:
        return max(float(response.headers["X-Rate-Limit-Reset"]), 0.0)
    except (KeyError, ValueError):
        return None


class JPushProvider(Provider):
    key = "jpush"
    kinds = ("app",)
    address_kinds = ("jpush",)
    required_config = ("app_key",)
    optional_config = ("base_url", "apns_production", "channel_id", "high_priority_channel_id")
    required_credentials = ("master_secret",)

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        if not isinstance(config.get("apns_production", True), bool):
            errors["config.apns_production"] = "Must be true or false."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        base_url = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.endpoint = base_url + PUSH_PATH
        pair = f"{config['app_key']}:{credentials['master_secret']}".encode()
        self._headers = {
            "Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
            "Content-Type": "application/json",
        }
        self._client = httpx.Client(timeout=timeout)

    def cid(self, batch: list[OutgoingMessage]) -> str:
        """Return the idempotency key for a batch: equal for a retry of the same records."""
        # NOTE: JPush documents cids as issued by GET /v3/push/cid and does not say
        # whether it accepts a self-made "<AppKey>-<uuid>" of the same shape.
        records = ",".join(str(m.record_id) for m in sorted(batch, key=lambda m: m.record_id))
        name = f"{self.config['app_key']}:{records}"
        return f"{self.config['app_key']}-{uuid.uuid5(CID_NAMESPACE, name)}"

    def body(self, batch: list[OutgoingMessage]) -> dict[str, Any]:
        """Build the push object for a batch with equal content."""
        message = batch[0]
        platform = "ios" if message.platform == "ios" else "android"
        notification = self.ios(message) if platform == "ios" else self.android(message)
        options: dict[str, Any] = {
            "apns_production": bool(self.config.get("apns_production", True)),
        }
        ttl = batching.ttl_seconds(message)
        if ttl is not None:
            options["time_to_live"] = ttl
        if message.options.get("collapse_key"):
            options["apns_collapse_id"] = str(message.options["collapse_key"])[:64]
        return {
            "platform": [platform],
            "audience": {"registration_id": [m.address for m in batch]},
            "notification": {platform: notification},
            "options": options,
            "cid": self.cid(batch),
        }

    def android(self, message: OutgoingMessage) -> dict[str, Any]:
        options = message.options
        android: dict[str, Any] = {
            "alert": message.body,
            "title": message.title,
            "priority": ANDROID_PRIORITY.get(message.priority, 0),
            "extras": message.data,
        }
        channel = batching.android_channel(message, self.config)
        if channel:
            android["channel_id"] = channel
        if options.get("icon"):
            android["large_icon"] = str(options["icon"])
        if options.get("click_action"):
            android["intent"] = {"url": str(options["click_action"])}
        if options.get("image"):
            android["style"] = 3
            android["big_pic_path"] = str(options["image"])
        return android

    def ios(self, message: OutgoingMessage) -> dict[str, Any]:
        options = message.options
        extras = dict(message.data)
        ios: dict[str, Any] = {"alert": {"title": message.title, "body": message.body}}
        if options.get("sound"):
            ios["sound"] = str(options["sound"])
        if options.get("badge") not in (None, ""):
            badge = options["badge"]
            ios["badge"] = badge if badge == "+1" else int(badge)
        if options.get("click_action"):
            extras["click_action"] = str(options["click_action"])
        if options.get("image"):
            ios["mutable-content"] = True
            extras["image"] = str(options["image"])
        ios["extras"] = extras
        return ios

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        batches = batching.group_batches(messages, MAX_TARGETS)
        return batching.send_batches(batches, self._send_batch)

    def _send_batch(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        try:
            body = self.body(batch)
        except (TypeError, ValueError) as error:
            return batching.invalid_options(batch, error)
        try:
            response = self._client.post(self.endpoint, json=body, headers=self._headers)
        except httpx.HTTPError as error:
            return batching.network_failure(batch, error)
        if response.status_code == 200:
            try:
                message_id = str(response.json()["msg_id"])
            except (ValueError, KeyError, TypeError):
                return batching.results_for(
                    batch, Outcome.RETRYABLE, error_code="empty_response",
                    error_message="JPush returned 200 without a msg_id",
                )
            return batching.results_for(batch, Outcome.SENT, provider_message_id=message_id)

        code, text = parse_error(response)
        if code == 1011 and len(batch) > 1:
            # 1011 means none of the ids matched; single sends tell which are dead.
            return [result for m in batch for result in self._send_batch([m])]
        status = response.status_code
        logger.warning("jpush: send of %d messages failed with HTTP %s, code %s",
                       len(batch), status, code)
        return batching.results_for(
            batch, classify(status, code), error_code=str(code if code is not None else status),
            error_message=text,
            retry_after=reset_seconds(response) if status == 429 else None,
            response_data={"status": status},
        )

    def close(self) -> None:
        self._client.close()
