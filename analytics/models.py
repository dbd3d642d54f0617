"""Alert rules, opt-out events, engagement events, tracked links and hourly roll-ups."""
import math

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models

from channels_app.models import Channel
from sharestack_push.notifications.constants import (
    ChannelKind,
    EngagementKind,
    EngagementSource,
)


class OptOutEvent(models.Model):
    """One user turning a notification off through an unsubscribe link or an SMS reply."""

    class Source(models.TextChoices):
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
        SMS_OPT_OUT = "sms_opt_out", "SMS opt-out"
        PREFERENCE_PAGE = "preference_page", "Preference page"
        # A spam report that the email provider forwarded to us.
        COMPLAINT = "complaint", "Complaint"

    user_id = models.CharField(max_length=64)
    source = models.CharField(max_length=32, choices=Source.choices)
    channel_kind = models.CharField(max_length=16)
    notification_type = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(db_index=True)
    # The message the opt-out came from, when it can be traced to one; its roll-up row
    # counts the opt-out once.
    record = models.ForeignKey(
        "notifications.PushRecord", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]


class EngagementEvent(models.Model):
    """One open or click of a message, by a person or by software acting for the mailbox.

    Machine events are kept for inspection but never set the record's opened_at or
    clicked_at, and count only in the roll-ups' machine counters.
    """

    record = models.ForeignKey(
        "notifications.PushRecord", on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=EngagementKind.choices)
    source = models.CharField(max_length=16, choices=EngagementSource.choices)
    occurred_at = models.DateTimeField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    machine = models.BooleanField(default=False)
    # One of constants.MachineReason, empty for a human event.
    machine_reason = models.CharField(max_length=32, blank=True, default="")
    # Click events only: the original URL the redirect sent the client to.
    url = models.TextField(blank=True, default="")
    # Pixel or redirect hits of this record and kind that arrived after the row cap
    # (analytics.engagement.MAX_EVENT_ROWS), counted on the newest row instead of stored.
    later_hits = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["record", "kind"])]


class TrackedLink(models.Model):
    """An original URL of a task's messages, named in signed click tokens by its id.

    One row serves every record of the task that carries the URL, so a broadcast adds a
    row per distinct link rather than per recipient.
    """

    task = models.ForeignKey(
        "notifications.PushTask", on_delete=models.CASCADE, related_name="+"
    )
    # SHA-256 of the URL in hex, because a unique index on a long URL can exceed
    # PostgreSQL's index row size.
    url_hash = models.CharField(max_length=64)
    url = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "url_hash"], name="unique_tracked_link"),
        ]


# Upper bounds of the alert rule fields. A window longer than a week is not an alert,
# and the opt-out rule also reads the window before it.
MAX_WINDOW_MINUTES = 7 * 24 * 60
MAX_THRESHOLD = 1e9
MAX_MIN_COUNT = 1_000_000


# The provider of the WeCom group robot, the one alert channel that takes no address.
ROBOT_PROVIDER = "wecom_robot"


def validate_finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValidationError("Must be a finite number.")


def alert_address_problem(channel: Channel, address: str) -> str | None:
    """Return why `address` cannot receive alerts through `channel`, or None if it can."""
    if channel.provider == ROBOT_PROVIDER:
        if address:
            return "A WeCom robot posts to its group chat, so leave the address empty."
        return None
    if channel.kind != ChannelKind.EMAIL:
        return None
    if not address:
        return "An email alert channel needs the recipient's email address."
    try:
        validate_email(address)
    except ValidationError:
        return f"{address!r} is not a valid email address."
    return None


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        FAILURE_RATE = "failure_rate", "Failure rate above threshold"
        BACKLOG = "backlog", "Backlog above size"
        UNHEALTHY = "unhealthy", "Channel marked unhealthy"
        OPT_OUTS_RISING = "opt_outs_rising", "Unsubscribes rising sharply"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    channel_kind = models.CharField(
        max_length=16, blank=True, default="", choices=ChannelKind.choices,
        help_text="Channel kind the rule watches (email, app, sms, wechat); empty for all.",
    )
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="One channel the rule watches; empty for every channel of the kind.",
    )
    window_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_MINUTES)],
        help_text=f"Length of the window counted, in minutes (1 to {MAX_WINDOW_MINUTES}).",
    )
    threshold = models.FloatField(
        default=0.5,
        validators=[validate_finite, MinValueValidator(0), MaxValueValidator(MAX_THRESHOLD)],
        help_text=(
            "failure_rate: the failed share of finished records, 0 to 1 (0.2 is 20%). "
            "backlog: the number of queued, deferred and retrying records. "
            "opt_outs_rising: the ratio of this window's opt-outs to the previous "
            "window's, at least 1. unhealthy: not used. The rule fires above the "
            "threshold, or at it for opt_outs_rising."
        ),
    )
    min_count = models.PositiveIntegerField(
        default=10,
        validators=[MaxValueValidator(MAX_MIN_COUNT)],
        help_text=(
            "failure_rate: finished records needed before the rate counts. "
            "opt_outs_rising: opt-outs in this window needed to fire."
        ),
    )
    alert_channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="+",
        help_text="The email or WeCom robot channel that receives the alert.",
    )
    alert_address = models.CharField(
        max_length=254, blank=True, default="",
        help_text="Recipient email address; empty for a robot channel.",
    )
    firing = models.BooleanField(default=False, editable=False)
    last_value = models.FloatField(null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.threshold is None:
            pass
        elif self.kind == self.Kind.FAILURE_RATE and not 0 <= self.threshold <= 1:
            errors["threshold"] = (
                "A failure rate threshold is a share of finished records from 0 to 1, "
                "such as 0.2 for 20%."
            )
        elif self.kind == self.Kind.OPT_OUTS_RISING and self.threshold < 1:
            errors["threshold"] = (
                "An opt-out threshold is the ratio to the previous window, at least 1, "
                "because a lower ratio means opt-outs are falling."
            )
        if self.alert_channel_id is not None:
            errors.update(self.alert_channel_errors())
        if errors:
            raise ValidationError(errors)

    def alert_channel_errors(self) -> dict[str, str]:
        channel = self.alert_channel
        if channel.kind != ChannelKind.EMAIL and channel.provider != ROBOT_PROVIDER:
            return {"alert_channel": "Choose an email channel or a WeCom robot channel."}
        problem = alert_address_problem(channel, self.alert_address)
        return {"alert_address": problem} if problem else {}


class AlertEvent(models.Model):
    """One change of a rule's state, and whether its message reached the alert channel."""

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    state = models.CharField(max_length=16, choices=State.choices)
    value = models.FloatField()
    message = models.TextField()
    created_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]


