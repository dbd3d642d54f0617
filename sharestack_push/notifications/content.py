"""Rendering of a task's message per channel kind, locale and variant, cached per job."""
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template import TemplateSyntaxError

from preferences.models import UserProfile
from sharestack_push.notifications.constants import Reason
from templates.models import PushTemplate
from templates.rendering import (
    USER_VARIABLE,
    RenderedMessage,
    TemplateVariableMissing,
    render_template,
    uses_user_attributes,
)


@dataclass(frozen=True)
class RenderOutcome:
    message: RenderedMessage | None
    # Set when the message cannot be rendered; the record fails with this reason.
    failure: str = ""


def find_template(name: str, channel_kind: str, locale: str) -> PushTemplate | None:
    """Pick the user's locale, then the template without a locale, then the default."""
    candidates = {
        template.locale: template
        for template in PushTemplate.objects.filter(
            name=name, channel=channel_kind, is_active=True
        )
    }
    for candidate in (locale, "", settings.PUSH_DEFAULT_LOCALE):
        if candidate in candidates:
            return candidates[candidate]
    return next(iter(candidates.values()), None)


def render_content(content: dict[str, Any], channel_kind: str) -> RenderOutcome:
    return RenderOutcome(
        RenderedMessage(
            title=str(content.get("title", "")),
            body=str(content.get("body", "")),
            data=dict(content.get("data") or {}),
            html=str(content.get("html", "")) if channel_kind == "email" else "",
        )
    )


def render_found(
    template: PushTemplate, content: dict[str, Any], variables: dict[str, Any]
) -> RenderOutcome:
    try:
        message = render_template(
            template.title_template,
            template.content_template,
            template.action_template,
            template.variables,
            variables,
            template.html_template,
        )
    except TemplateVariableMissing as missing:
        return RenderOutcome(None, f"{Reason.TEMPLATE_VARIABLE_MISSING}:{missing.name}")
    except (TemplateSyntaxError, ValueError):
        return RenderOutcome(None, Reason.TEMPLATE_ERROR)
    if content.get("data"):
        message = RenderedMessage(
            message.title, message.body, {**content["data"], **message.data}, message.html
        )
    return RenderOutcome(message)


def message_source(task: Any, variant: str) -> tuple[str, dict[str, Any]]:
    """Return the template name and content of a task, or of one of its variants."""
    for entry in task.variants or ():
        if entry["name"] == variant:
            return entry.get("template", ""), entry.get("content") or {}
    return task.template_name, task.content


class RenderCache:
    """Renders each (task, variant, channel kind, locale) once within one job.

    A template that declares `user.<attribute>` variables is rendered per recipient.
    The profiles of all user_ids are then loaded in one query, the first time one is
    needed, so a job whose templates read no attributes makes no such query.
    """

    def __init__(self, user_ids: Iterable[str] = ()) -> None:
        self._cache: dict[tuple[Any, ...], RenderOutcome] = {}
        self._templates: dict[tuple[str, str, str], PushTemplate | None] = {}
        self._expected_users = set(user_ids)
        self._users: dict[str, dict[str, Any]] = {}

    def get(
        self, task: Any, channel_kind: str, locale: str, user_id: str = "", variant: str = ""
    ) -> RenderOutcome:
        template_name, content = message_source(task, variant)
        if not template_name:
            key: tuple[Any, ...] = (task.pk, variant, channel_kind)
            if key not in self._cache:
                self._cache[key] = render_content(content, channel_kind)
            return self._cache[key]
        template = self.template(template_name, channel_kind, locale)
        if template is None:
            return RenderOutcome(None, Reason.TEMPLATE_MISSING)
        personal = uses_user_attributes_safely(template.variables)
        key = (task.pk, variant, channel_kind, locale, user_id if personal else None)
        if key not in self._cache:
            values = dict(task.variables or {})
            if personal:
                values[USER_VARIABLE] = self.user_context(user_id)
            self._cache[key] = render_found(template, content, values)
        return self._cache[key]

    def template(self, name: str, channel_kind: str, locale: str) -> PushTemplate | None:
        key = (name, channel_kind, locale)
        if key not in self._templates:
            self._templates[key] = find_template(name, channel_kind, locale)
        return self._templates[key]

    def user_context(self, user_id: str) -> dict[str, Any]:
        """Return what `user.` reads: the profile's attributes and locale."""
        if user_id not in self._users:
            self.load_users({user_id} | self._expected_users - set(self._users))
        return self._users[user_id]

    def load_users(self, user_ids: set[str]) -> None:
        for user_id in user_ids:
            self._users[user_id] = {"locale": settings.PUSH_DEFAULT_LOCALE}
        rows = UserProfile.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "locale", "attributes"
        )
        for user_id, locale, attributes in rows:
            self._users[user_id] = {**(attributes or {}), "locale": locale}


def uses_user_attributes_safely(declared: Any) -> bool:
    """Tell whether a template reads user attributes; a malformed declaration does not."""
    try:
        return uses_user_attributes(declared or [])
    except ValueError:
        return False
