from django.contrib import admin

from channels_app.models import Channel, Contact, Device


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "provider", "enabled", "priority", "is_healthy"]
    list_filter = ["kind", "provider", "enabled"]
    exclude = ["encrypted_credentials"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["user_id", "platform", "provider", "is_active", "last_seen_at"]
    list_filter = ["platform", "provider", "is_active"]
    search_fields = ["user_id"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["user_id", "kind", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["user_id"]
