"""Measure the time from an API call to the provider receiving the message.

The web app (gunicorn) and the Celery workers run as their own processes on the Redis
broker and PostgreSQL, as in bench/broadcast.py. The fake FCM server runs inside this
process, because only here can its request log, with the time each request arrived,
be read. Each push goes to its own user, so the fake's request for that user's device
token marks the moment the provider received it.

    .venv/bin/python bench/latency.py --pushes 200 --interval-ms 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    FCM_PROJECT_ID,
    BenchError,
    Processes,
    add_worker_arguments,
    create_api_key,
    create_fcm_channel,
    make_run_dir,
    post_push,
    prepare_database,
    print_idle_load,
    run_benchmark,
    seed_users,
    start_web,
    start_workers,
    warm_up,
    worker_options,
)
from tests.fakes.fcm import FakeFcm

# Pushes sent before the measured ones, so that each pool process has fetched its
# OAuth token and opened its connections to the fake.
WARM_UP_PUSHES = 10
WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Sample:
    token: str
    posted_at: float
    answered_at: float


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pushes", type=int, default=200, help="measured pushes (default 200)"
    )
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=20.0,
        help="milliseconds from the start of one POST to the start of the next "
        "(default 20)",
    )
    add_worker_arguments(parser)
    arguments = parser.parse_args()
    if arguments.pushes < 1:
        parser.error("--pushes must be at least 1")
    return arguments


def push_body(user_id: str, name: str) -> dict:
    return {
        "notification_id": f"bench-latency-{name}-{time.time_ns()}",
        "notification_type": "bench",
        "user_id": user_id,
        "channels": ["app"],
        "content": {"title": "Latency", "body": f"Push {name}"},
    }


def first_arrivals(fake: FakeFcm) -> dict[str, float]:
    """Return the receive time of the first request for each device token."""
    arrivals: dict[str, float] = {}
    for request in fake.requests:
        if request.token is not None:
            arrivals.setdefault(request.token, request.received_at)
    return arrivals


def wait_for_arrivals(
    fake: FakeFcm, tokens: list[str], processes: Processes
) -> dict[str, float]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        arrivals = first_arrivals(fake)
        missing = [token for token in tokens if token not in arrivals]
        if not missing:
            return arrivals
        if time.monotonic() > deadline:
            raise BenchError(
                f"the fake FCM server received {len(tokens) - len(missing)} of "
                f"{len(tokens)} pushes within {WAIT_SECONDS:.0f} s; first missing "
                f"token {missing[0]}"
            )
        processes.check_running()
        time.sleep(0.1)


def send_pushes(
    session: requests.Session,
    web_url: str,
    api_key: str,
    users: list[tuple[str, str]],
    interval: float,
) -> list[Sample]:
    """POST one push per user on a fixed schedule, so a slow POST does not delay it."""
    samples = []
    started = time.monotonic()
    for number, (user_id, token) in enumerate(users):
        delay = started + number * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        posted_at = time.monotonic()
        post_push(session, web_url, api_key, push_body(user_id, str(number)))
        samples.append(Sample(token, posted_at, time.monotonic()))
    return samples


def percentile(values: list[float], percent: int) -> float:
    """Return the percentile with linear interpolation between the nearest ranks."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def print_summary(name: str, values_ms: list[float]) -> None:
    print(
        f"{name:<28} median {statistics.median(values_ms):7.1f} ms   "
        f"p95 {percentile(values_ms, 95):7.1f} ms   "
        f"min {min(values_ms):7.1f} ms   max {max(values_ms):7.1f} ms"
    )


def run(arguments: argparse.Namespace) -> None:
    options = worker_options(arguments)
    run_dir = make_run_dir()
    processes = Processes(run_dir)
    fake = FakeFcm(project_id=FCM_PROJECT_ID)
    print(f"logs in {run_dir}", flush=True)
    try:
        prepare_database(run_dir)
        users = seed_users(WARM_UP_PUSHES + arguments.pushes)
        fake.start()
        create_fcm_channel(fake.base_url, fake.service_account)
        api_key = create_api_key(run_dir)
        web_url = start_web(processes)
        start_workers(processes, options)

        session = requests.Session()
        warm_up(session, web_url, api_key, processes)
        warm_users, measured_users = (
            users[:WARM_UP_PUSHES],
            users[WARM_UP_PUSHES:],
        )
        send_pushes(session, web_url, api_key, warm_users, arguments.interval_ms / 1000)
        wait_for_arrivals(fake, [token for _, token in warm_users], processes)
        print_idle_load()

        samples = send_pushes(
            session, web_url, api_key, measured_users, arguments.interval_ms / 1000
        )
        arrivals = wait_for_arrivals(fake, [s.token for s in samples], processes)
    finally:
        processes.stop_all()
        fake.stop()

    to_provider = [(arrivals[s.token] - s.posted_at) * 1000 for s in samples]
    api_answer = [(s.answered_at - s.posted_at) * 1000 for s in samples]
    posting = samples[-1].posted_at - samples[0].posted_at
    receiving = max(arrivals[s.token] for s in samples) - samples[0].posted_at
    print(
        f"pushes                       {len(samples)}, one user each, "
        f"{arguments.interval_ms:g} ms apart, after {WARM_UP_PUSHES} warm-up pushes"
    )
    print(
        f"rates                        posted {(len(samples) - 1) / posting:.1f}/s, "
        f"received by the fake {len(samples) / receiving:.1f}/s"
    )
    print(f"workers                      {options.describe()}")
    print_summary("POST to fake FCM received", to_provider)
    print_summary("POST to API answered (202)", api_answer)


def main() -> int:
    arguments = parse_arguments()
    return run_benchmark("latency", lambda: run(arguments))


if __name__ == "__main__":
    sys.exit(main())
