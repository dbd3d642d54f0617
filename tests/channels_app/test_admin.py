"""The Django admin checks channels with the same adapter rules as the API."""
import pytest

from channels_app.admin import ChannelForm
from channels_app.models import Channel

pytestmark = pytest.mark.django_db


def form(**fields):
    data = {"name": "mail", "kind": "email", "provider": "smtp", "priority": 100,
            "enabled": True, "is_healthy": True, "last_error": "",
            "config": '{"host": "127.0.0.1", "port": 25, "from_email": "noreply@example.com"}'}
    data.update(fields)
    return ChannelForm(data=data)


def test_valid_channel_saves():
    assert form().is_valid(), form().errors


def test_config_error_names_the_key():
    bound = form(config='{"host": "127.0.0.1", "port": "abc", "from_email": "noreply@example.com"}')
    assert not bound.is_valid()
    assert any("config.port" in error for error in bound.errors["config"])


def test_unknown_provider_is_rejected():
    bound = form(provider="nonexistent")
    assert not bound.is_valid()
    assert "provider" in bound.errors


def test_kind_must_match_the_provider():
    bound = form(kind="sms")
    assert not bound.is_valid()
    assert "kind" in bound.errors


def test_config_must_be_an_object():
    bound = form(config="[1, 2]")
    assert not bound.is_valid()
    assert "config" in bound.errors


def test_existing_credentials_are_kept():
    channel = Channel.objects.create(name="mail", kind="email", provider="smtp",
                                     config={"host": "h", "port": 25, "from_email": "noreply@example.com"})
    channel.credentials = {"username": "u", "password": "p"}
    channel.save()
    bound = ChannelForm(instance=channel, data={
        "name": "mail", "kind": "email", "provider": "smtp", "priority": 5, "enabled": True,
        "is_healthy": True, "last_error": "",
        "config": '{"host": "h", "port": 25, "from_email": "noreply@example.com"}'})
    assert bound.is_valid(), bound.errors
    bound.save()
    channel.refresh_from_db()
    assert channel.credentials == {"username": "u", "password": "p"}
