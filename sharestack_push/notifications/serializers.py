import json

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

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
from templates.models import PushTemplate

MAX_USER_IDS = 10_000
MAX_DATA_BYTES = 4096
USER_ID_FIELD = {"max_length": 64, "allow_blank": False, "trim_whitespace": True}


class ContentSerializer(StrictSerializer):
    title = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    body = StrictCharField(max_length=10_000, required=False, allow_blank=True, default="")
    data = JsonObjectField(required=False, default=dict)

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
        child=serializers.ChoiceField(choices=ChannelKind.choices), min_length=1
    )
    template = StrictCharField(max_length=100, required=False)
    content = ContentSerializer(required=False)
    variables = JsonObjectField(required=False, default=dict)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    schedule_time = AwareDateTimeField(required=False, allow_null=True)

    def validate_channels(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("List each channel once.")
        return value

    def validate(self, attrs):
        errors = {}
        targets = [name for name in ("user_id", "user_ids") if attrs.get(name)]
        if attrs.get("broadcast"):
            targets.append("broadcast")
        if len(targets) != 1:
            errors["user_id"] = "Give exactly one of user_id, user_ids or broadcast: true."
        has_template, has_content = "template" in attrs, "content" in attrs
        if has_template == has_content:
            errors["template"] = "Give exactly one of template or content."
        elif has_template:
            # A missing variable is not checked here: the record fails at rendering
            # with template_variable_missing:<name>, as the API contract states.
            exists = PushTemplate.objects.filter(
                name=attrs["template"], channel__in=attrs.get("channels", []), is_active=True
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
