"""Encryption of channel credentials at rest with Fernet (AES-128-CBC and HMAC-SHA256)."""
import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialsError(Exception):
    """The stored credentials cannot be decrypted with the configured key."""


def _fernet() -> Fernet:
    key = settings.CREDENTIALS_KEY
    if key:
        return Fernet(key.encode())
    digest = hashlib.sha256(f"channel-credentials:{settings.SECRET_KEY}".encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def encrypt_credentials(credentials: dict[str, Any]) -> str:
    if not credentials:
        return ""
    return _fernet().encrypt(json.dumps(credentials).encode()).decode()


def decrypt_credentials(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as error:
        raise CredentialsError(
            "channel credentials cannot be decrypted: CREDENTIALS_KEY or SECRET_KEY "
            "changed since they were saved; save the credentials again"
        ) from error
