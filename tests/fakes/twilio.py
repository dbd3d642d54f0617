"""A local fake of Twilio's Programmable Messaging REST API (2010-04-01).

It takes ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` with HTTP Basic
auth (AccountSid and AuthToken) and a form body, requires To, Body and exactly one
of From and MessagingServiceSid, and returns 201 with a Message resource or an
error body ``{"code", "message", "more_info", "status"}`` with Twilio's status.

Outcomes are scripted per To number by Twilio error code. ``status_callback()``
builds the form Twilio posts to a StatusCallback, and ``signature()`` computes its
X-Twilio-Signature: base64 of HMAC-SHA1 with the AuthToken over the URL followed
by each parameter name and value, sorted by name.

``incoming_message()`` builds the form Twilio posts to a number's incoming message
webhook. Like Twilio's default STOP filtering, an opt-out keyword from a number
makes later sends to it fail with 21610 until the number sends an opt-in keyword.
Set ``stop_filtering`` to False for an account where Twilio support turned it off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.http import SUCCESS, FakeHttpServer, ReceivedRequest, billed_parts


@dataclass(frozen=True)
class TwilioFailure:
    http_status: int
    message: str


FAILURES: dict[str, TwilioFailure] = {
    "20003": TwilioFailure(401, "Authenticate"),
    "20404": TwilioFailure(404, "The requested resource was not found"),
    "20429": TwilioFailure(429, "Too Many Requests"),
    "20500": TwilioFailure(500, "An internal server error has occurred"),
    "20503": TwilioFailure(503, "Service unavailable"),
    "21211": TwilioFailure(
        400, "The 'To' number +15005550001 is not a valid phone number."
    ),
    "21408": TwilioFailure(
        400,
        "Permission to send an SMS has not been enabled for the "
        "region indicated by the 'To' number",
    ),
    "21601": TwilioFailure(
        400, "Phone number is not a valid SMS-capable inbound phone number"
    ),
    "21606": TwilioFailure(
        400,
        "The 'From' phone number provided is not a valid "
        "message-capable Twilio phone number for this destination.",
    ),
    "21608": TwilioFailure(
        400,
        "The number is unverified. Trial accounts can only send "
        "messages to verified numbers.",
    ),
    "21610": TwilioFailure(400, "Attempt to send to unsubscribed recipient"),
    "21612": TwilioFailure(
        400,
        "The 'To' phone number is not currently reachable using "
        "the 'From' phone number via SMS.",
    ),
    "21614": TwilioFailure(400, "'To' number is not a valid mobile number"),
    "21635": TwilioFailure(400, "'To' number cannot be a landline"),
    "21617": TwilioFailure(
        400, "The concatenated message body exceeds the 1600 character limit."
    ),
    "21730": TwilioFailure(503, "System under maintenance. Please try again later."),
    "30003": TwilioFailure(400, "Unreachable destination handset"),
    "30005": TwilioFailure(400, "Unknown destination handset"),
    "30006": TwilioFailure(400, "Landline or unreachable carrier"),
    "30007": TwilioFailure(400, "Message filtered"),
}


# Twilio's default keywords on long codes; only a message of exactly one counts.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})


def twilio_signature(
    key: str, url: str, params: dict[str, str], algorithm: str = "HMAC_SHA1"
) -> str:
    """Compute X-Twilio-Signature for a form POST to url.

    The key is the Auth Token (HMAC-SHA1), or a SharedKey secret with the algorithm
    that the X-Twilio-Webhooks-Signature-Settings header names.
    """
    text = url + "".join(name + params[name] for name in sorted(params))
    digest = hashlib.sha256 if algorithm == "HMAC_SHA256" else hashlib.sha1
    mac = hmac.new(key.encode(), text.encode(), digest)
    return base64.b64encode(mac.digest()).decode()


def error_body(code: str, failure: TwilioFailure) -> dict[str, Any]:
    return {
        "code": int(code),
        "message": failure.message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": failure.http_status,
    }


class FakeTwilio(FakeHttpServer):
    name = "fake-twilio"
    outcomes = frozenset(FAILURES) | {SUCCESS}

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.webhook_shared_key_id = "webhooks_sharedkey_" + secrets.token_hex(8)
        self.webhook_shared_key = secrets.token_urlsafe(32)
        self.messages: list[dict[str, Any]] = []
        # Seconds sent as Retry-After with a scripted 429, when set.
        self.retry_after: int | None = None
        self.stop_filtering = True
        # Numbers that sent an opt-out keyword and no opt-in keyword since.
        self.opted_out: set[str] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_post(
            "/2010-04-01/Accounts/{account}/Messages.json", self._create
        )

    def signature(self, url: str, params: dict[str, str]) -> str:
        return twilio_signature(self.auth_token, url, params)

    def shared_key_signature(self, url: str, params: dict[str, str]) -> str:
        return twilio_signature(self.webhook_shared_key, url, params, "HMAC_SHA256")

    def status_callback(
        self, sid: str, status: str, error_code: str = ""
    ) -> dict[str, str]:
        """Build the form Twilio posts to a message's StatusCallback."""
        message = next(m for m in self.messages if m["sid"] == sid)
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": message["from"] or "",
            "To": message["to"],
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if error_code:
            form["ErrorCode"] = error_code
        return form

    def incoming_message(
        self, sender: str, body: str, to: str = "+15005550006"
    ) -> dict[str, str]:
        """Build the form Twilio posts to the incoming message webhook of `to`."""
        keyword = body.strip().upper()
        if keyword in OPT_OUT_KEYWORDS and self.stop_filtering:
            self.opted_out.add(sender)
        elif keyword in OPT_IN_KEYWORDS:
            self.opted_out.discard(sender)
        sid = "SM" + secrets.token_hex(16)
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": sender,
            "FromCountry": "US",
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
            "ToCountry": "US",
        }

    def _authorized(self, request: web.Request, account: str) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid == account and hmac.compare_digest(
            password, self.auth_token
        )

    async def _create(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        account = request.match_info["account"]
        if not self._authorized(request, account):
            response = web.json_response(
                error_body("20003", FAILURES["20003"]), status=401
            )
        else:
            response = self._answer(account, form)
        self.record(
            ReceivedRequest(
                request.method,
                request.path,
                dict(request.headers),
                await request.read(),
                form,
                response.status,
            )
        )
        return response

    @staticmethod
    def _invalid(code: int, message: str) -> web.Response:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": 400,
        }
        return web.json_response(body, status=400)

    def _answer(self, account: str, form: dict[str, str]) -> web.Response:
        if not form.get("To"):
            return self._invalid(21604, "A 'To' phone number is required.")
        if not form.get("Body"):
            return self._invalid(21602, "Message body is required.")
        senders = [name for name in ("From", "MessagingServiceSid") if form.get(name)]
        if len(senders) != 1:
            return self._invalid(21603, "A 'From' phone number is required.")
        outcome = self.next_outcome(form["To"])
        if outcome == SUCCESS and form["To"] in self.opted_out:
            outcome = "21610"
        if outcome != SUCCESS:
            failure = FAILURES[outcome]
            headers = {}
            if failure.http_status == 429 and self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            return web.json_response(
                error_body(outcome, failure),
                status=failure.http_status,
                headers=headers,
            )
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid,
            "account_sid": account,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued" if form.get("From") else "accepted",
            "num_segments": str(billed_parts(form["Body"])),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "status_callback": form.get("StatusCallback"),
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        }
        with self._lock:
            self.messages.append(message)
        return web.json_response(
            {k: v for k, v in message.items() if k != "status_callback"}, status=201
        )
