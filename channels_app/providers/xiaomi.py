"""Xiaomi MiPush over its server REST API (v3, send by registration id).

One form-encoded POST to `/v3/message/regid` carries up to 1000 comma-joined regids
and returns one message id for all of them. Each result of a batch gets that id,
and receipts name the regid. Auth is the header `Authorization: key=<AppSecret>`.
The adapter sends Android notifications only.

Options read from OutgoingMessage.options:
- sound: a raw resource name in the app, sent as extra.sound_uri
  (android.resource://<package>/raw/<name>); a full URI is sent unchanged.
- click_action: an http(s) URL opens the web page (notify_effect 3, extra.web_uri);
  anything else is an intent URI for one of the app's activities (notify_effect 2,
  extra.intent_uri). Without it the app's launcher activity opens (notify_effect 1).
- channel_id: the Android notification channel (extra.channel_id); see also the
  `channel_id` and `high_priority_channel_id` config keys, which set the urgency.
- collapse_key: mapped to notify_id, so a newer message replaces an older one.
- ttl_seconds: how long MiPush keeps the message for an offline device.
icon, badge, image and buttons have no field in this API and are ignored.

Receipts: when the credentials contain `callback_secret`, each request asks MiPush
to report deliveries, clicks and invalid targets (extra.callback, with
extra.callback.type 19 = 1 | 2 | 16) to this channel's callback URL. MiPush signs
nothing in its receipts, so the secret travels as the `secret` query parameter of
that URL and handle_callback rejects a request without it.
"""
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
from django.http import HttpRequest

from channels_app.providers import batching
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

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.xmpush.xiaomi.com"
SEND_PATH = "/v3/message/regid"
MAX_TARGETS = 1000
# MiPush rejects a title of 50 characters or more and a description of 128 or more.
MAX_TITLE = 49
MAX_DESCRIPTION = 127
# Report deliveries (1), clicks (2) and invalid targets (16).
CALLBACK_TYPES = 1 | 2 | 16

# `code` from MiPush's reply, from its published server error code list.
ERROR_CODES: dict[int, Outcome] = {
    -1: Outcome.RETRYABLE,  # unknown error
    1: Outcome.RETRYABLE,  # internal error
    10001: Outcome.RETRYABLE,  # system error
    10002: Outcome.RETRYABLE,  # system busy
    10003: Outcome.RETRYABLE,  # remote service error
    10027: Outcome.RETRYABLE,  # API called too often
    10034: Outcome.RETRYABLE,  # too many messages today
    26004: Outcome.RETRYABLE,  # broadcast too frequent
    10008: Outcome.PERMANENT,  # invalid parameter
    10016: Outcome.PERMANENT,  # missing parameter
    10017: Outcome.PERMANENT,  # invalid parameter value
    21305: Outcome.PERMANENT,  # missing or invalid field
    65009: Outcome.PERMANENT,  # message too long
    65003: Outcome.PERMANENT,  # device not found for this message
    20301: Outcome.INVALID_ADDRESS,  # send failed: no valid target
    22022: Outcome.CONFIGURATION,  # package name does not belong to the app
    21301: Outcome.CONFIGURATION,  # authentication failed
    21302: Outcome.CONFIGURATION,  # token authentication failed
    22000: Outcome.CONFIGURATION,  # illegal app
    10031: Outcome.CONFIGURATION,  # app blacklisted
    10036: Outcome.CONFIGURATION,  # operation forbidden
}
# Seconds to wait after a rate or quota error; MiPush sends no Retry-After.
RETRY_AFTER: dict[int, float] = {10027: 60.0, 26004: 60.0, 10034: 3600.0}

# Receipt `type` values from MiPush's callback, mapped to our events.
RECEIPT_EVENTS: dict[int, ReceiptEvent] = {
    1: ReceiptEvent.DELIVERED,
    2: ReceiptEvent.CLICKED,
    16: ReceiptEvent.FAILED,
}


def classify(code: int) -> Outcome:
    return ERROR_CODES.get(code, Outcome.PERMANENT)


