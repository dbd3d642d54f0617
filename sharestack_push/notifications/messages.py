"""Builds the provider-facing message of each claimed record.

Data shared by many records is loaded once per batch: the rendering per task, kind
and locale, the notification types' categories, the devices' platforms and the ids of
tracked links.
"""
from typing import Any

from django.conf import settings

from analytics.rewrite import LinkTracker, tracking_enabled
from channels_app.models import Channel, Device
from channels_app.providers.base import OutgoingMessage
from preferences.footer import add_preference_footer
from preferences.unsubscribe import unsubscribe_url
from sharestack_push.notifications.constants import ChannelKind
from sharestack_push.notifications.content import RenderCache
from sharestack_push.notifications.models import NotificationType, PushRecord


class MessageBuilder:
    def __init__(self, records: list[PushRecord]) -> None:
        self.renders = RenderCache({record.user_id for record in records if record.user_id})
        types = {record.task.notification_type for record in records}
        self.marketing_types = set(
            NotificationType.objects.filter(
                key__in=types, category=NotificationType.Category.MARKETING
            ).values_list("key", flat=True)
        )
        device_ids = [record.device_id for record in records if record.device_id]
        self.platforms = dict(
            Device.objects.filter(pk__in=device_ids).values_list("pk", "platform")
        ) if device_ids else {}
        self.links = LinkTracker()

    def build(
        self, record: PushRecord, channel: Channel | None = None
    ) -> tuple[OutgoingMessage | None, str]:
        """Return the message, or None and the reason it cannot be rendered.

        Links go through the click redirect, and HTML email gets the open pixel, unless
        the task's options for the channel kind or the channel's config set tracking
        to false.
        """
        task = record.task
        rendered = self.renders.get(
            task, record.channel_kind, record.locale, record.user_id, record.variant
        )
        if rendered.failure:
            return None, rendered.failure
        message = rendered.message
        marketing = task.notification_type in self.marketing_types
        headers = {}
        if marketing and record.channel_kind == ChannelKind.EMAIL and record.user_id:
            # RFC 8058 one-click unsubscribe: mail clients POST to the URL.
            url = unsubscribe_url(
                record.user_id, task.notification_type, ChannelKind.EMAIL, record.pk
            )
            headers = {
                "List-Unsubscribe": f"<{url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }

        locale = record.locale or settings.PUSH_DEFAULT_LOCALE
        options = (task.options or {}).get(record.channel_kind) or {}
        body, html = message.body, message.html
        if tracking_enabled(options, channel.config if channel is not None else {}):
            body, html, options = self.track(record, body, html, options)
        body, html = add_preference_footer(
            record.channel_kind, marketing, record.user_id, locale, body, html,
            record_id=record.pk,
        )
        return OutgoingMessage(
            record_id=record.pk,
            address=record.address,
            title=message.title,
            body=body,
            data=message.data,
            notification_type=task.notification_type,
            marketing=marketing,
            priority=task.priority,
            locale=locale,
            platform=self.platforms.get(record.device_id, ""),
            html=html,
            headers=headers,
            options=dict(options),
            variables=dict(task.variables or {}),
        ), ""

    def track(
        self, record: PushRecord, body: str, html: str, options: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        """Rewrite the links of one message for click tracking, per channel kind.

        The email text part keeps its links, because only the HTML part is tracked.
        """
        kind = record.channel_kind
        if kind == ChannelKind.EMAIL and html:
            html = self.links.rewrite_html(record, html)
        elif kind == ChannelKind.SMS:
            # NOTE: template-based SMS providers (Aliyun, Tencent) send template
            # variables rather than the body, so their links stay untracked.
            body = self.links.rewrite_text(record, body)
        elif kind == ChannelKind.WECHAT:
            # NOTE: a WeCom text card with a per-record link can no longer share one
            # request with other users, so WeCom sends one request per tracked record.
            options = self.links.rewrite_options(record, options)
        return body, html, options
