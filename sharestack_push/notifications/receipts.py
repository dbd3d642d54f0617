"""Applies provider receipts (delivered, opened, clicked, failed) to records.

A record only moves forward: sent, then delivered, opened, clicked. A later event
fills the times of the earlier ones it implies (a click means the message was
delivered and opened). A failure receipt counts only before delivery.
"""
import logging
from datetime import datetime

from django.db import transaction

from analytics.events import Hit, store_event
from analytics.optouts import record_complaint
from analytics.rollups import count_receipt
from channels_app.models import Channel
from channels_app.providers.base import Receipt, ReceiptEvent
from preferences.activity import record_activity
from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import (
    EngagementKind,
    EngagementSource,
    Reason,
    RecordStatus,
)
from sharestack_push.notifications.delivery import deactivate
from sharestack_push.notifications.models import PushRecord

logger = logging.getLogger(__name__)

RANK = {
    RecordStatus.SENDING: 0,
    RecordStatus.SENT: 1,
    RecordStatus.DELIVERED: 2,
    RecordStatus.OPENED: 3,
    RecordStatus.CLICKED: 4,
}
EVENT_STATUS = {
    ReceiptEvent.DELIVERED: RecordStatus.DELIVERED,
    ReceiptEvent.OPENED: RecordStatus.OPENED,
    ReceiptEvent.CLICKED: RecordStatus.CLICKED,
}
# Events that show the user was active at that moment, for learning active hours.
ACTIVITY_EVENTS = (ReceiptEvent.OPENED, ReceiptEvent.CLICKED)
ENGAGEMENT_KINDS = {
    ReceiptEvent.OPENED: EngagementKind.OPEN,
    ReceiptEvent.CLICKED: EngagementKind.CLICK,
}
# The time fields an event sets, with those it implies.
EVENT_TIMES = {
    ReceiptEvent.DELIVERED: ("delivered_at",),
    ReceiptEvent.OPENED: ("delivered_at", "opened_at"),
    ReceiptEvent.CLICKED: ("delivered_at", "opened_at", "clicked_at"),
}


def apply_receipts(channel: Channel, receipts: list[Receipt]) -> int:
    """Apply each receipt to its record; return how many records changed."""
    changed = 0
    for receipt in receipts:
        records = PushRecord.objects.filter(
            channel=channel, provider_message_id=receipt.provider_message_id
        )
        if receipt.address:
            records = records.filter(address=receipt.address)
        with transaction.atomic():
            matched = list(records.select_for_update())
            if not matched:
                logger.info("%s: receipt for unknown message %s on channel %s (%s)",
                            channel.provider, receipt.provider_message_id, channel.pk,
                            receipt.event.value)
                continue
            when = receipt.occurred_at or clock.now()
            for record in matched:
                # NOTE: opens and clicks that the ESP tracked itself count as human,
                # because its receipts carry no machine flag that this code reads.
                if receipt.event in ENGAGEMENT_KINDS:
                    kind = ENGAGEMENT_KINDS[receipt.event]
                    store_event(record, Hit(kind, EngagementSource.PROVIDER, when))
                if apply_receipt(record, receipt, when):
                    changed += 1
    return changed


def apply_receipt(record: PushRecord, receipt: Receipt, when: datetime) -> bool:
    """Apply one receipt to a record locked for update; return True if it changed.

    A complaint leaves the record as it is and only counts, once per record.
    """
    if receipt.event == ReceiptEvent.COMPLAINED:
        return record_complaint(record, when)
    fields = ["status", "updated_at"]
    if receipt.event == ReceiptEvent.FAILED:
        if record.status not in (RecordStatus.SENDING, RecordStatus.SENT):
            return False
        record.status = RecordStatus.FAILED
        record.reason = Reason.INVALID_ADDRESS if receipt.invalid_address else Reason.UNDELIVERED
        record.error_message = f"{receipt.error_code}: {receipt.error_message}".strip(": ")
        fields += ["reason", "error_message"]
        if receipt.invalid_address:
            deactivate_address(record, when)
    else:
        target = EVENT_STATUS[receipt.event]
        current = RANK.get(record.status)
        if current is None:
            return False
        for name in EVENT_TIMES[receipt.event]:
            if getattr(record, name) is None:
                setattr(record, name, when)
                fields.append(name)
        if RANK[target] > current:
            record.status = target
        elif len(fields) == 2:
            return False
    record.updated_at = clock.now()
    record.save(update_fields=fields)
    count_receipt(record, [name for name in fields if name.endswith("_at") and name != "updated_at"],
                  failed=record.status == RecordStatus.FAILED)
    if receipt.event in ACTIVITY_EVENTS and record.user_id:
        record_activity([(record.user_id, when)])
    return True


def deactivate_address(record: PushRecord, when: datetime) -> None:
    devices = [(record.device_id, None)] if record.device_id else []
    contacts = [record.contact_id] if record.contact_id else []
    deactivate(devices, contacts, when)
