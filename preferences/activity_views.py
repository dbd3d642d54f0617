"""The API that feeds active-time delivery and personalised templates."""

import json
import logging
import re
from datetime import datetime, timedelta

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from preferences.activity import record_activity
from preferences.models import UserProfile
from sharestack_push.notifications import clock
from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import Scope
from sharestack_push.notifications.fields import (
    CLOCK_SKEW_MINUTES,
    JsonObjectField,
    StrictCharField,
    StrictSerializer,
    check_not_ahead_of_clock,
)
from sharestack_push.notifications.serializers import USER_ID_FIELD, AwareDateTimeField

logger = logging.getLogger(__name__)

MAX_EVENTS = 1000
# An app may report activity it stored while offline, so times some days old are
# accepted. Older ones no longer describe when the user is active now.
MAX_ACTIVITY_AGE = timedelta(days=30)
MAX_ATTRIBUTES_BYTES = 8192
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# `user.locale` is the profile's locale, so no attribute may take its name.
RESERVED_ATTRIBUTES = frozenset({"locale"})


def check_activity_time(value: datetime) -> None:
    """Raise a ValidationError for a time too old or too far ahead to be activity."""
    check_not_ahead_of_clock(value)
    if value < clock.now() - MAX_ACTIVITY_AGE:
        raise serializers.ValidationError(
            f"Must be within the last {MAX_ACTIVITY_AGE.days} days."
        )


ACTIVITY_TIME_HELP = (
    "When the user was active, with its UTC offset: within the last "
    f"{MAX_ACTIVITY_AGE.days} days and at most "
    f"{CLOCK_SKEW_MINUTES} minutes ahead of the server clock."
)


class ActivityEventSerializer(StrictSerializer):
    user_id = StrictCharField(**USER_ID_FIELD)
    occurred_at = AwareDateTimeField(
        validators=[check_activity_time], help_text=ACTIVITY_TIME_HELP
    )


class ActivityRequestSerializer(StrictSerializer):
    user_id = StrictCharField(required=False, **USER_ID_FIELD)
    occurred_at = AwareDateTimeField(
        required=False, validators=[check_activity_time], help_text=ACTIVITY_TIME_HELP
    )
    events = ActivityEventSerializer(
        many=True,
        required=False,
        min_length=1,
        max_length=MAX_EVENTS,
        help_text=f"Several events at once, at most {MAX_EVENTS}, instead of user_id "
        "and occurred_at.",
    )

    def validate(self, attrs):
        single = "user_id" in attrs or "occurred_at" in attrs
        if single == ("events" in attrs):
            raise serializers.ValidationError(
                {"events": "Give either user_id and occurred_at, or events."}
            )
        if single and not ("user_id" in attrs and "occurred_at" in attrs):
            missing = "occurred_at" if "user_id" in attrs else "user_id"
            raise serializers.ValidationError({missing: "This field is required."})
        return attrs

    def events_list(self) -> list[tuple[str, object]]:
        data = self.validated_data
        if "events" in data:
            return [
                (event["user_id"], event["occurred_at"]) for event in data["events"]
            ]
        return [(data["user_id"], data["occurred_at"])]


class ActivityView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(
        request=ActivityRequestSerializer,
        responses={
            202: inline_serializer(
                "ActivityRecorded", {"recorded": serializers.IntegerField()}
            )
        },
        summary="Record user activity",
        description="Each event counts towards the user's active local hours, which "
        "a push with send_at optimal uses to choose its delivery time.",
    )
    def post(self, request: Request) -> Response:
        serializer = ActivityRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recorded = record_activity(serializer.events_list())
        return Response({"recorded": recorded}, status=status.HTTP_202_ACCEPTED)


class AttributesSerializer(StrictSerializer):
    attributes = JsonObjectField(
        help_text="Replaces all stored attributes; templates read them as "
        "user.<name>. Names are identifiers; locale is reserved.",
    )

    def validate_attributes(self, value: dict) -> dict:
        for name in value:
            if not ATTRIBUTE_NAME.match(name):
                raise serializers.ValidationError(
                    f"{name!r} is not a valid attribute name; use letters, digits and "
                    "_, starting with a letter or _."
                )
            if name in RESERVED_ATTRIBUTES:
                raise serializers.ValidationError(
                    f"{name!r} is reserved: templates read the profile's {name} there."
                )
        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_ATTRIBUTES_BYTES:
            raise serializers.ValidationError(
                f"Must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON."
            )
        return value


def valid_user_id(user_id: str) -> str:
    """Return a user id from the URL path; raise ValidationError naming user_id."""
    try:
        return StrictCharField(**USER_ID_FIELD).run_validation(user_id)
    except serializers.ValidationError as error:
        raise serializers.ValidationError({"user_id": error.detail}) from None


class UserAttributesView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(
        responses=AttributesSerializer, summary="A user's template attributes"
    )
    def get(self, request: Request, user_id: str) -> Response:
        user_id = valid_user_id(user_id)
        profile = UserProfile.objects.filter(user_id=user_id).first()
        return Response({"attributes": profile.attributes if profile else {}})

    @extend_schema(
        request=AttributesSerializer,
        responses=AttributesSerializer,
        summary="Replace a user's template attributes",
    )
    def put(self, request: Request, user_id: str) -> Response:
        user_id = valid_user_id(user_id)
        serializer = AttributesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attributes = serializer.validated_data["attributes"]
        UserProfile.objects.update_or_create(
            user_id=user_id, defaults={"attributes": attributes}
        )
        logger.info(
            "preferences: saved %d attributes for user %s", len(attributes), user_id
        )
        return Response({"attributes": attributes})
