from typing import Any

from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest

# Imported for its side effect: it registers the campaign and segment admins.
from sharestack_push.notifications import campaign_admin  # noqa: F401
from sharestack_push.notifications.models import ApiKey, NotificationType, PushRecord, PushTask


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "is_active", "created_at", "last_used_at"]
    fields = ["name", "prefix", "scopes", "is_active", "created_at", "last_used_at"]
    readonly_fields = ["name", "prefix", "scopes", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        # A key is shown only once, so keys come from `manage.py create_api_key`.
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Lists and shows rows that only the pipeline writes."""

    # A COUNT(*) over millions of records would slow every filtered list page.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PushTask)
class PushTaskAdmin(ReadOnlyAdmin):
    list_display = ["notification_id", "notification_type", "target", "status", "priority",
                    "template_name", "created_at", "completed_at"]
    list_filter = ["status", "priority", "target", "notification_type", "created_at"]
    search_fields = ["=id", "notification_id", "notification_type", "user_id", "template_name"]
    readonly_fields = ["record_counts"]

    @admin.display(description="Records by status")
    def record_counts(self, task: PushTask) -> str:
        counts = (
            PushRecord.objects.filter(task=task)
            .values_list("status")
            .annotate(total=Count("id"))
            .order_by("status")
        )
        return ", ".join(f"{status}: {total}" for status, total in counts) or "none"


@admin.register(PushRecord)
class PushRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "task", "user_id", "channel_kind", "provider", "status", "reason", "attempts",
                    "segments", "sent_at"]
    # Every filter on a free-text column runs SELECT DISTINCT over all records, so
    # reason is searched rather than filtered.
    list_filter = ["status", "channel_kind", "provider", "created_at"]
    search_fields = ["=id", "=task__id", "task__notification_id", "user_id",
                     "provider_message_id", "=reason"]
    list_select_related = ["task"]
    raw_id_fields = ["task", "channel", "device", "contact", "fallback_of"]


@admin.register(NotificationType)
class NotificationTypeAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "category", "is_critical", "user_can_disable",
                    "default_channels", "sms_for_urgent", "min_interval_seconds", "updated_at"]
    list_filter = ["category", "is_critical", "user_can_disable", "sms_for_urgent"]
    search_fields = ["key", "name"]
    fields = ["key", "name", "category", "is_critical", "user_can_disable", "default_channels",
              "sms_for_urgent", "min_interval_seconds", "default_send_time"]
