from django.db import models

from sharestack_push.notifications.constants import ChannelKind


class PushTemplate(models.Model):
    """Title, body and action of one message kind on one channel kind and locale.

    `variables` declares what the templates may use: a list of names, or of objects
    `{"name", "required", "default"}`. Rendering fails rather than send a blank.
    """

    channel = models.CharField(max_length=16, choices=ChannelKind.choices)
    type = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=100)
    locale = models.CharField(max_length=16, blank=True, default="")
    title_template = models.CharField(max_length=500, blank=True, default="")
    content_template = models.TextField()
    # Email only: the HTML part, rendered with HTML escaping of variables. The text
    # part comes from content_template.
    html_template = models.TextField(blank=True, default="")
    action_template = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=list, blank=True)
    # Values the admin preview renders with, in place of real task variables.
    sample_variables = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name", "channel", "locale"], name="unique_template_locale"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.channel}{'/' + self.locale if self.locale else ''})"
