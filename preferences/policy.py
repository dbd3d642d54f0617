"""The delivery policy: pure functions from preferences, counters and a time to a decision.

Nothing here reads the database or the clock, so every rule is tested with plain values.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sharestack_push.notifications.constants import Priority, Reason


class Action(str, Enum):
    SEND = "send"
    DEFER = "defer"
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class QuietWindow:
    """Local wall-clock hours with start included and end excluded; may cross midnight."""

    start: time
    end: time


@dataclass(frozen=True)
class ChannelSettings:
    """A user's effective settings for one notification type on one channel."""

    all_enabled: bool = True
    enabled: bool = True
    quiet_window: QuietWindow | None = None
    daily_limit: int | None = None
    channel_daily_limit: int | None = None


@dataclass(frozen=True)
class ProfileSettings:
    timezone: str = "UTC"
    all_enabled: bool = True
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    daily_limit: int | None = None


@dataclass(frozen=True)
class PreferenceRow:
    notification_type: str  # "" matches every type
    channel: str
    is_enabled: bool = True
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    frequency_limit: int | None = None


@dataclass(frozen=True)
class Counters:
    """Counts of messages that reached the user today, in the user's calendar day."""

    notifications_today: int = 0
    channel_messages_today: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    release_at: datetime | None = None


SEND_NOW = Decision(Action.SEND)


def zone_for(name: str) -> ZoneInfo:
    """Return the zone for an IANA name, or UTC for an unknown or empty one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def resolve_settings(
    profile: ProfileSettings,
    rows: list[PreferenceRow],
    notification_type: str,
    channel: str,
) -> ChannelSettings:
    """Merge the user-wide profile with the rows for this channel.

    A row for this type and channel overrides a row for every type on this channel,
    which overrides the profile. A field left empty on a row falls through.
    """
    matching = [
        row
        for row in rows
        if row.channel == channel and row.notification_type in ("", notification_type)
    ]
    matching.sort(key=lambda row: row.notification_type != "")

    enabled = True
    quiet_start, quiet_end = profile.quiet_hours_start, profile.quiet_hours_end
    channel_limit = None
    for row in matching:
        enabled = row.is_enabled
        if row.quiet_hours_start is not None and row.quiet_hours_end is not None:
            quiet_start, quiet_end = row.quiet_hours_start, row.quiet_hours_end
        if row.frequency_limit is not None:
            channel_limit = row.frequency_limit

    window = None
    if quiet_start is not None and quiet_end is not None:
        window = QuietWindow(quiet_start, quiet_end)
    return ChannelSettings(
        all_enabled=profile.all_enabled,
        enabled=enabled,
        quiet_window=window,
        daily_limit=profile.daily_limit,
        channel_daily_limit=channel_limit,
    )


def localize(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """Attach a zone to a naive local time without ever moving it earlier.

    A wall time that occurs twice (clocks going back) maps to its first occurrence. A
    wall time that does not exist (clocks going forward) maps to the later of its two
    readings, so a quiet window never ends early.
    """
    first = wall_time.replace(tzinfo=zone, fold=0)
    second = wall_time.replace(tzinfo=zone, fold=1)
    round_trip = first.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
    if round_trip == wall_time:
        return first
    return max(first, second, key=lambda moment: moment.astimezone(timezone.utc))


def quiet_window_end(window: QuietWindow, local_now: datetime) -> datetime | None:
    """Return when the window ends if local_now is inside it, else None."""
    start, end = window.start, window.end
    if start == end:
        return None
    current = local_now.time().replace(tzinfo=None)
    end_day: date = local_now.date()
    if start < end:
        if not start <= current < end:
            return None
    else:
        if end <= current < start:
            return None
        if current >= start:
            end_day += timedelta(days=1)
    return localize(datetime.combine(end_day, end), local_now.tzinfo)  # type: ignore[arg-type]


def local_day_start(now: datetime, zone_name: str) -> datetime:
    """Return the first moment of the user's current calendar day, in UTC."""
    zone = zone_for(zone_name)
    local_now = now.astimezone(zone)
    midnight = localize(datetime.combine(local_now.date(), time(0, 0)), zone)
    return midnight.astimezone(timezone.utc)


def decide(
    settings: ChannelSettings,
    counters: Counters,
    priority: str,
    zone_name: str,
    now: datetime,
) -> Decision:
    """Decide whether one message goes now, waits, or is dropped.

    Opt-outs always win. Urgent messages skip quiet hours but not opt-outs or limits.
    The user-wide daily limit counts notifications (a notification sent on two
    channels counts once); a row's limit counts messages on that channel and type.
    """
    if not settings.all_enabled:
        return Decision(Action.SUPPRESS, Reason.ALL_DISABLED)
    if not settings.enabled:
        return Decision(Action.SUPPRESS, Reason.PREFERENCE_DISABLED)

    if settings.quiet_window is not None and priority != Priority.URGENT:
        local_now = now.astimezone(zone_for(zone_name))
        release_at = quiet_window_end(settings.quiet_window, local_now)
        if release_at is not None:
            return Decision(
                Action.DEFER, Reason.QUIET_HOURS, release_at.astimezone(timezone.utc)
            )

    if (
        settings.daily_limit is not None
        and counters.notifications_today >= settings.daily_limit
    ):
        return Decision(Action.SUPPRESS, Reason.FREQUENCY_LIMIT)
    if (
        settings.channel_daily_limit is not None
        and counters.channel_messages_today >= settings.channel_daily_limit
    ):
        return Decision(Action.SUPPRESS, Reason.FREQUENCY_LIMIT)
    return SEND_NOW
