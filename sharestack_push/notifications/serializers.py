import json

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from channels_app.models import Channel
from channels_app.providers import provider_class
from preferences.policy import choose_channels
from sharestack_push.notifications.constants import ChannelKind, Priority
from sharestack_push.notifications.fallback import (
    MAX_AFTER_SECONDS,
    UNLESS_FIELDS,
    parse_duration,
)
from sharestack_push.notifications.fields import (
    JsonObjectField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictModelSerializer,
    StrictRegexField,
    StrictSerializer,
)
from sharestack_push.notifications.models import PushRecord, PushTask
from sharestack_push.notifications.strategy import OPTIMAL
from sharestack_push.notifications.types import rules_for
from templates.models import PushTemplate

MAX_USER_IDS = 10_000
MAX_DATA_BYTES = 4096
MAX_VARIANTS = 10
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


class FallbackSerializer(StrictSerializer):
    after = StrictCharField(
        help_text="How long a message may stay unconfirmed before the next channel "
        "kind is tried: a number with s, m or h, such as 30s, 10m or 2h.",
    )
    unless = serializers.ChoiceField(
        choices=list(UNLESS_FIELDS), default="delivered",
        help_text="What confirms a message in time: delivered, or opened.",
    )

    def validate_after(self, value: str) -> int:
        seconds = parse_duration(value)
        if seconds is None:
            raise serializers.ValidationError(
                f"{value!r} is not a duration; use a number with s, m or h, such as 10m."
            )
        if seconds > MAX_AFTER_SECONDS:
            raise serializers.ValidationError("Must be at most 7 days (168h).")
        return seconds


class VariantSerializer(StrictSerializer):
    name = StrictRegexField(r"^[\w.-]+$", max_length=64)
    weight = StrictIntegerField(min_value=1, max_value=10_000)
    template = StrictCharField(max_length=100, required=False)
    content = ContentSerializer(required=False)

    def validate(self, attrs):
        if ("template" in attrs) == ("content" in attrs):
            raise serializers.ValidationError(
                {"content": "Give exactly one of template or content."}
            )
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
        '{"app": {"sound": "default", "badge": 1}, "sms": {"template_code": "SMS_1"}}. '
        '"tracking": false keeps that kind\'s links and email open pixel untracked.',
    )
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    schedule_time = AwareDateTimeField(required=False, allow_null=True)
    send_at = serializers.ChoiceField(
        choices=[OPTIMAL], required=False,
        help_text="optimal: deliver at each user's next most active local hour within "
        "24 hours, or at the type's default send time when no activity is known.",
    )
    fallback = FallbackSerializer(
        required=False,
        help_text="Try the channel kinds one at a time per user, in the order given.",
    )
    variants = VariantSerializer(
        many=True, required=False, min_length=2, max_length=MAX_VARIANTS,
        help_text="A/B test: each user gets one variant, chosen by a stable hash of "
        "notification_id and user_id with these weights. Replaces template and content.",
    )

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
        errors = {
            kind: ["Must be an object."]
            for kind, settings in value.items()
            if not isinstance(settings, dict)
        }
        errors |= {
            kind: {"tracking": ["Must be true or false."]}
            for kind, settings in value.items()
            if isinstance(settings, dict)
            and "tracking" in settings
            and not isinstance(settings["tracking"], bool)
        }
        if errors:
            raise serializers.ValidationError(errors)
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
        errors.update(self.content_errors(attrs))
        if "fallback" in attrs and len(kinds) < 2:
            errors["fallback"] = "A fallback needs at least two channel kinds in channels."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


    def content_errors(self, attrs) -> dict[str, str]:
        has_template, has_content = "template" in attrs, "content" in attrs
        if "variants" in attrs:
            if has_template or has_content:
                return {"variants": "Give template or content in each variant, not beside them."}
            names = [entry["name"] for entry in attrs["variants"]]
            if len(set(names)) != len(names):
                return {"variants": "Give each variant a different name."}
            errors = {}
            for index, entry in enumerate(attrs["variants"]):
                if "template" in entry:
                    problem = self.template_problem(entry["template"], attrs)
                    if problem:
                        errors[f"variants[{index}].template"] = problem
            return errors
        if has_template == has_content:
            return {"template": "Give exactly one of template or content."}
        if has_template:
            problem = self.template_problem(attrs["template"], attrs)
            if problem:
                return {"template": problem}
        return {}

    def template_problem(self, name: str, attrs) -> str:
        # A missing variable is not checked here: the record fails at rendering
        # with template_variable_missing:<name>, as the API contract states.
        exists = PushTemplate.objects.filter(
            name=name, channel__in=self.template_kinds(attrs), is_active=True
        ).exists()
        if exists:
            return ""
        return (
            f"No active template named {name!r} for channels "
            f"{', '.join(attrs.get('channels', []))}."
        )


class PushAcceptedSerializer(StrictSerializer):
    id = serializers.UUIDField()
    notification_id = StrictCharField()
    status = StrictCharField()


class PushRecordSerializer(StrictModelSerializer):
    channel = StrictCharField(source="channel_kind")
    channel_name = StrictCharField(source="channel.name", default=None)
    failover = serializers.SerializerMethodField(
        help_text="The channels that failed before the one that sent, in order."
    )

    class Meta:
        model = PushRecord
        fields = [
            "id", "user_id", "channel", "channel_name", "provider", "status", "reason",
            "attempts", "next_attempt_at", "provider_message_id", "error_message",
            "sent_at", "delivered_at", "opened_at", "clicked_at", "created_at",
            "variant", "fallback_step", "fallback_of", "fallback_state", "failover",
            "segments",
        ]

    def get_failover(self, record: PushRecord) -> list[dict[str, str]]:
        return list((record.response_data or {}).get("failover", []))


class PushTaskSerializer(StrictModelSerializer):
    class Meta:
        model = PushTask
        fields = [
            "id", "notification_id", "notification_type", "target", "user_id", "channels",
            "priority", "schedule_time", "send_at", "status", "created_at",
            "dispatched_at", "completed_at",
        ]
