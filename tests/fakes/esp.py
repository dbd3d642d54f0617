"""Parts shared by the fake ESP HTTP APIs: an aiohttp server on its own thread and scripts.

A test scripts outcomes per recipient address with ``script(address, *outcomes)``.
Each outcome is a name from the fake's ``OUTCOMES`` or a tuple ``(name, retry_after)``
that adds a ``Retry-After`` header. Once an address's queue is empty, its sends succeed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from typing import Any, Self

from aiohttp import web

SUCCESS = "success"

Outcome = str | tuple[str, float | str]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


class FakeEspServer:
    """An aiohttp application on a daemon thread; subclasses add routes in ``routes``."""

    OUTCOMES: frozenset[str] = frozenset()

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.base_url = ""
        self.lock = threading.Lock()
        # Every send request, accepted or not.
        self.request_count = 0
        self._scripts: dict[str, deque[Outcome]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = future.result(timeout=10)
        self.base_url = f"http://{self.host}:{self.port}"
        return self

    async def _serve(self) -> int:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        return self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            cleanup = asyncio.run_coroutine_threadsafe(
                self._runner.cleanup(), self._loop
            )
            cleanup.result(10)
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

    def count_request(self) -> None:
        with self.lock:
            self.request_count += 1

    def script(self, address: str, *outcomes: Outcome) -> None:
        """Queue the responses for the next sends to one recipient address, in order."""
        for outcome in outcomes:
            name = outcome[0] if isinstance(outcome, tuple) else outcome
            if name not in self.OUTCOMES:
                raise ValueError(
                    f"unknown outcome {name!r}; use one of {sorted(self.OUTCOMES)}"
                )
        with self.lock:
            self._scripts.setdefault(address.lower(), deque()).extend(outcomes)

    def next_outcome(self, address: str) -> tuple[str, dict[str, str] | None]:
        """Pop the next scripted outcome for an address as (name, extra headers)."""
        with self.lock:
            queue = self._scripts.get(address.lower())
            if not queue:
                return SUCCESS, None
            outcome = queue.popleft()
            if not queue:
                del self._scripts[address.lower()]
        if isinstance(outcome, tuple):
            return outcome[0], {"Retry-After": str(outcome[1])}
        return outcome, None
