"""Turns one chunk of a task's audience into records, a few queries per chunk.

For every (user, channel kind) the policy decides send, defer or suppress. Records are
written in bulk and are unique per (task, user, channel kind, address), so running a
chunk twice creates nothing new and sends nothing twice.
"""
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models.base import ModelState

from analytics.activity import idle_days_before
from analytics.rollups import count_send_results
from channels_app.models import CONTACT_KINDS_FOR_CHANNEL, Channel, Contact, Device
from preferences.frequency import CountRequest, frequency_counter
from preferences.models import UserProfile, UserPushPreference
from preferences.policy import (
    SEND_NOW,
    Action,
    ChannelSettings,
    Counters,
    Decision,
    PreferenceRow,
    ProfileSettings,
    TypeRules,
    check_limits,
    limits_for,
    local_day_start,
    next_local_day_start,
    over_limit,
    resolve_settings,
    screen,
)
from preferences.sms_opt_out import marketing_sms_opt_outs
from sharestack_push.notifications import clock
from sharestack_push.notifications.bulk import insert_ignoring_conflicts, insert_new
from sharestack_push.notifications.constants import (
    DELIVERED_RECORD_STATUSES,
    ChannelKind,
    Reason,
    RecordStatus,
)
from sharestack_push.notifications.content import RenderCache
from sharestack_push.notifications.delivery import CHANNEL_ADDRESS_KIND, ChannelChooser
from sharestack_push.notifications.models import RECORD_UNIQUE_FIELDS, PushRecord, PushTask
from sharestack_push.notifications.types import rules_for
from sharestack_push.notifications.strategy import first_kinds, plan_first_step
from sharestack_push.notifications.variants import assign_variant

logger = logging.getLogger(__name__)


def load_profiles(user_ids: list[str]) -> dict[str, tuple[ProfileSettings, str]]:
    """Return each known user's settings and locale."""
    profiles = {}
    # Plain rows: building a UserProfile instance per user costs more than the query.
    rows = UserProfile.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "timezone", "all_enabled", "quiet_hours_start", "quiet_hours_end",
        "daily_limit", "locale",
    )
    for user_id, zone, all_enabled, quiet_start, quiet_end, daily_limit, locale in rows:
        profiles[user_id] = (
            ProfileSettings(
                timezone=zone,
                all_enabled=all_enabled,
                quiet_hours_start=quiet_start,
                quiet_hours_end=quiet_end,
                daily_limit=daily_limit,
            ),
            locale,
        )
    return profiles


def default_profile() -> tuple[ProfileSettings, str]:
    return (
        ProfileSettings(timezone=django_settings.PUSH_DEFAULT_TIMEZONE),
        django_settings.PUSH_DEFAULT_LOCALE,
    )


def load_preference_rows(user_ids: list[str]) -> dict[str, list[PreferenceRow]]:
    rows: dict[str, list[PreferenceRow]] = defaultdict(list)
    for row in UserPushPreference.objects.filter(user_id__in=user_ids):
        rows[row.user_id].append(
            PreferenceRow(
                notification_type=row.notification_type,
                channel=row.channel,
                is_enabled=row.is_enabled,
                quiet_hours_start=row.quiet_hours_start,
                quiet_hours_end=row.quiet_hours_end,
                frequency_limit=row.frequency_limit,
            )
        )
    return rows


def load_addresses(user_ids: list[str], kinds: list[str]) -> dict[tuple[str, str], list[dict]]:
    """Return the active addresses of each (user, channel kind)."""
    addresses: dict[tuple[str, str], list[dict]] = defaultdict(list)
    if ChannelKind.APP in kinds:
        devices = Device.objects.filter(user_id__in=user_ids, is_active=True).values(
            "id", "user_id", "provider", "token"
        )
        for device in devices:
            addresses[(device["user_id"], ChannelKind.APP)].append(
                {"address": device["token"], "provider": device["provider"],
                 "address_kind": device["provider"], "device_id": device["id"]}
            )
    contact_kinds = {
        contact_kind: kind
        for kind in kinds
        for contact_kind in CONTACT_KINDS_FOR_CHANNEL.get(kind, ())
    }
    if contact_kinds:
        contacts = Contact.objects.filter(
            user_id__in=user_ids, kind__in=list(contact_kinds), is_active=True
        ).values("id", "user_id", "kind", "address")
        for contact in contacts:
            channel_kind = contact_kinds[contact["kind"]]
            addresses[(contact["user_id"], channel_kind)].append(
                {"address": contact["address"], "provider": "",
                 "address_kind": contact["kind"], "contact_id": contact["id"]}
            )
    return addresses


