from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from channels_app.models import Channel, Contact, Device
from channels_app.providers import REGISTRY
from channels_app.providers.base import Outcome, OutgoingMessage, SendResult
from sharestack_push.notifications.delivery import call_provider

CREDENTIAL_PREFIX = "credential_"
CLEAR_SUFFIX = "_clear"
# A secret at least this long shows its last four characters; a shorter one shows none.
MIN_LENGTH_TO_SHOW_END = 16


def mask(value: Any) -> str:
    """Describe a stored credential without revealing it."""
    if isinstance(value, dict):
        return f"stored JSON object with {len(value)} keys"
    text = str(value)
    if len(text) >= MIN_LENGTH_TO_SHOW_END:
        return f"stored, ending in …{text[-4:]}"
    return "stored"


def credential_field(adapter: Any, name: str, stored: Any) -> forms.Field:
    """Build a write-only form field for one credential key of an adapter."""
    if name in adapter.object_credentials:
        field: forms.Field = forms.JSONField(widget=forms.Textarea(attrs={"rows": 4}))
    elif name.endswith("private_key"):
        # A PEM key spans several lines, which a password input would join into one.
        field = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False)
    else:
        field = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False)
    field.required = False
    field.label = f"Credential {name}"
    state = mask(stored) if stored not in (None, "") else "not set"
    field.help_text = f"Currently {state}. Leave blank to keep the stored value."
    return field


def credential_names(adapter: Any) -> tuple[str, ...]:
    return (*adapter.required_credentials, *adapter.optional_credentials)


def removable_credentials(adapter: Any, stored: dict[str, Any]) -> list[str]:
    """Return the optional credentials that are stored and so can be removed."""
    return [
        name for name in adapter.optional_credentials if stored.get(name) not in (None, "")
    ]


def credential_form_fields(provider: str, stored: dict[str, Any]) -> list[str]:
    """Return the names of the credential fields ChannelForm adds for a provider."""
    adapter = REGISTRY.get(provider)
    if adapter is None:
        return []
    names = [CREDENTIAL_PREFIX + name for name in credential_names(adapter)]
    names += [
        CREDENTIAL_PREFIX + name + CLEAR_SUFFIX
        for name in removable_credentials(adapter, stored)
    ]
    return names


