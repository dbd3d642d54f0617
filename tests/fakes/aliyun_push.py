"""A local fake of Aliyun Mobile Push's RPC API (version 2016-08-01), for tests.

Requests go to ``/`` as GET or POST form; query and form parameters are merged
before the checks, as Aliyun's gateway does. The fake verifies signature version 1
(HMAC-SHA1 keyed with AccessKeySecret + "&", recomputed here from the request),
the AccessKeyId, a Timestamp within 15 minutes of now, and that no SignatureNonce is
used twice. ``Action=Push`` checks AppKey, the DeviceType, Target and PushType
enums, at most 1000 device ids, a Body, and that the Ext parameters are JSON. The
response is JSON when Format=JSON and XML otherwise. Errors carry RequestId, HostId,
Code, Message and Recommend. ``script(device_id, "<Code>")`` makes the next Push
naming the device fail with that code and its HTTP status. ``Action=CheckDevices``
reports ``Available`` false for ids in ``invalid_tokens``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

from tests.fakes.http_fake import Answer, FakeHttpServer, ReceivedRequest, json_answer

HOST_ID = "cloudpush.aliyuncs.com"
MAX_DEVICE_IDS = 1000
CLOCK_SKEW = timedelta(minutes=15)
# Code to HTTP status, as Aliyun's error table lists them.
FAILURES: dict[str, int] = {
    "Throttling.User": 400,
    "Throttling.Api": 400,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "SignatureNonceUsed": 400,
    "InvalidParameter": 400,
    "InvalidTarget": 400,
    "InvalidJsonExtParameter": 400,
    "AppLimitExceed": 400,
    "InvalidAccessKeyId.NotFound": 400,
    "SignatureDoesNotMatch": 400,
    "Forbidden": 403,
    "InvalidTimeStamp.Expired": 400,
    "InvalidTimeStamp.Format": 400,
    "AccountDisabled": 400,
    "AccountInDebt": 400,
    "AccountNotEnabled": 400,
    "AccountNotSupported": 400,
    "AccountProhibited": 400,
    "AppNotConfigAndroid": 400,
    "AppNotConfigIOS": 400,
    "AppTypeNotIos": 400,
    "CertificateExpired": 400,
    "CertificateRevoked": 400,
    "CertModeNotMatch": 400,
    "ChannelConfigNotConfigured": 400,
    "InvalidProduct.NotFound": 404,
    "InvalidApi.NotFound": 404,
    "InvalidProtocol.NeedSsl": 404,
    # Members of the code families with a parameter name inside.
    "Throttling.Tenant": 400,
    "MissingTitle": 400,
    "InvalidDeviceIds.Format": 400,
    "InvalidAppKey.NotFound": 400,
}
COMMON = ("AccessKeyId", "Action", "SignatureMethod", "SignatureNonce",
          "SignatureVersion", "Timestamp", "Version", "Signature")


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(params[k])}"
        for k in sorted(params) if k != "Signature"
    )
    text = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class FakeAliyunPush(FakeHttpServer):
    name = "fake-aliyun-push"
    outcomes = frozenset(FAILURES)

    def __init__(self, app_key: str = "23267207") -> None:
        super().__init__()
        self.app_key = app_key
        self.access_key_id = "LTAI" + secrets.token_hex(8)
        self.access_key_secret = secrets.token_urlsafe(22)
        self._nonces: set[str] = set()
        self._ids = itertools.count(501029)
        # Each request's Format, for the handler thread that responds to it.
        self._local = threading.local()
        # MessageId to the device ids it was pushed to.
        self.pushes: dict[str, list[str]] = {}

    def respond(self, request: ReceivedRequest) -> Answer:
        params = dict(request.query)
        if request.method == "POST":
            params.update(parse_qsl(request.body.decode(), keep_blank_values=True))
        self._local.json = params.get("Format") == "JSON"
        if request.path != "/":
            return self.error("InvalidProduct.NotFound")
        for name in COMMON:
            if not params.get(name):
                return self.error("Missing" + name, f"{name} is mandatory for this action.")
        problem = self.check_signature(request.method, params)
        if problem is not None:
            return self.error(problem)
        if params["Action"] == "CheckDevices":
            return self.check_devices(params)
        if params["Action"] != "Push":
            return self.error("InvalidApi.NotFound")
        return self.push(params)

    def check_signature(self, method: str, params: dict[str, str]) -> str | None:
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return "InvalidParameter"
        if params["AccessKeyId"] != self.access_key_id:
            return "InvalidAccessKeyId.NotFound"
        try:
            moment = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return "InvalidTimeStamp.Format"
        if abs(datetime.now(UTC) - moment.replace(tzinfo=UTC)) > CLOCK_SKEW:
            return "InvalidTimeStamp.Expired"
        expected = expected_signature(method, params, self.access_key_secret)
        if not hmac.compare_digest(expected, params["Signature"]):
            return "SignatureDoesNotMatch"
        with self._lock:
            if params["SignatureNonce"] in self._nonces:
                return "SignatureNonceUsed"
            self._nonces.add(params["SignatureNonce"])
        return None

    def push(self, params: dict[str, str]) -> Answer:
        for name in ("AppKey", "PushType", "DeviceType", "Target", "TargetValue", "Body"):
            if not params.get(name):
                return self.error("Missing" + name, f"{name} is mandatory for this action.")
        if params["AppKey"] != self.app_key:
            return self.error("InvalidAppKey.NotFound", "The specified AppKey is not found.")
        enums = {"PushType": ("NOTICE", "MESSAGE"),
                 "DeviceType": ("ALL", "ANDROID", "iOS", "HARMONY"),
                 "Target": ("DEVICE", "ACCOUNT", "ALIAS", "TAG", "ALL")}
        for name, allowed in enums.items():
            if params[name] not in allowed:
                return self.error("InvalidParameter", f"{name} must be one of {allowed}.")
        for name in ("AndroidExtParameters", "iOSExtParameters"):
            if name not in params:
                continue
            try:
                value = json.loads(params[name])
            except ValueError:
                value = None
            if not isinstance(value, dict):
                return self.error("InvalidJsonExtParameter", f"{name} is not a JSON map.")
        devices = params["TargetValue"].split(",")
        if params["Target"] == "DEVICE" and len(devices) > MAX_DEVICE_IDS:
            return self.error("InvalidParameter",
                              f"TargetValue must name at most {MAX_DEVICE_IDS} devices.")
        scripted = self.take_outcome(devices)
        if scripted is not None:
            return self.error(scripted)
        message_id = str(next(self._ids))
        self.pushes[message_id] = devices
        return self.answer(200, {"RequestId": self.request_id(), "MessageId": message_id})

    def check_devices(self, params: dict[str, str]) -> Answer:
        ids = params.get("DeviceIds", "").split(",")
        infos = [{"DeviceId": i, "Available": i not in self.invalid_tokens} for i in ids]
        return self.answer(200, {"RequestId": self.request_id(),
                                 "DeviceCheckInfos": {"DeviceCheckInfo": infos}})

    @staticmethod
    def request_id() -> str:
        return str(uuid.uuid4()).upper()

    def answer(self, status: int, body: dict) -> Answer:
        if getattr(self._local, "json", False):
            return json_answer(status, body)
        tag = "PushResponse" if status == 200 and "MessageId" in body else "Error"
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in body.items() if isinstance(v, str))
        return status, {"Content-Type": "text/xml"}, f"<{tag}>{inner}</{tag}>".encode()

    def error(self, code: str, message: str = "") -> Answer:
        return self.answer(FAILURES.get(code, 400), {
            "RequestId": self.request_id(), "HostId": HOST_ID, "Code": code,
            "Message": message or f"The request failed with {code}.",
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
        })
