"""One endpoint per channel for the provider's status reports, events and SMS replies.

Providers are configured to call `/api/v1/callbacks/<channel id>`. The channel's
adapter checks the signature or secret and parses the report; the records it names
move forward. A reply with an opt-out keyword such as STOP turns off marketing SMS for
the users at that number, and an opt-in keyword such as START turns it back on. A bad
signature gets 403 and changes nothing. A report about an unknown message, or a reply
from an unknown number, is logged and gets 200, so the provider does not send it again.
"""
import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from channels_app.models import Channel
from channels_app.providers.base import CallbackRejected
from preferences.sms_opt_out import apply_replies
from sharestack_push.notifications.delivery import provider_for
from sharestack_push.notifications.receipts import apply_receipts

logger = logging.getLogger(__name__)


def error(status: int, code: str, message: str) -> JsonResponse:
    """Return an error in the API's one error shape."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)


@csrf_exempt
def provider_callback(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=channel_id)
    try:
        adapter = provider_for(channel)
        result = adapter.handle_callback(request)
    except NotImplementedError:
        return error(404, "not_found", f"Provider {channel.provider!r} sends no callbacks.")
    except CallbackRejected as rejected:
        logger.warning("%s: rejected a callback for channel %s from %s: %s", channel.provider,
                       channel.pk, request.META.get("REMOTE_ADDR", ""), rejected)
        return error(403, "permission_denied", "The callback's signature or secret does not match.")
    except LookupError:
        return error(404, "not_found", f"No adapter for provider {channel.provider!r}.")
    except Exception:  # a malformed body must get a 4xx, not a 500
        logger.exception("%s: cannot parse a callback for channel %s", channel.provider, channel.pk)
        return error(400, "parse_error", "The callback body cannot be parsed.")
    changed = apply_receipts(channel, result.receipts)
    logger.info("%s: callback for channel %s carried %d receipts, %d records changed",
                channel.provider, channel.pk, len(result.receipts), changed)
    if result.replies:
        users = apply_replies(channel, result.replies)
        logger.info("%s: callback for channel %s carried %d replies, %d users changed",
                    channel.provider, channel.pk, len(result.replies), users)
    return result.response if result.response is not None else HttpResponse(status=200)
