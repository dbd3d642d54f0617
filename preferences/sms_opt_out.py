"""Opt-out and opt-in of marketing SMS by replying a keyword such as STOP or 退订.

A reply that is exactly one opt-out keyword turns off marketing SMS for every user
with an active phone contact at the sender's number, and an opt-in keyword turns it
back on. Transactional SMS such as verification codes still go out, unless the
provider itself rejects the number (Twilio does after STOP, until START).

An opt-out writes two things per user, both cleared by an opt-in:

- a UserPushPreference(type, "sms", is_enabled=False) for each marketing type, so the
  preference centre shows the change;
- UserProfile.marketing_sms_opt_out, which the fan-out reads, so marketing types
  created after the reply are suppressed too.

NOTE: turning a marketing type's SMS back on through the preference API keeps
marketing_sms_opt_out set, so only an opt-in keyword sends marketing SMS again.
"""

import logging
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import Enum

from django.db import transaction

from analytics.models import OptOutEvent
from analytics.optouts import record_opt_out
from channels_app.models import Channel, Contact
from channels_app.providers.base import Reply
from preferences.models import UserProfile, UserPushPreference
from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import ChannelKind
from sharestack_push.notifications.models import NotificationType, PushRecord

logger = logging.getLogger(__name__)

OPT_OUT_KEYWORDS = frozenset(
    {
        # Twilio's default opt-out keywords for long codes (Twilio Advanced Opt-Out
        # guide); Twilio blocks the number itself after any of them.
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        # Replies that Chinese carriers and SMS providers take as unsubscribe. A
        # marketing template ends with a line such as 拒收请回复R or 回T退订.
        "退订",
        "退",
        "TD",
        "T",
        "N",
        "R",
    }
)
# An opt-out reply counts against the latest marketing SMS sent to the number within
# this time before the reply.
REPLY_TRACE_WINDOW = timedelta(days=7)
# Twilio's opt-in keywords, which also lift Twilio's own block.
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})

# Leading and trailing characters that are neither letters nor digits, such as the
# full stop in "Stop." or "退订。".
EDGE_SYMBOLS = re.compile(r"^[\W_]+|[\W_]+$")


