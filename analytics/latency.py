"""Provider latency histograms kept in Redis, so every worker adds to the same counts.

Each provider has one Redis hash: a cumulative count per bucket (`le`), `count` and
`sum` in seconds, the fields of a Prometheus histogram.
"""
import logging

import redis
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Upper bounds in seconds. The +Inf bucket is not stored because it equals `count`.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROVIDERS_KEY = "metrics:latency:providers"
KEY_PREFIX = "metrics:latency:"


def redis_client() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(settings.REDIS_URL)


def bucket_label(bound: float) -> str:
    return repr(bound)


def observe_latency(provider: str, seconds: float) -> None:
    """Add one adapter call of `seconds` to the provider's histogram.

    NOTE: without REDIS_URL no latency is kept. A Redis error is logged and the
    observation is lost, because a send must not fail for a metric.
    """
    client = redis_client()
    if client is None:
        return
    key = f"{KEY_PREFIX}{provider}"
    pipeline = client.pipeline(transaction=False)
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            pipeline.hincrby(key, bucket_label(bound), 1)
    pipeline.hincrby(key, "count", 1)
    pipeline.hincrbyfloat(key, "sum", seconds)
    pipeline.sadd(PROVIDERS_KEY, provider)
    try:
        pipeline.execute()
    except RedisError as error:
        logger.warning("%s: latency not recorded: %s", provider, error)


def latency_histograms() -> dict[str, dict[str, float]]:
    """Return {provider: {bucket label, "count", "sum": value}} from Redis."""
    client = redis_client()
    if client is None:
        return {}
    histograms = {}
    for raw in sorted(client.smembers(PROVIDERS_KEY)):
        provider = raw.decode()
        fields = client.hgetall(f"{KEY_PREFIX}{provider}")
        histograms[provider] = {name.decode(): float(value) for name, value in fields.items()}
    return histograms
