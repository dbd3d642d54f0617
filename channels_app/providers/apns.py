"""Apple Push Notification service over its HTTP/2 provider API with token auth.

Each request carries one notification to one device token, so the adapter sends a
batch as concurrent HTTP/2 streams over one httpx client that lives on the shared
event loop in `aio.py`. The client keeps its connection open between batches.

The provider token is an ES256 JWT signed with the team's .p8 key. Apple rejects a
token older than one hour (403 ExpiredProviderToken) and one that changes more often
than every 20 minutes (429 TooManyProviderTokenUpdates), so every worker shares one
token per channel through `shared_tokens()` and it is replaced after 50 minutes.

Options read from `OutgoingMessage.options`: sound, badge, category, image (adds
mutable-content for a notification service extension), click_action, collapse_key,
ttl (seconds until APNs discards the notification). A payload cannot carry action
buttons: the app registers them under a category id, so `buttons` is not sent and
`category` names the set to show.
"""
import asyncio
import json
import logging
import ssl
import time
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import jwt
import redis

from channels_app.providers import aio
from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult
from channels_app.providers.tokens import TokenWaitTimeout, shared_tokens

logger = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
# cache_seconds() keeps a token for 90% of this, which is 3000 s. That is past Apple's
# 20-minute minimum between token changes and well within its one-hour maximum age.
TOKEN_LIFETIME_SECONDS = 3300.0
# Used when a message sets no ttl: four weeks, the same as FCM's default.
DEFAULT_TTL_SECONDS = 28 * 24 * 3600
PRIORITY_IMMEDIATE = "10"
PRIORITY_POWER_AWARE = "5"

# The `reason` of an APNs error response, from Apple's "Handling notification
# responses from APNs", mapped to our outcome.
ERROR_CODES: dict[str, Outcome] = {
    # 400
    "BadCollapseId": Outcome.PERMANENT,
    "BadDeviceToken": Outcome.INVALID_ADDRESS,
    "BadExpirationDate": Outcome.PERMANENT,
    "BadMessageId": Outcome.PERMANENT,
    "BadPriority": Outcome.PERMANENT,
    "BadTopic": Outcome.CONFIGURATION,
    "DeviceTokenNotForTopic": Outcome.INVALID_ADDRESS,
    "DuplicateHeaders": Outcome.PERMANENT,
    "IdleTimeout": Outcome.RETRYABLE,
    "InvalidPushType": Outcome.PERMANENT,
    "MissingDeviceToken": Outcome.PERMANENT,
    "MissingTopic": Outcome.CONFIGURATION,
    "PayloadEmpty": Outcome.PERMANENT,
    "TopicDisallowed": Outcome.CONFIGURATION,
    # 403
    "BadCertificate": Outcome.CONFIGURATION,
    "BadCertificateEnvironment": Outcome.CONFIGURATION,
    # The adapter replaces the token and resends once. A second one means that our
    # clock or key is wrong.
    "ExpiredProviderToken": Outcome.CONFIGURATION,
    "Forbidden": Outcome.CONFIGURATION,
    "InvalidProviderToken": Outcome.CONFIGURATION,
    "MissingProviderToken": Outcome.CONFIGURATION,
    "UnrelatedKeyIdInToken": Outcome.CONFIGURATION,
    "BadEnvironmentKeyInToken": Outcome.CONFIGURATION,
    # 404, 405
    "BadPath": Outcome.PERMANENT,
    "MethodNotAllowed": Outcome.PERMANENT,
    # 410: the token is no longer active for the topic.
    "ExpiredToken": Outcome.INVALID_ADDRESS,
    "Unregistered": Outcome.INVALID_ADDRESS,
    # 413
    "PayloadTooLarge": Outcome.PERMANENT,
    # 429
    "TooManyProviderTokenUpdates": Outcome.RETRYABLE,
    "TooManyRequests": Outcome.RETRYABLE,
    # 500, 503
    "InternalServerError": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE,
    "Shutdown": Outcome.RETRYABLE,
}
# Used for a reason missing from ERROR_CODES.
STATUS_CODES: dict[int, Outcome] = {
    400: Outcome.PERMANENT,
    403: Outcome.CONFIGURATION,
    404: Outcome.PERMANENT,
    405: Outcome.PERMANENT,
    410: Outcome.INVALID_ADDRESS,
    413: Outcome.PERMANENT,
    429: Outcome.RETRYABLE,
}


