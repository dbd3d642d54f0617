"""The preference centre: one user's settings as an HTML form, reached by a signed link.

The form posts without JavaScript. A save is turned into the same preference document
that PUT /api/v1/notifications/preferences takes and validated by the same serializer,
so the page and the API accept and reject the same values. Cells of critical
notification types are shown locked and are kept enabled whatever the form posts.
"""
import logging
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from analytics.models import OptOutEvent
from analytics.optouts import record_opt_out, traced_record
from preferences.links import LinkExpired, LinkInvalid, read_link
from preferences.models import UserProfile
from preferences.serializers import PreferenceDocumentSerializer
from preferences.views import preference_document, save_document
from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import ChannelKind
from sharestack_push.notifications.errors import flatten
from sharestack_push.notifications.models import NotificationType
from sharestack_push.notifications.types import rules_from

logger = logging.getLogger(__name__)

CHANNEL_LABELS = {
    ChannelKind.EMAIL: _("Email"),
    ChannelKind.APP: _("App push"),
    ChannelKind.SMS: _("SMS"),
    ChannelKind.WECHAT: _("WeChat"),
}

# The time zones the form offers. A stored zone outside this list is offered too.
COMMON_TIMEZONES = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "UTC",
]

# Labels for the fields of the preference document, shown beside its errors.
FIELD_LABELS = {
    "all_enabled": _("All notifications"),
    "timezone": _("Time zone"),
    "locale": _("Language"),
    "quiet_hours": _("Quiet hours"),
    "frequency_limit": _("Daily limit"),
    "preferences": _("Notification types"),
}


@dataclass(frozen=True)
class ListedType:
    key: str
    name: str
    is_critical: bool


@dataclass
class FormState:
    """The values the form shows: the stored settings, or those of a rejected save."""

    all_enabled: bool
    timezone: str
    locale: str
    quiet_start: str
    quiet_end: str
    daily_limit: str
    enabled: dict[tuple[str, str], bool] = field(default_factory=dict)


def cell_name(notification_type: str, channel: str) -> str:
    # "/" cannot occur in a type key, which allows letters, digits and . _ : - only.
    return f"enabled/{channel}/{notification_type}"


def listed_types(document: dict) -> list[ListedType]:
    """List the registered types, then unregistered types that the user has rows for."""
    # A type is shown locked when users cannot turn it off: critical, or registered
    # with user_can_disable off (the same rule the preferences API enforces).
    registered = [
        ListedType(item.key, item.name or item.key, rules_from(item).locked)
        for item in NotificationType.objects.order_by("category", "key")
    ]
    known = {item.key for item in registered}
    extra = sorted(
        {
            row["notification_type"]
            for row in document["preferences"]
            if row["notification_type"] not in ("*", *known)
        }
    )
    return registered + [ListedType(key, key, False) for key in extra]


def effective_enabled(document: dict, notification_type: str, channel: str) -> bool:
    """Return whether a type is on for a channel.

    The type's own row wins over the row for every type, and no row means on.
    """
    rows = {
        row["notification_type"]: row["is_enabled"]
        for row in document["preferences"]
        if row["channel"] == channel
    }
    if notification_type in rows:
        return rows[notification_type]
    return rows.get("*", True)


def state_from_document(document: dict, types: list[ListedType]) -> FormState:
    quiet_hours = document["quiet_hours"] or {}
    limit = document["frequency_limit"] or {}
    per_day = limit.get("per_day")
    return FormState(
        all_enabled=document["all_enabled"],
        timezone=document["timezone"],
        locale=document["locale"],
        quiet_start=quiet_hours.get("start") or "",
        quiet_end=quiet_hours.get("end") or "",
        daily_limit="" if per_day is None else str(per_day),
        enabled={
            (item.key, channel): effective_enabled(document, item.key, channel)
            for item in types
            for channel in CHANNEL_LABELS
        },
    )


