"""A local fake of Mailgun's Messages API on 127.0.0.1, for tests.

``POST /v3/<domain>/messages`` checks what Mailgun checks, in its order. First comes
HTTP Basic auth with the user ``api`` and the account's API key (401 ``Forbidden``
otherwise). Then the sender domain must belong to the account (404 ``Domain not
found``). Last, the form needs ``from``, ``to``, ``subject`` and ``text`` or ``html``
(400 with Mailgun's message).
An accepted message gets Mailgun's body ``{"id": "<...>", "message": "Queued. Thank
you."}``. The form may be urlencoded or multipart, as Mailgun takes both.

``sign_event`` builds a signed tracking webhook body the way Mailgun does: an HMAC
SHA-256 of timestamp and token, keyed with the webhook signing key.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from aiohttp import BasicAuth, web

from tests.fakes.esp import SUCCESS, FakeEspServer, json_response

# A loose form of the address syntax check Mailgun applies to to, cc and bcc.
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class MailgunFailure:
    status: int
    body: dict[str, Any] | str


# Scriptable outcomes with the status and body that Mailgun sends for them.
FAILURES: dict[str, MailgunFailure] = {
    "invalid_recipient": MailgunFailure(
        400,
        {"message": "to parameter is not a valid address. please check documentation"},
    ),
    "400": MailgunFailure(
        400,
        {
            "message": "Send options (parameters starting with o:, h:, or v:) are "
            "limited to 16 kB total"
        },
    ),
    "401": MailgunFailure(401, "Forbidden"),
    "402": MailgunFailure(402, {"message": "Request failed"}),
    "403": MailgunFailure(
        403,
        {
            "message": "Domain sandbox.example.org is not allowed to send: "
            "Free accounts are for test purposes only."
        },
    ),
    "404": MailgunFailure(404, {"message": "Domain not found: mg.example.com"}),
    "413": MailgunFailure(413, "Request Entity Too Large"),
    "429": MailgunFailure(429, {"message": "Too many requests"}),
    "500": MailgunFailure(500, {"message": "Internal Server Error"}),
    "502": MailgunFailure(502, "Bad Gateway"),
    "503": MailgunFailure(503, "Service Unavailable"),
    "504": MailgunFailure(504, "Gateway Timeout"),
}


@dataclass(frozen=True)
class MailgunRequest:
    """One accepted message: the sender domain and every form field as a list."""

    domain: str
    fields: dict[str, list[str]]
    message_id: str

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    @property
    def headers(self) -> dict[str, str]:
        """Return the ``h:`` fields, which Mailgun adds as MIME headers."""
        return {
            name[2:]: values[0]
            for name, values in self.fields.items()
            if name.startswith("h:")
        }

    @property
    def variables(self) -> dict[str, str]:
        """Return the ``v:`` fields, Mailgun's custom data, which webhooks return."""
        return {
            name[2:]: values[0]
            for name, values in self.fields.items()
            if name.startswith("v:")
        }


class FakeMailgun(FakeEspServer):
    OUTCOMES = frozenset(FAILURES) | {SUCCESS}

    def __init__(self, domain: str = "mg.example.com", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.domain = domain
        self.api_key = f"key-{secrets.token_hex(16)}"
        self.signing_key = secrets.token_hex(16)
        self.messages: list[MailgunRequest] = []
        self._ids = itertools.count(1)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v3"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v3/{domain}/messages", self._handle_send)

    async def _handle_send(self, request: web.Request) -> web.Response:
        self.count_request()
        if not self._authorized(request.headers.get("Authorization", "")):
            return web.Response(status=401, text="Forbidden")
        domain = request.match_info["domain"]
        if domain != self.domain:
            return json_response({"message": f"Domain not found: {domain}"}, status=404)
        form = await request.post()
        fields: dict[str, list[str]] = {}
        for name, value in form.items():
            fields.setdefault(name, []).append(str(value))
        invalid = self._check_fields(fields)
        if invalid is not None:
            return json_response({"message": invalid}, status=400)

        recipient = parseaddr(fields["to"][0])[1]
        name, headers = self.next_outcome(recipient)
        if name != SUCCESS:
            failure = FAILURES[name]
            if isinstance(failure.body, str):
                return web.Response(
                    status=failure.status, text=failure.body, headers=headers
                )
            return json_response(failure.body, status=failure.status, headers=headers)
        message_id = (
            f"<{time.strftime('%Y%m%d%H%M%S')}.{next(self._ids)}@{self.domain}>"
        )
        with self.lock:
            self.messages.append(MailgunRequest(domain, fields, message_id))
        return json_response(
            {"id": message_id, "message": "Queued. Thank you."}, headers=headers
        )

    def _authorized(self, header: str) -> bool:
        try:
            auth = BasicAuth.decode(header)
        except ValueError:
            return False
        return auth.login == "api" and hmac.compare_digest(auth.password, self.api_key)

    @staticmethod
    def _check_fields(fields: dict[str, list[str]]) -> str | None:
        for name in ("from", "to", "subject"):
            if not fields.get(name):
                return f"{name} parameter is missing"
        if not (fields.get("text") or fields.get("html") or fields.get("template")):
            return (
                "Need at least one of 'text', 'html' or 'template' parameters specified"
            )
        for name in ("to", "cc", "bcc"):
            for value in fields.get(name, []):
                for address in value.split(","):
                    if not ADDRESS.match(parseaddr(address)[1]):
                        return f"{name} parameter is not a valid address. please check documentation"
        return None

    # Tracking webhooks

    def sign_event(
        self, event_data: dict[str, Any], signing_key: str | None = None
    ) -> dict[str, Any]:
        """Wrap event data in a webhook body signed as Mailgun signs it."""
        timestamp = str(int(time.time()))
        token = secrets.token_hex(25)
        key = (signing_key or self.signing_key).encode()
        signature = hmac.new(
            key, f"{timestamp}{token}".encode(), hashlib.sha256
        ).hexdigest()
        return {
            "signature": {
                "timestamp": timestamp,
                "token": token,
                "signature": signature,
            },
            "event-data": event_data,
        }


def event_data(
    event: str, message_id: str, recipient: str, **extra: Any
) -> dict[str, Any]:
    """Build the event-data of a Mailgun tracking webhook for one sent message."""
    return {
        "id": secrets.token_urlsafe(16),
        "timestamp": time.time(),
        "event": event,
        "recipient": recipient,
        "message": {"headers": {"message-id": message_id.strip("<>"), "to": recipient}},
        "user-variables": {},
        **extra,
    }
