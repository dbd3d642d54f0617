"""Shared fixtures. Tests run against the real PostgreSQL and Redis on 127.0.0.1."""
import pytest
import redis
from rest_framework.test import APIClient

from sharestack_push.celery import app as celery_app
from sharestack_push.notifications.models import ApiKey


@pytest.fixture(autouse=True)
def eager_celery():
    """Run enqueued jobs in the calling process unless a test starts a real worker."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def empty_shared_cache():
    """Start each test without the access tokens and rate limits of the one before."""
    from django.conf import settings

    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL).flushdb()


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


@pytest.fixture
def fake_fcm():
    """A running fake FCM HTTP v1 server with its OAuth token endpoint."""
    from tests.fakes.fcm import FakeFcm

    with FakeFcm() as fake:
        yield fake


@pytest.fixture
def smtp_server():
    """A running aiosmtpd server on 127.0.0.1 that records accepted mail."""
    from tests.fakes.smtp import RecordingSmtpServer

    with RecordingSmtpServer() as server:
        yield server


@pytest.fixture
def fake_mailgun():
    """A running fake of Mailgun's Messages API for the domain mg.example.com."""
    from tests.fakes.mailgun import FakeMailgun

    with FakeMailgun() as fake:
        yield fake


@pytest.fixture
def fake_xiaomi():
    """A running fake of Xiaomi MiPush's send-by-regid API."""
    from tests.fakes.xiaomi import FakeXiaomi

    with FakeXiaomi() as fake:
        yield fake


@pytest.fixture
def fake_postmark():
    """A running fake of Postmark's Email API with one confirmed sender."""
    from tests.fakes.postmark import FakePostmark

    with FakePostmark() as fake:
        yield fake


@pytest.fixture
def fake_jpush():
    """A running fake of JPush's push API."""
    from tests.fakes.jpush import FakeJPush

    with FakeJPush() as fake:
        yield fake


@pytest.fixture
def fake_aliyun_push():
    """A running fake of Aliyun Mobile Push's RPC API."""
    from tests.fakes.aliyun_push import FakeAliyunPush

    with FakeAliyunPush() as fake:
        yield fake


@pytest.fixture
def fake_tpns():
    """A running fake of Tencent TPNS's push API."""
    from tests.fakes.tpns import FakeTpns

    with FakeTpns() as fake:
        yield fake
