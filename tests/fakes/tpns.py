"""A local fake of Tencent TPNS's push API (``POST /v3/push/app``), for tests.

Both documented auth schemes are accepted. One is ``Authorization: Basic`` with
AccessID and SecretKey. The other is the AccessId, TimeStamp and Sign headers: the
fake recomputes Sign as Base64 of the lower-case hex HMAC-SHA256 of TimeStamp +
AccessId + the raw body, and allows 600 seconds of clock skew. A mismatch returns
ret_code 1008003. An AccessId this host does not know gets HTTP 403, as for an app
on another regional access point. The body must have audience_type, message_type
and a message with title and content (1008002), ``custom_content`` as a string
(1008001), at most 1000 tokens of at most 36 characters (1008007), and an
environment when it has an ``ios`` part (1008002). Business errors are HTTP 200
with a non-zero ret_code. A token in ``invalid_tokens`` fails a single-token push
with 1008029 and is skipped in a list. ``script(token, "<ret_code>")`` makes the
next push naming the token fail with that code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time

from tests.fakes.http_fake import Answer, FakeHttpServer, ReceivedRequest, json_answer

MAX_TOKENS = 1000
MAX_TOKEN_LENGTH = 36
CLOCK_SKEW_SECONDS = 600
AUDIENCE_TYPES = {"all", "tag", "token", "token_list", "account", "account_list",
                  "package_account_push", "package_token_push"}
FAILURES: dict[int, str] = {
    1008004: "failed to call internal service",
    1008028: "request too fast",
    1008001: "parameter parse error",
    1008002: "missing parameter",
    1008007: "parameter validation failed",
    1008019: "content security check failed",
    10010012: "illegal send_time",
    10010018: "duplicate push",
    1008003: "authentication failed",
    10030002: "AccessID and AccessKey do not match",
    1008023: "iOS push certificate expired",
    1008030: "app not paid",
    1008031: "app resources destroyed",
    1010001: "push resource not purchased",
    1008029: "token not valid",
    1008006: "invalid token",
    10010005: "push target does not exist",
    10110008: "token does not exist",
}


def expected_sign(secret_key: str, access_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret_key.encode(), timestamp.encode() + access_id.encode() + body,
                      hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode()).decode()


class FakeTpns(FakeHttpServer):
    name = "fake-tpns"
    outcomes = frozenset(str(code) for code in FAILURES)

    def __init__(self, access_id: str = "1500000001") -> None:
        super().__init__()
        self.access_id = access_id
        self.secret_key = secrets.token_hex(16)
        self._ids = itertools.count(427184209)
        # push_id to the tokens it was pushed to.
        self.pushes: dict[str, list[str]] = {}

    def respond(self, request: ReceivedRequest) -> Answer:
        if request.method != "POST" or request.path != "/v3/push/app":
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        problem = self.check_auth(request)
        if problem is not None:
            return problem
        try:
            push = json.loads(request.body)
        except ValueError:
            return self.error(1008001, "body is not JSON")
        code = self.check(push)
        if code is not None:
            return self.error(*code)
        tokens = push["token_list"]
        scripted = self.take_outcome(tokens)
        if scripted is not None:
            return self.error(int(scripted))
        if push["audience_type"] == "token":
            tokens = tokens[:1]
            if tokens[0] in self.invalid_tokens:
                return self.error(1008029)
        push_id = str(next(self._ids))
        self.pushes[push_id] = [t for t in tokens if t not in self.invalid_tokens]
        return json_answer(200, {"seq": push.get("seq", 0), "push_id": push_id, "ret_code": 0,
                                 "environment": push.get("environment", "product"),
                                 "err_msg": "", "result": "[0]"})

    def check_auth(self, request: ReceivedRequest) -> Answer | None:
        headers = request.headers
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            pair = base64.b64decode(authorization[6:]).decode(errors="replace")
            access_id, _, secret = pair.partition(":")
            if access_id != self.access_id:
                return 403, {"Content-Type": "text/plain"}, b"Forbidden"
            if not hmac.compare_digest(secret, self.secret_key):
                return self.error(1008003)
            return None
        access_id = headers.get("AccessId", "")
        if access_id != self.access_id:
            return 403, {"Content-Type": "text/plain"}, b"Forbidden"
        timestamp = headers.get("TimeStamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > CLOCK_SKEW_SECONDS:
            return self.error(1008003, "TimeStamp is missing or outside the allowed window")
        expected = expected_sign(self.secret_key, access_id, timestamp, request.body)
        if not hmac.compare_digest(expected, headers.get("Sign", "")):
            return self.error(1008003, "Sign does not match")
        return None

    def check(self, push: dict) -> tuple[int, str] | None:
        for name in ("audience_type", "message_type", "message"):
            if name not in push:
                return 1008002, f"missing {name}"
        if push["audience_type"] not in AUDIENCE_TYPES:
            return 1008007, "invalid audience_type"
        message = push["message"]
        if push["message_type"] == "notify" and not (message.get("title") and message.get("content")):
            return 1008002, "title and content are required"
        for platform in ("android", "ios"):
            custom = message.get(platform, {}).get("custom_content")
            if custom is not None and not isinstance(custom, str):
                return 1008001, f"{platform}.custom_content must be a string"
        if "ios" in message and push.get("environment") not in ("product", "dev"):
            return 1008002, "environment is required for iOS"
        tokens = push.get("token_list") or []
        if push["audience_type"] in ("token", "token_list"):
            if not tokens or len(tokens) > MAX_TOKENS:
                return 1008007, f"token_list must name 1 to {MAX_TOKENS} tokens"
            if any(len(t) > MAX_TOKEN_LENGTH for t in tokens):
                return 1008007, f"a token is longer than {MAX_TOKEN_LENGTH} characters"
        return None

    @staticmethod
    def error(code: int, message: str = "") -> Answer:
        return json_answer(200, {"seq": 0, "ret_code": code,
                                 "err_msg": message or FAILURES.get(code, "error")})
