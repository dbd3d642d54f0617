"""The management commands that create keys and load the demo."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from channels_app.models import Channel, Contact
from sharestack_push.notifications.auth import find_api_key
from sharestack_push.notifications.models import ApiKey


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_api_key_prints_working_key_last(db):
    output = run("create_api_key", "billing", "--scope", "push", "--scope", "admin")
    plain = output.strip().splitlines()[-1]
    api_key = find_api_key(plain)
    assert api_key is not None
    assert api_key.scopes == ["admin", "push"]
    assert api_key.name == "billing"


def test_create_api_key_rejects_unknown_scope(db):
    with pytest.raises(CommandError, match="Unknown scope root"):
        run("create_api_key", "x", "--scope", "root")
    assert ApiKey.objects.count() == 0


def test_create_api_key_needs_a_scope(db):
    with pytest.raises(CommandError, match="at least one"):
        run("create_api_key", "x")


def test_load_demo_is_repeatable(db):
    first = run("load_demo").strip().splitlines()[-1]
    second = run("load_demo").strip().splitlines()[-1]
    assert first != second
    assert find_api_key(first) is None
    assert find_api_key(second).scopes == ["push", "preferences", "admin"]
    assert Channel.objects.get().provider == "console"
    assert Contact.objects.get().address == "demo@example.com"


def test_demo_push_reaches_console(db, capsys, run_jobs):
    from rest_framework.test import APIClient

    plain = run("load_demo").strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    response = run_jobs(client.post, "/api/v1/notifications/push", {
        "notification_id": "demo-1", "notification_type": "account", "user_id": "demo-user",
        "channels": ["email"], "template": "welcome", "variables": {"name": "Ada"},
    }, format="json")
    assert response.status_code == 202
    output = capsys.readouterr().out
    assert "Subject: Welcome, Ada" in output
    assert "Hello Ada, your ShareStack account is ready." in output
