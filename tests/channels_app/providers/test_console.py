"""ConsoleProvider writes each message to standard output and reports it sent."""

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.console import ConsoleProvider


def test_console_prints_each_message(capsys):
    provider = ConsoleProvider({}, {}, timeout=5)
    batch = [
        OutgoingMessage(7, "ada@example.com", "Deploy finished", "Build 42 is live."),
        OutgoingMessage(8, "+15550100", "Reminder", "Standup in 5 minutes."),
    ]

    results = provider.send(batch)

    output = capsys.readouterr().out
    assert "--- notification 7 to ada@example.com\n" in output
    assert "Subject: Deploy finished\n\nBuild 42 is live.\n" in output
    assert "--- notification 8 to +15550100\n" in output
    assert output.index("notification 7") < output.index("notification 8")
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert [r.provider_message_id for r in results] == ["console-7", "console-8"]


def test_console_accepts_every_kind():
    assert set(ConsoleProvider.kinds) == {"email", "app", "sms", "wechat"}
