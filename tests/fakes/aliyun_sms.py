"""A local fake of Alibaba Cloud SMS (Dysmsapi 2017-05-25), RPC style.

It takes ``POST /`` with form fields and merges query parameters into them, as
Aliyun does. It recomputes the signature version 1.0 (HMAC-SHA1 with the key
``secret&``) from the received parameters. It rejects a Timestamp more than 15
minutes off and a reused SignatureNonce. It serves ``SendSms`` (at most 1000
numbers) and ``SendBatchSms`` (at most 100, with a sign name and parameters each).

Outcomes are scripted per number as it appears on the wire (``13800000000``). One
failing number fails the whole request with its Code, as Aliyun does.

``sms_up()`` builds one item of the SmsUp HTTP batch push, which Aliyun posts as a
JSON array when a recipient replies to a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.fakes.http import (
    BAD_GATEWAY,
    SUCCESS,
    FakeHttpServer,
    ReceivedRequest,
    bad_gateway,
)

MAX_SEND_SMS_NUMBERS = 1000
MAX_SEND_BATCH_NUMBERS = 100
TIMESTAMP_WINDOW = timedelta(minutes=15)
HOST_ID = "dysmsapi.aliyuncs.com"


@dataclass(frozen=True)
class AliyunFailure:
    http_status: int
    message: str


# Business codes come back with HTTP 200; gateway codes with an HTTP error status.
FAILURES: dict[str, AliyunFailure] = {
    "isv.BUSINESS_LIMIT_CONTROL": AliyunFailure(200, "触发分钟级流控Permits:1"),
    "isv.DAY_LIMIT_CONTROL": AliyunFailure(200, "触发日发送限额"),
    "isv.MONTH_LIMIT_CONTROL": AliyunFailure(200, "触发月发送限额"),
    "isv.MOBILE_NUMBER_ILLEGAL": AliyunFailure(200, "非法手机号"),
    "isv.MOBILE_COUNT_OVER_LIMIT": AliyunFailure(200, "手机号码数量超过限制"),
    "isv.BLACK_KEY_CONTROL_LIMIT": AliyunFailure(200, "黑名单管控"),
    "isv.TEMPLATE_MISSING_PARAMETERS": AliyunFailure(200, "模板缺少变量"),
    "isv.INVALID_JSON_PARAM": AliyunFailure(200, "JSON参数不合法，只接受字符串值"),
    "isv.PARAM_LENGTH_LIMIT": AliyunFailure(200, "参数超出长度限制"),
    "isv.PARAM_NOT_SUPPORT_URL": AliyunFailure(200, "不支持URL"),
    "isv.INVALID_PARAMETERS": AliyunFailure(200, "参数异常"),
    "isv.SMS_CONTENT_ILLEGAL": AliyunFailure(200, "短信内容包含禁止发送内容"),
    "isv.SMS_TEMPLATE_ILLEGAL": AliyunFailure(200, "该账号下找不到对应模板"),
    "isv.SMS_SIGNATURE_ILLEGAL": AliyunFailure(200, "该账号下找不到对应签名"),
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": AliyunFailure(200, "签名和模板类型不一致"),
    "isv.AMOUNT_NOT_ENOUGH": AliyunFailure(200, "账户余额不足"),
    "isv.OUT_OF_SERVICE": AliyunFailure(200, "业务停机"),
    "isv.ACCOUNT_ABNORMAL": AliyunFailure(200, "账户异常"),
    "isv.ACCOUNT_NOT_EXISTS": AliyunFailure(200, "账户不存在"),
    "isv.PRODUCT_UN_SUBSCRIPT": AliyunFailure(200, "未开通云通信产品的阿里云客户"),
    "isv.DENY_IP_RANGE": AliyunFailure(200, "源IP地址所在的地区被禁用"),
    "isp.RAM_PERMISSION_DENY": AliyunFailure(200, "RAM权限DENY"),
    "isp.SYSTEM_ERROR": AliyunFailure(200, "系统出现错误，请重新调用"),
    "SignatureDoesNotMatch": AliyunFailure(
        400, "Specified signature does not match our calculation."
    ),
    "InvalidAccessKeyId.NotFound": AliyunFailure(
        404, "Specified access key is not found."
    ),
    "InvalidAccessKeyId.Inactive": AliyunFailure(
        400, "Specified access key is disabled."
    ),
    "InvalidTimeStamp.Expired": AliyunFailure(
        400, "Specified time stamp or date value is expired."
    ),
    "SignatureNonceUsed": AliyunFailure(
        400, "Specified signature nonce was used already."
    ),
    "Throttling.User": AliyunFailure(
        400, "Request was denied due to user flow control."
    ),
    "Throttling.Api": AliyunFailure(400, "Request was denied due to api flow control."),
    "Throttling": AliyunFailure(400, "Request was denied due to flow control."),
    "ServiceUnavailable": AliyunFailure(
        503, "The request has failed due to a temporary failure of the server."
    ),
}
COMMON_FIELDS = (
    "Action",
    "Version",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Signature",
)


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)
    text = "&".join([method, percent_encode("/"), percent_encode(canonical)])
    mac = hmac.new((secret + "&").encode(), text.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True)
class Delivery:
    """One number that the fake accepted."""

    number: str
    biz_id: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    action: str


class FakeAliyunSms(FakeHttpServer):
    name = "fake-aliyun-sms"
    outcomes = frozenset(FAILURES) | {SUCCESS, BAD_GATEWAY}

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.access_key_id = "LTAI" + secrets.token_hex(8)
        self.access_key_secret = secrets.token_urlsafe(24)
        self.deliveries: list[Delivery] = []
        self._nonces: set[str] = set()
        self._biz_ids = itertools.count(900619746936498440)

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    def sms_up(
        self, number: str, content: str, send_time: str = "2026-06-10 12:00:00"
    ) -> dict[str, Any]:
        """Build one SmsUp item; the number is in wire form, mainland without +86."""
        return {
            "phone_number": number,
            "send_time": send_time,
            "content": content,
            "sign_name": "分享栈",
            "dest_code": "1234",
            "sequence_id": next(self._biz_ids),
        }

    @staticmethod
    def _error(code: str, message: str, status: int) -> web.Response:
        body = {
            "RequestId": str(uuid.uuid4()).upper(),
            "HostId": HOST_ID,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
        }
        return web.json_response(body, status=status)

    def _failure(self, code: str) -> web.Response:
        failure = FAILURES[code]
        if failure.http_status != 200:
            return self._error(code, failure.message, failure.http_status)
        body = {
            "RequestId": str(uuid.uuid4()).upper(),
            "Code": code,
            "Message": failure.message,
        }
        return web.json_response(body)

    async def _handle(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        raw = await request.read()
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        response = self._answer(request, params)
        self.record(
            ReceivedRequest(
                request.method,
                request.path,
                dict(request.headers),
                raw,
                params,
                response.status,
            )
        )
        return response

    def _answer(self, request: web.Request, params: dict[str, str]) -> web.Response:
        if request.path != "/":
            return self._error(
                "InvalidAction.NotFound", "Specified api is not found.", 404
            )
        missing = [name for name in COMMON_FIELDS if not params.get(name)]
        if missing:
            return self._error(
                f"Missing{missing[0]}", f"{missing[0]} is mandatory.", 400
            )
        problem = self._check_auth(request.method, params)
        if problem is not None:
            return problem
        if params["Version"] != "2017-05-25":
            return self._error(
                "InvalidVersion", "Specified parameter Version is not valid.", 400
            )
        if params["Action"] == "SendSms":
            return self._send_sms(params)
        if params["Action"] == "SendBatchSms":
            return self._send_batch_sms(params)
        return self._error("InvalidAction.NotFound", "Specified api is not found.", 404)

    def _check_auth(self, method: str, params: dict[str, str]) -> web.Response | None:
        if params["AccessKeyId"] != self.access_key_id:
            return self._failure("InvalidAccessKeyId.NotFound")
        if (
            params["SignatureMethod"] != "HMAC-SHA1"
            or params["SignatureVersion"] != "1.0"
        ):
            return self._error(
                "InvalidSignatureMethod",
                "Specified signature method is not supported.",
                400,
            )
        received = params["Signature"]
        if not hmac.compare_digest(
            received, expected_signature(method, params, self.access_key_secret)
        ):
            return self._failure("SignatureDoesNotMatch")
        try:
            moment = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return self._error(
                "InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400
            )
        if abs(datetime.now(UTC).replace(tzinfo=None) - moment) > TIMESTAMP_WINDOW:
            return self._failure("InvalidTimeStamp.Expired")
        nonce = params["SignatureNonce"]
        with self._lock:
            if nonce in self._nonces:
                return self._failure("SignatureNonceUsed")
            self._nonces.add(nonce)
        return None

    @staticmethod
    def _string_params(text: str) -> dict[str, str] | None:
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(v, str) for v in value.values()
        ):
            return None
        return value

    def _send_sms(self, params: dict[str, str]) -> web.Response:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._error(
                    f"Missing{name}", f"{name} is mandatory for this action.", 400
                )
        numbers = params["PhoneNumbers"].split(",")
        if len(numbers) > MAX_SEND_SMS_NUMBERS:
            return self._failure("isv.MOBILE_COUNT_OVER_LIMIT")
        template_params = self._string_params(params.get("TemplateParam", "{}"))
        if template_params is None:
            return self._failure("isv.INVALID_JSON_PARAM")
        rows = [(n, params["SignName"], template_params) for n in numbers]
        return self._deliver("SendSms", params["TemplateCode"], rows)

    def _send_batch_sms(self, params: dict[str, str]) -> web.Response:
        for name in ("PhoneNumberJson", "SignNameJson", "TemplateCode"):
            if not params.get(name):
                return self._error(
                    f"Missing{name}", f"{name} is mandatory for this action.", 400
                )
        try:
            numbers = json.loads(params["PhoneNumberJson"])
            signs = json.loads(params["SignNameJson"])
            param_list = json.loads(params.get("TemplateParamJson") or "null")
        except ValueError:
            return self._failure("isv.INVALID_JSON_PARAM")
        if len(numbers) > MAX_SEND_BATCH_NUMBERS:
            return self._failure("isv.MOBILE_COUNT_OVER_LIMIT")
        if param_list is None:
            param_list = [{} for _ in numbers]
        if len(signs) != len(numbers) or len(param_list) != len(numbers):
            return self._failure("isv.INVALID_PARAMETERS")
        if not all(
            isinstance(p, dict) and all(isinstance(v, str) for v in p.values())
            for p in param_list
        ):
            return self._failure("isv.INVALID_JSON_PARAM")
        return self._deliver(
            "SendBatchSms",
            params["TemplateCode"],
            list(zip(numbers, signs, param_list)),
        )

    def _deliver(
        self, action: str, template: str, rows: list[tuple[str, str, dict[str, Any]]]
    ) -> web.Response:
        for number, _, _ in rows:
            if self.peek_outcome(number) == BAD_GATEWAY:
                self.next_outcome(number)
                return bad_gateway()
            if self.peek_outcome(number) != SUCCESS:
                return self._failure(self.next_outcome(number))
        biz_id = f"{next(self._biz_ids)}^0"
        with self._lock:
            for number, sign, params in rows:
                self.deliveries.append(
                    Delivery(number, biz_id, sign, template, params, action)
                )
        for number, _, _ in rows:
            self.next_outcome(number)
        return web.json_response(
            {
                "Code": "OK",
                "Message": "OK",
                "BizId": biz_id,
                "RequestId": str(uuid.uuid4()).upper(),
            }
        )
