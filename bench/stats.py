"""Time the statistics questions on data that represents about ten million records.

It drops and recreates the database sharestack_bench_stats, migrates it, and fills
the roll-up tables with SQL (not timed). The hourly table gets DAYS days x 24 hours x
4 channel kinds x 2 providers x TYPES notification types x 3 variants rows. Each row
counts 15 to 24 sent messages and 0 or 1 failed one, about 20 records a row. The daily
idle-day table, which the churn question reads, gets DAYS days x 8 channel kind and
provider pairs x TYPES types x IDLE_DAY_VALUES rows, each counting 17 to 26 sent messages
and 0 or 1 failed one, about 10 million records in all. It then times each question
through the API views (Django's test client, in this process, no HTTP server) for
several cases, REPEATS times each, and prints the median.
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
# Idle-day counts in the idle-day roll-ups: every day up to 59, a few long absences,
# the cap (366) and never active (367).
IDLE_DAY_VALUES = [*range(60), 90, 180, 366, 367]
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
    ("churn, 30 idle days, since yesterday", f"{STATS}/churn?days=30&from={{day_1}}"),
    ("churn, 30 idle days, last 7 UTC days", f"{STATS}/churn?days=30&from={{day_7}}"),
    ("churn, 7 idle days, sms, last 7 days",
     f"{STATS}/churn?days=7&channel=sms&from={{day_7}}"),
    ("churn, 30 idle days, all 90 days", f"{STATS}/churn?days=30"),
    ("churn, 365 idle days, one type, campaign 0",
     f"{STATS}/churn?days=365&type=type-3&campaign=0"),
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
                sent, delivered, opened, clicked, failed, unsubscribed, segments, cost,
                machine_opened, machine_clicked, complained)
            SELECT hour, kind, provider, 'type-' || type, 0, variant,
                   sent, sent * 9 / 10, sent / 3, sent / 10, failed, 0,
                   CASE WHEN kind = 'sms' THEN sent * 2 ELSE 0 END, sent * 0.001,
                   0, 0, 0
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


def fill_idle_rollups(days: int, types: int) -> tuple[int, int]:
    """Insert the idle-day roll-up rows, and return the row count and the records counted."""
    kinds = ", ".join(f"('{kind}', '{provider}')" for kind, provider in KINDS_AND_PROVIDERS)
    idle_days = ", ".join(f"({value})" for value in IDLE_DAY_VALUES)
    with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://")) as connection:
        connection.execute(f"""
            INSERT INTO analytics_idledaystat (
                day, channel_kind, provider, notification_type, campaign_id, idle_days,
                sent, delivered, opened, clicked, failed)
            SELECT day, kind, provider, 'type-' || type, 0, idle_days,
                   sent, sent * 9 / 10, sent / 3, sent / 10, failed
            FROM (
                SELECT days.day, channels.kind, channels.provider, types.type,
                       idle.idle_days,
                       17 + (row_number() OVER ()) % 10 AS sent,
                       (row_number() OVER ()) % 2 AS failed
                FROM generate_series(
                         (now() AT TIME ZONE 'UTC')::date - {days} + 1,
                         (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS days(day)
                CROSS JOIN (VALUES {kinds}) AS channels(kind, provider)
                CROSS JOIN generate_series(1, {types}) AS types(type)
                CROSS JOIN (VALUES {idle_days}) AS idle(idle_days)
            ) AS generated
        """)
        connection.execute("ANALYZE analytics_idledaystat")
        rows, records = connection.execute(
            "SELECT count(*), sum(sent + failed) FROM analytics_idledaystat"
        ).fetchone()
    return rows, records


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
    # The churn question takes whole UTC days: day_N is the midnight N days ago.
    moments |= {
        f"day_{days}": (now - timedelta(days=days)).strftime("%Y-%m-%dT00:00:00Z")
        for days in (1, 7)
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

    started = time.perf_counter()
    rows, records = fill_idle_rollups(arguments.days, arguments.types)
    print(f"idle-day roll-up rows  {rows}")
    print(f"records they count     {records} (sent + failed)")
    print(f"filled in              {time.perf_counter() - started:.1f} s (not timed below)")

    import django

    django.setup()
    time_cases(arguments.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
