"""The delivery policy: pure functions from preferences, counters and a time to a decision.

Nothing here reads the database or the clock, so every rule is tested with plain values.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sharestack_push.notifications.constants import ChannelKind, Priority, Reason

MARKETING = "marketing"


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
class TypeRules:
    """The notification type registry's rules for one type.

    An unregistered type gets the defaults: transactional, not critical, and users may
    turn it off.
    """

    category: str = "transactional"
    is_critical: bool = False
    user_can_disable: bool = True
    min_interval_seconds: int | None = None
    default_channels: tuple[str, ...] = ()
    sms_for_urgent: bool = False

    @property
    def marketing(self) -> bool:
        return self.category == MARKETING

    @property
    def locked(self) -> bool:
        """Whether users cannot turn this type off. Marketing is never locked."""
        return not self.marketing and (self.is_critical or not self.user_can_disable)


UNREGISTERED = TypeRules()


@dataclass(frozen=True)
class Counters:
    """Today's deliveries to the user (their calendar day) and this type's last send."""

    notifications_today: int = 0
    channel_messages_today: int = 0
    last_sent_at: datetime | None = None


@dataclass(frozen=True)
class Limits:
    """The frequency limits one message is checked against.

    None means no limit of that kind. A message that is not enforced (urgent on a
    critical type) is never held back but is still counted.
    """

    daily: int | None = None
    channel_daily: int | None = None
    min_interval_seconds: int | None = None
    enforced: bool = True

    @property
    def counted(self) -> bool:
        """Whether any limit applies, so the message must be counted."""
        return (
            self.daily is not None
            or self.channel_daily is not None
            or bool(self.min_interval_seconds)
        )


@dataclass(frozen=True)
class LimitHit:
    """A limit the message would exceed, with retry_at set for the minimum interval."""

    reason: str
    retry_at: datetime | None = None


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


def next_local_day_start(now: datetime, zone_name: str) -> datetime:
    """Return the first moment of the user's next calendar day, in UTC."""
    zone = zone_for(zone_name)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    midnight = localize(datetime.combine(tomorrow, time(0, 0)), zone)
    return midnight.astimezone(timezone.utc)


def skips_quiet_hours(priority: str, rules: TypeRules) -> bool:
    """Urgent messages skip quiet hours, except marketing, which respects every preference."""
    return priority == Priority.URGENT and not rules.marketing


def bypasses_limits(priority: str, rules: TypeRules) -> bool:
    """Urgent messages of a critical type skip every frequency limit."""
    return priority == Priority.URGENT and rules.is_critical and not rules.marketing


def screen(
    settings: ChannelSettings,
    priority: str,
    zone_name: str,
    now: datetime,
    rules: TypeRules = UNREGISTERED,
) -> Decision:
    """Apply opt-outs and quiet hours. SEND means the frequency limits come next.

    Opt-outs win over everything, except on a type users cannot turn off, where stored
    opt-outs are ignored.
    """
    if not rules.locked:
        if not settings.all_enabled:
            return Decision(Action.SUPPRESS, Reason.ALL_DISABLED)
        if not settings.enabled:
            return Decision(Action.SUPPRESS, Reason.PREFERENCE_DISABLED)

    if settings.quiet_window is not None and not skips_quiet_hours(priority, rules):
        local_now = now.astimezone(zone_for(zone_name))
        release_at = quiet_window_end(settings.quiet_window, local_now)
        if release_at is not None:
            return Decision(
                Action.DEFER, Reason.QUIET_HOURS, release_at.astimezone(timezone.utc)
            )
    return SEND_NOW


def limits_for(settings: ChannelSettings, priority: str, rules: TypeRules) -> Limits:
    return Limits(
        daily=settings.daily_limit,
        channel_daily=settings.channel_daily_limit,
        min_interval_seconds=rules.min_interval_seconds,
        enforced=not bypasses_limits(priority, rules),
    )


def check_limits(limits: Limits, counters: Counters, now: datetime) -> LimitHit | None:
    """Return the first limit the counters have reached, or None.

    The user-wide daily limit counts notifications (a notification sent on two
    channels counts once). The channel limit counts notifications of one type on one
    channel. The minimum interval runs from this type's last message to the user.
    """
    if not limits.enforced:
        return None
    if limits.daily is not None and counters.notifications_today >= limits.daily:
        return LimitHit(Reason.FREQUENCY_LIMIT)
    if (
        limits.channel_daily is not None
        and counters.channel_messages_today >= limits.channel_daily
    ):
        return LimitHit(Reason.FREQUENCY_LIMIT)
    if limits.min_interval_seconds and counters.last_sent_at is not None:
        retry_at = counters.last_sent_at + timedelta(seconds=limits.min_interval_seconds)
        if now < retry_at:
            return LimitHit(Reason.MIN_INTERVAL, retry_at)
    return None


def over_limit(hit: LimitHit, rules: TypeRules, zone_name: str, now: datetime) -> Decision:
    """Suppress excess marketing, and defer anything else to the next allowed moment.

    That moment is the end of the minimum interval, or for a daily limit the start of
    the user's next calendar day.
    """
    if rules.marketing:
        return Decision(Action.SUPPRESS, hit.reason)
    if hit.retry_at is not None:
        return Decision(Action.DEFER, hit.reason, hit.retry_at.astimezone(timezone.utc))
    return Decision(Action.DEFER, hit.reason, next_local_day_start(now, zone_name))


def decide(
    settings: ChannelSettings,
    counters: Counters,
    priority: str,
    zone_name: str,
    now: datetime,
    rules: TypeRules = UNREGISTERED,
) -> Decision:
    """Decide whether one message goes now, waits, or is dropped.

    Opt-outs come first (ignored on types users cannot turn off), then quiet hours
    (skipped by urgent messages that are not marketing), then the frequency limits
    (skipped by urgent messages of a critical type).
    """
    screened = screen(settings, priority, zone_name, now, rules)
    if screened.action != Action.SEND:
        return screened
    hit = check_limits(limits_for(settings, priority, rules), counters, now)
    if hit is not None:
        return over_limit(hit, rules, zone_name, now)
    return SEND_NOW


def choose_channels(requested: list[str], rules: TypeRules, priority: str) -> list[str]:
    """Return the channels of a push: the request's, else the type's defaults, in order.

    An urgent message of a type with sms_for_urgent also goes by SMS.
    """
    channels = list(requested) if requested else list(rules.default_channels)
    if priority == Priority.URGENT and rules.sms_for_urgent and ChannelKind.SMS not in channels:
        channels.append(ChannelKind.SMS)
    return channels
