"""The Celery application: `celery -A sharestack_push worker --beat`."""
import os

from celery import Celery
from celery.signals import task_prerun
from django.db import close_old_connections

from sharestack_push import broker

broker.register()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sharestack_push.settings")

app = Celery("sharestack_push")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def close_stale_connections(task=None, **kwargs) -> None:
    """Drop a database connection that is broken or older than CONN_MAX_AGE.

    Celery reuses a worker's connection for CELERY_DB_REUSE_MAX tasks without checking
    it, so a restarted database would otherwise fail the tasks in between. A task run
    eagerly shares its caller's connection and transaction, which must stay open.
    """
    if task is not None and task.request.is_eager:
        return
    close_old_connections()
