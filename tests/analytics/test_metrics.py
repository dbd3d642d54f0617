"""`/metrics`: the exposition format, its values, and who may read it."""
import pytest
import redis
from django.conf import settings
from django.test import override_settings
from kombu import Queue

from analytics.latency import observe_latency
from analytics.metrics import escape_label, render_metrics

METRICS_URL = "/metrics"


def metric_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# Queue names no worker consumes, so their lengths stay as the test leaves them.
TEST_QUEUES = [Queue("metrics-test.a"), Queue("metrics-test.b")]


@pytest.fixture
def broker():
    """The Redis broker with the test queues empty, before and after the test."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = [f"{queue.name}{suffix}" for queue in TEST_QUEUES
            for suffix in ["", "\x06\x163", "\x06\x166", "\x06\x169"]]
    client.delete(*keys)
    with override_settings(CELERY_TASK_QUEUES=TEST_QUEUES):
        yield client
    client.delete(*keys)


def test_records_and_backlog_by_status(add_records, broker):
    add_records("email", "smtp", "sent", 3)
    add_records("email", "smtp", "failed", 1)
    add_records("app", "fcm", "queued", 2)
    add_records("app", "fcm", "retrying", 1)
    add_records("sms", "", "deferred", 4)

    lines = metric_lines(render_metrics())

    assert lines[:9] == [
        'sharestack_push_records{channel_kind="app",provider="fcm",status="queued"} 2',
        'sharestack_push_records{channel_kind="app",provider="fcm",status="retrying"} 1',
        'sharestack_push_records{channel_kind="email",provider="smtp",status="failed"} 1',
        'sharestack_push_records{channel_kind="email",provider="smtp",status="sent"} 3',
        'sharestack_push_records{channel_kind="sms",provider="",status="deferred"} 4',
        'sharestack_push_backlog_records{status="queued"} 2',
        'sharestack_push_backlog_records{status="deferred"} 4',
        'sharestack_push_backlog_records{status="retrying"} 1',
        'sharestack_push_broker_queue_length{queue="metrics-test.a"} 0',
    ]


def test_every_metric_has_help_and_type(db, broker):
    text = render_metrics()
    for name, kind in [
        ("sharestack_push_records", "gauge"),
        ("sharestack_push_backlog_records", "gauge"),
        ("sharestack_push_provider_latency_seconds", "histogram"),
        ("sharestack_push_broker_queue_length", "gauge"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text
        assert f"# HELP {name} " in text
    assert text.endswith("\n")


def test_latency_histogram_is_cumulative(db, broker):
    observe_latency("fcm", 0.04)
    observe_latency("fcm", 0.3)
    observe_latency("fcm", 45.0)
    observe_latency("apns", 0.1)

    lines = metric_lines(render_metrics())
    name = "sharestack_push_provider_latency_seconds"
    fcm = [line for line in lines if line.startswith(name) and 'provider="fcm"' in line]

    assert fcm == [
        f'{name}_bucket{{provider="fcm",le="0.05"}} 1',
        f'{name}_bucket{{provider="fcm",le="0.1"}} 1',
        f'{name}_bucket{{provider="fcm",le="0.25"}} 1',
        f'{name}_bucket{{provider="fcm",le="0.5"}} 2',
        f'{name}_bucket{{provider="fcm",le="1.0"}} 2',
        f'{name}_bucket{{provider="fcm",le="2.5"}} 2',
        f'{name}_bucket{{provider="fcm",le="5.0"}} 2',
        f'{name}_bucket{{provider="fcm",le="10.0"}} 2',
        f'{name}_bucket{{provider="fcm",le="30.0"}} 2',
        f'{name}_bucket{{provider="fcm",le="+Inf"}} 3',
        f'{name}_sum{{provider="fcm"}} 45.34',
        f'{name}_count{{provider="fcm"}} 3',
    ]
    assert f'{name}_count{{provider="apns"}} 1' in lines


@override_settings(REDIS_URL="")
def test_latency_without_redis_is_not_kept(db, broker):
    observe_latency("fcm", 0.2)
    assert "_count{" not in render_metrics()


def test_broker_queue_length_counts_priority_lists(db, broker):
    broker.rpush("metrics-test.a", "m1", "m2")
    broker.rpush("metrics-test.b\x06\x163", "m3")
    broker.rpush("metrics-test.b", "m4")
    broker.rpush("metrics-test.b\x06\x169", "m5")

    lines = metric_lines(render_metrics())

    assert 'sharestack_push_broker_queue_length{queue="metrics-test.a"} 2' in lines
    assert 'sharestack_push_broker_queue_length{queue="metrics-test.b"} 3' in lines


@override_settings(CELERY_BROKER_URL="filesystem-atomic://")
def test_no_queue_lengths_for_other_brokers(db):
    assert "sharestack_push_broker_queue_length{" not in render_metrics()


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_unreachable_broker_leaves_queue_lengths_out(db):
    assert "sharestack_push_broker_queue_length{" not in render_metrics()


def test_label_values_are_escaped():
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_loopback_reads_metrics_without_key(client, db, broker):
    response = client.get(METRICS_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# TYPE sharestack_push_records gauge" in response.content


def test_remote_request_needs_key(client, db):
    response = client.get(METRICS_URL, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 401


def test_remote_request_needs_admin_scope(make_client, db):
    response = make_client("push").get(METRICS_URL, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 403


def test_remote_request_with_admin_key(admin_client, broker):
    response = admin_client.get(METRICS_URL, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200


def test_loopback_with_wrong_key_is_rejected(make_client, db):
    client = make_client("push")
    response = client.get(METRICS_URL)
    assert response.status_code == 403
