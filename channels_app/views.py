import logging

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from channels_app.models import Channel, Contact, Device
from channels_app.serializers import (
    ChannelSerializer,
    ContactSerializer,
    DeviceSerializer,
)
from preferences.models import UserProfile
from sharestack_push.notifications.apiview import ApiView
from sharestack_push.notifications.constants import Scope

logger = logging.getLogger(__name__)


class ChannelListView(ApiView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=ChannelSerializer(many=True), summary="List channels")
    def get(self, request: Request) -> Response:
        return Response(ChannelSerializer(Channel.objects.all(), many=True).data)

    @extend_schema(request=ChannelSerializer, responses={201: ChannelSerializer}, summary="Add a channel")
    def post(self, request: Request) -> Response:
        serializer = ChannelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = serializer.save()
        logger.info("channels: created channel %s (%s/%s)", channel.pk, channel.kind, channel.provider)
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailView(ApiView):
    required_scope = Scope.ADMIN

    @extend_schema(responses=ChannelSerializer, summary="Show a channel")
    def get(self, request: Request, channel_id: int) -> Response:
        return Response(ChannelSerializer(get_object_or_404(Channel, pk=channel_id)).data)

    @extend_schema(request=ChannelSerializer, responses=ChannelSerializer, summary="Change a channel")
    def patch(self, request: Request, channel_id: int) -> Response:
        channel = get_object_or_404(Channel, pk=channel_id)
        serializer = ChannelSerializer(channel, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        channel = serializer.save()
        logger.info("channels: changed channel %s", channel.pk)
        return Response(ChannelSerializer(channel).data)


def ensure_profile(user_id: str) -> None:
    UserProfile.objects.get_or_create(user_id=user_id)


class ContactView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(
        request=ContactSerializer,
        responses={201: ContactSerializer, 200: ContactSerializer},
        summary="Register an email address, phone number or WeChat id",
        description="Idempotent on (user_id, kind, address): a repeat returns the "
        "existing contact with 200 and reactivates it.",
    )
    def post(self, request: Request) -> Response:
        serializer = ContactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            contact, created = Contact.objects.get_or_create(
                user_id=data["user_id"], kind=data["kind"], address=data["address"]
            )
            if not created and not contact.is_active:
                contact.is_active, contact.deactivated_at, contact.deactivation_reason = True, None, ""
                contact.save()
            ensure_profile(contact.user_id)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(ContactSerializer(contact).data, status=code)


class DeviceView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(
        request=DeviceSerializer,
        responses={201: DeviceSerializer, 200: DeviceSerializer},
        summary="Register a push token",
        description="Idempotent on (provider, token): a repeat returns the existing device "
        "with 200, reactivates it and moves it to the given user.",
    )
    def post(self, request: Request) -> Response:
        serializer = DeviceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            device, created = Device.objects.select_for_update().get_or_create(
                provider=data["provider"], token=data["token"],
                defaults={"user_id": data["user_id"], "platform": data["platform"]},
            )
            if not created:
                device.user_id, device.platform = data["user_id"], data["platform"]
                device.is_active, device.deactivated_at, device.deactivation_reason = True, None, ""
                device.registered_at = timezone.now()
                device.save()
            ensure_profile(device.user_id)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(DeviceSerializer(device).data, status=code)


def deactivate_address(model, address_id: int) -> Response:
    """Turn an address off for good: it stays in records' history but gets no sends."""
    address = get_object_or_404(model, pk=address_id)
    if address.is_active:
        address.is_active = False
        address.deactivated_at = timezone.now()
        address.deactivation_reason = "unregistered"
        address.save(update_fields=["is_active", "deactivated_at", "deactivation_reason"])
        logger.info("addresses: %s %s unregistered", model.__name__.lower(), address.pk)
    return Response(status=status.HTTP_204_NO_CONTENT)


class ContactDetailView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(responses={204: None}, summary="Unregister a contact")
    def delete(self, request: Request, contact_id: int) -> Response:
        return deactivate_address(Contact, contact_id)


class DeviceDetailView(ApiView):
    required_scope = Scope.PUSH

    @extend_schema(responses={204: None}, summary="Unregister a push token")
    def delete(self, request: Request, device_id: int) -> Response:
        return deactivate_address(Device, device_id)
