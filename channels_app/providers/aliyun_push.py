"""Aliyun Mobile Push (EMAS Push, API version 2016-08-01) through its `Push` action.

`Push` is an RPC-style call: every parameter is a flat form field, signed with
signature version 1 (HMAC-SHA1 over the sorted, percent-encoded parameters, keyed
with AccessKeySecret + "&"). One call takes up to 1000 comma-joined device ids in
TargetValue and returns one MessageId for all of them. Each result of a batch gets
that id. `Push` reports no per-device failures and Aliyun documents no
idempotency key, so a retried timeout may push twice.

Options read from OutgoingMessage.options:
- icon: Android large icon URL (AndroidImageUrl).
- sound: AndroidMusic (a raw resource name) or iOSMusic (a sound file name).
- badge: iOSBadge.
- click_action: on Android an http(s) URL opens the page (AndroidOpenType URL),
  anything else names the activity to open (AndroidOpenType ACTIVITY); on iOS it is
  added to iOSExtParameters as `click_action`.
- image: Android big picture (AndroidBigPictureUrl); on iOS iOSMutableContent is set
  and the URL is added to iOSExtParameters as `image`.
- channel_id: Android notification channel (AndroidNotificationChannel).
- collapse_key: AndroidNotificationNotifyId or iOSNotificationCollapseId.
- ttl_seconds: StoreOffline with an ExpireTime that far ahead.
buttons have no field in this API and are ignored. Priority sets
AndroidNotificationBarPriority (-1 low, 0 normal, 2 high and urgent) and the iOS
interruption level (passive for low, time-sensitive for urgent).
"""
import base64
import hashlib
import hmac
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from channels_app.providers import batching
from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://cloudpush.aliyuncs.com"
API_VERSION = "2016-08-01"
MAX_TARGETS = 1000
ANDROID_PRIORITY = {"low": "-1", "normal": "0", "high": "2", "urgent": "2"}
IOS_INTERRUPTION = {"low": "passive", "urgent": "time-sensitive"}

# `Code` from Aliyun's error body, from the product's OpenAPI error table.
ERROR_CODES: dict[str, Outcome] = {
    "Throttling.User": Outcome.RETRYABLE,
    "Throttling.Api": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE,
    "InternalError": Outcome.RETRYABLE,
    # The next attempt signs with a fresh nonce.
    "SignatureNonceUsed": Outcome.RETRYABLE,
    "InvalidParameter": Outcome.PERMANENT,
    "InvalidTarget": Outcome.PERMANENT,
    "InvalidJsonExtParameter": Outcome.PERMANENT,
    "AppLimitExceed": Outcome.PERMANENT,
    "InvalidAccessKeyId.NotFound": Outcome.CONFIGURATION,
    "SignatureDoesNotMatch": Outcome.CONFIGURATION,
    "Forbidden": Outcome.CONFIGURATION,
    "InvalidTimeStamp.Expired": Outcome.CONFIGURATION,
    "InvalidTimeStamp.Format": Outcome.CONFIGURATION,
    "AccountDisabled": Outcome.CONFIGURATION,
    "AccountInDebt": Outcome.CONFIGURATION,
    "AccountNotEnabled": Outcome.CONFIGURATION,
    "AccountNotSupported": Outcome.CONFIGURATION,
    "AccountProhibited": Outcome.CONFIGURATION,
    "AppNotConfigAndroid": Outcome.CONFIGURATION,
    "AppNotConfigIOS": Outcome.CONFIGURATION,
    "AppTypeNotIos": Outcome.CONFIGURATION,
    "CertificateExpired": Outcome.CONFIGURATION,
    "CertificateRevoked": Outcome.CONFIGURATION,
    "CertModeNotMatch": Outcome.CONFIGURATION,
    "ChannelConfigNotConfigured": Outcome.CONFIGURATION,
    "InvalidProduct.NotFound": Outcome.CONFIGURATION,
    "InvalidApi.NotFound": Outcome.CONFIGURATION,
    "InvalidProtocol.NeedSsl": Outcome.CONFIGURATION,
}
# Families of codes with a parameter name inside, checked after ERROR_CODES.
CODE_PREFIXES: tuple[tuple[str, Outcome], ...] = (
    ("Throttling", Outcome.RETRYABLE),
    ("Missing", Outcome.PERMANENT),
    ("Invalid", Outcome.PERMANENT),
)


def classify(status: int, code: str) -> Outcome:
    if code in ERROR_CODES:
        return ERROR_CODES[code]
    for prefix, outcome in CODE_PREFIXES:
        if code.startswith(prefix):
            return outcome
    if status >= 500:
        return Outcome.RETRYABLE
    if status in (401, 403):
        return Outcome.CONFIGURATION
    return Outcome.PERMANENT


def percent_encode(value: str) -> str:
    """Percent-encode with RFC 3986 rules: only A-Z a-z 0-9 - _ . ~ stay literal."""
    return quote(value, safe="-_.~")


