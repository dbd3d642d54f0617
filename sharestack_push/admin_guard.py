"""A guard for the admin pages' query strings."""
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

ADMIN_PREFIX = "/admin/"


class RejectNulInAdminQueryMiddleware:
    """Middleware that returns 400 for an admin request with a NUL in its query string.

    PostgreSQL rejects NUL in text, so a list filter such as ?reason=%00 would end in
    a database error. The API checks its own parameters and names the field instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(ADMIN_PREFIX) and has_nul(request):
            return HttpResponseBadRequest(
                "Invalid query string: it contains a NUL character (%00). Remove it."
            )
        return self.get_response(request)


def has_nul(request: HttpRequest) -> bool:
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )
