from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import Scope
from templates.models import PushTemplate
from templates.serializers import PushTemplateSerializer


class TemplateListView(ApiView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=PushTemplateSerializer(many=True), summary="List templates")
    def get(self, request: Request) -> Response:
        templates = PushTemplate.objects.order_by("name", "channel", "locale")
        return Response(PushTemplateSerializer(templates, many=True).data)

    @extend_schema(request=PushTemplateSerializer, responses={201: PushTemplateSerializer},
                   summary="Add a template")
    def post(self, request: Request) -> Response:
        serializer = PushTemplateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = serializer.save()
        return Response(PushTemplateSerializer(template).data, status=status.HTTP_201_CREATED)