def state_from_post(data: QueryDict, types: list[ListedType]) -> FormState:
    # A browser leaves unchecked and disabled boxes out of the post, so a missing box
    # means off, except on critical types, which stay on whatever is posted.
    return FormState(
        all_enabled="all_enabled" in data,
        timezone=data.get("timezone", "").strip(),
        locale=data.get("locale", "").strip(),
        quiet_start=data.get("quiet_start", "").strip(),
        quiet_end=data.get("quiet_end", "").strip(),
        daily_limit=data.get("daily_limit", "").strip(),
        enabled={
            (item.key, channel): item.is_critical
            or cell_name(item.key, channel) in data
            for item in types
            for channel in CHANNEL_LABELS
        },
    )


def document_from_state(state: FormState, stored: dict) -> dict:
    """Build the PUT document for a posted form, keeping every stored row it does not change.

    A cell whose box matches what the user gets today leaves the rows alone, so rows for
    every type and per-row quiet hours or limits set through the API survive a save.
    """
    rows = [dict(row) for row in stored["preferences"]]
    for (notification_type, channel), wanted in state.enabled.items():
        if wanted == effective_enabled(stored, notification_type, channel):
            continue
        own_row = next(
            (
                row
                for row in rows
                if row["notification_type"] == notification_type
                and row["channel"] == channel
            ),
            None,
        )
        if own_row is None:
            rows.append(
                {
                    "notification_type": notification_type,
                    "channel": channel,
                    "is_enabled": wanted,
                }
            )
        else:
            own_row["is_enabled"] = wanted

    quiet_hours = None
    if state.quiet_start or state.quiet_end:
        quiet_hours = {"start": state.quiet_start, "end": state.quiet_end}
    frequency_limit = None
    if state.daily_limit:
        # Digits become a number. Anything else goes to the serializer as text, so it
        # is rejected with the API's own message.
        per_day = int(state.daily_limit) if state.daily_limit.isdigit() else state.daily_limit
        frequency_limit = {"per_day": per_day}

    return {
        "user_id": stored["user_id"],
        "all_enabled": state.all_enabled,
        "timezone": state.timezone,
        "locale": state.locale,
        "quiet_hours": quiet_hours,
        "frequency_limit": frequency_limit,
        "preferences": rows,
    }


def turns_off(stored: dict, state: FormState) -> bool:
    """Return True if the save turns off everything or a type the user gets today."""
    if stored["all_enabled"] and not state.all_enabled:
        return True
    return any(
        not wanted and effective_enabled(stored, notification_type, channel)
        for (notification_type, channel), wanted in state.enabled.items()
    )


def count_page_opt_out(user_id: str, record_id: int | None) -> None:
    """Count an opt-out saved through the preference link of one message."""
    record = traced_record(record_id, user_id)
    if record is None:
        return
    record_opt_out(
        user_id, OptOutEvent.Source.PREFERENCE_PAGE, record.channel_kind,
        record.task.notification_type, clock.now(), record,
    )


def form_errors(state: FormState, serializer_errors: dict) -> list[tuple[str, str]]:
    """Return (field label, message) pairs for the page."""
    errors: list[tuple[str, str]] = []
    half_quiet_hours = bool(state.quiet_start) != bool(state.quiet_end)
    if half_quiet_hours:
        message = _("Give both a start and an end, or neither.")
        errors.append((str(FIELD_LABELS["quiet_hours"]), str(message)))
    for path, messages in flatten(serializer_errors).items():
        top = path.split(".")[0].split("[")[0]
        if half_quiet_hours and top == "quiet_hours":
            continue  # The serializer's "wrong format" error on the blank half is less clear.
        label = str(FIELD_LABELS.get(top, path))
        errors.extend((label, str(message)) for message in messages)
    return errors