class XiaomiProvider(Provider):
    key = "xiaomi"
    kinds = ("app",)
    address_kinds = ("xiaomi",)
    required_config = ("package_name",)
    optional_config = ("base_url", "channel_id", "high_priority_channel_id")
    required_credentials = ("app_secret",)
    optional_credentials = ("callback_secret",)

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        base_url = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.endpoint = base_url + SEND_PATH
        self._client = httpx.Client(timeout=timeout)

    def form(self, batch: list[OutgoingMessage]) -> dict[str, str]:
        """Build the form fields of one send request for a batch with equal content."""
        message = batch[0]
        options = message.options
        form = {
            "registration_id": ",".join(m.address for m in batch),
            "restricted_package_name": str(self.config["package_name"]),
            "title": message.title[:MAX_TITLE],
            "description": message.body[:MAX_DESCRIPTION],
            "payload": batching.json_string(message.data),
            "pass_through": "0",
            # -1 is DEFAULT_ALL: sound, vibration and lights as the device sets them.
            "notify_type": "-1",
            "extra.notify_effect": "1",
        }
        action = str(options.get("click_action") or "")
        if action and batching.is_web_url(action):
            form["extra.notify_effect"] = "3"
            form["extra.web_uri"] = action
        elif action:
            form["extra.notify_effect"] = "2"
            form["extra.intent_uri"] = action
        sound = str(options.get("sound") or "")
        if sound:
            form["extra.sound_uri"] = (
                sound if ":" in sound
                else f"android.resource://{self.config['package_name']}/raw/{sound}"
            )
        channel = batching.android_channel(message, self.config)
        if channel:
            form["extra.channel_id"] = channel
        if options.get("collapse_key"):
            form["notify_id"] = str(batching.notify_id(str(options["collapse_key"])))
        ttl = batching.ttl_seconds(message)
        if ttl is not None:
            form["time_to_live"] = str(ttl * 1000)
        secret = self.credentials.get("callback_secret")
        if secret and self.callback_url:
            form["extra.callback"] = f"{self.callback_url}?{urlencode({'secret': secret})}"
            form["extra.callback.type"] = str(CALLBACK_TYPES)
        return form

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        batches = batching.group_batches(messages, MAX_TARGETS)
        return batching.send_batches(batches, self._send_batch)

    def _send_batch(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        try:
            form = self.form(batch)
        except (TypeError, ValueError) as error:
            return batching.invalid_options(batch, error)
        try:
            response = self._client.post(
                self.endpoint, data=form,
                headers={"Authorization": f"key={self.credentials['app_secret']}"},
            )
        except httpx.HTTPError as error:
            return batching.network_failure(batch, error)
        try:
            reply = response.json()
            code = int(reply["code"])
        except (ValueError, KeyError, TypeError):
            outcome = Outcome.RETRYABLE if response.status_code >= 500 else Outcome.PERMANENT
            if response.status_code in (401, 403):
                outcome = Outcome.CONFIGURATION
            return batching.results_for(
                batch, outcome, error_code=str(response.status_code),
                error_message=response.text[:500],
                response_data={"status": response.status_code},
            )
        if code == 0:
            return self._sent(batch, reply.get("data") or {})
        if code == 20301 and len(batch) > 1:
            # 20301 means no regid of the request was valid; single sends tell which.
            return [result for m in batch for result in self._send_batch([m])]
        message = str(reply.get("reason") or reply.get("description") or "")[:500]
        logger.warning("xiaomi: send of %d messages failed with code %s", len(batch), code)
        return batching.results_for(
            batch, classify(code), error_code=str(code), error_message=message,
            retry_after=RETRY_AFTER.get(code),
        )

    @staticmethod
    def _sent(batch: list[OutgoingMessage], data: dict[str, Any]) -> list[SendResult]:
        message_id = str(data.get("id") or "")
        bad = set(filter(None, str(data.get("bad_regids") or "").split(",")))
        results = []
        for message in batch:
            if message.address in bad:
                results.append(SendResult(
                    message.record_id, Outcome.INVALID_ADDRESS, error_code="bad_regid",
                    error_message="MiPush listed this regid in bad_regids",
                ))
            else:
                results.append(SendResult(
                    message.record_id, Outcome.SENT, provider_message_id=message_id
                ))
        return results

    def close(self) -> None:
        self._client.close()

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        secret = str(self.credentials.get("callback_secret") or "")
        given = request.GET.get("secret", "")
        if not secret:
            raise CallbackRejected("the channel has no callback_secret")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise CallbackRejected("the secret query parameter does not match")
        try:
            reports = json.loads(request.POST.get("data", ""))
        except ValueError:
            raise CallbackRejected("the data field is not JSON") from None
        if not isinstance(reports, dict):
            raise CallbackRejected("the data field is not a JSON object")
        return CallbackResult(receipts=[
            receipt for message_id, report in reports.items()
            for receipt in parse_report(str(message_id), report)
        ])


def parse_report(message_id: str, report: Any) -> list[Receipt]:
    """Turn one MiPush receipt entry into one receipt per target regid.

    An entry is {"type": n, "targets": "regid1,regid2", "param": ..., ...}. Types
    other than 1, 2 and 16 are not requested and are skipped.
    """
    # NOTE: the entry layout follows MiPush's receipt documentation as summarised by
    # community SDKs; it has not been checked against a receipt from MiPush itself.
    if not isinstance(report, dict):
        return []
    try:
        event = RECEIPT_EVENTS.get(int(report.get("type", 0)))
    except (TypeError, ValueError):
        return []
    if event is None:
        return []
    targets = [t for t in str(report.get("targets") or "").split(",") if t]
    failed = event == ReceiptEvent.FAILED
    return [
        Receipt(
            provider_message_id=message_id, event=event, address=target,
            error_code="16" if failed else "",
            error_message="invalid target" if failed else "",
            invalid_address=failed,
        )
        for target in targets
    ]
