"""Huawei Push Kit (HMS Core) for Android devices, over its v1 REST API.

One request sends one message to up to 1000 device tokens, so the adapter groups a
batch by identical content and posts each group in chunks of 1000. The response
contains one `requestId` for the whole request. It becomes the provider message id of
every record in the request, and a delivery receipt names it with the device token.

The OAuth 2.0 access token comes from the client credentials grant and is shared by
every worker through `shared_tokens()`.

Options read from `OutgoingMessage.options`: icon, sound, image, badge with
badge_class (the launcher activity that shows it), click_action, ttl (seconds),
collapse_key and bi_tag. A click_action is a URL, an intent URI or an action name,
and without one a tap opens the app. Receipts echo bi_tag, which defaults to the
notification type.
"""
import base64
import hashlib
import hmac
import json
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from django.http import HttpRequest, JsonResponse

from channels_app.providers.base import (
    CallbackRejected,
    CallbackResult,
    Outcome,
    OutgoingMessage,
    Provider,
    Receipt,
    ReceiptEvent,
    SendResult,
)
from channels_app.providers.tokens import TokenWaitTimeout, shared_tokens

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://push-api.cloud.huawei.com"
DEFAULT_TOKEN_URL = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
MAX_TOKENS_PER_REQUEST = 1000
SUCCESS = "80000000"
PARTIAL_SUCCESS = "80100000"
TOKEN_EXPIRED = "80200003"
# How far a receipt's signed timestamp may be from our clock.
CALLBACK_MAX_SKEW_SECONDS = 300

# The `code` of a send response, from Push Kit's "Sending Downlink Messages" result
# codes, mapped to our outcome. 80100000 (partial success) is handled on its own.
ERROR_CODES: dict[str, Outcome] = {
    "80100001": Outcome.PERMANENT,  # a parameter is missing or invalid
    "80100003": Outcome.PERMANENT,  # the message structure is wrong
    "80100004": Outcome.PERMANENT,  # the TTL is earlier than now
    "80100013": Outcome.PERMANENT,  # collapse_key is invalid
    "80100016": Outcome.PERMANENT,  # the message contains sensitive words
    "80100017": Outcome.RETRYABLE,  # more than 100 topic tasks are running
    "80100018": Outcome.PERMANENT,  # the review signature does not match
    "80200001": Outcome.CONFIGURATION,  # OAuth authentication failed
    # The adapter fetches a new token and resends once, so a second one is a
    # configuration error.
    TOKEN_EXPIRED: Outcome.CONFIGURATION,
    "80300002": Outcome.CONFIGURATION,  # the app may not send push messages
    # Every token in the request is invalid. NOTE: Push Kit also returns this code
    # when the tokens belong to another app, so a wrong app_id deactivates devices.
    "80300007": Outcome.INVALID_ADDRESS,
    "80300008": Outcome.PERMANENT,  # the body exceeds 4096 bytes, tokens excluded
    "80300010": Outcome.PERMANENT,  # more tokens than a request may carry
    "80300011": Outcome.CONFIGURATION,  # no permission for high-urgency messages
    "80300013": Outcome.CONFIGURATION,  # the receipt URL is invalid
    "80600003": Outcome.CONFIGURATION,  # the OAuth service rejected the client
    "81000001": Outcome.RETRYABLE,  # internal error
}
# Used when the body carries no known code, such as a flow control response.
STATUS_CODES: dict[int, Outcome] = {
    400: Outcome.PERMANENT,
    401: Outcome.CONFIGURATION,
    403: Outcome.CONFIGURATION,
    404: Outcome.CONFIGURATION,
    429: Outcome.RETRYABLE,
}

# Receipt states from Push Kit's message receipt guide. Any other state is a failure.
RECEIPT_DELIVERED = 0
RECEIPT_APP_NOT_INSTALLED = 2
RECEIPT_STATES = {
    2: "the app is not installed",
    5: "the token does not belong to the current Android user",
    6: "notification messages are not displayed",
    10: "the device has not connected to Push Kit for 30 days",
}


