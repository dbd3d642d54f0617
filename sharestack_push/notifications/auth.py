"""API key authentication (`Authorization: Api-Key <key>`) and scope checks."""
import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from sharestack_push.notifications.models import ApiKey, hash_api_key

KEYWORD = "Api-Key"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def find_api_key(plain_key: str) -> ApiKey | None:
    """Return the active key for `ssp_<prefix>_<secret>`, comparing hashes in constant time."""
    marker, _, rest = plain_key.partition("_")
    prefix, _, secret = rest.partition("_")
    if marker != "ssp" or not prefix or not secret:
        return None
    api_key = ApiKey.objects.filter(prefix=prefix, is_active=True).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, hash_api_key(secret)):
        return None
    return api_key


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request):
        header = get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        keyword, _, plain_key = header.partition(" ")
        # Authentication schemes are case-insensitive (RFC 9110, section 11.1).
        if keyword.lower() != KEYWORD.lower() or not plain_key.strip():
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Api-Key <key>'."
            )
        api_key = find_api_key(plain_key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class HasScope(BasePermission):
    """Allow a request whose key has the view's `required_scope`."""

    def has_permission(self, request: Request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("Missing API key: send 'Authorization: Api-Key <key>'.")
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return True
        if not request.auth.has_scope(scope):
            raise exceptions.PermissionDenied(f"This API key lacks the '{scope}' scope.")
        return True
