"""Test environment defaults, loaded as a pytest plugin before Django's settings.

`make test` exports the same values; these serve a plain `pytest` run. The tests use
the real PostgreSQL and Redis on 127.0.0.1.
"""
import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sharestack_push")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-use-0123456789")
