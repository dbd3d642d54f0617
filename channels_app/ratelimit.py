"""Per-channel send rates that hold across every worker process together.

The limit is a generic cell rate algorithm (GCRA) kept in Redis. One key per channel
contains the theoretical arrival time of the next message. A Lua script takes as many
permits as the rate allows in one atomic step, and it reads Redis's own clock, so the
workers' clocks do not matter. A channel may send a burst of one second's worth of
messages, then one message every 1/rate seconds. Without Redis (the embedded
defaults), each process keeps its own limit.
"""
import os
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

KEY_PREFIX = "push:rate:"

# KEYS[1]: the channel's key. ARGV: interval between messages in microseconds, the
# burst in microseconds, the permits requested. Returns {granted, wait in microseconds}.
_ACQUIRE = """
local clock = redis.call('time')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local tat = tonumber(redis.call('get', KEYS[1]) or now)
if tat < now then tat = now end
local granted = math.floor((burst - (tat - now)) / interval)
if granted > requested then granted = requested end
if granted < 0 then granted = 0 end
if granted > 0 then
    tat = tat + granted * interval
    redis.call('set', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local wait = 0
if granted < requested then wait = tat + interval - burst - now end
return {granted, string.format('%.0f', wait)}
"""


@dataclass(frozen=True)
class Grant:
    granted: int
    # Seconds until the next permit, when fewer were granted than requested.
    wait: float


def intervals(rate: float) -> tuple[int, int]:
    interval = max(int(1_000_000 / rate), 1)
    return interval, max(interval * int(max(rate, 1)), interval)


class RedisLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._acquire = client.register_script(_ACQUIRE)

    def acquire(self, key: str, rate: float, requested: int) -> Grant:
        interval, burst = intervals(rate)
        granted, wait = self._acquire(keys=[KEY_PREFIX + key], args=[interval, burst, requested])
        return Grant(int(granted), max(int(wait), 0) / 1_000_000)


class LocalLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}

    def acquire(self, key: str, rate: float, requested: int) -> Grant:
        interval, burst = intervals(rate)
        with self._lock:
            now = time.monotonic_ns() // 1000
            tat = max(self._tat.get(key, now), now)
            granted = max(min((burst - (tat - now)) // interval, requested), 0)
            tat += granted * interval
            self._tat[key] = tat
            wait = tat + interval - burst - now if granted < requested else 0
            return Grant(granted, max(wait, 0) / 1_000_000)


_limiter: tuple[int, RedisLimiter | LocalLimiter] | None = None
_limiter_lock = threading.Lock()


def limiter() -> RedisLimiter | LocalLimiter:
    """Return this process's limiter; a forked process makes its own."""
    global _limiter
    with _limiter_lock:
        if _limiter is None or _limiter[0] != os.getpid():
            if settings.REDIS_URL:
                chosen: RedisLimiter | LocalLimiter = RedisLimiter(redis.Redis.from_url(settings.REDIS_URL))
            else:
                chosen = LocalLimiter()
            _limiter = (os.getpid(), chosen)
        return _limiter[1]
