"""A local fake of JPush's REST API v3 push endpoint, for tests.

``POST /v3/push`` and ``/v3/push/validate`` check HTTP Basic auth with the AppKey
and Master Secret (401, code 1004), the required keys ``platform``, ``audience`` and
``notification`` or ``message`` (400, 1002), keys JPush rejects such as ``sound``
under ``android`` (400, 1009), notification and message parts over 4000 bytes
(400, 1005), and more than 1000 registration ids (400, 1003, because JPush
documents no code for this). A ``cid`` must look like ``<AppKey>-<uuid>``, and a
repeated cid returns the stored first answer and pushes nothing. Every answer
carries the X-Rate-Limit-* headers. When no registration id is known the answer is
400/1011 with a msg_id, as JPush does, and unknown ids in a larger audience are
skipped. ``script(registration_id, "<code>")`` makes the next request naming it
fail with that JPush code and its HTTP status.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets

from tests.fakes.http_fake import Answer, FakeHttpServer, ReceivedRequest, json_answer

MAX_REGISTRATION_IDS = 1000
# JPush limits the notification and message parts, not the audience.
MAX_CONTENT_BYTES = 4000
RATE_LIMIT_QUOTA = 600
RATE_LIMIT_RESET = 37
CID_PATTERN = r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Code to (HTTP status, message), as JPush returns them.
FAILURES: dict[int, tuple[int, str]] = {
    1000: (500, "Server Internal error."),
    1030: (503, "Internal service timeout."),
    2002: (429, "Rate limit exceeded"),
    1001: (405, "Only support HTTP Post method."),
    1002: (400, "Missing parameter!"),
    1003: (400, "Parameter value is invalid!"),
    1005: (400, "Msg content too long!"),
    1009: (400, "Unsupported key in push object."),
    1011: (400, "cannot find user by this audience or has been inactive for more than 255 days"),
    1012: (400, "Big push limit exceeded."),
    2005: (403, "Message volume of this user is excessive."),
    1004: (401, "Authen failed"),
    1008: (400, "app_key is invalid"),
    1020: (404, "Only support HTTPS request"),
    2003: (403, "The appKey is in black list."),
    2004: (403, "Caller IP is not in the whitelist."),
    2006: (403, "This API is only open to VIP users."),
    2007: (403, "No permission to call this API."),
}
ANDROID_KEYS = {
    "alert", "title", "builder_id", "channel_id", "priority", "category", "style",
    "big_text", "inbox", "big_pic_path", "alert_type", "large_icon", "intent", "extras",
}


class FakeJPush(FakeHttpServer):
    name = "fake-jpush"
    outcomes = frozenset(str(code) for code in FAILURES)

    def __init__(self, app_key: str = "7d431e42dfa6a6d693ac2d04", master_secret: str = "") -> None:
        super().__init__()
        self.app_key = app_key
        self.master_secret = master_secret or secrets.token_hex(12)
        self._ids = itertools.count(18100000)
        self._cid_answers: dict[str, Answer] = {}
        self.remaining = RATE_LIMIT_QUOTA
        # msg_id to the registration ids it was pushed to.
        self.pushes: dict[str, list[str]] = {}

    def respond(self, request: ReceivedRequest) -> Answer:
        if request.path not in ("/v3/push", "/v3/push/validate"):
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        if request.method != "POST":
            return self.error(1001)
        expected = base64.b64encode(f"{self.app_key}:{self.master_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self.error(1004)
        try:
            push = json.loads(request.body)
        except ValueError:
            return self.error(1003, "body is not JSON")
        content = {key: push.get(key) for key in ("notification", "message")}
        if len(json.dumps(content, ensure_ascii=False).encode()) > MAX_CONTENT_BYTES:
            return self.error(1005)
        problem = self.check(push)
        if problem is not None:
            return self.error(*problem)
        cid = push.get("cid")
        if cid is not None and cid in self._cid_answers:
            return self._cid_answers[cid]
        answer = self.deliver(push, validate_only=request.path.endswith("/validate"))
        if cid is not None and answer[0] == 200:
            self._cid_answers[cid] = answer
        return answer

    def check(self, push: dict) -> tuple[int, str] | None:
        """Return (code, message) for a push object JPush would reject."""
        for name in ("platform", "audience"):
            if name not in push:
                return 1002, f"missing {name}"
        if "notification" not in push and "message" not in push:
            return 1002, "missing notification or message"
        android = push.get("notification", {}).get("android", {})
        unknown = set(android) - ANDROID_KEYS
        if unknown:
            return 1009, f"unsupported keys under android: {sorted(unknown)}"
        if android and "alert" not in android:
            return 1002, "android.alert is required"
        ids = push["audience"].get("registration_id", [])
        if not ids or len(ids) > MAX_REGISTRATION_IDS:
            return 1003, f"registration_id must name 1 to {MAX_REGISTRATION_IDS} ids"
        cid = push.get("cid")
        if cid is not None and not re.fullmatch(re.escape(self.app_key) + CID_PATTERN, cid):
            return 1003, "cid is invalid"
        return None

    def deliver(self, push: dict, validate_only: bool) -> Answer:
        ids = push["audience"]["registration_id"]
        scripted = self.take_outcome(ids)
        if scripted is not None:
            return self.error(int(scripted))
        msg_id = next(self._ids)
        known = [i for i in ids if i not in self.invalid_tokens]
        if not known:
            return self.error(1011, msg_id=msg_id)
        if not validate_only:
            self.pushes[str(msg_id)] = known
        sendno = push.get("options", {}).get("sendno", 0)
        return json_answer(200, {"sendno": str(sendno), "msg_id": str(msg_id)},
                           self.rate_headers())

    def rate_headers(self) -> dict[str, str]:
        self.remaining = max(self.remaining - 1, 0)
        return {
            "X-Rate-Limit-Quota": str(RATE_LIMIT_QUOTA),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Reset": str(RATE_LIMIT_RESET),
        }

    def error(self, code: int, message: str = "", msg_id: int | None = None) -> Answer:
        status, text = FAILURES[code]
        body: dict = {"error": {"code": code, "message": message or text}}
        if msg_id is not None:
            body["msg_id"] = msg_id
        return json_answer(status, body, self.rate_headers())
