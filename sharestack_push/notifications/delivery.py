"""Sends queued records through their providers and stores what happened.

A record is claimed with a conditional update (queued to sending, under a fresh claim
token) before any provider call, so two workers never send the same record.
"""
import hashlib
import json
import logging
import random
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.urls import reverse
from redis.exceptions import RedisError

from analytics.latency import observe_latency
from analytics.rollups import count_send_results
from channels_app.crypto import CredentialsError
from channels_app.models import CONTACT_KINDS_FOR_CHANNEL, Channel, Contact, Device
from channels_app.providers import provider_class
from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult
from channels_app.ratelimit import limiter
from channels_app.redaction import redact_credentials
from channels_app.sms import sms_length
from preferences.sms_opt_out import opt_out_numbers
from sharestack_push.notifications import clock
from sharestack_push.notifications.bulk import update_fields
from sharestack_push.notifications.constants import ChannelKind, Reason, RecordStatus
from sharestack_push.notifications.messages import MessageBuilder
from sharestack_push.notifications.models import PushRecord, PushTask

logger = logging.getLogger(__name__)

RESULT_FIELDS = [
    "status", "reason", "next_attempt_at", "provider_message_id", "error_message",
    "response_data", "sent_at", "channel", "provider", "updated_at",
]
# Written only when a batch changed them, because each extra column costs every row.
OCCASIONAL_RESULT_FIELDS = ["attempts", "segments"]
# Records addressed to a channel itself (a group robot) carry this address kind.
CHANNEL_ADDRESS_KIND = "channel"
RATE_LIMITED = "rate_limited"

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
        channel.config, channel.credentials, settings.PUSH_PROVIDER_TIMEOUT_SECONDS,
        channel_key=channel_key(channel), callback_url=callback_url(channel),
    )
    _providers[channel.pk] = (channel.updated_at, adapter)
    return adapter


def channel_key(channel: Channel) -> str:
    """Name a channel's shared tokens; new credentials or config give a new name."""
    digest = hashlib.sha256(
        channel.encrypted_credentials.encode()
        + json.dumps(channel.config, sort_keys=True).encode()
    ).hexdigest()
    return f"channel-{channel.pk}-{digest[:16]}"


def callback_url(channel: Channel) -> str:
    return f"{settings.PUSH_PUBLIC_BASE_URL}{reverse('provider-callback', args=[channel.pk])}"


def close_providers() -> None:
    """Close every cached adapter, such as at the end of a worker process."""
    while _providers:
        _, (_, adapter) = _providers.popitem()
        adapter.close()


def address_kind(record: PushRecord) -> str:
    """Return the record's address kind, derived for records stored before the field."""
    if record.address_kind:
        return record.address_kind
    if record.channel_kind == ChannelKind.APP:
        return record.provider
    return CONTACT_KINDS_FOR_CHANNEL.get(record.channel_kind, ("",))[0]


class ChannelChooser:
    """Look up candidate_channels for many records, computing each distinct case once."""

    def __init__(self, channels: list[Channel]) -> None:
        self.channels = channels
        self._cache: dict[tuple[str, str, int | None], list[Channel]] = {}

    def candidates(self, record: PushRecord) -> list[Channel]:
        pinned = record.channel_id if record.address_kind == CHANNEL_ADDRESS_KIND else None
        key = (record.channel_kind, address_kind(record), pinned)
        if key not in self._cache:
            self._cache[key] = candidate_channels(self.channels, record)
        return self._cache[key]


def candidate_channels(channels: list[Channel], record: PushRecord) -> list[Channel]:
    """List the enabled channels that can send a record, in the order to try them.

    A record addressed to a channel itself goes through that channel only. Others may
    go through any channel of their kind whose adapter takes their address kind:
    healthy channels first, each group by priority, so the next one takes over when
    one fails.
    """
    if record.address_kind == CHANNEL_ADDRESS_KIND:
        return [channel for channel in channels if channel.pk == record.channel_id]
    kind = address_kind(record)
    matches = []
    for channel in channels:
        if channel.kind != record.channel_kind:
            continue
        adapter_class = provider_class(channel.provider)
        if adapter_class is None or adapter_class.addresses_channel:
            continue
        if adapter_class.address_kinds and kind not in adapter_class.address_kinds:
            continue
        matches.append(channel)
    return sorted(matches, key=lambda channel: not channel.is_healthy)


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
    """Move queued records to sending in one conditional UPDATE and return them.

    The UPDATE returns the rows it changed, so a record another worker claimed first
    is never returned, and no second query reads the claimed rows back.
    """
    if not record_ids:
        return []
    connection = connections[router.db_for_write(PushRecord)]
    quote = connection.ops.quote_name
    meta = PushRecord._meta
    columns = ", ".join(quote(field.column) for field in meta.concrete_fields)
    updated_at = meta.get_field("updated_at").get_db_prep_save(now, connection)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote('status')} = %s, "
        f"{quote('attempts')} = {quote('attempts')} + 1, {quote('updated_at')} = %s "
        f"WHERE {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(record_ids))}) "
        f"AND {quote('status')} = %s RETURNING {columns}"
    )
    params = [RecordStatus.SENDING.value, updated_at, *record_ids, RecordStatus.QUEUED.value]
    records = list(PushRecord.objects.raw(sql, params))
    # One task object per task, shared by its records, instead of one per record.
    tasks = PushTask.objects.in_bulk({record.task_id for record in records})
    for record in records:
        record.task = tasks[record.task_id]
    return records