class Keyword(str, Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


def reply_keyword(text: str) -> Keyword | None:
    """Classify a reply by keyword; text other than exactly one keyword returns None.

    Case, full-width forms, whitespace and surrounding punctuation are ignored, so
    " Stop. ", "STOP ALL" and "ＴＤ" match, and "please stop" does not.
    """
    compact = "".join(unicodedata.normalize("NFKC", text).split()).upper()
    word = EDGE_SYMBOLS.sub("", compact)
    if word in OPT_OUT_KEYWORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_KEYWORDS:
        return Keyword.OPT_IN
    return None


def users_with_number(addresses: Iterable[str]) -> list[str]:
    """Return the ids of users with an active phone contact at any of the addresses."""
    return sorted(
        set(
            Contact.objects.filter(
                kind=Contact.Kind.PHONE, address__in=list(addresses), is_active=True
            ).values_list("user_id", flat=True)
        )
    )


def marketing_type_keys() -> list[str]:
    return list(
        NotificationType.objects.filter(
            category=NotificationType.Category.MARKETING
        ).values_list("key", flat=True)
    )


def current_users(user_ids: list[str], sent_at: datetime) -> list[str]:
    """Lock and return the users whose latest keyword is not later than sent_at.

    A user without a profile gets one, because the profile stores the marker.
    """
    for user_id in user_ids:
        UserProfile.objects.get_or_create(user_id=user_id)
    profiles = UserProfile.objects.select_for_update().filter(user_id__in=user_ids)
    return [
        profile.user_id
        for profile in profiles
        if profile.marketing_sms_changed_at is None
        or profile.marketing_sms_changed_at <= sent_at
    ]


def replied_record(
    user_id: str, addresses: tuple[str, ...], types: list[str], sent_at: datetime
) -> PushRecord | None:
    """Return the marketing SMS that an opt-out reply from these numbers responds to."""
    if not addresses:
        return None
    return (
        PushRecord.objects.select_related("task")
        .filter(
            user_id=user_id,
            channel_kind=ChannelKind.SMS,
            address__in=addresses,
            task__notification_type__in=types,
            sent_at__lte=sent_at,
            sent_at__gt=sent_at - REPLY_TRACE_WINDOW,
        )
        .order_by("-sent_at", "-pk")
        .first()
    )


@transaction.atomic
def set_marketing_sms(
    user_ids: list[str], enabled: bool, sent_at: datetime, addresses: tuple[str, ...] = ()
) -> list[str]:
    """Turn marketing SMS off or on for the users; return those that changed.

    A user whose latest keyword was sent after sent_at keeps the later choice. An
    opt-out from `addresses` also counts as unsubscribed on the marketing SMS it
    responds to (see replied_record).
    """
    users = current_users(user_ids, sent_at)
    if not users:
        return []
    now = clock.now()
    UserProfile.objects.filter(user_id__in=users).update(
        marketing_sms_opt_out=not enabled,
        marketing_sms_changed_at=sent_at,
        updated_at=now,
    )
    types = marketing_type_keys()
    if enabled:
        UserPushPreference.objects.filter(
            user_id__in=users,
            channel=ChannelKind.SMS,
            notification_type__in=types,
            is_enabled=False,
        ).update(is_enabled=True, updated_at=now)
        return users
    UserPushPreference.objects.bulk_create(
        [
            UserPushPreference(
                user_id=user_id,
                notification_type=key,
                channel=ChannelKind.SMS,
                is_enabled=False,
            )
            for user_id in users
            for key in types
        ],
        update_conflicts=True,
        unique_fields=["user_id", "notification_type", "channel"],
        update_fields=["is_enabled", "updated_at"],
    )
    for user_id in users:
        record = replied_record(user_id, addresses, types, sent_at)
        record_opt_out(
            user_id, OptOutEvent.Source.SMS_OPT_OUT, ChannelKind.SMS,
            record.task.notification_type if record else "", now, record,
        )
    return users


def opt_out_numbers(addresses: Iterable[str], sent_at: datetime) -> list[str]:
    """Turn off marketing SMS for the users at these numbers; return their ids.

    The pipeline calls this when a provider rejects a number because its owner
    opted out (Twilio error 21610).
    """
    return set_marketing_sms(users_with_number(addresses), False, sent_at)


def apply_replies(channel: Channel, replies: list[Reply]) -> int:
    """Apply each reply's keyword to the users at its number; return the users changed.

    Replies are applied in the order they were sent. A reply without a keyword, or
    from a number no active contact has, is logged and changes nothing.
    """
    now = clock.now()
    ordered = sorted(replies, key=lambda reply: reply.received_at or now)
    return sum(
        apply_reply(channel, reply, reply.received_at or now) for reply in ordered
    )


def apply_reply(channel: Channel, reply: Reply, sent_at: datetime) -> int:
    """Apply one reply sent at sent_at; return how many users changed."""
    keyword = reply_keyword(reply.text)
    if keyword is None:
        logger.info(
            "%s: reply on channel %s carries no opt-out or opt-in keyword",
            channel.provider,
            channel.pk,
        )
        return 0

    user_ids = users_with_number(reply.addresses)
    if not user_ids:
        logger.info(
            "%s: %s reply on channel %s from a number without an active phone contact",
            channel.provider,
            keyword.value,
            channel.pk,
        )
        return 0

    enabled = keyword == Keyword.OPT_IN
    users = set_marketing_sms(user_ids, enabled, sent_at, tuple(reply.addresses))
    if not users:
        logger.info(
            "%s: %s reply on channel %s ignored: a keyword sent later was "
            "already applied",
            channel.provider,
            keyword.value,
            channel.pk,
        )
        return 0
    logger.info(
        "%s: %s reply on channel %s turned marketing SMS %s for users %s",
        channel.provider,
        keyword.value,
        channel.pk,
        "on" if enabled else "off",
        ", ".join(users),
    )
    return len(users)


def marketing_sms_opt_outs(notification_type: str, user_ids: list[str]) -> set[str]:
    """Return the users who opted out of marketing SMS, if the type is marketing."""
    is_marketing = NotificationType.objects.filter(
        key=notification_type, category=NotificationType.Category.MARKETING
    ).exists()
    if not is_marketing:
        return set()
    return set(
        UserProfile.objects.filter(
            user_id__in=user_ids, marketing_sms_opt_out=True
        ).values_list("user_id", flat=True)
    )
