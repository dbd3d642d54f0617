import logging

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.counts import task_counts
from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import Scope
from sharestack_push.notifications.models import PushTask
from sharestack_push.notifications.serializers import (
    PushAcceptedSerializer,
    PushRecordSerializer,
    PushSerializer,
    PushTaskSerializer,
)
from sharestack_push.notifications.service import (
    TaskFinished,
    cancel_task,
    create_api_task,
    validate_push,
)
from sharestack_push.notifications.variants import variant_counts

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def accepted_body(task: PushTask) -> dict:
    return {"id": str(task.pk), "notification_id": task.notification_id, "status": task.status}


class PushView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(
        request=PushSerializer,
        responses={202: PushAcceptedSerializer, 200: PushAcceptedSerializer},
        summary="Send a notification",
        description="Accepts a notification for delivery. Repeating a notification_id "
        "with the same key returns the existing task with 200 and sends nothing again.",
    )
    def post(self, request: Request) -> Response:
        task, created = create_api_task(validate_push(request.data), request.auth)
        if not created:
            return Response(accepted_body(task), status=status.HTTP_200_OK)
        logger.info("push: accepted task %s (%s) from key %s", task.pk, task.notification_type, request.auth.prefix)
        return Response(accepted_body(task), status=status.HTTP_202_ACCEPTED)


def visible_tasks(request: Request):
    """Tasks the request's key may see: its own, or all of them with the admin scope."""
    tasks = PushTask.objects.all()
    if not request.auth.has_scope(Scope.ADMIN):
        tasks = tasks.filter(api_key=request.auth)
    return tasks


class RecordPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class PushStatusView(ApiView):
    required_scope = Scope.PUSH
    allowed_query_params = ("page", "page_size")

    @extend_schema(
        summary="A task's status, counts and records",
        parameters=[
            OpenApiParameter("page", int, description="Page of records, from 1."),
            OpenApiParameter("page_size", int, description="Records per page, at most 1000."),
        ],
        responses=inline_serializer(
            "PushStatus",
            {
                "task": PushTaskSerializer(),
                "counts": serializers.DictField(
                    child=serializers.DictField(child=serializers.IntegerField()),
                    help_text="Record count per channel kind and status.",
                ),
                "total": serializers.IntegerField(),
                "variants": serializers.DictField(
                    child=serializers.DictField(child=serializers.IntegerField()),
                    help_text="Per A/B variant, records and how many were sent, "
                    "delivered, opened and clicked; empty without variants.",
                ),
                "records": inline_serializer(
                    "PushRecordPage",
                    {
                        "count": serializers.IntegerField(),
                        "next": serializers.URLField(allow_null=True),
                        "previous": serializers.URLField(allow_null=True),
                        "results": PushRecordSerializer(many=True),
                    },
                ),
            },
        ),
    )
    def get(self, request: Request, task_id) -> Response:
        task = get_object_or_404(visible_tasks(request), pk=task_id)
        counts, total = task_counts(task.pk)
        paginator = RecordPagination()
        page = paginator.paginate_queryset(
            task.records.select_related("channel").order_by("id"), request, view=self
        )
        return Response(
            {
                "task": PushTaskSerializer(task).data,
                "counts": counts,
                "total": total,
                "variants": variant_counts(task),
                "records": {
                    "count": paginator.page.paginator.count,
                    "next": paginator.get_next_link(),
                    "previous": paginator.get_previous_link(),
                    "results": PushRecordSerializer(page, many=True).data,
                },
            }
        )


class PushCancelView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(
        request=None,
        responses={200: PushAcceptedSerializer},
        summary="Cancel a task",
        description="Stops every record of the task that has not been handed to a "
        "provider yet; those become suppressed with reason task_cancelled. Cancelling "
        "a finished task returns 409.",
    )
    def post(self, request: Request, task_id) -> Response:
        try:
            task, _ = cancel_task(visible_tasks(request), task_id)
        except TaskFinished as error:
            raise Conflict(str(error)) from None
        return Response(accepted_body(task))
