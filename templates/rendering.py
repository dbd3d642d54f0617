"""Rendering of templates with Django's template language, autoescaping off.

Every variable a template uses must be declared, and every declared variable must have
a value or a default, so a raw placeholder or an empty gap never reaches a user.

`user.<attribute>` reads the recipient's profile (locale and stored attributes). Each
such attribute is declared by its dotted name, such as `{"name": "user.name",
"default": "there"}`, so a template without one renders once for all its recipients.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, VariableNode
from django.template.defaulttags import ForNode, IfNode, WithNode

ENGINE = Engine(autoescape=False, string_if_invalid="")
# Loops over large variables can render far more than any provider accepts
# (the largest, email, is limited to a few MB by most servers).
MAX_RENDERED_CHARS = 1_000_000
# The context variable that contains the recipient's profile attributes.
USER_VARIABLE = "user"
USER_PREFIX = USER_VARIABLE + "."


class TemplateVariableMissing(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"template variable {name!r} has no value")
        self.name = name


@dataclass(frozen=True)
class RenderedMessage:
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    html: str = ""


@dataclass(frozen=True)
class VariableSpec:
    name: str
    required: bool = True
    default: Any = None


def parse_variables(declared: list[Any]) -> list[VariableSpec]:
    """Normalise a `variables` declaration; raise ValueError on a malformed entry."""
    specs = []
    for entry in declared:
        if isinstance(entry, str):
            specs.append(VariableSpec(entry))
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            has_default = "default" in entry
            specs.append(
                VariableSpec(
                    entry["name"],
                    required=bool(entry.get("required", not has_default)),
                    default=entry.get("default"),
                )
            )
        else:
            raise ValueError(f"invalid variable declaration: {entry!r}")
    return specs


def expression_name(expression: Any) -> str | None:
    """Return the variable an expression reads: `user.<attribute>` or a top-level name."""
    lookups = getattr(getattr(expression, "var", None), "lookups", None)
    if not lookups:
        return None
    if lookups[0] == USER_VARIABLE and len(lookups) > 1:
        return USER_PREFIX + lookups[1]
    return lookups[0]


def uses_user_attributes(declared: list[Any]) -> bool:
    """Tell whether a template declares any `user.<attribute>` variable."""
    return any(spec.name.startswith(USER_PREFIX) for spec in parse_variables(declared))


def condition_names(condition: Any) -> set[str]:
    """Return the names an {% if %} condition reads, walking its operator tree."""
    if condition is None:
        return set()
    names = set()
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression) and expression_name(value):
        names.add(expression_name(value))
    for side in ("first", "second"):
        names |= condition_names(getattr(condition, side, None))
    return names


def used_variables(source: str) -> set[str]:
    """Return the top-level names a template source reads; raise TemplateSyntaxError.

    Names bound inside the template ({% for x in ... %}, {% with x=... %}, forloop)
    are not counted.
    """
    template = ENGINE.from_string(source)
    bound = {"forloop"}
    names = set()
    for loop in template.nodelist.get_nodes_by_type(ForNode):
        bound.update(loop.loopvars)
        if expression_name(loop.sequence):
            names.add(expression_name(loop.sequence))
    for block in template.nodelist.get_nodes_by_type(WithNode):
        bound.update(block.extra_context)
    for node in template.nodelist.get_nodes_by_type(VariableNode):
        if expression_name(node.filter_expression):
            names.add(expression_name(node.filter_expression))
    for node in template.nodelist.get_nodes_by_type(IfNode):
        for condition, _ in node.conditions_nodelists:
            names.update(condition_names(condition))
    return names - bound


# Tags a message template may use: logic and formatting, nothing that loads libraries,
# reads files or dumps the context (`load`, `include`, `ssi`, `debug`).
ALLOWED_TAGS = frozenset(
    {
        "if",
        "elif",
        "else",
        "endif",
        "for",
        "empty",
        "endfor",
        "with",
        "endwith",
        "firstof",
        "cycle",
        "comment",
        "endcomment",
        "spaceless",
        "endspaceless",
        "now",
        "templatetag",
        "widthratio",
    }
)
TAG_NAME = re.compile(r"{%-?\s*(\w+)")


def source_problems(source: str, names: set[str]) -> list[str]:
    """Return why one template source would not render as its author meant."""
    problems = []
    for opening, closing in (("{{", "}}"), ("{%", "%}"), ("{#", "#}")):
        if source.count(opening) != source.count(closing):
            problems.append(f"unbalanced {opening} and {closing}")
    for tag in sorted(set(TAG_NAME.findall(source)) - ALLOWED_TAGS):
        problems.append(f"tag {tag!r} is not allowed in message templates")
    if problems:
        return problems
    try:
        undeclared = used_variables(source) - names
    except TemplateSyntaxError as error:
        return [f"template syntax error: {error}"]
    if USER_VARIABLE in names:
        # A plain `user` variable comes whole from the request, attributes included.
        undeclared = {name for name in undeclared if not name.startswith(USER_PREFIX)}
    return [
        f"variable {name!r} is used but not declared" for name in sorted(undeclared)
    ]


def check_template_sources(sources: list[str], declared: list[Any]) -> list[str]:
    """Return the problems that would make these sources fail to render."""
    try:
        names = {spec.name for spec in parse_variables(declared)}
    except ValueError as error:
        return [str(error)]
    return [problem for source in sources for problem in source_problems(source, names)]


def build_context(declared: list[Any], values: dict[str, Any]) -> dict[str, Any]:
    context = dict(values)
    given_user = values.get(USER_VARIABLE)
    user = dict(given_user) if isinstance(given_user, dict) else {}
    for spec in parse_variables(declared):
        if spec.name.startswith(USER_PREFIX):
            source, key = user, spec.name.removeprefix(USER_PREFIX)
        else:
            source, key = context, spec.name
        if source.get(key) not in (None, ""):
            continue
        if spec.default is not None:
            source[key] = spec.default
        elif spec.required:
            raise TemplateVariableMissing(spec.name)
    if user:
        context[USER_VARIABLE] = user
    return context


def template_strings(value: Any) -> list[str]:
    """Return every string inside a JSON value, such as an action template."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in template_strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in template_strings(item)]
    return []


def _render_strings(value: Any, context: Context) -> Any:
    if isinstance(value, str):
        return ENGINE.from_string(value).render(context)
    if isinstance(value, dict):
        return {key: _render_strings(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_strings(item, context) for item in value]
    return value


def render_template(
    title_template: str,
    content_template: str,
    action_template: dict[str, Any],
    declared: list[Any],
    values: dict[str, Any],
    html_template: str = "",
) -> RenderedMessage:
    """Render one template; raise TemplateVariableMissing or TemplateSyntaxError."""
    values = build_context(declared, values)
    context = Context(values, autoescape=False)
    title = ENGINE.from_string(title_template).render(context) if title_template else ""
    body = ENGINE.from_string(content_template).render(context)
    data = _render_strings(action_template or {}, context)
    html = ""
    if html_template:
        html = ENGINE.from_string(html_template).render(Context(values, autoescape=True))
    size = len(title) + len(body) + len(html)
    if size > MAX_RENDERED_CHARS:
        raise ValueError(
            f"the rendered message has {size} characters; at most {MAX_RENDERED_CHARS} are sent"
        )
    return RenderedMessage(title=title.strip(), body=body.strip(), data=data, html=html.strip())
