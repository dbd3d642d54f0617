"""Access tokens and rate limits shared through the real Redis."""
import multiprocessing
import threading
import time

import pytest
import redis
from django.conf import settings

from channels_app.providers.tokens import (
    LocalTokens,
    RedisTokens,
    TokenWaitTimeout,
    cache_seconds,
    shared_tokens,
)
from channels_app.ratelimit import LocalLimiter, RedisLimiter, limiter


@pytest.fixture
def client():
    return redis.Redis.from_url(settings.REDIS_URL)


class CountingFetch:
    def __init__(self, delay: float = 0.0, lifetime: float = 3600.0) -> None:
        self.calls = 0
        self.delay = delay
        self.lifetime = lifetime
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, float]:
        with self._lock:
            self.calls += 1
            number = self.calls
        time.sleep(self.delay)
        return f"token-{number}", self.lifetime


def test_concurrent_callers_share_one_fetch(client):
    tokens = RedisTokens(client)
    fetch = CountingFetch(delay=0.3)
    seen: list[str] = []

    def worker():
        seen.append(RedisTokens(redis.Redis.from_url(settings.REDIS_URL)).get("chan:oauth", fetch))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetch.calls == 1
    assert seen == ["token-1"] * 5
    assert tokens.get("chan:oauth", fetch) == "token-1"


def test_token_expires_before_the_provider_says(client):
    RedisTokens(client).get("chan:oauth", CountingFetch(lifetime=7200))
    assert 6500 < client.pttl("push:token:chan:oauth") / 1000 <= 6900


def test_cache_time_keeps_a_margin():
    assert cache_seconds(7200) == 6900
    assert cache_seconds(100) == 90
    assert cache_seconds(0.5) == 1.0


def test_drop_forgets_only_the_rejected_token(client):
    tokens = RedisTokens(client)
    fetch = CountingFetch()
    tokens.get("chan:oauth", fetch)
    tokens.drop("chan:oauth", "some-older-token")
    assert tokens.get("chan:oauth", fetch) == "token-1"
    tokens.drop("chan:oauth", "token-1")
    assert tokens.get("chan:oauth", fetch) == "token-2"


def test_failed_fetch_frees_the_lock_for_the_next_caller(client):
    tokens = RedisTokens(client)

    def failing() -> tuple[str, float]:
        raise OSError("token endpoint down")

    with pytest.raises(OSError):
        tokens.get("chan:oauth", failing)
    assert tokens.get("chan:oauth", CountingFetch()) == "token-1"


def test_waiter_gives_up_when_the_holder_never_stores(client):
    client.set("push:token:chan:oauth:lock", "another-process", px=5000)
    with pytest.raises(TokenWaitTimeout):
        RedisTokens(client).get("chan:oauth", CountingFetch(), wait_seconds=0.2)


def test_local_tokens_cache_and_drop():
    tokens = LocalTokens()
    fetch = CountingFetch()
    assert tokens.get("k", fetch) == tokens.get("k", fetch) == "token-1"
    tokens.drop("k", "token-1")
    assert tokens.get("k", fetch) == "token-2"


def test_store_follows_the_settings(settings):
    assert isinstance(shared_tokens(), RedisTokens)
    assert isinstance(limiter(), RedisLimiter)


def _take_permits(url: str, results) -> None:
    granted = 0
    bucket = RedisLimiter(redis.Redis.from_url(url))
    started = time.time()
    for _ in range(40):
        granted += bucket.acquire("chan-shared", 10, 1).granted
    results.put((granted, started, time.time()))


def test_rate_limit_holds_across_processes():
    """Two processes asking at once share one burst and one refill rate between them."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_take_permits, args=(settings.REDIS_URL, results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    runs = [results.get(timeout=5), results.get(timeout=5)]
    total = sum(granted for granted, _, _ in runs)
    elapsed = max(end for _, _, end in runs) - min(start for _, start, _ in runs)
    # A burst of 10 plus 10 per second while either process ran. Each process alone
    # would get that much, so two separate limits would grant about twice as many.
    assert 10 <= total <= 10 + 10 * elapsed + 1


def test_rate_limit_refills_at_the_rate(client):
    bucket = RedisLimiter(client)
    assert bucket.acquire("chan", 20, 100).granted == 20
    empty = bucket.acquire("chan", 20, 1)
    assert empty.granted == 0
    assert 0 < empty.wait <= 0.05
    time.sleep(0.12)
    assert bucket.acquire("chan", 20, 100).granted in (2, 3)


def test_local_limiter_matches():
    bucket = LocalLimiter()
    assert bucket.acquire("chan", 5, 9).granted == 5
    assert bucket.acquire("chan", 5, 1).granted == 0
