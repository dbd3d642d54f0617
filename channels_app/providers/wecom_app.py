"""WeCom (企业微信) application messages to member user ids.

`POST /cgi-bin/message/send` takes up to 1000 user ids joined with "|" in `touser`,
so messages with the same content are sent together, 1000 users per request. The
reply lists the user ids that did not receive the message (`invaliduser`, user ids
in lower case), and one `msgid` for the rest.
"""
import json
from typing import Any

from wechatpy.enterprise import WeChatClient

from channels_app.providers.base import Outcome, OutgoingMessage, SendResult
from channels_app.providers.wechat_base import (
    ErrorRule,
    ThreadTokenMixin,
    TokenAuthProvider,
    Unit,
)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
MAX_USERS_PER_REQUEST = 1000
MSGTYPES = ("text", "textcard", "markdown")

# WeCom global return codes. Unlike the Official Account API, 40001 means an invalid
# secret: it is retried once with a fresh token like the other token errcodes, and
# is then a configuration error.
ERROR_CODES: dict[int, ErrorRule] = {
    -1: ErrorRule(Outcome.RETRYABLE),  # system busy
    40001: ErrorRule(Outcome.CONFIGURATION),  # invalid secret
    40014: ErrorRule(Outcome.RETRYABLE),  # invalid access_token
    42001: ErrorRule(Outcome.RETRYABLE),  # access_token expired
    40013: ErrorRule(Outcome.CONFIGURATION),  # invalid corpid
    40056: ErrorRule(Outcome.CONFIGURATION),  # invalid agentid
    48002: ErrorRule(Outcome.CONFIGURATION),  # API forbidden for this app
    60020: ErrorRule(Outcome.CONFIGURATION),  # caller IP not in the trusted list
    # Every user, party and tag in the request was invalid or outside the app's
    # visible range.
    81013: ErrorRule(Outcome.INVALID_ADDRESS),
    40003: ErrorRule(Outcome.PERMANENT),  # invalid userid
    40008: ErrorRule(Outcome.PERMANENT),  # invalid msgtype
    44004: ErrorRule(Outcome.PERMANENT),  # empty text content
    45002: ErrorRule(Outcome.PERMANENT),  # content size out of limit
    45009: ErrorRule(Outcome.RETRYABLE),  # API frequency limit
    45033: ErrorRule(Outcome.RETRYABLE),  # API concurrency limit
}


class WeComClient(ThreadTokenMixin, WeChatClient):
    pass


