from django.contrib import admin

from templates.models import PushTemplate


@admin.register(PushTemplate)
class PushTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "locale", "type", "is_active", "version"]
    list_filter = ["channel", "is_active"]
    search_fields = ["name"]
