"""Fixtures of the pipeline tests, shared with the statistics tests."""
from tests.notifications.conftest import (  # noqa: F401
    fcm,
    fcm_server,
    frozen_clock,
    post_push,
    run_jobs,
)
