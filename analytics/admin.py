from django.contrib import admin

from analytics.models import AlertEvent, AlertRule


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ["state", "value", "message", "created_at", "notified_at", "notify_error"]
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "enabled", "firing", "last_value", "last_evaluated_at",
                    "alert_channel"]
    list_filter = ["kind", "enabled", "firing"]
    readonly_fields = ["firing", "last_value", "last_evaluated_at"]
    inlines = [AlertEventInline]


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ["rule", "state", "value", "created_at", "notified_at"]
    list_filter = ["state"]
    readonly_fields = [field.name for field in AlertEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


# The index adds a link to the delivery dashboard above the app list.
admin.site.index_template = "admin/analytics/index.html"
