"""The admin dashboard: the delivery funnel, channel comparison and a daily series."""
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from analytics.models import HourlyStat
from analytics.query import channel_comparison, delivery_stats, time_zone
from analytics.rollups import NO_CAMPAIGN
from sharestack_push.notifications.constants import ChannelKind
from sharestack_push.notifications.models import Campaign

DEFAULT_DAYS = 30
MAX_DAYS = 366
# The days the form accepts. They stay far from years 1 and 9999, so adding a day or a
# time zone offset cannot leave datetime's range.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(8999, 12, 31)
DAY_RANGE_ERROR = f"Choose a day from {FIRST_DAY} to {LAST_DAY}."


def day_field(label: str, help_text: str) -> forms.DateField:
    """Return a date field that rejects days outside FIRST_DAY to LAST_DAY."""
    return forms.DateField(
        label=label,
        help_text=help_text,
        validators=[
            MinValueValidator(FIRST_DAY, message=DAY_RANGE_ERROR),
            MaxValueValidator(LAST_DAY, message=DAY_RANGE_ERROR),
        ],
    )
FUNNEL = ("sent", "delivered", "opened", "clicked")


class DashboardForm(forms.Form):
    start = day_field("From", "First day shown, in the time zone.")
    end = day_field("To", "Last day shown, included.")
    channel = forms.ChoiceField(required=False, choices=[("", "All channels"), *ChannelKind.choices])
    type = forms.ChoiceField(required=False, label="Notification type")
    campaign = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    tz = forms.CharField(label="Time zone", help_text="IANA name, such as Asia/Shanghai.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        types = HourlyStat.objects.values_list("notification_type", flat=True).distinct()
        choices = sorted(set(types))
        self.fields["type"].choices = [("", "All types"), *((name, name) for name in choices)]
        campaigns = Campaign.objects.order_by("-pk").values_list("pk", "name")
        self.fields["campaign"].choices = [
            ("", "All messages"),
            (str(NO_CAMPAIGN), "Outside campaigns"),
            *((str(pk), f"{name} (#{pk})") for pk, name in campaigns),
        ]

    def clean_tz(self) -> ZoneInfo:
        try:
            return time_zone(self.cleaned_data["tz"])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", "Must not be before From.")
        elif start and end and (end - start).days >= MAX_DAYS:
            self.add_error("end", f"Show at most {MAX_DAYS} days.")
        return data


def default_filters() -> dict[str, Any]:
    zone = settings.PUSH_DEFAULT_TIMEZONE
    today = timezone.now().astimezone(ZoneInfo(zone)).date()
    return {"start": today - timedelta(days=DEFAULT_DAYS - 1), "end": today, "tz": zone}


def stats_params(data: dict[str, Any]) -> dict[str, Any]:
    """Turn the form's local days into the statistics query's UTC range and filters."""
    zone = data["tz"]
    return {
        "from": datetime.combine(data["start"], time(), zone),
        "to": datetime.combine(data["end"] + timedelta(days=1), time(), zone),
        "channel": [data["channel"]] if data.get("channel") else None,
        "type": [data["type"]] if data.get("type") else None,
        "campaign": [data["campaign"]] if data.get("campaign") is not None else None,
        "tz": zone,
    }


def daily_series(params: dict[str, Any], start: date, end: date) -> list[dict[str, Any]]:
    """Return one row per local day from start to end, with zeros for days without data."""
    rows = delivery_stats(params | {"group_by": ["day"]})["groups"]
    by_day = {row["day"]: row for row in rows}
    series = []
    for offset in range((end - start).days + 1):
        day = (start + timedelta(days=offset)).isoformat()
        row = by_day.get(day) or {name: 0 for name in (*FUNNEL, "failed")}
        series.append({"day": day} | {name: row[name] for name in (*FUNNEL, "failed")})
    return series


def dashboard(request: HttpRequest) -> TemplateResponse:
    """Render the dashboard for the filters in the query string, or the last 30 days.

    A filter the query string leaves out takes its default, so a link that names only
    a campaign shows that campaign over the default days.
    """
    defaults = default_filters()
    bound = None
    if request.GET:
        bound = {name: str(value) for name, value in defaults.items()} | request.GET.dict()
    form = DashboardForm(bound, initial=defaults)
    if request.GET and form.is_valid():
        data = form.cleaned_data
    else:
        data = default_filters() | {"tz": ZoneInfo(default_filters()["tz"])}
    params = stats_params(data)
    totals = delivery_stats(params)["totals"]
    context = admin.site.each_context(request) | {
        "title": "Delivery dashboard",
        "form": form,
        "zone": str(data["tz"]),
        "start": data["start"],
        "end": data["end"],
        "totals": totals,
        "funnel": [{"stage": name, "count": totals[name]} for name in FUNNEL],
        "channels": channel_comparison(params),
        "series": daily_series(params, data["start"], data["end"]),
    }
    return TemplateResponse(request, "admin/analytics/dashboard.html", context)
