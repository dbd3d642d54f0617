"""The channel comparison and churned-user statistics endpoints."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.churn import churn_response
from analytics.query import channel_comparison
from analytics.views import STAT_FIELDS, FilterQuerySerializer, reject_empty_or_repeated_params
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
    days = serializers.IntegerField(
        min_value=1,
        max_value=365,
        default=30,
        help_text="N: a message went to a churned user when the user had no activity "
        "in the N days before it was sent; 1 to 365, default 30.",
    )


RESPONSE_FIELDS = {
    name: serializers.IntegerField()
    for name in ("users", "sent", "delivered", "opened", "clicked", "failed")
} | {"delivery_rate": RATE, "open_rate": RATE, "click_rate": RATE}


class ChurnView(ApiView):
    required_scope = Scope.ADMIN
    allowed_query_params = (*FILTER_PARAMS, "days")

    @extend_schema(
        parameters=[ChurnQuerySerializer],
        summary="How churned users respond compared with active users",
        description="Reads the records sent to users in [from, to). A message went to "
        "a churned user when the user had no open, click or activity-API event in the "
        "`days` days before it was sent, and to an active user otherwise. Counts the "
        "messages (sent), the distinct users, and how many were delivered, opened, "
        "clicked or failed later, with the delivery rate (over sent) and the open and "
        "click rates (over delivered): in total per segment, and per channel kind and "
        "segment in groups. A user may count in both segments for different messages.",
        responses=inline_serializer(
            "ChurnResponse",
            {
                "days": serializers.IntegerField(),
                "totals": inline_serializer(
                    "ChurnTotals",
                    {
                        "churned": inline_serializer("ChurnSegment", RESPONSE_FIELDS),
                        "active": inline_serializer("ActiveSegment", RESPONSE_FIELDS),
                    },
                ),
                "groups": inline_serializer(
                    "ChurnGroup",
                    RESPONSE_FIELDS
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
