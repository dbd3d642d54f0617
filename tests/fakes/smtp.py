"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records mail and rejects on request.

Rejections are set per address: ``reject_recipient`` replies to RCPT TO with the given
reply, ``reject_data`` replies to the DATA of any transaction that includes the address,
and ``reject_sender`` replies to every MAIL FROM. With ``username`` and ``password`` the
server offers AUTH PLAIN and LOGIN without TLS and rejects other credentials with 535.
Without them it offers no AUTH.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

BIND_ATTEMPTS = 5


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted transaction: envelope sender, recipients and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


class RecordingHandler:
    """aiosmtpd handler hooks, which run on the controller's event loop thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mails: list[ReceivedMail] = []
        self.recipient_replies: dict[str, str] = {}
        self.data_replies: dict[str, str] = {}
        self.sender_reply: str | None = None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        with self.lock:
            reply = self.sender_reply
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.lock:
            reply = self.recipient_replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        with self.lock:
            for address in envelope.rcpt_tos:
                reply = self.data_replies.get(address.lower())
                if reply is not None:
                    return reply
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        auth_data = session.auth_data
        login = (
            auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        )
        mail = ReceivedMail(
            str(envelope.mail_from), list(envelope.rcpt_tos), message, login
        )
        with self.lock:
            self.mails.append(mail)
        return "250 Message accepted for delivery"


class PasswordAuthenticator:
    """Accept exactly one login and password, as an aiosmtpd authenticator."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username.encode()
        self.password = password.encode()

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        valid = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.username
            and auth_data.password == self.password
        )
        return AuthResult(success=valid, handled=False, auth_data=auth_data)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class RecordingSmtpServer:
    """An aiosmtpd server on its own thread that records every accepted message."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = RecordingHandler()
        self._authenticator = (
            PasswordAuthenticator(username, password or "") if username else None
        )
        self._controller: Controller | None = None

    def start(self) -> Self:
        """Start listening. With port 0, pick a free port and retry if it is taken."""
        if self.port:
            self._listen(self.port)
            return self
        # aiosmtpd's Controller cannot listen on port 0, because it connects to its own
        # port to check readiness. Another process may take the probed port first.
        for _ in range(BIND_ATTEMPTS - 1):
            try:
                self._listen(free_port(self.host))
            except OSError:
                continue
            return self
        self._listen(free_port(self.host))
        return self

    def _listen(self, port: int) -> None:
        controller = Controller(
            self.handler,
            hostname=self.host,
            port=port,
            authenticator=self._authenticator,
            # aiosmtpd offers AUTH on a plain connection only when this is False, so a
            # server without credentials does not offer AUTH at all.
            auth_require_tls=self._authenticator is None,
        )
        controller.start()
        self._controller = controller
        self.port = port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def mails(self) -> list[ReceivedMail]:
        """A snapshot of the accepted messages, oldest first."""
        with self.handler.lock:
            return list(self.handler.mails)

    def reject_recipient(
        self, address: str, reply: str = "550 5.1.1 User unknown"
    ) -> None:
        """Reply to RCPT TO for this address with the given reply line."""
        with self.handler.lock:
            self.handler.recipient_replies[address.lower()] = reply

    def reject_data(
        self, address: str, reply: str = "554 5.6.0 Message rejected"
    ) -> None:
        """Reply to DATA with this line in any transaction that includes the address."""
        with self.handler.lock:
            self.handler.data_replies[address.lower()] = reply

    def accept(self, address: str) -> None:
        """Drop the RCPT TO and DATA rejections set for this address."""
        with self.handler.lock:
            self.handler.recipient_replies.pop(address.lower(), None)
            self.handler.data_replies.pop(address.lower(), None)

    def reject_sender(self, reply: str | None) -> None:
        """Reply to every MAIL FROM with this line, unless it is None."""
        with self.handler.lock:
            self.handler.sender_reply = reply
