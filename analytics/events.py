"""Engagement event rows: one per open or click, from any source."""
from dataclasses import dataclass
from datetime import datetime

from analytics.models import EngagementEvent
from sharestack_push.notifications.models import PushRecord


@dataclass(frozen=True)
class Hit:
    """One open or click as it reached us."""

    kind: str
    source: str
    occurred_at: datetime
    client_ip: str = ""
    user_agent: str = ""
    machine_reason: str = ""
    url: str = ""


def store_event(record: PushRecord, hit: Hit) -> EngagementEvent:
    return EngagementEvent.objects.create(
        record=record,
        kind=hit.kind,
        source=hit.source,
        occurred_at=hit.occurred_at,
        client_ip=hit.client_ip or None,
        user_agent=hit.user_agent[:512],
        machine=bool(hit.machine_reason),
        machine_reason=hit.machine_reason,
        url=hit.url,
    )
