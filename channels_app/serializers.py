import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework import serializers

from channels_app.models import Channel, Contact, Device
from channels_app.providers import REGISTRY
from sharestack_push.notifications.fields import (
    JsonObjectField,
    StrictCharField,
    StrictModelSerializer,
    StrictRegexField,
)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class ChannelSerializer(StrictModelSerializer):
    config = JsonObjectField(required=False, default=dict)
    credentials = JsonObjectField(write_only=True, required=False)
    has_credentials = serializers.SerializerMethodField()
    rate_limit_per_second = serializers.IntegerField(
        min_value=1, required=False, allow_null=True,
        help_text="Messages per second across all workers; null for no limit.",
    )
    provider = serializers.ChoiceField(choices=sorted(REGISTRY))

    class Meta:
        model = Channel
        fields = [
            "id", "name", "kind", "provider", "config", "credentials", "has_credentials",
            "enabled", "priority", "rate_limit_per_second", "cost_per_message",
            "is_healthy", "last_error", "created_at", "updated_at",
        ]
        read_only_fields = ["is_healthy", "last_error", "created_at", "updated_at"]

    def get_has_credentials(self, channel: Channel) -> bool:
        return bool(channel.encrypted_credentials)

    def validate(self, attrs):
        instance: Channel | None = self.instance
        kind = attrs.get("kind", instance.kind if instance else None)
        provider = attrs.get("provider", instance.provider if instance else None)
        config = attrs.get("config", instance.config if instance else {})
        if "credentials" in attrs:
            credentials = attrs["credentials"]
        elif instance is not None and provider != instance.provider:
            raise serializers.ValidationError(
                {"credentials": "Give the new provider's credentials when changing provider."}
            )
        else:
            credentials = instance.credentials if instance else {}
        adapter = REGISTRY[provider]
        if kind not in adapter.kinds:
            raise serializers.ValidationError(
                {"kind": f"Provider {provider!r} sends only {', '.join(adapter.kinds)}."}
            )
        errors = adapter.validate(config, credentials)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def create(self, validated_data):
        credentials = validated_data.pop("credentials", {})
        channel = Channel(**validated_data)
        channel.credentials = credentials
        channel.save()
        return channel

    def update(self, instance, validated_data):
        changed_setup = bool({"credentials", "config", "provider"} & set(validated_data))
        if "credentials" in validated_data:
            instance.credentials = validated_data.pop("credentials")
        for name, value in validated_data.items():
            setattr(instance, name, value)
        if validated_data.get("enabled") or changed_setup:
            # New settings deserve a fresh try: an unhealthy channel is tried last.
            instance.is_healthy, instance.last_error = True, ""
        instance.save()
        return instance


class ContactSerializer(StrictModelSerializer):
    user_id = StrictCharField(max_length=64)

    class Meta:
        model = Contact
        fields = ["id", "user_id", "kind", "address", "is_active", "created_at"]
        read_only_fields = ["is_active", "created_at"]
        validators = []  # registration is idempotent: the view returns the existing row

    def validate(self, attrs):
        address = attrs["address"].strip()
        if attrs["kind"] == Contact.Kind.EMAIL:
            try:
                validate_email(address)
            except DjangoValidationError:
                raise serializers.ValidationError({"address": "Enter a valid email address."})
            address = address.lower()
        elif attrs["kind"] == Contact.Kind.PHONE:
            address = re.sub(r"[\s()-]", "", address)
            if not E164.match(address):
                raise serializers.ValidationError(
                    {"address": "Enter the number in E.164 form, for example +8613800138000."}
                )
        attrs["address"] = address
        return attrs


class DeviceSerializer(StrictModelSerializer):
    user_id = StrictCharField(max_length=64)
    token = StrictCharField(max_length=512)
    provider = StrictRegexField(r"^[a-z0-9_]+$", max_length=32)

    class Meta:
        model = Device
        fields = ["id", "user_id", "platform", "provider", "token", "is_active", "registered_at"]
        read_only_fields = ["is_active", "registered_at"]
        validators = []

    def validate_provider(self, value):
        known = device_providers()
        if value not in known:
            raise serializers.ValidationError(
                f"Unknown push provider {value!r}; use one of {', '.join(sorted(known))}."
            )
        return value


def device_providers() -> set[str]:
    """Return the provider keys a device token can belong to: those app adapters take."""
    return {
        kind
        for adapter in REGISTRY.values()
        if "app" in adapter.kinds
        for kind in adapter.address_kinds
    }


