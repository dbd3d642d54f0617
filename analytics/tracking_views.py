"""The email open pixel and the click redirect, reached by signed tokens.

Both accept GET and HEAD without authentication, because mail clients and phones
fetch them. A damaged, altered or foreign token, or one naming a record or link that no
longer exists, gets 404 and no redirect.
"""
import base64
import logging

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_http_methods

from analytics.engagement import Hit, record_hit
from analytics.machine import client_ip, machine_reason
from analytics.models import TrackedLink
from analytics.tokens import TokenInvalid, read_click_token, read_open_token
from sharestack_push.notifications import clock
from sharestack_push.notifications.constants import EngagementKind, EngagementSource
from sharestack_push.notifications.models import PushRecord

logger = logging.getLogger(__name__)

# A transparent 1x1 GIF89a.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def no_cache(response: HttpResponse) -> HttpResponse:
    """Forbid caches from keeping the response, so each open reaches the server."""
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0, private"
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


def make_hit(request: HttpRequest, record: PushRecord, kind: str, url: str = "") -> Hit:
    now = clock.now()
    ip = client_ip(request)
    agent = request.META.get("HTTP_USER_AGENT", "")
    reason = machine_reason(request.method or "GET", ip, agent, record.sent_at, now)
    source = EngagementSource.PIXEL if kind == EngagementKind.OPEN else EngagementSource.REDIRECT
    return Hit(kind, source, now, client_ip=ip, user_agent=agent, machine_reason=reason,
               url=url)


def locked_record(record_id: int) -> PushRecord:
    record = PushRecord.objects.select_for_update().filter(pk=record_id).first()
    if record is None:
        raise Http404("No message for this token.")
    return record


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        record_id = read_open_token(token)
    except TokenInvalid:
        raise Http404("Invalid tracking token.") from None
    with transaction.atomic():
        record = locked_record(record_id)
        record_hit(record, make_hit(request, record, EngagementKind.OPEN))
    return no_cache(HttpResponse(PIXEL_GIF, content_type="image/gif"))


@require_http_methods(["GET", "HEAD"])
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    try:
        record_id, link_id = read_click_token(token)
    except TokenInvalid:
        raise Http404("Invalid tracking token.") from None
    with transaction.atomic():
        record = locked_record(record_id)
        link = TrackedLink.objects.filter(pk=link_id, task_id=record.task_id).first()
        if link is None:
            logger.warning("tracking: click token of record %s names link %s of another task",
                           record_id, link_id)
            raise Http404("No link for this token.")
        record_hit(record, make_hit(request, record, EngagementKind.CLICK, link.url))
    return no_cache(HttpResponseRedirect(link.url))