def page_language(request: HttpRequest, user_id: str | None) -> str:
    """Pick the user's stored locale, else the browser's Accept-Language."""
    supported = dict(settings.LANGUAGES)
    if user_id is not None:
        profile = UserProfile.objects.filter(user_id=user_id).only("locale").first()
        if profile is not None and profile.locale in supported:
            return profile.locale
    return translation.get_language_from_request(request)


def render_in(
    request: HttpRequest, language: str, template: str, context: dict, status: int = 200
) -> HttpResponse:
    with translation.override(language):
        response = render(request, template, {**context, "language": language}, status=status)
    response["Content-Language"] = language
    return response


def link_error_page(request: HttpRequest, expired: bool) -> HttpResponse:
    language = page_language(request, None)
    if expired:
        title = _("This link has expired")
        text = _(
            "Preference links work for a limited time. Open the link in a newer "
            "message from us to change your settings."
        )
        status = 403
    else:
        title = _("This link is not valid")
        text = _(
            "The link is incomplete or has been changed. Copy the whole link from "
            "the message, or open the link in a newer message from us."
        )
        status = 400
    return render_in(
        request, language, "preferences/link_error.html",
        {"title": title, "text": text}, status=status,
    )


def grid_rows(types: list[ListedType], state: FormState) -> list[dict]:
    return [
        {
            "type": item,
            "cells": [
                {
                    "name": cell_name(item.key, channel),
                    "label": CHANNEL_LABELS[channel],
                    "checked": item.is_critical or state.enabled[(item.key, channel)],
                    "locked": item.is_critical,
                }
                for channel in CHANNEL_LABELS
            ],
        }
        for item in types
    ]


def render_form(
    request: HttpRequest,
    token: str,
    user_id: str,
    types: list[ListedType],
    state: FormState,
    language: str,
    errors: list[tuple[str, str]],
    status: int = 200,
) -> HttpResponse:
    timezones = list(COMMON_TIMEZONES)
    if state.timezone and state.timezone not in timezones:
        timezones.insert(0, state.timezone)
    context = {
        "action": f"{reverse('preference-centre')}?{urlencode({'token': token})}",
        "user_id": user_id,
        "state": state,
        "channels": list(CHANNEL_LABELS.values()),
        "rows": grid_rows(types, state),
        "timezones": timezones,
        "languages": settings.LANGUAGES,
        "errors": errors,
        "saved": request.method == "GET" and request.GET.get("saved") == "1",
    }
    return render_in(request, language, "preferences/centre.html", context, status=status)


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def preference_centre(request: HttpRequest) -> HttpResponse:
    """Show one user's preferences (GET) or save the posted form (POST).

    The user comes from the signed `token` query parameter: a missing or altered token
    gets a 400 page and an expired one a 403 page, both in the browser's language.
    """
    token = request.GET.get("token", "")
    try:
        user_id, record_id = read_link(token)
    except LinkExpired:
        return link_error_page(request, expired=True)
    except LinkInvalid:
        return link_error_page(request, expired=False)

    language = page_language(request, user_id)
    stored = preference_document(user_id)
    types = listed_types(stored)
    if request.method == "GET":
        state = state_from_document(stored, types)
        # The language select starts at the page's language, so a first save by a user
        # without a profile keeps the language they are reading.
        state.locale = language
        return render_form(request, token, user_id, types, state, language, errors=[])

    state = state_from_post(request.POST, types)
    serializer = PreferenceDocumentSerializer(data=document_from_state(state, stored))
    valid = serializer.is_valid()
    errors = form_errors(state, {} if valid else serializer.errors)
    if errors:
        logger.info("preferences: page save rejected for user %s", user_id)
        return render_form(
            request, token, user_id, types, state, language, errors, status=400
        )

    save_document(serializer.validated_data)
    if turns_off(stored, state):
        count_page_opt_out(user_id, record_id)
    logger.info("preferences: saved from the preference page for user %s", user_id)
    query = urlencode({"token": token, "saved": "1"})
    return HttpResponseRedirect(f"{reverse('preference-centre')}?{query}", status=303)
