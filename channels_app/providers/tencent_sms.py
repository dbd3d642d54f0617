"""Tencent Cloud SMS, API 3.0 version 2021-01-11, SendSms with TC3-HMAC-SHA256.

Tencent sends only approved templates, so this adapter cannot append text. A
marketing template must carry its own opt-out text (such as 拒收请回复R).

Options and config read per message:

- template: options.template_id, else config.template_ids[notification_type], else
  config.template_id. Verification codes and marketing pick their templates by type.
- sign name: options.sign_name, else config.sign_name.
- parameters, an ordered list of strings: options.params when it is a list, else
  message.variables taken in the order config.param_order gives for the template.
  param_order is either one list of variable names for every template or a map from
  template id to such a list.

Messages that share template, sign name and parameters go out in one request of at
most 200 numbers. Tencent returns a status and a SerialNo for each number, and
the billed part count as Fee.

Status callbacks and replies: set the console's status report URL and its reply
(短信回复) URL to `<callback URL>?token=<credentials.callback_token>`. Tencent does
not sign these callbacks, so the adapter rejects any callback whose token does not
match. Status reports arrive as a JSON array of objects with sid, a reply as one
JSON object with mobile, nationcode and text.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
from django.http import HttpRequest, JsonResponse

from channels_app.providers.base import (
    CallbackResult,
    Outcome,
    OutgoingMessage,
    Provider,
    Receipt,
    ReceiptEvent,
    Reply,
    SendResult,
)
from channels_app.providers.sms_common import (
    as_string,
    check_callback_token,
    check_concurrency,
    china_time,
    chunks_with_unique_addresses,
    run_concurrently,
    template_for,
)
from channels_app.sms import sms_length

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://sms.tencentcloudapi.com"
API_VERSION = "2021-01-11"
SERVICE = "sms"
MAX_NUMBERS = 200
CONTENT_TYPE = "application/json; charset=utf-8"
# Per-number limits span 30 seconds to a day, so each code waits as long as its window.
NUMBER_LIMIT_RETRY_SECONDS = 60.0
DAILY_LIMIT_RETRY_SECONDS = 3600.0

# Code per number in SendStatusSet, or Error.Code for a failed request.
ERROR_CODES: dict[str, Outcome] = {
    # Per-number frequency limits: the number waits, the message does not fail.
    "LimitExceeded.PhoneNumberThirtySecondLimit": Outcome.DEFERRED,
    "LimitExceeded.PhoneNumberOneHourLimit": Outcome.DEFERRED,
    "LimitExceeded.PhoneNumberDailyLimit": Outcome.DEFERRED,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": Outcome.DEFERRED,
    "LimitExceeded.DeliveryFrequencyLimit": Outcome.RETRYABLE,
    "LimitExceeded.AppDailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.DailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.AppMainlandChinaDailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.AppGlobalDailyLimit": Outcome.RETRYABLE,
    "LimitExceeded.PhoneNumberCountLimit": Outcome.PERMANENT,
    "InvalidParameterValue.IncorrectPhoneNumber": Outcome.INVALID_ADDRESS,
    "FailedOperation.PhoneNumberInBlacklist": Outcome.INVALID_ADDRESS,
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": Outcome.PERMANENT,
    "InvalidParameterValue.TemplateParameterFormatError": Outcome.PERMANENT,
    "InvalidParameterValue.TemplateParameterLengthLimit": Outcome.PERMANENT,
    "InvalidParameterValue.ContentLengthLimit": Outcome.PERMANENT,
    "FailedOperation.ContainSensitiveWord": Outcome.PERMANENT,
    "FailedOperation.SignatureIncorrectOrUnapproved": Outcome.CONFIGURATION,
    "FailedOperation.TemplateIncorrectOrUnapproved": Outcome.CONFIGURATION,
    "FailedOperation.InsufficientBalanceInSmsPackage": Outcome.CONFIGURATION,
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": Outcome.CONFIGURATION,
    "UnauthorizedOperation.RequestIpNotInWhitelist": Outcome.CONFIGURATION,
    "UnauthorizedOperation.SerivceSuspendDueToArrears": Outcome.CONFIGURATION,
    "AuthFailure.SignatureFailure": Outcome.CONFIGURATION,
    "AuthFailure.SignatureExpire": Outcome.CONFIGURATION,
    "AuthFailure.SecretIdNotFound": Outcome.CONFIGURATION,
    "AuthFailure.InvalidAuthorization": Outcome.CONFIGURATION,
    "AuthFailure.UnauthorizedOperation": Outcome.CONFIGURATION,
    "InternalError.Timeout": Outcome.RETRYABLE,
    "InternalError.SendAndRecvFail": Outcome.RETRYABLE,
    "InternalError": Outcome.RETRYABLE,
    "RequestLimitExceeded": Outcome.RETRYABLE,
}
RETRY_AFTER = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": NUMBER_LIMIT_RETRY_SECONDS,
    "LimitExceeded.DeliveryFrequencyLimit": NUMBER_LIMIT_RETRY_SECONDS,
    "LimitExceeded.PhoneNumberDailyLimit": DAILY_LIMIT_RETRY_SECONDS,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": DAILY_LIMIT_RETRY_SECONDS,
    "LimitExceeded.AppDailyLimit": DAILY_LIMIT_RETRY_SECONDS,
    "LimitExceeded.DailyLimit": DAILY_LIMIT_RETRY_SECONDS,
    "LimitExceeded.AppMainlandChinaDailyLimit": DAILY_LIMIT_RETRY_SECONDS,
    "LimitExceeded.AppGlobalDailyLimit": DAILY_LIMIT_RETRY_SECONDS,
}


class RequestKey(NamedTuple):
    """The fields that all messages of one SendSms request share."""

    template: str
    sign_name: str
    params: tuple[str, ...]
    # Tencent rejects a request that mixes mainland China and other numbers.
    mainland: bool


def classify(code: str) -> Outcome:
    outcome = ERROR_CODES.get(code)
    if outcome is not None:
        return outcome
    if code.startswith("AuthFailure."):
        return Outcome.CONFIGURATION
    if code.startswith("InternalError."):
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tc3_signature(
    secret_key: str, host: str, body: bytes, timestamp: int, service: str = SERVICE
) -> str:
    """Compute the hex TC3-HMAC-SHA256 signature over content-type and host."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_request = (
        f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\n\n"
        f"content-type;host\n{sha256_hex(body)}"
    )
    string_to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n"
        f"{sha256_hex(canonical_request.encode())}"
    )
    key = f"TC3{secret_key}".encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def is_reply(item: dict[str, Any]) -> bool:
    """Tell a reply callback from a status report, which has sid instead."""
    return bool(item.get("mobile")) and "text" in item and "sid" not in item


