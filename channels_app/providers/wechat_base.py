"""Shared parts of the WeChat and WeCom adapters: tokens, errcodes and HTTP.

WeChat returns HTTP 200 with a JSON body whose `errcode` is 0 on success. Both the
Official Account / Mini Program API and the WeCom API authenticate calls with an
`access_token` query parameter. The token is fetched from a token endpoint with the
app secret in the query string, so every URL these adapters build carries a secret
or a token: error texts are passed through `redact()` before they are stored.

wechatpy 1.8.18 builds the request bodies. Its own token handling is not used: it
fetches from hard-coded absolute URLs, and with `auto_retry=True` it refetches and
resends without bound on errcodes 40001, 40014 and 42001. The adapters construct it
with `auto_retry=False`, hand it a token from the shared store, and resend once.
"""
import logging
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from wechatpy.exceptions import WeChatClientException

from channels_app.providers.base import Outcome, OutgoingMessage, Provider, SendResult
from channels_app.providers.tokens import TokenWaitTimeout, shared_tokens

logger = logging.getLogger(__name__)

# Errcodes that name the access token itself: drop it, fetch another, resend once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
DEFAULT_CONCURRENCY = 16
MAX_ERROR_CHARS = 500

_SECRET_PARAMS = re.compile(
    r"((?:access_token|secret|corpsecret|key)=)[^&\s'\"]+", re.IGNORECASE
)


def redact(text: str) -> str:
    """Replace the values of secret query parameters in a URL or error text."""
    return _SECRET_PARAMS.sub(r"\1***", text)


class _RedactQueryFilter(logging.Filter):
    """Hide tokens and keys in urllib3's DEBUG lines, which print the request URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                redact(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactQueryFilter())


class WeChatApiError(Exception):
    """A non-zero errcode from a WeChat endpoint, or an HTTP or network failure."""

    def __init__(self, errcode: int | None, errmsg: str, *, http_status: int = 0) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status


# Exceptions from a token fetch: the endpoint, the network or the shared token store.
TOKEN_FETCH_ERRORS = (WeChatApiError, requests.RequestException, TokenWaitTimeout)


@dataclass(frozen=True)
class ErrorRule:
    outcome: Outcome
    # Seconds until the limit resets, when WeChat documents it.
    retry_after: float | None = None


def error_result(
    record_id: int, table: dict[int, ErrorRule], errcode: int, errmsg: str
) -> SendResult:
    """Classify one errcode through an adapter's table. Codes not in the table are permanent."""
    rule = table.get(errcode, ErrorRule(Outcome.PERMANENT))
    return SendResult(
        record_id,
        rule.outcome,
        error_code=str(errcode),
        error_message=redact(errmsg)[:MAX_ERROR_CHARS],
        retry_after=rule.retry_after,
        response_data={"errcode": errcode},
    )


def failure_result(
    record_id: int, table: dict[int, ErrorRule], error: Exception
) -> SendResult:
    """Classify an exception raised by a send or a token fetch."""
    if isinstance(error, (WeChatApiError, WeChatClientException)) and error.errcode is not None:
        return error_result(record_id, table, int(error.errcode), str(error.errmsg))
    status = http_status(error)
    if status:
        outcome = Outcome.RETRYABLE if status >= 500 or status == 429 else Outcome.PERMANENT
        return SendResult(record_id, outcome, error_code=f"http_{status}",
                          error_message=f"WeChat returned HTTP {status}")
    return SendResult(record_id, Outcome.RETRYABLE, error_code="network",
                      error_message=redact(f"{type(error).__name__}: {error}")[:MAX_ERROR_CHARS])


def sent_result(record_id: int, reply: Any, id_field: str = "msgid") -> SendResult:
    """Return SENT with the reply's message id, or RETRYABLE when the reply has none.

    wechatpy returns the decoded JSON object, or the raw response when the body is not JSON.
    """
    if isinstance(reply, dict) and reply.get(id_field) not in (None, ""):
        return SendResult(record_id, Outcome.SENT, provider_message_id=str(reply[id_field]))
    return SendResult(record_id, Outcome.RETRYABLE, error_code="invalid_response",
                      error_message=f"WeChat returned no {id_field}")