def send_records(record_ids: list[int], now: datetime | None = None) -> dict[str, int]:
    """Send the queued records among record_ids; return a count per resulting status.

    Records are claimed, sent and stored PUSH_CLAIM_BATCH_SIZE at a time, which bounds
    how many a worker that dies mid-send leaves claimed (and possibly delivered).
    """
    counts: dict[str, int] = defaultdict(int)
    size = settings.PUSH_CLAIM_BATCH_SIZE
    for start in range(0, len(record_ids), size):
        moment = now or clock.now()
        for status, count in send_claimed(claim(record_ids[start : start + size], moment), moment).items():
            counts[status] += count
    return dict(counts)


@dataclass
class Attempt:
    record: PushRecord
    message: OutgoingMessage
    candidates: list[Channel]
    index: int = 0
    # The channels that failed before this one, for the record's response data.
    failovers: list[dict[str, str]] = dataclass_field(default_factory=list)

    @property
    def channel(self) -> Channel:
        return self.candidates[self.index]


def send_claimed(records: list[PushRecord], now: datetime) -> dict[str, int]:
    if not records:
        return {}
    channels = list(Channel.objects.filter(enabled=True).order_by("priority", "id"))
    chooser = ChannelChooser(channels)
    builder = MessageBuilder(records)
    attempts_at_claim = {record.pk: record.attempts for record in records}
    pending: dict[int, list[Attempt]] = defaultdict(list)

    for record in records:
        candidates = chooser.candidates(record)
        if not candidates:
            fail(record, Reason.NO_CHANNEL, "no enabled channel can send this message", now)
            continue
        message, failure = builder.build(record, candidates[0])
        if message is None:
            fail(record, failure, "", now)
            continue
        pending[candidates[0].pk].append(Attempt(record, message, candidates))

    dead_devices: list[tuple[int, datetime | None]] = []
    dead_contacts: list[int] = []
    opted_out_numbers: list[str] = []
    while pending:
        channel_id = next(iter(pending))
        attempts = pending.pop(channel_id)
        channel = attempts[0].channel
        results = call_provider(channel, [attempt.message for attempt in attempts])
        result_by_id = {result.record_id: result for result in results}
        outcomes: dict[Outcome, int] = defaultdict(int)
        configuration_error = ""
        for attempt in attempts:
            record = attempt.record
            result = result_by_id.get(record.pk) or SendResult(
                record.pk, Outcome.RETRYABLE, error_code="no_result",
                error_message="the adapter returned no result for this message")
            outcomes[result.outcome] += 1
            if result.outcome == Outcome.CONFIGURATION:
                configuration_error = f"{result.error_code}: {result.error_message}".strip(": ")
            if fails_over(result) and attempt.index + 1 < len(attempt.candidates):
                attempt.failovers.append({
                    "channel": channel.name, "provider": channel.provider,
                    "outcome": result.outcome.value, "error_code": result.error_code,
                })
                attempt.index += 1
                pending[attempt.channel.pk].append(attempt)
                continue
            apply_result(record, channel, result, now)
            if attempt.failovers:
                record.response_data["failover"] = attempt.failovers
            if record.channel_kind == ChannelKind.SMS and record.status == RecordStatus.SENT:
                record.segments = result.segments or sms_length(attempt.message.body).segments
            if result.outcome == Outcome.INVALID_ADDRESS:
                if record.device_id:
                    dead_devices.append((record.device_id, result.invalid_since))
                if record.contact_id:
                    dead_contacts.append(record.contact_id)
            if result.recipient_opted_out:
                record.reason = Reason.SMS_OPTED_OUT
                opted_out_numbers.append(record.address)
        logger.info(
            "%s: channel %s sent %d of %d records (%s)", channel.provider, channel.pk,
            outcomes[Outcome.SENT], len(attempts),
            ", ".join(f"{outcome.value} {count}" for outcome, count in outcomes.items()),
        )
        record_health(channel, configuration_error, outcomes[Outcome.SENT] > 0)

    # One transaction, so that the roll-ups count a batch exactly when its results are stored.
    with transaction.atomic():
        update_fields(PushRecord, records, RESULT_FIELDS + changed_occasional_fields(records, attempts_at_claim))
        count_send_results(records)
    deactivate(dead_devices, dead_contacts, now)
    if opted_out_numbers:
        opt_out_numbers(opted_out_numbers, now)
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.status] += 1
    return dict(counts)