class WeComAppProvider(TokenAuthProvider):
    """WeCom application messages to `wecom_userid` contacts.

    Options read per message: `msgtype` (text, textcard or markdown; default from
    config, else text) and, for textcard, `url` or `click_action` and `btntxt`.
    """

    key = "wecom_app"
    kinds = ("wechat",)
    address_kinds = ("wecom_userid",)
    required_config = ("corp_id", "agent_id")
    optional_config = ("base_url", "msgtype", "concurrency")
    required_credentials = ("secret",)

    DEFAULT_BASE_URL = DEFAULT_BASE_URL
    TOKEN_PATH = "/cgi-bin/gettoken"
    ERROR_CODES = ERROR_CODES

    @classmethod
    def validate(cls, config: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
        errors = super().validate(config, credentials)
        agent_id = config.get("agent_id")
        is_integer = isinstance(agent_id, int) and not isinstance(agent_id, bool)
        if agent_id not in (None, "") and not is_integer:
            errors["config.agent_id"] = "Must be the application's integer AgentId."
        if config.get("msgtype") not in (None, *MSGTYPES):
            errors["config.msgtype"] = f"Must be one of {', '.join(MSGTYPES)}."
        return errors

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.client = WeComClient(config["corp_id"], credentials["secret"],
                                  timeout=timeout, auto_retry=False)
        self.client.API_BASE_URL = self.base_url + "/cgi-bin/"
        # Share the adapter's pooled session, which has transport retries switched off.
        self.client._http.close()
        self.client._http = self.http

    def token_owner(self) -> str:
        return f"{self.config['corp_id']}-{self.config['agent_id']}"

    def token_params(self) -> dict[str, str]:
        return {
            "corpid": str(self.config["corp_id"]),
            "corpsecret": str(self.credentials["secret"]),
        }

    def content(self, message: OutgoingMessage) -> dict[str, Any] | SendResult:
        """Build the msgtype and its object, or a PERMANENT result when that is impossible."""
        msgtype = message.options.get("msgtype") or self.config.get("msgtype") or "text"
        if msgtype == "text":
            text = f"{message.title}\n{message.body}" if message.title else message.body
            return {"msgtype": "text", "text": {"content": text}}
        if msgtype == "markdown":
            text = f"**{message.title}**\n{message.body}" if message.title else message.body
            return {"msgtype": "markdown", "markdown": {"content": text}}
        if msgtype == "textcard":
            url = message.options.get("url") or message.options.get("click_action")
            if not url:
                return SendResult(message.record_id, Outcome.PERMANENT, error_code="url_missing",
                                  error_message="A textcard needs options.url or click_action.")
            card = {"title": message.title, "description": message.body, "url": str(url)}
            if message.options.get("btntxt"):
                card["btntxt"] = str(message.options["btntxt"])
            return {"msgtype": "textcard", "textcard": card}
        return SendResult(
            message.record_id, Outcome.PERMANENT, error_code="msgtype_invalid",
            error_message=f"msgtype {msgtype!r} is not one of {', '.join(MSGTYPES)}.",
        )

    def plan(self, messages: list[OutgoingMessage]) -> tuple[list[Unit], list[SendResult]]:
        groups: dict[str, tuple[dict[str, Any], list[OutgoingMessage]]] = {}
        skipped: list[SendResult] = []
        for message in messages:
            content = self.content(message)
            if isinstance(content, SendResult):
                skipped.append(content)
                continue
            group_key = json.dumps(content, sort_keys=True, ensure_ascii=False)
            groups.setdefault(group_key, (content, []))[1].append(message)

        units = []
        for content, members in groups.values():
            chunk: list[OutgoingMessage] = []
            users: set[str] = set()
            for message in members:
                # A repeated user id shares its request slot with the earlier message.
                if message.address not in users and len(users) == MAX_USERS_PER_REQUEST:
                    units.append(Unit(chunk, content))
                    chunk, users = [], set()
                chunk.append(message)
                users.add(message.address)
            units.append(Unit(chunk, content))
        return units, skipped

    def post(self, unit: Unit, token: str) -> list[SendResult]:
        users = list(dict.fromkeys(message.address for message in unit.messages))
        self.client.use_token(token)
        reply = self.client.message.send(self.config["agent_id"], users, msg=dict(unit.payload))
        if not isinstance(reply, dict) or not reply.get("msgid"):
            return [SendResult(m.record_id, Outcome.RETRYABLE, error_code="invalid_response",
                               error_message="WeCom returned no msgid") for m in unit.messages]
        invalid = split_ids(reply.get("invaliduser"))
        unlicensed = split_ids(reply.get("unlicenseduser"))
        return [self.user_result(m, str(reply["msgid"]), invalid, unlicensed)
                for m in unit.messages]

    @staticmethod
    def user_result(message: OutgoingMessage, msgid: str, invalid: set[str],
                    unlicensed: set[str]) -> SendResult:
        user = message.address.lower()
        if user in invalid:
            return SendResult(message.record_id, Outcome.INVALID_ADDRESS, error_code="invaliduser",
                              error_message="WeCom listed the user id in invaliduser")
        if user in unlicensed:
            # The member exists but has no licence in the corp, so the address is not dead.
            return SendResult(message.record_id, Outcome.PERMANENT, error_code="unlicenseduser",
                              error_message="WeCom listed the user id in unlicenseduser")
        return SendResult(message.record_id, Outcome.SENT, provider_message_id=msgid)


def split_ids(value: Any) -> set[str]:
    """Parse a "|"-joined id list from a WeCom reply into lower-case ids."""
    if not value:
        return set()
    if isinstance(value, list):
        return {str(item).lower() for item in value}
    return {item.lower() for item in str(value).split("|") if item}
