"""Store open and click events, and apply the human ones to their record.

Every event becomes an EngagementEvent row. A human event goes through apply_receipt,
which sets opened_at or clicked_at once and counts it in the roll-ups. A machine event
only adds to machine_opened or machine_clicked, once per record and kind, so repeated
prefetches of one message count once.
"""
import logging

from analytics.events import Hit, store_event
from analytics.models import EngagementEvent
from analytics.rollups import count_record
from channels_app.providers.base import Receipt, ReceiptEvent
from sharestack_push.notifications.constants import EngagementKind
from sharestack_push.notifications.models import PushRecord
from sharestack_push.notifications.receipts import apply_receipt

logger = logging.getLogger(__name__)

RECEIPT_EVENTS = {
    EngagementKind.OPEN: ReceiptEvent.OPENED,
    EngagementKind.CLICK: ReceiptEvent.CLICKED,
}
MACHINE_COUNTERS = {
    EngagementKind.OPEN: "machine_opened",
    EngagementKind.CLICK: "machine_clicked",
}


def record_hit(record: PushRecord, hit: Hit) -> bool:
    """Store one hit on a record locked for update; return True if the record changed.

    Call it inside a transaction that holds the record's row lock, so that two hits
    at once cannot both count as the first machine event.
    """
    first_machine = bool(hit.machine_reason) and not EngagementEvent.objects.filter(
        record=record, kind=hit.kind, machine=True
    ).exists()
    store_event(record, hit)
    if hit.machine_reason:
        if first_machine:
            count_record(record, **{MACHINE_COUNTERS[hit.kind]: 1})
        logger.info("tracking: machine %s of record %s (%s)", hit.kind, record.pk,
                    hit.machine_reason)
        return False
    receipt = Receipt(record.provider_message_id, RECEIPT_EVENTS[hit.kind],
                      occurred_at=hit.occurred_at)
    return apply_receipt(record, receipt, hit.occurred_at)
