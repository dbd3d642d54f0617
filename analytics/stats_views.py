"""The channel comparison and churned-user statistics endpoints."""
from datetime import datetime, time, timezone

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.churn import churn_response
from analytics.query import channel_comparison
from analytics.views import (
    STAT_FIELDS,
    DaysField,
    FilterQuerySerializer,
    reject_empty_or_repeated_params,
)
from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import Scope

FILTER_PARAMS = ("from", "to", "channel", "provider", "type", "variant", "campaign")
RATE = serializers.FloatField(allow_null=True)
COST = serializers.FloatField(allow_null=True)


class ChannelComparisonView(ApiView):
    required_scope = Scope.ADMIN
    allowed_query_params = FILTER_PARAMS

    @extend_schema(
        parameters=[FilterQuerySerializer],
        summary="Compare channel kinds and providers",
        description="One row per channel kind and provider, summed from the hourly "
        "roll-ups like the statistics endpoint: the counters, the delivery rate (over "
        "sent), the open and click rates (over delivered), the failure rate (failed "
        "over sent plus failed; a message sent and later reported failed counts in "
        "both), and the cost per sent and per delivered message in the currency of "
        "the channels' cost_per_message. A rate or cost is null when its denominator "
        "is zero.",
        responses=inline_serializer(
            "ChannelComparison",
            {
                "channels": inline_serializer(
                    "ChannelComparisonRow",
                    STAT_FIELDS
                    | {
                        "channel": serializers.CharField(),
                        "provider": serializers.CharField(),
                        "failure_rate": RATE,
                        "cost_per_message": COST,
                        "cost_per_delivered": COST,
                    },
                    many=True,
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        reject_empty_or_repeated_params(request)
        query = FilterQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response({"channels": channel_comparison(query.validated_data)})


class ChurnQuerySerializer(FilterQuerySerializer):
    days = DaysField(
        min_value=1,
        max_value=365,
        default=30,
        help_text="N: a message went to a churned user when the user had been idle for "
        "N whole days or more when fan-out created it; 1 to 365, default 30.",
    )

    def get_fields(self):
        # The roll-ups behind this question have no variant.
        fields = super().get_fields()
        del fields["variant"]
        for name in ("from", "to"):
            fields[name].help_text += " A UTC midnight, because the roll-ups count days."
        return fields

    def validate(self, attrs):
        attrs = super().validate(attrs)
        errors = {
            name: "Must be a UTC midnight, such as 2026-12-01T00:00:00Z."
            for name in ("from", "to")
            if attrs.get(name) is not None and not is_utc_midnight(attrs[name])
        }
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def is_utc_midnight(moment: datetime) -> bool:
    return moment.astimezone(timezone.utc).time() == time(0)


SEGMENT_FIELDS = {
    name: serializers.IntegerField()
    for name in ("sent", "delivered", "opened", "clicked", "failed")
} | {"delivery_rate": RATE, "open_rate": RATE, "click_rate": RATE}


class ChurnView(ApiView):
    required_scope = Scope.ADMIN
    allowed_query_params = ("from", "to", "channel", "provider", "type", "campaign", "days")

    @extend_schema(
        parameters=[ChurnQuerySerializer],
        summary="How churned users respond compared with active users",
        description="Sums the daily idle-day roll-ups of the messages sent on the UTC "
        "days in [from, to); from and to must be UTC midnights. When fan-out creates a "
        "message, it stores how many whole days the user had been idle (no open, click "
        "or activity-API event) at that moment, the fan-out time rather than the send "
        "time. A message went to a churned user when that count is `days` or more, or "
        "the user was never active, and to an active user otherwise. Counts the "
        "messages (sent) and how many were delivered, opened or clicked by a person, "
        "or failed, with the delivery rate (over sent) and the open and click rates "
        "(over delivered): in total per segment, and per channel kind and segment in "
        "groups. The roll-ups hold neither variants nor users, so this endpoint has no "
        "variant filter and no distinct user counts. Messages created before idle "
        "days were stored, and messages addressed to a channel rather than a user, "
        "count in neither segment.",
        responses=inline_serializer(
            "ChurnResponse",
            {
                "days": serializers.IntegerField(),
                "totals": inline_serializer(
                    "ChurnTotals",
                    {
                        "churned": inline_serializer("ChurnSegment", SEGMENT_FIELDS),
                        "active": inline_serializer("ActiveSegment", SEGMENT_FIELDS),
                    },
                ),
                "groups": inline_serializer(
                    "ChurnGroup",
                    SEGMENT_FIELDS
                    | {
                        "channel": serializers.CharField(),
                        "segment": serializers.ChoiceField(choices=["churned", "active"]),
                    },
                    many=True,
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        reject_empty_or_repeated_params(request)
        query = ChurnQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(churn_response(query.validated_data))