def changed_occasional_fields(records: list[PushRecord],
                              attempts_at_claim: dict[int, int]) -> list[str]:
    """List the occasional result fields that some record of the batch changed."""
    fields = []
    if any(record.attempts != attempts_at_claim[record.pk] for record in records):
        fields.append("attempts")
    if any(record.segments is not None for record in records):
        fields.append("segments")
    return fields


def fails_over(result: SendResult) -> bool:
    """Decide whether a failure moves a message on to the next channel.

    Retryable and configuration failures do. Our own rate limit does not, because the
    channel works and is only busy.
    """
    if result.error_code == RATE_LIMITED:
        return False
    return result.outcome in (Outcome.RETRYABLE, Outcome.CONFIGURATION)


def record_health(channel: Channel, configuration_error: str, any_sent: bool) -> None:
    """Mark a channel unhealthy on a configuration error, healthy again on a send."""
    if configuration_error:
        logger.error("%s: channel %s configuration error: %s", channel.provider, channel.pk,
                     configuration_error)
        Channel.objects.filter(pk=channel.pk).update(
            is_healthy=False, last_error=configuration_error[:1000]
        )
    elif any_sent and not channel.is_healthy:
        Channel.objects.filter(pk=channel.pk).update(is_healthy=True, last_error="")


def masked(channel: Channel, text: str) -> str:
    """Return `text` with the channel's credential values replaced by `***`."""
    try:
        credentials = channel.credentials
    except CredentialsError:
        # Credentials that cannot be decrypted cannot have reached the provider library.
        return text
    return redact_credentials(text, credentials)


def call_provider(channel: Channel, messages: list[OutgoingMessage]) -> list[SendResult]:
    try:
        adapter = provider_for(channel)
    except Exception as error:  # a broken config must fail the batch, not the worker
        error_text = masked(channel, str(error))
        logger.error("%s: channel %s cannot be used: %s", channel.provider, channel.pk,
                     error_text)
        Channel.objects.filter(pk=channel.pk).update(
            is_healthy=False, last_error=error_text[:1000]
        )
        return [SendResult(m.record_id, Outcome.CONFIGURATION, error_code="adapter_error",
                           error_message=error_text[:500]) for m in messages]
    batch_size = settings.PUSH_SEND_BATCH_SIZE
    results: list[SendResult] = []
    for start in range(0, len(messages), batch_size):
        results.extend(send_within_rate(adapter, channel, messages[start : start + batch_size]))
    return results


def guarded_send(adapter: Provider, channel: Channel,
                 messages: list[OutgoingMessage]) -> list[SendResult]:
    """Call the adapter, turning an exception it raises into results, not a crash.

    Adapters classify provider errors themselves, so an exception means a message they
    cannot handle, such as an option of the wrong type. The batch is then sent again
    one message at a time, so only the message that raises fails, as permanent.
    NOTE: a message the provider accepted before the exception is sent a second time.

    Every error text that comes back, and every one logged here, has the channel's
    credential values masked, because provider libraries put account ids and keys
    into their exception texts.
    """
    try:
        started = time.monotonic()
        results = adapter.send(messages)
        observe_latency(channel.provider, time.monotonic() - started)
    except Exception as error:  # an adapter bug must not leave records stuck in sending
        if len(messages) > 1:
            logger.warning("%s: channel %s raised %s on a batch of %d; sending one by one",
                           channel.provider, channel.pk,
                           masked(channel, repr(error)), len(messages))
            return [result for message in messages
                    for result in guarded_send(adapter, channel, [message])]
        trace = masked(channel, "".join(traceback.format_exception(error)))
        logger.error("%s: channel %s failed on record %s\n%s", channel.provider, channel.pk,
                     messages[0].record_id, trace)
        error_text = masked(channel, f"{type(error).__name__}: {error}")
        return [SendResult(messages[0].record_id, Outcome.PERMANENT, error_code="adapter_error",
                           error_message=error_text[:500])]
    for result in results:
        if result.error_message:
            result.error_message = masked(channel, result.error_message)
    return results


