"""A local fake of Postmark's Email API on 127.0.0.1, for tests.

``POST /email`` checks what Postmark checks: the ``X-Postmark-Server-Token`` header
(401 with ErrorCode 10 otherwise), a JSON body sent as ``application/json`` with
``Accept: application/json``, a ``From`` that is a confirmed sender signature
(ErrorCode 400), a ``To`` address, and ``TextBody`` or ``HtmlBody`` (ErrorCode 300).
Errors are HTTP 422 with Postmark's ``{"ErrorCode", "Message"}`` body. The texts that
anymail parses with regular expressions (inactive and invalid addresses) match
Postmark's own wording.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from aiohttp import web

from tests.fakes.esp import SUCCESS, FakeEspServer, json_response

ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
INVALID_TOKEN = (
    "The Server Token you provided in the X-Postmark-Server-Token request header "
    "was invalid. Please verify that you are using a valid token."
)


def inactive_message(address: str) -> str:
    return (
        "You tried to send to recipient(s) that have been marked as inactive. Found "
        f"inactive addresses: {address.lower()}. Inactive recipients are ones that "
        "have generated a hard bounce, a spam complaint, or a manual suppression. "
    )


@dataclass(frozen=True)
class PostmarkFailure:
    http_status: int
    # None sends a plain-text body without an ErrorCode, as a proxy in front of the
    # API would for an outage.
    error_code: int | None
    message: str


# Scriptable outcomes with the status, ErrorCode and message Postmark sends for them.
# "inactive" and "invalid_to" take the message from the recipient address.
FAILURES: dict[str, PostmarkFailure] = {
    "10": PostmarkFailure(401, 10, INVALID_TOKEN),
    "100": PostmarkFailure(422, 100, "Maintenance"),
    "300": PostmarkFailure(
        422, 300, "Invalid metadata content. Field names must be 20 characters or less."
    ),
    "400": PostmarkFailure(
        422,
        400,
        "The 'From' address you supplied is not a Sender Signature on your account.",
    ),
    "401": PostmarkFailure(
        422, 401, "Sender signature not confirmed. Please confirm the sender signature."
    ),
    "402": PostmarkFailure(422, 402, "Received invalid JSON input."),
    "403": PostmarkFailure(422, 403, "Incompatible JSON."),
    "405": PostmarkFailure(
        422,
        405,
        "You're not allowed to send messages with this server. Out of credits.",
    ),
    "409": PostmarkFailure(422, 409, "JSON required."),
    "411": PostmarkFailure(422, 411, "Forbidden attachment type."),
    "412": PostmarkFailure(
        422,
        412,
        "While your account is pending approval, all recipients must share "
        "the same domain as the 'From' address.",
    ),
    "413": PostmarkFailure(422, 413, "Your account may not send at this time."),
    "429": PostmarkFailure(429, 429, "Rate limit exceeded."),
    "http_500": PostmarkFailure(500, None, "Internal Server Error"),
    "http_503": PostmarkFailure(503, None, "Service Unavailable"),
    # An ErrorCode that the adapter's table does not name.
    "unlisted": PostmarkFailure(422, 1101, "Temporary processing failure."),
    "inactive": PostmarkFailure(422, 406, ""),
    "invalid_to": PostmarkFailure(422, 300, ""),
}


@dataclass(frozen=True)
class PostmarkRequest:
    """One accepted message: its JSON body and request headers."""

    body: dict[str, Any]
    headers: dict[str, str]
    message_id: str

    @property
    def mime_headers(self) -> dict[str, str]:
        return {item["Name"]: item["Value"] for item in self.body.get("Headers", [])}


# Accepts the message with the text Postmark sends when its delivery is delayed.
DELAYED = "delayed"


class FakePostmark(FakeEspServer):
    OUTCOMES = frozenset(FAILURES) | {SUCCESS, DELAYED}

    def __init__(self, sender: str = "noreply@push.example.com", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sender = sender
        self.server_token = str(uuid.uuid4())
        self.messages: list[PostmarkRequest] = []

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/email", self._handle_send)

    async def _handle_send(self, request: web.Request) -> web.Response:
        self.count_request()
        token = request.headers.get("X-Postmark-Server-Token", "")
        if not hmac.compare_digest(token.encode(), self.server_token.encode()):
            return json_response(
                {"ErrorCode": 10, "Message": INVALID_TOKEN}, status=401
            )
        if (
            request.content_type != "application/json"
            or "json" not in request.headers.get("Accept", "")
        ):
            return self._error(409, "JSON required.")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(402, "Received invalid JSON input.")
        invalid = self._check_body(body)
        if invalid is not None:
            return invalid

        recipient = parseaddr(body["To"])[1]
        name, headers = self.next_outcome(recipient)
        if name not in (SUCCESS, DELAYED):
            return self._scripted_failure(name, recipient, headers)
        message_id = str(uuid.uuid4())
        with self.lock:
            self.messages.append(
                PostmarkRequest(body, dict(request.headers), message_id)
            )
        return json_response(
            {
                "To": body["To"],
                "SubmittedAt": datetime.now(UTC).isoformat(),
                "MessageID": message_id,
                "ErrorCode": 0,
                "Message": "Message accepted, but delivery may be delayed."
                if name == DELAYED
                else "OK",
            },
            headers=headers,
        )

    @staticmethod
    def _error(
        code: int,
        message: str,
        status: int = 422,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        return json_response(
            {"ErrorCode": code, "Message": message}, status=status, headers=headers
        )

    def _check_body(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self._error(403, "Incompatible JSON.")
        if parseaddr(body.get("From", ""))[1] != self.sender:
            return self._error(
                400,
                f"The 'From' address you supplied ({body.get('From')}) is not a Sender "
                "Signature on your account. Please add and confirm this address in "
                "order to be able to use it in the 'From' field of your messages.",
            )
        to = body.get("To")
        if not to:
            return self._error(300, "Zero recipients specified")
        address = parseaddr(to)[1]
        if not ADDRESS.match(address):
            return self._error(300, f"Invalid 'To' address: '{to}'.")
        if not body.get("TextBody") and not body.get("HtmlBody"):
            return self._error(
                300, "Provide either email TextBody or HtmlBody or both."
            )
        return None

    def _scripted_failure(
        self, name: str, recipient: str, headers: dict[str, str] | None
    ) -> web.Response:
        failure = FAILURES[name]
        if failure.error_code is None:
            return web.Response(
                status=failure.http_status, text=failure.message, headers=headers
            )
        message = failure.message
        if name == "inactive":
            message = inactive_message(recipient)
        elif name == "invalid_to":
            message = f"Invalid 'To' address: '{recipient}'."
        return self._error(failure.error_code, message, failure.http_status, headers)


def bounce_event(
    message_id: str, recipient: str, bounce_type: str = "HardBounce"
) -> dict[str, Any]:
    """Build Postmark's Bounce webhook body for one sent message."""
    return {
        "RecordType": "Bounce",
        "ID": secrets.randbelow(10**10),
        "Type": bounce_type,
        "TypeCode": 1 if bounce_type == "HardBounce" else 4096,
        "MessageID": message_id,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": recipient,
        "From": "noreply@push.example.com",
        "BouncedAt": "2026-06-10T04:05:06Z",
        "Inactive": bounce_type == "HardBounce",
        "MessageStream": "outbound",
        "Metadata": {},
    }


def tracking_event(record_type: str, message_id: str, recipient: str) -> dict[str, Any]:
    """Build Postmark's Delivery, Open, Click or SpamComplaint webhook body."""
    body: dict[str, Any] = {
        "RecordType": record_type,
        "MessageID": message_id,
        "MessageStream": "outbound",
        "Metadata": {},
    }
    if record_type == "Delivery":
        body.update(
            Recipient=recipient,
            DeliveredAt="2026-06-10T04:05:06Z",
            Details="Test delivery webhook details",
        )
    elif record_type in ("Open", "Click"):
        body.update(
            Recipient=recipient,
            ReceivedAt="2026-06-10T04:06:07Z",
            UserAgent="Mozilla/5.0",
        )
        if record_type == "Click":
            body.update(
                OriginalLink="https://push.example.com/orders/7", ClickLocation="HTML"
            )
    else:
        body.update(
            Email=recipient, Type="SpamComplaint", BouncedAt="2026-06-10T04:07:08Z"
        )
    return body
