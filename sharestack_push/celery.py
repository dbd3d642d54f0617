"""The Celery application: `celery -A sharestack_push worker --beat`."""
import os

from celery import Celery

from sharestack_push import broker

broker.register()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sharestack_push.settings")

app = Celery("sharestack_push")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
