"""Firebase Cloud Messaging over the HTTP v1 API.

pyfcm builds the request body, and google-auth fetches the OAuth token from the
service account's `token_uri`. The requests go out concurrently over one aiohttp
connection pool, because the v1 API takes one message per request. pyfcm's own send
path is not used: it sleeps and recurses without bound on Retry-After and on expired
tokens, and retries belong to our pipeline.
"""
import asyncio
import functools
import json
import logging
import threading
import time
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import google.auth.transport.requests
from google.auth.exceptions import GoogleAuthError, RefreshError
from google.oauth2 import service_account
from pyfcm import FCMNotification
from redis.exceptions import RedisError
from requests.adapters import HTTPAdapter

from channels_app.providers import aio
from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult
from channels_app.providers.tokens import TokenWaitTimeout, shared_tokens

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/firebase.messaging"]
# FCM documents a minimum of one minute before retrying QUOTA_EXCEEDED without Retry-After.
QUOTA_RETRY_SECONDS = 60.0

# errorCode from the FcmError detail of an error body, mapped to our outcome.
ERROR_CODES: dict[str, Outcome] = {
    "UNREGISTERED": Outcome.INVALID_ADDRESS,
    "SENDER_ID_MISMATCH": Outcome.INVALID_ADDRESS,
    "INVALID_ARGUMENT": Outcome.PERMANENT,
    "QUOTA_EXCEEDED": Outcome.RETRYABLE,
    "UNAVAILABLE": Outcome.RETRYABLE,
    "INTERNAL": Outcome.RETRYABLE,
    "UNSPECIFIED_ERROR": Outcome.RETRYABLE,
    "THIRD_PARTY_AUTH_ERROR": Outcome.CONFIGURATION,
}
# Used when the body carries no errorCode.
STATUS_CODES: dict[int, Outcome] = {
    400: Outcome.PERMANENT,
    401: Outcome.CONFIGURATION,
    403: Outcome.CONFIGURATION,
    404: Outcome.INVALID_ADDRESS,
    429: Outcome.RETRYABLE,
}


def parse_error(status: int, body: str) -> tuple[str, str]:
    """Return (errorCode or HTTP status name, message) from an FCM error body."""
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        return str(status), body[:500]
    code = error.get("status") or str(status)
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            code = detail["errorCode"]
    return code, str(error.get("message", ""))[:500]


def classify(status: int, body: str) -> tuple[Outcome, str, str]:
    code, message = parse_error(status, body)
    outcome = ERROR_CODES.get(code)
    if outcome is None:
        outcome = STATUS_CODES.get(status, Outcome.RETRYABLE if status >= 500 else Outcome.PERMANENT)
    if code == "INVALID_ARGUMENT" and "registration token" in message.lower():
        outcome = Outcome.INVALID_ADDRESS
    return outcome, code, message


