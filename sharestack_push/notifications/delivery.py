"""Sends queued records through their providers and stores what happened.

A record is claimed with a conditional update (queued to sending, under a fresh claim
token) before any provider call, so two workers never send the same record.
"""
import logging
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F

from channels_app.models import Channel, Contact, Device
from channels_app.providers import provider_class
from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult
from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import ChannelKind, Reason, RecordStatus
from sharestack_push.notifications.content import RenderCache
from sharestack_push.notifications.models import PushRecord

logger = logging.getLogger(__name__)

RESULT_FIELDS = [
    "status", "reason", "next_attempt_at", "provider_message_id", "error_message",
    "response_data", "sent_at", "channel", "provider", "updated_at",
]

_providers: dict[int, tuple[datetime, Provider]] = {}


def provider_for(channel: Channel) -> Provider:
    """Return this process's adapter for a channel, rebuilt when the channel changes."""
    cached = _providers.get(channel.pk)
    if cached is not None and cached[0] == channel.updated_at:
        return cached[1]
    if cached is not None:
        cached[1].close()
    adapter_class = provider_class(channel.provider)
    if adapter_class is None:
        raise LookupError(f"no adapter for provider {channel.provider!r}")
    adapter = adapter_class(
        channel.config, channel.credentials, settings.PUSH_PROVIDER_TIMEOUT_SECONDS
    )
    _providers[channel.pk] = (channel.updated_at, adapter)
    return adapter


def close_providers() -> None:
    """Close every cached adapter, such as at the end of a worker process."""
    while _providers:
        _, (_, adapter) = _providers.popitem()
        adapter.close()


