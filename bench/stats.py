"""Time the statistics query on hourly roll-ups that represent about ten million records.

It drops and recreates the database sharestack_bench_stats, migrates it, and fills
the roll-up table with SQL (not timed): DAYS days x 24 hours x 4 channel kinds x 2
providers x TYPES notification types x 3 variants. Each row counts 15 to 24 sent
messages and 0 or 1 failed one, about 20 records a row. It then times the statistics
query through the API view (Django's test client, in this process, no HTTP server)
for several filter and grouping cases, REPEATS times each, and prints the median.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "sharestack_bench_stats"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"

KINDS_AND_PROVIDERS = [
    ("app", "fcm"), ("app", "apns"), ("email", "ses"), ("email", "smtp"),
    ("sms", "twilio"), ("sms", "aliyun_sms"), ("wechat", "wechat_mp"), ("wechat", "wecom"),
]
VARIANTS = ["", "a", "b"]
CASES = [
    ("totals over all days", ""),
    ("group by channel", "group_by=channel"),
    ("group by channel and day", "group_by=channel,day"),
    ("group by hour of day, sms only", "group_by=hour_of_day&channel=sms"),
    ("group by type and variant, last 30 days", "group_by=type,variant&from={last_30}"),
    ("group by provider, one type, 7 days", "group_by=provider&type=type-3&from={last_7}"),
]


def reset_database() -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE_NAME}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO_ROOT, env=os.environ, check=True, capture_output=True,
    )


def fill_rollups(days: int, types: int) -> tuple[int, int]:
    """Insert the roll-up rows; return the row count and the records they represent."""
    kinds = ", ".join(f"('{kind}', '{provider}')" for kind, provider in KINDS_AND_PROVIDERS)
    variants = ", ".join(f"('{variant}')" for variant in VARIANTS)
    with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://")) as connection:
        connection.execute(f"""
            INSERT INTO analytics_hourlystat (
                hour, channel_kind, provider, notification_type, campaign_id, variant,
                sent, delivered, opened, clicked, failed, unsubscribed, segments, cost)
            SELECT hour, kind, provider, 'type-' || type, 0, variant,
                   sent, sent * 9 / 10, sent / 3, sent / 10, failed, 0,
                   CASE WHEN kind = 'sms' THEN sent * 2 ELSE 0 END, sent * 0.001
            FROM (
                SELECT hours.hour, channels.kind, channels.provider, types.type,
                       variants.variant,
                       15 + (row_number() OVER ()) % 10 AS sent,
                       (row_number() OVER ()) % 2 AS failed
                FROM generate_series(
                         date_trunc('hour', now() AT TIME ZONE 'UTC') - interval '{days} days',
                         date_trunc('hour', now() AT TIME ZONE 'UTC') - interval '1 hour',
                         interval '1 hour') AS hours(hour)
                CROSS JOIN (VALUES {kinds}) AS channels(kind, provider)
                CROSS JOIN generate_series(1, {types}) AS types(type)
                CROSS JOIN (VALUES {variants}) AS variants(variant)
            ) AS generated
        """)
        connection.execute("ANALYZE analytics_hourlystat")
        rows, records = connection.execute(
            "SELECT count(*), sum(sent + failed) FROM analytics_hourlystat"
        ).fetchone()
    return rows, records


def time_cases(repeats: int) -> None:
    import django

    django.setup()
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from sharestack_push.notifications.models import ApiKey

    _, plain = ApiKey.objects.create_key("bench-stats", ["admin"])
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    now = timezone.now()
    moments = {
        "last_30": (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:00:00Z"),
        "last_7": (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:00:00Z"),
    }
    print(f"{'case':45} {'median':>9} {'min':>9} {'max':>9} groups")
    for name, query in CASES:
        url = "/api/v1/notifications/stats?" + query.format(**moments)
        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.get(url)
            durations.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{url} returned {response.status_code}: {response.content[:300]!r}")
        groups = len(response.json().get("groups", [])) or "-"
        print(f"{name:45} {statistics.median(durations) * 1000:7.1f} ms "
              f"{min(durations) * 1000:6.1f} ms {max(durations) * 1000:6.1f} ms {groups}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="Days of roll-ups (default 90).")
    parser.add_argument("--types", type=int, default=10,
                        help="Notification types (default 10).")
    parser.add_argument("--repeats", type=int, default=7,
                        help="Timed runs of each case (default 7).")
    arguments = parser.parse_args()

    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sharestack_push.settings")
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(REPO_ROOT))

    reset_database()
    started = time.perf_counter()
    rows, records = fill_rollups(arguments.days, arguments.types)
    print(f"roll-up rows           {rows}")
    print(f"records they count     {records} (sent + failed)")
    print(f"filled in              {time.perf_counter() - started:.1f} s (not timed below)")
    time_cases(arguments.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
