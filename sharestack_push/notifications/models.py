import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from sharestack_push.notifications.constants import (
    ChannelKind,
    Priority,
    RecordStatus,
    TaskStatus,
)
from sharestack_push.notifications.segments import validate_segment_conditions

API_KEY_PREFIX_LENGTH = 8


def hash_api_key(secret: str) -> str:
    # The secret is 32 random bytes, so one SHA-256 round resists brute force.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyManager(models.Manager["ApiKey"]):
    def create_key(self, name: str, scopes: list[str]) -> tuple["ApiKey", str]:
        """Create a key and return it with its plain text, which is never stored."""
        prefix = secrets.token_hex(API_KEY_PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        api_key = self.create(
            name=name, prefix=prefix, key_hash=hash_api_key(secret), scopes=scopes
        )
        return api_key, f"ssp_{prefix}_{secret}"


class ApiKey(models.Model):
    """A caller's credential: the plain key is shown once, only its hash is kept."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=API_KEY_PREFIX_LENGTH, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyManager()

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (ssp_{self.prefix}_…)"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    # DRF treats request.auth as the credential; these let it pass as a principal.
    is_authenticated = True


def validate_channel_kinds(value) -> None:
    if not isinstance(value, list) or not all(isinstance(kind, str) for kind in value):
        raise ValidationError("Enter a JSON list of channel kinds, such as [\"app\", \"email\"].")
    unknown = [kind for kind in value if kind not in ChannelKind.values]
    if unknown:
        raise ValidationError(
            f"Unknown channel kinds {', '.join(unknown)}; use {', '.join(ChannelKind.values)}."
        )
    if len(set(value)) != len(value):
        raise ValidationError("List each channel kind once.")


class NotificationType(models.Model):
    """A kind of notification: its category, channels and how users may control it.

    A push whose type is not registered is treated as transactional and not critical,
    and users may turn it off.
    """

    class Category(models.TextChoices):
        TRANSACTIONAL = "transactional", "Transactional"
        MARKETING = "marketing", "Marketing"
        SYSTEM = "system", "System"

    key = models.CharField(
        max_length=64, unique=True,
        validators=[RegexValidator(r"^[\w.:-]+$", "Use letters, digits, _ . : and - only, "
                                   "as the push API's notification_type does.")],
    )
    name = models.CharField(max_length=200, blank=True, default="")
    category = models.CharField(
        max_length=16, choices=Category.choices, default=Category.TRANSACTIONAL
    )
    # Security alerts, verification codes, payments.
    is_critical = models.BooleanField(
        default=False,
        help_text="Users cannot turn it off, and urgent messages of it skip quiet hours "
        "and frequency limits. Marketing types cannot be critical.",
    )
    user_can_disable = models.BooleanField(
        default=True,
        help_text="Users may turn this type off. Critical types are never turned off, "
        "and marketing types always can be.",
    )
    default_channels = models.JSONField(
        default=list, blank=True, validators=[validate_channel_kinds],
        help_text='Channel kinds used when a push names none, in order, such as ["app", "email"].',
    )
    sms_for_urgent = models.BooleanField(
        default=False, help_text="Urgent messages of this type also go by SMS."
    )
    min_interval_seconds = models.PositiveIntegerField(
        null=True, blank=True,
        # The database fallback reads 50 hours of history, so longer intervals would
        # not hold without Redis.
        validators=[MaxValueValidator(48 * 3600)],
        help_text="Minimum seconds between two messages of this type to one user.",
    )
    # Local time of day for a push sent at the "optimal" time to a user whose active
    # hours are not known yet. Without one, such a push goes at once.
    default_send_time = models.TimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        if self.category == self.Category.MARKETING:
            if self.is_critical:
                raise ValidationError({"is_critical": "A marketing type cannot be critical."})
            if not self.user_can_disable:
                raise ValidationError(
                    {"user_can_disable": "Users can always turn marketing types off."}
                )


class PushTask(models.Model):
    """One request to notify one user, a list of users, or everyone."""

    class Target(models.TextChoices):
        USER = "user", "One user"
        USERS = "users", "A list of users"
        BROADCAST = "broadcast", "All users"
        # Only channels named in the request, such as a group robot; no user.
        CHANNELS = "channels", "Named channels only"
        # A campaign's saved segment, evaluated when the task is dispatched.
        SEGMENT = "segment", "A saved segment"
        # A campaign's uploaded list of user ids (CampaignRecipient rows).
        UPLOAD = "upload", "An uploaded list of users"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    notification_id = models.CharField(max_length=128)
    notification_type = models.CharField(max_length=64)
    target = models.CharField(max_length=16, choices=Target.choices)
    user_id = models.CharField(max_length=64, blank=True, default="")
    user_ids = models.JSONField(default=list, blank=True)
    channels = models.JSONField(default=list)
    template_name = models.CharField(max_length=100, blank=True, default="")
    content = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    # Per channel kind, settings the adapters read (icon, sound, template codes...).
    options = models.JSONField(default=dict, blank=True)
    priority = models.CharField(
        max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    schedule_time = models.DateTimeField(null=True, blank=True)
    # "optimal": each user's message waits for that user's most active local hour.
    send_at = models.CharField(max_length=16, blank=True, default="")
    # {"after": seconds, "unless": "delivered" or "opened"}: try the channel kinds one
    # at a time per user, the next when the previous fails or stays unconfirmed.
    fallback = models.JSONField(default=dict, blank=True)
    # A/B test variants, [{"name", "weight", "content" or "template"}], one per user.
    variants = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING
    )
    error_message = models.TextField(blank=True, default="")
    chunks_total = models.PositiveIntegerField(null=True, blank=True)
    chunks_done = models.PositiveIntegerField(default=0)
    # The campaign that created the task; unique, so a campaign is sent at most once.
    campaign = models.OneToOneField(
        "Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="task"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "notification_id"], name="unique_notification_per_key"
            ),
        ]
        indexes = [
            models.Index(
                fields=["schedule_time"],
                name="task_scheduled_due",
                condition=Q(status="scheduled"),
            ),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.notification_type}:{self.notification_id}"


class FallbackState(models.TextChoices):
    NONE = "", "No fallback"
    # A later channel kind may still be tried for this user.
    WAITING = "waiting", "Waiting for confirmation"
    # The next channel kind's records were created.
    CONTINUED = "continued", "Next channel tried"
    # Confirmed in time, or another record of the same step decides.
    STOPPED = "stopped", "Chain stopped"


# A record is one message to one address: a repeated fan-out must not store it twice.
RECORD_UNIQUE_FIELDS = ["task", "user_id", "channel_kind", "address"]


class PushRecord(models.Model):
    """One message to one address on one channel kind."""

    task = models.ForeignKey(PushTask, on_delete=models.CASCADE, related_name="records")
    user_id = models.CharField(max_length=64, blank=True, default="")
    channel_kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    channel = models.ForeignKey(
        "channels_app.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="records",
    )
    provider = models.CharField(max_length=32, blank=True, default="")
    # The address's kind: a device's provider key ("fcm", "apns") or a contact kind
    # ("email", "phone", "wechat_openid"). Only channels whose adapter takes this kind
    # may send the record. Empty for a record addressed to a channel itself.
    address_kind = models.CharField(max_length=32, blank=True, default="")
    address = models.CharField(max_length=512, blank=True, default="")
    locale = models.CharField(max_length=16, blank=True, default="")
    device = models.ForeignKey(
        "channels_app.Device", null=True, blank=True, on_delete=models.SET_NULL
    )
    contact = models.ForeignKey(
        "channels_app.Contact", null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(
        max_length=16, choices=RecordStatus.choices, default=RecordStatus.QUEUED
    )
    reason = models.CharField(max_length=128, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    response_data = models.JSONField(default=dict, blank=True)
    # SMS only: billed parts of the text as sent.
    segments = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    # The A/B variant this user was assigned, empty for a task without variants.
    variant = models.CharField(max_length=64, blank=True, default="")
    # Whole days the user had been idle (no open, click or activity-API event) when
    # fan-out created the record, capped at analytics.activity.MAX_IDLE_DAYS, or
    # NEVER_ACTIVE when the user had no activity in the MAX_IDLE_DAYS + 1 days before.
    # Null for records without a user and for records created before the column existed.
    idle_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # Position in a fallback chain: 0 for the first channel kind, 1 for the next...
    fallback_step = models.PositiveSmallIntegerField(default=0)
    fallback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fallbacks"
    )
    fallback_state = models.CharField(
        max_length=16, choices=FallbackState.choices, blank=True, default=FallbackState.NONE
    )
    # When a waiting record's confirmation window closes; set once it is sent or fails.
    fallback_due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=RECORD_UNIQUE_FIELDS,
                name="unique_record_per_address",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="record_due",
                condition=Q(status__in=["deferred", "retrying"]),
            ),
            models.Index(fields=["user_id", "sent_at"]),
            models.Index(
                fields=["fallback_due_at"],
                name="record_fallback_waiting",
                condition=Q(fallback_state="waiting"),
            ),
            models.Index(fields=["task", "status"]),
            # Provider callbacks find their record by the id the provider gave.
            models.Index(
                fields=["channel", "provider_message_id"],
                name="record_provider_message",
                condition=~Q(provider_message_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_kind} to {self.user_id} ({self.status})"


class Segment(models.Model):
    """A saved filter over UserProfile.attributes: users matching every condition.

    conditions is a list of {"attribute", "operator", "value"} objects; the operators
    are listed in segments.OPERATORS.
    """

    name = models.CharField(max_length=100, unique=True)
    conditions = models.JSONField(
        default=list, validators=[validate_segment_conditions],
        help_text='A JSON list, such as [{"attribute": "plan", "operator": "equals", '
        '"value": "pro"}, {"attribute": "age", "operator": "greater_than", "value": 30}]. '
        "Operators: equals, not_equals, one_of (value is a list), greater_than, "
        "less_than, exists, not_exists (no value).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """A notification composed by staff in the admin, sent once as one PushTask."""

    class Audience(models.TextChoices):
        ALL = "all", "All users"
        SEGMENT = "segment", "A saved segment"
        UPLOAD = "upload", "An uploaded CSV of user ids"

    class SendMode(models.TextChoices):
        NOW = "now", "Now"
        AT = "at", "At a time"
        OPTIMAL = "optimal", "At each user's most active hour"

    name = models.CharField(max_length=200)
    notification_type = models.CharField(
        max_length=64,
        validators=[RegexValidator(r"^[\w.:-]+$", "Use letters, digits, _ . : and - only.")],
    )
    template_name = models.CharField(
        max_length=100, blank=True, default="",
        help_text="An active template; leave empty to write the title and body here.",
    )
    variables = models.JSONField(
        default=dict, blank=True, help_text="Template variables as a JSON object."
    )
    title = models.CharField(max_length=500, blank=True, default="")
    body = models.TextField(max_length=10_000, blank=True, default="")
    options = models.JSONField(
        default=dict, blank=True,
        help_text="Per channel kind, settings for the adapters, as the push API's "
        'options: {"app": {"sound": "default"}, "sms": {"template_code": "SMS_1"}}.',
    )
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.ALL)
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    channels = models.JSONField(default=list, blank=True)
    priority = models.CharField(
        max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    send_mode = models.CharField(max_length=16, choices=SendMode.choices, default=SendMode.NOW)
    schedule_time = models.DateTimeField(null=True, blank=True)
    variants = models.JSONField(
        default=list, blank=True,
        help_text='A/B test, as the push API\'s variants: [{"name": "a", "weight": 1}, '
        '{"name": "b", "weight": 1, "content": {"title": "…", "body": "…"}}]. A variant '
        "without template and content uses the campaign's.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class CampaignRecipient(models.Model):
    """One user id of a campaign's uploaded audience."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    user_id = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "user_id"], name="unique_campaign_recipient"
            ),
        ]

    def __str__(self) -> str:
        return self.user_id
