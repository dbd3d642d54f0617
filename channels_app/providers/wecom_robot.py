"""WeCom (企业微信) group robot: posts each message into the robot's group chat.

`POST /cgi-bin/webhook/send?key=<robot key>` needs no access token: the key is the
secret, and it travels in the query string, so no URL or request error text from
this adapter is stored or logged without `redact()`. A robot accepts 20 messages
a minute; each message is one request, sent concurrently.
"""
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult
from channels_app.providers.wechat_base import (
    DEFAULT_CONCURRENCY,
    ErrorRule,
    WeChatApiError,
    failure_result,
    http_session,
    post_json,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
MSGTYPES = ("text", "markdown")
# Content limits in UTF-8 bytes from WeCom's group robot guide.
MAX_CONTENT_BYTES = {"text": 2048, "markdown": 4096}
# The robot limit is 20 messages per minute, so a rejected send waits for the minute.
RATE_LIMIT_SECONDS = 60.0

ERROR_CODES: dict[int, ErrorRule] = {
    -1: ErrorRule(Outcome.RETRYABLE),  # system busy
    93000: ErrorRule(Outcome.CONFIGURATION),  # invalid webhook url: wrong or removed key
    45009: ErrorRule(Outcome.RETRYABLE, RATE_LIMIT_SECONDS),  # over 20 messages a minute
    45033: ErrorRule(Outcome.RETRYABLE),  # API concurrency limit
    40008: ErrorRule(Outcome.PERMANENT),  # invalid msgtype
    44004: ErrorRule(Outcome.PERMANENT),  # empty content
    40058: ErrorRule(Outcome.PERMANENT),  # invalid parameter
}


def string_list(value: Any) -> list[str] | None:
    """Return a list option as strings; None when it is not a list of strings."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return value


class WeComRobotProvider(Provider):
    """WeCom group robot messages; a push names the channel itself, not a user.

    Options read per message: `msgtype` (text or markdown; default from config,
    else text), `mentioned_list` (user ids or "@all") and `mentioned_mobile_list`
    (phone numbers or "@all"). Markdown has no mention fields, so user ids from
    `mentioned_list` are written into the text as <@userid>.
    """

    key = "wecom_robot"
    kinds = ("wechat",)
    address_kinds = ()
    addresses_channel = True
    optional_config = ("base_url", "msgtype", "concurrency")
    # The value of key= in the robot's webhook URL.
    required_credentials = ("key",)

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        key = str(credentials.get("key") or "")
        if "://" in key or "key=" in key:
            errors["credentials.key"] = "Give only the key= value of the webhook URL."
        if config.get("msgtype") not in (None, *MSGTYPES):
            errors["config.msgtype"] = f"Must be one of {', '.join(MSGTYPES)}."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        base_url = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.url = base_url + "/cgi-bin/webhook/send"
        self.concurrency = int(config.get("concurrency", DEFAULT_CONCURRENCY))
        self.http = http_session(self.concurrency)
        self._pool: ThreadPoolExecutor | None = None

    def body(self, message: OutgoingMessage) -> dict[str, Any] | SendResult:
        msgtype = message.options.get("msgtype") or self.config.get("msgtype") or "text"
        if msgtype not in MSGTYPES:
            return SendResult(
                message.record_id, Outcome.PERMANENT, error_code="msgtype_invalid",
                error_message=f"msgtype {msgtype!r} is not one of {', '.join(MSGTYPES)}.",
            )
        users = string_list(message.options.get("mentioned_list"))
        mobiles = string_list(message.options.get("mentioned_mobile_list"))
        if users is None or mobiles is None:
            return SendResult(
                message.record_id, Outcome.PERMANENT, error_code="invalid_options",
                error_message="mentioned_list and mentioned_mobile_list must be lists of strings.",
            )
        if msgtype == "text":
            content: dict[str, Any] = {"content": join_title(message, message.title)}
            if users:
                content["mentioned_list"] = users
            if mobiles:
                content["mentioned_mobile_list"] = mobiles
        else:
            text = join_title(message, f"**{message.title}**" if message.title else "")
            mentions = "".join(f"<@{user}>" for user in users if user != "@all")
            content = {"content": f"{text}\n{mentions}" if mentions else text}
        size = len(content["content"].encode())
        if size > MAX_CONTENT_BYTES[msgtype]:
            return SendResult(message.record_id, Outcome.PERMANENT, error_code="content_too_long",
                              error_message=f"{msgtype} content is {size} bytes; a group robot "
                                            f"takes at most {MAX_CONTENT_BYTES[msgtype]}.")
        return {"msgtype": msgtype, msgtype: content}

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.key)
        return list(self._pool.map(self._send_one, messages))

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        body = self.body(message)
        if isinstance(body, SendResult):
            return body
        try:
            post_json(self.http, self.url, body, {"key": self.credentials["key"]}, self.timeout)
        except (WeChatApiError, requests.RequestException) as error:
            return failure_result(message.record_id, ERROR_CODES, error)
        # The robot API returns no message id; the record id keeps receipts apart.
        return SendResult(message.record_id, Outcome.SENT,
                          provider_message_id=f"wecom-robot-{message.record_id}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.http.close()


def join_title(message: OutgoingMessage, title: str) -> str:
    return f"{title}\n{message.body}" if title else message.body
