"""Store open and click events, and apply the human ones to their record.

A pixel or redirect hit becomes an EngagementEvent row until the record has
MAX_EVENT_ROWS rows of that kind. Later hits only add to later_hits on the newest row,
because the endpoints need no authentication and anyone holding one message could
otherwise grow the table without limit. The first human and the first machine hit of
a record and kind are always stored, so there are at most MAX_EVENT_ROWS + 1 rows.

A human event goes through apply_receipt, which sets opened_at or clicked_at once and
counts it in the roll-ups. A machine event only adds to machine_opened or
machine_clicked, once per record and kind, so repeated prefetches of one message count
once.
"""
import logging

from django.db.models import Count, F, Q

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
# Rows kept per record and kind. Ten is a judgment, not a measurement: it covers a
# privacy proxy's prefetch, a link scanner or two and the reader's opens on a few
# devices, so the rows still show who fetched a message.
MAX_EVENT_ROWS = 10
MACHINE_COUNTERS = {
    EngagementKind.OPEN: "machine_opened",
    EngagementKind.CLICK: "machine_clicked",
}


def record_hit(record: PushRecord, hit: Hit) -> bool:
    """Store one hit on a record locked for update; return True if the record changed.

    Call it inside a transaction that holds the record's row lock, so that two hits
    at once cannot both count as the first machine event.
    """
    machine = bool(hit.machine_reason)
    stored = EngagementEvent.objects.filter(record=record, kind=hit.kind)
    counts = stored.aggregate(
        rows=Count("pk"), same_type=Count("pk", filter=Q(machine=machine))
    )
    first_of_type = counts["same_type"] == 0
    keep_row = first_of_type or counts["rows"] < MAX_EVENT_ROWS
    if keep_row:
        store_event(record, hit)
    else:
        newest = stored.order_by("-pk").values_list("pk", flat=True)[:1]
        EngagementEvent.objects.filter(pk__in=newest).update(later_hits=F("later_hits") + 1)
    if machine:
        if first_of_type:
            count_record(record, **{MACHINE_COUNTERS[hit.kind]: 1})
        if keep_row:
            logger.info("tracking: machine %s of record %s (%s)", hit.kind, record.pk,
                        hit.machine_reason)
        return False
    receipt = Receipt(record.provider_message_id, RECEIPT_EVENTS[hit.kind],
                      occurred_at=hit.occurred_at)
    return apply_receipt(record, receipt, hit.occurred_at)
