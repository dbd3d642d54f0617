from django.apps import AppConfig


class TemplatesConfig(AppConfig):
    name = "templates"
    label = "push_templates"
    verbose_name = "Message templates"
