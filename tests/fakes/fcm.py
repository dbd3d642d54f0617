"""A local fake of Firebase Cloud Messaging's HTTP v1 API, for tests and benchmarks.

The fake speaks the real wire format on 127.0.0.1:

- ``POST /token`` is Google's OAuth 2.0 token endpoint for service accounts. It takes
  the form fields ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and
  ``assertion=<JWT>``, verifies the RS256 signature with the service account's public
  key, and checks ``kid``, ``iss``, ``exp`` and the firebase.messaging scope. It does
  not check ``aud``, because google-auth always sets it to
  https://oauth2.googleapis.com/token, whatever the service account's ``token_uri``.
- ``POST /v1/projects/<project>/messages:send`` takes one message per request, as FCM
  does, and responds with FCM's status codes and error bodies.
- ``GET /_fake/stats`` exists only in this fake. It returns the counters
  ``{"sent", "requests", "token_requests"}`` as JSON (successful sends, all send
  requests, all token requests), so that a benchmark can read them when the fake
  runs as a separate process.

Use it in-process::

    with FakeFcm() as fake:
        fake.script("device-token", "UNREGISTERED")
        ...  # point the client at fake.base_url and fake.service_account

or as its own process::

    python -m tests.fakes.fcm --port 8765 --project demo-project \\
        --service-account-out /tmp/sa.json

The command line writes the service account JSON once the server is listening, so a
caller can wait for that file to appear. It prints the base URL as its first line of
standard output and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger(__name__)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
ACCESS_TOKEN_SECONDS = 3599
TARGET_FIELDS = ("token", "topic", "condition", "fid")
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
INVALID_CREDENTIALS_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


@dataclass(frozen=True)
class FcmFailure:
    """One FCM error response: HTTP status, canonical status, errorCode and message."""

    http_status: int
    status: str
    error_code: str | None
    message: str
    field: str | None = None


# Scriptable outcomes, with the status codes and texts that FCM sends for them.
FAILURES: dict[str, FcmFailure] = {
    "UNREGISTERED": FcmFailure(
        404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."
    ),
    "QUOTA_EXCEEDED": FcmFailure(
        429,
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
        "Quota exceeded for quota metric 'Send requests' "
        "and limit 'Send requests per minute'.",
    ),
    "UNAVAILABLE": FcmFailure(
        503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."
    ),
    "INTERNAL": FcmFailure(500, "INTERNAL", "INTERNAL", "Internal error encountered."),
    "INVALID_ARGUMENT": FcmFailure(
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
    ),
    # The INVALID_ARGUMENT variant that FCM sends for a malformed device token.
    "INVALID_REGISTRATION": FcmFailure(
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        field="message.token",
    ),
    "SENDER_ID_MISMATCH": FcmFailure(
        403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"
    ),
    "THIRD_PARTY_AUTH_ERROR": FcmFailure(
        401,
        "UNAUTHENTICATED",
        "THIRD_PARTY_AUTH_ERROR",
        "Auth error from APNS or Web Push Service",
    ),
    "UNSPECIFIED_ERROR": FcmFailure(
        500,
        "INTERNAL",
        "UNSPECIFIED_ERROR",
        "No more information is available about this error.",
    ),
}
# Responds as to an expired OAuth access token, and revokes the token that was used.
EXPIRED_TOKEN = "expired_token"
SUCCESS = "success"
OUTCOMES = frozenset(FAILURES) | {EXPIRED_TOKEN, SUCCESS}

_key_lock = threading.Lock()
_private_key_pem: str | None = None
_public_key: rsa.RSAPublicKey | None = None


def signing_key() -> tuple[str, rsa.RSAPublicKey]:
    """Return this process's RSA key as (PKCS#8 PEM private key, public key).

    Generating a 2048-bit key takes a noticeable fraction of a second, so every fake in
    the process shares one key.
    """
    global _private_key_pem, _public_key
    with _key_lock:
        if _private_key_pem is None or _public_key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _private_key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode("ascii")
            _public_key = key.public_key()
        return _private_key_pem, _public_key


@dataclass(frozen=True)
class ReceivedRequest:
    """One request to the send endpoint, as the fake received it."""

    token: str | None
    message: dict[str, Any] | None
    headers: dict[str, str]
    status: int
    # time.monotonic() when the handler started, after the headers arrived.
    received_at: float = 0.0


def fcm_error_body(
    http_status: int,
    status: str,
    message: str,
    error_code: str | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """Build a Google API error body with FCM's FcmError and BadRequest details."""
    details: list[dict[str, Any]] = []
    if error_code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": error_code})
    if field:
        details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    error: dict[str, Any] = {"code": http_status, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def unauthenticated_body(reason: str, message: str) -> dict[str, Any]:
    """Build the 401 body that Google's front end sends for a bad OAuth token."""
    body = fcm_error_body(401, "UNAUTHENTICATED", message)
    body["error"]["details"] = [
        {
            "@type": ERROR_INFO_TYPE,
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {
                "service": "fcm.googleapis.com",
                "method": "google.firebase.fcm.v1.FcmService.SendMessage",
            },
        }
    ]
    return body


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="UTF-8",
    )


