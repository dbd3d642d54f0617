"""Email over SMTP through Django's SMTP backend, one connection per batch."""
import logging
import smtplib
from email.utils import parseaddr
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import make_msgid
from django.core.mail.utils import DNS_NAME
from django.core.validators import validate_email

from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult

logger = logging.getLogger(__name__)

# Disconnects, timeouts, resets and TLS failures. smtplib's other exceptions are OSError
# subclasses too, so _send_one catches them first.
TRANSIENT_ERRORS = (smtplib.SMTPServerDisconnected, OSError)


def valid_sender(value: object) -> bool:
    if not isinstance(value, str):
        return False
    _, address = parseaddr(value)
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def classify_smtp_code(code: int) -> Outcome:
    """4xx replies are temporary (RFC 5321, section 4.2.1); 5xx are permanent."""
    return Outcome.RETRYABLE if 400 <= code < 500 else Outcome.PERMANENT


class SmtpProvider(Provider):
    key = "smtp"
    kinds = ("email",)
    address_kinds = ("email",)
    required_config = ("host", "port", "from_email")
    optional_config = ("use_tls", "use_ssl")
    optional_credentials = ("username", "password")

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        port = config.get("port")
        if "config.port" not in errors and (
            not isinstance(port, int) or not 0 < port < 65536
        ):
            errors["config.port"] = "Must be an integer from 1 to 65535."
        if config.get("use_tls") and config.get("use_ssl"):
            errors["config.use_ssl"] = "use_tls and use_ssl cannot both be true."
        for name in ("use_tls", "use_ssl"):
            if name in config and not isinstance(config[name], bool):
                errors[f"config.{name}"] = "Must be true or false."
        from_email = config.get("from_email")
        if "config.from_email" not in errors and not valid_sender(from_email):
            errors["config.from_email"] = (
                "Must be an email address, optionally with a name: "
                "'ShareStack <noreply@example.com>'."
            )
        if bool(credentials.get("username")) != bool(credentials.get("password")):
            errors["credentials.password"] = "Give both username and password, or neither."
        return errors

    def _backend(self) -> EmailBackend:
        return EmailBackend(
            host=self.config["host"],
            port=self.config["port"],
            username=self.credentials.get("username") or None,
            password=self.credentials.get("password") or None,
            use_tls=bool(self.config.get("use_tls")),
            use_ssl=bool(self.config.get("use_ssl")),
            timeout=self.timeout,
            fail_silently=False,
        )

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        backend = self._backend()
        try:
            backend.open()
        except smtplib.SMTPAuthenticationError as error:
            logger.error("smtp: authentication failed at %s", self.config["host"])
            return self._all(messages, Outcome.CONFIGURATION, "auth_failed", str(error))
        except smtplib.SMTPNotSupportedError as error:
            # use_tls without STARTTLS, or credentials without AUTH, at this server.
            logger.error("smtp: %s does not support the configured login: %s",
                         self.config["host"], error)
            return self._all(messages, Outcome.CONFIGURATION, "not_supported", str(error))
        except (smtplib.SMTPException, OSError) as error:
            logger.warning("smtp: cannot connect to %s: %s", self.config["host"], error)
            return self._all(messages, Outcome.RETRYABLE, "connect_failed", str(error))
        try:
            return [self._send_one(backend, message) for message in messages]
        finally:
            try:
                backend.close()
            except (smtplib.SMTPException, OSError):
                logger.warning("smtp: closing the connection failed", exc_info=True)

    def _message_id_domain(self) -> str:
        """Return the domain of from_email, which may be "Name <user@domain>"."""
        domain = parseaddr(self.config["from_email"])[1].rpartition("@")[2]
        return domain or DNS_NAME.get_fqdn()

    def _send_one(self, backend: EmailBackend, message: OutgoingMessage) -> SendResult:
        message_id = make_msgid(domain=self._message_id_domain())
        email = EmailMultiAlternatives(
            subject=message.title,
            body=message.body,
            from_email=self.config["from_email"],
            to=[message.address],
            # message.headers contains List-Unsubscribe and List-Unsubscribe-Post for
            # marketing mail. Our Message-ID wins, because it is the provider id.
            headers={**message.headers, "Message-ID": message_id},
            connection=backend,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            sent = email.send()
        except ValueError as error:
            # Django raises BadHeaderError, a ValueError, for a newline in the subject
            # or the address, before any SMTP command.
            return self._result(message, Outcome.PERMANENT, "invalid_message", str(error))
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            outcome = Outcome.RETRYABLE if 400 <= code < 500 else Outcome.INVALID_ADDRESS
            return self._result(message, outcome, str(code), reply)
        except smtplib.SMTPSenderRefused as error:
            # A 4xx reply to MAIL FROM is temporary, a rate limit for example. A 5xx
            # reply means that the server does not accept from_email.
            code = error.smtp_code
            outcome = Outcome.RETRYABLE if 400 <= code < 500 else Outcome.CONFIGURATION
            return self._result(message, outcome, str(code), error.smtp_error)
        except smtplib.SMTPResponseException as error:
            outcome = classify_smtp_code(error.smtp_code)
            return self._result(message, outcome, str(error.smtp_code), error.smtp_error)
        except TRANSIENT_ERRORS as error:
            return SendResult(message.record_id, Outcome.RETRYABLE, error_code="disconnected", error_message=str(error))
        if not sent:
            # Django skips a message without recipients and returns 0.
            return self._result(message, Outcome.INVALID_ADDRESS, "no_recipient", "the address is empty")
        return SendResult(message.record_id, Outcome.SENT, provider_message_id=message_id)

    @staticmethod
    def _result(message: OutgoingMessage, outcome: Outcome, code: str, reply: bytes | str) -> SendResult:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        return SendResult(message.record_id, outcome, error_code=code, error_message=text)

    @staticmethod
    def _all(messages: list[OutgoingMessage], outcome: Outcome, code: str, text: str) -> list[SendResult]:
        return [
            SendResult(message.record_id, outcome, error_code=code, error_message=text)
            for message in messages
        ]
