"""Amazon SNS SMS: Publish to a phone number, one request per message, via boto3.

The text is message.body, plus an opt-out line in the message's locale for
marketing. SMSType is Promotional for marketing and Transactional otherwise (such
as verification codes). boto3's retries are off: the pipeline owns retries.

SNS accepts a Publish to a number that opted out and drops the message later. It
reports delivery only to CloudWatch Logs, not over HTTP, so this adapter takes no
callbacks.
"""

import logging
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult
from channels_app.providers.sms_common import check_concurrency, run_concurrently
from channels_app.sms import sms_length, text_with_opt_out

logger = logging.getLogger(__name__)

# Creating a boto3 session loads the service models from disk, which takes most of a
# second, so every adapter shares one. Sessions are not thread-safe; clients are.
_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def sns_client(**arguments: Any) -> Any:
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("sns", **arguments)


# Error Code from the SNS XML error body.
ERROR_CODES: dict[str, Outcome] = {
    "Throttling": Outcome.RETRYABLE,
    "ThrottlingException": Outcome.RETRYABLE,
    "Throttled": Outcome.RETRYABLE,
    "InternalError": Outcome.RETRYABLE,
    "ServiceUnavailable": Outcome.RETRYABLE,
    "KMSThrottling": Outcome.RETRYABLE,
    # Refined below: an InvalidParameter about the PhoneNumber is a dead address.
    "InvalidParameter": Outcome.PERMANENT,
    "InvalidParameterValue": Outcome.PERMANENT,
    "ParameterValueInvalid": Outcome.PERMANENT,
    "ValidationException": Outcome.PERMANENT,
    "AuthorizationError": Outcome.CONFIGURATION,
    "InvalidClientTokenId": Outcome.CONFIGURATION,
    "SignatureDoesNotMatch": Outcome.CONFIGURATION,
    "InvalidSecurity": Outcome.CONFIGURATION,
    "IncompleteSignature": Outcome.CONFIGURATION,
    "ExpiredToken": Outcome.CONFIGURATION,
    "AccessDenied": Outcome.CONFIGURATION,
    "OptInRequired": Outcome.CONFIGURATION,
    "NotFound": Outcome.CONFIGURATION,
    "KMSDisabled": Outcome.CONFIGURATION,
    "KMSNotFound": Outcome.CONFIGURATION,
    "KMSAccessDenied": Outcome.CONFIGURATION,
    "KMSInvalidState": Outcome.CONFIGURATION,
    "KMSOptInRequired": Outcome.CONFIGURATION,
}


def classify(status: int, code: str, text: str) -> Outcome:
    outcome = ERROR_CODES.get(code)
    if outcome is None:
        outcome = (
            Outcome.RETRYABLE if status >= 500 or status == 429 else Outcome.PERMANENT
        )
    # SNS returns "Invalid parameter: PhoneNumber Reason: ... is not valid to publish to".
    if code == "InvalidParameter" and "PhoneNumber" in text:
        outcome = Outcome.INVALID_ADDRESS
    return outcome


class SnsProvider(Provider):
    key = "sns"
    kinds = ("sms",)
    address_kinds = ("phone",)
    required_config = ("region",)
    optional_config = (
        "base_url",
        "sender_id",
        "max_price",
        "origination_number",
        "concurrency",
    )
    required_credentials = ("access_key_id", "secret_access_key")
    optional_credentials = ("session_token",)

    @classmethod
    def validate(
        cls, config: dict[str, Any], credentials: dict[str, Any]
    ) -> dict[str, str]:
        errors = super().validate(config, credentials)
        check_concurrency(config, errors)
        if config.get("max_price") not in (None, ""):
            try:
                Decimal(str(config["max_price"]))
            except InvalidOperation:
                errors["config.max_price"] = (
                    "Must be a price in US dollars, such as 0.05."
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
        self._client = sns_client(
            region_name=config["region"],
            endpoint_url=config.get("base_url") or None,
            aws_access_key_id=credentials["access_key_id"],
            aws_secret_access_key=credentials["secret_access_key"],
            aws_session_token=credentials.get("session_token") or None,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=timeout,
                read_timeout=timeout,
                max_pool_connections=self.concurrency,
            ),
        )

    def _attributes(self, message: OutgoingMessage) -> dict[str, dict[str, str]]:
        attributes = {
            "AWS.SNS.SMS.SMSType": {
                "DataType": "String",
                "StringValue": "Promotional" if message.marketing else "Transactional",
            },
        }
        if self.config.get("sender_id"):
            attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": str(self.config["sender_id"]),
            }
        if self.config.get("origination_number"):
            attributes["AWS.MM.SMS.OriginationNumber"] = {
                "DataType": "String",
                "StringValue": str(self.config["origination_number"]),
            }
        if self.config.get("max_price") not in (None, ""):
            attributes["AWS.SNS.SMS.MaxPrice"] = {
                "DataType": "Number",
                "StringValue": str(self.config["max_price"]),
            }
        return attributes

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results = run_concurrently(self._send_one, messages, self.concurrency)
        rejected = [r for r in results if r.outcome == Outcome.INVALID_ADDRESS]
        # SNS gives the same PhoneNumber error in a region without SMS support, so
        # a batch whose every number fails that way points at the channel instead.
        # NOTE: a batch of one cannot tell the two apart.
        if len(results) > 1 and len(rejected) == len(results):
            logger.error(
                "sns: all %d numbers were rejected as invalid; check that region %s "
                "supports SMS",
                len(results),
                self.config["region"],
            )
            for result in rejected:
                result.outcome = Outcome.CONFIGURATION
        return results

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        text = text_with_opt_out(message.body, message.marketing, message.locale)
        try:
            answer = self._client.publish(
                PhoneNumber=message.address,
                Message=text,
                MessageAttributes=self._attributes(message),
            )
        except ClientError as error:
            return self._failed(message, error)
        except BotoCoreError as error:
            return SendResult(
                message.record_id,
                Outcome.RETRYABLE,
                error_code="network",
                error_message=str(error)[:500],
            )
        return SendResult(
            message.record_id,
            Outcome.SENT,
            provider_message_id=str(answer.get("MessageId", "")),
            segments=sms_length(text).segments,
        )

    @staticmethod
    def _failed(message: OutgoingMessage, error: ClientError) -> SendResult:
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        text = str(details.get("Message", ""))
        status = int(
            error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        )
        outcome = classify(status, code, text)
        if outcome == Outcome.CONFIGURATION:
            logger.error("sns: %s (HTTP %s): %s", code, status, text)
        return SendResult(
            message.record_id,
            outcome,
            error_code=code or f"http_{status}",
            error_message=text[:500],
            response_data={"status": status},
        )

    def close(self) -> None:
        self._client.close()
