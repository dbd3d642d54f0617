"""The `/metrics` page in the Prometheus text exposition format, version 0.0.4."""
import logging

import redis
from django.conf import settings
from django.db.models import Count, Sum
from redis.exceptions import RedisError

from analytics.latency import LATENCY_BUCKETS, bucket_label, latency_histograms
from analytics.models import HourlyStat
from sharestack_push.notifications.constants import RecordStatus
from sharestack_push.notifications.models import PushRecord

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "sharestack_push"
BACKLOG_STATUSES = (RecordStatus.QUEUED, RecordStatus.DEFERRED, RecordStatus.RETRYING)
# kombu's Redis transport keeps a message of priority p > 0 under "<queue>\x06\x16<p>".
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
# Roll-up counters listed as the "event" label of the engagement metric.
ENGAGEMENT_EVENTS = (
    "opened", "clicked", "machine_opened", "machine_clicked", "unsubscribed", "complained",
)


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def sample(name: str, labels: dict[str, str], value: float) -> str:
    pairs = ",".join(f'{key}="{escape_label(str(text))}"' for key, text in labels.items())
    number = int(value) if float(value).is_integer() else value
    return f"{name}{{{pairs}}} {number}" if pairs else f"{name} {number}"


def header(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def record_counts() -> list[tuple[str, str, str, int]]:
    """Return (channel kind, provider, status, count) rows from one GROUP BY query."""
    rows = (
        PushRecord.objects.values("channel_kind", "provider", "status")
        .annotate(n=Count("id"))
        .order_by("channel_kind", "provider", "status")
    )
    return [(row["channel_kind"], row["provider"], row["status"], row["n"]) for row in rows]


def engagement_counts() -> list[dict]:
    """Sum the engagement counters of every roll-up row per channel kind and provider."""
    return list(
        HourlyStat.objects.values("channel_kind", "provider")
        .annotate(**{event: Sum(event) for event in ENGAGEMENT_EVENTS})
        .order_by("channel_kind", "provider")
    )


def broker_queue_lengths() -> dict[str, int]:
    """Return the message count of each Celery queue, or {} unless the broker is Redis."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return {}
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    pipeline = client.pipeline(transaction=False)
    for name in names:
        for step in KOMBU_PRIORITY_STEPS:
            pipeline.llen(f"{name}{KOMBU_PRIORITY_SEPARATOR}{step}" if step else name)
    try:
        lengths = pipeline.execute()
    except RedisError as error:
        logger.warning("metrics: broker queue lengths unavailable: %s", error)
        return {}
    steps = len(KOMBU_PRIORITY_STEPS)
    return {name: sum(lengths[i * steps : (i + 1) * steps]) for i, name in enumerate(names)}


def record_lines(rows: list[tuple[str, str, str, int]]) -> list[str]:
    name = f"{PREFIX}_records"
    lines = header(name, "gauge", "Push records by channel kind, provider and status.")
    for kind, provider, status, count in rows:
        labels = {"channel_kind": kind, "provider": provider, "status": status}
        lines.append(sample(name, labels, count))
    return lines


def backlog_lines(rows: list[tuple[str, str, str, int]]) -> list[str]:
    name = f"{PREFIX}_backlog_records"
    lines = header(name, "gauge", "Records waiting to be sent, by status.")
    for status in BACKLOG_STATUSES:
        total = sum(count for _, _, row_status, count in rows if row_status == status)
        lines.append(sample(name, {"status": status}, total))
    return lines


def engagement_lines(rows: list[dict]) -> list[str]:
    name = f"{PREFIX}_engagement_messages"
    lines = header(
        name, "gauge",
        "Messages opened, clicked, unsubscribed or complained about, by channel kind and "
        "provider; machine_opened and machine_clicked are opens and clicks by software.",
    )
    for row in rows:
        for event in ENGAGEMENT_EVENTS:
            labels = {"channel_kind": row["channel_kind"], "provider": row["provider"],
                      "event": event}
            lines.append(sample(name, labels, row[event] or 0))
    return lines


def latency_lines(histograms: dict[str, dict[str, float]]) -> list[str]:
    name = f"{PREFIX}_provider_latency_seconds"
    lines = header(name, "histogram", "Duration of one adapter send call (one batch).")
    for provider, fields in histograms.items():
        for bound in LATENCY_BUCKETS:
            label = bucket_label(bound)
            value = fields.get(label, 0)
            lines.append(sample(f"{name}_bucket", {"provider": provider, "le": label}, value))
        count = fields.get("count", 0)
        lines.append(sample(f"{name}_bucket", {"provider": provider, "le": "+Inf"}, count))
        lines.append(sample(f"{name}_sum", {"provider": provider}, fields.get("sum", 0)))
        lines.append(sample(f"{name}_count", {"provider": provider}, count))
    return lines


def broker_lines(lengths: dict[str, int]) -> list[str]:
    name = f"{PREFIX}_broker_queue_length"
    lines = header(name, "gauge", "Messages waiting in each Celery queue on a Redis broker.")
    for queue, length in lengths.items():
        lines.append(sample(name, {"queue": queue}, length))
    return lines


def render_metrics() -> str:
    """Render every metric with two database queries and a few Redis calls."""
    rows = record_counts()
    lines = [
        *record_lines(rows),
        *backlog_lines(rows),
        *engagement_lines(engagement_counts()),
        *latency_lines(latency_histograms()),
        *broker_lines(broker_queue_lengths()),
    ]
    return "\n".join(lines) + "\n"
