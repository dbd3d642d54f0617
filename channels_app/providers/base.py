"""The contract every provider adapter implements.

Adapters are pure with respect to our database: they take messages, talk to the
provider, and return one classified result per message. The delivery service owns
every side effect (record status, retries, deactivating addresses).
"""
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar


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


@dataclass(frozen=True)
class OutgoingMessage:
    record_id: int
    address: str
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendResult:
    record_id: int
    outcome: Outcome
    provider_message_id: str = ""
    error_code: str = ""
    error_message: str = ""
    retry_after: float | None = None
    response_data: dict[str, Any] = field(default_factory=dict)


class ConfigurationError(Exception):
    """A channel's config or credentials are missing or malformed."""


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

    def __init__(
        self, config: dict[str, Any], credentials: dict[str, Any], timeout: float
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.timeout = timeout

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
        allowed_config = {*cls.required_config, *cls.optional_config}
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

    def close(self) -> None:
        """Release connections; the adapter may not be used afterwards."""
