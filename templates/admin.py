import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST
from rest_framework import serializers

from sharestack_push.notifications.fields import storable_text_problem
from templates.models import PushTemplate
from templates.preview import preview_template, render_preview
from templates.serializers import PushTemplateSerializer

# The fields that the API serializer validates, in the order its errors are shown.
VALIDATED_FIELDS = (
    "channel",
    "locale",
    "title_template",
    "content_template",
    "html_template",
    "action_template",
    "variables",
)


def error_messages(detail: Any) -> list[str]:
    """Flatten a DRF error detail (a string, list or dict) into plain messages."""
    if isinstance(detail, dict):
        return [text for value in detail.values() for text in error_messages(value)]
    if isinstance(detail, list):
        return [text for value in detail for text in error_messages(value)]
    return [str(detail)]


class PushTemplateForm(forms.ModelForm):
    """Rejects a template that the API would reject, with the same messages."""

    class Meta:
        model = PushTemplate
        fields = [
            "name",
            "type",
            "channel",
            "locale",
            "title_template",
            "content_template",
            "html_template",
            "action_template",
            "variables",
            "sample_variables",
            "is_active",
        ]
        help_texts = {
            "variables": 'A JSON list of names, or of {"name", "required", "default"}.',
            "sample_variables": "A JSON object of values that the preview renders with.",
        }

    def clean_locale(self) -> str:
        return self._run_validator("locale", PushTemplateSerializer().validate_locale)

    def clean_variables(self) -> Any:
        return self._run_validator("variables", PushTemplateSerializer().validate_variables)

    def clean_sample_variables(self) -> Any:
        value = self.cleaned_data.get("sample_variables")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        problem = storable_text_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not all(name in cleaned for name in VALIDATED_FIELDS):
            return cleaned  # a field error is already shown
        attrs = {name: cleaned[name] for name in VALIDATED_FIELDS}
        try:
            PushTemplateSerializer().validate(attrs)
        except serializers.ValidationError as error:
            for name, detail in error.detail.items():
                self.add_error(name, error_messages(detail))
        return cleaned

    def _run_validator(self, name: str, validator: Any) -> Any:
        value = self.cleaned_data.get(name)
        try:
            return validator(value)
        except serializers.ValidationError as error:
            raise forms.ValidationError(error_messages(error.detail)) from None


def json_field(data: Any, name: str, empty: Any) -> tuple[Any, str | None]:
    """Parse one JSON form field and return the value and an error message or None."""
    text = data.get(name, "").strip()
    if not text:
        return empty, None
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"{name} is not valid JSON: {error}"


def preview_view(request: HttpRequest) -> JsonResponse:
    """Render the change form's current, unsaved sources and return the preview as JSON."""
    parsed = {}
    errors = []
    for name, empty in (
        ("variables", []),
        ("action_template", {}),
        ("sample_variables", {}),
    ):
        parsed[name], error = json_field(request.POST, name, empty)
        if error:
            errors.append(error)
    if errors:
        return JsonResponse({"errors": errors}, status=400)

    preview = render_preview(
        channel=request.POST.get("channel", ""),
        locale=request.POST.get("locale", ""),
        title_template=request.POST.get("title_template", ""),
        content_template=request.POST.get("content_template", ""),
        html_template=request.POST.get("html_template", ""),
        **parsed,
    )
    return JsonResponse(preview.as_json())


@admin.register(PushTemplate)
class PushTemplateAdmin(admin.ModelAdmin):
    form = PushTemplateForm
    list_display = ["name", "channel", "locale", "type", "is_active", "version"]
    list_filter = ["channel", "locale", "is_active"]
    search_fields = ["name", "type"]

    def get_urls(self) -> list[Any]:
        preview = path(
            "preview/",
            self.admin_site.admin_view(require_POST(self.checked_preview_view)),
            name="push_templates_pushtemplate_preview",
        )
        return [preview, *super().get_urls()]

    def checked_preview_view(self, request: HttpRequest) -> HttpResponse:
        """Serve previews to staff who may add or change templates, else 403."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            return HttpResponseForbidden()
        return preview_view(request)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        template = self.get_object(request, object_id)
        if template is not None:
            extra_context = {**(extra_context or {}), "previews": self.previews(template)}
        return super().change_view(request, object_id, form_url, extra_context)

    def previews(self, template: PushTemplate) -> list[dict[str, Any]]:
        """Render this template and its other channels and locales with its samples."""
        versions = PushTemplate.objects.filter(name=template.name).order_by(
            "channel", "locale"
        )
        return [
            {
                "template": version,
                "current": version.pk == template.pk,
                "preview": preview_template(version, template.sample_variables),
            }
            for version in versions
        ]
