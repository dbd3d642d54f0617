"""Twilio Programmable Messaging through the twilio SDK.

Twilio takes one message per request, so a batch goes out from a small thread pool
over the SDK's pooled requests session. The text is message.body, plus an opt-out
line in the message's locale for marketing. Each message names this channel's
callback URL as StatusCallback, so Twilio reports delivery there.

Set the same URL as the number's (or Messaging Service's) incoming message webhook:
replies such as STOP and START then arrive there as well. The response is empty
TwiML, so Twilio sends nothing back beyond its own opt-out confirmation.

The client ignores TWILIO_REGION and TWILIO_EDGE: they would rewrite the API host,
and with it a configured base_url, into another region's host name.
"""

import logging
import threading
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from channels_app.providers.base import (
    CallbackRejected,
    CallbackResult,
    Outcome,
    OutgoingMessage,
    Provider,
    Receipt,
    ReceiptEvent,
    Reply,
    SendResult,
)
from channels_app.providers.sms_common import check_concurrency, run_concurrently
from channels_app.sms import sms_length, text_with_opt_out

logger = logging.getLogger(__name__)

# Twilio error code from the error body (TwilioRestException.code).
ERROR_CODES: dict[int, Outcome] = {
    20003: Outcome.CONFIGURATION,  # authentication failed
    20404: Outcome.CONFIGURATION,  # account or resource not found
    20429: Outcome.RETRYABLE,  # too many requests
    20500: Outcome.RETRYABLE,  # internal server error
    20503: Outcome.RETRYABLE,  # service unavailable
    21211: Outcome.INVALID_ADDRESS,  # invalid To number
    21408: Outcome.CONFIGURATION,  # permission to send to this region not enabled
    21601: Outcome.CONFIGURATION,  # From is not an SMS-capable number of the account
    21606: Outcome.CONFIGURATION,  # From number cannot send SMS
    21608: Outcome.PERMANENT,  # trial accounts send only to verified numbers
    # The recipient replied STOP, so Twilio rejects every message to it until START.
    # The number still works: the pipeline turns off marketing SMS for it instead of
    # deactivating the contact.
    21610: Outcome.PERMANENT,
    21612: Outcome.PERMANENT,  # no route between From and To
    21614: Outcome.INVALID_ADDRESS,  # To is not a mobile number
    21635: Outcome.INVALID_ADDRESS,  # To is a landline
    21617: Outcome.PERMANENT,  # body longer than 1600 characters
    21730: Outcome.RETRYABLE,  # system under maintenance
    30003: Outcome.INVALID_ADDRESS,  # unreachable handset
    30005: Outcome.INVALID_ADDRESS,  # unknown destination handset
    30006: Outcome.INVALID_ADDRESS,  # landline or unreachable carrier
    30007: Outcome.PERMANENT,  # filtered as spam by the carrier
}
# Send errors that mean the recipient opted out of messages from this sender.
OPTED_OUT_CODES = frozenset({21610})
# Delivery failures in a status callback that mean the number cannot take SMS.
DEAD_NUMBER_CODES = frozenset({"30003", "30005", "30006"})
DELIVERED_STATUSES = frozenset({"delivered"})
# Read receipts, which WhatsApp and RCS messages can report.
READ_STATUSES = frozenset({"read"})
FAILED_STATUSES = frozenset({"undelivered", "failed"})


def is_incoming_message(form: Any) -> bool:
    """Tell Twilio's incoming message webhook from a status callback.

    Status callbacks carry MessageStatus. An incoming message carries Body and
    reports SmsStatus "received".
    """
    if form.get("MessageStatus"):
        return False
    return "Body" in form or form.get("SmsStatus") == "received"


class HeaderRecordingHttpClient(TwilioHttpClient):
    """Keep each thread's last response headers, which TwilioRestException lacks."""

    def __init__(self, **arguments: Any) -> None:
        super().__init__(**arguments)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        self._local.headers = response.headers
        return response

    def retry_after(self) -> float | None:
        """Return the last response's Retry-After in seconds, if it had one."""
        headers = getattr(self._local, "headers", None) or {}
        try:
            return max(float(headers.get("Retry-After", "")), 0.0)
        except ValueError:
            return None


def classify(status: int, code: int | None) -> Outcome:
    if code is not None and code in ERROR_CODES:
        return ERROR_CODES[code]
    if status == 429 or status >= 500:
        return Outcome.RETRYABLE
    if status in (401, 403):
        return Outcome.CONFIGURATION
    return Outcome.PERMANENT


