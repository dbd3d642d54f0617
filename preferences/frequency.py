"""Frequency counters shared by every worker, checked and taken in one atomic step.

With REDIS_URL set, one Lua script checks a message against the user's daily limit,
the channel limit and the type's minimum interval, and counts it only when all pass.
Redis runs a script without interleaving other commands, so any number of workers
fanning out to one user at once never exceed a limit together. Without Redis (the
embedded defaults), fan-out counts from the database instead, which two simultaneous
fan-outs can overrun.

A message is counted once per task: a task's member is added to a set, so a chunk run
twice, a second device or a second channel of the same task is not counted again. The
database's count of today's messages is merged into the sets on every call, so a limit
set during the day, or a Redis that lost its data, still counts what was already sent.
Times come from the pipeline's clock, not Redis's, so the counters agree with the
deferral times the policy computes.
"""
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import redis
from django.conf import settings

from preferences.policy import LimitHit, Limits
from sharestack_push.notifications.constants import Reason

KEY_PREFIX = "push:frequency:"
# Day sets outlive their day by this much, so a clock skew between workers near
# midnight never drops a set that another worker still reads.
DAY_KEY_GRACE = timedelta(hours=1)
NO_LIMIT = -1

# KEYS: the user's day set, the user's set for this type and channel today, the hash
# of this type's last message to the user.
# ARGV: member, daily limit, channel limit, interval ms, now ms, day set TTL ms,
# enforced (1 or 0), last send ms from the database (0 for none), how many day seeds,
# then the day seeds, then the channel seeds.
# Returns {""} when counted, {reason} for a limit, {reason, retry at ms} for the interval.
_TAKE = """
local member = ARGV[1]
local daily = tonumber(ARGV[2])
local per_channel = tonumber(ARGV[3])
local interval = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local day_ttl = tonumber(ARGV[6])
local enforced = ARGV[7] == '1'
local seeded_last = tonumber(ARGV[8])
local day_seeds = tonumber(ARGV[9])

if daily >= 0 then
    for i = 10, 9 + day_seeds do redis.call('sadd', KEYS[1], ARGV[i]) end
end
if per_channel >= 0 then
    for i = 10 + day_seeds, #ARGV do redis.call('sadd', KEYS[2], ARGV[i]) end
end

local last_member = false
local last_at = seeded_last
if interval > 0 then
    local stored = redis.call('hmget', KEYS[3], 'member', 'at')
    if stored[2] and tonumber(stored[2]) >= last_at then
        last_member = stored[1]
        last_at = tonumber(stored[2])
    end
end

if enforced then
    if daily >= 0 and redis.call('sismember', KEYS[1], member) == 0
            and redis.call('scard', KEYS[1]) >= daily then
        return {'frequency_limit'}
    end
    if per_channel >= 0 and redis.call('sismember', KEYS[2], member) == 0
            and redis.call('scard', KEYS[2]) >= per_channel then
        return {'frequency_limit'}
    end
    if interval > 0 and last_at > 0 and last_member ~= member and now < last_at + interval then
        return {'min_interval', string.format('%.0f', last_at + interval)}
    end
end

if daily >= 0 then
    redis.call('sadd', KEYS[1], member)
    redis.call('pexpire', KEYS[1], day_ttl)
end
if per_channel >= 0 then
    redis.call('sadd', KEYS[2], member)
    redis.call('pexpire', KEYS[2], day_ttl)
end
if interval > 0 and last_member ~= member then
    redis.call('hset', KEYS[3], 'member', member, 'at', string.format('%.0f', now))
    redis.call('pexpire', KEYS[3], interval)
end
return {''}
"""


@dataclass(frozen=True)
class CountRequest:
    """One message about to be counted against the limits of its user."""

    user_id: str
    # Identifies the notification: every message of one task shares it.
    member: str
    notification_type: str
    channel: str
    limits: Limits
    now: datetime
    # The user's calendar day, as UTC instants of its first moment and the next day's.
    day_start: datetime
    day_end: datetime
    # What the database already shows as sent today and this type's last send.
    seen_today: Iterable[str] = field(default_factory=tuple)
    seen_on_channel: Iterable[str] = field(default_factory=tuple)
    last_sent_at: datetime | None = None


def milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def key(kind: str, *parts: str) -> str:
    # JSON keeps parts apart even when a user id or type contains the separator.
    return KEY_PREFIX + kind + ":" + json.dumps(parts, separators=(",", ":"))


def limit_argument(limit: int | None) -> int:
    return NO_LIMIT if limit is None else limit


class RedisFrequencyCounter:
    def __init__(self, client: redis.Redis) -> None:
        self._take = client.register_script(_TAKE)

    def take(self, request: CountRequest) -> LimitHit | None:
        """Count the message unless it would exceed a limit, and return the limit it hits."""
        limits = request.limits
        day = request.day_start.astimezone(timezone.utc).isoformat()
        keys = [
            key("day", request.user_id, day),
            key("channel", request.user_id, request.notification_type, request.channel, day),
            key("last", request.user_id, request.notification_type),
        ]
        day_ttl = max(request.day_end + DAY_KEY_GRACE - request.now, timedelta(seconds=1))
        seen_today = [str(member) for member in request.seen_today]
        seen_on_channel = [str(member) for member in request.seen_on_channel]
        last_sent = milliseconds(request.last_sent_at) if request.last_sent_at else 0
        args = [
            request.member,
            limit_argument(limits.daily),
            limit_argument(limits.channel_daily),
            (limits.min_interval_seconds or 0) * 1000,
            milliseconds(request.now),
            int(day_ttl.total_seconds() * 1000),
            1 if limits.enforced else 0,
            last_sent,
            len(seen_today),
            *seen_today,
            *seen_on_channel,
        ]
        result = self._take(keys=keys, args=args)
        reason = result[0].decode() if isinstance(result[0], bytes) else result[0]
        if not reason:
            return None
        if reason == Reason.MIN_INTERVAL:
            retry_at = datetime.fromtimestamp(int(result[1]) / 1000, tz=timezone.utc)
            return LimitHit(Reason.MIN_INTERVAL, retry_at)
        return LimitHit(reason)


_counter: tuple[int, str, RedisFrequencyCounter] | None = None
_counter_lock = threading.Lock()


def frequency_counter() -> RedisFrequencyCounter | None:
    """Return this process's Redis counter, or None without REDIS_URL."""
    global _counter
    url = settings.REDIS_URL
    if not url:
        return None
    with _counter_lock:
        if _counter is None or _counter[0] != os.getpid() or _counter[1] != url:
            _counter = (os.getpid(), url, RedisFrequencyCounter(redis.Redis.from_url(url)))
        return _counter[2]
