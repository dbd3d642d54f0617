"""Splits a task's audience into chunks without holding it all in memory."""
from collections.abc import Iterator

from preferences.models import UserProfile
from sharestack_push.notifications.models import PushTask


def audience_chunks(task: PushTask, chunk_size: int) -> Iterator[list[str]]:
    if task.target == PushTask.Target.CHANNELS:
        return
    if task.target == PushTask.Target.USER:
        yield [task.user_id]
    elif task.target == PushTask.Target.USERS:
        unique_ids = list(dict.fromkeys(task.user_ids))
        for start in range(0, len(unique_ids), chunk_size):
            yield unique_ids[start : start + chunk_size]
    else:
        yield from broadcast_chunks(chunk_size)


def broadcast_chunks(chunk_size: int) -> Iterator[list[str]]:
    """Stream every user with a profile by keyset pagination on the primary key."""
    last_id = 0
    while True:
        rows = list(
            UserProfile.objects.filter(id__gt=last_id)
            .order_by("id")
            .values_list("id", "user_id")[:chunk_size]
        )
        if not rows:
            return
        last_id = rows[-1][0]
        yield [user_id for _, user_id in rows]
