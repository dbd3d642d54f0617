"""Engagement events from the app SDK, and delivery statistics."""
import logging
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.events import Hit, store_event
from analytics.machine import client_ip
from analytics.query import GROUPS, delivery_stats, time_zone, user_engagement
from channels_app.models import Channel
from channels_app.providers.base import Receipt, ReceiptEvent
from preferences.activity_views import valid_user_id
from sharestack_push.notifications import clock
from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import (
    ChannelKind,
    EngagementKind,
    EngagementSource,
    Scope,
)
from sharestack_push.notifications.fields import (
    CLOCK_SKEW_MINUTES,
    StrictSerializer,
    check_not_ahead_of_clock,
)
from sharestack_push.notifications.models import PushRecord
from sharestack_push.notifications.receipts import apply_receipt
from sharestack_push.notifications.serializers import AwareDateTimeField
from sharestack_push.notifications.variants import variant_counts
from sharestack_push.notifications.views import visible_tasks

logger = logging.getLogger(__name__)

ENGAGEMENT_EVENTS = [ReceiptEvent.DELIVERED.value, ReceiptEvent.OPENED.value, ReceiptEvent.CLICKED.value]
SDK_EVENT_KINDS = {
    ReceiptEvent.OPENED.value: EngagementKind.OPEN,
    ReceiptEvent.CLICKED.value: EngagementKind.CLICK,
}


class EventSerializer(StrictSerializer):
    record_id = serializers.IntegerField(min_value=1, required=False)
    message_id = serializers.CharField(max_length=255, required=False)
    event = serializers.ChoiceField(choices=ENGAGEMENT_EVENTS)
    occurred_at = serializers.DateTimeField(required=False)

    def validate_occurred_at(self, value: datetime) -> datetime:
        check_not_ahead_of_clock(value)
        return value

    def validate(self, attrs):
        if ("record_id" in attrs) == ("message_id" in attrs):
            raise serializers.ValidationError(
                {"record_id": "Give either record_id or message_id, not both or neither."}
            )
        return attrs


class EventView(ApiView):
    # NOTE: any key with the push scope may report events for any record, including
    # records of tasks that another key created.
    required_scope = Scope.PUSH

    @extend_schema(
        request=EventSerializer,
        responses=inline_serializer(
            "EventApplied",
            {
                "records": serializers.ListField(child=serializers.IntegerField()),
                "changed": serializers.IntegerField(),
            },
        ),
        summary="Report that a message was delivered, opened or clicked",
        description="Identifies the record by record_id, or by message_id, the id "
        "the provider gave the message. Repeating an event changes nothing, and an "
        "event never moves a record back: an open after a click keeps the click. An "
        "event implies the earlier ones, so a click also marks the record delivered "
        "and opened. occurred_at defaults to the time of the request. It must not be "
        "earlier than the record was sent (or created, if it was not sent), nor more "
        f"than {CLOCK_SKEW_MINUTES} minutes later than the server's "
        "clock. Unknown fields are rejected. "
        "Opens and clicks reported here always count as human.",
    )
    def post(self, request: Request) -> Response:
        serializer = EventSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        when = data.get("occurred_at") or clock.now()

        if "record_id" in data:
            records = PushRecord.objects.filter(pk=data["record_id"])
        else:
            # Naming every channel lets PostgreSQL use the (channel, provider_message_id) index.
            channel_ids = list(Channel.objects.values_list("pk", flat=True))
            records = PushRecord.objects.filter(
                channel_id__in=channel_ids, provider_message_id=data["message_id"]
            )
        with transaction.atomic():
            matched = list(records.select_for_update().order_by("pk"))
            if not matched:
                raise exceptions.NotFound()
            if "occurred_at" in data:
                check_not_before_send(matched, when)
            changed = 0
            for record in matched:
                if data["event"] in SDK_EVENT_KINDS:
                    store_event(record, sdk_hit(request, SDK_EVENT_KINDS[data["event"]], when))
                receipt = Receipt(record.provider_message_id, ReceiptEvent(data["event"]),
                                  occurred_at=when)
                changed += apply_receipt(record, receipt, when)
        logger.info("events: %s for records %s (%d changed)", data["event"],
                    [record.pk for record in matched], changed)
        return Response({"records": [record.pk for record in matched], "changed": changed})


def check_not_before_send(records: list[PushRecord], when: datetime) -> None:
    """Raise a 400 naming occurred_at if it is before a record was sent.

    A record not sent yet is measured from its creation.
    """
    for record in records:
        start = record.sent_at or record.created_at
        if when < start:
            raise serializers.ValidationError({"occurred_at": (
                f"Must not be earlier than record {record.pk} was "
                f"{'sent' if record.sent_at else 'created'} ({start.isoformat()})."
            )})