def signature(method: str, params: dict[str, str], secret: str) -> str:
    """Return the RPC signature v1 of params (which must not contain Signature)."""
    canonical = "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}" for name in sorted(params)
    )
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunPushProvider(Provider):
    key = "aliyun_push"
    kinds = ("app",)
    address_kinds = ("aliyun_push",)
    required_config = ("app_key",)
    optional_config = ("base_url", "region_id", "apns_env", "channel_id",
                       "high_priority_channel_id")
    required_credentials = ("access_key_id", "access_key_secret")

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        if config.get("apns_env", "PRODUCT") not in ("DEV", "PRODUCT"):
            errors["config.apns_env"] = "Must be DEV or PRODUCT."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.endpoint = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + "/"
        self._client = httpx.Client(timeout=timeout)

    def params(self, batch: list[OutgoingMessage]) -> dict[str, str]:
        """Build the business parameters of one Push call for a batch with equal content."""
        message = batch[0]
        params = {
            "Action": "Push",
            "AppKey": str(self.config["app_key"]),
            "PushType": "NOTICE",
            "Target": "DEVICE",
            "TargetValue": ",".join(m.address for m in batch),
            "Title": message.title,
            "Body": message.body,
        }
        if message.platform == "ios":
            params.update(self.ios(message))
        else:
            params.update(self.android(message))
        ttl = batching.ttl_seconds(message)
        if ttl:
            params["StoreOffline"] = "true"
            params["ExpireTime"] = timestamp(datetime.now(UTC) + timedelta(seconds=ttl))
        return params

    def android(self, message: OutgoingMessage) -> dict[str, str]:
        options = message.options
        params = {
            "DeviceType": "ANDROID",
            "AndroidNotificationBarPriority": ANDROID_PRIORITY.get(message.priority, "0"),
            "AndroidExtParameters": batching.json_string(message.data),
            "AndroidOpenType": "APPLICATION",
        }
        action = str(options.get("click_action") or "")
        if action and batching.is_web_url(action):
            params["AndroidOpenType"] = "URL"
            params["AndroidOpenUrl"] = action
        elif action:
            params["AndroidOpenType"] = "ACTIVITY"
            params["AndroidActivity"] = action
        channel = batching.android_channel(message, self.config)
        if channel:
            params["AndroidNotificationChannel"] = channel
        if options.get("sound"):
            params["AndroidMusic"] = str(options["sound"])
        if options.get("icon"):
            params["AndroidImageUrl"] = str(options["icon"])
        if options.get("image"):
            params["AndroidBigPictureUrl"] = str(options["image"])
        if options.get("collapse_key"):
            params["AndroidNotificationNotifyId"] = str(
                batching.notify_id(str(options["collapse_key"]))
            )
        return params

    def ios(self, message: OutgoingMessage) -> dict[str, str]:
        options = message.options
        extras = dict(message.data)
        params = {
            "DeviceType": "iOS",
            "iOSApnsEnv": str(self.config.get("apns_env") or "PRODUCT"),
        }
        if message.priority in IOS_INTERRUPTION:
            params["iOSInterruptionLevel"] = IOS_INTERRUPTION[message.priority]
        if options.get("sound"):
            params["iOSMusic"] = str(options["sound"])
        if options.get("badge") not in (None, ""):
            params["iOSBadge"] = str(int(options["badge"]))
        if options.get("collapse_key"):
            params["iOSNotificationCollapseId"] = str(options["collapse_key"])[:64]
        if options.get("click_action"):
            extras["click_action"] = str(options["click_action"])
        if options.get("image"):
            params["iOSMutableContent"] = "true"
            extras["image"] = str(options["image"])
        params["iOSExtParameters"] = batching.json_string(extras)
        return params

    def signed(self, params: dict[str, str]) -> dict[str, str]:
        """Add the common and signature parameters, then the Signature itself."""
        signed = {
            **params,
            "Format": "JSON",
            "Version": API_VERSION,
            "RegionId": str(self.config.get("region_id") or "cn-hangzhou"),
            "AccessKeyId": str(self.credentials["access_key_id"]),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": timestamp(datetime.now(UTC)),
        }
        signed["Signature"] = signature(
            "POST", signed, str(self.credentials["access_key_secret"])
        )
        return signed

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        batches = batching.group_batches(messages, MAX_TARGETS)
        return batching.send_batches(batches, self._send_batch)

    def _send_batch(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        try:
            params = self.params(batch)
        except (TypeError, ValueError) as error:
            return batching.invalid_options(batch, error)
        try:
            response = self._client.post(self.endpoint, data=self.signed(params))
        except httpx.HTTPError as error:
            return batching.network_failure(batch, error)
        try:
            reply = response.json()
        except ValueError:
            reply = {}
        if not isinstance(reply, dict):
            reply = {}
        if response.status_code == 200:
            if not reply.get("MessageId"):
                return batching.results_for(
                    batch, Outcome.RETRYABLE, error_code="empty_response",
                    error_message="Aliyun returned 200 without a MessageId",
                )
            return batching.results_for(
                batch, Outcome.SENT, provider_message_id=str(reply["MessageId"])
            )

        code = str(reply.get("Code") or response.status_code)
        text = str(reply.get("Message") or response.text)[:500]
        logger.warning("aliyun_push: Push of %d messages failed with HTTP %s, %s (request %s)",
                       len(batch), response.status_code, code, reply.get("RequestId", ""))
        return batching.results_for(
            batch, classify(response.status_code, code), error_code=code,
            error_message=text,
            response_data={"status": response.status_code,
                           "request_id": str(reply.get("RequestId", ""))},
        )

    def close(self) -> None:
        self._client.close()
