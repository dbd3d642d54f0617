"""WeChat Mini Program subscribe messages.

`POST /cgi-bin/message/subscribe/send` takes one openid per request, so a batch is
sent concurrently. wechatpy 1.8.18's `wxa.send_subscribe_message` has no
`miniprogram_state` or `lang` arguments, so the body is posted through the
client's generic `post`, which still adds the access token and decodes errcodes.
"""
from typing import Any

from wechatpy import WeChatClient

from channels_app.providers.base import Outcome, OutgoingMessage, SendResult
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

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGUAGES = ("zh_CN", "en_US", "zh_HK", "zh_TW")

# Mini Program errcodes from the global return code list and the subscribeMessage.send
# reference. A token errcode reaches this table only after one resend with a fresh
# token.
ERROR_CODES: dict[int, ErrorRule] = {
    -1: ErrorRule(Outcome.RETRYABLE),  # system error
    40001: ErrorRule(Outcome.CONFIGURATION),  # invalid credential / AppSecret
    40014: ErrorRule(Outcome.RETRYABLE),  # invalid access_token
    42001: ErrorRule(Outcome.RETRYABLE),  # access_token expired
    40013: ErrorRule(Outcome.CONFIGURATION),  # invalid appid
    40125: ErrorRule(Outcome.CONFIGURATION),  # invalid appsecret
    40164: ErrorRule(Outcome.CONFIGURATION),  # caller IP not in the whitelist
    48001: ErrorRule(Outcome.CONFIGURATION),  # API not authorised
    43107: ErrorRule(Outcome.CONFIGURATION),  # subscribe messages or this template banned
    40037: ErrorRule(Outcome.CONFIGURATION),  # invalid template_id
    40003: ErrorRule(Outcome.INVALID_ADDRESS),  # invalid openid
    # The user has no subscription left for this template (each accepted request
    # allows one message). The openid stays valid, so this is not an address failure.
    43101: ErrorRule(Outcome.PERMANENT),
    47003: ErrorRule(Outcome.PERMANENT),  # data does not match the template's keywords
    41030: ErrorRule(Outcome.PERMANENT),  # invalid page
    45168: ErrorRule(Outcome.PERMANENT),  # sensitive words in the content
    43108: ErrorRule(Outcome.RETRYABLE),  # concurrent sending error
    45009: ErrorRule(Outcome.RETRYABLE),  # daily API quota reached
    45011: ErrorRule(Outcome.RETRYABLE, 60.0),  # minute quota reached, retry next minute
}


class SubscribeClient(ThreadTokenMixin, WeChatClient):
    pass


def wechat_lang(locale: str) -> str:
    """Map a locale such as "en", "zh-TW" or "zh_HK" to one of WeChat's four `lang` values."""
    normalised = locale.replace("-", "_").lower()
    if normalised.startswith("en"):
        return "en_US"
    if normalised in ("zh_tw", "zh_hant", "zh_hant_tw"):
        return "zh_TW"
    if normalised in ("zh_hk", "zh_hant_hk", "zh_mo"):
        return "zh_HK"
    return "zh_CN"


class WeChatSubscribeProvider(TokenAuthProvider):
    """Mini Program subscribe messages to `miniapp_openid` contacts.

    Options read per message: `template_id`, `data`, `page`, `miniprogram_state`
    (developer, trial or formal) and `lang`. Without `lang`, the message's locale
    picks one.
    """

    key = "wechat_subscribe"
    kinds = ("wechat",)
    address_kinds = ("miniapp_openid",)
    required_config = ("app_id",)
    optional_config = (
        "base_url", "template_id", "template_ids", "miniprogram_state", "lang", "concurrency",
    )
    required_credentials = ("app_secret",)

    DEFAULT_BASE_URL = DEFAULT_BASE_URL
    TOKEN_PATH = "/cgi-bin/token"
    ERROR_CODES = ERROR_CODES

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        validate_template_ids(config, errors)
        if config.get("miniprogram_state") not in (None, *MINIPROGRAM_STATES):
            errors["config.miniprogram_state"] = f"Must be one of {', '.join(MINIPROGRAM_STATES)}."
        if config.get("lang") not in (None, *LANGUAGES):
            errors["config.lang"] = f"Must be one of {', '.join(LANGUAGES)}."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.client = SubscribeClient(config["app_id"], credentials["app_secret"],
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
            units.append(Unit([message], self.body(message, chosen)))
        return units, skipped

    def body(self, message: OutgoingMessage, chosen_template: str) -> dict[str, Any]:
        options = message.options
        body: dict[str, Any] = {
            "touser": message.address,
            "template_id": chosen_template,
            "data": template_data(message),
            "miniprogram_state": (
                options.get("miniprogram_state") or self.config.get("miniprogram_state")
                or "formal"
            ),
            "lang": options.get("lang") or self.config.get("lang") or wechat_lang(message.locale),
        }
        if options.get("page"):
            body["page"] = str(options["page"])
        return body

    def post(self, unit: Unit, token: str) -> list[SendResult]:
        [message] = unit.messages
        self.client.use_token(token)
        reply = self.client.post("message/subscribe/send", data=unit.payload)
        return [sent_result(message.record_id, reply)]
