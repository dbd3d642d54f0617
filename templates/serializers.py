from rest_framework import serializers

from sharestack_push.notifications.fields import (
    JsonListField,
    JsonObjectField,
    StrictModelSerializer,
)
from templates.models import PushTemplate
from templates.rendering import check_template_sources, template_strings


class PushTemplateSerializer(StrictModelSerializer):
    variables = JsonListField(required=False, default=list)
    action_template = JsonObjectField(required=False, default=dict)

    class Meta:
        model = PushTemplate
        fields = [
            "id", "channel", "type", "name", "locale", "title_template", "content_template",
            "action_template", "variables", "is_active", "version", "created_at", "updated_at",
        ]
        read_only_fields = ["version", "created_at", "updated_at"]

    def validate(self, attrs):
        sources = [attrs.get("title_template", ""), attrs.get("content_template", "")]
        sources += template_strings(attrs.get("action_template") or {})
        problems = check_template_sources(sources, attrs.get("variables", []))
        if problems:
            raise serializers.ValidationError({"content_template": problems})
        return attrs
