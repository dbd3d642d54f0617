"""Access tokens shared by every worker process, such as OAuth and WeChat tokens.

With REDIS_URL set, a token lives in Redis until shortly before it expires. When it
is missing, one process takes a short lock and fetches it while the others poll for
the result, so a provider receives one token request however many workers need it.
Without Redis (the embedded defaults), each process keeps its own tokens.
"""
import os
import threading
import time
import uuid
from collections.abc import Callable

import redis
from django.conf import settings

# How long one process may spend fetching before another may try.
LOCK_SECONDS = 15.0
POLL_SECONDS = 0.05
KEY_PREFIX = "push:token:"

# fetch() returns the token and its lifetime in seconds.
Fetch = Callable[[], tuple[str, float]]

# Deletes the key only when it still holds the value given, so a process never drops
# a token that another process has just replaced, and never frees another's lock.
_DELETE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class TokenWaitTimeout(Exception):
    """Another process held the fetch lock for too long and stored no token."""


def cache_seconds(expires_in: float) -> float:
    """Keep a token until 10% of its life, at most 5 minutes, is left."""
    return max(expires_in - min(300.0, expires_in * 0.1), 1.0)


class RedisTokens:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    def get(self, key: str, fetch: Fetch, wait_seconds: float = LOCK_SECONDS) -> str:
        name = KEY_PREFIX + key
        lock = name + ":lock"
        deadline = time.monotonic() + wait_seconds
        while True:
            value = self.client.get(name)
            if value is not None:
                return value.decode()
            owner = uuid.uuid4().hex
            if self.client.set(lock, owner, nx=True, px=int(LOCK_SECONDS * 1000)):
                try:
                    # Another process may have stored a token between the GET and the lock.
                    value = self.client.get(name)
                    if value is not None:
                        return value.decode()
                    token, expires_in = fetch()
                    self.client.set(name, token, px=int(cache_seconds(expires_in) * 1000))
                    return token
                finally:
                    self._delete_if_equal(keys=[lock], args=[owner])
            if time.monotonic() >= deadline:
                raise TokenWaitTimeout(f"no token for {key!r} after {wait_seconds:.0f} s")
            time.sleep(POLL_SECONDS)

    def drop(self, key: str, token: str) -> None:
        """Forget a token the provider rejected, unless it was already replaced."""
        self._delete_if_equal(keys=[KEY_PREFIX + key], args=[token])


class LocalTokens:
    """The same interface within one process, for running without Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str, fetch: Fetch, wait_seconds: float = LOCK_SECONDS) -> str:
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            token, expires_in = fetch()
            self._tokens[key] = (token, time.monotonic() + cache_seconds(expires_in))
            return token

    def drop(self, key: str, token: str) -> None:
        with self._lock:
            if self._tokens.get(key, ("",))[0] == token:
                del self._tokens[key]


_store: tuple[int, RedisTokens | LocalTokens] | None = None
_store_lock = threading.Lock()


def shared_tokens() -> RedisTokens | LocalTokens:
    """Return this process's token store; a forked process makes its own."""
    global _store
    with _store_lock:
        if _store is None or _store[0] != os.getpid():
            if settings.REDIS_URL:
                store: RedisTokens | LocalTokens = RedisTokens(redis.Redis.from_url(settings.REDIS_URL))
            else:
                store = LocalTokens()
            _store = (os.getpid(), store)
        return _store[1]
