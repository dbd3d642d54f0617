"""Records in the sent state, for the SMS status callback tests."""

import pytest

from channels_app.models import Channel, Contact
from sharestack_push.notifications.models import PushRecord, PushTask


def callback_url(channel: Channel, **query: str) -> str:
    url = f"/api/v1/callbacks/{channel.pk}"
    if query:
        url += "?" + "&".join(f"{name}={value}" for name, value in query.items())
    return url


@pytest.fixture
def sent_sms(db):
    """Build a sent SMS record on a channel for an active phone contact."""

    def build(
        channel: Channel,
        provider_message_id: str,
        address: str = "+8613800000001",
        user_id: str = "li",
    ) -> PushRecord:
        contact, _ = Contact.objects.get_or_create(
            user_id=user_id, kind="phone", address=address
        )
        task = PushTask.objects.create(
            notification_id=f"n-{provider_message_id}-{address}",
            notification_type="order",
            target="user",
            user_id=user_id,
            channels=["sms"],
        )
        return PushRecord.objects.create(
            task=task,
            user_id=user_id,
            channel_kind="sms",
            channel=channel,
            provider=channel.provider,
            address_kind="phone",
            address=address,
            contact=contact,
            status="sent",
            provider_message_id=provider_message_id,
        )

    return build
