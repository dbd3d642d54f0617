import re
from zoneinfo import available_timezones

from rest_framework import serializers

from preferences.links import DEFAULT_LIFETIME, MAX_LIFETIME, MIN_LIFETIME
from sharestack_push.notifications.constants import ChannelKind
from sharestack_push.notifications.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    WallClockField,
)
from sharestack_push.notifications.types import rules_by_key

TIME_FORMAT = "%H:%M"
TYPE_PATTERN = re.compile(r"^[\w.:-]+$")


class UserIdQuerySerializer(serializers.Serializer):
    user_id = StrictCharField(min_length=1, max_length=64)


class QuietHoursSerializer(StrictSerializer):
    start = WallClockField()
    end = WallClockField()


class FrequencyLimitSerializer(StrictSerializer):
    per_day = StrictIntegerField(min_value=0, max_value=10_000, allow_null=True)


class PreferenceRowSerializer(StrictSerializer):
    notification_type = StrictCharField(
        max_length=64, allow_blank=True, required=False, default="",
        help_text="A notification type; empty or '*' applies to every type.",
    )
    channel = serializers.ChoiceField(choices=ChannelKind.choices)
    is_enabled = StrictBooleanField(default=True)
    quiet_hours_start = WallClockField(required=False, allow_null=True, default=None)
    quiet_hours_end = WallClockField(required=False, allow_null=True, default=None)
    frequency_limit = StrictIntegerField(min_value=0, max_value=10_000, required=False, allow_null=True, default=None)

    def validate_notification_type(self, value: str) -> str:
        if value == "*":
            return ""
        if value and not TYPE_PATTERN.match(value):
            raise serializers.ValidationError(
                "Use letters, digits and . _ : - only, or '*' for every type."
            )
        return value

    def validate(self, attrs):
        if (attrs.get("quiet_hours_start") is None) != (attrs.get("quiet_hours_end") is None):
            raise serializers.ValidationError(
                {"quiet_hours_end": "Give both quiet_hours_start and quiet_hours_end, or neither."}
            )
        return attrs


class PreferenceDocumentSerializer(StrictSerializer):
    user_id = StrictCharField(max_length=64)
    all_enabled = StrictBooleanField(default=True)
    timezone = StrictCharField(max_length=64, required=False)
    locale = serializers.ChoiceField(choices=["zh-hans", "en"], required=False)
    quiet_hours = QuietHoursSerializer(required=False, allow_null=True, default=None)
    frequency_limit = FrequencyLimitSerializer(required=False, allow_null=True, default=None)
    preferences = PreferenceRowSerializer(many=True, required=False, default=list)

    def validate_timezone(self, value: str) -> str:
        if value not in available_timezones():
            raise serializers.ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Asia/Shanghai.")
        return value

    def validate_preferences(self, rows):
        seen = set()
        for index, row in enumerate(rows):
            key = (row["notification_type"], row["channel"])
            if key in seen:
                raise serializers.ValidationError(
                    f"Row {index} repeats notification_type {row['notification_type'] or '*'!r} "
                    f"on channel {row['channel']!r}."
                )
            seen.add(key)
        self.reject_locked_opt_outs(rows)
        return rows

    @staticmethod
    def reject_locked_opt_outs(rows) -> None:
        """Reject a row that turns off a type users cannot turn off, naming the row."""
        named = [row["notification_type"] for row in rows if row["notification_type"]]
        rules = rules_by_key(named)
        errors = {}
        for index, row in enumerate(rows):
            type_rules = rules.get(row["notification_type"])
            if not row["is_enabled"] and type_rules is not None and type_rules.locked:
                errors[index] = {
                    "is_enabled": [
                        f"Notification type {row['notification_type']!r} cannot be turned "
                        "off; drop the row or set is_enabled to true."
                    ]
                }
        if errors:
            raise serializers.ValidationError(errors)

class PreferenceLinkRequestSerializer(StrictSerializer):
    user_id = StrictCharField(min_length=1, max_length=64)
    expires_in = StrictIntegerField(
        min_value=int(MIN_LIFETIME.total_seconds()),
        max_value=int(MAX_LIFETIME.total_seconds()),
        required=False,
        default=int(DEFAULT_LIFETIME.total_seconds()),
        help_text="Seconds until the link stops working; 7 days when omitted.",
    )


class PreferenceLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="The user's preference page, signed for them.")
    expires_at = serializers.DateTimeField()