def http_status(error: Exception) -> int:
    if isinstance(error, WeChatApiError):
        return error.http_status
    response = getattr(error, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def http_session(pool_size: int) -> requests.Session:
    """Build a requests session without transport retries, because the pipeline owns retries."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0, pool_connections=1, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post_json(session: requests.Session, url: str, body: dict[str, Any],
              params: dict[str, str], timeout: float) -> dict[str, Any]:
    """POST a JSON body and return the decoded reply.

    Raises WeChatApiError for a non-zero errcode or a body that is not a JSON object.
    """
    response = session.post(url, params=params, json=body, timeout=timeout)
    return decode(response)


def decode(response: requests.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise WeChatApiError(None, f"HTTP {response.status_code}", http_status=response.status_code)
    try:
        reply = response.json()
    except ValueError:
        raise WeChatApiError(None, "the response body is not JSON", http_status=502) from None
    if not isinstance(reply, dict):
        raise WeChatApiError(None, "the response body is not a JSON object", http_status=502)
    errcode = int(reply.get("errcode") or 0)
    if errcode:
        raise WeChatApiError(errcode, str(reply.get("errmsg", "")))
    return reply


@dataclass
class Unit:
    """One request to WeChat and the messages whose outcome its reply decides."""

    messages: list[OutgoingMessage]
    payload: dict[str, Any] = field(default_factory=dict)


class TokenAuthProvider(Provider):
    """Base for adapters that call WeChat with an access token from a token endpoint.

    Subclasses set TOKEN_PATH and ERROR_CODES and implement `token_params`, `plan`
    and `post`. `send` fetches one token for the batch, posts every unit
    concurrently, and posts the units whose reply rejected the token (errcodes 40001,
    40014, 42001) once more with a freshly fetched token.
    """

    DEFAULT_BASE_URL: str
    TOKEN_PATH: str
    ERROR_CODES: dict[int, ErrorRule]

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any], timeout: float,
                 **context: str) -> None:
        super().__init__(config, credentials, timeout, **context)
        self.base_url = (config.get("base_url") or self.DEFAULT_BASE_URL).rstrip("/")
        self.concurrency = int(config.get("concurrency", DEFAULT_CONCURRENCY))
        self.http = http_session(self.concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # Subclass hooks

    def token_params(self) -> dict[str, str]:
        raise NotImplementedError

    def token_owner(self) -> str:
        """Return a stable name for the account, used when no channel key was given."""
        raise NotImplementedError

    def plan(self, messages: list[OutgoingMessage]) -> tuple[list[Unit], list[SendResult]]:
        """Build the requests for a batch, and results for messages that cannot be sent."""
        raise NotImplementedError

    def post(self, unit: Unit, token: str) -> list[SendResult]:
        """Send one unit with this token and return a result per message in it."""
        raise NotImplementedError

    # Access token

    @property
    def token_key(self) -> str:
        return f"{self.channel_key or self.key + '-' + self.token_owner()}:access_token"

    def fetch_token(self) -> tuple[str, float]:
        """Call the token endpoint at base_url and return (token, lifetime in seconds)."""
        response = self.http.get(
            self.base_url + self.TOKEN_PATH, params=self.token_params(), timeout=self.timeout
        )
        reply = decode(response)
        token = reply.get("access_token")
        if not token:
            raise WeChatApiError(None, "the token reply has no access_token", http_status=502)
        logger.info("%s: fetched an access token for %s", self.key, self.token_owner())
        return str(token), float(reply.get("expires_in") or 7200)

    def access_token(self) -> str:
        return shared_tokens().get(self.token_key, self.fetch_token)

    # Sending

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        units, results = self.plan(messages)
        if not units:
            return results
        try:
            token = self.access_token()
        except TOKEN_FETCH_ERRORS as error:
            return results + self._token_failed(units, error)

        done = self._post_all(units, token)
        stale = [unit for unit, unit_results in zip(units, done) if token_rejected(unit_results)]
        if stale:
            shared_tokens().drop(self.token_key, token)
            logger.warning("%s: WeChat rejected the access token for %d requests; "
                           "fetching a new one", self.key, len(stale))
            try:
                token = self.access_token()
            except TOKEN_FETCH_ERRORS as error:
                retried = [self._token_failed([unit], error) for unit in stale]
            else:
                retried = self._post_all(stale, token)
            replaced = dict(zip(map(id, stale), retried))
            done = [replaced.get(id(unit), unit_results) for unit, unit_results in zip(units, done)]
        return results + [result for unit_results in done for result in unit_results]

    def _post_all(self, units: list[Unit], token: str) -> list[list[SendResult]]:
        if len(units) == 1:
            return [self._post_safely(units[0], token)]
        return list(self._executor().map(lambda unit: self._post_safely(unit, token), units))

    def _post_safely(self, unit: Unit, token: str) -> list[SendResult]:
        try:
            return self.post(unit, token)
        except (WeChatApiError, WeChatClientException, requests.RequestException) as error:
            return [failure_result(m.record_id, self.ERROR_CODES, error) for m in unit.messages]

    def _token_failed(self, units: Iterable[Unit], error: Exception) -> list[SendResult]:
        results = []
        for unit in units:
            for message in unit.messages:
                result = failure_result(message.record_id, self.ERROR_CODES, error)
                if result.error_code == "network":
                    result.error_code = "token_fetch_failed"
                results.append(result)
        logger.error("%s: fetching the access token for %s failed: %s", self.key,
                     self.token_owner(), results[0].error_message if results else "")
        return results

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.key)
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        self.http.close()


def token_rejected(results: list[SendResult]) -> bool:
    return any(result.error_code in {str(code) for code in TOKEN_ERRCODES} for result in results)


class ThreadTokenMixin:
    """Makes a wechatpy client read the access token set for the calling thread.

    The base client would fetch and cache tokens itself; this keeps each worker
    thread on the token that `TokenAuthProvider.send` handed it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thread_token = threading.local()

    @property
    def access_token(self) -> str:
        return self._thread_token.value

    def use_token(self, token: str) -> None:
        self._thread_token.value = token


def template_data(message: OutgoingMessage) -> dict[str, dict[str, Any]]:
    """Build template `data`: options.data, else the task's variables, as {"value": ...}.

    A value that is already an object (such as {"value": "...", "color": "#173177"})
    is passed as it is.
    """
    source = message.options.get("data")
    if not isinstance(source, dict):
        source = message.variables
    data: dict[str, dict[str, Any]] = {}
    for name, value in source.items():
        data[str(name)] = value if isinstance(value, dict) else {"value": str(value)}
    return data


def template_id(message: OutgoingMessage, config: dict[str, Any]) -> str:
    """Pick the template: options.template_id, config template_ids by type, config template_id."""
    chosen = message.options.get("template_id")
    if not chosen:
        chosen = (config.get("template_ids") or {}).get(message.notification_type)
    return str(chosen or config.get("template_id") or "")


def missing_template(message: OutgoingMessage) -> SendResult:
    return SendResult(
        message.record_id, Outcome.PERMANENT, error_code="template_id_missing",
        error_message=(
            f"No WeChat template for notification type {message.notification_type!r}: "
            "set options.template_id, or template_ids or template_id in the channel config."
        ),
    )


def validate_template_ids(config: dict[str, Any], errors: dict[str, str]) -> None:
    ids = config.get("template_ids")
    if ids is not None and not (
        isinstance(ids, dict) and all(isinstance(v, str) and v for v in ids.values())
    ):
        errors["config.template_ids"] = "Must map notification types to template id strings."