class HourlyStat(models.Model):
    """Counters of the records sent in one UTC hour, per channel, provider, type and variant.

    A record counts in the hour it was sent, or failed if it never was, and its later
    receipts and engagement events add to that same row, so each row's rates describe
    one cohort of messages.
    """

    hour = models.DateTimeField()
    channel_kind = models.CharField(max_length=16)
    provider = models.CharField(max_length=32, blank=True, default="")
    notification_type = models.CharField(max_length=64)
    # The record's task's campaign, or 0 for no campaign. It is not nullable, so the
    # unique key works on SQLite as well as PostgreSQL.
    campaign_id = models.BigIntegerField(default=0)
    variant = models.CharField(max_length=64, blank=True, default="")
    sent = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    opened = models.BigIntegerField(default=0)
    clicked = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    unsubscribed = models.BigIntegerField(default=0)
    # Records opened or clicked by software (privacy proxies, link scanners), each
    # counted once, apart from opened and clicked, which count people only.
    machine_opened = models.BigIntegerField(default=0)
    machine_clicked = models.BigIntegerField(default=0)
    # Spam complaints that providers reported.
    complained = models.BigIntegerField(default=0)
    # Billed SMS parts of the sent messages; zero for other channel kinds.
    segments = models.BigIntegerField(default=0)
    # In the currency of Channel.cost_per_message.
    cost = models.DecimalField(max_digits=18, decimal_places=5, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "hour", "channel_kind", "provider", "notification_type",
                    "campaign_id", "variant",
                ],
                name="unique_hourly_stat",
            ),
        ]
        indexes = [models.Index(fields=["hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.channel_kind}/{self.provider} {self.notification_type}"


class UserActivityDay(models.Model):
    """The first and last activity of one user on one UTC day.

    Activity is an open, a click or an event posted to the activity API. One row per
    active day keeps the table small and still decides exactly whether a user was
    active in a window of whole days before a moment.
    """

    user_id = models.CharField(max_length=64)
    day = models.DateField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "day"], name="unique_user_activity_day"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} active on {self.day:%Y-%m-%d}"


class IdleDayStat(models.Model):
    """Counters of the records sent on one UTC day, per idle-day count of their users.

    A record counts on the UTC day it was sent, or failed if it never was, and its
    later receipts and human opens and clicks add to that same row. idle_days is the
    record's: the user's whole idle days when fan-out created it, NEVER_ACTIVE, or
    UNKNOWN_IDLE_DAYS for a record that has none.
    """

    day = models.DateField()
    channel_kind = models.CharField(max_length=16)
    provider = models.CharField(max_length=32, blank=True, default="")
    notification_type = models.CharField(max_length=64)
    # The record's task's campaign, or 0 for no campaign.
    campaign_id = models.BigIntegerField(default=0)
    idle_days = models.SmallIntegerField()
    sent = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    opened = models.BigIntegerField(default=0)
    clicked = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day", "channel_kind", "provider", "notification_type",
                    "campaign_id", "idle_days",
                ],
                name="unique_idle_day_stat",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.day:%Y-%m-%d} {self.channel_kind}/{self.provider} "
            f"{self.notification_type}, {self.idle_days} idle days"
        )