def choose_channel(channels: list[Channel], kind: str, provider: str) -> Channel | None:
    for channel in channels:
        if channel.kind != kind:
            continue
        if kind == ChannelKind.APP and provider and channel.provider not in (provider, "console"):
            continue
        return channel
    return None


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: exponential backoff with full jitter.

    A provider's Retry-After is a floor: the next attempt never comes sooner.
    """
    ceiling = min(
        settings.PUSH_RETRY_MAX_SECONDS,
        settings.PUSH_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
    )
    backoff = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        return max(retry_after, min(backoff, retry_after * 1.1 + 1))
    return backoff


def claim(record_ids: list[int], now: datetime) -> list[PushRecord]:
    token = uuid.uuid4()
    PushRecord.objects.filter(id__in=record_ids, status=RecordStatus.QUEUED).update(
        status=RecordStatus.SENDING, claim_token=token, attempts=F("attempts") + 1, updated_at=now
    )
    # prefetch_related loads each task once and shares it among its records, where
    # select_related would build a PushTask, JSON fields decoded, for every record.
    claimed = PushRecord.objects.filter(claim_token=token, status=RecordStatus.SENDING)
    return list(claimed.prefetch_related("task"))


def send_records(record_ids: list[int], now: datetime | None = None) -> dict[str, int]:
    """Send the queued records among record_ids; return a count per resulting status."""
    now = now or clock.now()
    records = claim(record_ids, now)
    if not records:
        return {}
    channels = list(Channel.objects.filter(enabled=True).order_by("priority", "id"))
    renders = RenderCache()
    batches: dict[int, list[tuple[PushRecord, OutgoingMessage]]] = defaultdict(list)
    by_channel: dict[int, Channel] = {}

    for record in records:
        channel = choose_channel(channels, record.channel_kind, record.provider)
        if channel is None:
            fail(record, Reason.NO_CHANNEL, "no enabled channel can send this message", now)
            continue
        rendered = renders.get(record.task, record.channel_kind, record.locale)
        if rendered.failure:
            fail(record, rendered.failure, "", now)
            continue
        by_channel[channel.pk] = channel
        message = OutgoingMessage(record.pk, record.address, rendered.message.title,
                                  rendered.message.body, rendered.message.data)
        batches[channel.pk].append((record, message))

    dead_devices: list[int] = []
    dead_contacts: list[int] = []
    for channel_id, pairs in batches.items():
        channel = by_channel[channel_id]
        results = call_provider(channel, [message for _, message in pairs])
        result_by_id = {result.record_id: result for result in results}
        for record, message in pairs:
            result = result_by_id.get(record.pk) or SendResult(
                record.pk, Outcome.RETRYABLE, error_code="no_result",
                error_message="the adapter returned no result for this message")
            apply_result(record, channel, result, now)
            if result.outcome == Outcome.INVALID_ADDRESS:
                if record.device_id:
                    dead_devices.append(record.device_id)
                if record.contact_id:
                    dead_contacts.append(record.contact_id)

    store_results(records)
    deactivate(dead_devices, dead_contacts, now)
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.status] += 1
    return dict(counts)


def store_results(records: list[PushRecord]) -> None:
    """Write RESULT_FIELDS of each record with one single-row UPDATE per record.

    bulk_update() builds one CASE WHEN per field and record, and Django takes seconds
    to compile that for 500 records. executemany() sends the same values, converted by
    each field as bulk_update() converts them, and psycopg pipelines the statements.
    """
    connection = connections[router.db_for_write(PushRecord)]
    quote = connection.ops.quote_name
    fields = [PushRecord._meta.get_field(name) for name in RESULT_FIELDS]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = (
        f"UPDATE {quote(PushRecord._meta.db_table)} SET {assignments} "
        f"WHERE {quote(PushRecord._meta.pk.column)} = %s"
    )
    rows = []
    for record in records:
        values = [getattr(record, field.attname) for field in fields]
        prepared = [f.get_db_prep_save(v, connection) for f, v in zip(fields, values)]
        rows.append([*prepared, record.pk])
    with transaction.atomic(using=connection.alias, savepoint=False):
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def call_provider(channel: Channel, messages: list[OutgoingMessage]) -> list[SendResult]:
    try:
        adapter = provider_for(channel)
    except Exception as error:  # a broken config must fail the batch, not the worker
        logger.error("%s: channel %s cannot be used: %s", channel.provider, channel.pk, error)
        Channel.objects.filter(pk=channel.pk).update(is_healthy=False, last_error=str(error)[:1000])
        return [SendResult(m.record_id, Outcome.CONFIGURATION, error_code="adapter_error",
                           error_message=str(error)[:500]) for m in messages]
    batch_size = settings.PUSH_SEND_BATCH_SIZE
    results: list[SendResult] = []
    for start in range(0, len(messages), batch_size):
        results.extend(adapter.send(messages[start : start + batch_size]))
    return results


def fail(record: PushRecord, reason: str, error: str, now: datetime) -> None:
    record.status, record.reason, record.error_message = RecordStatus.FAILED, reason, error
    record.next_attempt_at = None
    record.updated_at = now


def apply_result(record: PushRecord, channel: Channel, result: SendResult, now: datetime) -> None:
    record.channel = channel
    record.provider = channel.provider
    record.updated_at = now
    record.response_data = {**result.response_data, "error_code": result.error_code} if result.error_code else result.response_data
    if result.outcome == Outcome.SENT:
        record.status, record.reason, record.error_message = RecordStatus.SENT, "", ""
        record.provider_message_id = result.provider_message_id
        record.sent_at, record.next_attempt_at = now, None
        logger.info("%s: sent record %s of task %s", channel.provider, record.pk, record.task_id)
        return

    detail = f"{result.error_code}: {result.error_message}".strip(": ")
    logger.warning("%s: record %s of task %s failed (%s): %s", channel.provider,
                   record.pk, record.task_id, result.outcome.value, detail)
    if result.outcome == Outcome.INVALID_ADDRESS:
        fail(record, Reason.INVALID_ADDRESS, detail, now)
    elif result.outcome == Outcome.PERMANENT:
        fail(record, Reason.PERMANENT_ERROR, detail, now)
    elif record.attempts >= settings.PUSH_MAX_ATTEMPTS:
        fail(record, Reason.MAX_ATTEMPTS, detail, now)
    else:
        if result.outcome == Outcome.CONFIGURATION:
            logger.error("%s: channel %s configuration error: %s", channel.provider, channel.pk, detail)
        record.status = RecordStatus.RETRYING
        record.reason = Reason.CONFIGURATION_ERROR if result.outcome == Outcome.CONFIGURATION else result.error_code
        record.error_message = detail
        record.next_attempt_at = now + timedelta(seconds=retry_delay(record.attempts, result.retry_after))


def deactivate(device_ids: list[int], contact_ids: list[int], now: datetime) -> None:
    if device_ids:
        Device.objects.filter(id__in=device_ids).update(
            is_active=False, deactivated_at=now, deactivation_reason=Reason.INVALID_ADDRESS)
    if contact_ids:
        Contact.objects.filter(id__in=contact_ids).update(
            is_active=False, deactivated_at=now, deactivation_reason=Reason.INVALID_ADDRESS)
