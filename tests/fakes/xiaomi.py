"""A local fake of Xiaomi MiPush's send-by-regid API (v3), for tests.

``POST /v3/message/regid`` checks ``Authorization: key=<AppSecret>`` (code 21301
otherwise), the package name (22022), the required form fields (21305), at most
1000 regids (10017), and responds with MiPush's JSON envelope. Regids in
``invalid_tokens`` come back in ``data.bad_regids``; when no regid is valid the
request fails with 20301. ``script(regid, "<code>")`` makes the next request that
names the regid fail with that MiPush error code.
"""

from __future__ import annotations

import itertools
import secrets

from tests.fakes.http_fake import Answer, FakeHttpServer, ReceivedRequest, json_answer

MAX_REGIDS = 1000
# Codes the fake can be scripted to return, with MiPush's descriptions.
FAILURES: dict[int, str] = {
    -1: "未知错误",
    1: "内部错误",
    10001: "系统错误",
    10002: "系统繁忙",
    10003: "远程服务错误",
    10027: "API调用频率过快",
    10034: "当天消息数超过限制",
    26004: "广播消息频率过快",
    10008: "参数错误",
    10016: "缺少参数",
    10017: "参数值非法",
    21305: "缺少必填字段",
    65009: "消息长度超过限制",
    65003: "设备不存在",
    20301: "发送消息失败",
    22022: "包名错误",
    21301: "认证失败",
    21302: "token认证失败",
    22000: "非法应用",
    10031: "应用被加入黑名单",
    10036: "操作被禁止",
}


class FakeXiaomi(FakeHttpServer):
    name = "fake-xiaomi"
    outcomes = frozenset(str(code) for code in FAILURES)

    def __init__(self, app_secret: str = "", package_name: str = "com.sharestack.demo") -> None:
        super().__init__()
        self.app_secret = app_secret or secrets.token_urlsafe(18)
        self.package_name = package_name
        self._ids = itertools.count(1)
        # Message id to the regids it was accepted for.
        self.messages: dict[str, list[str]] = {}

    def respond(self, request: ReceivedRequest) -> Answer:
        if request.method != "POST" or request.path != "/v3/message/regid":
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        if request.headers.get("Authorization") != f"key={self.app_secret}":
            return self.error(21301)
        form = request.form()
        for name in ("registration_id", "restricted_package_name", "payload"):
            if name not in form:
                return self.error(21305, f"missing {name}")
        if form.get("pass_through", "0") == "0":
            if not form.get("title", "").strip() or not form.get("description", "").strip():
                return self.error(21305, "title and description are required")
            if len(form["title"]) >= 50 or len(form["description"]) >= 128:
                return self.error(10017, "title or description too long")
        if self.package_name not in form["restricted_package_name"].split(","):
            return self.error(22022)
        regids = [r for r in form["registration_id"].split(",") if r]
        if not regids or len(regids) > MAX_REGIDS:
            return self.error(10017, f"registration_id must name 1 to {MAX_REGIDS} regids")
        scripted = self.take_outcome(regids)
        if scripted is not None:
            return self.error(int(scripted))
        bad = [r for r in regids if r in self.invalid_tokens]
        if len(bad) == len(regids):
            return self.error(20301, "No valid targets!")
        message_id = f"slm{next(self._ids):06d}{secrets.token_hex(4)}"
        self.messages[message_id] = [r for r in regids if r not in bad]
        data = {"id": message_id}
        if bad:
            data["bad_regids"] = ",".join(bad)
        return json_answer(200, {
            "result": "ok", "trace_id": secrets.token_hex(8), "code": 0, "data": data,
            "description": "成功", "info": f"Received push messages for {len(regids)} REGID",
        })

    @staticmethod
    def error(code: int, reason: str = "") -> Answer:
        return json_answer(200, {
            "result": "error", "trace_id": secrets.token_hex(8), "code": code,
            "description": FAILURES.get(code, "错误"), "reason": reason or FAILURES.get(code, ""),
        })
