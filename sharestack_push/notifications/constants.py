"""The status, reason and kind vocabulary shared by the pipeline, API and admin."""
from django.db import models


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    APP = "app", "App push"
    SMS = "sms", "SMS"
    WECHAT = "wechat", "WeChat"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class TaskStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RecordStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    DEFERRED = "deferred", "Deferred"
    RETRYING = "retrying", "Retrying"
    SUPPRESSED = "suppressed", "Suppressed"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    FAILED = "failed", "Failed"


# Records in these states still have work ahead of them.
OPEN_RECORD_STATUSES = (
    RecordStatus.QUEUED,
    RecordStatus.SENDING,
    RecordStatus.DEFERRED,
    RecordStatus.RETRYING,
)
# Records in these states reached the provider and count against frequency limits.
DELIVERED_RECORD_STATUSES = (
    RecordStatus.SENDING,
    RecordStatus.SENT,
    RecordStatus.DELIVERED,
    RecordStatus.OPENED,
    RecordStatus.CLICKED,
)


class Reason:
    """Machine-readable reasons stored on records that did not send at once."""

    ALL_DISABLED = "all_disabled"
    PREFERENCE_DISABLED = "preference_disabled"
    # The number's owner replied with an opt-out keyword such as STOP, which
    # suppresses marketing SMS, or the provider rejected the number for that reason.
    SMS_OPTED_OUT = "sms_opted_out"
    QUIET_HOURS = "quiet_hours"
    FREQUENCY_LIMIT = "frequency_limit"
    # The type's minimum interval between two messages to one user has not passed.
    MIN_INTERVAL = "min_interval"
    NO_ADDRESS = "no_address"
    NO_CHANNEL = "no_channel_configured"
    TEMPLATE_MISSING = "template_missing"
    TEMPLATE_VARIABLE_MISSING = "template_variable_missing"
    TEMPLATE_ERROR = "template_error"
    INVALID_ADDRESS = "invalid_address"
    PERMANENT_ERROR = "permanent_error"
    CONFIGURATION_ERROR = "configuration_error"
    MAX_ATTEMPTS = "max_attempts"
    # The provider accepted the message and later reported it undeliverable.
    UNDELIVERED = "undelivered"
    RATE_LIMITED = "rate_limited"
    TASK_CANCELLED = "task_cancelled"
    # Held until the user's next most active hour (a push with send_at "optimal").
    OPTIMAL_TIME = "optimal_time"


class EngagementKind(models.TextChoices):
    OPEN = "open", "Open"
    CLICK = "click", "Click"


class EngagementSource(models.TextChoices):
    PIXEL = "pixel", "Email open pixel"
    REDIRECT = "redirect", "Click redirect"
    SDK = "sdk", "App SDK event"
    PROVIDER = "provider", "Provider webhook"


class MachineReason:
    """Reasons for judging an open or click to come from software rather than a person."""

    HEAD_REQUEST = "head_request"
    APPLE_PRIVACY_PROXY = "apple_privacy_proxy"
    LINK_SCANNER = "link_scanner"
    MISSING_USER_AGENT = "missing_user_agent"
    TOO_SOON_AFTER_SEND = "too_soon_after_send"


class Scope(models.TextChoices):
    PUSH = "push", "Send notifications and register addresses"
    PREFERENCES = "preferences", "Read and change user preferences"
    ADMIN = "admin", "Manage channels and templates"
