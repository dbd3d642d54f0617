"""WeChat Official Account template messages, and their delivery reports.

`POST /cgi-bin/message/template/send` takes one openid per request, so a batch is
sent concurrently over one pooled requests session. WeChat reports the outcome of
each accepted message later with a TEMPLATESENDJOBFINISH event to the account's
server URL, which `handle_callback` turns into receipts. Callbacks are read in
plaintext, compatible and safe (AES-encrypted) mode; safe mode needs the
callback_aes_key credential.
"""
import base64
import binascii
import hmac
import logging
import struct
from datetime import datetime, timezone
from typing import Any
from xml.parsers.expat import ExpatError

from django.http import HttpRequest, HttpResponse
from wechatpy import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import TemplateSendJobFinishEvent
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.parser import parse_message
from wechatpy.utils import WeChatSigner

from channels_app.providers.base import (
    CallbackRejected,
    CallbackResult,
    Outcome,
    OutgoingMessage,
    Receipt,
    ReceiptEvent,
    SendResult,
)
from channels_app.providers.wechat_base import (
    ErrorRule,
    ThreadTokenMixin,
    TokenAuthProvider,
    Unit,
    missing_template,
    sent_result,
    template_data,
    template_id,
    validate_template_ids,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.weixin.qq.com"

# Official Account errcodes from the global return code list and the template
# message guide. A token errcode reaches this table only after one resend with a
# fresh token, so 40001 then means a wrong AppSecret or another system refreshing
# the same account's token.
ERROR_CODES: dict[int, ErrorRule] = {
    -1: ErrorRule(Outcome.RETRYABLE),  # system error, try again later
    40001: ErrorRule(Outcome.CONFIGURATION),  # invalid credential / AppSecret
    40014: ErrorRule(Outcome.RETRYABLE),  # invalid access_token
    42001: ErrorRule(Outcome.RETRYABLE),  # access_token expired
    40013: ErrorRule(Outcome.CONFIGURATION),  # invalid appid
    40125: ErrorRule(Outcome.CONFIGURATION),  # invalid appsecret
    40164: ErrorRule(Outcome.CONFIGURATION),  # caller IP not in the whitelist
    48001: ErrorRule(Outcome.CONFIGURATION),  # API not authorised for this account
    48004: ErrorRule(Outcome.CONFIGURATION),  # API banned for irregularities
    40003: ErrorRule(Outcome.INVALID_ADDRESS),  # invalid openid
    43004: ErrorRule(Outcome.INVALID_ADDRESS),  # require subscribe: user unfollowed
    43101: ErrorRule(Outcome.PERMANENT),  # user refused: never retried
    50002: ErrorRule(Outcome.INVALID_ADDRESS),  # user limited: frozen or closed account
    40037: ErrorRule(Outcome.CONFIGURATION),  # invalid template_id
    47003: ErrorRule(Outcome.PERMANENT),  # template data does not match the template
    47001: ErrorRule(Outcome.PERMANENT),  # data format error
    45002: ErrorRule(Outcome.PERMANENT),  # content size out of limit
    40066: ErrorRule(Outcome.PERMANENT),  # invalid url
    45009: ErrorRule(Outcome.RETRYABLE),  # daily API quota reached
    45011: ErrorRule(Outcome.RETRYABLE, 60.0),  # minute quota reached, retry next minute
}

# Status values of the TEMPLATESENDJOBFINISH event.
STATUS_SUCCESS = "success"
STATUS_USER_BLOCK = "failed:user block"


class TemplateClient(ThreadTokenMixin, WeChatClient):
    pass


class WeChatTemplateProvider(TokenAuthProvider):
    """Official Account template messages to `wechat_openid` contacts.

    Options read per message: `template_id`, `data` (keyword to value), `url` or
    `click_action`, and `miniprogram` ({"appid", "pagepath"}).
    """

    key = "wechat_template"
    kinds = ("wechat",)
    address_kinds = ("wechat_openid",)
    required_config = ("app_id",)
    optional_config = ("base_url", "template_id", "template_ids", "concurrency")
    required_credentials = ("app_secret",)
    # The Token and EncodingAESKey of the account's server configuration: the token
    # signs every callback, and the key decrypts callbacks in safe mode.
    optional_credentials = ("callback_token", "callback_aes_key")

    DEFAULT_BASE_URL = DEFAULT_BASE_URL
    TOKEN_PATH = "/cgi-bin/token"
    ERROR_CODES = ERROR_CODES

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        validate_template_ids(config, errors)
        aes_key = credentials.get("callback_aes_key")
        if aes_key is not None and not valid_aes_key(aes_key):
            errors["credentials.callback_aes_key"] = (
                "Must be the 43-character EncodingAESKey from the account's server configuration."
            )
        if aes_key and not credentials.get("callback_token"):
            errors["credentials.callback_token"] = "Required with callback_aes_key."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.client = TemplateClient(config["app_id"], credentials["app_secret"],
                                     timeout=timeout, auto_retry=False)
        self.client.API_BASE_URL = self.base_url + "/cgi-bin/"
        # Share the adapter's pooled session, which has transport retries switched off.
        self.client._http.close()
        self.client._http = self.http

    def token_owner(self) -> str:
        return str(self.config["app_id"])

    def token_params(self) -> dict[str, str]:
        return {
            "grant_type": "client_credential",
            "appid": str(self.config["app_id"]),
            "secret": str(self.credentials["app_secret"]),
        }

    def plan(self, messages: list[OutgoingMessage]) -> tuple[list[Unit], list[SendResult]]:
        units, skipped = [], []
        for message in messages:
            chosen = template_id(message, self.config)
            if not chosen:
                skipped.append(missing_template(message))
                continue
            options = message.options
            payload = {
                "template_id": chosen,
                "data": template_data(message),
                "url": options.get("url") or options.get("click_action") or None,
                "mini_program": options.get("miniprogram") or None,
            }
            units.append(Unit([message], payload))
        return units, skipped

    def post(self, unit: Unit, token: str) -> list[SendResult]:
        [message] = unit.messages
        self.client.use_token(token)
        reply = self.client.message.send_template(message.address, **unit.payload)
        return [sent_result(message.record_id, reply)]

    # Delivery reports

    def handle_callback(self, request: HttpRequest) -> CallbackResult:
        self._check_signature(request)
        if request.method == "GET":
            # Server URL verification: echo echostr back.
            return CallbackResult([], HttpResponse(request.GET.get("echostr", ""),
                                                   content_type="text/plain"))
        acknowledged = HttpResponse("success", content_type="text/plain")
        body: bytes | str = request.body
        if request.GET.get("encrypt_type") == "aes":
            if not self.credentials.get("callback_aes_key"):
                logger.warning("%s: dropped an encrypted callback because the channel has no "
                               "callback_aes_key credential", self.key)
                return CallbackResult([], acknowledged)
            body = self._decrypt(request)
        try:
            event = parse_message(body)
        except (ExpatError, KeyError, TypeError, ValueError) as error:
            logger.warning("%s: ignored an unreadable callback body: %s", self.key, error)
            return CallbackResult([], acknowledged)
        if not isinstance(event, TemplateSendJobFinishEvent):
            return CallbackResult([], acknowledged)
        return CallbackResult([receipt_for(event)], acknowledged)

    def _decrypt(self, request: HttpRequest) -> str:
        """Decrypt a safe-mode callback body, checking msg_signature and the app id."""
        crypto = WeChatCrypto(self.credentials["callback_token"],
                              self.credentials["callback_aes_key"], self.config["app_id"])
        try:
            return crypto.decrypt_message(
                request.body, request.GET.get("msg_signature", ""),
                request.GET.get("timestamp", ""), request.GET.get("nonce", ""),
            )
        except InvalidSignatureException:
            raise CallbackRejected("the msg_signature does not match the encrypted body") from None
        except InvalidAppIdException:
            raise CallbackRejected("the encrypted body names another app id") from None
        except (ExpatError, KeyError, TypeError, ValueError, IndexError, struct.error) as error:
            raise CallbackRejected(f"the encrypted body cannot be decrypted: {error}") from None

    def _check_signature(self, request: HttpRequest) -> None:
        token = self.credentials.get("callback_token")
        if not token:
            raise CallbackRejected("the channel has no callback_token credential")
        signer = WeChatSigner()
        signer.add_data(token, request.GET.get("timestamp", ""), request.GET.get("nonce", ""))
        # wechatpy's check_signature compares with !=, so compare in constant time here.
        received = request.GET.get("signature", "").encode()
        if not hmac.compare_digest(signer.signature.encode(), received):
            raise CallbackRejected("the signature does not match the callback token")


def valid_aes_key(value: Any) -> bool:
    """Check that an EncodingAESKey is 43 characters of Base64 for a 32-byte AES key."""
    if not isinstance(value, str) or len(value) != 43:
        return False
    try:
        return len(base64.b64decode(value + "=", validate=True)) == 32
    except binascii.Error:
        return False


def receipt_for(event: TemplateSendJobFinishEvent) -> Receipt:
    occurred_at = datetime.fromtimestamp(event.time, tz=timezone.utc) if event.time else None
    status = (event.status or "").strip()
    if status == STATUS_SUCCESS:
        return Receipt(str(event.id), ReceiptEvent.DELIVERED, occurred_at=occurred_at)
    # "failed:user block" means the user refused this account's messages.
    blocked = status.replace(" ", "") == STATUS_USER_BLOCK.replace(" ", "")
    return Receipt(str(event.id), ReceiptEvent.FAILED, occurred_at=occurred_at,
                   error_code=status, error_message="WeChat reported the message undelivered",
                   invalid_address=blocked)
