from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics.dashboard import dashboard
from analytics.metrics_view import MetricsView
from analytics.tracking_views import click_redirect, open_pixel
from analytics.stats_views import ChannelComparisonView, ChurnView
from analytics.views import EventView, StatsView, UserEngagementView
from channels_app.callbacks import provider_callback
from channels_app.views import (
    ChannelDetailView,
    ChannelListView,
    ContactDetailView,
    ContactView,
    DeviceDetailView,
    DeviceView,
)
from preferences.activity_views import ActivityView, UserAttributesView
from preferences.unsubscribe import unsubscribe
from preferences.pages import preference_centre
from preferences.views import PreferenceLinkView, PreferencesView
from sharestack_push.health import healthz
from sharestack_push.notifications.views import (
    PushCancelView,
    PushStatusView,
    PushView,
)
from templates.views import TemplateListView

handler400 = "sharestack_push.notifications.errors.bad_request"
handler404 = "sharestack_push.notifications.errors.not_found"

api = "api/v1/"
urlpatterns = [
    path(f"{api}notifications/push", PushView.as_view(), name="push"),
    path(f"{api}notifications/push/<uuid:task_id>", PushStatusView.as_view(), name="push-status"),
    path(
        f"{api}notifications/push/<uuid:task_id>/cancel",
        PushCancelView.as_view(),
        name="push-cancel",
    ),
    path(f"{api}notifications/stats", StatsView.as_view(), name="stats"),
    path(
        f"{api}notifications/stats/channels",
        ChannelComparisonView.as_view(),
        name="stats-channels",
    ),
    path(f"{api}notifications/stats/churn", ChurnView.as_view(), name="stats-churn"),
    path(f"{api}notifications/events", EventView.as_view(), name="events"),
    path(f"{api}notifications/preferences", PreferencesView.as_view(), name="preferences"),
    path(
        f"{api}notifications/preferences/link",
        PreferenceLinkView.as_view(),
        name="preference-link",
    ),
    path(f"{api}activity", ActivityView.as_view(), name="activity"),
    path(
        f"{api}users/<str:user_id>/attributes",
        UserAttributesView.as_view(),
        name="user-attributes",
    ),
    path(
        f"{api}users/<str:user_id>/engagement",
        UserEngagementView.as_view(),
        name="user-engagement",
    ),
    path(f"{api}channels", ChannelListView.as_view(), name="channels"),
    path(f"{api}channels/<int:channel_id>", ChannelDetailView.as_view(), name="channel"),
    path(f"{api}contacts", ContactView.as_view(), name="contacts"),
    path(f"{api}devices", DeviceView.as_view(), name="devices"),
    path(f"{api}contacts/<int:contact_id>", ContactDetailView.as_view(), name="contact"),
    path(f"{api}devices/<int:device_id>", DeviceDetailView.as_view(), name="device"),
    path(f"{api}callbacks/<int:channel_id>", provider_callback, name="provider-callback"),
    path(f"{api}templates", TemplateListView.as_view(), name="templates"),
    path(f"{api}schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[], authentication_classes=[]), name="docs"),
    path("unsubscribe/<str:token>", unsubscribe, name="unsubscribe"),
    # Short paths, because click links are counted in SMS characters.
    path("c/<str:token>", click_redirect, name="click-redirect"),
    path("o/<str:token>", open_pixel, name="open-pixel"),
    path("preferences/", preference_centre, name="preference-centre"),
    path("healthz", healthz, name="healthz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path(
        "admin/analytics/dashboard/",
        admin.site.admin_view(dashboard),
        name="analytics-dashboard",
    ),
    path("admin/", admin.site.urls),
]
