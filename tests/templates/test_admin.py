"""The template admin: validation on save, the preview area and the preview endpoint."""
import json

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from templates.models import PushTemplate

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:push_templates_pushtemplate_add")
PREVIEW_URL = reverse("admin:push_templates_pushtemplate_preview")


def form_data(**fields):
    data = {
        "name": "order_shipped",
        "type": "order",
        "channel": "email",
        "locale": "en",
        "title_template": "Order {{ order }} shipped",
        "content_template": "Hi {{ name }}, order {{ order }} is on its way.",
        "html_template": "<p>Hi {{ name }}</p>",
        "action_template": '{"url": "https://example.com/orders/{{ order }}"}',
        "variables": '["order", {"name": "name", "default": "there"}]',
        "sample_variables": '{"order": "A-17"}',
        "is_active": "on",
    }
    data.update(fields)
    return data


def make_template(**fields):
    values = {
        "name": "order_shipped",
        "channel": "email",
        "locale": "en",
        "title_template": "Order {{ order }} shipped",
        "content_template": "Hi {{ name }}, order {{ order }} is on its way.",
        "variables": ["order", {"name": "name", "default": "there"}],
        "sample_variables": {"order": "A-17"},
    }
    values.update(fields)
    return PushTemplate.objects.create(**values)


def test_valid_template_saves(staff_client):
    response = staff_client.post(ADD_URL, form_data())
    assert response.status_code == 302
    template = PushTemplate.objects.get()
    assert template.sample_variables == {"order": "A-17"}


def test_undeclared_variable_is_rejected(staff_client):
    response = staff_client.post(ADD_URL, form_data(content_template="Hi {{ nickname }}"))
    assert response.status_code == 200
    assert not PushTemplate.objects.exists()
    errors = response.context["adminform"].form.errors
    assert errors["content_template"] == ["variable 'nickname' is used but not declared"]


