"""The admin's campaigns and segments: compose, send once, watch progress, cancel."""
import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from sharestack_push.notifications.campaigns import (
    AlreadySent,
    CampaignInvalid,
    UploadInvalid,
    audience_size,
    campaign_progress,
    count_user_ids,
    send_campaign,
    store_recipients,
    validate_campaign,
)
from sharestack_push.notifications.constants import ChannelKind, TaskStatus
from sharestack_push.notifications.models import Campaign, PushTask, Segment
from sharestack_push.notifications.segments import matching_profiles
from sharestack_push.notifications.service import (
    FINISHED_TASK_STATUSES,
    TaskFinished,
    cancel_task,
)

logger = logging.getLogger(__name__)

# The progress page reloads itself this often, in seconds, while its task is active.
PROGRESS_REFRESH_SECONDS = 3
# Task statuses in which records are still being created or sent.
ACTIVE_TASK_STATUSES = (TaskStatus.PENDING, TaskStatus.PROCESSING)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "conditions", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["matching_users"]

    @admin.display(description="Matching users now")
    def matching_users(self, segment: Segment) -> int | str:
        if segment.pk is None:
            return "Save the segment to count its users."
        return matching_profiles(segment.conditions).count()


class CampaignForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        choices=ChannelKind.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Channel kinds to send on; none uses the notification type's defaults.",
    )
    recipients_file = forms.FileField(
        required=False, label="Upload user ids (CSV)",
        help_text="A CSV file whose header line names a user_id column. A new upload "
        "replaces the list; duplicates are dropped.",
    )

    class Meta:
        model = Campaign
        exclude = ["created_by"]

    def clean_variables(self) -> Any:
        # An empty JSON box cleans to None, which the non-null column rejects.
        return self.cleaned_data.get("variables") or {}

    def clean_options(self) -> Any:
        return self.cleaned_data.get("options") or {}

    def clean_variants(self) -> Any:
        return self.cleaned_data.get("variants") or []

    def clean_recipients_file(self) -> Any:
        upload = self.cleaned_data.get("recipients_file")
        if upload is None:
            return None
        try:
            count_user_ids(upload)
        except UploadInvalid as error:
            raise forms.ValidationError(error.errors) from None
        return upload

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors or (self.instance.pk and sent_task(self.instance) is not None):
            return
        audience = self.instance.audience
        has_list = self.cleaned_data.get("recipients_file") or (
            self.instance.pk and self.instance.recipients.exists()
        )
        if audience == Campaign.Audience.UPLOAD and not has_list:
            self.add_error("recipients_file", "Upload a CSV of user ids for this audience.")
        try:
            validate_campaign(self.instance)
        except CampaignInvalid as error:
            for field, field_messages in error.errors.items():
                target = field if field in self.fields else None
                for message in field_messages:
                    self.add_error(target, message)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    change_form_template = "admin/notifications/campaign/change_form.html"
    list_display = ["name", "notification_type", "audience", "send_mode", "status",
                    "created_by", "created_at"]
    list_filter = ["audience", "send_mode", "notification_type"]
    search_fields = ["name", "notification_type"]
    actions = ["cancel_campaigns"]
    fieldsets = [
        (None, {"fields": ["name", "notification_type", "priority"]}),
        ("Content", {"fields": ["template_name", "variables", "title", "body", "options",
                                "variants"]}),
        ("Audience", {"fields": ["audience", "segment", "recipients_file", "audience_size"]}),
        ("Delivery", {"fields": ["channels", "send_mode", "schedule_time"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return super().get_queryset(request).select_related("task", "created_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None) -> list[str]:
        if obj is not None and sent_task(obj) is not None:
            # A sent campaign is what its task sent, so it no longer changes.
            return [field.name for field in Campaign._meta.fields] + ["audience_size"]
        return ["audience_size"]

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None) -> list:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or sent_task(obj) is None:
            return fieldsets
        return [
            (name, {"fields": [field for field in options["fields"] if field != "recipients_file"]})
            for name, options in fieldsets
        ]

    @admin.display(description="Users in the audience now")
    def audience_size(self, campaign: Campaign) -> int | str:
        if campaign.pk is None:
            return "Save the campaign to count its audience."
        return audience_size(campaign)

    @admin.display(description="Status")
    def status(self, campaign: Campaign) -> str:
        task = sent_task(campaign)
        return "draft" if task is None else task.status

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        upload = form.cleaned_data.get("recipients_file")
        if upload is not None:
            stored = store_recipients(obj, upload)
            messages.info(request, f"The audience holds {stored} distinct user ids.")

    @admin.action(description="Cancel the selected campaigns' unsent messages")
    def cancel_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            cancel_and_report(request, campaign)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("<int:campaign_id>/send/", view(require_POST(self.send_view)),
                 name="notifications_campaign_send"),
            path("<int:campaign_id>/cancel/", view(require_POST(self.cancel_view)),
                 name="notifications_campaign_cancel"),
            path("<int:campaign_id>/progress/", view(self.progress_view),
                 name="notifications_campaign_progress"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        campaign = self.get_object(request, object_id)
        task = sent_task(campaign) if campaign is not None else None
        context = {"campaign_task": task, "can_cancel": can_cancel(task), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def send_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = self.campaign_or_404(request, campaign_id, change=True)
        try:
            task = send_campaign(campaign.pk, request.user)
        except AlreadySent as error:
            logger.warning("campaign: %s not sent again: %s", campaign.pk, error)
            messages.warning(request, str(error))
            return self.redirect(campaign, "progress")
        except CampaignInvalid as error:
            logger.warning("campaign: %s not sent, invalid: %s", campaign.pk, error)
            for field, field_messages in error.errors.items():
                for message in field_messages:
                    prefix = f"{field}: " if field else ""
                    messages.error(request, f"Not sent. {prefix}{message}")
            return self.redirect(campaign, "change")
        messages.success(request, f"Campaign {campaign.name!r} sent as task {task.pk} ({task.status}).")
        return self.redirect(campaign, "progress")

    def cancel_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = self.campaign_or_404(request, campaign_id, change=True)
        cancel_and_report(request, campaign)
        return self.redirect(campaign, "progress")

    def progress_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = self.campaign_or_404(request, campaign_id, change=False)
        task = sent_task(campaign)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Progress of {campaign.name}",
            "campaign": campaign,
            "task": task,
            "audience_size": audience_size(campaign),
            "can_cancel": can_cancel(task),
            "refresh_seconds": PROGRESS_REFRESH_SECONDS if active(task) else None,
        }
        if task is not None:
            context.update(campaign_progress(campaign, task))
        return TemplateResponse(request, "admin/notifications/campaign/progress.html", context)

    def campaign_or_404(self, request: HttpRequest, campaign_id: int, change: bool) -> Campaign:
        campaign = get_object_or_404(self.get_queryset(request), pk=campaign_id)
        allowed = (self.has_change_permission if change else self.has_view_permission)(
            request, campaign
        )
        if not allowed:
            raise Http404("No campaign you may see has this id.")
        return campaign

    def redirect(self, campaign: Campaign, page: str) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse(f"admin:notifications_campaign_{page}", args=[campaign.pk])
        )


def sent_task(campaign: Campaign) -> PushTask | None:
    """Return the task the campaign created, or None for a campaign not sent yet."""
    try:
        return campaign.task
    except PushTask.DoesNotExist:
        return None


def can_cancel(task: PushTask | None) -> bool:
    return task is not None and task.status not in FINISHED_TASK_STATUSES


def active(task: PushTask | None) -> bool:
    return task is not None and task.status in ACTIVE_TASK_STATUSES


def cancel_and_report(request: HttpRequest, campaign: Campaign) -> None:
    """Cancel the campaign's task by the API's cancel logic and add a message on the outcome."""
    task = sent_task(campaign)
    if task is None:
        messages.error(request, f"Campaign {campaign.name!r} was not sent, so nothing to cancel.")
        return
    try:
        _, stopped = cancel_task(PushTask.objects.filter(campaign=campaign), task.pk)
    except TaskFinished as error:
        logger.warning("campaign: %s not cancelled: %s", campaign.pk, error)
        messages.error(request, f"Campaign {campaign.name!r} not cancelled: {error}")
        return
    messages.success(
        request, f"Campaign {campaign.name!r} cancelled; {stopped} unsent messages stopped."
    )