@dataclass
class History:
    """One user's sends as the database records them, for counting against limits."""

    tasks_today: set[str] = field(default_factory=set)
    # Task ids per (channel kind, notification type) today.
    channel_tasks: dict[tuple[str, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    # The last send per notification type, within HISTORY_WINDOW.
    last_sent: dict[str, datetime] = field(default_factory=dict)


# How far back the database is read for today's counts and the last send of a type.
# NOTE: a minimum interval longer than this is enforced only through Redis's record.
HISTORY_WINDOW = timedelta(hours=50)


def load_history(
    task: PushTask, user_ids: list[str], profiles: dict, rows: dict, rules: TypeRules,
    now: datetime,
) -> dict[str, History]:
    """Load today's sends of the users that have any frequency limit for this task.

    NOTE: the history covers records already sending or sent, so without Redis two
    tasks fanned out for the same user at the same moment can both pass a limit of one.
    """
    limited = [
        user_id
        for user_id in user_ids
        if rules.min_interval_seconds
        or (user_id in profiles and profiles[user_id][0].daily_limit is not None)
        or any(row.frequency_limit is not None for row in rows.get(user_id, ()))
    ]
    if not limited:
        return {}
    sends = PushRecord.objects.filter(
        user_id__in=limited,
        status__in=DELIVERED_RECORD_STATUSES,
        sent_at__gte=now - HISTORY_WINDOW,
    ).exclude(task_id=task.pk).values_list(
        "user_id", "task_id", "channel_kind", "task__notification_type", "sent_at"
    )
    histories = {user_id: History() for user_id in limited}
    day_starts = {
        user_id: local_day_start(now, profiles.get(user_id, default_profile())[0].timezone)
        for user_id in limited
    }
    for user_id, task_id, kind, notification_type, sent_at in sends:
        history = histories[user_id]
        last = history.last_sent.get(notification_type)
        if last is None or sent_at > last:
            history.last_sent[notification_type] = sent_at
        if sent_at < day_starts[user_id]:
            continue
        history.tasks_today.add(str(task_id))
        history.channel_tasks[(kind, notification_type)].add(str(task_id))
    return histories


class PolicyInputs:
    """Profiles, preference rows, type rules and today's sends of one task's users."""

    def __init__(self, task: PushTask, user_ids: list[str], now: datetime,
                 admitted: dict[str, History] | None = None) -> None:
        self.task = task
        self.now = now
        # Messages admitted in this pass but not yet sent, per user. Without Redis the
        # database cannot see them, so they are added to its counts. A scheduler pass
        # shares one dict across its tasks.
        self.admitted = admitted if admitted is not None else defaultdict(History)
        self.rules = rules_for(task.notification_type)
        self.user_ids = user_ids
        self.profiles = load_profiles(user_ids)
        self.rows = load_preference_rows(user_ids)
        self.histories = load_history(task, user_ids, self.profiles, self.rows, self.rules, now)
        self.fallback = default_profile()
        self.counter = frequency_counter()
        self._sms_opted_out: set[str] | None = None

    def sms_opted_out(self) -> set[str]:
        """Return the users who replied STOP, when the task's type is marketing."""
        if self._sms_opted_out is None:
            self._sms_opted_out = marketing_sms_opt_outs(
                self.task.notification_type, self.user_ids
            )
        return self._sms_opted_out

    def locale(self, user_id: str) -> str:
        return self.profiles.get(user_id, self.fallback)[1]

    def settings(self, user_id: str, kind: str) -> ChannelSettings:
        profile = self.profiles.get(user_id, self.fallback)[0]
        return resolve_settings(
            profile, self.rows.get(user_id, []), self.task.notification_type, kind
        )

    def zone(self, user_id: str) -> str:
        return self.profiles.get(user_id, self.fallback)[0].timezone

    def screen(self, user_id: str, kind: str) -> Decision:
        """Apply opt-outs and quiet hours to one message. SEND means limits are next."""
        if kind == ChannelKind.SMS and user_id in self.sms_opted_out():
            return Decision(Action.SUPPRESS, Reason.SMS_OPTED_OUT)
        return screen(
            self.settings(user_id, kind), self.task.priority, self.zone(user_id), self.now,
            self.rules,
        )

    def admit(self, user_id: str, kind: str) -> Decision:
        """Check one message against the frequency limits, counting it when it passes.

        With Redis the check and the count are one atomic step across all workers;
        without it the limits are checked against the database's history.
        """
        task, rules = self.task, self.rules
        limits = limits_for(self.settings(user_id, kind), task.priority, rules)
        if not limits.counted:
            return SEND_NOW
        history = self.histories.get(user_id, History())
        if self.counter is None:
            admitted = self.admitted[user_id]
            key = (kind, task.notification_type)
            sent_before = [
                moment
                for moment in (history.last_sent.get(task.notification_type),
                               admitted.last_sent.get(task.notification_type))
                if moment is not None
            ]
            counters = Counters(
                notifications_today=len(history.tasks_today | admitted.tasks_today),
                channel_messages_today=len(
                    set(history.channel_tasks.get(key, ())) | set(admitted.channel_tasks.get(key, ()))
                ),
                last_sent_at=max(sent_before, default=None),
            )
            hit = check_limits(limits, counters, self.now)
            if hit is None:
                member = str(task.pk)
                admitted.tasks_today.add(member)
                admitted.channel_tasks[key].add(member)
                admitted.last_sent[task.notification_type] = self.now
        else:
            zone_name = self.zone(user_id)
            hit = self.counter.take(CountRequest(
                user_id=user_id,
                member=str(task.pk),
                notification_type=task.notification_type,
                channel=kind,
                limits=limits,
                now=self.now,
                day_start=local_day_start(self.now, zone_name),
                day_end=next_local_day_start(self.now, zone_name),
                seen_today=history.tasks_today,
                seen_on_channel=history.channel_tasks.get((kind, task.notification_type), ()),
                last_sent_at=history.last_sent.get(task.notification_type),
            ))
        if hit is None:
            return SEND_NOW
        return over_limit(hit, rules, self.zone(user_id), self.now)

    def decide(self, user_id: str, kind: str) -> Decision:
        """Ask the policy engine about one message of the task to one user on a kind."""
        screened = self.screen(user_id, kind)
        if screened.action != Action.SEND:
            return screened
        return self.admit(user_id, kind)


class RecordPrototype:
    """Makes unsaved records of one task by copying one prepared instance.

    Django's Model.__init__ sets each of the record's fields one by one, which took a
    fifth of a chunk job's time. Copying the prepared attribute dict gives the same
    instance for much less.
    """

    def __init__(self, task: PushTask) -> None:
        self.record = PushRecord(task=task)

    def copy(self, **values) -> PushRecord:
        record = PushRecord.__new__(PushRecord)
        record.__dict__.update(self.record.__dict__)
        record._state = ModelState()
        record._state.fields_cache = dict(self.record._state.fields_cache)
        # A fresh object for the one mutable default, so no two records share it.
        record.response_data = {}
        record.__dict__.update(values)
        return record


def build_records(
    task: PushTask, user_ids: list[str], now: datetime, kinds: list[str] | None = None
) -> list[PushRecord]:
    """Build the chunk's records of the given channel kinds, by default the first ones.

    A message is counted against the frequency limits only when it would otherwise
    be sent now: one suppressed by a preference, without an address or channel, or
    with a failed rendering takes nothing from the user's limits. Each record stores
    its user's idle days at `now`, the fan-out time, even when it is deferred and
    sent later.
    """
    kinds = first_kinds(task) if kinds is None else kinds
    policy = PolicyInputs(task, user_ids, now)
    idle_days = idle_days_before(user_ids, now)
    addresses = load_addresses(user_ids, kinds)
    chooser = ChannelChooser(list(Channel.objects.filter(enabled=True).order_by("priority", "id")))
    renders = RenderCache(user_ids)

    prototype = RecordPrototype(task)
    records = []
    for user_id in user_ids:
        locale = policy.locale(user_id)
        for kind in kinds:
            screened = policy.screen(user_id, kind)
            targets = addresses.get((user_id, kind)) or [{"address": "", "provider": ""}]
            kind_records = [
                prototype.copy(
                    user_id=user_id,
                    channel_kind=kind,
                    address=target["address"],
                    provider=target["provider"],
                    address_kind=target.get("address_kind", ""),
                    device_id=target.get("device_id"),
                    contact_id=target.get("contact_id"),
                    locale=locale,
                    variant=assign_variant(task, user_id),
                    idle_days=idle_days[user_id],
                )
                for target in targets
            ]
            records.extend(kind_records)
            if screened.action == Action.SUPPRESS:
                for record in kind_records:
                    record.status, record.reason = RecordStatus.SUPPRESSED, screened.reason
                continue
            sendable = [
                record for record in kind_records if is_sendable(record, chooser, renders, task)
            ]
            if not sendable:
                continue
            decision = screened
            if screened.action == Action.SEND:
                decision = policy.admit(user_id, kind)
            for record in sendable:
                apply_decision(record, decision)
    return records


def is_sendable(record: PushRecord, chooser: ChannelChooser, renders: RenderCache,
                task: PushTask) -> bool:
    """Check that a record has an address, a channel and content, and mark it if not."""
    if not record.address:
        record.status, record.reason = RecordStatus.SUPPRESSED, Reason.NO_ADDRESS
        return False
    if not chooser.candidates(record):
        record.status, record.reason = RecordStatus.FAILED, Reason.NO_CHANNEL
        return False
    rendered = renders.get(
        task, record.channel_kind, record.locale, record.user_id, record.variant
    )
    if rendered.failure:
        record.status, record.reason = RecordStatus.FAILED, rendered.failure
        return False
    return True


def apply_decision(record: PushRecord, decision: Decision) -> None:
    if decision.action == Action.SUPPRESS:
        record.status, record.reason = RecordStatus.SUPPRESSED, decision.reason
    elif decision.action == Action.DEFER:
        record.status, record.reason = RecordStatus.DEFERRED, decision.reason
        record.next_attempt_at = decision.release_at
    else:
        record.status = RecordStatus.QUEUED


def create_chunk_records(
    task: PushTask, user_ids: list[str], now: datetime | None = None
) -> list[tuple[int, str]]:
    """Write the chunk's records; return (id, channel kind) of those to send now."""
    now = now or clock.now()
    records = build_records(task, user_ids, now)
    plan_first_step(task, records, now)
    store_records(records)
    return list(
        PushRecord.objects.filter(
            task=task, user_id__in=user_ids, status=RecordStatus.QUEUED
        ).values_list("id", "channel_kind")
    )


def store_records(records: list[PushRecord]) -> None:
    """Insert new records, skipping those an earlier run of the same job stored.

    Records that failed before any send (no channel, a rendering error) are counted in
    the roll-ups here, once: only the inserts that were new add to the count.
    """
    failed = [record for record in records if record.status == RecordStatus.FAILED]
    others = [record for record in records if record.status != RecordStatus.FAILED]
    with transaction.atomic():
        insert_ignoring_conflicts(PushRecord, others, RECORD_UNIQUE_FIELDS)
        count_send_results(insert_new(PushRecord, failed, RECORD_UNIQUE_FIELDS))


def create_channel_records(task: PushTask) -> list[tuple[int, str]]:
    """Write one record per channel the task names, such as a group robot.

    These records address the channel itself: no user, no preferences. Return
    (id, channel kind) of those still queued, so a repeated dispatch sends nothing twice.
    """
    names = [name for name in task.channels if name not in ChannelKind.values]
    if not names:
        return []
    records = [
        PushRecord(
            task=task, channel_kind=channel.kind, channel=channel, provider=channel.provider,
            address_kind=CHANNEL_ADDRESS_KIND, address=f"channel:{channel.pk}",
            locale=django_settings.PUSH_DEFAULT_LOCALE,
            variant=assign_variant(task, f"channel:{channel.pk}"),
        )
        for channel in Channel.objects.filter(name__in=names)
    ]
    insert_ignoring_conflicts(PushRecord, records, RECORD_UNIQUE_FIELDS)
    return list(
        PushRecord.objects.filter(
            task=task, address_kind=CHANNEL_ADDRESS_KIND, status=RecordStatus.QUEUED
        ).values_list("id", "channel_kind")
    )