def send_within_rate(adapter: Provider, channel: Channel,
                     messages: list[OutgoingMessage]) -> list[SendResult]:
    """Send as many messages as the channel's rate allows, waiting briefly for more.

    Messages still without a permit after PUSH_RATE_LIMIT_MAX_WAIT_SECONDS come back
    as retryable, with the wait the limiter expects, and are sent later.
    """
    rate = channel.rate_limit_per_second
    if not rate:
        return guarded_send(adapter, channel, messages)
    results: list[SendResult] = []
    remaining = messages
    deadline = time.monotonic() + settings.PUSH_RATE_LIMIT_MAX_WAIT_SECONDS
    wait = 0.0
    while remaining:
        try:
            grant = limiter().acquire(f"channel-{channel.pk}", rate, len(remaining))
        except RedisError as error:
            logger.error("%s: channel %s rate limiter unavailable: %s", channel.provider,
                         channel.pk, error)
            wait = 1.0
            break
        if grant.granted:
            results.extend(guarded_send(adapter, channel, remaining[: grant.granted]))
            remaining = remaining[grant.granted :]
            continue
        wait = grant.wait
        if time.monotonic() + wait > deadline:
            break
        time.sleep(wait)
    for message in remaining:
        results.append(SendResult(
            message.record_id, Outcome.RETRYABLE, error_code=RATE_LIMITED,
            error_message=f"channel rate limit of {rate} per second", retry_after=max(wait, 1.0)))
    return results


def fail(record: PushRecord, reason: str, error: str, now: datetime) -> None:
    record.status, record.reason, record.error_message = RecordStatus.FAILED, reason, error
    record.next_attempt_at = None
    record.updated_at = now


def apply_result(record: PushRecord, channel: Channel, result: SendResult, now: datetime) -> None:
    record.channel = channel
    record.provider = channel.provider
    record.updated_at = now
    record.response_data = dict(result.response_data)
    if result.error_code:
        record.response_data["error_code"] = result.error_code
    if result.outcome == Outcome.SENT:
        record.status, record.reason, record.error_message = RecordStatus.SENT, "", ""
        record.provider_message_id = result.provider_message_id
        record.sent_at, record.next_attempt_at = now, None
        logger.debug("%s: sent record %s of task %s", channel.provider, record.pk, record.task_id)
        return

    detail = f"{result.error_code}: {result.error_message}".strip(": ")
    logger.warning("%s: record %s of task %s failed (%s): %s", channel.provider,
                   record.pk, record.task_id, result.outcome.value, detail)
    if result.outcome == Outcome.INVALID_ADDRESS:
        fail(record, Reason.INVALID_ADDRESS, detail, now)
    elif result.outcome == Outcome.PERMANENT:
        fail(record, Reason.PERMANENT_ERROR, detail, now)
    elif result.outcome == Outcome.DEFERRED:
        record.attempts = max(record.attempts - 1, 0)
        record.status, record.reason, record.error_message = RecordStatus.DEFERRED, result.error_code, detail
        record.next_attempt_at = now + timedelta(
            seconds=result.retry_after or settings.PUSH_PROVIDER_DEFER_SECONDS)
    elif result.error_code == RATE_LIMITED:
        # Waiting for our own rate limit is not an attempt at the provider.
        record.attempts = max(record.attempts - 1, 0)
        record.status, record.reason, record.error_message = RecordStatus.RETRYING, Reason.RATE_LIMITED, detail
        record.next_attempt_at = now + timedelta(seconds=result.retry_after or 1.0)
    elif record.attempts >= settings.PUSH_MAX_ATTEMPTS:
        fail(record, Reason.MAX_ATTEMPTS, detail, now)
    else:
        record.status = RecordStatus.RETRYING
        record.reason = Reason.CONFIGURATION_ERROR if result.outcome == Outcome.CONFIGURATION else result.error_code
        record.error_message = detail
        record.next_attempt_at = now + timedelta(seconds=retry_delay(record.attempts, result.retry_after))


def deactivate(devices: list[tuple[int, datetime | None]], contact_ids: list[int],
               now: datetime) -> None:
    """Deactivate dead addresses; a device registered after it was reported dead stays."""
    for device_id, invalid_since in devices:
        dead = Device.objects.filter(id=device_id)
        if invalid_since is not None:
            dead = dead.filter(registered_at__lte=invalid_since)
        dead.update(is_active=False, deactivated_at=now, deactivation_reason=Reason.INVALID_ADDRESS)
    if contact_ids:
        Contact.objects.filter(id__in=contact_ids).update(
            is_active=False, deactivated_at=now, deactivation_reason=Reason.INVALID_ADDRESS)
