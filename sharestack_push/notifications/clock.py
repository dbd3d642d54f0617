"""The pipeline's single source of the current time, so tests can move it."""
from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
