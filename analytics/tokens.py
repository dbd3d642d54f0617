"""Short signed tokens for the email open pixel and the click redirect.

A token is URL-safe base64 (no padding) of the record id and, for a click, the tracked
link id, each as an unsigned LEB128 varint, followed by the first 6 bytes of an
HMAC-SHA256 of those bytes keyed from SECRET_KEY. Open and click tokens use different
salts, so neither can stand in for the other. A click token for record 12,345,678 and
link 4,321 is 16 characters long, which matters in SMS, where every character counts.
Each token has one accepted spelling, so a padded or otherwise re-spelled token is
invalid like a damaged one.

A 48-bit signature takes about 2**47 requests to guess for one record. A forged token
could only mark a record opened or clicked, and a redirect only goes to a URL stored
for the record's own task, so the token cannot make an open redirect.
"""
import base64
import binascii

from django.utils.crypto import constant_time_compare, salted_hmac

OPEN_SALT = "sharestack-push.tracking.open"
CLICK_SALT = "sharestack-push.tracking.click"
SIGNATURE_BYTES = 6
# A varint of more bytes than this cannot be a database id (63 bits need 9 bytes).
MAX_VARINT_BYTES = 9


class TokenInvalid(Exception):
    """The token is damaged, altered, or was signed with another key or salt."""


def encode_varint(number: int) -> bytes:
    if number < 0:
        raise ValueError(f"A token can carry only ids of 0 or more, not {number}.")
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decode_varints(data: bytes) -> list[int]:
    """Decode a run of varints; raise TokenInvalid on a truncated or oversized one."""
    numbers: list[int] = []
    value = shift = length = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        length += 1
        if length > MAX_VARINT_BYTES:
            raise TokenInvalid("A number in the token is too long.")
        if not byte & 0x80:
            numbers.append(value)
            value = shift = length = 0
    if length:
        raise TokenInvalid("The token ends inside a number.")
    return numbers


def signature(salt: str, payload: bytes) -> bytes:
    return salted_hmac(salt, payload, algorithm="sha256").digest()[:SIGNATURE_BYTES]


def sign(salt: str, *numbers: int) -> str:
    payload = b"".join(encode_varint(number) for number in numbers)
    raw = payload + signature(salt, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> bytes:
    """Decode the one spelling that sign() produces; raise TokenInvalid on any other.

    The base64 decoder would also take padding, characters outside the alphabet and
    other values of the unused low bits of the last character. Comparing with the
    re-encoded bytes rejects every such spelling.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as error:
        raise TokenInvalid("The token is not URL-safe base64.") from error
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise TokenInvalid("The token is not in canonical URL-safe base64.")
    return raw


def unsign(salt: str, token: str, count: int) -> list[int]:
    """Return the `count` numbers a token carries; raise TokenInvalid otherwise."""
    raw = decode_token(token)
    payload, mac = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    if len(raw) <= SIGNATURE_BYTES or not constant_time_compare(mac, signature(salt, payload)):
        raise TokenInvalid("The token signature does not match.")
    numbers = decode_varints(payload)
    if len(numbers) != count:
        raise TokenInvalid(f"The token carries {len(numbers)} numbers, not {count}.")
    return numbers


def open_token(record_id: int) -> str:
    return sign(OPEN_SALT, record_id)


def click_token(record_id: int, link_id: int) -> str:
    return sign(CLICK_SALT, record_id, link_id)


def read_open_token(token: str) -> int:
    """Return the record id of an open-pixel token; raise TokenInvalid otherwise."""
    [record_id] = unsign(OPEN_SALT, token, 1)
    return record_id


def read_click_token(token: str) -> tuple[int, int]:
    """Return the record and link ids of a click token; raise TokenInvalid otherwise."""
    record_id, link_id = unsign(CLICK_SALT, token, 2)
    return record_id, link_id
