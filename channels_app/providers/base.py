"""The contract every provider adapter implements.

Adapters are pure with respect to our database: they take messages, talk to the
provider, and return one classified result per message. The delivery service owns
every side effect (record status, retries, deactivating addresses).
"""
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse


class Outcome(str, Enum):
    SENT = "sent"
    # Worth another attempt later, after retry_after seconds if the provider gave one.
    RETRYABLE = "retryable"
    # This message can never succeed as it is; other messages are unaffected.
    PERMANENT = "permanent"
    # The address is dead: deactivate the device or contact.
    INVALID_ADDRESS = "invalid_address"
    # The channel's configuration or credentials are wrong: every message will fail.
    CONFIGURATION = "configuration"
    # The provider delays this address for now, for example under a per-number
    # frequency limit. Send again after retry_after, without counting an attempt.
    DEFERRED = "deferred"


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message to one address.

    `options` contains the request's settings for this channel kind, such as an app
    push's icon, sound, badge, click action and buttons, an SMS template code, or a
    WeChat template id. Each adapter documents the keys it reads. `variables` are the
    task's template variables, which SMS and WeChat templates take as parameters.
    """

    record_id: int
    address: str
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    notification_type: str = ""
    # True for marketing: email adds List-Unsubscribe, SMS an opt-out line.
    marketing: bool = False
    priority: str = "normal"
    locale: str = ""
    # The device's platform (android, ios, web) for app push, else empty.
    platform: str = ""
    # Email only: the HTML part and extra headers such as List-Unsubscribe.
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendResult:
    record_id: int
    outcome: Outcome
    provider_message_id: str = ""
    error_code: str = ""
    error_message: str = ""
    retry_after: float | None = None
    response_data: dict[str, Any] = field(default_factory=dict)
    # SMS only: the billed parts, when the provider reports them.
    segments: int | None = None
    # INVALID_ADDRESS only: when the provider learnt the address was dead (APNs gives
    # it with 410). A device registered again after this moment stays active.
    invalid_since: datetime | None = None
    # The provider rejects this number because its owner opted out, for example by
    # replying STOP to Twilio. The pipeline turns off marketing SMS for the number
    # and keeps the contact active.
    recipient_opted_out: bool = False


class ReceiptEvent(str, Enum):
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    # The provider accepted the message but could not deliver it.
    FAILED = "failed"
    # The recipient reported the message as spam. The record keeps its status.
    COMPLAINED = "complained"


@dataclass(frozen=True)
class Receipt:
    """A provider callback's report about one message it accepted earlier."""

    provider_message_id: str
    event: ReceiptEvent
    # Set when one provider message id covers several addresses (a batch send).
    address: str = ""
    occurred_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""
    # The failure means the address is dead: deactivate the device or contact.
    invalid_address: bool = False


@dataclass(frozen=True)
class Reply:
    """A text message that a recipient sent back to the channel's number or signature."""

    # The sender's possible E.164 numbers. Usually one, but Aliyun reports mainland
    # numbers without the country code, so its 11-digit numbers starting with 1
    # could also be North American.
    addresses: tuple[str, ...]
    text: str
    received_at: datetime | None = None


@dataclass
class CallbackResult:
    receipts: list[Receipt] = field(default_factory=list)
    # The exact response the provider expects. None sends an empty 200.
    response: HttpResponse | None = None
    replies: list[Reply] = field(default_factory=list)


class CallbackRejected(Exception):
    """A callback failed its signature or secret check, so the endpoint returns 403."""


class ConfigurationError(Exception):
    """A channel's config or credentials are missing or malformed."""


URL_KEYS = ("base_url", "api_url", "token_uri", "token_url")
# Config keys every channel may set. tracking: false sends links and email without
# click redirects and open pixel.
COMMON_CONFIG = ("tracking",)
MAX_CONCURRENCY = 256


def common_config_problem(name: str, value: Any) -> str | None:
    """Check the config keys many adapters share: endpoints and concurrency."""
    if name in URL_KEYS:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            return "Must be an http:// or https:// URL."
    if name == "tracking" and not isinstance(value, bool):
        return "Must be true or false."
    if name == "concurrency":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
            return f"Must be a whole number from 1 to {MAX_CONCURRENCY}."
    return None


class Provider:
    """One provider account. Subclasses set `key` and `kinds` and implement `send`.

    `config` contains the channel's plain settings and `credentials` its secrets. An
    adapter never logs the secrets or puts them into an error message.
    """

    key: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    required_config: ClassVar[tuple[str, ...]] = ()
    required_credentials: ClassVar[tuple[str, ...]] = ()
    # Every key a channel may set; validate() rejects others, such as a misspelling or
    # a secret put into config, where responses would show it.
    optional_config: ClassVar[tuple[str, ...]] = ()
    optional_credentials: ClassVar[tuple[str, ...]] = ()
    # Credentials that are JSON objects rather than strings, such as a service account.
    object_credentials: ClassVar[tuple[str, ...]] = ()
    # The addresses this adapter can send to: a device provider key such as "fcm", or
    # a contact kind such as "email", "phone", "wechat_openid". An empty tuple means an
    # adapter that needs no address (a group robot) or takes any (the console).
    address_kinds: ClassVar[tuple[str, ...]] = ()
    # True when the adapter sends to the channel itself, so a push request may name
    # the channel in "channels" without any user.
    addresses_channel: ClassVar[bool] = False

    def __init__(
        self,
        config: dict[str, Any],
        credentials: dict[str, Any],
        timeout: float,
        *,
        channel_key: str = "",
        callback_url: str = "",
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.timeout = timeout
        # Names this channel in shared caches (access tokens); stable across processes.
        self.channel_key = channel_key
        # The public URL of this channel's callback endpoint, for providers that take a
        # status URL with each message (Twilio's StatusCallback).
        self.callback_url = callback_url

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        """Return a message for each missing or invalid field, keyed by field path."""
        errors = {}
        for name in cls.required_config:
            if config.get(name) in (None, ""):
                errors[f"config.{name}"] = "This field is required."
        for name in cls.required_credentials:
            if credentials.get(name) in (None, ""):
                errors[f"credentials.{name}"] = "This field is required."
        for name, value in config.items():
            problem = common_config_problem(name, value)
            if problem:
                errors.setdefault(f"config.{name}", problem)
        for name, value in credentials.items():
            if name not in cls.object_credentials and not isinstance(value, str):
                errors.setdefault(f"credentials.{name}", "Must be a string.")
        allowed_config = {*cls.required_config, *cls.optional_config, *COMMON_CONFIG}
        for name in sorted(set(config) - allowed_config):
            errors[f"config.{name}"] = (
                f"Unknown key for provider {cls.key!r}; allowed: "
                f"{', '.join(sorted(allowed_config)) or 'none'}."
            )
        allowed_credentials = {*cls.required_credentials, *cls.optional_credentials}
        for name in sorted(set(credentials) - allowed_credentials):
            errors[f"credentials.{name}"] = (
                f"Unknown key for provider {cls.key!r}; allowed: "
                f"{', '.join(sorted(allowed_credentials)) or 'none'}."
            )
        return errors

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        """Send a batch and return one result per message, in any order.

        Raises nothing for provider errors: each one becomes a classified result.
        """
        raise NotImplementedError

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        """Check and parse one callback request from the provider.

        Status reports become receipts, and text messages that recipients sent to
        the channel's number become replies.

        Raises CallbackRejected when a signature or secret does not match. Adapters
        whose provider sends no callbacks keep this default, and the endpoint returns 404.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the adapter may not be used afterwards."""
