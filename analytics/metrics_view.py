"""`/metrics` for Prometheus: open to 127.0.0.1, else an API key with the admin scope."""
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from analytics.metrics import CONTENT_TYPE, render_metrics
from sharestack_push.notifications.auth import ApiKeyAuthentication, HasScope

LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


class LoopbackOrScope(HasScope):
    """Allow requests from the loopback address, and others with the view's scope.

    NOTE: behind a reverse proxy on the same host every request comes from the
    loopback address, so such a proxy must not forward /metrics.
    """

    def has_permission(self, request: Request, view) -> bool:
        if request.auth is None and request.META.get("REMOTE_ADDR") in LOOPBACK_ADDRESSES:
            return True
        return super().has_permission(request, view)


class MetricsView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes: list[type[BasePermission]] = [LoopbackOrScope]
    required_scope = "admin"

    # Prometheus text is no part of the JSON API that the OpenAPI schema describes.
    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(render_metrics(), content_type=CONTENT_TYPE)
