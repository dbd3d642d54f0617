"""Celery tasks of the analytics app."""
from celery import shared_task

from analytics.alerts import evaluate_alerts


@shared_task(name="analytics.evaluate_alerts")
def evaluate_alerts_job() -> int:
    return evaluate_alerts()
