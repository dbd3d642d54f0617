"""Reads the notification type registry into the policy engine's TypeRules."""
from collections.abc import Iterable

from preferences.policy import UNREGISTERED, TypeRules
from sharestack_push.notifications.models import NotificationType


def rules_from(notification_type: NotificationType) -> TypeRules:
    return TypeRules(
        category=notification_type.category,
        is_critical=notification_type.is_critical,
        user_can_disable=notification_type.user_can_disable,
        min_interval_seconds=notification_type.min_interval_seconds or None,
        default_channels=tuple(notification_type.default_channels or ()),
        sms_for_urgent=notification_type.sms_for_urgent,
    )


def rules_by_key(keys: Iterable[str]) -> dict[str, TypeRules]:
    """Return the rules of each registered key among keys, leaving out unregistered ones."""
    return {
        notification_type.key: rules_from(notification_type)
        for notification_type in NotificationType.objects.filter(key__in=set(keys))
    }


def rules_for(key: str) -> TypeRules:
    """Return a type's rules, or the defaults of an unregistered type."""
    return rules_by_key([key]).get(key, UNREGISTERED)
