"""Templates: the API and rendering rules."""
import pytest
from django.template import TemplateSyntaxError

from templates.models import PushTemplate
from templates.rendering import (
    TemplateVariableMissing,
    check_template_sources,
    parse_variables,
    render_template,
)

URL = "/api/v1/templates"


def template_body(**overrides):
    data = {
        "channel": "email",
        "type": "order",
        "name": "shipped",
        "title_template": "Order {{ order_id }} shipped",
        "content_template": "Hi {{ name }}, order {{ order_id }} is on its way.",
        "action_template": {"url": "https://shop.example/orders/{{ order_id }}"},
        "variables": ["order_id", {"name": "name", "default": "there"}],
        "is_active": True,
    }
    data.update(overrides)
    return data


def test_create_and_list(admin_client):
    created = admin_client.post(URL, template_body(), format="json")
    assert created.status_code == 201
    listed = admin_client.get(URL).json()
    assert [item["name"] for item in listed] == ["shipped"]


def test_undeclared_variable_is_rejected(admin_client):
    response = admin_client.post(URL, template_body(variables=["order_id"]), format="json")
    assert response.status_code == 400
    assert "'name'" in response.json()["error"]["fields"]["content_template"][0]


def test_undeclared_variable_in_action_is_rejected(admin_client):
    body = template_body(action_template={"url": "https://x.example/{{ secret }}"})
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400


def test_bad_syntax_is_rejected(admin_client):
    response = admin_client.post(URL, template_body(content_template="{% if %}"), format="json")
    assert response.status_code == 400
    assert "syntax" in response.json()["error"]["fields"]["content_template"][0]


def test_duplicate_name_channel_locale_is_rejected(admin_client):
    admin_client.post(URL, template_body(), format="json")
    response = admin_client.post(URL, template_body(), format="json")
    assert response.status_code == 400
    assert PushTemplate.objects.count() == 1


def test_render_fills_defaults_and_action():
    message = render_template(
        "Order {{ order_id }}", "Hi {{ name }}", {"url": "/o/{{ order_id }}", "n": [1, "{{ order_id }}"]},
        ["order_id", {"name": "name", "default": "there"}], {"order_id": "A7"},
    )
    assert message.title == "Order A7"
    assert message.body == "Hi there"
    assert message.data == {"url": "/o/A7", "n": [1, "A7"]}


def test_render_missing_variable_raises_with_name():
    with pytest.raises(TemplateVariableMissing) as raised:
        render_template("", "Hi {{ name }}", {}, ["name"], {})
    assert raised.value.name == "name"


def test_render_does_not_escape_text():
    message = render_template("", "{{ text }}", {}, ["text"], {"text": "<b>&"})
    assert message.body == "<b>&"


def test_optional_variable_without_default_renders_empty():
    message = render_template("", "a{{ x }}b", {}, [{"name": "x", "required": False}], {})
    assert message.body == "ab"


def test_malformed_declaration_is_reported():
    assert check_template_sources(["x"], [42]) == ["invalid variable declaration: 42"]
    with pytest.raises(ValueError):
        parse_variables([{"no_name": 1}])


def test_syntax_error_raises_on_render():
    with pytest.raises(TemplateSyntaxError):
        render_template("", "{% bad %}", {}, [], {})


@pytest.mark.parametrize(
    "overrides, field, fragment",
    [
        ({"content_template": "{% debug %}"}, "content_template", "'debug' is not allowed"),
        ({"content_template": "{% load static %}"}, "content_template", "'load' is not allowed"),
        ({"content_template": "Hello {{ name"}, "content_template", "unbalanced"),
        ({"title_template": "{{ secret }}"}, "title_template", "'secret'"),
        ({"variables": [1]}, "variables", "invalid variable declaration"),
    ],
)
def test_unsafe_or_broken_template_is_rejected(admin_client, overrides, field, fragment):
    response = admin_client.post(URL, template_body(**overrides), format="json")
    assert response.status_code == 400
    assert fragment in " ".join(response.json()["error"]["fields"][field])


def test_allowed_tags_are_accepted(admin_client):
    source = "{% if name %}Hi {{ name }}{% else %}Hi{% endif %} {% for i in items %}{{ i }}{% endfor %}"
    body = template_body(content_template=source, variables=["name", "items", "order_id"])
    assert admin_client.post(URL, body, format="json").status_code == 201


def test_undeclared_name_in_condition_is_rejected(admin_client):
    body = template_body(content_template="{% if vip %}Hi {{ name }}{% endif %} {{ order_id }}")
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "'vip'" in response.json()["error"]["fields"]["content_template"][0]


def test_loop_sequence_must_be_declared(admin_client):
    body = template_body(content_template="{% for i in lines %}{{ i }}{% endfor %}{{ name }}{{ order_id }}")
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "'lines'" in response.json()["error"]["fields"]["content_template"][0]


def test_email_template_keeps_an_html_part(admin_client):
    body = template_body(html_template="<p>{{ name }}</p>")
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["html_template"] == "<p>{{ name }}</p>"


def test_html_part_is_refused_outside_email(admin_client):
    body = template_body(channel="sms", html_template="<p>x</p>")
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "html_template" in response.json()["error"]["fields"]


def test_html_part_escapes_variables_and_the_text_part_does_not():
    from templates.rendering import render_template

    rendered = render_template("", "{{ name }}", {}, ["name"], {"name": "<b>Li</b>"},
                               html_template="<p>{{ name }}</p>")
    assert rendered.html == "<p>&lt;b&gt;Li&lt;/b&gt;</p>"
    assert rendered.body == "<b>Li</b>"


def test_locale_must_be_a_language_tag(admin_client):
    response = admin_client.post(URL, template_body(locale="klingon!!"), format="json")
    assert response.status_code == 400
    assert "locale" in response.json()["error"]["fields"]


def test_locale_is_stored_lower_case(admin_client):
    response = admin_client.post(URL, template_body(locale="zh-Hans"), format="json")
    assert response.status_code == 201
    assert response.json()["locale"] == "zh-hans"


def test_oversized_rendering_is_an_error():
    source = "{% for a in n %}{% for b in n %}{% for c in n %}xxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}{% endfor %}"
    with pytest.raises(ValueError, match="characters"):
        render_template("", source, {}, ["n"], {"n": list(range(40))})
