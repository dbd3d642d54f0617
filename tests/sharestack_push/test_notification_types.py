"""The notification type registry: model validation, the admin and TypeRules."""
import pytest
from django.core.exceptions import ValidationError

from preferences.policy import UNREGISTERED, TypeRules
from sharestack_push.notifications.models import NotificationType
from sharestack_push.notifications.types import rules_by_key, rules_for

ADMIN_ADD_URL = "/admin/notifications/notificationtype/add/"

pytestmark = pytest.mark.django_db


def test_marketing_type_cannot_be_critical():
    with pytest.raises(ValidationError) as error:
        NotificationType(key="promo", category="marketing", is_critical=True).full_clean()
    assert "is_critical" in error.value.message_dict


def test_marketing_type_must_allow_disabling():
    with pytest.raises(ValidationError) as error:
        NotificationType(key="promo", category="marketing", user_can_disable=False).full_clean()
    assert "user_can_disable" in error.value.message_dict


@pytest.mark.parametrize(
    "channels", [["fax"], ["app", "app"], "app", [1]],
)
def test_invalid_default_channels_rejected(channels):
    with pytest.raises(ValidationError) as error:
        NotificationType(key="order", default_channels=channels).full_clean()
    assert "default_channels" in error.value.message_dict


def test_valid_type_passes_validation():
    NotificationType(key="security", is_critical=True, default_channels=["app", "sms"],
                     sms_for_urgent=True, min_interval_seconds=60).full_clean()


def test_rules_read_from_registry():
    NotificationType.objects.create(
        key="security", is_critical=True, default_channels=["app", "email"],
        sms_for_urgent=True, min_interval_seconds=30,
    )
    assert rules_for("security") == TypeRules(
        category="transactional", is_critical=True, user_can_disable=True,
        min_interval_seconds=30, default_channels=("app", "email"), sms_for_urgent=True,
    )


def test_unregistered_type_gets_defaults():
    assert rules_for("nothing") == UNREGISTERED
    assert rules_by_key(["nothing"]) == {}


def test_staff_defines_type_in_admin(client, django_user_model):
    staff = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(staff)
    response = client.post(ADMIN_ADD_URL, {
        "key": "security", "name": "Security alert", "category": "transactional",
        "is_critical": "on", "user_can_disable": "on", "default_channels": '["app", "sms"]',
        "sms_for_urgent": "on", "min_interval_seconds": "60",
    })
    assert response.status_code == 302
    created = NotificationType.objects.get(key="security")
    assert created.default_channels == ["app", "sms"]
    assert created.is_critical is True
    assert created.min_interval_seconds == 60


def test_admin_rejects_critical_marketing(client, django_user_model):
    staff = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(staff)
    response = client.post(ADMIN_ADD_URL, {
        "key": "promo", "category": "marketing", "is_critical": "on",
        "user_can_disable": "on", "default_channels": "[]",
    })
    assert response.status_code == 200
    assert not NotificationType.objects.exists()
