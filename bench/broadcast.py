"""Broadcast one push to N users through the whole pipeline and print the throughput.

Every part runs as its own process on 127.0.0.1: the fake FCM server, the web app
under gunicorn and the Celery workers on the Redis broker, with PostgreSQL underneath.
The run seeds N user profiles with one FCM device each (not timed), then times one
``POST /api/v1/notifications/push`` with ``"broadcast": true`` until the fake FCM server
and the database both count N messages sent.

    .venv/bin/python bench/broadcast.py 10000
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchError,
    CpuSummary,
    Processes,
    ResourceSampler,
    WorkerOptions,
    add_worker_arguments,
    create_api_key,
    create_fcm_channel,
    make_run_dir,
    post_push,
    prepare_database,
    print_idle_load,
    print_processes,
    run_benchmark,
    seed_users,
    start_fake_fcm,
    start_web,
    start_workers,
    warm_up,
    worker_options,
)

POLL_SECONDS = 0.1
# The run fails when neither count has grown for this long.
STALL_SECONDS = 30.0


@dataclass(frozen=True)
class Counts:
    fake_sent: int
    fake_requests: int
    database_sent: int


@dataclass(frozen=True)
class Result:
    users: int
    elapsed: float
    counts: Counts


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("users", type=int, help="number of users, one FCM device each")
    add_worker_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for all deliveries (default 60 + N / 200)",
    )
    arguments = parser.parse_args()
    if arguments.users < 1:
        parser.error("users must be at least 1")
    return arguments


def read_counts(
    session: requests.Session, fcm_url: str, task_id: str, users: int
) -> Counts:
    """Read the fake's counters, and the database's sent count once the fake has all.

    A record turns sent only after the fake has returned its response, so counting
    rows earlier would only load the machine under test.
    """
    from sharestack_push.notifications.models import PushRecord

    stats = session.get(f"{fcm_url}/_fake/stats", timeout=5).json()
    database_sent = -1
    if stats["sent"] >= users:
        records = PushRecord.objects.filter(task_id=task_id, status="sent")
        database_sent = records.count()
    return Counts(stats["sent"], stats["requests"], database_sent)


def stall_report(counts: Counts, task_id: str) -> str:
    from django.db.models import Count

    from sharestack_push.notifications.models import PushRecord, PushTask

    task = PushTask.objects.get(pk=task_id)
    statuses = dict(
        PushRecord.objects.filter(task_id=task_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return (
        f"fake FCM answered {counts.fake_requests} requests, {counts.fake_sent} of "
        f"them sent; "
        f"database records by status {statuses}; task {task.status} with "
        f"{task.chunks_done} of {task.chunks_total} chunks done"
    )


def wait_for_deliveries(
    processes: Processes,
    session: requests.Session,
    fcm_url: str,
    task_id: str,
    users: int,
    timeout: float,
) -> Counts:
    """Poll both counts until each reaches `users`.

    Raises BenchError when a started process exits, when neither count grows for
    STALL_SECONDS, or when the timeout ends.
    """
    started = time.monotonic()
    last_progress = started
    previous = Counts(0, 0, -1)
    while True:
        processes.check_running()
        counts = read_counts(session, fcm_url, task_id, users)
        if counts.fake_sent >= users and counts.database_sent >= users:
            return counts
        now = time.monotonic()
        if counts != previous:
            previous, last_progress = counts, now
        if now - last_progress > STALL_SECONDS:
            raise BenchError(
                f"no progress for {STALL_SECONDS:.0f} s: "
                f"{stall_report(counts, task_id)}"
            )
        if now - started > timeout:
            raise BenchError(
                f"timed out after {timeout:.0f} s: {stall_report(counts, task_id)}"
            )
        time.sleep(POLL_SECONDS)


def broadcast(
    processes: Processes,
    sampler: ResourceSampler,
    web_url: str,
    fcm_url: str,
    api_key: str,
    arguments: argparse.Namespace,
) -> Result:
    """Time one broadcast from just before the POST until every delivery is counted."""
    session = requests.Session()
    warm_up(session, web_url, api_key, processes)
    print_idle_load()
    body = {
        "notification_id": f"bench-broadcast-{time.time_ns()}",
        "notification_type": "bench",
        "broadcast": True,
        "channels": ["app"],
        "content": {"title": "Benchmark", "body": "One broadcast to every user"},
    }
    timeout = arguments.timeout or 60 + arguments.users / 200

    sampler.start_window()
    started = time.monotonic()
    task_id = post_push(session, web_url, api_key, body)["id"]
    counts = wait_for_deliveries(
        processes, session, fcm_url, task_id, arguments.users, timeout
    )
    elapsed = time.monotonic() - started

    if counts.fake_sent > arguments.users:
        raise BenchError(
            f"the fake FCM server counted {counts.fake_sent} sends for "
            f"{arguments.users} users: some messages went out twice"
        )
    return Result(arguments.users, elapsed, counts)


def run(arguments: argparse.Namespace) -> None:
    options = worker_options(arguments)
    run_dir = make_run_dir()
    processes = Processes(run_dir)
    sampler: ResourceSampler | None = None
    print(f"logs in {run_dir}", flush=True)
    try:
        prepare_database(run_dir)
        seeding_started = time.monotonic()
        seed_users(arguments.users)
        seeding = time.monotonic() - seeding_started
        print(
            f"seeded {arguments.users} users and devices in {seeding:.1f} s (not timed)"
        )

        fcm_url, service_account = start_fake_fcm(processes)
        create_fcm_channel(fcm_url, service_account)
        api_key = create_api_key(run_dir)
        web_url = start_web(processes)
        start_workers(processes, options)

        sampler = ResourceSampler(processes)
        sampler.start()
        result = broadcast(processes, sampler, web_url, fcm_url, api_key, arguments)
    finally:
        if sampler is not None:
            sampler.stop()
        processes.stop_all()
    print_result(result, options, sampler.cpu_summary())
    print_processes(sampler)


def print_result(
    result: Result, options: WorkerOptions, cpu: CpuSummary | None
) -> None:
    from django.conf import settings

    print(f"users (N)              {result.users}")
    print(f"elapsed                {result.elapsed:.2f} s")
    print(f"deliveries per second  {result.users / result.elapsed:.0f}")
    if cpu is not None:
        print(
            f"CPU per delivery       {1000 * cpu.pipeline / result.users:.2f} ms "
            "(started processes, PostgreSQL and Redis)"
        )
        print(
            f"unaccounted CPU        {cpu.other:.1f} s during the run, "
            f"{100 * cpu.other / (cpu.window * cpu.cpus):.0f}% of the machine "
            "(other work, short-lived processes, kernel threads)"
        )
    print(f"fake FCM requests      {result.counts.fake_requests}")
    print(f"workers                {options.describe()}")
    print(
        f"pipeline settings      PUSH_CHUNK_SIZE={settings.PUSH_CHUNK_SIZE} "
        f"PUSH_SEND_BATCH_SIZE={settings.PUSH_SEND_BATCH_SIZE} "
        f"PUSH_CLAIM_BATCH_SIZE={settings.PUSH_CLAIM_BATCH_SIZE} "
        f"LOG_LEVEL={settings.LOGGING['root']['level']}"
    )


def main() -> int:
    arguments = parse_arguments()
    return run_benchmark("broadcast", lambda: run(arguments))


if __name__ == "__main__":
    sys.exit(main())
