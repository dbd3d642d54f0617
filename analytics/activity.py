"""Per-user activity days, and the idle days that fan-out stores on records from them.

The table stores the first and last activity time of each UTC day. That is enough to
find the whole days between a moment and the last activity before it. Only the day
containing the moment can hold activity on both sides, and any of it is less than a
day before the moment.
"""
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone

from django.db import connections, router
from django.db.models import Case, F, Max, When

from analytics.models import UserActivityDay

DayKey = tuple[str, date]

# Idle days are stored up to this count, so a user idle for longer counts as this.
MAX_IDLE_DAYS = 366
# Idle days of a user with no activity in the MAX_IDLE_DAYS + 1 days before. It is
# larger than MAX_IDLE_DAYS, so "idle days >= N" selects those users for every N.
NEVER_ACTIVE = MAX_IDLE_DAYS + 1
# Idle days of a record that has none, in the roll-ups. The churn statistics leave
# these records out of both segments.
UNKNOWN_IDLE_DAYS = -1


def activity_spans(events: Iterable[tuple[str, datetime]]) -> dict[DayKey, list[datetime]]:
    """Return {(user id, UTC day): [first, last]} for (user id, aware time) events."""
    spans: dict[DayKey, list[datetime]] = {}
    for user_id, occurred_at in events:
        moment = occurred_at.astimezone(timezone.utc)
        span = spans.setdefault((user_id, moment.date()), [moment, moment])
        span[0] = min(span[0], moment)
        span[1] = max(span[1], moment)
    return spans


def record_activity_days(events: Iterable[tuple[str, datetime]]) -> None:
    """Widen each user's activity day to include the events, in one statement.

    Rows are written in key order, so two concurrent batches lock them in the same
    order instead of deadlocking.
    """
    spans = activity_spans(events)
    if not spans:
        return
    connection = connections[router.db_for_write(UserActivityDay)]
    quote = connection.ops.quote_name
    table = quote(UserActivityDay._meta.db_table)
    # PostgreSQL's two-argument LEAST and GREATEST are MIN and MAX in SQLite.
    least, greatest = ("MIN", "MAX") if connection.vendor == "sqlite" else ("LEAST", "GREATEST")
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(spans))
    sql = (
        f"INSERT INTO {table} (user_id, day, first_at, last_at) VALUES {rows} "
        f"ON CONFLICT (user_id, day) DO UPDATE SET "
        f"first_at = {least}({table}.first_at, excluded.first_at), "
        f"last_at = {greatest}({table}.last_at, excluded.last_at)"
    )
    field = UserActivityDay._meta.get_field("first_at")
    params: list = []
    for (user_id, day), (first, last) in sorted(spans.items()):
        params += [
            user_id,
            day,
            field.get_db_prep_value(first, connection),
            field.get_db_prep_value(last, connection),
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def idle_days(last_activity: datetime, moment: datetime) -> int:
    """Return the whole days from the last activity before `moment` to `moment`, capped."""
    return min((moment - last_activity) // timedelta(days=1), MAX_IDLE_DAYS)


def idle_days_before(user_ids: list[str], moment: datetime) -> dict[str, int]:
    """Return each user's idle days before `moment`, capped at MAX_IDLE_DAYS.

    A user without activity in the MAX_IDLE_DAYS + 1 days before `moment` gets
    NEVER_ACTIVE, so one query reads at most that many activity days per user. A day
    whose span contains `moment` has activity at first_at, less than a day earlier, so
    first_at replaces the unknown last activity before `moment` without changing the
    whole days.
    """
    oldest_day = (moment - timedelta(days=MAX_IDLE_DAYS + 1)).astimezone(timezone.utc).date()
    latest = (
        UserActivityDay.objects.filter(
            user_id__in=user_ids, day__gte=oldest_day, first_at__lt=moment
        )
        .values("user_id")
        .annotate(
            last=Max(Case(When(last_at__lt=moment, then=F("last_at")), default=F("first_at")))
        )
        .order_by()
    )
    days = dict.fromkeys(user_ids, NEVER_ACTIVE)
    for row in latest:
        days[row["user_id"]] = idle_days(row["last"], moment)
    return days
