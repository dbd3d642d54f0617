"""Tencent Push Notification Service (TPNS) over its REST API v3 `/v3/push/app`.

Tencent has stopped selling TPNS. Existing apps keep working, and this adapter is
for them. Requests are signed with the headers AccessId, TimeStamp and Sign, where
Sign is Base64 of the lower-case hex HMAC-SHA256 of TimeStamp + AccessId + the raw
body, keyed with the SecretKey. One request carries up to 1000 tokens
(audience_type token_list) and returns one push_id for all of them. Each result of a
batch gets that id. A batch of one uses audience_type token, because only then
does TPNS report an invalid token (1008029, 10010005). In a list it skips them.

Options read from OutgoingMessage.options:
- icon: Android small icon resource name (message.android.small_icon).
- sound: Android ring_raw (a raw resource name) or iOS aps.sound.
- badge: the badge number, Android badge_type and iOS badge_type.
- click_action: an http(s) URL opens the browser (action_type 2), anything else is
  an intent URI (action_type 3); on iOS it is added to custom_content.
- image: message.xg_media_resources (Android picture; on iOS mutable-content).
- channel_id: Android notification channel (n_ch_id).
- collapse_key: collapse_id.
- ttl_seconds: expire_time (TPNS keeps at most 72 hours and raises 1 to 799 to 800).
buttons have no field in this API and are ignored. Priority picks the Android
notification channel through the channel_id and high_priority_channel_id config keys.
"""
import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from channels_app.providers import batching
from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.tpns.tencent.com"
PUSH_PATH = "/v3/push/app"
MAX_TARGETS = 1000
MAX_EXPIRE_SECONDS = 72 * 3600

# ret_code from TPNS's reply, from its server error code list.
ERROR_CODES: dict[int, Outcome] = {
    1008004: Outcome.RETRYABLE,  # failed to call an internal service
    1008028: Outcome.RETRYABLE,  # request too fast
    1008001: Outcome.PERMANENT,  # parameter parse error
    1008002: Outcome.PERMANENT,  # missing parameter
    1008007: Outcome.PERMANENT,  # parameter validation failed
    1008019: Outcome.PERMANENT,  # content rejected by security review
    10010012: Outcome.PERMANENT,  # illegal send_time
    10010018: Outcome.PERMANENT,  # duplicate push
    1008003: Outcome.CONFIGURATION,  # authentication failed
    10030002: Outcome.CONFIGURATION,  # AccessID and AccessKey do not match
    1008023: Outcome.CONFIGURATION,  # iOS certificate expired
    1008030: Outcome.CONFIGURATION,  # app not paid
    1008031: Outcome.CONFIGURATION,  # app resources destroyed
    1010001: Outcome.CONFIGURATION,  # push resource not purchased
    1008029: Outcome.INVALID_ADDRESS,  # token not valid
    1008006: Outcome.INVALID_ADDRESS,  # invalid token
    10010005: Outcome.INVALID_ADDRESS,  # push target does not exist
    10110008: Outcome.INVALID_ADDRESS,  # token or account does not exist
}
# TPNS sends no Retry-After; it allows one full or tag push per second.
RETRY_AFTER: dict[int, float] = {1008028: 1.0}


def classify(ret_code: int, targets: int) -> Outcome:
    outcome = ERROR_CODES.get(ret_code, Outcome.PERMANENT)
    if outcome == Outcome.INVALID_ADDRESS and targets > 1:
        # TPNS names no token in a list push, so no single address can be blamed.
        return Outcome.PERMANENT
    return outcome


def sign(secret_key: str, access_id: str, timestamp: str, body: bytes) -> str:
    """Return the Sign header: Base64 of the lower-case hex HMAC-SHA256 digest."""
    message = timestamp.encode() + access_id.encode() + body
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


