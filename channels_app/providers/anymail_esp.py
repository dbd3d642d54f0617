"""Email through django-anymail's ESP backends over their HTTP APIs: Mailgun, Postmark.

Each ESP has its own provider key ("mailgun", "postmark") and one table that maps
every answer to an Outcome. The backend is built per channel with
django.core.mail.get_connection() from the channel's config and credentials and never
from Django settings, so two channels of one ESP can use different accounts.

The ESPs take one message per request here, because every recipient gets their own
rendered content, so a batch is sent concurrently over one requests session per
worker thread. Tracking webhooks are checked and parsed by anymail's own webhook
views for the ESP, built with this channel's secrets.
"""

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from anymail.backends.base import DEFAULT_IDNA_ENCODER, AnymailBaseBackend
from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRequestsAPIError,
    AnymailWebhookValidationFailure,
)
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from anymail.webhooks.base import AnymailCoreWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.core.mail import EmailMultiAlternatives, get_connection
from django.http import HttpRequest, HttpResponse

from channels_app.providers.base import (
    CallbackRejected,
    CallbackResult,
    Outcome,
    OutgoingMessage,
    Provider,
    Receipt,
    ReceiptEvent,
    SendResult,
)
from channels_app.providers.smtp import valid_sender

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64

# Anymail's normalised tracking events that change a record. Deferrals, queueing and
# autoresponders say nothing final about the message and are skipped.
EVENT_RECEIPTS: dict[str, ReceiptEvent] = {
    EventType.DELIVERED: ReceiptEvent.DELIVERED,
    EventType.OPENED: ReceiptEvent.OPENED,
    EventType.CLICKED: ReceiptEvent.CLICKED,
    EventType.BOUNCED: ReceiptEvent.FAILED,
    EventType.REJECTED: ReceiptEvent.FAILED,
    EventType.FAILED: ReceiptEvent.FAILED,
    # Mailgun's "complained" and Postmark's SpamComplaint. The record keeps its status.
    EventType.COMPLAINED: ReceiptEvent.COMPLAINED,
}
# An unsubscribe through the ESP's own link: the record keeps its status.
OPT_OUT_EVENTS = frozenset({EventType.UNSUBSCRIBED})


def retry_after_seconds(header: str | None) -> float | None:
    """Return a Retry-After delay in seconds, given as seconds or as an HTTP-date."""
    if not header:
        return None
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(header).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def response_json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def fallback_outcome(status: int | None) -> Outcome:
    """Classify an HTTP status that the ESP's table does not name."""
    if status is None or status == 429 or status >= 500:
        return Outcome.RETRYABLE
    if status in (401, 403):
        return Outcome.CONFIGURATION
    return Outcome.PERMANENT