def unix_time(value: Any) -> datetime | None:
    """Parse Unix seconds; None when missing or malformed."""
    if isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class TencentSmsProvider(Provider):
    key = "tencent_sms"
    kinds = ("sms",)
    address_kinds = ("phone",)
    required_config = ("sms_sdk_app_id", "sign_name")
    optional_config = (
        "template_ids",
        "template_id",
        "param_order",
        "region",
        "base_url",
        "concurrency",
    )
    required_credentials = ("secret_id", "secret_key")
    optional_credentials = ("callback_token",)

    @classmethod
    def validate(
        cls, config: dict[str, Any], credentials: dict[str, Any]
    ) -> dict[str, str]:
        errors = super().validate(config, credentials)
        check_concurrency(config, errors)
        if not isinstance(config.get("template_ids", {}), dict):
            errors["config.template_ids"] = (
                'Must map notification types to template ids, such as {"login_code": "449739"}.'
            )
        order = config.get("param_order", [])
        if not isinstance(order, (list, dict)):
            errors["config.param_order"] = (
                "Must be a list of variable names, or a map from template id to such a list."
            )
        return errors

    def __init__(
        self,
        config: dict[str, Any],
        credentials: dict[str, Any],
        timeout: float,
        **context: str,
    ) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.endpoint = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + "/"
        self.host = urlsplit(self.endpoint).netloc
        self.concurrency = int(config.get("concurrency", 8))
        self._http = httpx.Client(timeout=timeout)

    # Request building

    def _template(self, message: OutgoingMessage) -> str:
        return template_for(
            message, self.config, "template_id", "template_ids", "template_id"
        )

    def _sign_name(self, message: OutgoingMessage) -> str:
        return str(message.options.get("sign_name") or self.config["sign_name"])

    def _params(self, message: OutgoingMessage, template: str) -> tuple[str, ...]:
        option_params = message.options.get("params")
        if isinstance(option_params, list):
            return tuple(as_string(value) for value in option_params)
        order = self.config.get("param_order") or []
        if isinstance(order, dict):
            order = order.get(template) or []
        return tuple(as_string(message.variables.get(name)) for name in order)

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        groups: dict[RequestKey, list[OutgoingMessage]] = {}
        for message in messages:
            template = self._template(message)
            if not template:
                results.append(
                    SendResult(
                        message.record_id,
                        Outcome.PERMANENT,
                        error_code="template_missing",
                        error_message=f"no Tencent template id for notification type "
                        f"{message.notification_type!r}",
                    )
                )
                continue
            key = RequestKey(
                template,
                self._sign_name(message),
                self._params(message, template),
                message.address.startswith("+86"),
            )
            groups.setdefault(key, []).append(message)

        requests = [
            (key, chunk)
            for key, group in groups.items()
            for chunk in chunks_with_unique_addresses(
                group, MAX_NUMBERS, lambda m: m.address
            )
        ]
        for request_results in run_concurrently(
            self._send_request, requests, self.concurrency
        ):
            results.extend(request_results)
        return results

    def _send_request(
        self, request: tuple[RequestKey, list[OutgoingMessage]]
    ) -> list[SendResult]:
        key, messages = request
        payload = {
            "PhoneNumberSet": [m.address for m in messages],
            "SmsSdkAppId": str(self.config["sms_sdk_app_id"]),
            "SignName": key.sign_name,
            "TemplateId": key.template,
            "TemplateParamSet": list(key.params),
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = self._http.post(
                self.endpoint, content=body, headers=self._headers(body)
            )
        except httpx.HTTPError as error:
            return self._all(
                messages,
                "network",
                str(error)[:500] or type(error).__name__,
                Outcome.RETRYABLE,
            )
        try:
            answer = response.json()["Response"]
        except (ValueError, KeyError, TypeError):
            outcome = (
                Outcome.RETRYABLE if response.status_code >= 500 else Outcome.PERMANENT
            )
            return self._all(
                messages, f"http_{response.status_code}", response.text[:500], outcome
            )

        error = answer.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code", ""))
            if classify(code) == Outcome.CONFIGURATION:
                logger.error("tencent_sms: %s: %s", code, error.get("Message", ""))
            outcome = classify(code)
            if outcome == Outcome.INVALID_ADDRESS and len(messages) > 1:
                # A request-level error does not say which number is wrong, so no
                # contact of a multi-number request is deactivated for it.
                outcome = Outcome.PERMANENT
            return self._all(messages, code, str(error.get("Message", ""))[:500], outcome)
        statuses = {
            str(status.get("PhoneNumber")): status
            for status in answer.get("SendStatusSet") or []
            if isinstance(status, dict)
        }
        return [self._result(m, statuses.get(m.address)) for m in messages]

    def _headers(self, body: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        signature = tc3_signature(
            self.credentials["secret_key"], self.host, body, timestamp
        )
        credential = f"{self.credentials['secret_id']}/{date}/{SERVICE}/tc3_request"
        return {
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": str(self.config.get("region") or "ap-guangzhou"),
            "Authorization": (
                f"TC3-HMAC-SHA256 Credential={credential}, "
                f"SignedHeaders=content-type;host, Signature={signature}"
            ),
        }

    @staticmethod
    def _result(message: OutgoingMessage, status: dict[str, Any] | None) -> SendResult:
        if status is None:
            return SendResult(
                message.record_id,
                Outcome.RETRYABLE,
                error_code="no_status",
                error_message="Tencent returned no status for this number",
            )
        code = str(status.get("Code", ""))
        if code == "Ok":
            fee = status.get("Fee")
            segments = (
                fee
                if isinstance(fee, int) and fee > 0
                else sms_length(message.body).segments
            )
            return SendResult(
                message.record_id,
                Outcome.SENT,
                provider_message_id=str(status.get("SerialNo", "")),
                segments=segments,
            )
        return SendResult(
            message.record_id,
            classify(code),
            error_code=code,
            error_message=str(status.get("Message", ""))[:500],
            retry_after=RETRY_AFTER.get(code),
        )

    @staticmethod
    def _all(
        messages: list[OutgoingMessage],
        code: str,
        text: str,
        outcome: Outcome | None = None,
    ) -> list[SendResult]:
        outcome = outcome or classify(code)
        return [
            SendResult(
                m.record_id,
                outcome,
                error_code=code,
                error_message=text,
                retry_after=RETRY_AFTER.get(code),
            )
            for m in messages
        ]

    # Status reports and replies

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        check_callback_token(request, self.credentials)
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if isinstance(body, dict) and is_reply(body):
            body = [body]
        if not isinstance(body, list):
            return CallbackResult(
                response=JsonResponse(
                    {
                        "result": 1,
                        "errmsg": "the body must be a JSON array of status reports "
                        "or a reply object",
                    },
                    status=400,
                )
            )
        items = [item for item in body if isinstance(item, dict)]
        receipts = [self._receipt(item) for item in items if item.get("sid")]
        replies = [self._reply(item) for item in items if is_reply(item)]
        return CallbackResult(
            receipts, JsonResponse({"result": 0, "errmsg": "OK"}), replies
        )

    @staticmethod
    def _reply(item: dict[str, Any]) -> Reply:
        """Parse one reply callback: mobile, nationcode, text, time, sign, extend."""
        mobile = str(item["mobile"]).strip().removeprefix("+")
        nationcode = str(item.get("nationcode") or "").strip().removeprefix("+")
        return Reply(
            addresses=(f"+{nationcode}{mobile}",),
            text=str(item.get("text") or ""),
            received_at=unix_time(item.get("time")),
        )

    @staticmethod
    def _receipt(report: dict[str, Any]) -> Receipt:
        delivered = report.get("report_status") == "SUCCESS"
        # NOTE: carrier codes such as MK:0001 mix empty numbers with switched-off
        # phones, so a failed report never deactivates the contact.
        return Receipt(
            provider_message_id=str(report["sid"]),
            event=ReceiptEvent.DELIVERED if delivered else ReceiptEvent.FAILED,
            occurred_at=china_time(report.get("user_receive_time")),
            error_code="" if delivered else str(report.get("errmsg") or ""),
            error_message="" if delivered else str(report.get("description") or ""),
        )

    def close(self) -> None:
        self._http.close()
