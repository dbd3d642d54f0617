"""`/healthz`: a readiness check of the database and the broker."""
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from sharestack_push.celery import app as celery_app

logger = logging.getLogger(__name__)


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # any failure means unhealthy; the reason is logged
        logger.error("healthz: database check failed: %s", error)
        return "unavailable"


def check_broker() -> str:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as broker:
            broker.ensure_connection(max_retries=1, timeout=3)
        return "ok"
    except Exception as error:  # any failure means unhealthy; the reason is logged
        logger.error("healthz: broker check failed: %s", error)
        return "unavailable"


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )
