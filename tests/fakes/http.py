"""The life cycle shared by the HTTP fakes: an aiohttp server on its own thread.

A subclass adds its routes in ``routes()``. Tests queue outcomes per phone number
with ``script(number, *outcomes)`` and read what arrived from ``requests``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

SUCCESS = "success"
# A load balancer's HTML error page instead of the provider's JSON or XML body.
BAD_GATEWAY = "bad_gateway"


def bad_gateway() -> web.Response:
    return web.Response(
        status=502,
        text="<html><body><h1>502 Bad Gateway</h1></body></html>",
        content_type="text/html",
    )


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake received it, after its checks passed or failed."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    # The parsed fields: form parameters, or the JSON object.
    fields: dict[str, Any] = field(default_factory=dict)
    status: int = 200


class FakeHttpServer:
    """An HTTP server on 127.0.0.1 and an ephemeral port, on a daemon thread."""

    name = "fake"
    outcomes: frozenset[str] = frozenset({SUCCESS})

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.base_url = ""
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str]] = {}
        self._requests: list[ReceivedRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=self.name, daemon=True
        )
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = future.result(timeout=10)
        self.base_url = f"http://{self.host}:{self.port}"
        return self

    def stop(self) -> None:
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> int:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        return self._runner.addresses[0][1]

    # Test controls

    def script(self, number: str, *outcomes: str) -> None:
        """Queue the outcomes of the next sends to one number; later sends succeed."""
        for outcome in outcomes:
            if outcome not in self.outcomes:
                raise ValueError(
                    f"unknown {self.name} outcome {outcome!r}; "
                    f"use one of {sorted(self.outcomes)}"
                )
        with self._lock:
            self._scripts.setdefault(number, deque()).extend(outcomes)

    def next_outcome(self, number: str) -> str:
        with self._lock:
            queue = self._scripts.get(number)
            if not queue:
                return SUCCESS
            outcome = queue.popleft()
            if not queue:
                del self._scripts[number]
            return outcome

    def peek_outcome(self, number: str) -> str:
        with self._lock:
            queue = self._scripts.get(number)
            return queue[0] if queue else SUCCESS

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._scripts.clear()


# The GSM 03.38 default alphabet and its extension table (two septets each), kept
# apart from the product's own counter so that the fakes check it independently.
GSM_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = "^{}\\[~]|€\f"


def billed_parts(text: str) -> int:
    """Count SMS parts as carriers bill them: 160/153 septets or 70/67 UTF-16 units."""
    if all(char in GSM_DEFAULT or char in GSM_EXTENDED for char in text):
        units = len(text) + sum(char in GSM_EXTENDED for char in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    if units <= single:
        return 1 if units else 0
    return (units + part - 1) // part
