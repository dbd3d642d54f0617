"""Serializer fields that reject JSON of the wrong type instead of coercing it.

DRF turns 0 into False and 5 into "5". An API that documents types returns 400 instead.
"""

import math
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sharestack_push.notifications import clock

MAX_JSON_DEPTH = 20
# How far a reported time may lie ahead of the server clock, to allow for the clock
# skew of devices.
CLOCK_SKEW_TOLERANCE = timedelta(minutes=5)
CLOCK_SKEW_MINUTES = CLOCK_SKEW_TOLERANCE.seconds // 60


def check_not_ahead_of_clock(value: datetime) -> None:
    """Raise a ValidationError when a reported time is further ahead than the skew allows."""
    latest = clock.now() + CLOCK_SKEW_TOLERANCE
    if value > latest:
        raise serializers.ValidationError(
            f"Must not be later than the current time plus {CLOCK_SKEW_MINUTES} "
            f"minutes ({latest.isoformat()})."
        )


def storable_text_problem(value: Any) -> str | None:
    """Return why a JSON value cannot be stored in PostgreSQL, or None.

    PostgreSQL rejects NUL characters in text and jsonb, lone UTF-16 surrogates cannot
    be encoded as UTF-8, infinite numbers are not JSON, and nesting deeper than
    MAX_JSON_DEPTH is rejected outright.
    """
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return f"JSON nested deeper than {MAX_JSON_DEPTH} levels."
        if isinstance(item, str):
            if "\x00" in item:
                return "Text must not contain NUL characters."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "Text must be valid Unicode (no lone surrogates)."
        elif isinstance(item, float) and not math.isfinite(item):
            # JSON such as 1e400 parses to infinity, which JSON cannot store again.
            return "Numbers must be finite; this one is out of range."
        elif isinstance(item, dict):
            pending.extend((key, depth + 1) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return None


class RejectUnknownFieldsMixin:
    """Rejects body fields the serializer does not accept, with a 400 naming them.

    A misspelt field (`shedule_time`) would otherwise be dropped silently, and the
    request would do something other than what the caller meant.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            fields = self.fields  # type: ignore[attr-defined]
            errors = {}
            for name in sorted(
                set(data) - {n for n, f in fields.items() if not f.read_only}
            ):
                errors[name] = (
                    ["This field is read-only."]
                    if name in fields
                    else ["Unknown field."]
                )
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    pass


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        problem = storable_text_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


class StorableJsonMixin:
    """Rejects JSON whose strings PostgreSQL cannot store."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)  # type: ignore[misc]
        problem = storable_text_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class JsonObjectField(StorableJsonMixin, serializers.DictField):
    pass


class JsonListField(StorableJsonMixin, serializers.ListField):
    pass


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# A ModelSerializer whose generated fields use the strict types above and which
# rejects unknown fields. (A comment, not a docstring: the schema would show it.)
class StrictModelSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.BooleanField: StrictBooleanField,
        models.IntegerField: StrictIntegerField,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
    }


class StrictRegexField(serializers.RegexField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
        "example": "22:00",
        "description": "Local wall-clock time, HH:MM.",
    }
)
class WallClockField(serializers.TimeField):
    """A local time of day written HH:MM, without a UTC offset."""

    def __init__(self, **kwargs) -> None:
        super().__init__(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"], **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", format="HH:MM")
        return super().to_internal_value(data)