class ChannelForm(forms.ModelForm):
    """Checks provider, kind, config and credentials with the adapter's own rules.

    Each credential key of the chosen provider gets a write-only field. A blank field
    keeps the stored value, so a secret changes only when it is retyped.
    """

    provider = forms.ChoiceField(choices=lambda: [(key, key) for key in sorted(REGISTRY)])

    class Meta:
        model = Channel
        exclude = ["encrypted_credentials"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adapter = REGISTRY.get(self.chosen_provider())
        self.stored_credentials = self.instance.credentials if self.instance.pk else {}
        if self.adapter is None:
            return
        for name in self.credential_names():
            stored = self.stored_credentials.get(name)
            self.fields[CREDENTIAL_PREFIX + name] = credential_field(self.adapter, name, stored)
        for name in removable_credentials(self.adapter, self.stored_credentials):
            self.fields[CREDENTIAL_PREFIX + name + CLEAR_SUFFIX] = forms.BooleanField(
                required=False, label=f"Remove credential {name}"
            )

    def chosen_provider(self) -> str:
        if self.is_bound:
            return str(self.data.get("provider", ""))
        return str(self.initial.get("provider") or self.instance.provider or "")

    def credential_names(self) -> tuple[str, ...]:
        return credential_names(self.adapter)

    def credentials(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        """Merge the retyped credentials over the stored ones of the same provider."""
        same_provider = self.instance.pk and self.instance.provider == cleaned.get("provider")
        credentials = dict(self.stored_credentials) if same_provider else {}
        for name in self.credential_names():
            if cleaned.get(CREDENTIAL_PREFIX + name + CLEAR_SUFFIX):
                credentials.pop(name, None)
            value = cleaned.get(CREDENTIAL_PREFIX + name)
            if value not in (None, ""):
                credentials[name] = value
        return credentials

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        adapter = REGISTRY.get(cleaned.get("provider", ""))
        if adapter is None:
            return cleaned
        if cleaned.get("kind") not in adapter.kinds:
            self.add_error("kind", f"Provider {adapter.key!r} sends only {', '.join(adapter.kinds)}.")
        config = cleaned.get("config")
        if not isinstance(config, dict):
            self.add_error("config", "Must be a JSON object.")
            return cleaned
        self.new_credentials = self.credentials(cleaned)
        for field, message in adapter.validate(config, self.new_credentials).items():
            section, _, name = field.partition(".")
            if section == "config":
                self.add_error("config", f"{field}: {message}")
            elif CREDENTIAL_PREFIX + name in self.fields:
                if CREDENTIAL_PREFIX + name not in self.errors:
                    self.add_error(CREDENTIAL_PREFIX + name, message)
            else:
                self.add_error(None, f"{field}: {message}")
        return cleaned

    def save(self, commit: bool = True) -> Channel:
        channel = super().save(commit=False)
        if hasattr(self, "new_credentials"):
            channel.credentials = self.new_credentials
        if commit:
            channel.save()
        return channel


class SendTestForm(forms.Form):
    address = forms.CharField(
        max_length=512,
        help_text="A device token, email address, phone number or WeChat id, as the "
        "channel's provider expects.",
    )
    platform = forms.ChoiceField(
        required=False,
        choices=[("", "-"), *Device.Platform.choices],
        help_text="App push only: the device's platform.",
    )
    title = forms.CharField(max_length=200, initial="Test message")
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        initial="This is a test message from the ShareStack Push admin.",
    )

    def message(self) -> OutgoingMessage:
        data = self.cleaned_data
        return OutgoingMessage(
            record_id=0,
            address=data["address"],
            title=data["title"],
            body=data["body"],
            platform=data["platform"],
        )


def describe_result(result: SendResult) -> str:
    """Write one send result as a sentence for the admin, without any credential."""
    if result.outcome == Outcome.SENT:
        message_id = result.provider_message_id or "none given"
        return f"Sent. Provider message id: {message_id}."
    details = [result.error_code, result.error_message]
    text = f"Not sent: {result.outcome.value}"
    if any(details):
        text += f" ({': '.join(part for part in details if part)})"
    if result.retry_after:
        text += f", retry after {result.retry_after:g} s"
    return text + "."


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = [
        "name",
        "kind",
        "provider",
        "enabled",
        "priority",
        "rate_limit_per_second",
        "cost_per_message",
        "is_healthy",
        "send_test_link",
    ]
    list_filter = ["kind", "provider", "enabled", "is_healthy"]
    search_fields = ["name", "provider"]
    readonly_fields = ["last_error", "updated_at"]
    actions = ["enable_channels", "disable_channels"]

    def get_form(self, request: HttpRequest, obj: Channel | None = None, **kwargs: Any) -> Any:
        # The credential fields exist only on form instances, so the form class is
        # built from the model fields alone and the fieldsets name the rest.
        if "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs["fields"] is not None:
            kwargs["fields"] = [
                name for name in kwargs["fields"] if not name.startswith(CREDENTIAL_PREFIX)
            ]
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Channel | None = None) -> Any:
        provider = (
            request.POST.get("provider")
            or request.GET.get("provider")
            or (obj.provider if obj else "")
        )
        stored = obj.credentials if obj else {}
        credentials = credential_form_fields(provider, stored)
        fieldsets: list[Any] = [(None, {"fields": self.get_fields(request, obj)})]
        if credentials:
            description = "Stored values are shown masked. A blank field keeps its value."
            fieldsets.append(
                ("Credentials", {"fields": credentials, "description": description})
            )
        return fieldsets

    @admin.action(description="Enable selected channels")
    def enable_channels(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        self.set_enabled(request, queryset, True)

    @admin.action(description="Disable selected channels")
    def disable_channels(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        self.set_enabled(request, queryset, False)

    def set_enabled(self, request: HttpRequest, queryset: QuerySet[Channel], enabled: bool) -> None:
        # save() rather than update() so updated_at changes and workers rebuild adapters.
        channels = list(queryset)
        for channel in channels:
            channel.enabled = enabled
            channel.save(update_fields=["enabled", "updated_at"])
        state = "enabled" if enabled else "disabled"
        self.message_user(request, f"{len(channels)} channel(s) {state}.", messages.SUCCESS)

    @admin.display(description="Test")
    def send_test_link(self, channel: Channel) -> str:
        url = reverse("admin:channels_app_channel_send_test", args=[channel.pk])
        return format_html('<a href="{}">Send test</a>', url)

    def get_urls(self) -> list[Any]:
        send_test = path(
            "<int:channel_id>/send-test/",
            self.admin_site.admin_view(self.send_test_view),
            name="channels_app_channel_send_test",
        )
        return [send_test, *super().get_urls()]

    def send_test_view(self, request: HttpRequest, channel_id: int) -> HttpResponse:
        """Send one message through the channel's adapter and show the outcome."""
        channel = get_object_or_404(Channel, pk=channel_id)
        if not self.has_change_permission(request, channel):
            return HttpResponse(status=403)
        form = SendTestForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = call_provider(channel, [form.message()])[0]
            level = messages.SUCCESS if result.outcome == Outcome.SENT else messages.ERROR
            self.message_user(request, describe_result(result), level)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "channel": channel,
            "form": form,
            "result": result,
            "title": f"Send a test message through {channel}",
        }
        return TemplateResponse(request, "admin/channels_app/channel/send_test.html", context)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["user_id", "platform", "provider", "is_active", "last_seen_at"]
    list_filter = ["platform", "provider", "is_active"]
    search_fields = ["user_id"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["user_id", "kind", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["user_id"]
