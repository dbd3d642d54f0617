import logging
from datetime import timedelta

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from preferences.links import create_link
from preferences.models import UserProfile, UserPushPreference
from preferences.serializers import (
    TIME_FORMAT,
    PreferenceDocumentSerializer,
    PreferenceLinkRequestSerializer,
    PreferenceLinkSerializer,
    UserIdQuerySerializer,
)
from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import Scope

logger = logging.getLogger(__name__)


def format_time(value) -> str | None:
    return value.strftime(TIME_FORMAT) if value is not None else None


def preference_document(user_id: str) -> dict:
    profile = UserProfile.objects.filter(user_id=user_id).first() or UserProfile(user_id=user_id)
    quiet_hours = None
    if profile.quiet_hours_start is not None and profile.quiet_hours_end is not None:
        quiet_hours = {"start": format_time(profile.quiet_hours_start), "end": format_time(profile.quiet_hours_end)}
    rows = UserPushPreference.objects.filter(user_id=user_id).order_by("notification_type", "channel")
    return {
        "user_id": user_id,
        "all_enabled": profile.all_enabled,
        "timezone": profile.timezone,
        "locale": profile.locale,
        "quiet_hours": quiet_hours,
        "frequency_limit": {"per_day": profile.daily_limit} if profile.daily_limit is not None else None,
        "preferences": [
            {
                "notification_type": row.notification_type or "*",
                "channel": row.channel,
                "is_enabled": row.is_enabled,
                "quiet_hours_start": format_time(row.quiet_hours_start),
                "quiet_hours_end": format_time(row.quiet_hours_end),
                "frequency_limit": row.frequency_limit,
            }
            for row in rows
        ],
    }


def save_document(data: dict) -> None:
    """Replace a user's preferences with the document, all or nothing."""
    user_id = data["user_id"]
    quiet_hours = data.get("quiet_hours")
    limit = data.get("frequency_limit")
    with transaction.atomic():
        profile, _ = UserProfile.objects.select_for_update().get_or_create(user_id=user_id)
        profile.all_enabled = data["all_enabled"]
        if "timezone" in data:
            profile.timezone = data["timezone"]
        if "locale" in data:
            profile.locale = data["locale"]
        profile.quiet_hours_start = quiet_hours["start"] if quiet_hours else None
        profile.quiet_hours_end = quiet_hours["end"] if quiet_hours else None
        profile.daily_limit = limit["per_day"] if limit else None
        profile.save()
        UserPushPreference.objects.filter(user_id=user_id).delete()
        UserPushPreference.objects.bulk_create(
            UserPushPreference(user_id=user_id, **row) for row in data["preferences"]
        )


class PreferencesView(ApiView):
    required_scope = Scope.PREFERENCES
    allowed_query_params = ("user_id",)

    @extend_schema(
        parameters=[UserIdQuerySerializer],
        responses=PreferenceDocumentSerializer,
        summary="A user's notification preferences",
    )
    def get(self, request: Request) -> Response:
        query = UserIdQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(preference_document(query.validated_data["user_id"]))

    @extend_schema(
        request=PreferenceDocumentSerializer,
        responses=PreferenceDocumentSerializer,
        summary="Replace a user's notification preferences",
        description="Type-and-channel rows override the user-wide settings. The rows "
        "given replace all stored rows; an invalid document changes nothing.",
    )
    def put(self, request: Request) -> Response:
        serializer = PreferenceDocumentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        save_document(serializer.validated_data)
        logger.info("preferences: saved for user %s", serializer.validated_data["user_id"])
        return Response(preference_document(serializer.validated_data["user_id"]))


class PreferenceLinkView(ApiView):
    required_scope = Scope.PREFERENCES

    @extend_schema(
        request=PreferenceLinkRequestSerializer,
        responses=PreferenceLinkSerializer,
        summary="Create a signed link to a user's preference page",
        description="The link opens /preferences/ for this user without a login. "
        "Anyone holding it can change the user's preferences until it expires.",
    )
    def post(self, request: Request) -> Response:
        serializer = PreferenceLinkRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_id = serializer.validated_data["user_id"]
        lifetime = timedelta(seconds=serializer.validated_data["expires_in"])
        link = create_link(user_id, lifetime)
        logger.info("preferences: link created for user %s", user_id)
        return Response(PreferenceLinkSerializer(link).data)
