"""Templates that read the recipient's profile through `user.<attribute>`."""

import pytest

from templates.rendering import (
    TemplateVariableMissing,
    build_context,
    check_template_sources,
    render_template,
)


def test_undeclared_user_attribute_is_a_problem():
    problems = check_template_sources(["Hi {{ user.name }}"], ["user.tier"])
    assert problems == ["variable 'user.name' is used but not declared"]


def test_declared_user_attribute_passes():
    assert (
        check_template_sources(
            ["{% if user.vip %}Hi {{ user.name|upper }}{% endif %}"],
            ["user.vip", "user.name"],
        )
        == []
    )


def test_plain_user_variable_covers_its_attributes():
    assert check_template_sources(["Hi {{ user.name }}"], ["user"]) == []


def test_user_attribute_default_fills_gap():
    context = build_context(
        [{"name": "user.name", "default": "there"}], {"user": {"tier": "gold"}}
    )
    assert context["user"] == {"tier": "gold", "name": "there"}


def test_missing_user_attribute_raises():
    with pytest.raises(TemplateVariableMissing) as raised:
        build_context(["user.name"], {"user": {"name": ""}})
    assert raised.value.name == "user.name"


def test_request_user_string_is_left_alone():
    message = render_template("", "Hi {{ user }}", {}, ["user"], {"user": "Ann"})
    assert message.body == "Hi Ann"