class TokenFetchError(Exception):
    def __init__(self, outcome: Outcome, code: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.code = code


def classify(status: int, code: str) -> Outcome:
    outcome = ERROR_CODES.get(code)
    if outcome is None:
        outcome = STATUS_CODES.get(
            status, Outcome.RETRYABLE if status >= 500 else Outcome.PERMANENT
        )
    return outcome


def retry_after_seconds(header: str | None) -> float | None:
    try:
        return max(float(header), 0.0) if header else None
    except ValueError:
        return None


def illegal_tokens(msg: Any) -> set[str]:
    """Return the tokens that a partial success response lists as invalid.

    Push Kit puts a JSON document into the `msg` string, such as
    {"success": 1, "failure": 1, "illegal_tokens": ["..."]}.
    """
    try:
        detail = json.loads(msg) if isinstance(msg, str) else msg
    except ValueError:
        return set()
    if not isinstance(detail, dict):
        return set()
    return {str(token) for token in detail.get("illegal_tokens") or []}


class HuaweiProvider(Provider):
    key = "huawei"
    kinds = ("app",)
    address_kinds = ("huawei",)
    required_config = ("app_id",)
    optional_config = ("base_url", "token_url", "receipt_id", "callback_username")
    required_credentials = ("client_secret",)
    # The receipt configuration's callback key, which signs X-HUAWEI-CALLBACK-ID.
    optional_credentials = ("callback_key",)

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        if bool(config.get("callback_username")) != bool(credentials.get("callback_key")):
            errors["credentials.callback_key"] = (
                "Set config.callback_username and credentials.callback_key together, "
                "as in the receipt configuration in AppGallery Connect."
            )
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.app_id = str(config["app_id"])
        base_url = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.endpoint = f"{base_url}/v1/{self.app_id}/messages:send"
        self.token_url = config.get("token_url") or DEFAULT_TOKEN_URL
        owner = self.channel_key or f"huawei-{self.app_id}"
        self.token_key = f"{owner}:access-token"
        # Retries belong to the pipeline, and httpx's transport makes none by default.
        self._client = httpx.Client(timeout=timeout)

    # Access token

    def access_token(self) -> str:
        """Return the shared access token; raise TokenFetchError when none is available."""
        try:
            return shared_tokens().get(self.token_key, self._fetch_token)
        except (TokenWaitTimeout, redis.RedisError) as error:
            raise TokenFetchError(Outcome.RETRYABLE, "token_cache_failed", str(error)) from None

    def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.app_id,
            "client_secret": self.credentials["client_secret"],
        }
        try:
            response = self._client.post(self.token_url, data=form)
        except httpx.HTTPError as error:
            raise TokenFetchError(Outcome.RETRYABLE, "token_fetch_failed",
                                  f"token request failed: {type(error).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 200 and body.get("access_token"):
            logger.info("huawei: fetched an access token for app %s", self.app_id)
            try:
                expires_in = float(body.get("expires_in", 3600))
            except (TypeError, ValueError):
                expires_in = 3600.0
            return str(body["access_token"]), expires_in
        description = f"{body.get('error', '')} {body.get('error_description', '')}".strip()
        text = f"token request returned {response.status_code}: {description}"[:500]
        if response.status_code in (400, 401, 403):
            raise TokenFetchError(Outcome.CONFIGURATION, "token_rejected", text)
        raise TokenFetchError(Outcome.RETRYABLE, "token_fetch_failed", text)

    # Request

    def request_body(self, sample: OutgoingMessage, tokens: list[str]) -> dict[str, Any]:
        options = sample.options
        android: dict[str, Any] = {
            "urgency": "HIGH" if sample.priority in ("high", "urgent") else "NORMAL",
        }
        if options.get("ttl_seconds") is not None:
            android["ttl"] = f"{int(options['ttl_seconds'])}s"
        if options.get("collapse_key") is not None:
            android["collapse_key"] = options["collapse_key"]
        bi_tag = options.get("bi_tag") or sample.notification_type
        if bi_tag:
            android["bi_tag"] = str(bi_tag)
        if self.config.get("receipt_id"):
            android["receipt_id"] = self.config["receipt_id"]
        if sample.title or sample.body:
            android["notification"] = self.notification(sample)
        message: dict[str, Any] = {"token": tokens, "android": android}
        if sample.data:
            # Push Kit takes the data as one string, which the app parses.
            message["data"] = json.dumps(sample.data, ensure_ascii=False)
        return {"validate_only": False, "message": message}

    @staticmethod
    def notification(message: OutgoingMessage) -> dict[str, Any]:
        options = message.options
        notification: dict[str, Any] = {
            "title": message.title,
            "body": message.body,
            "click_action": click_action(options.get("click_action")),
        }
        for name in ("icon", "sound", "image"):
            if options.get(name):
                notification[name] = options[name]
        if options.get("badge") is not None and options.get("badge_class"):
            notification["badge"] = {
                "set_num": int(options["badge"]),
                "class": options["badge_class"],
            }
        return notification

    # Sending

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for group in group_by_content(messages):
            for start in range(0, len(group), MAX_TOKENS_PER_REQUEST):
                results.extend(self._send_chunk(group[start : start + MAX_TOKENS_PER_REQUEST]))
        return results

    def _send_chunk(self, chunk: list[OutgoingMessage]) -> list[SendResult]:
        try:
            token = self.access_token()
        except TokenFetchError as error:
            return self._token_failed(chunk, error)
        results = self._post(chunk, token)
        if results[0].error_code != TOKEN_EXPIRED:
            return results
        # The shared token was revoked or outlived its expires_in, so fetch a new one
        # and resend once.
        logger.warning("huawei: access token for app %s expired, fetching a new one",
                       self.app_id)
        try:
            shared_tokens().drop(self.token_key, token)
        except redis.RedisError as error:
            logger.error("huawei: dropping the expired access token failed: %s", error)
        try:
            token = self.access_token()
        except TokenFetchError as error:
            return self._token_failed(chunk, error)
        return self._post(chunk, token)

    @staticmethod
    def _token_failed(chunk: list[OutgoingMessage], error: TokenFetchError) -> list[SendResult]:
        logger.error("huawei: fetching the access token failed (%s): %s", error.code, error)
        return [SendResult(m.record_id, error.outcome, error_code=error.code,
                           error_message=str(error)) for m in chunk]

    def _post(self, chunk: list[OutgoingMessage], token: str) -> list[SendResult]:
        try:
            body = self.request_body(chunk[0], [m.address for m in chunk])
        except (TypeError, ValueError) as error:
            text = f"the message cannot be encoded: {error}"[:500]
            return [SendResult(m.record_id, Outcome.PERMANENT, error_code="invalid_options",
                               error_message=text) for m in chunk]
        headers = {"Authorization": f"Bearer {token}",
                   "Content-Type": "application/json;charset=UTF-8"}
        try:
            response = self._client.post(self.endpoint, content=json.dumps(body).encode(),
                                         headers=headers)
        except httpx.HTTPError as error:
            return [SendResult(m.record_id, Outcome.RETRYABLE, error_code="network",
                               error_message=str(error)[:500] or type(error).__name__)
                    for m in chunk]
        try:
            reply = response.json()
        except ValueError:
            reply = {}
        if not isinstance(reply, dict):
            reply = {}
        return self._results(chunk, response, reply)

    def _results(self, chunk: list[OutgoingMessage], response: httpx.Response,
                 reply: dict[str, Any]) -> list[SendResult]:
        code = str(reply.get("code") or response.status_code)
        request_id = str(reply.get("requestId") or "")
        if code in (SUCCESS, PARTIAL_SUCCESS):
            invalid = illegal_tokens(reply.get("msg")) if code == PARTIAL_SUCCESS else set()
            return [self._accepted(m, request_id, m.address in invalid) for m in chunk]
        outcome = classify(response.status_code, code)
        text = f"Push Kit returned {code}: {reply.get('msg', '')}".strip(": ")[:500]
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return [SendResult(m.record_id, outcome, provider_message_id=request_id,
                           error_code=code, error_message=text, retry_after=retry_after,
                           response_data={"status": response.status_code}) for m in chunk]

    @staticmethod
    def _accepted(message: OutgoingMessage, request_id: str, invalid: bool) -> SendResult:
        if invalid:
            return SendResult(message.record_id, Outcome.INVALID_ADDRESS,
                              provider_message_id=request_id, error_code="illegal_token",
                              error_message="Push Kit listed the token as illegal")
        return SendResult(message.record_id, Outcome.SENT, provider_message_id=request_id)

    # Delivery receipts

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        """Check the X-HUAWEI-CALLBACK-ID signature and parse a receipt (version 1).

        Raises CallbackRejected without a configured callback user name and key, and
        for a missing, stale or wrong signature.
        """
        self.check_signature(request.headers.get("X-HUAWEI-CALLBACK-ID", ""))
        try:
            statuses = json.loads(request.body).get("statuses")
        except (ValueError, AttributeError):
            statuses = None
        receipts = [receipt for receipt in map(self.receipt, statuses or []) if receipt]
        # NOTE: the receipt API documents errno and errmsg strings in the response but
        # no values for success, so "0" and "success" are an assumption.
        response = JsonResponse({"errno": "0", "errmsg": "success"})
        return CallbackResult(receipts, response)

    def check_signature(self, header: str) -> None:
        """Raise CallbackRejected unless the header's value is the expected HMAC.

        Push Kit signs timestamp + nonce + callback user name with HMAC-SHA256 and the
        callback key, and sends `timestamp=...; nonce=...; value=<base64>`.
        NOTE: the signature does not cover the body, so the timestamp window is the
        only limit on replaying a captured header with another body.
        """
        username = self.config.get("callback_username") or ""
        key = self.credentials.get("callback_key") or ""
        if not username or not key:
            raise CallbackRejected("config.callback_username and credentials.callback_key "
                                   "must be set to accept receipts")
        fields = dict(part.strip().partition("=")[::2] for part in header.split(";") if part)
        timestamp, nonce, value = (fields.get(name, "") for name in ("timestamp", "nonce", "value"))
        if not (timestamp.isdigit() and nonce and value):
            raise CallbackRejected("missing or malformed X-HUAWEI-CALLBACK-ID header")
        # Current documents give the timestamp in milliseconds, older ones in seconds.
        signed_at = int(timestamp) / 1000 if len(timestamp) > 11 else int(timestamp)
        if abs(time.time() - signed_at) > CALLBACK_MAX_SKEW_SECONDS:
            raise CallbackRejected("the X-HUAWEI-CALLBACK-ID timestamp is too old")
        digest = hmac.new(key.encode(), f"{timestamp}{nonce}{username}".encode(),
                          hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), value):
            raise CallbackRejected("the X-HUAWEI-CALLBACK-ID value does not match")

    def receipt(self, status: Any) -> Receipt | None:
        if not isinstance(status, dict) or not status.get("requestId"):
            return None
        # A project-level receipt URL also receives the receipts of the project's other apps.
        if status.get("appid") not in (None, "", self.app_id):
            return None
        occurred_at = None
        if isinstance(status.get("timestamp"), int):
            occurred_at = datetime.fromtimestamp(status["timestamp"] / 1000, UTC)
        common = {"provider_message_id": str(status["requestId"]),
                  "address": str(status.get("token") or ""), "occurred_at": occurred_at}
        state = status.get("status")
        if state == RECEIPT_DELIVERED:
            return Receipt(event=ReceiptEvent.DELIVERED, **common)
        text = RECEIPT_STATES.get(state) if isinstance(state, int) else None
        return Receipt(
            event=ReceiptEvent.FAILED, error_code=str(state),
            error_message=text or "Push Kit reported a failed delivery",
            invalid_address=state == RECEIPT_APP_NOT_INSTALLED, **common,
        )

    def close(self) -> None:
        self._client.close()


def click_action(target: Any) -> dict[str, Any]:
    """Build android.notification.click_action.

    Type 1 opens an intent or an action, type 2 a URL and type 3 the app.
    """
    if not target:
        return {"type": 3}
    target = str(target)
    if target.startswith(("https://", "http://")):
        return {"type": 2, "url": target}
    if target.startswith("intent:") or "#Intent;" in target:
        return {"type": 1, "intent": target}
    return {"type": 1, "action": target}


def group_by_content(messages: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
    """Group messages that can share one request: all but the address is equal."""
    groups: dict[str, list[OutgoingMessage]] = defaultdict(list)
    for message in messages:
        content = json.dumps(
            [message.title, message.body, message.data, message.priority,
             message.notification_type, message.options],
            sort_keys=True, default=str,
        )
        groups[content].append(message)
    return list(groups.values())
