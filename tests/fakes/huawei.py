"""A local fake of Huawei Push Kit's v1 send API and OAuth token endpoint, for tests.

The fake serves plain HTTP on 127.0.0.1:

- ``POST /oauth2/v3/token`` takes the form fields grant_type=client_credentials,
  client_id and client_secret, and returns ``{"access_token", "expires_in",
  "token_type"}`` or HTTP 400 ``{"error": 1101, "sub_error": ..., "error_description"}``.
- ``POST /v1/<app id>/messages:send`` checks the bearer token (80200001 unknown,
  80200003 expired), the app id (80300002), the message fields (80100001/80100003),
  the token count (1 to 1000, else 80300010) and the body size without the tokens
  (4096 bytes, else 80300008), then returns ``{"code", "msg", "requestId"}``.

`script()` queues outcomes per device token: "illegal_token" makes that token
invalid in its request (80100000 partial success, or 80300007 when every token is
invalid). A result code fails the whole request with that code, and "http_503" and
"http_429" return a flow control response without a JSON body. `receipt()` builds a signed
receipt request for our callback endpoint, as Push Kit sends it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

ACCESS_TOKEN_SECONDS = 3600
MAX_TOKENS = 1000
MAX_BODY_BYTES = 4096
ILLEGAL_TOKEN = "illegal_token"
FLOW_CONTROL = {"http_503": 503, "http_429": 429}

# Result codes the fake can be scripted to return, with their HTTP status and msg.
RESULT_CODES: dict[str, tuple[int, str]] = {
    "80100001": (400, "Some request parameters are incorrect"),
    "80100003": (400, "Incorrect message structure"),
    "80100004": (400, "The message expiration time is earlier than the current time"),
    "80100013": (400, "The collapse_key field is invalid"),
    "80100016": (400, "The message contains sensitive information"),
    "80100017": (400, "A maximum of 100 topic-based messages can be sent at the same time"),
    "80100018": (400, "The review signature is invalid"),
    "80200001": (401, "Oauth authentication error"),
    "80200003": (401, "Oauth Token expired"),
    "80300002": (403, "The current app does not have the permission to send messages"),
    "80300007": (400, "All tokens are invalid"),
    "80300008": (400, "The message body size exceeds the default value"),
    "80300010": (400, "The number of tokens in the message body exceeds the default value"),
    "80300011": (403, "No permission to send high-level messages"),
    "80300013": (400, "The receipt URL is invalid"),
    "80600003": (400, "Request OAuth service failed"),
    "81000001": (500, "System internal error"),
}


@dataclass(frozen=True)
class ReceivedRequest:
    tokens: list[str]
    message: dict[str, Any] | None
    headers: dict[str, str]
    code: str
    request_id: str


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status,
                        content_type="application/json")


def callback_header(username: str, key: str, timestamp_ms: int | None = None,
                    nonce: str | None = None) -> str:
    """Return an X-HUAWEI-CALLBACK-ID value, signed as Push Kit signs it."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    nonce = nonce or str(uuid.uuid4())
    digest = hmac.new(key.encode(), f"{timestamp}{nonce}{username}".encode(),
                      hashlib.sha256).digest()
    return f"timestamp={timestamp}; nonce={nonce}; value={base64.b64encode(digest).decode()}"


