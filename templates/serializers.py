import re

from rest_framework import serializers

from sharestack_push.notifications.fields import (
    JsonListField,
    JsonObjectField,
    StrictModelSerializer,
)
from templates.models import PushTemplate
from templates.rendering import parse_variables, source_problems, template_strings


# A BCP 47 style language tag: a 2-3 letter language, then subtags of 2-8 letters or digits.
LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


class PushTemplateSerializer(StrictModelSerializer):
    variables = JsonListField(required=False, default=list)
    action_template = JsonObjectField(required=False, default=dict)

    class Meta:
        model = PushTemplate
        fields = [
            "id",
            "channel",
            "type",
            "name",
            "locale",
            "title_template",
            "content_template",
            "html_template",
            "action_template",
            "variables",
            "is_active",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["version", "created_at", "updated_at"]

    def validate_locale(self, value):
        if value and not LOCALE.fullmatch(value):
            raise serializers.ValidationError(
                "Must be a language tag such as zh-hans or en-us, or empty for any locale."
            )
        return value.lower()

    def validate_variables(self, value):
        try:
            parse_variables(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
        return value

    def validate(self, attrs):
        declared = attrs.get("variables", [])
        try:
            names = {spec.name for spec in parse_variables(declared)}
        except ValueError:
            return attrs  # validate_variables already reported it
        errors = {}
        for field in ("title_template", "content_template", "html_template"):
            problems = source_problems(attrs.get(field, ""), names)
            if problems:
                errors[field] = problems
        action_problems = [
            problem
            for source in template_strings(attrs.get("action_template") or {})
            for problem in source_problems(source, names)
        ]
        if action_problems:
            errors["action_template"] = action_problems
        if attrs.get("html_template") and attrs.get("channel") != "email":
            errors["html_template"] = ["Only email templates have an HTML part."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs
