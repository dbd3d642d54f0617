"""Fixtures for the analytics tests: a frozen clock, records, a robot channel, and the
pipeline fixtures the statistics tests share."""
import itertools
import uuid
from datetime import datetime
from decimal import Decimal

import pytest

from analytics.models import HourlyStat
from channels_app.models import Channel
from sharestack_push.notifications.models import PushRecord, PushTask
from tests.fakes.wechat import FakeWeChat
from tests.notifications.conftest import (  # noqa: F401
    Clock,
    fcm,
    fcm_server,
    post_push,
    run_jobs,
)
from tests.staff import chromium, staff_client, staff_user  # noqa: F401

ROBOT_SEND_PATH = "/cgi-bin/webhook/send"


def add_stat(hour: datetime, **fields) -> HourlyStat:
    """Create one hourly roll-up row of app messages, with counters overridden by fields."""
    defaults = {"channel_kind": "app", "provider": "fcm", "notification_type": "order",
                "sent": 10, "delivered": 8, "opened": 4, "clicked": 2, "failed": 1,
                "cost": Decimal("0.1")}
    return HourlyStat.objects.create(hour=hour, **(defaults | fields))


@pytest.fixture
def frozen_clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def add_records(db):
    """Create records of one kind, provider and status, last changed at `at`."""
    task = PushTask.objects.create(
        notification_id="metrics", notification_type="order", target="user",
        channels=["email", "app", "sms"],
    )

    serial = itertools.count()

    def add(kind: str, provider: str, status: str, count: int = 1,
            at: datetime | None = None, channel: Channel | None = None) -> None:
        records = PushRecord.objects.bulk_create(
            PushRecord(task=task, user_id=f"user-{next(serial)}", channel_kind=kind,
                       provider=provider, status=status, channel=channel)
            for _ in range(count)
        )
        if at is not None:
            PushRecord.objects.filter(pk__in=[r.pk for r in records]).update(updated_at=at)

    return add


@pytest.fixture
def robot(db):
    """A fake WeCom robot server and the channel that posts to it."""
    key = str(uuid.uuid4())
    with FakeWeChat() as fake:
        fake.add_robot(key)
        channel = Channel.objects.create(
            name="ops-robot", kind="wechat", provider="wecom_robot",
            config={"base_url": fake.base_url}, credentials={"key": key},
        )
        yield fake, channel


@pytest.fixture
def smtp_channel(smtp_server, db):
    """An SMTP email channel that sends to the recording aiosmtpd server."""
    return Channel.objects.create(
        name="smtp", kind="email", provider="smtp",
        config={"host": smtp_server.host, "port": smtp_server.port, "use_tls": False,
                "from_email": "noreply@sharestack.example"},
        credentials={},
    )
