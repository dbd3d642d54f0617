from django.conf import settings
from django.db import models


def default_timezone() -> str:
    return settings.PUSH_DEFAULT_TIMEZONE


def default_locale() -> str:
    return settings.PUSH_DEFAULT_LOCALE


class UserProfile(models.Model):
    """User-wide delivery settings; broadcasts reach every user with a profile."""

    user_id = models.CharField(max_length=64, unique=True)
    timezone = models.CharField(max_length=64, default=default_timezone)
    locale = models.CharField(max_length=16, default=default_locale)
    all_enabled = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    daily_limit = models.PositiveIntegerField(null=True, blank=True)
    # What the platform stores about the user for templates (`{{ user.name }}`).
    attributes = models.JSONField(default=dict, blank=True)
    # Set when the user's number replied an opt-out keyword such as STOP, cleared by
    # an opt-in keyword such as START. It suppresses SMS of every marketing type,
    # including types created after the reply.
    marketing_sms_opt_out = models.BooleanField(default=False)
    # When the latest opt-out or opt-in keyword was sent. A reply sent earlier that
    # arrives later, such as a provider's retried push, changes nothing.
    marketing_sms_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.user_id


class UserPushPreference(models.Model):
    """A per-channel override; an empty notification_type applies to every type."""

    ANY_TYPE = ""

    user_id = models.CharField(max_length=64)
    notification_type = models.CharField(max_length=64, blank=True, default=ANY_TYPE)
    channel = models.CharField(max_length=16)
    is_enabled = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    frequency_limit = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "notification_type", "channel"],
                name="unique_preference_row",
            ),
        ]
        indexes = [models.Index(fields=["user_id"])]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.notification_type or '*'}/{self.channel}"


class UserActiveHour(models.Model):
    """How often a user was active in one local hour of the day (0-23), all days."""

    user_id = models.CharField(max_length=64)
    hour = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)
    last_active_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "hour"], name="unique_active_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.hour:02d}h x{self.count}"
