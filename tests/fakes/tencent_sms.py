"""A local fake of Tencent Cloud SMS, API 3.0 version 2021-01-11, action SendSms.

It takes ``POST /`` with a JSON body and the X-TC-* headers. It recomputes the
TC3-HMAC-SHA256 signature from the received content-type, host and body, and
rejects a timestamp more than five minutes off. It checks the SmsSdkAppId, the
approved templates and sign names, at most 200 numbers of one region, and string
template parameters. Like Tencent it responds with HTTP 200 and either a status
per number or Response.Error.

Outcomes are scripted per number in E.164 form. A code that concerns one number
(a per-number limit, a bad number) appears in that number's SendStatusSet entry.
Any other code fails the whole request, as Tencent does.

``reply()`` builds the JSON object that Tencent posts to the reply callback URL when
a recipient replies to a message.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.http import (
    BAD_GATEWAY,
    SUCCESS,
    FakeHttpServer,
    ReceivedRequest,
    bad_gateway,
    billed_parts,
)

MAX_NUMBERS = 200
TIMESTAMP_WINDOW_SECONDS = 300
AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P<service>\w+)/tc3_request, SignedHeaders=(?P<headers>[a-z;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)

MESSAGES: dict[str, str] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": "单个手机号30秒内下发短信条数超过设定的上限",
    "LimitExceeded.PhoneNumberOneHourLimit": "单个手机号1小时内下发短信条数超过设定的上限",
    "LimitExceeded.PhoneNumberDailyLimit": "单个手机号日下发短信条数超过设定的上限",
    "LimitExceeded.PhoneNumberSameContentDailyLimit": "单个手机号下发相同内容超过设定的上限",
    "LimitExceeded.DeliveryFrequencyLimit": "下发短信命中了频率限制策略",
    "LimitExceeded.AppDailyLimit": "业务短信日下发条数超过设定的上限",
    "LimitExceeded.DailyLimit": "短信日下发条数超过设定的上限",
    "LimitExceeded.AppMainlandChinaDailyLimit": "业务短信国内日下发条数超过设定的上限",
    "LimitExceeded.AppGlobalDailyLimit": "业务短信国际/港澳台日下发条数超过设定的上限",
    "LimitExceeded.PhoneNumberCountLimit": "调用接口单次提交的手机号个数超过200个",
    "InvalidParameterValue.IncorrectPhoneNumber": "手机号格式错误",
    "FailedOperation.PhoneNumberInBlacklist": "手机号在免打扰名单库中",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": "群发请求里既有国内手机号也有国际手机号",
    "InvalidParameterValue.TemplateParameterFormatError": "验证码模板参数格式错误",
    "InvalidParameterValue.TemplateParameterLengthLimit": "单个模板变量字符数超过12个",
    "InvalidParameterValue.ContentLengthLimit": "请求的短信内容太长",
    "FailedOperation.ContainSensitiveWord": "短信内容中含有敏感词",
    "FailedOperation.SignatureIncorrectOrUnapproved": "签名未审批或格式错误",
    "FailedOperation.TemplateIncorrectOrUnapproved": "模板未审批或请求的内容与审核通过的模板内容不匹配",
    "FailedOperation.InsufficientBalanceInSmsPackage": "套餐包余量不足",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "SmsSdkAppId 校验失败",
    "UnauthorizedOperation.RequestIpNotInWhitelist": "请求 IP 不在白名单中",
    "UnauthorizedOperation.SerivceSuspendDueToArrears": "欠费被停止服务",
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. "
    "Please check your signature is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp is not within 5 minutes "
    "of the server time.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your "
    "SecretId is correct.",
    "AuthFailure.InvalidAuthorization": "Authorization header is invalid.",
    "AuthFailure.UnauthorizedOperation": "The request is not authorized.",
    "InternalError.Timeout": "请求下发短信超时",
    "InternalError.SendAndRecvFail": "接口超时或短信收发包超时",
    "InternalError": "内部错误",
    "RequestLimitExceeded": "请求的次数超过了频率限制",
}
# Codes that Tencent reports in one number's SendStatusSet entry.
PER_NUMBER = frozenset(
    {
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "FailedOperation.ContainSensitiveWord",
    }
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_sha256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Delivery:
    number: str
    serial_no: str
    text: str
    template_id: str


class FakeTencentSms(FakeHttpServer):
    name = "fake-tencent-sms"
    outcomes = frozenset(MESSAGES) | {SUCCESS, BAD_GATEWAY}

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.secret_id = "AKID" + secrets.token_hex(16)
        self.secret_key = secrets.token_urlsafe(24)
        self.sms_sdk_app_id = "1400" + str(secrets.randbelow(10**6)).zfill(6)
        self.sign_names = {"分享栈"}
        # Approved templates: id to text with {1}, {2}... placeholders.
        self.templates: dict[str, str] = {"449739": "您的验证码是{1}，{2}分钟内有效。"}
        self.deliveries: list[Delivery] = []
        self._serials = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    @staticmethod
    def reply(
        mobile: str, text: str, nationcode: str = "86", sent: int = 1781064000
    ) -> dict[str, Any]:
        """Build a reply callback; sent is the Unix time the recipient replied."""
        return {
            "extend": "",
            "mobile": mobile,
            "nationcode": nationcode,
            "sign": "分享栈",
            "text": text,
            "time": sent,
        }

    @staticmethod
    def _error(code: str, message: str | None = None) -> web.Response:
        body = {
            "Response": {
                "Error": {"Code": code, "Message": message or MESSAGES.get(code, code)},
                "RequestId": str(uuid.uuid4()),
            }
        }
        return web.json_response(body)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            fields = json.loads(raw)
        except ValueError:
            fields = {}
        response = self._answer(
            request, raw, fields if isinstance(fields, dict) else {}
        )
        self.record(
            ReceivedRequest(
                request.method,
                request.path,
                dict(request.headers),
                raw,
                fields if isinstance(fields, dict) else {},
                response.status,
            )
        )
        return response

    def _answer(
        self, request: web.Request, raw: bytes, fields: dict[str, Any]
    ) -> web.Response:
        if request.method != "POST" or request.path != "/":
            return self._error("UnsupportedProtocol", "Only POST / is supported.")
        problem = self._check_signature(request, raw)
        if problem is not None:
            return problem
        if request.headers.get("X-TC-Action") != "SendSms":
            return self._error("InvalidAction", "The action is not supported.")
        if request.headers.get("X-TC-Version") != "2021-01-11":
            return self._error("NoSuchVersion", "The API version does not exist.")
        if not request.headers.get("X-TC-Region"):
            return self._error(
                "MissingParameter", "The request is missing X-TC-Region."
            )
        return self._send(fields)

    def _check_signature(self, request: web.Request, raw: bytes) -> web.Response | None:
        match = AUTHORIZATION.match(request.headers.get("Authorization", ""))
        if match is None:
            return self._error("AuthFailure.InvalidAuthorization")
        if match["id"] != self.secret_id:
            return self._error("AuthFailure.SecretIdNotFound")
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            return self._error("AuthFailure.InvalidAuthorization")
        if abs(time.time() - timestamp) > TIMESTAMP_WINDOW_SECONDS:
            return self._error("AuthFailure.SignatureExpire")

        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match["date"] != date or match["service"] != "sms":
            return self._error("AuthFailure.SignatureFailure")

        names = match["headers"].split(";")
        canonical_headers = "".join(
            f"{name}:{request.headers.get(name, '').strip().lower()}\n"
            for name in names
        )
        canonical_request = "\n".join(
            [
                request.method,
                request.path,
                request.query_string,
                canonical_headers,
                match["headers"],
                sha256_hex(raw),
            ]
        )

        scope = f"{date}/sms/tc3_request"
        string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{sha256_hex(canonical_request.encode())}"

        key = f"TC3{self.secret_key}".encode()
        for part in (date, "sms", "tc3_request"):
            key = hmac_sha256(key, part)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            return self._error("AuthFailure.SignatureFailure")
        return None

    def _send(self, fields: dict[str, Any]) -> web.Response:
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if not fields.get(name):
                return self._error(
                    "MissingParameter", f"The request is missing {name}."
                )
        numbers = fields["PhoneNumberSet"]
        if len(numbers) > MAX_NUMBERS:
            return self._error("LimitExceeded.PhoneNumberCountLimit")
        if not all(re.fullmatch(r"\+\d{6,15}", str(number)) for number in numbers):
            # A malformed number fails the whole request, without naming the number.
            return self._error("InvalidParameterValue.IncorrectPhoneNumber")
        if len({number.startswith("+86") for number in numbers}) > 1:
            return self._error(
                "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"
            )
        if fields["SmsSdkAppId"] != self.sms_sdk_app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail")
        template = self.templates.get(str(fields["TemplateId"]))
        if template is None:
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved")
        sign = fields.get("SignName", "")
        if sign not in self.sign_names:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved")
        params = fields.get("TemplateParamSet") or []
        if not all(isinstance(p, str) for p in params):
            return self._error("InvalidParameterValue.TemplateParameterFormatError")
        if len(params) != template.count("{"):
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved")
        text = f"【{sign}】" + re.sub(
            r"\{(\d+)\}", lambda m: params[int(m[1]) - 1], template
        )

        for number in numbers:
            outcome = self.peek_outcome(number)
            if outcome == BAD_GATEWAY:
                self.next_outcome(number)
                return bad_gateway()
            if outcome != SUCCESS and outcome not in PER_NUMBER:
                return self._error(self.next_outcome(number))
        statuses = [
            self._status(number, text, str(fields["TemplateId"])) for number in numbers
        ]
        return web.json_response(
            {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}
        )

    def _status(self, number: str, text: str, template_id: str) -> dict[str, Any]:
        outcome = self.next_outcome(number)
        iso_code = "CN" if number.startswith("+86") else "US"
        if outcome != SUCCESS:
            return {
                "SerialNo": "",
                "PhoneNumber": number,
                "Fee": 0,
                "SessionContext": "",
                "Code": outcome,
                "Message": MESSAGES[outcome],
                "IsoCode": iso_code,
            }
        serial = f"2028:{next(self._serials):019d}"
        with self._lock:
            self.deliveries.append(Delivery(number, serial, text, template_id))
        return {
            "SerialNo": serial,
            "PhoneNumber": number,
            "Fee": billed_parts(text),
            "SessionContext": "",
            "Code": "Ok",
            "Message": "send success",
            "IsoCode": iso_code,
        }
