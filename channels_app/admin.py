from django import forms
from django.contrib import admin

from channels_app.models import Channel, Contact, Device
from channels_app.providers import REGISTRY


class ChannelForm(forms.ModelForm):
    """Checks provider, kind and config with the adapter's own rules, as the API does."""

    provider = forms.ChoiceField(choices=lambda: [(key, key) for key in sorted(REGISTRY)])

    class Meta:
        model = Channel
        exclude = ["encrypted_credentials"]

    def clean(self):
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
        credentials = self.instance.credentials if self.instance.pk else {}
        for field, message in adapter.validate(config, credentials).items():
            # Credentials are set through the API, so only config errors belong here.
            if field.startswith("config"):
                self.add_error("config", f"{field}: {message}")
        return cleaned


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "provider", "enabled", "priority", "is_healthy"]
    list_filter = ["kind", "provider", "enabled"]


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
