"""A small threaded HTTP server on 127.0.0.1 that the app-push fakes build on.

A subclass implements ``respond(request)`` and returns (status, headers, body). The
base records every request and keeps per-token scripts: ``script(token, *outcomes)``
queues outcome names that ``take_outcome(tokens)`` pops when a request names the
token. Tokens in ``invalid_tokens`` are unknown to the fake provider.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


Answer = tuple[int, dict[str, str], bytes]


def json_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(
        body, ensure_ascii=False
    ).encode()


class FakeHttpServer:
    """Base of the fakes: serve, record requests, and keep per-token scripts."""

    outcomes: frozenset[str] = frozenset()
    name = "fake"

    def __init__(self) -> None:
        self.base_url = ""
        self.invalid_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str]] = {}
        self._requests: list[ReceivedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                url = urlsplit(self.path)
                request = ReceivedRequest(
                    method=self.command, path=url.path,
                    query=dict(parse_qsl(url.query, keep_blank_values=True)),
                    headers={k: v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                status, headers, body = fake.respond(request)
                fake._record(request, status)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval keeps stop() fast: shutdown() waits for one poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
            name=self.name, daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def respond(self, request: ReceivedRequest) -> Answer:
        raise NotImplementedError

    # Test controls

    def script(self, token: str, *outcomes: str) -> None:
        """Queue outcomes for the next requests that name this token."""
        for outcome in outcomes:
            if outcome not in self.outcomes:
                raise ValueError(
                    f"unknown {self.name} outcome {outcome!r}; use one of "
                    f"{sorted(self.outcomes)}"
                )
        with self._lock:
            self._scripts.setdefault(token, deque()).extend(outcomes)

    def take_outcome(self, tokens: list[str]) -> str | None:
        """Pop and return the first scripted outcome among tokens, if any."""
        with self._lock:
            for token in tokens:
                queue = self._scripts.get(token)
                if queue:
                    return queue.popleft()
        return None

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self.invalid_tokens.clear()

    def _record(self, request: ReceivedRequest, status: int) -> None:
        with self._lock:
            self._requests.append(
                ReceivedRequest(request.method, request.path, request.query,
                                request.headers, request.body, status)
            )
