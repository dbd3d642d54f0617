"""Splits a task's audience into chunks without holding it all in memory."""
from collections.abc import Iterator

from django.db.models import QuerySet

from preferences.models import UserProfile
from sharestack_push.notifications.models import CampaignRecipient, PushTask
from sharestack_push.notifications.segments import matching_profiles


def audience_chunks(task: PushTask, chunk_size: int) -> Iterator[list[str]]:
    if task.target == PushTask.Target.CHANNELS:
        return
    if task.target == PushTask.Target.USER:
        yield [task.user_id]
    elif task.target == PushTask.Target.USERS:
        unique_ids = list(dict.fromkeys(task.user_ids))
        for start in range(0, len(unique_ids), chunk_size):
            yield unique_ids[start : start + chunk_size]
    elif task.target == PushTask.Target.SEGMENT:
        yield from segment_chunks(task.campaign.segment.conditions, chunk_size)
    elif task.target == PushTask.Target.UPLOAD:
        yield from recipient_chunks(task.campaign_id, chunk_size)
    else:
        yield from broadcast_chunks(chunk_size)


def keyset_chunks(rows: QuerySet, key: str, chunk_size: int) -> Iterator[list[str]]:
    """Stream the user_id of `rows` by keyset pagination on the unique column `key`.

    Each query starts after the last key of the one before (never OFFSET), so every
    chunk costs one index range scan and memory keeps only one chunk.
    """
    last_key = None
    while True:
        page = rows.order_by(key)
        if last_key is not None:
            page = page.filter(**{f"{key}__gt": last_key})
        chunk = list(page.values_list(key, "user_id")[:chunk_size])
        if not chunk:
            return
        last_key = chunk[-1][0]
        yield [user_id for _, user_id in chunk]


def broadcast_chunks(chunk_size: int) -> Iterator[list[str]]:
    """Stream every user with a profile, in primary key order."""
    yield from keyset_chunks(UserProfile.objects.all(), "id", chunk_size)


def segment_chunks(conditions: list[dict], chunk_size: int) -> Iterator[list[str]]:
    """Stream the users whose profile attributes match every condition."""
    yield from keyset_chunks(matching_profiles(conditions), "id", chunk_size)


def recipient_chunks(campaign_id: int, chunk_size: int) -> Iterator[list[str]]:
    """Stream a campaign's uploaded user ids in user_id order.

    The key is user_id, so each page is a range of the (campaign, user_id) unique index.
    """
    rows = CampaignRecipient.objects.filter(campaign_id=campaign_id)
    yield from keyset_chunks(rows, "user_id", chunk_size)
