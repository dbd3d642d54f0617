"""Evaluation of alert rules and the one message sent when a rule fires or resolves.

A rule moves between OK and firing under a row lock, and each move writes an
AlertEvent. Its message is claimed by setting notified_at before it is sent, so
overlapping evaluations send it once. A failed send is released, and the next
evaluation tries it again.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet

from analytics.metrics import BACKLOG_STATUSES
from analytics.models import AlertEvent, AlertRule, OptOutEvent, alert_address_problem
from channels_app.models import Channel
from channels_app.providers.base import Outcome, OutgoingMessage
from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import ChannelKind, RecordStatus
from sharestack_push.notifications.delivery import guarded_send, masked, provider_for
from sharestack_push.notifications.models import PushRecord

logger = logging.getLogger(__name__)

FINISHED_STATUSES = (
    RecordStatus.SENT,
    RecordStatus.DELIVERED,
    RecordStatus.OPENED,
    RecordStatus.CLICKED,
    RecordStatus.FAILED,
)


@dataclass
class Measure:
    value: float
    firing: bool
    text: str


def scope_name(rule: AlertRule) -> str:
    if rule.channel_id:
        return f"channel {rule.channel.name}"
    return f"{rule.channel_kind} channels" if rule.channel_kind else "all channels"


def records_in_scope(rule: AlertRule) -> QuerySet[PushRecord]:
    records = PushRecord.objects.all()
    if rule.channel_kind:
        records = records.filter(channel_kind=rule.channel_kind)
    if rule.channel_id:
        records = records.filter(channel_id=rule.channel_id)
    return records


def measure_failure_rate(rule: AlertRule, now: datetime) -> Measure:
    start = now - timedelta(minutes=rule.window_minutes)
    finished = records_in_scope(rule).filter(
        status__in=FINISHED_STATUSES, updated_at__gt=start, updated_at__lte=now
    )
    total = finished.count()
    failed = finished.filter(status=RecordStatus.FAILED).count()
    rate = failed / total if total else 0.0
    text = (
        f"Failure rate of {scope_name(rule)} over {rule.window_minutes} min is "
        f"{rate:.1%} ({failed} of {total}), threshold {rule.threshold:.1%}."
    )
    return Measure(rate, total >= rule.min_count and rate > rule.threshold, text)


def measure_backlog(rule: AlertRule, now: datetime) -> Measure:
    size = records_in_scope(rule).filter(status__in=BACKLOG_STATUSES).count()
    text = (
        f"Backlog of {scope_name(rule)} is {size} queued, deferred or retrying "
        f"records, threshold {rule.threshold:g}."
    )
    return Measure(size, size > rule.threshold, text)


def measure_unhealthy(rule: AlertRule, now: datetime) -> Measure:
    channels = Channel.objects.filter(enabled=True, is_healthy=False)
    if rule.channel_kind:
        channels = channels.filter(kind=rule.channel_kind)
    if rule.channel_id:
        channels = channels.filter(pk=rule.channel_id)
    names = sorted(channels.values_list("name", flat=True))
    text = (
        f"Unhealthy: {', '.join(names)}." if names
        else f"Every channel in {scope_name(rule)} is healthy."
    )
    return Measure(len(names), bool(names), text)


def measure_opt_outs(rule: AlertRule, now: datetime) -> Measure:
    window = timedelta(minutes=rule.window_minutes)
    events = OptOutEvent.objects.all()
    if rule.channel_kind:
        events = events.filter(channel_kind=rule.channel_kind)
    current = events.filter(created_at__gt=now - window, created_at__lte=now).count()
    previous = events.filter(
        created_at__gt=now - 2 * window, created_at__lte=now - window
    ).count()
    # An empty previous window counts as one, so the ratio stays finite.
    ratio = current / max(previous, 1)
    text = (
        f"Unsubscribes and complaints in {scope_name(rule)}: {current} in the last "
        f"{rule.window_minutes} min against {previous} in the window before; "
        f"fires at {rule.threshold:g} times and at least {rule.min_count}."
    )
    return Measure(current, current >= rule.min_count and ratio >= rule.threshold, text)


MEASURES = {
    AlertRule.Kind.FAILURE_RATE: measure_failure_rate,
    AlertRule.Kind.BACKLOG: measure_backlog,
    AlertRule.Kind.UNHEALTHY: measure_unhealthy,
    AlertRule.Kind.OPT_OUTS_RISING: measure_opt_outs,
}


def evaluate_rule(rule_id: int, now: datetime) -> AlertEvent | None:
    """Measure one rule, and return the AlertEvent that records a change of state, or None."""
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("channel")
            .filter(pk=rule_id, enabled=True)
            .first()
        )
        if rule is None:
            return None
        measure = MEASURES[AlertRule.Kind(rule.kind)](rule, now)
        rule.last_value, rule.last_evaluated_at = measure.value, now
        event = None
        if measure.firing != rule.firing:
            rule.firing = measure.firing
            state = AlertEvent.State.FIRING if measure.firing else AlertEvent.State.RESOLVED
            event = AlertEvent.objects.create(
                rule=rule, state=state, value=measure.value,
                message=measure.text, created_at=now,
            )
            logger.warning("alert %s (rule %s) %s: %s", rule.name, rule.pk, state, measure.text)
        rule.save(update_fields=["firing", "last_value", "last_evaluated_at"])
        return event


def notify(event: AlertEvent, now: datetime) -> bool:
    """Send the event's message to its rule's alert channel, and return True if it was sent.

    The event is claimed first, so it is never sent twice. A send that fails is
    released with the error stored, for the next evaluation to try again.
    """
    rule = event.rule
    channel = rule.alert_channel
    problem = None
    if channel.kind == ChannelKind.EMAIL:
        problem = alert_address_problem(channel, rule.alert_address)
    if problem:
        # A mail without a valid recipient would be marked notified, yet no one received it.
        logger.error("alert %s: event %s not sent through channel %s: %s",
                     rule.name, event.pk, channel.pk, problem)
        AlertEvent.objects.filter(pk=event.pk).update(notify_error=problem)
        return False
    claimed = AlertEvent.objects.filter(pk=event.pk, notified_at__isnull=True).update(
        notified_at=now
    )
    if not claimed:
        return False
    label = "FIRING" if event.state == AlertEvent.State.FIRING else "RESOLVED"
    message = OutgoingMessage(
        record_id=event.pk, address=rule.alert_address,
        title=f"[{label}] {rule.name}", body=event.message,
    )
    try:
        [result] = guarded_send(provider_for(channel), channel, [message])
    except Exception as error:  # a broken channel must not stop the other rules
        result = None
        error_text = masked(channel, f"{type(error).__name__}: {error}")
    else:
        error_text = f"{result.outcome.value}: {result.error_code} {result.error_message}"
    if result is not None and result.outcome == Outcome.SENT:
        AlertEvent.objects.filter(pk=event.pk).update(notify_error="")
        return True
    logger.error("alert %s: event %s not sent through channel %s: %s",
                 rule.name, event.pk, channel.pk, error_text)
    AlertEvent.objects.filter(pk=event.pk).update(
        notified_at=None, notify_error=error_text[:1000]
    )
    return False


def close_disabled_rule(rule_id: int, now: datetime) -> AlertEvent | None:
    """Resolve a rule that was disabled while firing, and return its RESOLVED event.

    The event is sent like any other, so the recipients of the firing message learn
    that the rule stopped. Its text states that the condition was not measured.
    """
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(skip_locked=True)
            .filter(pk=rule_id, enabled=False, firing=True)
            .first()
        )
        if rule is None:
            return None
        rule.firing = False
        rule.save(update_fields=["firing"])
        event = AlertEvent.objects.create(
            rule=rule, state=AlertEvent.State.RESOLVED, value=rule.last_value or 0.0,
            message="The rule was disabled while firing, so its condition is no longer "
            "checked. Enable it again to resume alerts.",
            created_at=now,
        )
        logger.warning("alert %s (rule %s) resolved: disabled while firing", rule.name, rule.pk)
        return event


def evaluate_alerts() -> int:
    """Evaluate every enabled rule, resolve rules disabled while firing, send pending
    messages, and return how many were sent.

    A rule that raises is logged with its id and skipped, so the other rules are still
    evaluated and their messages sent.
    """
    now = clock.now()
    for rule_id in AlertRule.objects.filter(enabled=True).values_list("pk", flat=True):
        try:
            evaluate_rule(rule_id, now)
        except Exception:
            logger.exception("alert rule %s: evaluation failed, skipped until the next run",
                             rule_id)
    disabled = AlertRule.objects.filter(enabled=False, firing=True)
    for rule_id in disabled.values_list("pk", flat=True):
        close_disabled_rule(rule_id, now)
    pending = (
        AlertEvent.objects.filter(notified_at__isnull=True)
        .select_related("rule__alert_channel")
        .order_by("created_at", "pk")
    )
    return sum(notify(event, now) for event in pending)
