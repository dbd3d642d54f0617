"""Fixtures for driving the pipeline end to end with a frozen clock."""
from datetime import datetime

import pytest

from channels_app.models import Channel, Device
from preferences.models import UserProfile
from sharestack_push.notifications import clock, tasks
from tests.fakes.fcm import FakeFcm
from tests.staff import chromium, staff_client, staff_user  # noqa: F401

PUSH_URL = "/api/v1/notifications/push"


class Clock:
    def __init__(self, monkeypatch) -> None:
        self.moment: datetime | None = None
        monkeypatch.setattr(clock, "now", self.now)

    def now(self) -> datetime:
        assert self.moment is not None, "set clock.moment first"
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment


@pytest.fixture
def frozen_clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture(scope="session")
def fcm_server():
    with FakeFcm(project_id="sharestack-test") as fake:
        yield fake


@pytest.fixture
def fcm(fcm_server, db):
    """The fake FCM server with a fresh script, behind an enabled FCM channel."""
    fcm_server.clear_requests()
    Channel.objects.create(
        name="fcm",
        kind="app",
        provider="fcm",
        config={"project_id": fcm_server.project_id, "base_url": fcm_server.base_url},
        credentials={"service_account": fcm_server.service_account},
    )
    return fcm_server


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Run a callable and every job it enqueues on commit, nested jobs included."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


@pytest.fixture
def post_push(push_client, run_jobs):
    def post(**body):
        data = {
            "notification_type": "order",
            "channels": ["app"],
            "content": {"title": "Shipped", "body": "Your order is on its way"},
            **body,
        }
        data = {key: value for key, value in data.items() if value is not None}
        return run_jobs(push_client.post, PUSH_URL, data, format="json")

    return post


@pytest.fixture
def beat_tick(run_jobs):
    def tick():
        return run_jobs(tasks.release_due_work)

    return tick


def add_app_user(user_id: str, token: str, **profile) -> Device:
    UserProfile.objects.update_or_create(user_id=user_id, defaults=profile)
    return Device.objects.create(user_id=user_id, platform="android", provider="fcm", token=token)
