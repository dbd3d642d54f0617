"""Notification type keys must be usable in a push request."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("key", ["*", "has space", "bang!"])
def test_notification_type_key_follows_the_push_pattern(key):
    from django.core.exceptions import ValidationError

    from sharestack_push.notifications.models import NotificationType

    with pytest.raises(ValidationError):
        NotificationType(key=key).full_clean()