class AnymailProvider(Provider):
    """One ESP account behind an anymail backend. Each subclass names one ESP's parts."""

    kinds = ("email",)
    address_kinds = ("email",)
    required_config = ("from_email",)
    # api_url points the backend at another API host, such as Mailgun's EU region.
    optional_config = ("api_url", "reply_to", "concurrency")
    optional_credentials = ("webhook_username", "webhook_password")

    backend_path: ClassVar[str]
    default_api_url: ClassVar[str]
    api_key_name: ClassVar[str]
    webhook_view: ClassVar[type[AnymailCoreWebhookView]]
    # The ESP's responses, from anymail's per-recipient status or the error body,
    # mapped to our outcome. Codes missing here fall back to the HTTP status.
    CODES: ClassVar[dict[str, Outcome]]

    @classmethod
    def validate(
        cls, config: dict[str, Any], credentials: dict[str, Any]
    ) -> dict[str, str]:
        errors = super().validate(config, credentials)
        for name in ("from_email", "reply_to"):
            if (
                name in config
                and f"config.{name}" not in errors
                and not valid_sender(config[name])
            ):
                errors[f"config.{name}"] = (
                    "Must be an email address, optionally with a name: "
                    "'ShareStack <noreply@example.com>'."
                )
        api_url = config.get("api_url")
        if api_url is not None and (
            not isinstance(api_url, str)
            or urlsplit(api_url).scheme not in ("http", "https")
        ):
            errors["config.api_url"] = "Must be an http or https URL."
        concurrency = config.get("concurrency")
        if concurrency is not None and (
            isinstance(concurrency, bool)
            or not isinstance(concurrency, int)
            or not 0 < concurrency <= MAX_CONCURRENCY
        ):
            errors["config.concurrency"] = (
                f"Must be an integer from 1 to {MAX_CONCURRENCY}."
            )
        username = credentials.get("webhook_username")
        if bool(username) != bool(credentials.get("webhook_password")):
            errors["credentials.webhook_password"] = (
                "Give both webhook_username and webhook_password, or neither."
            )
        elif isinstance(username, str) and ":" in username:
            errors["credentials.webhook_username"] = "Must not contain a colon."
        return errors

    def __init__(
        self,
        config: dict[str, Any],
        credentials: dict[str, Any],
        timeout: float,
        **context: str,
    ) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.concurrency = int(config.get("concurrency", DEFAULT_CONCURRENCY))
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[AnymailBaseBackend] = []
        self._executor: ThreadPoolExecutor | None = None

    # Sending

    def backend_options(self) -> dict[str, Any]:
        """Return the ESP-specific keyword arguments for the anymail backend."""
        return {}

    def open_connection(self) -> AnymailBaseBackend:
        connection = get_connection(
            self.backend_path,
            fail_silently=False,
            api_url=self.config.get("api_url") or self.default_api_url,
            timeout=self.timeout,
            # Each message has one recipient, whose status this adapter classifies.
            ignore_recipient_status=True,
            ignore_unsupported_features=False,
            debug_api_requests=False,
            idna_encoder=DEFAULT_IDNA_ENCODER,
            **{self.api_key_name: self.credentials[self.api_key_name]},
            **self.backend_options(),
        )
        # anymail merges the global ANYMAIL["SEND_DEFAULTS"] setting into every
        # message whatever the keyword arguments contain, so drop it here.
        connection.send_defaults = {}
        connection.open()
        return connection

    def _thread_connection(self) -> AnymailBaseBackend:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.open_connection()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.concurrency, thread_name_prefix=f"{self.key}-send"
                )
            executor = self._executor
        return list(executor.map(self._send_one, messages))

    def build_email(self, message: OutgoingMessage) -> EmailMultiAlternatives:
        reply_to = message.options.get("reply_to") or self.config.get("reply_to")
        email = EmailMultiAlternatives(
            subject=message.title,
            body=message.body,
            from_email=self.config["from_email"],
            to=[message.address],
            reply_to=[reply_to] if reply_to else None,
            headers=dict(message.headers),
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        # Anymail sends metadata as ESP custom data, which the ESP returns in webhooks.
        email.metadata = {"record_id": str(message.record_id)}  # type: ignore[attr-defined]
        return email

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        if not message.address:
            return SendResult(
                message.record_id,
                Outcome.INVALID_ADDRESS,
                error_code="no_recipient",
                error_message="the address is empty",
            )
        reply_to = message.options.get("reply_to")
        if reply_to and not valid_sender(reply_to):
            # Checked here, because anymail's invalid-address error would blame the
            # recipient and deactivate it.
            return SendResult(
                message.record_id,
                Outcome.PERMANENT,
                error_code="invalid_reply_to",
                error_message=f"options.reply_to is not an email address: {reply_to!r}",
            )
        email = self.build_email(message)
        try:
            email.connection = self._thread_connection()
            email.send()
        except AnymailRequestsAPIError as error:
            return self.api_error(message, error)
        except AnymailError as error:
            # Raised before any request: an address anymail cannot parse, or a message
            # feature that the ESP does not support.
            if isinstance(error, AnymailInvalidAddress):
                outcome, code = Outcome.INVALID_ADDRESS, "invalid_address"
            else:
                outcome, code = Outcome.PERMANENT, "invalid_message"
            return SendResult(
                message.record_id,
                outcome,
                error_code=code,
                error_message=str(error).splitlines()[0][:500],
            )
        return self.recipient_result(message, email)

    def recipient_result(
        self, message: OutgoingMessage, email: EmailMultiAlternatives
    ) -> SendResult:
        status_report = email.anymail_status  # type: ignore[attr-defined]
        # anymail keys recipients by the address as sent, also where Postmark reports
        # an inactive address in lower case.
        recipient = status_report.recipients.get(message.address)
        status = recipient.status if recipient is not None else "unknown"
        outcome = self.CODES.get(status, Outcome.PERMANENT)
        if outcome == Outcome.SENT:
            message_id = (
                recipient.message_id if recipient else None
            ) or status_report.message_id
            return SendResult(
                message.record_id, Outcome.SENT, provider_message_id=str(message_id)
            )
        response = status_report.esp_response
        text = self.error_text(response_json(response), response.text)[:500]
        logger.warning(
            "%s: record %s not sent, recipient status %s: %s",
            self.key,
            message.record_id,
            status,
            text,
        )
        return SendResult(
            message.record_id,
            outcome,
            error_code=status,
            error_message=text,
            response_data={"status": response.status_code},
        )

    def api_error(
        self, message: OutgoingMessage, error: AnymailRequestsAPIError
    ) -> SendResult:
        response = error.response
        if response is None:
            # Connection refused, reset or timed out: anymail wraps the requests error.
            cause = error.__cause__ or error
            return SendResult(
                message.record_id,
                Outcome.RETRYABLE,
                error_code="network",
                error_message=str(cause)[:500] or type(cause).__name__,
            )
        status = response.status_code
        body = response_json(response)
        code = self.error_code(status, body, response.text)
        outcome = self.CODES.get(code) or fallback_outcome(status)
        text = self.error_text(body, response.text)[:500]
        log = logger.error if outcome == Outcome.CONFIGURATION else logger.warning
        log(
            "%s: send of record %s failed with HTTP %s (%s): %s",
            self.key,
            message.record_id,
            status,
            code,
            text,
        )
        return SendResult(
            message.record_id,
            outcome,
            error_code=code,
            error_message=text,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            response_data={"status": status},
        )

    def error_code(self, status: int, body: Any, text: str) -> str:
        """Return the table code for an error response."""
        raise NotImplementedError

    def error_text(self, body: Any, text: str) -> str:
        """Return the ESP's own error message from a response."""
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            connections, self._connections = self._connections, []
        if executor is not None:
            executor.shutdown(wait=True)
        for connection in connections:
            connection.close()

    # Tracking webhooks

    def webhook_options(self) -> dict[str, Any]:
        """Return the keyword arguments for anymail's webhook view of this channel."""
        username = self.credentials.get("webhook_username")
        password = self.credentials.get("webhook_password")
        return {
            "webhook_secret": [f"{username}:{password}"]
            if username and password
            else []
        }

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        if request.method == "HEAD":
            # Some ESPs check a webhook URL with HEAD when it is configured.
            return CallbackResult(response=HttpResponse())
        if request.method != "POST":
            return CallbackResult(response=HttpResponse(status=405))
        view = self.webhook_view(**self.webhook_options())
        try:
            view.run_validators(request)
        except AnymailWebhookValidationFailure as error:
            raise CallbackRejected(str(error)) from None
        try:
            events = view.parse_events(request)
        except (AnymailConfigurationError, ValueError, KeyError, TypeError) as error:
            logger.warning("%s: unreadable webhook payload: %s", self.key, error)
            return CallbackResult(response=HttpResponse(status=400))
        receipts = []
        for event in events:
            receipt = self.receipt(event)
            if receipt is not None:
                receipts.append(receipt)
        return CallbackResult(receipts)

    def receipt(self, event: AnymailTrackingEvent) -> Receipt | None:
        """Convert one anymail tracking event to a receipt, or None to skip it."""
        if event.event_type in OPT_OUT_EVENTS:
            # NOTE: an unsubscribe through the ESP's own link is only logged, because
            # our messages carry our own unsubscribe link.
            logger.warning(
                "%s: %s event for message %s",
                self.key,
                event.event_type,
                event.message_id,
            )
            return None
        receipt_event = EVENT_RECEIPTS.get(event.event_type)
        if receipt_event is None or not event.message_id:
            logger.debug(
                "%s: skipped %s event for message %s",
                self.key,
                event.event_type,
                event.message_id,
            )
            return None
        if receipt_event != ReceiptEvent.FAILED:
            return Receipt(event.message_id, receipt_event, occurred_at=event.timestamp)
        return Receipt(
            event.message_id,
            ReceiptEvent.FAILED,
            occurred_at=event.timestamp,
            error_code=event.reject_reason or event.event_type,
            error_message=(event.description or event.mta_response or "")[:500],
            invalid_address=self.is_dead_address(event),
        )

    def is_dead_address(self, event: AnymailTrackingEvent) -> bool:
        """Return True when a failure event shows that the mailbox does not exist."""
        return event.reject_reason == RejectReason.INVALID


# Mailgun's error bodies carry only a message, and this one marks a bad recipient.
MAILGUN_INVALID_RECIPIENT = re.compile(
    r"\b(to|cc|bcc)'? parameter is not a valid address", re.IGNORECASE
)


class MailgunProvider(AnymailProvider):
    """Mailgun's Messages API: POST {api_url}/{domain}/messages with Basic api:key."""

    key = "mailgun"
    optional_config = (*AnymailProvider.optional_config, "sender_domain")
    required_credentials = ("api_key",)
    optional_credentials = (
        *AnymailProvider.optional_credentials,
        "webhook_signing_key",
    )
    backend_path = "anymail.backends.mailgun.EmailBackend"
    default_api_url = "https://api.mailgun.net/v3"
    api_key_name = "api_key"
    webhook_view = MailgunTrackingWebhookView

    CODES: ClassVar[dict[str, Outcome]] = {
        # anymail's status for every accepted Mailgun message
        "queued": Outcome.SENT,
        # A 400 whose message names the to address.
        "invalid_recipient": Outcome.INVALID_ADDRESS,
        # HTTP status of other error responses
        "400": Outcome.PERMANENT,
        "401": Outcome.CONFIGURATION,
        "402": Outcome.PERMANENT,
        "403": Outcome.CONFIGURATION,
        # Mailgun returns 404 for a sender domain that the account does not have.
        "404": Outcome.CONFIGURATION,
        "413": Outcome.PERMANENT,
        "429": Outcome.RETRYABLE,
        "500": Outcome.RETRYABLE,
        "502": Outcome.RETRYABLE,
        "503": Outcome.RETRYABLE,
        "504": Outcome.RETRYABLE,
    }

    def backend_options(self) -> dict[str, Any]:
        # Without sender_domain anymail takes the domain of from_email.
        return {"sender_domain": self.config.get("sender_domain") or None}

    def error_code(self, status: int, body: Any, text: str) -> str:
        if status == 400 and MAILGUN_INVALID_RECIPIENT.search(
            self.error_text(body, text)
        ):
            return "invalid_recipient"
        return str(status)

    def error_text(self, body: Any, text: str) -> str:
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"]
        return text.strip()

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        if request.method == "POST" and not self.credentials.get("webhook_signing_key"):
            raise CallbackRejected(
                "webhook_signing_key is missing from the channel's credentials. "
                "Set it to Mailgun's HTTP webhook signing key"
            )
        return super().handle_callback(request)

    def webhook_options(self) -> dict[str, Any]:
        # api_key=None keeps anymail from reading MAILGUN_API_KEY from Django settings.
        return {
            **super().webhook_options(),
            "api_key": None,
            "webhook_signing_key": self.credentials.get("webhook_signing_key", ""),
        }

    def is_dead_address(self, event: AnymailTrackingEvent) -> bool:
        # anymail turns a temporary failure into a deferral, so a bounce here is
        # Mailgun's permanent failure. anymail maps the reasons "bounce" and
        # "suppress-bounce" to RejectReason.BOUNCED and other reasons to OTHER.
        return event.event_type == EventType.BOUNCED and event.reject_reason in (
            RejectReason.BOUNCED,
            RejectReason.INVALID,
        )


class PostmarkProvider(AnymailProvider):
    """Postmark's Email API: POST {api_url}email with X-Postmark-Server-Token."""

    key = "postmark"
    # message_stream sends on a stream other than the server's default transactional
    # stream. Marketing messages go to broadcast_stream, as Postmark requires.
    optional_config = (
        *AnymailProvider.optional_config,
        "message_stream",
        "broadcast_stream",
    )
    required_credentials = ("server_token",)
    backend_path = "anymail.backends.postmark.EmailBackend"
    default_api_url = "https://api.postmarkapp.com/"
    api_key_name = "server_token"
    webhook_view = PostmarkTrackingWebhookView

    CODES: ClassVar[dict[str, Outcome]] = {
        # anymail's per-recipient status
        "sent": Outcome.SENT,
        # "Message accepted, but delivery may be delayed."
        "queued": Outcome.SENT,
        # Postmark's ErrorCode 406 or its success message naming an inactive address:
        # the address hard bounced or complained before.
        "rejected": Outcome.INVALID_ADDRESS,
        # ErrorCode 300 naming the To address.
        "invalid": Outcome.INVALID_ADDRESS,
        # ErrorCode from the response body
        "10": Outcome.CONFIGURATION,  # bad or missing server token
        "100": Outcome.RETRYABLE,  # maintenance
        "300": Outcome.PERMANENT,  # invalid email request, not about the recipient
        "400": Outcome.CONFIGURATION,  # sender signature not found
        "401": Outcome.CONFIGURATION,  # sender signature not confirmed
        "402": Outcome.PERMANENT,  # invalid JSON
        "403": Outcome.PERMANENT,  # incompatible JSON
        "405": Outcome.CONFIGURATION,  # not allowed to send, such as no credits left
        "409": Outcome.PERMANENT,  # JSON required
        "411": Outcome.PERMANENT,  # forbidden attachment type
        "412": Outcome.CONFIGURATION,  # account pending approval
        "413": Outcome.CONFIGURATION,  # account may not send
        "429": Outcome.RETRYABLE,  # rate limit exceeded
        # HTTP status of responses without an ErrorCode
        "http_500": Outcome.RETRYABLE,
        "http_503": Outcome.RETRYABLE,
    }

    def backend_options(self) -> dict[str, Any]:
        return {
            "message_stream": self.config.get("message_stream") or None,
            "use_bulk_api": False,
            "generate_message_id": False,
        }

    def build_email(self, message: OutgoingMessage) -> EmailMultiAlternatives:
        email = super().build_email(message)
        stream = self.config.get("broadcast_stream")
        if message.marketing and stream:
            email.esp_extra = {"MessageStream": stream}  # type: ignore[attr-defined]
        return email

    def error_code(self, status: int, body: Any, text: str) -> str:
        if isinstance(body, dict) and isinstance(body.get("ErrorCode"), int):
            return str(body["ErrorCode"])
        return f"http_{status}"

    def error_text(self, body: Any, text: str) -> str:
        if isinstance(body, dict) and isinstance(body.get("Message"), str):
            return body["Message"]
        return text.strip()

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        # Postmark signs nothing, so Basic auth is its only webhook check.
        if request.method == "POST" and not self.credentials.get("webhook_username"):
            raise CallbackRejected(
                "webhook_username and webhook_password are missing from the channel's "
                "credentials. Set them to the Basic auth in Postmark's webhook URL"
            )
        return super().handle_callback(request)

    def is_dead_address(self, event: AnymailTrackingEvent) -> bool:
        # anymail gives soft and hard bounces the same reject reason, so read the
        # Type field of Postmark's bounce payload.
        bounce_type = (
            event.esp_event.get("Type") if isinstance(event.esp_event, dict) else None
        )
        return bounce_type == "HardBounce" or super().is_dead_address(event)
