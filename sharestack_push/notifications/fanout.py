"""Turns one chunk of a task's audience into records, a few queries per chunk.

For every (user, channel kind) the policy decides send, defer or suppress. Records are
written in bulk and are unique per (task, user, channel kind, address), so running a
chunk twice creates nothing new and sends nothing twice.
"""
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings as django_settings

from channels_app.models import CONTACT_KINDS_FOR_CHANNEL, Channel, Contact, Device
from preferences.models import UserProfile, UserPushPreference
from preferences.policy import (
    Action,
    Counters,
    Decision,
    PreferenceRow,
    ProfileSettings,
    decide,
    local_day_start,
    resolve_settings,
)
from preferences.sms_opt_out import marketing_sms_opt_outs
from sharestack_push.notifications import clock
from sharestack_push.notifications.bulk import insert_ignoring_conflicts
from sharestack_push.notifications.constants import (
    DELIVERED_RECORD_STATUSES,
    ChannelKind,
    Reason,
    RecordStatus,
)
from sharestack_push.notifications.content import RenderCache
from sharestack_push.notifications.delivery import CHANNEL_ADDRESS_KIND, ChannelChooser
from sharestack_push.notifications.models import PushRecord, PushTask

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


def load_counters(
    task: PushTask, user_ids: list[str], profiles: dict, rows: dict, now: datetime
) -> dict[str, dict]:
    """Count today's notifications for the users that have a daily limit at all.

    NOTE: the count covers records already sending or sent, so two tasks fanned out
    for the same user at the same moment can both pass a limit of one.
    """
    limited = [
        user_id
        for user_id in user_ids
        if (user_id in profiles and profiles[user_id][0].daily_limit is not None)
        or any(row.frequency_limit is not None for row in rows.get(user_id, ()))
    ]
    if not limited:
        return {}
    history = PushRecord.objects.filter(
        user_id__in=limited,
        status__in=DELIVERED_RECORD_STATUSES,
        sent_at__gte=now - timedelta(hours=50),
    ).exclude(task_id=task.pk).values_list(
        "user_id", "task_id", "channel_kind", "task__notification_type", "sent_at"
    )
    counts: dict[str, dict] = {user_id: {"tasks": set(), "channels": defaultdict(int)} for user_id in limited}
    day_starts = {
        user_id: local_day_start(now, profiles.get(user_id, default_profile())[0].timezone)
        for user_id in limited
    }
    for user_id, task_id, kind, notification_type, sent_at in history:
        if sent_at < day_starts[user_id]:
            continue
        counts[user_id]["tasks"].add(task_id)
        counts[user_id]["channels"][(kind, notification_type)] += 1
    return counts


class PolicyInputs:
    """Profiles, preference rows and today's counts of a group of one task's users."""

    def __init__(self, task: PushTask, user_ids: list[str], now: datetime) -> None:
        self.task = task
        self.now = now
        self.user_ids = user_ids
        self.profiles = load_profiles(user_ids)
        self.rows = load_preference_rows(user_ids)
        self.counts = load_counters(task, user_ids, self.profiles, self.rows, now)
        self.fallback = default_profile()
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

    def decide(self, user_id: str, kind: str) -> Decision:
        """Ask the policy engine about one message of the task to one user on a kind."""
        task = self.task
        if kind == ChannelKind.SMS and user_id in self.sms_opted_out():
            return Decision(Action.SUPPRESS, Reason.SMS_OPTED_OUT)
        profile = self.profiles.get(user_id, self.fallback)[0]
        settings = resolve_settings(
            profile, self.rows.get(user_id, []), task.notification_type, kind
        )
        counters = Counters()
        user_counts = self.counts.get(user_id)
        if user_counts is not None:
            counters = Counters(
                notifications_today=len(user_counts["tasks"]),
                channel_messages_today=user_counts["channels"][(kind, task.notification_type)],
            )
        return decide(settings, counters, task.priority, profile.timezone, self.now)


def build_records(task: PushTask, user_ids: list[str], now: datetime) -> list[PushRecord]:
    kinds = [kind for kind in task.channels if kind in ChannelKind.values]
    policy = PolicyInputs(task, user_ids, now)
    addresses = load_addresses(user_ids, kinds)
    chooser = ChannelChooser(list(Channel.objects.filter(enabled=True).order_by("priority", "id")))
    renders = RenderCache()

    records = []
    for user_id in user_ids:
        locale = policy.locale(user_id)
        for kind in kinds:
            decision = policy.decide(user_id, kind)
            targets = addresses.get((user_id, kind)) or [{"address": "", "provider": ""}]
            for target in targets:
                record = PushRecord(
                    task=task,
                    user_id=user_id,
                    channel_kind=kind,
                    address=target["address"],
                    provider=target["provider"],
                    address_kind=target.get("address_kind", ""),
                    device_id=target.get("device_id"),
                    contact_id=target.get("contact_id"),
                    locale=locale,
                )
                apply_decision(record, decision, chooser, renders, task)
                records.append(record)
    return records


def apply_decision(record: PushRecord, decision, chooser: ChannelChooser, renders: RenderCache,
                   task: PushTask) -> None:
    if decision.action == Action.SUPPRESS:
        record.status, record.reason = RecordStatus.SUPPRESSED, decision.reason
        return
    if not record.address:
        record.status, record.reason = RecordStatus.SUPPRESSED, Reason.NO_ADDRESS
        return
    if not chooser.candidates(record):
        record.status, record.reason = RecordStatus.FAILED, Reason.NO_CHANNEL
        return
    rendered = renders.get(task, record.channel_kind, record.locale)
    if rendered.failure:
        record.status, record.reason = RecordStatus.FAILED, rendered.failure
        return
    if decision.action == Action.DEFER:
        record.status, record.reason = RecordStatus.DEFERRED, decision.reason
        record.next_attempt_at = decision.release_at
        return
    record.status = RecordStatus.QUEUED


def create_chunk_records(
    task: PushTask, user_ids: list[str], now: datetime | None = None
) -> list[tuple[int, str]]:
    """Write the chunk's records; return (id, channel kind) of those to send now."""
    now = now or clock.now()
    records = build_records(task, user_ids, now)
    insert_ignoring_conflicts(
        PushRecord, records, ["task", "user_id", "channel_kind", "address"]
    )
    return list(
        PushRecord.objects.filter(
            task=task, user_id__in=user_ids, status=RecordStatus.QUEUED
        ).values_list("id", "channel_kind")
    )


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
        )
        for channel in Channel.objects.filter(name__in=names)
    ]
    insert_ignoring_conflicts(
        PushRecord, records, ["task", "user_id", "channel_kind", "address"]
    )
    return list(
        PushRecord.objects.filter(
            task=task, address_kind=CHANNEL_ADDRESS_KIND, status=RecordStatus.QUEUED
        ).values_list("id", "channel_kind")
    )
