"""A local fake of the APNs HTTP/2 provider API, for tests.

The fake speaks HTTP/2 over TLS on 127.0.0.1 with the `h2` library and a self-signed
certificate made at start-up (`ca_file` is its path, for the client to trust). Like
APNs it checks, for ``POST /3/device/<hex token>``:

- the provider token: an ES256 JWT whose signature verifies with the public key of
  the fake's own signing key (`private_key_pem` is the .p8 text to give the client),
  with ``kid`` = key id, ``iss`` = team id and an ``iat`` at most one hour old
  (403 ExpiredProviderToken). A new token within 20 minutes of the last accepted
  one, while that one is still valid, gets 429 TooManyProviderTokenUpdates;
- the headers apns-topic (the bundle id), apns-push-type, apns-priority, apns-id,
  apns-expiration and apns-collapse-id;
- the payload: present, JSON, and at most 4096 bytes.

Errors carry APNs' status codes and JSON bodies ``{"reason": ...}`` (with
``timestamp`` for 410), and every response carries an ``apns-id`` header. `script()`
queues reasons per device token. `connections` counts accepted TLS connections, so
a test can prove that a client reuses its connection.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MAX_PAYLOAD_BYTES = 4096
TOKEN_MAX_AGE_SECONDS = 3600
TOKEN_MIN_INTERVAL_SECONDS = 20 * 60
PUSH_TYPES = {
    "alert", "background", "voip", "complication", "fileprovider", "mdm",
    "liveactivity", "location", "pushtotalk", "widgets", "controls",
}
DEVICE_PATH = re.compile(r"^/3/device/(?P<token>[^/]+)$")
HEX_TOKEN = re.compile(r"^[0-9a-fA-F]{16,200}$")

# The status APNs sends with each reason.
REASONS: dict[str, int] = {
    "BadCollapseId": 400,
    "BadDeviceToken": 400,
    "BadExpirationDate": 400,
    "BadMessageId": 400,
    "BadPriority": 400,
    "BadTopic": 400,
    "DeviceTokenNotForTopic": 400,
    "DuplicateHeaders": 400,
    "IdleTimeout": 400,
    "InvalidPushType": 400,
    "MissingDeviceToken": 400,
    "MissingTopic": 400,
    "PayloadEmpty": 400,
    "TopicDisallowed": 400,
    "BadCertificate": 403,
    "BadCertificateEnvironment": 403,
    "ExpiredProviderToken": 403,
    "Forbidden": 403,
    "InvalidProviderToken": 403,
    "MissingProviderToken": 403,
    "UnrelatedKeyIdInToken": 403,
    "BadEnvironmentKeyInToken": 403,
    "BadPath": 404,
    "MethodNotAllowed": 405,
    "ExpiredToken": 410,
    "Unregistered": 410,
    "PayloadTooLarge": 413,
    "TooManyProviderTokenUpdates": 429,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Shutdown": 503,
}
SUCCESS = "success"


@dataclass(frozen=True)
class ReceivedRequest:
    token: str
    headers: dict[str, str]
    payload: Any
    status: int
    reason: str
    connection: int


def device_token() -> str:
    """Return a random device token in APNs' 64 hex digit form."""
    return uuid.uuid4().hex + uuid.uuid4().hex


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and localhost with its key, and return both paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-apns")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "fake-apns.pem"
    key_path = directory / "fake-apns.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class FakeApns:
    def __init__(self, team_id: str = "TEAM123456", key_id: str = "KEY1234567",
                 bundle_id: str = "com.sharestack.app", host: str = "127.0.0.1") -> None:
        self.team_id = team_id
        self.key_id = key_id
        self.bundle_id = bundle_id
        self.host = host
        signing_key = ec.generate_private_key(ec.SECP256R1())
        self.private_key_pem = signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._public_key = signing_key.public_key()
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str | tuple[str, float]]] = {}
        self._unregistered_at: dict[str, float] = {}
        self._requests: list[ReceivedRequest] = []
        # The last accepted provider token and when it was first seen.
        self._current_token: tuple[str, float] | None = None
        self._expired_tokens: set[str] = set()
        self.connections = 0
        self._protocols: set[_H2Protocol] = set()
        self.provider_tokens: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    # Lifecycle

    def start(self) -> Self:
        self._directory = tempfile.TemporaryDirectory(prefix="fake-apns-")
        cert_path, key_path = self_signed_certificate(Path(self._directory.name))
        self.ca_file = str(cert_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        context.set_alpn_protocols(["h2"])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-apns",
                                        daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(context), self._loop)
        self.port = future.result(timeout=10)
        self.base_url = f"https://{self.host}:{self.port}"
        return self

    async def _serve(self, context: ssl.SSLContext) -> int:
        self._server = await self._loop_required().create_server(
            lambda: _H2Protocol(self), self.host, 0, ssl=context
        )
        return self._server.sockets[0].getsockname()[1]

    def _loop_required(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._server is not None:
            server = self._server

            async def shut() -> None:
                server.close()
                for protocol in list(self._protocols):
                    if protocol.transport is not None:
                        protocol.transport.abort()
                # A transport closes its socket on a later turn of the loop.
                deadline = time.monotonic() + 5
                while self._protocols and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Test controls, callable from any thread

    def script(self, token: str, *reasons: str | tuple[str, float]) -> None:
        """Queue the reasons for the next requests to one device token, in order.

        A tuple ``(reason, retry_after)`` also sends a ``Retry-After`` header with that
        many seconds. NOTE: Apple documents no Retry-After on APNs error responses, so
        this only checks that the adapter honours one if it arrives.
        """
        for reason in reasons:
            name = reason[0] if isinstance(reason, tuple) else reason
            if name not in REASONS and name != SUCCESS:
                raise ValueError(f"unknown APNs reason {name!r}")
        with self._lock:
            self._scripts.setdefault(token, deque()).extend(reasons)

    def unregister(self, token: str, at: float) -> None:
        """Respond to the token's next request with 410 Unregistered, invalid since `at`
        (seconds since the epoch)."""
        with self._lock:
            self._unregistered_at[token] = at
            self._scripts.setdefault(token, deque()).append("Unregistered")

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def sent(self) -> int:
        with self._lock:
            return sum(1 for request in self._requests if request.status == 200)

    def clear(self) -> None:
        """Forget requests, scripts and provider tokens, as if freshly started."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self._unregistered_at.clear()
            self._current_token = None
            self._expired_tokens.clear()
            self.provider_tokens.clear()

    # Request handling, run on the fake's event loop

    def connection_opened(self, protocol: _H2Protocol) -> int:
        self._protocols.add(protocol)
        with self._lock:
            self.connections += 1
            return self.connections

    def handle(self, headers: dict[str, str], body: bytes,
               connection: int) -> tuple[int, dict[str, str], bytes]:
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        match = DEVICE_PATH.match(headers.get(":path", ""))
        token = match.group("token") if match else ""
        reason = self._check(headers, body, token)
        retry_after = None
        if reason is None:
            reason, retry_after = self._next_reason(token)
            if reason == "ExpiredProviderToken":
                self._expire(self._bearer(headers))
        status = 200 if reason == SUCCESS else REASONS[reason]
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        with self._lock:
            self._requests.append(
                ReceivedRequest(token, headers, payload, status, reason, connection)
            )
        response_headers = {"apns-id": apns_id}
        if retry_after is not None:
            response_headers["retry-after"] = str(retry_after)
        if status == 200:
            return status, response_headers, b""
        error: dict[str, Any] = {"reason": reason}
        if status == 410:
            with self._lock:
                since = self._unregistered_at.pop(token, time.time())
            error["timestamp"] = int(since * 1000)
        response_headers["content-type"] = "application/json"
        return status, response_headers, json.dumps(error).encode()

    def _check(self, headers: dict[str, str], body: bytes, token: str) -> str | None:
        """Return the reason APNs gives for a malformed request, in its order."""
        if headers.get(":method") != "POST":
            return "MethodNotAllowed"
        if not headers.get(":path", "").startswith("/3/device/"):
            return "BadPath"
        if not token:
            return "MissingDeviceToken"
        problem = self._check_provider_token(self._bearer(headers))
        if problem is not None:
            return problem
        topic = headers.get("apns-topic")
        if not topic:
            return "MissingTopic"
        if topic != self.bundle_id:
            return "BadTopic"
        if not HEX_TOKEN.match(token):
            return "BadDeviceToken"
        return self._check_headers(headers) or self._check_payload(body)

    @staticmethod
    def _bearer(headers: dict[str, str]) -> str:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" else ""

    def _check_provider_token(self, token: str) -> str | None:
        if not token:
            return "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self._public_key, algorithms=["ES256"],
                                options={"require": ["iss", "iat"], "verify_iat": False})
        except jwt.InvalidTokenError:
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id:
            return "UnrelatedKeyIdInToken"
        if claims["iss"] != self.team_id:
            return "InvalidProviderToken"
        now = time.time()
        with self._lock:
            if token in self._expired_tokens or now - claims["iat"] > TOKEN_MAX_AGE_SECONDS:
                return "ExpiredProviderToken"
            current = self._current_token
            if current is None or current[0] != token:
                replaced_early = (
                    current is not None
                    and current[0] not in self._expired_tokens
                    and now - current[1] < TOKEN_MIN_INTERVAL_SECONDS
                )
                if replaced_early:
                    return "TooManyProviderTokenUpdates"
                self._current_token = (token, now)
                self.provider_tokens.append(token)
        return None

    def _expire(self, token: str) -> None:
        with self._lock:
            self._expired_tokens.add(token)

    @staticmethod
    def _check_headers(headers: dict[str, str]) -> str | None:
        if headers.get("apns-push-type", "alert") not in PUSH_TYPES:
            return "InvalidPushType"
        if headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return "BadPriority"
        if headers.get("apns-push-type") == "background" and headers.get("apns-priority") == "10":
            return "BadPriority"
        if "apns-id" in headers:
            try:
                uuid.UUID(headers["apns-id"])
            except ValueError:
                return "BadMessageId"
        if not headers.get("apns-expiration", "0").isdigit():
            return "BadExpirationDate"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return "BadCollapseId"
        return None

    @staticmethod
    def _check_payload(body: bytes) -> str | None:
        if not body:
            return "PayloadEmpty"
        if len(body) > MAX_PAYLOAD_BYTES:
            return "PayloadTooLarge"
        try:
            payload = json.loads(body)
        except ValueError:
            return "PayloadEmpty"
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return "PayloadEmpty"
        return None

    def _next_reason(self, token: str) -> tuple[str, float | None]:
        """Pop the token's next scripted reason and its Retry-After seconds, if any."""
        with self._lock:
            queue = self._scripts.get(token)
            if not queue:
                return SUCCESS, None
            reason = queue.popleft()
            if not queue:
                del self._scripts[token]
        if isinstance(reason, tuple):
            return reason[0], reason[1]
        return reason, None


class _H2Protocol(asyncio.Protocol):
    """One HTTP/2 server connection, in which each stream is one request."""

    def __init__(self, fake: FakeApns) -> None:
        self.fake = fake
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.number = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.number = self.fake.connection_opened(self)
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._protocols.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(name): str(value) for name, value in event.headers}
                self.streams[event.stream_id] = (headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._respond(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.streams.pop(event.stream_id, None)
        self._flush()

    def _respond(self, stream_id: int) -> None:
        headers, body = self.streams.pop(stream_id)
        status, response_headers, payload = self.fake.handle(headers, bytes(body), self.number)
        self.h2.send_headers(
            stream_id,
            [(":status", str(status)), *response_headers.items(),
             ("content-length", str(len(payload)))],
            end_stream=not payload,
        )
        if payload:
            self.h2.send_data(stream_id, payload, end_stream=True)

    def _flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())
