"""One JSON shape for every API error: a stable code, a message, and the bad fields."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"field.path": [messages]}."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                path = prefix or "non_field_errors"
            for name, messages in flatten(value, path).items():
                fields.setdefault(name, []).extend(messages)
        return fields
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        fields = {}
        for index, item in enumerate(detail):
            if item:
                for name, messages in flatten(item, f"{prefix}[{index}]").items():
                    fields.setdefault(name, []).extend(messages)
        return fields
    return {prefix or "non_field_errors": [str(detail)]}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, (Http404, exceptions.NotFound)):
        body = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
    elif isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        body = {
            "error": {
                "code": "invalid",
                "message": "Invalid input: " + ", ".join(sorted(fields)) + ".",
                "fields": fields,
            }
        }
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = {"error": {"code": code, "message": str(detail), "fields": {}}}
    response.data = body
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Return a JSON 404 for unknown /api/ URLs, and Django's page for others."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Return a JSON 400 for /api/ requests Django rejects before any view, such as an oversized body."""
    if request.path.startswith("/api/"):
        body = {
            "error": {
                "code": "bad_request",
                "message": str(exception) or "Bad request.",
                "fields": {},
            }
        }
        return JsonResponse(body, status=400)
    return django_bad_request(request, exception)


class JsonParser(JSONParser):
    """DRF's JSON parser, raising a 400 for JSON nested too deeply to parse."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                "JSON parse error: nested too deeply."
            ) from None
