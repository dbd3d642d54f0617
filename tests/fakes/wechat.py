"""A local fake of the WeChat (api.weixin.qq.com) and WeCom (qyapi.weixin.qq.com) APIs.

One server on 127.0.0.1 serves the paths of both hosts, with WeChat's real response
shape: HTTP 200 and a JSON body whose `errcode` is 0 on success.

- ``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` issues Official
  Account and Mini Program access tokens (40013 unknown appid, 40125 wrong secret,
  40002 wrong grant_type).
- ``GET /cgi-bin/gettoken?corpid=&corpsecret=`` issues WeCom tokens (40013 unknown
  corpid, 40001 wrong secret).
- ``POST /cgi-bin/message/template/send`` (Official Account template message) and
  ``POST /cgi-bin/message/subscribe/send`` (Mini Program subscribe message) check the
  token (41001 missing, 40014 unknown, 42001 expired, 48001 token of another kind of
  account), the template id (40037), required fields and the data shape (47003).
- ``POST /cgi-bin/message/send`` (WeCom app message) checks agentid (40056), at most
  1000 users (40032), msgtype (40008) and content (44004), and lists users outside the
  app's range in ``invaliduser`` (81013 when all are).
- ``POST /cgi-bin/webhook/send?key=`` (WeCom group robot) checks the key (93000).

Where WeChat's documents name no errcode for a malformed field, the fake returns
47001 ("data format error") for Official Account and Mini Program calls and 40058
("invalid parameter") for WeCom calls: that choice is the fake's.

Outcomes are scriptable: ``script(address, *errcodes)`` queues errcodes for the next
sends to an openid, a WeCom request naming that user, or a robot key. A token
errcode (40001, 40014, 42001) also revokes the token that request used, as WeChat
would. ``expire_tokens()`` makes every issued token fail with 42001.
"""

from __future__ import annotations

import itertools
import json
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

OA, MINI, CORP = "official_account", "mini_program", "wecom"
TOKEN_ERRCODES = {40001, 40014, 42001}
MAX_WECOM_USERS = 1000

# errmsg texts from WeChat's and WeCom's return code lists.
ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40032: "invalid userid list size",
    40037: "invalid template_id",
    40056: "invalid agentid",
    40058: "invalid parameter",
    40066: "invalid url",
    40125: "invalid appsecret",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    41030: "invalid page",
    42001: "access_token expired",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    43107: "subscribe message capability banned",
    43108: "concurrent message sending error",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    45033: "api concurrent out of limit",
    45168: "sensitive words",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
    48002: "api forbidden",
    48004: "api forbidden for irregularities",
    50002: "user limited",
    60020: "not allow to access from your ip",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}


@dataclass
class Account:
    kind: str
    app_id: str
    secret: str
    templates: set[str] = field(default_factory=set)
    agent_id: int = 0
    # WeCom user ids outside the app's visible range.
    invalid_users: set[str] = field(default_factory=set)
    token_requests: int = 0


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    params: dict[str, str]
    body: Any


