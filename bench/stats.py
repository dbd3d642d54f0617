"""Time the statistics questions on data that represents about ten million records.

It drops and recreates the database sharestack_bench_stats, migrates it, and fills
the roll-up table with SQL (not timed): DAYS days x 24 hours x 4 channel kinds x 2
providers x TYPES notification types x 3 variants. Each row counts 15 to 24 sent
messages and 0 or 1 failed one, about 20 records a row. The churn question reads
records, not roll-ups, so it also inserts RECORDS sent records spread evenly over the
DAYS days to USERS users, and activity days for three users in four (not timed).
It then times each question through the API views (Django's test client, in this
process, no HTTP server) for several cases, REPEATS times each, and prints the median.
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
STATS = "/api/v1/notifications/stats"
CASES = [
    ("totals over all days", f"{STATS}?"),
    ("group by channel", f"{STATS}?group_by=channel"),
    ("group by channel and day", f"{STATS}?group_by=channel,day"),
    ("group by hour of day, sms only", f"{STATS}?group_by=hour_of_day&channel=sms"),
    ("group by type and variant, last 30 days",
     f"{STATS}?group_by=type,variant&from={{last_30}}"),
    ("group by provider, one type, 7 days",
     f"{STATS}?group_by=provider&type=type-3&from={{last_7}}"),
    ("group by weekday, Asia/Shanghai", f"{STATS}?group_by=weekday&tz=Asia/Shanghai"),
    ("group by week, Asia/Shanghai", f"{STATS}?group_by=week&tz=Asia/Shanghai"),
    ("group by channel and hour of day, Shanghai",
     f"{STATS}?group_by=channel,hour_of_day&tz=Asia/Shanghai"),
    ("channel comparison, all days", f"{STATS}/channels"),
    ("channel comparison, one type, 30 days", f"{STATS}/channels?type=type-3&from={{last_30}}"),
    ("churn, 30 idle days, sent in last day", f"{STATS}/churn?days=30&from={{last_1}}"),
    ("churn, 30 idle days, sent in last 7 days", f"{STATS}/churn?days=30&from={{last_7}}"),
    ("churn, 7 idle days, sms, last 7 days",
     f"{STATS}/churn?days=7&channel=sms&from={{last_7}}"),
    ("churn, 30 idle days, all 90 days", f"{STATS}/churn?days=30"),
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


def fill_records(records: int, users: int, days: int, types: int) -> int:
    """Insert sent records and their users' activity days, and count the activity rows.

    Records 8u to 8u + 7 (mod 8 x USERS) go to user u, so each user gets about
    RECORDS / USERS messages over all channel kinds. Nine in ten are delivered, one in three opened and one in ten clicked.
    Users whose number is divisible by 4 have no activity at all. The others are active
    on about one day in ten, from 30 days before the first record on.
    """
    from django.db import connection

    from sharestack_push.notifications.models import PushTask

    task_ids = [
        str(PushTask.objects.create(
            notification_id=f"bench-{number}", notification_type=f"type-{number}",
            target="broadcast", channels=["app"],
        ).pk)
        for number in range(1, types + 1)
    ]
    kinds = ", ".join(f"'{kind}'" for kind, _ in KINDS_AND_PROVIDERS)
    providers = ", ".join(f"'{provider}'" for _, provider in KINDS_AND_PROVIDERS)
    tasks = ", ".join(f"'{task_id}'::uuid" for task_id in task_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO notifications_pushrecord (
                task_id, user_id, channel_kind, provider, address_kind, address, locale,
                status, reason, attempts, provider_message_id, error_message,
                response_data, created_at, updated_at, variant, fallback_step,
                fallback_state, sent_at, delivered_at, opened_at, clicked_at)
            SELECT (ARRAY[{tasks}])[1 + i % {types}], 'user-' || ((i / 8) % {users}),
                   (ARRAY[{kinds}])[1 + i % 8], (ARRAY[{providers}])[1 + i % 8],
                   '', 'address-' || i, '', 'sent', '', 1, '', '', '{{}}',
                   sent, sent, '', 0, '', sent,
                   CASE WHEN i % 10 < 9 THEN sent + interval '1 minute' END,
                   CASE WHEN i % 3 = 0 THEN sent + interval '10 minutes' END,
                   CASE WHEN i % 10 = 0 THEN sent + interval '12 minutes' END
            FROM (
                SELECT i, now() - (i::float8 / {records}) * interval '{days} days' AS sent
                FROM generate_series(1, {records}) AS i
            ) AS generated
        """)
        cursor.execute(f"""
            INSERT INTO analytics_useractivityday (user_id, day, first_at, last_at)
            SELECT 'user-' || u, day, day + interval '9 hours', day + interval '20 hours'
            FROM generate_series(0, {users} - 1) AS u
            CROSS JOIN generate_series(
                (now() - interval '{days + 30} days')::date, now()::date, interval '1 day'
            ) AS day
            WHERE u % 4 <> 0 AND (u + extract(doy FROM day)::int * 7) % 10 = 0
        """)
        cursor.execute("ANALYZE notifications_pushrecord")
        cursor.execute("ANALYZE analytics_useractivityday")
        cursor.execute("SELECT count(*) FROM analytics_useractivityday")
        return cursor.fetchone()[0]


def time_cases(repeats: int) -> None:
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from sharestack_push.notifications.models import ApiKey

    _, plain = ApiKey.objects.create_key("bench-stats", ["admin"])
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    now = timezone.now()
    moments = {
        f"last_{days}": (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:00:00Z")
        for days in (1, 7, 30)
    }
    print(f"{'case':45} {'median':>9} {'min':>9} {'max':>9} groups")
    for name, query in CASES:
        url = query.format(**moments)
        durations = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.get(url)
            durations.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{url} returned {response.status_code}: {response.content[:300]!r}")
        body = response.json()
        groups = len(body.get("groups") or body.get("channels") or []) or "-"
        print(f"{name:45} {statistics.median(durations) * 1000:7.1f} ms "
              f"{min(durations) * 1000:6.1f} ms {max(durations) * 1000:6.1f} ms {groups}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="Days of roll-ups (default 90).")
    parser.add_argument("--types", type=int, default=10,
                        help="Notification types (default 10).")
    parser.add_argument("--repeats", type=int, default=7,
                        help="Timed runs of each case (default 7).")
    parser.add_argument("--records", type=int, default=10_368_000,
                        help="Sent records for the churn question (default 10,368,000).")
    parser.add_argument("--users", type=int, default=500_000,
                        help="Users the records go to (default 500,000).")
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

    import django

    django.setup()
    started = time.perf_counter()
    activity_days = fill_records(arguments.records, arguments.users, arguments.days,
                                 arguments.types)
    print(f"records                {arguments.records} to {arguments.users} users")
    print(f"activity days          {activity_days}")
    print(f"filled in              {time.perf_counter() - started:.1f} s (not timed below)")
    time_cases(arguments.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
