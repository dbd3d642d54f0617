"""Alibaba Cloud SMS (Dysmsapi 2017-05-25) with RPC signature version 1.0.

Aliyun sends only approved templates, so the text is the template filled with
parameters and this adapter cannot append anything. A marketing template must carry
its own opt-out text (such as 拒收请回复R) in the approved wording.

Options and config read per message:

- template: options.template_code, else config.template_codes[notification_type],
  else config.template_code. Verification codes and marketing therefore pick their
  own approved templates by notification type.
- sign name: options.sign_name, else config.sign_name.
- parameters: options.params, else message.variables, each value sent as a string.

Messages that share template, sign name and parameters go out in one SendSms request
(at most 1000 numbers). Other messages of one template go out through SendBatchSms,
which takes a sign name and parameters per number (at most 100 numbers). Aliyun
returns one Code and one BizId for a whole request, so every record of a request
shares its BizId and the status report names the number.

Status reports and replies: configure the console's HTTP batch push
("HTTP批量推送") of SmsReport and of SmsUp (上行短信) to
`<callback URL>?token=<credentials.callback_token>`. Aliyun does not sign these
pushes, so the adapter rejects any push whose token does not match. Both arrive as
JSON arrays: a status report has biz_id, a reply has content and no biz_id.
"""

import base64
import hashlib
import hmac
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

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

DEFAULT_BASE_URL = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"
SEND_SMS_MAX_NUMBERS = 1000
SEND_BATCH_SMS_MAX_NUMBERS = 100
# Per-number frequency control allows about one verification code a minute.
NUMBER_LIMIT_RETRY_SECONDS = 60.0
DAY_LIMIT_RETRY_SECONDS = 3600.0

# Code from the response body, for business errors (HTTP 200) and gateway errors.
ERROR_CODES: dict[str, Outcome] = {
    # A per-number frequency limit: the number waits, the message does not fail.
    "isv.BUSINESS_LIMIT_CONTROL": Outcome.DEFERRED,
    "isv.DAY_LIMIT_CONTROL": Outcome.RETRYABLE,
    "isv.MONTH_LIMIT_CONTROL": Outcome.CONFIGURATION,
    "isv.MOBILE_NUMBER_ILLEGAL": Outcome.INVALID_ADDRESS,
    "isv.MOBILE_COUNT_OVER_LIMIT": Outcome.PERMANENT,
    "isv.BLACK_KEY_CONTROL_LIMIT": Outcome.PERMANENT,
    "isv.TEMPLATE_MISSING_PARAMETERS": Outcome.PERMANENT,
    "isv.INVALID_JSON_PARAM": Outcome.PERMANENT,
    "isv.PARAM_LENGTH_LIMIT": Outcome.PERMANENT,
    "isv.PARAM_NOT_SUPPORT_URL": Outcome.PERMANENT,
    "isv.INVALID_PARAMETERS": Outcome.PERMANENT,
    "isv.SMS_CONTENT_ILLEGAL": Outcome.PERMANENT,
    "isv.SMS_TEMPLATE_ILLEGAL": Outcome.CONFIGURATION,
    "isv.SMS_SIGNATURE_ILLEGAL": Outcome.CONFIGURATION,
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": Outcome.CONFIGURATION,
    "isv.AMOUNT_NOT_ENOUGH": Outcome.CONFIGURATION,
    "isv.OUT_OF_SERVICE": Outcome.CONFIGURATION,
    "isv.ACCOUNT_ABNORMAL": Outcome.CONFIGURATION,
    "isv.ACCOUNT_NOT_EXISTS": Outcome.CONFIGURATION,
    "isv.PRODUCT_UN_SUBSCRIPT": Outcome.CONFIGURATION,
    "isv.DENY_IP_RANGE": Outcome.CONFIGURATION,
    "isp.RAM_PERMISSION_DENY": Outcome.CONFIGURATION,
    "isp.SYSTEM_ERROR": Outcome.RETRYABLE,
    "SignatureDoesNotMatch": Outcome.CONFIGURATION,
    "InvalidAccessKeyId.NotFound": Outcome.CONFIGURATION,
    "InvalidAccessKeyId.Inactive": Outcome.CONFIGURATION,
    "InvalidTimeStamp.Expired": Outcome.CONFIGURATION,
    "SignatureNonceUsed": Outcome.RETRYABLE,
    "Throttling.User": Outcome.RETRYABLE,
    "Throttling.Api": Outcome.RETRYABLE,
    "Throttling": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE,
}
RETRY_AFTER = {
    "isv.BUSINESS_LIMIT_CONTROL": NUMBER_LIMIT_RETRY_SECONDS,
    "isv.DAY_LIMIT_CONTROL": DAY_LIMIT_RETRY_SECONDS,
}


