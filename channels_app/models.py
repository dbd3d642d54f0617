from typing import Any

from django.db import models
from django.db.models import Q

from channels_app.crypto import decrypt_credentials, encrypt_credentials
from sharestack_push.notifications.constants import ChannelKind


class Channel(models.Model):
    """One configured provider account, such as an SMTP server or a Firebase project."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    provider = models.CharField(max_length=32)
    config = models.JSONField(default=dict, blank=True)
    encrypted_credentials = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Lower numbers are tried first among enabled channels of the same kind.
    priority = models.PositiveSmallIntegerField(default=100)
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)
    cost_per_message = models.DecimalField(
        max_digits=10, decimal_places=5, null=True, blank=True
    )
    is_healthy = models.BooleanField(default=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "priority", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}/{self.provider})"

    @property
    def credentials(self) -> dict[str, Any]:
        return decrypt_credentials(self.encrypted_credentials)

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.encrypted_credentials = encrypt_credentials(value)


class Device(models.Model):
    """An app's push token on one device of one user."""

    class Platform(models.TextChoices):
        ANDROID = "android", "Android"
        IOS = "ios", "iOS"
        WEB = "web", "Web"

    user_id = models.CharField(max_length=64, db_index=True)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    provider = models.CharField(max_length=32)
    token = models.CharField(max_length=512)
    is_active = models.BooleanField(default=True)
    registered_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "token"], name="unique_device_token"
            ),
        ]
        indexes = [
            models.Index(
                fields=["user_id"], name="device_active", condition=Q(is_active=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} device of {self.user_id}"


class Contact(models.Model):
    """An address other than a push token: email, phone number, WeChat ids."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        WECHAT_OPENID = "wechat_openid", "WeChat official account openid"
        MINIAPP_OPENID = "miniapp_openid", "WeChat mini program openid"
        WECOM_USERID = "wecom_userid", "WeCom user id"

    user_id = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    address = models.CharField(max_length=255)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "kind", "address"], name="unique_contact_address"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.user_id}"


# The contact kinds that each channel kind sends to. App push uses devices instead.
CONTACT_KINDS_FOR_CHANNEL = {
    ChannelKind.EMAIL: (Contact.Kind.EMAIL,),
    ChannelKind.SMS: (Contact.Kind.PHONE,),
    ChannelKind.WECHAT: (
        Contact.Kind.WECHAT_OPENID,
        Contact.Kind.MINIAPP_OPENID,
        Contact.Kind.WECOM_USERID,
    ),
}