class FakeFcm:
    """An FCM HTTP v1 server with an OAuth token endpoint, on its own event loop thread.

    ``script(token, *outcomes)`` queues the responses for one device token. Each
    outcome is a name from ``OUTCOMES`` or a tuple ``(name, retry_after)`` that adds a
    ``Retry-After`` header with that value, in seconds or as an HTTP-date. Once a
    device token's queue is empty, its sends succeed.
    """

    def __init__(
        self,
        project_id: str = "demo-project",
        host: str = "127.0.0.1",
        port: int = 0,
        record_requests: bool = True,
    ) -> None:
        self.project_id = project_id
        self.host = host
        self.port = port
        self.base_url = ""
        self.token_uri = ""
        self.service_account: dict[str, Any] = {}
        # A long benchmark can switch recording off and keep only the counters.
        self.record_requests = record_requests
        self._private_key_id = secrets.token_hex(20)
        self._client_email = (
            f"firebase-adminsdk-fake@{project_id}.iam.gserviceaccount.com"
        )
        self._lock = threading.Lock()
        self._access_tokens: dict[str, float] = {}
        self._scripts: dict[str, deque[str | tuple[str, float | str]]] = {}
        self._requests: list[ReceivedRequest] = []
        self._message_ids = itertools.count(1)
        self._id_suffix = secrets.token_hex(8)
        # The message name of every accepted send, oldest first.
        self.message_names: list[str] = []
        self.sent = 0
        self.request_count = 0
        self.token_requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # Life cycle

    def start(self) -> Self:
        """Start serving on a daemon thread and fill in the URLs and service account."""
        if self._loop is not None:
            raise RuntimeError("this FakeFcm is already running")
        private_key_pem, self._public_key = signing_key()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-fcm", daemon=True
        )
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = future.result(timeout=10)
        self.base_url = f"http://{self.host}:{self.port}"
        self.token_uri = f"{self.base_url}/token"
        self.service_account = self._service_account(private_key_pem)
        return self

    def stop(self) -> None:
        """Close the listening socket and all connections, then end the loop thread."""
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(
                10
            )
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_post("/token", self._handle_token)
        app.router.add_post("/v1/projects/{project}/{method}", self._handle_send)
        app.router.add_get("/_fake/stats", self._handle_stats)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        return self._runner.addresses[0][1]

    def _service_account(self, private_key_pem: str) -> dict[str, Any]:
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self._private_key_id,
            "private_key": private_key_pem,
            "client_email": self._client_email,
            "client_id": str(secrets.randbelow(10**21)).zfill(21),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": (
                "https://www.googleapis.com/robot/v1/metadata/x509/"
                + self._client_email.replace("@", "%40")
            ),
            "universe_domain": "googleapis.com",
        }

    # Test controls, callable from any thread

    def script(self, token: str, *outcomes: str | tuple[str, float | str]) -> None:
        """Queue the responses for the next sends to one device token, in order."""
        for outcome in outcomes:
            name = outcome[0] if isinstance(outcome, tuple) else outcome
            if name not in OUTCOMES:
                raise ValueError(
                    f"unknown FCM outcome {name!r}; use one of {sorted(OUTCOMES)}"
                )
        with self._lock:
            self._scripts.setdefault(token, deque()).extend(outcomes)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far, as if each had expired."""
        with self._lock:
            self._access_tokens.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of the send requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # Handlers, run on the fake's event loop

    async def _handle_stats(self, request: web.Request) -> web.Response:
        with self._lock:
            stats = {
                "sent": self.sent,
                "requests": self.request_count,
                "token_requests": self.token_requests,
            }
        return json_response(stats)

    async def _handle_token(self, request: web.Request) -> web.Response:
        with self._lock:
            self.token_requests += 1
        form = await request.post()
        grant_type = form.get("grant_type")
        if grant_type != JWT_BEARER_GRANT:
            problem = (
                "unsupported_grant_type",
                f"Invalid grant_type: {grant_type or ''}",
            )
        else:
            problem = self._check_assertion(str(form.get("assertion") or ""))
        if problem is not None:
            error, description = problem
            logger.warning(
                "fake FCM rejected a token request: %s: %s", error, description
            )
            return json_response(
                {"error": error, "error_description": description}, status=400
            )
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[token] = time.monotonic() + ACCESS_TOKEN_SECONDS
        return json_response(
            {
                "access_token": token,
                "expires_in": ACCESS_TOKEN_SECONDS,
                "token_type": "Bearer",
            }
        )

    def _check_assertion(self, assertion: str) -> tuple[str, str] | None:
        """Return (OAuth error, description) for an unacceptable JWT assertion."""
        if not assertion:
            return "invalid_request", "Missing required parameter: assertion"
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self._public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["iss", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            return "invalid_grant", "Invalid JWT: Token must be a short-lived token"
        except jwt.InvalidTokenError:
            return "invalid_grant", "Invalid JWT Signature."
        if header.get("kid") not in (None, self._private_key_id):
            return "invalid_grant", "Invalid JWT Signature."
        if claims.get("iss") != self._client_email:
            return "invalid_grant", "Invalid JWT Signature."
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            return "invalid_scope", "Invalid OAuth scope or ID token audience provided."
        return None

    async def _handle_send(self, request: web.Request) -> web.Response:
        received_at = time.monotonic()
        raw = await request.read()
        message = self._parse_message(raw)
        target = None
        if isinstance(message, dict):
            target = message.get("token") or message.get("fid")
        response = self._build_send_response(request, raw, message, target)
        with self._lock:
            self.request_count += 1
            if response.status == 200 and self._counts_as_sent(raw):
                self.sent += 1
            if self.record_requests:
                self._requests.append(
                    ReceivedRequest(
                        target if isinstance(target, str) else None,
                        message if isinstance(message, dict) else None,
                        dict(request.headers),
                        response.status,
                        received_at,
                    )
                )
        return response

    @staticmethod
    def _parse_message(raw: bytes) -> Any:
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body.get("message") if isinstance(body, dict) else None

    @staticmethod
    def _counts_as_sent(raw: bytes) -> bool:
        return (
            b'"validate_only":true' not in raw and b'"validate_only": true' not in raw
        )

    def _build_send_response(
        self, request: web.Request, raw: bytes, message: Any, target: Any
    ) -> web.Response:
        """Check auth, project and body in FCM's order, then apply the script."""
        auth_error = self._check_bearer(request.headers.get("Authorization", ""))
        if auth_error is not None:
            return json_response(auth_error, status=401)
        if request.match_info["method"] != "messages:send":
            return json_response(
                fcm_error_body(404, "NOT_FOUND", "Not Found"), status=404
            )
        project = request.match_info["project"]
        if project != self.project_id:
            text = (
                "Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                "(or it may not exist)."
            )
            return json_response(
                fcm_error_body(403, "PERMISSION_DENIED", text), status=403
            )
        invalid = self._check_message(raw, message)
        if invalid is not None:
            return json_response(invalid, status=400)
        outcome = self._next_outcome(target) if isinstance(target, str) else SUCCESS
        return self._scripted_response(
            outcome, request.headers.get("Authorization", "")
        )

    def _check_bearer(self, authorization: str) -> dict[str, Any] | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return unauthenticated_body(
                "CREDENTIALS_MISSING",
                "Request is missing required authentication credential. "
                "Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential. "
                "See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )
        with self._lock:
            expires_at = self._access_tokens.get(token)
        if expires_at is None or expires_at < time.monotonic():
            return unauthenticated_body(
                "ACCESS_TOKEN_EXPIRED", INVALID_CREDENTIALS_MESSAGE
            )
        return None

    @staticmethod
    def _check_message(raw: bytes, message: Any) -> dict[str, Any] | None:
        """Return an INVALID_ARGUMENT body when the message is malformed."""
        if not isinstance(message, dict):
            try:
                json.loads(raw)
            except ValueError:
                return fcm_error_body(
                    400,
                    "INVALID_ARGUMENT",
                    "Invalid JSON payload received.",
                    field="message",
                )
            return fcm_error_body(
                400,
                "INVALID_ARGUMENT",
                "The message field must be an object.",
                field="message",
            )
        targets = [name for name in TARGET_FIELDS if message.get(name)]
        if not targets:
            return fcm_error_body(
                400,
                "INVALID_ARGUMENT",
                "Recipient of the message is not set.",
                error_code="INVALID_ARGUMENT",
                field="message",
            )
        if len(targets) > 1:
            text = (
                "Invalid value at 'message' (oneof), "
                "oneof field 'target' is already set. "
                f"Cannot set '{targets[1]}'"
            )
            return fcm_error_body(400, "INVALID_ARGUMENT", text, field="message")
        data = message.get("data", {})
        if not isinstance(data, dict):
            return fcm_error_body(
                400,
                "INVALID_ARGUMENT",
                "Invalid value at 'message.data'.",
                field="message.data",
            )
        for index, value in enumerate(data.values()):
            if not isinstance(value, str):
                location = f"message.data[{index}].value"
                text = f"Invalid value at '{location}' (TYPE_STRING), {value!r}"
                return fcm_error_body(400, "INVALID_ARGUMENT", text, field=location)
        return None

    def _next_outcome(self, token: str) -> str | tuple[str, float | str]:
        with self._lock:
            queue = self._scripts.get(token)
            if not queue:
                return SUCCESS
            outcome = queue.popleft()
            if not queue:
                del self._scripts[token]
            return outcome

    def _scripted_response(
        self, outcome: str | tuple[str, float | str], authorization: str
    ) -> web.Response:
        headers = None
        name = outcome
        if isinstance(outcome, tuple):
            name, retry_after = outcome
            headers = {"Retry-After": str(retry_after)}
        if name == SUCCESS:
            message_id = f"0:{next(self._message_ids)}%{self._id_suffix}"
            name = f"projects/{self.project_id}/messages/{message_id}"
            with self._lock:
                self.message_names.append(name)
            return json_response({"name": name}, headers=headers)
        if name == EXPIRED_TOKEN:
            with self._lock:
                self._access_tokens.pop(authorization.partition(" ")[2], None)
            body = unauthenticated_body(
                "ACCESS_TOKEN_EXPIRED", INVALID_CREDENTIALS_MESSAGE
            )
            return json_response(body, status=401, headers=headers)
        failure = FAILURES[name]
        body = fcm_error_body(
            failure.http_status,
            failure.status,
            failure.message,
            failure.error_code,
            failure.field,
        )
        return json_response(body, status=failure.http_status, headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Run a fake FCM HTTP v1 server in the foreground."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port; 0 picks a free one"
    )
    parser.add_argument("--project", default="demo-project", help="Firebase project ID")
    parser.add_argument(
        "--service-account-out",
        required=True,
        help="file to write the service account JSON to once the server is listening",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    # Another process cannot read the recorded requests, so only the counters are kept.
    fake = FakeFcm(args.project, args.host, args.port, record_requests=False)
    fake.start()
    partial = f"{args.service_account_out}.partial"
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(fake.service_account, file, indent=2)
    os.replace(partial, args.service_account_out)
    logger.info("fake FCM listening on %s for project %s", fake.base_url, args.project)
    print(fake.base_url, flush=True)
    try:
        stopping.wait()
    finally:
        fake.stop()
        logger.info(
            "fake FCM stopped: %s sent, %s token requests",
            fake.sent,
            fake.token_requests,
        )


if __name__ == "__main__":
    main()
