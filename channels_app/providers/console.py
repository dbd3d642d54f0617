"""Writes each message to standard output: for demos and local development."""
import sys
import threading

from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult

_write_lock = threading.Lock()


class ConsoleProvider(Provider):
    key = "console"
    kinds = ("email", "app", "sms", "wechat")

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results = []
        with _write_lock:
            for message in messages:
                sys.stdout.write(
                    f"--- notification {message.record_id} to {message.address}\n"
                    f"Subject: {message.title}\n\n{message.body}\n---\n"
                )
                results.append(
                    SendResult(
                        message.record_id,
                        Outcome.SENT,
                        provider_message_id=f"console-{message.record_id}",
                    )
                )
            sys.stdout.flush()
        return results