def retry_after_seconds(header: str | None, code: str) -> float | None:
    """Return the Retry-After delay in seconds, given as seconds or as an HTTP-date."""
    if header:
        try:
            return max(float(header), 0.0)
        except ValueError:
            pass
        try:
            return max(parsedate_to_datetime(header).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            pass
    return QUOTA_RETRY_SECONDS if code == "QUOTA_EXCEEDED" else None


def string_map(data: dict[str, Any]) -> dict[str, str]:
    """FCM's data field is a map of strings; encode other values as JSON."""
    return {
        str(key): value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for key, value in data.items()
    }


def token_failure(error: Exception) -> tuple[Outcome, str]:
    """Classify a failed OAuth token fetch as (outcome, error code).

    google-auth raises a non-retryable RefreshError when the token endpoint rejects
    the grant (for example invalid_grant for a revoked key or a wrong client_email),
    and TransportError when the endpoint cannot be reached.
    """
    if isinstance(error, RefreshError) and not error.retryable:
        return Outcome.CONFIGURATION, "token_rejected"
    return Outcome.RETRYABLE, "token_fetch_failed"


# RedisError: the shared token store is unreachable; the send is retried later.
TOKEN_ERRORS = (GoogleAuthError, ValueError, OSError, TokenWaitTimeout, RedisError)


class FcmProvider(Provider):
    key = "fcm"
    kinds = ("app",)
    address_kinds = ("fcm",)
    required_config = ("project_id",)
    required_credentials = ("service_account",)
    object_credentials = ("service_account",)
    optional_config = ("base_url", "token_uri", "concurrency")

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        account = credentials.get("service_account")
        if "credentials.service_account" not in errors:
            if not isinstance(account, dict):
                errors["credentials.service_account"] = "Must be the service account JSON object."
            else:
                missing = [
                    name for name in ("client_email", "private_key", "token_uri")
                    if not account.get(name)
                ]
                if missing and not (missing == ["token_uri"] and config.get("token_uri")):
                    errors["credentials.service_account"] = (
                        "Missing keys: " + ", ".join(missing) + "."
                    )
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        account = dict(credentials["service_account"])
        if config.get("token_uri"):
            account["token_uri"] = config["token_uri"]
        try:
            self._credentials = service_account.Credentials.from_service_account_info(
                account, scopes=SCOPES
            )
        except (ValueError, KeyError) as error:
            raise ValueError(f"invalid FCM service account: {error}") from None
        # pyfcm only builds payloads here; its retrying adapter is switched off anyway.
        self._fcm = FCMNotification(
            credentials=self._credentials,
            project_id=config["project_id"],
            adapter=HTTPAdapter(max_retries=0),
        )
        base_url = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        # pyfcm's own endpoint prefers the service account's project_id, but the
        # channel's project_id wins: an account may be granted access to another project.
        self.endpoint = f"{base_url}/v1/projects/{config['project_id']}/messages:send"
        self.concurrency = int(config.get("concurrency", 64))
        self._token_lock = threading.Lock()
        # google-auth's own default timeout for the token request is 120 seconds.
        self._token_request = functools.partial(
            google.auth.transport.requests.Request(), timeout=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _fetch_token(self) -> tuple[str, float]:
        with self._token_lock:
            self._credentials.refresh(self._token_request)
            expiry = self._credentials.expiry
            lifetime = 3600.0
            if expiry is not None:
                # google-auth keeps the expiry as a naive UTC time.
                lifetime = expiry.replace(tzinfo=timezone.utc).timestamp() - time.time()
            return self._credentials.token, max(lifetime, 1.0)

    @property
    def token_key(self) -> str:
        return f"{self.channel_key}:fcm-oauth"

    def access_token(self) -> str:
        """Return the OAuth token all workers share, fetching it when none is valid."""
        return shared_tokens().get(self.token_key, self._fetch_token)

    def payload(self, message: OutgoingMessage) -> bytes:
        """Build the v1 message; options may set icon, sound, badge, click_action,
        image, collapse_key, ttl_seconds and channel_id (Android notification channel)."""
        options = message.options
        android_notification = {
            name: str(options[key])
            for key, name in (("icon", "icon"), ("sound", "sound"),
                              ("click_action", "click_action"), ("channel_id", "channel_id"))
            if options.get(key) not in (None, "")
        }
        android: dict[str, Any] = {"priority": "high" if message.priority in ("high", "urgent") else "normal"}
        if android_notification and (message.title or message.body):
            android["notification"] = android_notification
        if options.get("collapse_key"):
            android["collapse_key"] = str(options["collapse_key"])
        if options.get("ttl_seconds") is not None:
            android["ttl"] = f"{int(options['ttl_seconds'])}s"
        aps: dict[str, Any] = {}
        if options.get("badge") is not None:
            aps["badge"] = int(options["badge"])
        if options.get("sound"):
            aps["sound"] = str(options["sound"])
        if options.get("category"):
            aps["category"] = str(options["category"])
        data = dict(message.data)
        if options.get("click_action"):
            # The app reads the deep link from the data on every platform.
            data.setdefault("click_action", options["click_action"])
        webpush = {"fcm_options": {"link": str(options["click_action"])}} if str(
            options.get("click_action", "")).startswith("https://") else None
        return self._fcm.parse_payload(
            fcm_token=message.address,
            notification_title=message.title or None,
            notification_body=message.body or None,
            notification_image=str(options["image"]) if options.get("image") else None,
            data_payload=string_map(data) or None,
            android_config=android,
            apns_config={"payload": {"aps": aps}} if aps else None,
            webpush_config=webpush,
        )

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            token = self.access_token()
        except TOKEN_ERRORS as error:
            return self._token_failed(messages, error)
        results = aio.run(self._send_all(messages, token))

        expired_ids = {r.record_id for r in results if r.error_code == "UNAUTHENTICATED"}
        if not expired_ids:
            return results
        # An OAuth token can be revoked before its expiry: drop it, fetch once, resend.
        expired = [m for m in messages if m.record_id in expired_ids]
        shared_tokens().drop(self.token_key, token)
        try:
            token = self.access_token()
        except TOKEN_ERRORS as error:
            retried = self._token_failed(expired, error)
        else:
            retried = aio.run(self._send_all(expired, token))
        retried_by_id = {r.record_id: r for r in retried}
        return [retried_by_id.get(r.record_id, r) for r in results]

    @staticmethod
    def _token_failed(messages: list[OutgoingMessage], error: Exception) -> list[SendResult]:
        outcome, code = token_failure(error)
        logger.error("fcm: fetching the access token failed (%s): %s", code, error)
        return [
            SendResult(m.record_id, outcome, error_code=code, error_message=str(error)[:500])
            for m in messages
        ]

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def _send_all(self, messages: list[OutgoingMessage], token: str) -> list[SendResult]:
        session = await self._client()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        limit = asyncio.Semaphore(self.concurrency)

        async def send_one(message: OutgoingMessage) -> SendResult:
            async with limit:
                return await self._post(session, headers, message)

        return list(await asyncio.gather(*(send_one(m) for m in messages)))

    async def _post(self, session: aiohttp.ClientSession, headers: dict[str, str],
                    message: OutgoingMessage) -> SendResult:
        try:
            payload = self.payload(message)
        except (TypeError, ValueError) as error:
            return SendResult(message.record_id, Outcome.PERMANENT, error_code="invalid_options",
                              error_message=f"the message cannot be encoded: {error}"[:500])
        try:
            async with session.post(self.endpoint, data=payload, headers=headers) as response:
                body = await response.text()
                status = response.status
                retry_header = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as error:
            return SendResult(message.record_id, Outcome.RETRYABLE, error_code="network",
                              error_message=str(error)[:500] or type(error).__name__)
        if status == 200:
            try:
                name = json.loads(body)["name"]
            except (ValueError, KeyError, TypeError):
                return SendResult(message.record_id, Outcome.RETRYABLE, error_code="empty_response",
                                  error_message="FCM returned 200 without a message name")
            return SendResult(message.record_id, Outcome.SENT, provider_message_id=name)
        outcome, code, text = classify(status, body)
        if status == 401 and code != "THIRD_PARTY_AUTH_ERROR":
            code = "UNAUTHENTICATED"
        return SendResult(
            message.record_id, outcome, error_code=code, error_message=text,
            retry_after=retry_after_seconds(retry_header, code),
            response_data={"status": status},
        )

    def close(self) -> None:
        if self._session is not None and not self._session.closed:
            aio.run(self._session.close())