def classify(status: int, code: str) -> Outcome:
    outcome = ERROR_CODES.get(code)
    if outcome is not None:
        return outcome
    return Outcome.RETRYABLE if status >= 500 or status == 429 else Outcome.PERMANENT


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the RPC signature requires: only A-Z a-z 0-9 - _ . ~ stay."""
    return quote(value, safe="-_.~")


def rpc_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Compute the RPC signature v1.0 (HMAC-SHA1) over every parameter but Signature."""
    canonical = "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}"
        for name in sorted(params)
        if name != "Signature"
    )
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def aliyun_number(address: str) -> str:
    """Write an E.164 number as Aliyun takes it: mainland numbers without +86."""
    if address.startswith("+86"):
        return address[3:]
    return address.removeprefix("+")


def e164_candidates(reported: str) -> list[str]:
    """Return the E.164 numbers a status report's phone_number can stand for.

    Mainland numbers are reported without +86, and 11 digits starting with 1 can
    also be a North American number with its country code, so both are returned.
    """
    digits = reported.strip().removeprefix("+")
    if not digits:
        return []
    if len(digits) == 11 and digits.startswith("1"):
        return [f"+86{digits}", f"+{digits}"]
    return [f"+{digits}"]


class AliyunSmsProvider(Provider):
    key = "aliyun_sms"
    kinds = ("sms",)
    address_kinds = ("phone",)
    required_config = ("sign_name",)
    optional_config = (
        "template_codes",
        "template_code",
        "region_id",
        "base_url",
        "concurrency",
    )
    required_credentials = ("access_key_id", "access_key_secret")
    optional_credentials = ("callback_token",)

    @classmethod
    def validate(
        cls, config: dict[str, Any], credentials: dict[str, Any]
    ) -> dict[str, str]:
        errors = super().validate(config, credentials)
        check_concurrency(config, errors)
        codes = config.get("template_codes", {})
        if not isinstance(codes, dict) or not all(
            isinstance(v, str) for v in codes.values()
        ):
            errors["config.template_codes"] = (
                "Must map notification types to template codes, such as "
                '{"login_code": "SMS_154950909"}.'
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
        self.concurrency = int(config.get("concurrency", 8))
        self._http = httpx.Client(timeout=timeout)

    # Sending

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        requests: list[list[OutgoingMessage]] = []
        by_template: dict[str, list[OutgoingMessage]] = {}
        for message in messages:
            template = template_for(
                message, self.config, "template_code", "template_codes", "template_code"
            )
            if not template:
                results.append(
                    SendResult(
                        message.record_id,
                        Outcome.PERMANENT,
                        error_code="template_missing",
                        error_message=f"no Aliyun template code for notification type "
                        f"{message.notification_type!r}",
                    )
                )
                continue
            by_template.setdefault(template, []).append(message)
        for group in by_template.values():
            requests.extend(self._split(group))
        for batch_results in run_concurrently(
            self._send_request, requests, self.concurrency
        ):
            results.extend(batch_results)
        return results

    def _split(self, group: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        """Split one template's messages into SendSms or SendBatchSms requests."""
        variants = {(self._sign_name(m), self._params(m)) for m in group}
        size = (
            SEND_SMS_MAX_NUMBERS if len(variants) == 1 else SEND_BATCH_SMS_MAX_NUMBERS
        )
        return list(chunks_with_unique_addresses(group, size, lambda m: m.address))

    def _sign_name(self, message: OutgoingMessage) -> str:
        return str(message.options.get("sign_name") or self.config["sign_name"])

    @staticmethod
    def _params(message: OutgoingMessage) -> str:
        params = message.options.get("params")
        if not isinstance(params, dict):
            params = message.variables
        strings = {str(name): as_string(value) for name, value in params.items()}
        return json.dumps(
            strings, ensure_ascii=False, separators=(",", ":"), sort_keys=True
        )

    def _request_params(self, messages: list[OutgoingMessage]) -> dict[str, str]:
        first = messages[0]
        template = template_for(
            first, self.config, "template_code", "template_codes", "template_code"
        )
        signs = [self._sign_name(m) for m in messages]
        params = [self._params(m) for m in messages]
        if len(set(signs)) == 1 and len(set(params)) == 1:
            fields = {
                "Action": "SendSms",
                "PhoneNumbers": ",".join(aliyun_number(m.address) for m in messages),
                "SignName": signs[0],
                "TemplateCode": template,
            }
            if params[0] != "{}":
                fields["TemplateParam"] = params[0]
            return fields
        return {
            "Action": "SendBatchSms",
            "PhoneNumberJson": json.dumps([aliyun_number(m.address) for m in messages]),
            "SignNameJson": json.dumps(signs, ensure_ascii=False),
            "TemplateCode": template,
            "TemplateParamJson": "[" + ",".join(params) + "]",
        }

    def _signed(self, fields: dict[str, str]) -> dict[str, str]:
        params = {
            **fields,
            "Version": API_VERSION,
            "Format": "JSON",
            "AccessKeyId": self.credentials["access_key_id"],
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RegionId": str(self.config.get("region_id") or "cn-hangzhou"),
        }
        params["Signature"] = rpc_signature(
            "POST", params, self.credentials["access_key_secret"]
        )
        return params

    def _send_request(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        fields = self._request_params(messages)
        try:
            response = self._http.post(self.endpoint, data=self._signed(fields))
        except httpx.HTTPError as error:
            return self._all(
                messages,
                Outcome.RETRYABLE,
                "network",
                str(error)[:500] or type(error).__name__,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._all(
                messages,
                classify(response.status_code, ""),
                f"http_{response.status_code}",
                response.text[:500],
            )
        code = str(body.get("Code", ""))
        if response.status_code == 200 and code == "OK":
            return [self._sent(m, str(body.get("BizId", ""))) for m in messages]

        outcome = classify(response.status_code, code)
        if outcome == Outcome.INVALID_ADDRESS and len(messages) > 1:
            # The whole request fails for one bad number without naming it, so the
            # halves are sent again until the bad numbers stand alone.
            logger.info(
                "aliyun_sms: %s for a request of %d numbers; resending in halves",
                code,
                len(messages),
            )
            middle = len(messages) // 2
            return self._send_request(messages[:middle]) + self._send_request(
                messages[middle:]
            )
        if outcome == Outcome.CONFIGURATION:
            logger.error("aliyun_sms: %s: %s", code, body.get("Message", ""))
        results = self._all(messages, outcome, code, str(body.get("Message", ""))[:500])
        for result in results:
            result.retry_after = RETRY_AFTER.get(code)
            result.response_data = {
                "status": response.status_code,
                "request_id": str(body.get("RequestId", "")),
            }
        return results

    def _sent(self, message: OutgoingMessage, biz_id: str) -> SendResult:
        # NOTE: Aliyun reports no part count at send time, so this counts the sign
        # name and the body we rendered, which is an estimate of the approved template.
        text = f"【{self._sign_name(message)}】{message.body}"
        return SendResult(
            message.record_id,
            Outcome.SENT,
            provider_message_id=biz_id,
            segments=sms_length(text).segments,
        )

    @staticmethod
    def _all(
        messages: list[OutgoingMessage], outcome: Outcome, code: str, text: str
    ) -> list[SendResult]:
        return [
            SendResult(m.record_id, outcome, error_code=code, error_message=text)
            for m in messages
        ]

    # Status reports and replies

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        check_callback_token(request, self.credentials)
        try:
            reports = json.loads(request.body)
        except ValueError:
            reports = None
        if not isinstance(reports, list):
            return CallbackResult(
                response=JsonResponse(
                    {"code": 1, "msg": "the body must be a JSON array"}, status=400
                )
            )
        items = [item for item in reports if isinstance(item, dict)]
        receipts = [receipt for item in items for receipt in self._receipts(item)]
        replies = [reply for item in items if (reply := self._reply(item))]
        return CallbackResult(
            receipts,
            JsonResponse(
                {"code": 0, "msg": "接收成功"},
                json_dumps_params={"ensure_ascii": False},
            ),
            replies,
        )

    @staticmethod
    def _reply(item: dict[str, Any]) -> Reply | None:
        """Parse one SmsUp item: phone_number, content, send_time, sign_name, ..."""
        if "biz_id" in item or "content" not in item:
            return None
        addresses = e164_candidates(str(item.get("phone_number") or ""))
        if not addresses:
            return None
        return Reply(
            addresses=tuple(addresses),
            text=str(item["content"] or ""),
            received_at=china_time(item.get("send_time")),
        )

    @staticmethod
    def _receipts(report: dict[str, Any]) -> list[Receipt]:
        """Build one receipt per number the report can mean; one BizId covers a batch."""
        biz_id = str(report.get("biz_id") or "")
        if not biz_id:
            return []
        delivered = report.get("success") is True
        # NOTE: carrier codes such as MK:0001 mix empty numbers with switched-off
        # phones, so a failed report never deactivates the contact.
        return [
            Receipt(
                provider_message_id=biz_id,
                event=ReceiptEvent.DELIVERED if delivered else ReceiptEvent.FAILED,
                address=address,
                occurred_at=china_time(report.get("report_time")),
                error_code="" if delivered else str(report.get("err_code") or ""),
                error_message="" if delivered else str(report.get("err_msg") or ""),
            )
            for address in e164_candidates(str(report.get("phone_number") or ""))
        ]

    def close(self) -> None:
        self._http.close()
