"""Signed unsubscribe links: one click turns off one notification type on one channel.

The link carries the user, type and channel, signed with SECRET_KEY, so a link for
another user cannot be forged. A link in a message also carries the message's record
id, so the unsubscribe counts in that message's roll-up row. It does not expire: a mail read a year later must still
unsubscribe. A POST changes the preference at once (RFC 8058 one-click, sent by mail
clients with the body `List-Unsubscribe=One-Click`). A GET only shows a page with a
button, because mail scanners follow links with GET.
"""
from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from analytics.models import OptOutEvent
from analytics.optouts import record_opt_out, traced_record
from preferences.models import UserPushPreference
from sharestack_push.notifications import clock

SALT = "sharestack-push.unsubscribe"


def unsubscribe_url(
    user_id: str, notification_type: str, channel: str, record_id: int | None = None
) -> str:
    fields: list[str | int] = [user_id, notification_type, channel]
    if record_id is not None:
        fields.append(record_id)
    token = signing.dumps(fields, salt=SALT, compress=True)
    return f"{settings.PUSH_PUBLIC_BASE_URL}{reverse('unsubscribe', args=[token])}"


def page(status: int, title: str, text: str, form: bool = False) -> HttpResponse:
    button = (
        '<form method="post"><input type="hidden" name="List-Unsubscribe" '
        'value="One-Click"><button type="submit">Unsubscribe / 退订</button></form>'
        if form else ""
    )
    html = (
        f'<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{escape(title)}</title>'
        f"</head><body><h1>{escape(title)}</h1><p>{escape(text)}</p>{button}</body></html>"
    )
    return HttpResponse(html, status=status)


@csrf_exempt
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        # Links sent before record ids were added carry three fields.
        user_id, notification_type, channel, *rest = signing.loads(token, salt=SALT)
        record_id = int(rest[0]) if rest else None
    except (signing.BadSignature, ValueError, TypeError):
        return page(400, "Link not valid / 链接无效",
                    "This unsubscribe link is damaged. 此退订链接已损坏。")
    if request.method == "POST":
        already_off = UserPushPreference.objects.filter(
            user_id=user_id, notification_type=notification_type, channel=channel,
            is_enabled=False,
        ).exists()
        UserPushPreference.objects.update_or_create(
            user_id=user_id, notification_type=notification_type, channel=channel,
            defaults={"is_enabled": False},
        )
        if not already_off:
            record_opt_out(
                user_id, OptOutEvent.Source.UNSUBSCRIBE_LINK, channel, notification_type,
                clock.now(), traced_record(record_id, user_id),
            )
        return page(200, "Unsubscribed / 已退订",
                    f"You will no longer get {notification_type} by {channel}. "
                    f"您将不再通过 {channel} 收到 {notification_type} 通知。")
    if request.method != "GET":
        return page(405, "Method not allowed", "Use GET or POST.")
    return page(200, "Unsubscribe / 退订",
                f"Stop {notification_type} by {channel}? 停止通过 {channel} 接收 {notification_type}?",
                form=True)