def sdk_hit(request: Request, kind: str, when: datetime) -> Hit:
    return Hit(kind, EngagementSource.SDK, when, client_ip=client_ip(request),
               user_agent=request.META.get("HTTP_USER_AGENT", ""))


class ListField(serializers.CharField):
    """A comma-separated query parameter, each item one of `choices` when given."""

    def __init__(self, choices=None, **kwargs) -> None:
        self.item_choices = choices
        super().__init__(required=False, **kwargs)

    def to_internal_value(self, data) -> list[str]:
        text = super().to_internal_value(data)
        # The list bypasses CharField's own NUL check, which reads str(value).
        if "\x00" in text:
            raise serializers.ValidationError("Null characters are not allowed.")
        items = [item.strip() for item in text.split(",")]
        if any(not item for item in items):
            raise serializers.ValidationError("Empty item in the comma-separated list.")
        if self.item_choices is not None:
            unknown = [item for item in items if item not in self.item_choices]
            if unknown:
                raise serializers.ValidationError(
                    f"Unknown value {', '.join(unknown)}; use {', '.join(self.item_choices)}."
                )
        if len(set(items)) != len(items):
            raise serializers.ValidationError("List each value once.")
        return items


class TimeZoneField(serializers.CharField):
    """An IANA time zone name, validated to a ZoneInfo."""

    def to_internal_value(self, data) -> ZoneInfo:
        try:
            return time_zone(super().to_internal_value(data))
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


# campaign_id is a signed 64-bit column.
MAX_CAMPAIGN_ID = 2**63 - 1
# The range the statistics accept for from and to. It leaves room for the windows
# and time zone shifts that the queries subtract and add without leaving datetime's
# range of years 1 to 9999.
EARLIEST_QUERY_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_QUERY_TIME = datetime(9000, 1, 1, tzinfo=UTC)


class QueryTimeField(AwareDateTimeField):
    """A time with its UTC offset, from 1970 to 9000."""

    def to_internal_value(self, value) -> datetime:
        parsed = super().to_internal_value(value)
        if not EARLIEST_QUERY_TIME <= parsed < LATEST_QUERY_TIME:
            raise serializers.ValidationError(
                f"Must be from {EARLIEST_QUERY_TIME:%Y-%m-%d} and before "
                f"{LATEST_QUERY_TIME:%Y-%m-%d} (UTC)."
            )
        return parsed


class FilterQuerySerializer(serializers.Serializer):
    """The time range and filters that every statistics question accepts."""

    start = QueryTimeField(
        required=False,
        help_text="Start of the time range, included, with its UTC offset.",
    )
    to = QueryTimeField(
        required=False, help_text="End of the time range, excluded, with its UTC offset."
    )
    channel = ListField(choices=list(ChannelKind.values), help_text="Channel kinds, comma-separated.")
    provider = ListField(help_text="Provider keys, comma-separated.")
    type = ListField(help_text="Notification types, comma-separated.")
    variant = ListField(help_text="A/B variant names, comma-separated.")
    campaign = ListField(
        help_text="Campaign ids, comma-separated; 0 selects messages of no campaign."
    )

    def get_fields(self):
        # "from" is a Python keyword, so the field is declared as "start".
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        return fields

    def validate_campaign(self, value: list[str]) -> list[int]:
        invalid = [item for item in value if not item.isascii() or not item.isdigit()]
        if invalid:
            raise serializers.ValidationError(
                f"Campaign ids are whole numbers; {', '.join(invalid)} is not."
            )
        ids = [int(item) for item in value]
        too_large = [str(id_) for id_ in ids if id_ > MAX_CAMPAIGN_ID]
        if too_large:
            raise serializers.ValidationError(
                f"Campaign ids must be at most {MAX_CAMPAIGN_ID}, and "
                f"{', '.join(too_large)} is larger."
            )
        return ids

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["from"] >= attrs["to"]:
            raise serializers.ValidationError({"to": "Must be later than from."})
        return attrs


class StatsQuerySerializer(FilterQuerySerializer):
    group_by = ListField(
        choices=GROUPS,
        help_text="Group keys, comma-separated. day and week (labelled with its Monday) "
        "are dates, weekday is 1 (Monday) to 7 (Sunday), hour_of_day is 0 to 23, all "
        "in the time zone tz.",
    )
    tz = TimeZoneField(
        required=False,
        help_text="IANA time zone for grouping by day, week, weekday and hour_of_day; "
        "default UTC.",
    )
    variant_of = serializers.UUIDField(
        required=False,
        help_text="Instead of statistics, per-variant record counts of this A/B test task.",
    )


