"""Store opt-outs and complaints, and count those traced to a message in its roll-up.

An unsubscribe traced to a record adds 1 to `unsubscribed` and a complaint adds 1 to
`complained`, in the roll-up row the record counts in. A record counts at most one
unsubscribe, whatever its source, and one complaint, so a repeated webhook or a second
save of the preference page adds nothing. Every opt-out and complaint also becomes an
OptOutEvent, which the opt_outs_rising alert counts.
"""
import logging
from datetime import datetime

from analytics.models import OptOutEvent
from analytics.rollups import count_record
from sharestack_push.notifications.models import PushRecord

logger = logging.getLogger(__name__)


def traced_record(record_id: int | None, user_id: str) -> PushRecord | None:
    """Return the record, if it exists and was sent to this user."""
    if record_id is None:
        return None
    record = PushRecord.objects.select_related("task").filter(pk=record_id).first()
    if record is None or record.user_id != user_id:
        logger.info("opt-outs: record %s is not a message to user %s; not counted",
                    record_id, user_id)
        return None
    return record


def already_counted(record: PushRecord, sources: tuple[str, ...]) -> bool:
    return OptOutEvent.objects.filter(record=record, source__in=sources).exists()


def record_opt_out(
    user_id: str,
    source: str,
    channel_kind: str,
    notification_type: str,
    now: datetime,
    record: PushRecord | None = None,
) -> OptOutEvent:
    """Store an opt-out; with a record, count it as unsubscribed once per record.

    A complaint never counts as unsubscribed, so unsubscribes of every other source
    share the once-per-record check.
    """
    unsubscribes = tuple(
        value for value in OptOutEvent.Source.values if value != OptOutEvent.Source.COMPLAINT
    )
    if record is not None and already_counted(record, unsubscribes):
        record = None
    event = OptOutEvent.objects.create(
        user_id=user_id, source=source, channel_kind=channel_kind,
        notification_type=notification_type, created_at=now, record=record,
    )
    if record is not None:
        count_record(record, unsubscribed=1)
    return event


def record_complaint(record: PushRecord, when: datetime) -> bool:
    """Store a spam complaint about a record's message; return False for a repeat."""
    if already_counted(record, (OptOutEvent.Source.COMPLAINT,)):
        return False
    OptOutEvent.objects.create(
        user_id=record.user_id, source=OptOutEvent.Source.COMPLAINT,
        channel_kind=record.channel_kind, notification_type=record.task.notification_type,
        created_at=when, record=record,
    )
    count_record(record, complained=1)
    logger.warning("%s: complaint about record %s from user %s", record.provider,
                   record.pk, record.user_id)
    return True
