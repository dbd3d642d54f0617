"""Notification type keys must be usable in a push request."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("key", ["*", "has space", "bang!"])
def test_notification_type_key_follows_the_push_pattern(key):
    from django.core.exceptions import ValidationError

    from sharestack_push.notifications.models import NotificationType

    with pytest.raises(ValidationError):
        NotificationType(key=key).full_clean()


def test_minimum_interval_is_capped_at_two_days():
    from django.core.exceptions import ValidationError

    from sharestack_push.notifications.models import NotificationType

    NotificationType(key="ok", min_interval_seconds=48 * 3600).full_clean()
    with pytest.raises(ValidationError):
        NotificationType(key="huge", min_interval_seconds=9223372036854775807).full_clean()