def classify(status: int, reason: str) -> Outcome:
    outcome = ERROR_CODES.get(reason)
    if outcome is None:
        outcome = STATUS_CODES.get(
            status, Outcome.RETRYABLE if status >= 500 else Outcome.PERMANENT
        )
    return outcome


def parse_error(status: int, body: bytes) -> tuple[str, dict[str, Any]]:
    """Return the reason and the whole JSON object of an APNs error body."""
    try:
        error = json.loads(body)
    except ValueError:
        return str(status), {}
    if not isinstance(error, dict):
        return str(status), {}
    return str(error.get("reason") or status), error


def failed(messages: list[OutgoingMessage], outcome: Outcome, code: str,
           text: str) -> list[SendResult]:
    return [SendResult(m.record_id, outcome, error_code=code, error_message=text[:500])
            for m in messages]


def retry_after_seconds(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(header).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def unregistered_at(timestamp: Any) -> datetime | None:
    """Convert the 410 body's timestamp (milliseconds since the epoch) to a time."""
    try:
        return datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class ApnsProvider(Provider):
    key = "apns"
    kinds = ("app",)
    address_kinds = ("apns",)
    required_config = ("team_id", "key_id", "bundle_id")
    optional_config = ("base_url", "use_sandbox", "ca_file", "concurrency")
    required_credentials = ("private_key",)

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        key = credentials.get("private_key")
        if "credentials.private_key" not in errors:
            try:
                jwt.encode({"iss": "check"}, key, algorithm="ES256")
            except (ValueError, TypeError, jwt.PyJWTError):
                errors["credentials.private_key"] = (
                    "Must be the PEM text of the .p8 signing key (an EC P-256 key)."
                )
        if "use_sandbox" in config and not isinstance(config["use_sandbox"], bool):
            errors["config.use_sandbox"] = "Must be true or false."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        default_url = SANDBOX_URL if config.get("use_sandbox") else PRODUCTION_URL
        self.base_url = (config.get("base_url") or default_url).rstrip("/")
        self.topic = config["bundle_id"]
        self.concurrency = int(config.get("concurrency", 256))
        # Without a channel key, every adapter for this team and key shares one token.
        owner = self.channel_key or f"apns-{config['team_id']}-{config['key_id']}"
        self.token_key = f"{owner}:provider-token"
        self._verify: ssl.SSLContext | bool = True
        if config.get("ca_file"):
            self._verify = ssl.create_default_context(cafile=config["ca_file"])
        self._client: httpx.AsyncClient | None = None

    # Provider token

    def provider_token(self) -> str:
        """Return the channel's current JWT, signing a new one when none is shared."""
        return shared_tokens().get(self.token_key, self._sign_token)

    def _sign_token(self) -> tuple[str, float]:
        claims = {"iss": self.config["team_id"], "iat": int(time.time())}
        token = jwt.encode(
            claims, self.credentials["private_key"], algorithm="ES256",
            headers={"kid": self.config["key_id"]},
        )
        logger.info("apns: signed a new provider token for key %s", self.config["key_id"])
        return token, TOKEN_LIFETIME_SECONDS

    # Request

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        options = message.options
        aps: dict[str, Any] = {}
        alert = {name: value for name, value in
                 (("title", message.title), ("body", message.body)) if value}
        if alert:
            aps["alert"] = alert
        else:
            aps["content-available"] = 1
        for name in ("sound", "badge", "category"):
            if options.get(name) not in (None, ""):
                aps[name] = options[name]
        if options.get("image"):
            aps["mutable-content"] = 1
        # Custom keys sit next to "aps", where the app reads them from userInfo.
        payload: dict[str, Any] = {key: value for key, value in message.data.items()
                                   if key != "aps"}
        if options.get("image"):
            payload["image"] = options["image"]
        if options.get("click_action"):
            payload["click_action"] = options["click_action"]
        payload["aps"] = aps
        return payload

    def headers(self, message: OutgoingMessage, token: str) -> dict[str, str]:
        background = not (message.title or message.body)
        low = background or message.priority == "low"
        ttl = int(message.options.get("ttl_seconds", DEFAULT_TTL_SECONDS))
        headers = {
            "authorization": f"bearer {token}",
            "apns-topic": self.topic,
            "apns-push-type": "background" if background else "alert",
            "apns-priority": PRIORITY_POWER_AWARE if low else PRIORITY_IMMEDIATE,
            "apns-expiration": str(int(time.time()) + ttl if ttl > 0 else 0),
            "apns-id": str(uuid.uuid4()),
        }
        if message.options.get("collapse_key"):
            headers["apns-collapse-id"] = str(message.options["collapse_key"])
        return headers

    # Sending

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        token, results = self._send_with_token(messages)
        expired = {r.record_id for r in results if r.error_code == "ExpiredProviderToken"}
        if not expired:
            return results

        # APNs found the shared token too old, so replace it for every worker and
        # resend the rejected messages once.
        logger.warning("apns: provider token for key %s expired, signing a new one",
                       self.config["key_id"])
        try:
            shared_tokens().drop(self.token_key, token)
        except redis.RedisError as error:
            logger.error("apns: dropping the expired provider token failed: %s", error)
        _, retried = self._send_with_token([m for m in messages if m.record_id in expired])
        retried_by_id = {r.record_id: r for r in retried}
        return [retried_by_id.get(r.record_id, r) for r in results]

    def _send_with_token(self, messages: list[OutgoingMessage]) -> tuple[str, list[SendResult]]:
        """Send with the shared provider token and return that token with the results."""
        try:
            token = self.provider_token()
        except (ValueError, TypeError, jwt.PyJWTError) as error:
            logger.error("apns: signing the provider token failed: %s", type(error).__name__)
            return "", failed(messages, Outcome.CONFIGURATION, "token_signing_failed",
                              "signing the provider token with credentials.private_key "
                              "failed. Check that it is the PEM text of the .p8 key.")
        except (TokenWaitTimeout, redis.RedisError) as error:
            logger.error("apns: reading the shared provider token failed: %s", error)
            return "", failed(messages, Outcome.RETRYABLE, "token_cache_failed", str(error))
        return token, aio.run(self._send_all(messages, token))

    async def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                http1=False, http2=True, verify=self._verify, timeout=self.timeout,
                base_url=self.base_url,
            )
        return self._client

    async def _send_all(self, messages: list[OutgoingMessage], token: str) -> list[SendResult]:
        client = await self._http()
        limit = asyncio.Semaphore(self.concurrency)

        async def send_one(message: OutgoingMessage) -> SendResult:
            async with limit:
                return await self._post(client, message, token)

        return list(await asyncio.gather(*(send_one(m) for m in messages)))

    async def _post(self, client: httpx.AsyncClient, message: OutgoingMessage,
                    token: str) -> SendResult:
        try:
            body = json.dumps(self.payload(message), ensure_ascii=False,
                              separators=(",", ":")).encode()
            headers = self.headers(message, token)
        except (TypeError, ValueError) as error:
            return SendResult(message.record_id, Outcome.PERMANENT, error_code="invalid_options",
                              error_message=f"the message cannot be encoded: {error}"[:500])
        try:
            response = await client.post(f"/3/device/{message.address}", content=body,
                                         headers=headers)
        except httpx.HTTPError as error:
            return SendResult(message.record_id, Outcome.RETRYABLE, error_code="network",
                              error_message=str(error)[:500] or type(error).__name__)
        apns_id = response.headers.get("apns-id", "")
        if response.status_code == 200:
            return SendResult(message.record_id, Outcome.SENT, provider_message_id=apns_id)
        reason, error = parse_error(response.status_code, response.content)
        response_data: dict[str, Any] = {"status": response.status_code}
        invalid_since = None
        if "timestamp" in error:
            # For 410, the time APNs learned that the token is no longer valid, in
            # milliseconds since the epoch. A device registered after it stays active.
            response_data["timestamp"] = error["timestamp"]
            invalid_since = unregistered_at(error["timestamp"])
        return SendResult(
            message.record_id, classify(response.status_code, reason),
            provider_message_id=apns_id, error_code=reason,
            error_message=f"APNs returned {response.status_code} {reason}",
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            response_data=response_data, invalid_since=invalid_since,
        )

    def close(self) -> None:
        if self._client is not None and not self._client.is_closed:
            aio.run(self._client.aclose())
