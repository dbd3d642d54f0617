"""Shared fixtures. Tests run against the real PostgreSQL and Redis on 127.0.0.1."""
import os

# Defaults for a plain `pytest`; `make test` exports the same values.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sharestack_push")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-use-0123456789")

import pytest  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from sharestack_push.celery import app as celery_app  # noqa: E402
from sharestack_push.notifications.models import ApiKey  # noqa: E402


@pytest.fixture(autouse=True)
def eager_celery():
    """Run enqueued jobs in the calling process unless a test starts a real worker."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(scope="session", autouse=True)
def close_cached_providers():
    yield
    from sharestack_push.notifications.delivery import close_providers

    close_providers()


@pytest.fixture
def make_client(db):
    def build(*scopes: str) -> APIClient:
        _, plain = ApiKey.objects.create_key("test", list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
        client.plain_key = plain
        return client

    return build


@pytest.fixture
def push_client(make_client):
    return make_client("push")


@pytest.fixture
def admin_client(make_client):
    return make_client("admin")


@pytest.fixture
def preferences_client(make_client):
    return make_client("preferences")
