"""Rendering of a task's message for one channel kind and locale, cached per job."""
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template import TemplateSyntaxError

from sharestack_push.notifications.constants import Reason
from templates.models import PushTemplate
from templates.rendering import (
    RenderedMessage,
    TemplateVariableMissing,
    render_template,
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


def render_for(
    template_name: str,
    content: dict[str, Any],
    variables: dict[str, Any],
    channel_kind: str,
    locale: str,
) -> RenderOutcome:
    if not template_name:
        return RenderOutcome(
            RenderedMessage(
                title=str(content.get("title", "")),
                body=str(content.get("body", "")),
                data=dict(content.get("data") or {}),
                html=str(content.get("html", "")) if channel_kind == "email" else "",
            )
        )
    template = find_template(template_name, channel_kind, locale)
    if template is None:
        return RenderOutcome(None, Reason.TEMPLATE_MISSING)
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


class RenderCache:
    """Renders each (task, channel kind, locale) once within one job."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, str, str], RenderOutcome] = {}

    def get(self, task: Any, channel_kind: str, locale: str) -> RenderOutcome:
        key = (task.pk, channel_kind, locale)
        if key not in self._cache:
            self._cache[key] = render_for(
                task.template_name, task.content, task.variables, channel_kind, locale
            )
        return self._cache[key]
