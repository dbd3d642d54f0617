from django.contrib import admin

from sharestack_push.notifications.models import ApiKey, NotificationType, PushRecord, PushTask


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "is_active", "created_at", "last_used_at"]
    fields = ["name", "prefix", "scopes", "is_active", "created_at", "last_used_at"]
    readonly_fields = ["name", "prefix", "scopes", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        # A key is shown only once, so keys come from `manage.py create_api_key`.
        return False


@admin.register(PushTask)
class PushTaskAdmin(admin.ModelAdmin):
    list_display = ["notification_id", "notification_type", "target", "status", "priority", "created_at"]
    list_filter = ["status", "priority", "target"]
    search_fields = ["notification_id", "notification_type", "user_id"]


@admin.register(PushRecord)
class PushRecordAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "user_id", "channel_kind", "provider", "status", "reason", "attempts",
                    "segments", "sent_at"]
    list_filter = ["status", "channel_kind", "provider"]
    search_fields = ["user_id", "provider_message_id"]
    raw_id_fields = ["task", "channel", "device", "contact", "fallback_of"]


@admin.register(NotificationType)
class NotificationTypeAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "category", "is_critical", "user_can_disable",
                    "default_channels", "sms_for_urgent", "min_interval_seconds", "updated_at"]
    list_filter = ["category", "is_critical", "user_can_disable", "sms_for_urgent"]
    search_fields = ["key", "name"]
    fields = ["key", "name", "category", "is_critical", "user_can_disable", "default_channels",
              "sms_for_urgent", "min_interval_seconds", "default_send_time"]