class FakeWeChat:
    """The fake server, on a daemon thread; register accounts before sending."""

    def __init__(self, token_seconds: int = 7200, token_delay: float = 0.0) -> None:
        self.token_seconds = token_seconds
        # Seconds each token request takes, to let concurrent fetchers overlap.
        self.token_delay = token_delay
        self.base_url = ""
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._robot_keys: set[str] = set()
        # token -> (account id, monotonic expiry)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._scripts: dict[str, deque[int]] = {}
        self._raw_responses: dict[str, deque[tuple[int, bytes]]] = {}
        self._requests: list[ReceivedRequest] = []
        self._msgids = itertools.count(2_000_000_000_000_000_001)
        # The msgid of every accepted send to a user, oldest first (robots get none).
        self.msgids: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # Life cycle

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-wechat", daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection, kept-alive ones included."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Test controls

    def add_official_account(self, app_id: str, secret: str, templates: set[str]) -> None:
        self._accounts[app_id] = Account(OA, app_id, secret, set(templates))

    def add_mini_program(self, app_id: str, secret: str, templates: set[str]) -> None:
        self._accounts[app_id] = Account(MINI, app_id, secret, set(templates))

    def add_corp_app(self, corp_id: str, secret: str, agent_id: int,
                     invalid_users: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self._accounts[corp_id] = Account(CORP, corp_id, secret, agent_id=agent_id,
                                          invalid_users=set(invalid_users))

    def add_robot(self, key: str) -> None:
        self._robot_keys.add(key)

    def script(self, address: str, *errcodes: int) -> None:
        with self._lock:
            self._scripts.setdefault(address, deque()).extend(errcodes)

    def script_raw(self, path: str, status: int, body: bytes) -> None:
        """Queue a raw HTTP response for the next request to a path, such as a proxy's 502."""
        with self._lock:
            self._raw_responses.setdefault(path, deque()).append((status, body))

    def raw_response(self, path: str) -> tuple[int, bytes] | None:
        with self._lock:
            queue = self._raw_responses.get(path)
            return queue.popleft() if queue else None

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: (owner, 0.0) for token, (owner, _) in self._tokens.items()}

    def token_requests(self, app_id: str) -> int:
        with self._lock:
            return self._accounts[app_id].token_requests

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def requests_to(self, path: str) -> list[ReceivedRequest]:
        with self._lock:
            return [request for request in self._requests if request.path == path]

    # Request handling, on the server's threads

    def handle(self, method: str, path: str, params: dict[str, str], body: Any) -> dict[str, Any]:
        with self._lock:
            self._requests.append(ReceivedRequest(method, path, params, body))
        routes = {
            ("GET", "/cgi-bin/token"): self._token,
            ("GET", "/cgi-bin/gettoken"): self._gettoken,
            ("POST", "/cgi-bin/message/template/send"): self._template_send,
            ("POST", "/cgi-bin/message/subscribe/send"): self._subscribe_send,
            ("POST", "/cgi-bin/message/send"): self._wecom_send,
            ("POST", "/cgi-bin/webhook/send"): self._robot_send,
        }
        route = routes.get((method, path))
        if route is None:
            return error(43002 if method == "GET" else 43001)
        return route(params, body)

    def _issue(self, account: Account) -> dict[str, Any]:
        time.sleep(self.token_delay)
        token = secrets.token_urlsafe(48)
        with self._lock:
            account.token_requests += 1
            self._tokens[token] = (account.app_id, time.monotonic() + self.token_seconds)
        return {"access_token": token, "expires_in": self.token_seconds}

    def _token(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        if params.get("grant_type") != "client_credential":
            return error(40002)
        account = self._accounts.get(params.get("appid", ""))
        if account is None or account.kind == CORP:
            return error(40013)
        if not secrets.compare_digest(params.get("secret", ""), account.secret):
            return error(40125)
        return self._issue(account)

    def _gettoken(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        account = self._accounts.get(params.get("corpid", ""))
        if account is None or account.kind != CORP:
            return wecom_error(40013)
        if not secrets.compare_digest(params.get("corpsecret", ""), account.secret):
            return wecom_error(40001)
        return {"errcode": 0, "errmsg": "ok", **self._issue(account)}

    def _authorise(self, params: dict[str, str], kind: str) -> tuple[Account | None, dict | None]:
        token = params.get("access_token")
        fail = wecom_error if kind == CORP else error
        if not token:
            return None, fail(41001)
        with self._lock:
            owner, expires_at = self._tokens.get(token, ("", 0.0))
        if not owner:
            return None, fail(40014)
        if expires_at <= time.monotonic():
            return None, fail(42001)
        account = self._accounts[owner]
        if account.kind != kind:
            return None, fail(48001)
        return account, None

    def _scripted(self, address: str, token: str) -> int:
        with self._lock:
            queue = self._scripts.get(address)
            errcode = queue.popleft() if queue else 0
            if errcode in TOKEN_ERRCODES:
                self._tokens.pop(token, None)
        return errcode

    def _template_send(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        account, failure = self._authorise(params, OA)
        if failure:
            return failure
        problem = check_template_body(body, account.templates)
        if problem:
            return error(problem)
        url = body.get("url")
        miniprogram = body.get("miniprogram")
        valid_url = isinstance(url, str) and url.startswith(("http://", "https://"))
        if url is not None and not valid_url:
            return error(40066)
        if miniprogram is not None and not (
            isinstance(miniprogram, dict) and miniprogram.get("appid") and "pagepath" in miniprogram
        ):
            return error(47001)
        return self._send_or_script(body["touser"], params["access_token"])

    def _subscribe_send(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        account, failure = self._authorise(params, MINI)
        if failure:
            return failure
        problem = check_template_body(body, account.templates)
        if problem:
            return error(problem)
        if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
            return error(47001)
        if body.get("lang", "zh_CN") not in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
            return error(47001)
        if "page" in body and not isinstance(body["page"], str):
            return error(41030)
        return self._send_or_script(body["touser"], params["access_token"])

    def _send_or_script(self, openid: str, token: str) -> dict[str, Any]:
        errcode = self._scripted(openid, token)
        if errcode:
            return error(errcode)
        msgid = next(self._msgids)
        with self._lock:
            self.msgids.append(str(msgid))
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def _wecom_send(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        account, failure = self._authorise(params, CORP)
        if failure:
            return failure
        if not isinstance(body, dict):
            return wecom_error(40058)
        if body.get("agentid") != account.agent_id:
            return wecom_error(40056)
        users = [user for user in str(body.get("touser") or "").split("|") if user]
        if not users:
            return wecom_error(81013)
        if len(users) > MAX_WECOM_USERS:
            return wecom_error(40032)
        problem = check_wecom_content(body)
        if problem:
            return wecom_error(problem)
        for user in users:
            errcode = self._scripted(user, params["access_token"])
            if errcode:
                return wecom_error(errcode)
        invalid = [user.lower() for user in users if user in account.invalid_users]
        if len(invalid) == len(users):
            return wecom_error(81013)
        msgid = secrets.token_urlsafe(24)
        with self._lock:
            self.msgids.append(msgid)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid),
                "msgid": msgid}

    def _robot_send(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        key = params.get("key", "")
        if key not in self._robot_keys:
            return wecom_error(93000)
        if not isinstance(body, dict) or body.get("msgtype") not in ("text", "markdown"):
            return wecom_error(40008)
        content = body.get(body["msgtype"])
        if not isinstance(content, dict) or not content.get("content"):
            return wecom_error(44004)
        for name in ("mentioned_list", "mentioned_mobile_list"):
            if name in content and not isinstance(content[name], list):
                return wecom_error(40058)
        errcode = self._scripted(key, "")
        if errcode:
            return wecom_error(errcode)
        return {"errcode": 0, "errmsg": "ok"}


def check_template_body(body: Any, templates: set[str]) -> int:
    """Return the errcode for a malformed template or subscribe body, or 0."""
    if not isinstance(body, dict) or not isinstance(body.get("touser"), str) or not body["touser"]:
        return 40003
    if body.get("template_id") not in templates:
        return 40037
    data = body.get("data")
    if not isinstance(data, dict):
        return 47003
    for value in data.values():
        if not isinstance(value, dict) or not isinstance(value.get("value"), str):
            return 47003
    return 0


def check_wecom_content(body: dict[str, Any]) -> int:
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "markdown", "textcard"):
        return 40008
    content = body.get(msgtype)
    if not isinstance(content, dict):
        return 40058
    if msgtype == "textcard":
        if not all(isinstance(content.get(name), str) and content[name]
                   for name in ("title", "description", "url")):
            return 40058
        return 0
    return 0 if content.get("content") else 44004


def rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def error(errcode: int) -> dict[str, Any]:
    """An Official Account / Mini Program error body, with its request id suffix."""
    return {"errcode": errcode, "errmsg": f"{ERRMSG.get(errcode, 'error')} rid: {rid()}"}


def wecom_error(errcode: int) -> dict[str, Any]:
    """A WeCom error body, with WeCom's hint and help link."""
    return {
        "errcode": errcode,
        "errmsg": (
            f"{ERRMSG.get(errcode, 'error')}, hint: [{int(time.time())}_{secrets.token_hex(8)}], "
            f"from ip: 127.0.0.1, more info at "
            f"https://open.work.weixin.qq.com/devtool/query?e={errcode}"
        ),
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWeChat
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def do_GET(self) -> None:
        self._respond("GET")

    def do_POST(self) -> None:
        self._respond("POST")

    def _respond(self, method: str) -> None:
        parts = urlsplit(self.path)
        params = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        scripted = self.fake.raw_response(parts.path)
        if scripted is not None:
            self._write(*scripted)
            return
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
            reply = error(47001)
        else:
            reply = self.fake.handle(method, parts.path, params, body)
        self._write(200, json.dumps(reply, ensure_ascii=False).encode())

    def _write(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; encoding=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries secrets and tokens; the fake keeps quiet.
        pass
