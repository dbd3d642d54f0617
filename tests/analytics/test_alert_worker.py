"""Alert rules evaluated by celery-beat in a real worker process, sent to a fake robot."""
import pytest

from analytics.models import AlertEvent, AlertRule
from channels_app.models import Channel
from tests.analytics.conftest import ROBOT_SEND_PATH
from tests.notifications.test_worker import wait_for, worker  # noqa: F401


@pytest.fixture
def alert_worker(transactional_db, monkeypatch, request):
    """The worker with embedded beat, evaluating alert rules every second."""
    monkeypatch.setenv("PUSH_ALERT_INTERVAL_SECONDS", "1")
    return request.getfixturevalue("worker")


@pytest.mark.worker
def test_beat_alert_through_worker(alert_worker, robot):
    fake, channel = robot
    sms = Channel.objects.create(name="sms-main", kind="sms", provider="twilio",
                                 is_healthy=False)
    AlertRule.objects.create(name="sms down", kind="unhealthy", channel_kind="sms",
                             alert_channel=channel)

    def robot_texts():
        return [r.body["text"]["content"] for r in fake.requests_to(ROBOT_SEND_PATH)]

    assert wait_for(lambda: len(robot_texts()) == 1), alert_worker.read_text()[-3000:]
    assert robot_texts()[0] == "[FIRING] sms down\nUnhealthy: sms-main."

    Channel.objects.filter(pk=sms.pk).update(is_healthy=True)
    assert wait_for(lambda: len(robot_texts()) == 2), alert_worker.read_text()[-3000:]
    assert robot_texts()[1].startswith("[RESOLVED] sms down\n")

    # Later evaluations keep the state and send nothing more.
    evaluated = AlertRule.objects.get().last_evaluated_at
    assert wait_for(lambda: AlertRule.objects.get().last_evaluated_at > evaluated)
    assert len(robot_texts()) == 2
    assert AlertEvent.objects.filter(notified_at__isnull=False).count() == 2
