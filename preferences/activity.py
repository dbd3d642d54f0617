"""Each user's active hours, learnt from activity events, and when to reach the user.

Activity is counted per local hour of the day (0-23) in the user's time zone at the
moment of the event, so a daily habit keeps its hour across daylight-saving changes.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest

from analytics.activity import record_activity_days
from preferences.models import UserActiveHour, UserProfile
from preferences.policy import localize, zone_for


def record_activity(events: Iterable[tuple[str, datetime]]) -> int:
    """Add (user id, aware time) events to the users' histograms and activity days.

    Return how many events were added.
    """
    events = list(events)
    if not events:
        return 0
    user_ids = {user_id for user_id, _ in events}
    zones = dict(
        UserProfile.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "timezone"
        )
    )
    counts: Counter[tuple[str, int]] = Counter()
    latest: dict[tuple[str, int], datetime] = {}
    for user_id, occurred_at in events:
        zone = zone_for(zones.get(user_id, settings.PUSH_DEFAULT_TIMEZONE))
        key = (user_id, occurred_at.astimezone(zone).hour)
        counts[key] += 1
        latest[key] = max(latest.get(key, occurred_at), occurred_at)
    # Each batch updates its bars in sorted key order, so two batches cannot deadlock.
    with transaction.atomic():
        for key in sorted(counts):
            add_to_hour(key[0], key[1], counts[key], latest[key])
        record_activity_days(events)
    return len(events)


def add_to_hour(user_id: str, hour: int, count: int, occurred_at: datetime) -> None:
    """Add count to one histogram bar in a single UPDATE, creating the bar if needed."""
    bar = UserActiveHour.objects.filter(user_id=user_id, hour=hour)
    increment = {
        "count": F("count") + count,
        "last_active_at": Greatest(F("last_active_at"), occurred_at),
    }
    if bar.update(**increment):
        return
    try:
        with transaction.atomic():
            UserActiveHour.objects.create(
                user_id=user_id, hour=hour, count=count, last_active_at=occurred_at
            )
    except IntegrityError:
        # Another writer created the bar between the UPDATE and the INSERT.
        bar.update(**increment)


def load_histograms(user_ids: Iterable[str]) -> dict[str, dict[int, int]]:
    """Return {user id: {local hour: count}} for the users with any activity."""
    histograms: dict[str, dict[int, int]] = {}
    rows = UserActiveHour.objects.filter(user_id__in=list(user_ids), count__gt=0)
    for user_id, hour, count in rows.values_list("user_id", "hour", "count"):
        histograms.setdefault(user_id, {})[hour] = count
    return histograms


def next_local_time(wall_time: time, zone_name: str, now: datetime) -> datetime:
    """Return the first moment after now at which the user's clock shows wall_time.

    A wall time skipped by a daylight-saving change maps to the moment after the gap.
    """
    zone = zone_for(zone_name)
    today = now.astimezone(zone).date()
    for offset in range(3):
        day: date = today + timedelta(days=offset)
        moment = localize(datetime.combine(day, wall_time), zone)
        if moment > now:
            return moment.astimezone(timezone.utc)
    raise AssertionError("a wall time recurs within three days")


def optimal_send_time(
    hour_counts: dict[int, int],
    zone_name: str,
    now: datetime,
    default_time: time | None,
) -> datetime:
    """Return when to send to a user: the start of the user's next most active hour.

    The most active hour is the one with the highest count. When several share it,
    the one that comes first from now wins. A user who is in a most active hour now
    gets the message now. Without any activity, the type's default local time is used,
    and without one of those either, the message goes now.
    """
    if hour_counts:
        top = max(hour_counts.values())
        best_hours = [hour for hour, count in hour_counts.items() if count == top]
        if now.astimezone(zone_for(zone_name)).hour in best_hours:
            return now
        return min(next_local_time(time(hour), zone_name, now) for hour in best_hours)
    if default_time is not None:
        return next_local_time(default_time, zone_name, now)
    return now
