import json

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from channels_app.models import Channel
from channels_app.providers import provider_class
from preferences.policy import choose_channels
from sharestack_push.notifications.constants import ChannelKind, Priority
from sharestack_push.notifications.fields import (
    JsonObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictModelSerializer,
    StrictRegexField,
    StrictSerializer,
)
from sharestack_push.notifications.models import PushRecord, PushTask
from sharestack_push.notifications.types import rules_for
from templates.models import PushTemplate

MAX_USER_IDS = 10_000
MAX_DATA_BYTES = 4096
USER_ID_FIELD = {"max_length": 64, "allow_blank": False, "trim_whitespace": True}


class ContentSerializer(StrictSerializer):
    title = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    body = StrictCharField(max_length=10_000, required=False, allow_blank=True, default="")
    data = JsonObjectField(required=False, default=dict)
    # Email only: the HTML part; body is the text part.
    html = StrictCharField(max_length=200_000, required=False, allow_blank=True)

    def validate_data(self, value):
        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_DATA_BYTES:
            raise serializers.ValidationError(
                f"Must be at most {MAX_DATA_BYTES} bytes as JSON; FCM and APNs allow 4 KB."
            )
        return value

    def validate(self, attrs):
        if not attrs.get("title") and not attrs.get("body"):
            raise serializers.ValidationError({"body": "Give a title or a body."})
        return attrs


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its UTC offset."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                raise serializers.ValidationError(
                    f"{value!r} is not a real date and time."
                ) from None
            if parsed is not None and parsed.tzinfo is None:
                raise serializers.ValidationError(
                    "Include a UTC offset, for example 2026-12-24T20:00:00+08:00."
                )
        return super().to_internal_value(value)


class PushSerializer(StrictSerializer):
    notification_id = StrictCharField(max_length=128)
    notification_type = StrictRegexField(r"^[\w.:-]+$", max_length=64)
    user_id = StrictCharField(required=False, **USER_ID_FIELD)
    user_ids = serializers.ListField(
        child=StrictCharField(**USER_ID_FIELD),
        required=False, min_length=1, max_length=MAX_USER_IDS,
    )
    broadcast = StrictBooleanField(required=False, default=False)
    channels = serializers.ListField(
        child=StrictCharField(max_length=100), min_length=1, required=False,
        help_text=(
            "Channel kinds (email, app, sms, wechat) to reach the users on, and names of "
            "configured channels that address a group themselves, such as a WeCom robot. "
            "Optional when the notification type has default channels."
        ),
    )
    template = StrictCharField(max_length=100, required=False)
    content = ContentSerializer(required=False)
    variables = JsonObjectField(required=False, default=dict)
    options = JsonObjectField(
        required=False, default=dict,
        help_text="Per channel kind, settings for the adapters, such as "
        '{"app": {"sound": "default", "badge": 1}, "sms": {"template_code": "SMS_1"}}.',
    )
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    schedule_time = AwareDateTimeField(required=False, allow_null=True)

    def validate_channels(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("List each channel once.")
        names = [name for name in value if name not in ChannelKind.values]
        if names:
            known = {
                channel.name: channel
                for channel in Channel.objects.filter(name__in=names, enabled=True)
            }
            errors = {}
            for index, name in enumerate(value):
                if name in ChannelKind.values:
                    continue
                channel = known.get(name)
                adapter = provider_class(channel.provider) if channel else None
                if adapter is None or not adapter.addresses_channel:
                    errors[index] = [
                        f"{name!r} is neither a channel kind ({', '.join(ChannelKind.values)}) "
                        "nor an enabled channel that addresses a group, such as a WeCom robot."
                    ]
            if errors:
                raise serializers.ValidationError(errors)
        return value

    def validate_options(self, value):
        unknown = sorted(set(value) - set(ChannelKind.values))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown channel kinds: {', '.join(unknown)}; use {', '.join(ChannelKind.values)}."
            )
        for kind, settings in value.items():
            if not isinstance(settings, dict):
                raise serializers.ValidationError(f"options.{kind} must be an object.")
        return value

    @staticmethod
    def resolve_channels(attrs) -> None:
        """Fill in the type's default channels, and SMS for an urgent message if allowed.

        A push without users (one to named group channels) keeps its channels as given.
        """
        requested = attrs.get("channels", [])
        reaches_users = any(attrs.get(name) for name in ("user_id", "user_ids", "broadcast"))
        channels = requested
        if reaches_users:
            rules = rules_for(attrs["notification_type"])
            channels = choose_channels(requested, rules, attrs["priority"])
        if not channels:
            raise serializers.ValidationError({
                "channels": f"Give channels: notification type {attrs['notification_type']!r} "
                "has no default channels."
            })
        attrs["channels"] = channels

    @staticmethod
    def template_kinds(attrs) -> set[str]:
        """Return the channel kinds the request reaches, named channels included."""
        kinds = {name for name in attrs.get("channels", []) if name in ChannelKind.values}
        names = [name for name in attrs.get("channels", []) if name not in ChannelKind.values]
        kinds.update(Channel.objects.filter(name__in=names).values_list("kind", flat=True))
        return kinds

    def validate(self, attrs):
        self.resolve_channels(attrs)
        errors = {}
        targets = [name for name in ("user_id", "user_ids") if attrs.get(name)]
        if attrs.get("broadcast"):
            targets.append("broadcast")
        kinds = [name for name in attrs.get("channels", []) if name in ChannelKind.values]
        if len(targets) > 1 or (not targets and kinds):
            errors["user_id"] = "Give exactly one of user_id, user_ids or broadcast: true."
        elif targets and not kinds and attrs.get("channels"):
            errors["user_id"] = (
                "The named channels address a group; drop the users or add channel kinds."
            )
        has_template, has_content = "template" in attrs, "content" in attrs
        if has_template == has_content:
            errors["template"] = "Give exactly one of template or content."
        elif has_template:
            # A missing variable is not checked here: the record fails at rendering
            # with template_variable_missing:<name>, as the API contract states.
            exists = PushTemplate.objects.filter(
                name=attrs["template"], channel__in=self.template_kinds(attrs), is_active=True
            ).exists()
            if not exists:
                errors["template"] = (
                    f"No active template named {attrs['template']!r} for channels "
                    f"{', '.join(attrs.get('channels', []))}."
                )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class PushAcceptedSerializer(StrictSerializer):
    id = serializers.UUIDField()
    notification_id = StrictCharField()
    status = StrictCharField()


class PushRecordSerializer(StrictModelSerializer):
    channel = StrictCharField(source="channel_kind")
    channel_name = StrictCharField(source="channel.name", default=None)

    class Meta:
        model = PushRecord
        fields = [
            "id", "user_id", "channel", "channel_name", "provider", "status", "reason",
            "attempts", "next_attempt_at", "provider_message_id", "error_message",
            "sent_at", "delivered_at", "opened_at", "clicked_at", "created_at",
        ]


class PushTaskSerializer(StrictModelSerializer):
    class Meta:
        model = PushTask
        fields = [
            "id", "notification_id", "notification_type", "target", "user_id", "channels",
            "priority", "schedule_time", "status", "created_at", "dispatched_at",
            "completed_at",
        ]