class FakeHuawei:
    def __init__(self, app_id: str = "104467953", host: str = "127.0.0.1") -> None:
        self.app_id = app_id
        self.client_secret = secrets.token_hex(32)
        self.callback_username = "receipts"
        self.callback_key = secrets.token_urlsafe(24)
        self.host = host
        self.token_requests = 0
        self._lock = threading.Lock()
        self._access_tokens: dict[str, float] = {}
        self._scripts: dict[str, deque[str]] = {}
        self._requests: list[ReceivedRequest] = []
        self._request_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # Lifecycle

    def start(self) -> Self:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-huawei",
                                        daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        self.base_url = f"http://{self.host}:{self.port}"
        self.token_url = f"{self.base_url}/oauth2/v3/token"
        return self

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_post("/oauth2/v3/token", self._handle_token)
        app.router.add_post("/v1/{app_id}/{method}", self._handle_send)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        return self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def channel_config(self) -> dict[str, Any]:
        return {"app_id": self.app_id, "base_url": self.base_url,
                "token_url": self.token_url, "callback_username": self.callback_username}

    def channel_credentials(self) -> dict[str, Any]:
        return {"client_secret": self.client_secret, "callback_key": self.callback_key}

    # Test controls, callable from any thread

    def script(self, token: str, *outcomes: str) -> None:
        """Queue the outcomes of the next requests that carry one device token."""
        for outcome in outcomes:
            if outcome not in RESULT_CODES and outcome not in FLOW_CONTROL \
                    and outcome != ILLEGAL_TOKEN:
                raise ValueError(f"unknown Push Kit outcome {outcome!r}")
        with self._lock:
            self._scripts.setdefault(token, deque()).extend(outcomes)

    def revoke_tokens(self) -> None:
        """Expire every access token issued so far."""
        with self._lock:
            self._access_tokens = dict.fromkeys(self._access_tokens, 0.0)

    def clear(self) -> None:
        """Forget the recorded requests and the queued outcomes."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def receipt(self, statuses: list[dict[str, Any]], *, key: str | None = None,
                timestamp_ms: int | None = None) -> tuple[bytes, dict[str, str]]:
        """Return the body and headers of a receipt request (version 1 statuses)."""
        body = json.dumps({"statuses": statuses}).encode()
        header = callback_header(self.callback_username, key or self.callback_key,
                                 timestamp_ms)
        return body, {"X-HUAWEI-CALLBACK-ID": header, "Content-Type": "application/json"}

    def receipt_status(self, token: str, request_id: str, status: int = 0) -> dict[str, Any]:
        return {"biTag": "", "appid": self.app_id, "token": token, "status": status,
                "timestamp": int(time.time() * 1000), "requestId": request_id}

    # Handlers, run on the fake's event loop

    async def _handle_token(self, request: web.Request) -> web.Response:
        with self._lock:
            self.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": 1102, "sub_error": 20001,
                                  "error_description": "invalid grant_type"}, 400)
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.client_secret:
            return json_response({"error": 1101, "sub_error": 20002,
                                  "error_description": "invalid client"}, 400)
        token = "CgB6e3x9" + secrets.token_urlsafe(48)
        with self._lock:
            self._access_tokens[token] = time.monotonic() + ACCESS_TOKEN_SECONDS
        return json_response({"access_token": token, "expires_in": ACCESS_TOKEN_SECONDS,
                              "token_type": "Bearer"})

    async def _handle_send(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        tokens = message.get("token") if isinstance(message, dict) else None
        tokens = tokens if isinstance(tokens, list) else []
        request_id = f"{int(time.time() * 1000)}{next(self._request_ids):06d}"
        status, reply = self._send_reply(request, message, tokens)
        code = str(reply.get("code", status))
        if reply:
            reply["requestId"] = request_id
        with self._lock:
            self._requests.append(ReceivedRequest(
                [str(t) for t in tokens], message if isinstance(message, dict) else None,
                dict(request.headers), code, request_id))
        if status in FLOW_CONTROL.values():
            return web.Response(status=status, text="flow control",
                                headers={"Retry-After": "3"})
        return json_response(reply, status)

    def _send_reply(self, request: web.Request, message: Any,
                    tokens: list[Any]) -> tuple[int, dict[str, Any]]:
        """Check auth, app and message in Push Kit's order, then apply the scripts."""
        problem = self._check_bearer(request.headers.get("Authorization", ""))
        if problem is None and (request.match_info["app_id"] != self.app_id
                                or request.match_info["method"] != "messages:send"):
            problem = "80300002"
        if problem is None:
            problem = self._check_message(message, tokens)
        if problem is not None:
            return RESULT_CODES[problem][0], result(problem)
        scripted = {token: self._next_outcome(str(token)) for token in tokens}
        for outcome in scripted.values():
            if outcome in FLOW_CONTROL:
                return FLOW_CONTROL[outcome], {}
            if outcome in RESULT_CODES:
                if outcome == "80200003":
                    self._revoke(request.headers.get("Authorization", ""))
                return RESULT_CODES[outcome][0], result(outcome)
        illegal = [token for token, outcome in scripted.items() if outcome == ILLEGAL_TOKEN]
        if len(illegal) == len(tokens):
            return 400, result("80300007")
        if illegal:
            detail = {"success": len(tokens) - len(illegal), "failure": len(illegal),
                      "illegal_tokens": illegal}
            return 200, {"code": "80100000", "msg": json.dumps(detail)}
        return 200, {"code": "80000000", "msg": "Success"}

    def _check_bearer(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not token:
            return "80200001"
        with self._lock:
            expires_at = self._access_tokens.get(token)
        if expires_at is None:
            return "80200001"
        if expires_at < time.monotonic():
            return "80200003"
        return None

    def _revoke(self, authorization: str) -> None:
        token = authorization.partition(" ")[2]
        with self._lock:
            if token in self._access_tokens:
                self._access_tokens[token] = 0.0

    @staticmethod
    def _check_message(message: Any, tokens: list[Any]) -> str | None:
        if not isinstance(message, dict):
            return "80100003"

        targets = [name for name in ("token", "topic", "condition") if message.get(name)]
        if len(targets) != 1:
            return "80100001"
        if "token" in targets and len(tokens) > MAX_TOKENS:
            return "80300010"
        if "token" in targets and not all(isinstance(t, str) and t for t in tokens):
            return "80100001"

        without_tokens = {**message, "token": []}
        if len(json.dumps(without_tokens).encode()) > MAX_BODY_BYTES:
            return "80300008"
        if "data" in message and not isinstance(message["data"], str):
            return "80100003"

        android = message.get("android", {})
        if not isinstance(android, dict):
            return "80100003"
        if android.get("urgency", "NORMAL") not in ("HIGH", "NORMAL"):
            return "80100001"

        notification = android.get("notification")
        if notification is None:
            return None if "data" in message else "80100001"
        if not notification.get("title") or not notification.get("body"):
            return "80100001"
        action = notification.get("click_action")
        if not isinstance(action, dict) or action.get("type") not in (1, 2, 3, 4):
            return "80100001"
        required = {1: ("intent", "action"), 2: ("url",), 4: ("rich_resource",)}
        if action["type"] in required and not any(action.get(n) for n in required[action["type"]]):
            return "80100001"
        return None

    def _next_outcome(self, token: str) -> str:
        with self._lock:
            queue = self._scripts.get(token)
            if not queue:
                return ""
            outcome = queue.popleft()
            if not queue:
                del self._scripts[token]
            return outcome


def result(code: str) -> dict[str, Any]:
    return {"code": code, "msg": RESULT_CODES[code][1]}
