from django.contrib import admin

from preferences.models import UserProfile, UserPushPreference


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = [
        "user_id", "timezone", "locale", "all_enabled", "daily_limit", "marketing_sms_opt_out",
    ]
    list_filter = ["marketing_sms_opt_out"]
    search_fields = ["user_id"]


@admin.register(UserPushPreference)
class UserPushPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user_id", "notification_type", "channel", "is_enabled"]
    search_fields = ["user_id"]