def reject_empty_or_repeated_params(request: Request) -> None:
    """Raise a 400 naming each empty or repeated query parameter.

    DRF skips an empty optional query parameter, which would widen the query, and
    reads only the last value of a repeated one. Lists are comma-separated instead.
    """
    params = request.query_params
    errors = {
        name: "Give this parameter once, and separate list items with commas."
        for name, values in params.lists() if len(values) > 1
    }
    for name, value in params.items():
        if not value.strip():
            errors.setdefault(name, "Must not be empty.")
    if errors:
        raise serializers.ValidationError(dict(sorted(errors.items())))


STAT_FIELDS = {
    name: serializers.IntegerField()
    for name in (
        "sent", "delivered", "opened", "clicked", "failed", "unsubscribed", "segments",
        "machine_opened", "machine_clicked", "complained",
    )
} | {
    "delivery_rate": serializers.FloatField(allow_null=True),
    "open_rate": serializers.FloatField(allow_null=True),
    "click_rate": serializers.FloatField(allow_null=True),
    "cost": serializers.DecimalField(max_digits=18, decimal_places=5),
}


class StatsView(ApiView):
    # Checked per request: statistics need the admin scope, variant_of the push scope.
    required_scope = None
    allowed_query_params = ("from", "to", "channel", "provider", "type", "variant",
                            "campaign", "group_by", "tz", "variant_of")

    @extend_schema(
        parameters=[StatsQuerySerializer],
        summary="Delivery statistics, or per-variant counts of an A/B test",
        description="Sums the hourly roll-ups: messages sent, delivered, opened, "
        "clicked, failed and unsubscribed, billed SMS segments and cost, with the "
        "delivery rate (delivered / sent) and the open and click rates (over "
        "delivered). opened and clicked count people only. Messages opened or clicked "
        "by software (mail privacy proxies, link scanners) count once each in "
        "machine_opened and machine_clicked, and spam reports in complained. "
        "Each message counts in the UTC hour it was sent (or failed, if "
        "never sent), and its later events count in that same hour; tz only moves the "
        "group boundaries. campaign filters by the ids of admin campaigns, and "
        "group_by=campaign gives one row per campaign id, 0 being messages sent outside "
        "any campaign. Needs the admin "
        "scope. With variant_of, returns instead the per-variant counts of one task "
        "visible to the key, and needs the push scope.",
        responses=inline_serializer(
            "Stats",
            {
                "totals": inline_serializer("StatsRow", STAT_FIELDS),
                "group_by": serializers.ListField(child=serializers.CharField(), required=False),
                "groups": serializers.ListField(
                    child=serializers.DictField(),
                    required=False,
                    help_text="One object per group: its group_by values and the counters.",
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        reject_empty_or_repeated_params(request)
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if "variant_of" in params:
            self.require_scope(request, Scope.PUSH)
            task = get_object_or_404(visible_tasks(request), pk=params["variant_of"])
            return Response({"task": str(task.pk), "variants": variant_counts(task)})
        self.require_scope(request, Scope.ADMIN)
        return Response(delivery_stats(params))

    @staticmethod
    def require_scope(request: Request, scope: str) -> None:
        if not (request.auth.has_scope(scope) or request.auth.has_scope(Scope.ADMIN)):
            raise exceptions.PermissionDenied(f"This API key lacks the '{scope}' scope.")


class DaysField(serializers.IntegerField):
    """A whole number of days in a query string, written in ASCII digits only.

    Python's int() also reads other scripts' digits and a leading plus sign, which
    the other query parameters reject.
    """

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(r"[0-9]{1,6}", data):
            self.fail("invalid")
        return super().to_internal_value(data)


class EngagementQuerySerializer(serializers.Serializer):
    days = DaysField(
        min_value=1, max_value=365, default=90, help_text="Days back from now, 1 to 365."
    )


class UserEngagementView(ApiView):
    required_scope = Scope.ADMIN
    allowed_query_params = ("days",)

    @extend_schema(
        parameters=[EngagementQuerySerializer],
        summary="How one user responds, per channel kind and notification type",
        description="Counts the user's messages sent in the last `days` days and how "
        "many were delivered, opened, clicked or failed later, with the delivery rate "
        "(over sent) and the open and click rates (over delivered). Read from the "
        "records, not the roll-ups.",
        responses=inline_serializer(
            "UserEngagement",
            {
                "user_id": serializers.CharField(),
                "since": serializers.DateTimeField(),
                "channels": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request: Request, user_id: str) -> Response:
        reject_empty_or_repeated_params(request)
        user_id = valid_user_id(user_id)
        query = EngagementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since = clock.now() - timedelta(days=query.validated_data["days"])
        return Response(
            {"user_id": user_id, "since": since, "channels": user_engagement(user_id, since)}
        )
