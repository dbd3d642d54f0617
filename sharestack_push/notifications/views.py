import logging

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.counts import task_counts
from sharestack_push.notifications import clock
from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import (
    Reason,
    RecordStatus,
    Scope,
    TaskStatus,
)
from sharestack_push.notifications.models import PushTask
from sharestack_push.notifications.serializers import (
    PushAcceptedSerializer,
    PushRecordSerializer,
    PushSerializer,
    PushTaskSerializer,
)
from sharestack_push.notifications.tasks import enqueue_dispatch
from sharestack_push.notifications.variants import variant_counts

logger = logging.getLogger(__name__)

FINISHED_TASK_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def accepted_body(task: PushTask) -> dict:
    return {"id": str(task.pk), "notification_id": task.notification_id, "status": task.status}


def task_from_request(data: dict, api_key) -> PushTask:
    now = clock.now()
    schedule_time = data.get("schedule_time")
    target = PushTask.Target.USER
    if data.get("broadcast"):
        target = PushTask.Target.BROADCAST
    elif data.get("user_ids"):
        target = PushTask.Target.USERS
    elif not data.get("user_id"):
        target = PushTask.Target.CHANNELS
    return PushTask(
        api_key=api_key,
        notification_id=data["notification_id"],
        notification_type=data["notification_type"],
        target=target,
        user_id=data.get("user_id", ""),
        user_ids=data.get("user_ids", []),
        channels=data["channels"],
        template_name=data.get("template", ""),
        content=data.get("content") or {},
        variables=data.get("variables") or {},
        options=data.get("options") or {},
        priority=data["priority"],
        schedule_time=schedule_time,
        send_at=data.get("send_at", ""),
        fallback=data.get("fallback") or {},
        variants=[dict(entry) for entry in data.get("variants", [])],
        status=TaskStatus.SCHEDULED if schedule_time and schedule_time > now else TaskStatus.PENDING,
    )


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
        serializer = PushSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        existing = PushTask.objects.filter(
            api_key=request.auth,
            notification_id=serializer.validated_data["notification_id"],
        ).first()
        if existing is not None:
            return Response(accepted_body(existing), status=status.HTTP_200_OK)

        task = task_from_request(serializer.validated_data, request.auth)
        try:
            with transaction.atomic():
                task.save()
                if task.status == TaskStatus.PENDING:
                    transaction.on_commit(lambda: enqueue_dispatch(str(task.pk)))
        except IntegrityError:
            # Another request with the same notification_id won the race.
            existing = PushTask.objects.get(api_key=request.auth, notification_id=task.notification_id)
            return Response(accepted_body(existing), status=status.HTTP_200_OK)
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
        with transaction.atomic():
            task = get_object_or_404(visible_tasks(request).select_for_update(), pk=task_id)
            if task.status in FINISHED_TASK_STATUSES:
                raise Conflict(f"Task is already {task.status}.")
            now = clock.now()
            task.status, task.completed_at = TaskStatus.CANCELLED, now
            task.save(update_fields=["status", "completed_at", "updated_at"])
            stopped = task.records.filter(
                status__in=[RecordStatus.QUEUED, RecordStatus.DEFERRED, RecordStatus.RETRYING]
            ).update(
                status=RecordStatus.SUPPRESSED, reason=Reason.TASK_CANCELLED,
                next_attempt_at=None, updated_at=now,
            )
        logger.info("push: cancelled task %s, %s records stopped", task.pk, stopped)
        return Response(accepted_body(task))
