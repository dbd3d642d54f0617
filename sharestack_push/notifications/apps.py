from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "sharestack_push.notifications"
    label = "notifications"
    verbose_name = "Notifications"
