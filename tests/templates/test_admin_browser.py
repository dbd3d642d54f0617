"""The template preview in headless chromium: edits re-render without saving."""
import pytest
from django.urls import reverse
from playwright.sync_api import expect

from templates.models import PushTemplate
from tests.staff import admin_page, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def template(transactional_db):
    return PushTemplate.objects.create(
        name="order_shipped",
        channel="email",
        locale="en",
        title_template="Order {{ order }} shipped",
        content_template="Hi {{ name }}, order {{ order }} is on its way.",
        html_template="<h1>Hi {{ name }}</h1><p>Order {{ order }}</p>",
        variables=["order", {"name": "name", "default": "there"}],
        sample_variables={"order": "A-17"},
    )


def test_preview_follows_edits(chromium, live_server, staff_user, template):
    path = reverse("admin:push_templates_pushtemplate_change", args=[template.pk])
    page = admin_page(chromium, live_server, path)
    current = page.locator("[data-current]")
    expect(current.locator('[data-field="title"]')).to_have_text("Order A-17 shipped")

    page.fill("#id_sample_variables", '{"order": "B-42", "name": "Ann"}')
    expect(current.locator('[data-field="title"]')).to_have_text("Order B-42 shipped")
    expect(current.locator('[data-field="body"]')).to_have_text(
        "Hi Ann, order B-42 is on its way."
    )
    html = current.frame_locator('[data-field="html"]')
    expect(html.locator("h1")).to_have_text("Hi Ann")
    screenshot(page, "template-preview")

    page.fill("#id_content_template", "Hi {{ nickname }}")
    expect(current.locator('[data-field="errors"]')).to_have_text(
        "variable 'nickname' is used but not declared"
    )
    screenshot(page, "template-preview-error")

    page.click("input[name=_continue]")
    expect(page.locator(".errorlist")).to_contain_text("'nickname' is used but not declared")
    template.refresh_from_db()
    assert template.content_template == "Hi {{ name }}, order {{ order }} is on its way."