class TpnsProvider(Provider):
    key = "tpns"
    kinds = ("app",)
    address_kinds = ("tpns",)
    required_config = ("access_id",)
    optional_config = ("base_url", "environment", "channel_id", "high_priority_channel_id")
    required_credentials = ("secret_key",)

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        if config.get("environment", "product") not in ("product", "dev"):
            errors["config.environment"] = "Must be product or dev."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.endpoint = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + PUSH_PATH
        self._client = httpx.Client(timeout=timeout)

    def body(self, batch: list[OutgoingMessage]) -> dict[str, Any]:
        """Build the push request for a batch with equal content."""
        message = batch[0]
        content: dict[str, Any] = {"title": message.title, "content": message.body}
        if message.platform == "ios":
            content["ios"] = self.ios(message)
        else:
            content["android"] = self.android(message)
        if message.options.get("image"):
            content["xg_media_resources"] = str(message.options["image"])
        body: dict[str, Any] = {
            "audience_type": "token" if len(batch) == 1 else "token_list",
            "token_list": [m.address for m in batch],
            "message_type": "notify",
            "message": content,
            "environment": str(self.config.get("environment") or "product"),
        }
        ttl = batching.ttl_seconds(message)
        if ttl is not None:
            body["expire_time"] = min(ttl, MAX_EXPIRE_SECONDS)
        if message.options.get("collapse_key"):
            body["collapse_id"] = batching.notify_id(str(message.options["collapse_key"]))
        return body

    def android(self, message: OutgoingMessage) -> dict[str, Any]:
        options = message.options
        # TPNS parses custom_content as a JSON string and rejects an object (1008001).
        android: dict[str, Any] = {"custom_content": batching.json_string(message.data)}
        channel = batching.android_channel(message, self.config)
        if channel:
            android["n_ch_id"] = channel
        if options.get("icon"):
            android["small_icon"] = str(options["icon"])
        if options.get("sound"):
            android["ring"] = 1
            android["ring_raw"] = str(options["sound"])
        if options.get("badge") not in (None, ""):
            android["badge_type"] = int(options["badge"])
        action = str(options.get("click_action") or "")
        if action and batching.is_web_url(action):
            android["action"] = {"action_type": 2, "browser": {"url": action, "confirm": 0}}
        elif action:
            android["action"] = {"action_type": 3, "intent": action}
        return android

    def ios(self, message: OutgoingMessage) -> dict[str, Any]:
        options = message.options
        extras = dict(message.data)
        aps: dict[str, Any] = {"alert": {"title": message.title, "body": message.body}}
        if options.get("sound"):
            aps["sound"] = str(options["sound"])
        if options.get("badge") not in (None, ""):
            aps["badge_type"] = int(options["badge"])
        if options.get("image"):
            aps["mutable-content"] = 1
        if options.get("click_action"):
            extras["click_action"] = str(options["click_action"])
        return {"aps": aps, "custom_content": batching.json_string(extras)}

    def signed_headers(self, raw_body: bytes) -> dict[str, str]:
        access_id = str(self.config["access_id"])
        timestamp = str(int(time.time()))
        return {
            "Content-Type": "application/json",
            "AccessId": access_id,
            "TimeStamp": timestamp,
            "Sign": sign(str(self.credentials["secret_key"]), access_id, timestamp, raw_body),
        }

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        batches = batching.group_batches(messages, MAX_TARGETS)
        return batching.send_batches(batches, self._send_batch)

    def _send_batch(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        try:
            body = self.body(batch)
        except (TypeError, ValueError) as error:
            return batching.invalid_options(batch, error)
        # The signature covers these exact bytes, so they are sent as they are.
        raw_body = json.dumps(body, ensure_ascii=False).encode()
        try:
            response = self._client.post(self.endpoint, content=raw_body,
                                         headers=self.signed_headers(raw_body))
        except httpx.HTTPError as error:
            return batching.network_failure(batch, error)
        status = response.status_code
        try:
            reply = response.json()
            ret_code = int(reply["ret_code"])
        except (ValueError, KeyError, TypeError):
            outcome = Outcome.RETRYABLE if status >= 500 else Outcome.PERMANENT
            if status in (401, 403):
                # Wrong credentials or a host other than the app's access point.
                outcome = Outcome.CONFIGURATION
            return batching.results_for(
                batch, outcome, error_code=str(status), error_message=response.text[:500],
                response_data={"status": status},
            )
        if ret_code == 0:
            return batching.results_for(
                batch, Outcome.SENT, provider_message_id=str(reply.get("push_id", ""))
            )
        logger.warning("tpns: push of %d messages failed with ret_code %s", len(batch), ret_code)
        return batching.results_for(
            batch, classify(ret_code, len(batch)), error_code=str(ret_code),
            error_message=str(reply.get("err_msg", ""))[:500],
            retry_after=RETRY_AFTER.get(ret_code),
        )

    def close(self) -> None:
        self._client.close()
