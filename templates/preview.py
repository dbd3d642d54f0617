"""Server-side preview of a template for the admin, rendered from sample variables."""

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from django.template import TemplateSyntaxError

from channels_app.sms import sms_length
from sharestack_push.notifications.constants import ChannelKind
from templates.rendering import (
    TemplateVariableMissing,
    check_template_sources,
    render_template,
    template_strings,
)


@dataclass
class Preview:
    """One template's rendered output, or the problems that stop it from rendering."""

    channel: str
    locale: str
    title: str = ""
    body: str = ""
    html: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # SMS only: the encoding and the number of billed segments of the body.
    sms_encoding: str = ""
    sms_segments: int | None = None

    @property
    def data_json(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False) if self.data else ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def render_preview(
    *,
    channel: str,
    locale: str,
    title_template: str,
    content_template: str,
    html_template: str,
    action_template: Any,
    variables: Any,
    sample_variables: Any,
) -> Preview:
    """Render template sources with sample values, collecting problems instead of raising."""
    preview = Preview(channel=channel, locale=locale)
    if not isinstance(variables, list):
        preview.errors.append("variables must be a JSON list.")
    if not isinstance(action_template, dict):
        preview.errors.append("action_template must be a JSON object.")
    if not isinstance(sample_variables, dict):
        preview.errors.append("sample variables must be a JSON object.")
    if preview.errors:
        return preview

    sources = [title_template, content_template, html_template]
    sources += template_strings(action_template)
    preview.errors = check_template_sources(sources, variables)
    if preview.errors:
        return preview

    try:
        rendered = render_template(
            title_template,
            content_template,
            action_template,
            variables,
            sample_variables,
            html_template=html_template,
        )
    except (TemplateVariableMissing, TemplateSyntaxError, ValueError) as error:
        preview.errors.append(str(error))
        return preview

    preview.title = rendered.title
    preview.body = rendered.body
    preview.html = rendered.html
    preview.data = rendered.data
    if channel == ChannelKind.SMS:
        length = sms_length(rendered.body)
        preview.sms_encoding = length.encoding
        preview.sms_segments = length.segments
    return preview


def preview_template(template: Any, sample_variables: Any = None) -> Preview:
    """Render a saved template with its own sample variables, or with the given ones."""
    if sample_variables is None:
        sample_variables = template.sample_variables
    return render_preview(
        channel=template.channel,
        locale=template.locale,
        title_template=template.title_template,
        content_template=template.content_template,
        html_template=template.html_template,
        action_template=template.action_template,
        variables=template.variables,
        sample_variables=sample_variables,
    )