class TwilioProvider(Provider):
    key = "twilio"
    kinds = ("sms",)
    address_kinds = ("phone",)
    required_credentials = ("account_sid", "auth_token")
    # The secret of a webhook SharedKey, for callbacks signed with it instead of the
    # Auth Token.
    optional_credentials = ("webhook_shared_key",)
    optional_config = (
        "from_number",
        "messaging_service_sid",
        "base_url",
        "concurrency",
    )

    @classmethod
    def validate(
        cls, config: dict[str, Any], credentials: dict[str, Any]
    ) -> dict[str, str]:
        errors = super().validate(config, credentials)
        check_concurrency(config, errors)
        senders = [
            name
            for name in ("from_number", "messaging_service_sid")
            if config.get(name)
        ]
        if len(senders) != 1:
            errors["config.from_number"] = (
                "Set exactly one of from_number and messaging_service_sid."
            )
        return errors

    def __init__(
        self,
        config: dict[str, Any],
        credentials: dict[str, Any],
        timeout: float,
        **context: str,
    ) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.concurrency = int(config.get("concurrency", 16))
        self._http_client = HeaderRecordingHttpClient(timeout=timeout, max_retries=0)
        self._client = Client(
            credentials["account_sid"],
            credentials["auth_token"],
            http_client=self._http_client,
        )
        # The constructor falls back to TWILIO_REGION and TWILIO_EDGE from os.environ.
        self._client.region = None
        self._client.edge = None
        if config.get("base_url"):
            self._client.api.base_url = config["base_url"].rstrip("/")

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        return run_concurrently(self._send_one, messages, self.concurrency)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        text = text_with_opt_out(message.body, message.marketing, message.locale)
        fields: dict[str, Any] = {"to": message.address, "body": text}
        if self.config.get("messaging_service_sid"):
            fields["messaging_service_sid"] = self.config["messaging_service_sid"]
        else:
            fields["from_"] = self.config["from_number"]
        if self.callback_url:
            fields["status_callback"] = self.callback_url
        try:
            created = self._client.messages.create(**fields)
        except TwilioRestException as error:
            return self._failed(message, error)
        except (TwilioException, OSError) as error:
            return SendResult(
                message.record_id,
                Outcome.RETRYABLE,
                error_code="network",
                error_message=str(error)[:500] or type(error).__name__,
            )
        try:
            segments = int(created.num_segments)
        except (TypeError, ValueError):
            segments = sms_length(text).segments
        return SendResult(
            message.record_id,
            Outcome.SENT,
            provider_message_id=created.sid or "",
            segments=segments,
        )

    def _failed(
        self, message: OutgoingMessage, error: TwilioRestException
    ) -> SendResult:
        code = error.code if isinstance(error.code, int) else None
        outcome = classify(error.status, code)
        if outcome == Outcome.CONFIGURATION:
            logger.error(
                "twilio: error %s (HTTP %s): %s", code, error.status, error.msg
            )
        return SendResult(
            message.record_id,
            outcome,
            error_code=str(code or error.status),
            error_message=str(error.msg)[:500],
            retry_after=self._http_client.retry_after(),
            response_data={"status": error.status},
            recipient_opted_out=code in OPTED_OUT_CODES,
        )

    # Status callbacks and incoming messages

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        """Check the signature, then parse a status callback or an incoming message.

        Raises CallbackRejected when X-Twilio-Signature does not match.
        """
        # Twilio signs the URL it called. Behind a reverse proxy that is the public
        # URL, not the host and scheme this process receives.
        url = settings.PUSH_PUBLIC_BASE_URL + request.get_full_path()
        signature = request.headers.get("X-Twilio-Signature", "")
        key, algorithm = self._signing_key(
            request.headers.get(SIGNATURE_SETTINGS_HEADER)
        )
        validator = RequestValidator(key)
        if not signature or not validator.validate(
            url, request.POST, signature, algorithm
        ):
            raise CallbackRejected("X-Twilio-Signature does not match")
        if is_incoming_message(request.POST):
            return self._incoming(request.POST)
        receipt = self._receipt(request.POST)
        return CallbackResult([receipt] if receipt else [])

    @staticmethod
    def _incoming(form: Any) -> CallbackResult:
        """Turn an incoming message into a reply, and respond with empty TwiML."""
        sender = form.get("From", "")
        replies = [Reply((sender,), form.get("Body", ""))] if sender else []
        response = HttpResponse(str(MessagingResponse()), content_type="text/xml")
        return CallbackResult(replies=replies, response=response)

    def _signing_key(self, settings_header: str | None) -> tuple[str, str]:
        """Return the key and algorithm a callback was signed with.

        Without the signature settings header Twilio signs with the Auth Token and
        HMAC-SHA1. With it, the header names a SharedKey and its algorithm.
        """
        if not settings_header:
            return self.credentials["auth_token"], HMAC_SHA1
        shared_key = self.credentials.get("webhook_shared_key")
        if not shared_key:
            raise CallbackRejected(
                "the callback is signed with a SharedKey, but the channel has no "
                "credentials.webhook_shared_key"
            )
        return shared_key, get_signature_algorithm(settings_header)

    @staticmethod
    def _receipt(form: Any) -> Receipt | None:
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        status = form.get("MessageStatus") or form.get("SmsStatus") or ""
        if not sid:
            return None
        if status in DELIVERED_STATUSES:
            return Receipt(sid, ReceiptEvent.DELIVERED)
        if status in READ_STATUSES:
            return Receipt(sid, ReceiptEvent.OPENED)
        if status in FAILED_STATUSES:
            code = form.get("ErrorCode", "")
            return Receipt(
                sid,
                ReceiptEvent.FAILED,
                error_code=code,
                error_message=form.get("ErrorMessage", "") or status,
                invalid_address=code in DEAD_NUMBER_CODES,
            )
        return None

    def close(self) -> None:
        session = getattr(self._client.http_client, "session", None)
        if session is not None:
            session.close()