def test_bad_syntax_is_rejected(staff_client):
    response = staff_client.post(ADD_URL, form_data(title_template="{% if order %}x"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "template syntax error" in errors["title_template"][0]


def test_forbidden_tag_is_rejected(staff_client):
    response = staff_client.post(ADD_URL, form_data(content_template="{% debug %}"))
    errors = response.context["adminform"].form.errors
    assert errors["content_template"] == ["tag 'debug' is not allowed in message templates"]


def test_undeclared_variable_in_action_is_rejected(staff_client):
    response = staff_client.post(ADD_URL, form_data(action_template='{"url": "{{ link }}"}'))
    errors = response.context["adminform"].form.errors
    assert errors["action_template"] == ["variable 'link' is used but not declared"]


def test_html_part_only_for_email(staff_client):
    response = staff_client.post(ADD_URL, form_data(channel="sms"))
    errors = response.context["adminform"].form.errors
    assert errors["html_template"] == ["Only email templates have an HTML part."]


def test_malformed_declaration_is_rejected(staff_client):
    response = staff_client.post(ADD_URL, form_data(variables="[1]"))
    errors = response.context["adminform"].form.errors
    assert errors["variables"] == ["invalid variable declaration: 1"]


def test_invalid_locale_is_rejected(staff_client):
    response = staff_client.post(ADD_URL, form_data(locale="english!"))
    errors = response.context["adminform"].form.errors
    assert "language tag" in errors["locale"][0]


def test_locale_is_lowercased(staff_client):
    staff_client.post(ADD_URL, form_data(locale="en-US"))
    assert PushTemplate.objects.get().locale == "en-us"


def test_sample_variables_must_be_object(staff_client):
    response = staff_client.post(ADD_URL, form_data(sample_variables="[1]"))
    errors = response.context["adminform"].form.errors
    assert errors["sample_variables"] == ["Must be a JSON object."]


def test_sample_variables_reject_nul(staff_client):
    response = staff_client.post(ADD_URL, form_data(sample_variables='{"code": "\\u0000"}'))
    errors = response.context["adminform"].form.errors
    assert errors["sample_variables"] == ["Text must not contain NUL characters."]


def test_change_page_shows_rendered_preview(staff_client):
    template = make_template(html_template="<p>Hi {{ name }}</p>")
    url = reverse("admin:push_templates_pushtemplate_change", args=[template.pk])
    page = staff_client.get(url).content.decode()
    assert "Order A-17 shipped" in page
    assert "Hi there, order A-17 is on its way." in page
    assert 'srcdoc="&lt;p&gt;Hi there&lt;/p&gt;"' in page


def test_change_page_previews_other_locales(staff_client):
    template = make_template()
    make_template(locale="zh-hans", title_template="订单 {{ order }} 已发货")
    url = reverse("admin:push_templates_pushtemplate_change", args=[template.pk])
    previews = staff_client.get(url).context["previews"]
    assert [item["template"].locale for item in previews] == ["en", "zh-hans"]
    assert previews[1]["preview"].title == "订单 A-17 已发货"


def test_change_page_reports_missing_sample(staff_client):
    template = make_template(sample_variables={})
    url = reverse("admin:push_templates_pushtemplate_change", args=[template.pk])
    previews = staff_client.get(url).context["previews"]
    assert previews[0]["preview"].errors == ["template variable 'order' has no value"]


def test_saved_samples_update_the_preview(staff_client):
    template = make_template()
    url = reverse("admin:push_templates_pushtemplate_change", args=[template.pk])
    staff_client.post(url, form_data(sample_variables='{"order": "B-99"}', html_template=""))
    page = staff_client.get(url).content.decode()
    assert "Order B-99 shipped" in page


def test_preview_endpoint_renders_unsaved_sources(staff_client):
    response = staff_client.post(PREVIEW_URL, form_data(sample_variables='{"order": "C-3"}'))
    preview = response.json()
    assert response.status_code == 200
    assert preview["title"] == "Order C-3 shipped"
    assert preview["html"] == "<p>Hi there</p>"
    assert preview["data"] == {"url": "https://example.com/orders/C-3"}
    assert preview["errors"] == []


def test_preview_endpoint_escapes_html_variables(staff_client):
    response = staff_client.post(PREVIEW_URL, form_data(sample_variables=json.dumps(
        {"order": "1", "name": "<b>Ann</b>"})))
    assert response.json()["html"] == "<p>Hi &lt;b&gt;Ann&lt;/b&gt;</p>"


def test_preview_endpoint_counts_sms_segments(staff_client):
    response = staff_client.post(PREVIEW_URL, form_data(channel="sms", html_template="",
                                                        content_template="x" * 161))
    preview = response.json()
    assert preview["sms_encoding"] == "GSM-7"
    assert preview["sms_segments"] == 2


def test_preview_endpoint_reports_undeclared_variable(staff_client):
    response = staff_client.post(PREVIEW_URL, form_data(title_template="{{ coupon }}"))
    assert response.json()["errors"] == ["variable 'coupon' is used but not declared"]


def test_preview_endpoint_reports_missing_value(staff_client):
    response = staff_client.post(PREVIEW_URL, form_data(sample_variables="{}"))
    assert response.json()["errors"] == ["template variable 'order' has no value"]


def test_preview_endpoint_rejects_invalid_json(staff_client):
    response = staff_client.post(PREVIEW_URL, form_data(sample_variables="{order"))
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("sample_variables is not valid JSON")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("variables", '{"a": 1}', "variables must be a JSON list."),
        ("action_template", "[]", "action_template must be a JSON object."),
        ("sample_variables", "[]", "sample variables must be a JSON object."),
    ],
)
def test_preview_endpoint_checks_json_types(staff_client, field, value, message):
    response = staff_client.post(PREVIEW_URL, form_data(**{field: value}))
    assert response.json()["errors"] == [message]


def test_preview_endpoint_needs_staff(client):
    response = client.post(PREVIEW_URL, form_data())
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_preview_endpoint_needs_permission(client):
    clerk = User.objects.create_user("clerk", password="clerk-password", is_staff=True)
    client.force_login(clerk)
    assert client.post(PREVIEW_URL, form_data()).status_code == 403


def test_preview_endpoint_rejects_get(staff_client):
    assert staff_client.get(PREVIEW_URL).status_code == 405
