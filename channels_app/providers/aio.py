"""One asyncio event loop per process, on a daemon thread, for concurrent HTTP sends.

Adapters keep their aiohttp sessions on this loop, so connections are reused across
batches. A forked worker process starts its own loop on first use.
"""
import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            thread = threading.Thread(
                target=_loop.run_forever, name="provider-io", daemon=True
            )
            thread.start()
        return _loop


def run(coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run a coroutine on the shared loop and wait for its result."""
    future = asyncio.run_coroutine_threadsafe(coroutine, event_loop())
    return future.result(timeout)
