"""A local fake of Amazon SNS's query API for SMS: Action=Publish with PhoneNumber.

It recomputes the AWS Signature Version 4 of every request from the method, path,
query, signed headers and body with the access key's secret. It returns SNS's XML
bodies: ``PublishResponse`` with a MessageId, or ``ErrorResponse`` with Type, Code
and Message under SNS's HTTP status. It checks the E.164 PhoneNumber, a
non-empty Message of at most 1600 bytes, and the SMS message attributes
(AWS.SNS.SMS.SMSType, SenderID, MaxPrice).

Outcomes are scripted per phone number by error Code. A number in ``opted_out`` is
accepted and not delivered, as SNS does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from aiohttp import web

from tests.fakes.http import SUCCESS, FakeHttpServer, ReceivedRequest

NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9-]{3,11}$")
MAX_MESSAGE_BYTES = 1600
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<headers>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class SnsFailure:
    http_status: int
    kind: str
    message: str


FAILURES: dict[str, SnsFailure] = {
    "Throttling": SnsFailure(400, "Sender", "Rate exceeded"),
    "ThrottlingException": SnsFailure(400, "Sender", "Rate exceeded"),
    "Throttled": SnsFailure(429, "Sender", "Rate exceeded"),
    "InternalError": SnsFailure(500, "Receiver", "Internal Error"),
    "ServiceUnavailable": SnsFailure(503, "Receiver", "Service Unavailable"),
    "KMSThrottling": SnsFailure(400, "Sender", "KMS request throttled"),
    "InvalidParameter": SnsFailure(
        400,
        "Sender",
        "Invalid parameter: PhoneNumber Reason: +10000000000 is not valid to publish to",
    ),
    "InvalidParameterValue": SnsFailure(400, "Sender", "Invalid parameter value"),
    "ParameterValueInvalid": SnsFailure(
        400, "Sender", "Invalid value for a message attribute"
    ),
    "ValidationException": SnsFailure(400, "Sender", "Message too long"),
    "AuthorizationError": SnsFailure(
        403, "Sender", "User is not authorized to perform: SNS:Publish on resource: +1"
    ),
    "InvalidClientTokenId": SnsFailure(
        403, "Sender", "The security token included in the request is invalid."
    ),
    "SignatureDoesNotMatch": SnsFailure(
        403,
        "Sender",
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.",
    ),
    "InvalidSecurity": SnsFailure(
        403, "Sender", "The request was not made over HTTPS."
    ),
    "IncompleteSignature": SnsFailure(
        400, "Sender", "The request signature is incomplete."
    ),
    "ExpiredToken": SnsFailure(
        403, "Sender", "The security token included in the request is expired"
    ),
    "AccessDenied": SnsFailure(403, "Sender", "Access denied"),
    "OptInRequired": SnsFailure(
        403, "Sender", "The AWS access key ID needs a subscription."
    ),
    "NotFound": SnsFailure(404, "Sender", "Resource not found"),
    "KMSDisabled": SnsFailure(400, "Sender", "The KMS key is disabled."),
    "KMSNotFound": SnsFailure(400, "Sender", "The KMS key was not found."),
    "KMSAccessDenied": SnsFailure(400, "Sender", "Access to the KMS key was denied."),
    "KMSInvalidState": SnsFailure(400, "Sender", "The KMS key is in an invalid state."),
    "KMSOptInRequired": SnsFailure(403, "Sender", "The KMS key needs a subscription."),
}
# An InvalidParameter that is not about the phone number, scripted by this name.
INVALID_SENDER_ID = "InvalidParameter:SenderID"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Publication:
    phone_number: str
    message: str
    attributes: dict[str, tuple[str, str]]
    message_id: str
    delivered: bool


class FakeSns(FakeHttpServer):
    name = "fake-sns"
    outcomes = frozenset(FAILURES) | {SUCCESS, INVALID_SENDER_ID}

    def __init__(
        self, region: str = "us-east-1", host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host, port)
        self.region = region
        self.access_key_id = "AKIA" + secrets.token_hex(8).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.opted_out: set[str] = set()
        self.publications: list[Publication] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._handle)

    @staticmethod
    def error(code: str, failure: SnsFailure | None = None) -> web.Response:
        failure = failure or FAILURES[code]
        body = (
            f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{failure.kind}</Type>'
            f"<Code>{code}</Code><Message>{escape(failure.message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return web.Response(
            text=body, status=failure.http_status, content_type="text/xml"
        )

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        fields = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        response = self._check_signature(request, raw) or self._publish(fields)
        self.record(
            ReceivedRequest(
                request.method,
                request.path,
                dict(request.headers),
                raw,
                fields,
                response.status,
            )
        )
        return response

    def _check_signature(self, request: web.Request, raw: bytes) -> web.Response | None:
        match = AUTHORIZATION.match(request.headers.get("Authorization", ""))
        if match is None:
            return self.error("IncompleteSignature")
        if match["key"] != self.access_key_id:
            return self.error("InvalidClientTokenId")
        amz_date = request.headers.get("X-Amz-Date", "")
        if not amz_date.startswith(match["date"]) or match["service"] != "sns":
            return self.error("SignatureDoesNotMatch")

        names = match["headers"].split(";")
        canonical_headers = "".join(
            f"{name}:{' '.join(request.headers.get(name, '').split())}\n"
            for name in names
        )
        query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, v in sorted(parse_qsl(request.query_string, keep_blank_values=True))
        )
        canonical_request = "\n".join(
            [
                request.method,
                quote(request.path, safe="/-_.~"),
                query,
                canonical_headers,
                match["headers"],
                sha256_hex(raw),
            ]
        )

        scope = f"{match['date']}/{match['region']}/sns/aws4_request"
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                sha256_hex(canonical_request.encode()),
            ]
        )

        key = ("AWS4" + self.secret_access_key).encode()
        for part in (match["date"], match["region"], "sns", "aws4_request"):
            key = sign(key, part)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            return self.error("SignatureDoesNotMatch")
        return None

    @staticmethod
    def _attributes(fields: dict[str, str]) -> dict[str, tuple[str, str]]:
        attributes = {}
        for index in range(1, 11):
            prefix = f"MessageAttributes.entry.{index}"
            name = fields.get(f"{prefix}.Name")
            if name is None:
                break
            attributes[name] = (
                fields.get(f"{prefix}.Value.DataType", ""),
                fields.get(f"{prefix}.Value.StringValue", ""),
            )
        return attributes

    def _invalid(self, text: str) -> web.Response:
        return self.error(
            "InvalidParameter", SnsFailure(400, "Sender", f"Invalid parameter: {text}")
        )

    def _publish(self, fields: dict[str, str]) -> web.Response:
        if fields.get("Action") != "Publish" or fields.get("Version") != "2010-03-31":
            return self.error(
                "InvalidAction", SnsFailure(400, "Sender", "Unsupported action")
            )
        number = fields.get("PhoneNumber", "")
        if not E164.match(number):
            return self._invalid(
                f"PhoneNumber Reason: {number} is not valid to publish to"
            )
        message = fields.get("Message", "")
        if not message:
            return self._invalid("Empty message")
        if len(message.encode()) > MAX_MESSAGE_BYTES:
            return self.error(
                "InvalidParameter",
                SnsFailure(400, "Sender", "Invalid parameter: Message too long"),
            )
        attributes = self._attributes(fields)
        problem = self._check_attributes(attributes)
        if problem is not None:
            return problem

        outcome = self.next_outcome(number)
        if outcome == INVALID_SENDER_ID:
            return self._invalid("SenderID Reason: not registered for this country")
        if outcome != SUCCESS:
            return self.error(outcome)
        message_id = str(uuid.uuid4())
        with self._lock:
            self.publications.append(
                Publication(
                    number,
                    message,
                    attributes,
                    message_id,
                    delivered=number not in self.opted_out,
                )
            )
        body = (
            f'<PublishResponse xmlns="{NAMESPACE}"><PublishResult>'
            f"<MessageId>{message_id}</MessageId></PublishResult><ResponseMetadata>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></PublishResponse>"
        )
        return web.Response(text=body, content_type="text/xml")

    def _check_attributes(
        self, attributes: dict[str, tuple[str, str]]
    ) -> web.Response | None:
        sms_type = attributes.get("AWS.SNS.SMS.SMSType")
        if sms_type is not None and sms_type[1] not in ("Promotional", "Transactional"):
            return self.error("ParameterValueInvalid")
        sender = attributes.get("AWS.SNS.SMS.SenderID")
        if sender is not None and not SENDER_ID.match(sender[1]):
            return self._invalid("SenderID")
        price = attributes.get("AWS.SNS.SMS.MaxPrice")
        if price is not None and price[0] != "Number":
            return self.error("ParameterValueInvalid")
        return None
