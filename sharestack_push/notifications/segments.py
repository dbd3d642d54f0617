"""Segment conditions over UserProfile.attributes, as Django lookups.

The lookups are JSONField key transforms, which Django compiles for PostgreSQL
(jsonb operators) and for SQLite (the JSON1 functions) alike. Any name that passes
ATTRIBUTE_PATTERN is one top-level key, including names of Django lookups.
"""
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform

from preferences.models import UserProfile
from sharestack_push.notifications.fields import storable_text_problem

# Operators that compare with a value, and those that take none.
VALUE_OPERATORS = ("equals", "not_equals", "one_of", "greater_than", "less_than")
PRESENCE_OPERATORS = ("exists", "not_exists")
OPERATORS = VALUE_OPERATORS + PRESENCE_OPERATORS
ATTRIBUTE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
SCALARS = (str, int, float, bool)


def condition_problem(condition: Any) -> str:
    """Return why one condition is invalid, or an empty string."""
    if not isinstance(condition, dict):
        return "must be an object with attribute, operator and value"
    unknown = sorted(set(condition) - {"attribute", "operator", "value"})
    if unknown:
        return f"unknown keys {', '.join(unknown)}"
    attribute, operator = condition.get("attribute"), condition.get("operator")
    if not isinstance(attribute, str) or not _is_attribute_name(attribute):
        return "attribute must be a name of letters, digits and _ (at most 64)"
    if operator not in OPERATORS:
        return f"operator must be one of {', '.join(OPERATORS)}"
    stored = storable_text_problem(condition.get("value"))
    if stored:
        return f"value: {stored[0].lower()}{stored[1:].rstrip('.')}"
    return _value_problem(operator, condition)


def _is_attribute_name(name: str) -> bool:
    return re.fullmatch(ATTRIBUTE_PATTERN, name) is not None


def _value_problem(operator: str, condition: dict) -> str:
    if operator in PRESENCE_OPERATORS:
        return "" if "value" not in condition else f"{operator} takes no value"
    if "value" not in condition:
        return f"{operator} needs a value"
    value = condition["value"]
    if operator == "one_of":
        if not isinstance(value, list) or not value:
            return "one_of needs a non-empty list of values"
        if not all(isinstance(item, SCALARS) for item in value):
            return "one_of values must be strings, numbers or booleans"
        return ""
    if operator in ("greater_than", "less_than"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{operator} needs a number"
        return ""
    if not isinstance(value, SCALARS):
        return f"{operator} needs a string, number or boolean"
    return ""


def validate_segment_conditions(conditions: Any) -> None:
    """Raise ValidationError naming each invalid condition by its position."""
    if not isinstance(conditions, list):
        raise ValidationError("Enter a JSON list of conditions.")
    problems = [
        f"Condition {index}: {problem}."
        for index, condition in enumerate(conditions)
        if (problem := condition_problem(condition))
    ]
    if problems:
        raise ValidationError(problems)


def condition_q(condition: dict, alias: str) -> Q:
    """Build the filter of one valid condition on UserProfile.

    `alias` names the attribute value, which matching_profiles defines as a
    KeyTransform with QuerySet.alias(). Lookups go through that alias and never through
    "attributes__<name>", where Django would read a name such as "regex", "isnull" or
    "a__b" as a lookup or a nested path rather than as one key.
    """
    attribute = condition["attribute"]
    operator = condition["operator"]
    if operator == "exists":
        return Q(attributes__has_key=attribute)
    if operator == "not_exists":
        return ~Q(attributes__has_key=attribute)
    value = condition["value"]
    if operator == "equals":
        return Q(**{alias: value})
    if operator == "not_equals":
        # A user without the attribute is not equal to the value either.
        return ~Q(**{alias: value}) | ~Q(attributes__has_key=attribute)
    if operator == "one_of":
        return Q(**{f"{alias}__in": value})
    # NOTE: a stored value that is not a number compares by the database's type order
    # (JSON's on PostgreSQL, SQLite's own on SQLite), so a string may match greater_than.
    lookup = "gt" if operator == "greater_than" else "lt"
    return Q(**{f"{alias}__{lookup}": value})


def matching_profiles(conditions: list[dict]) -> QuerySet[UserProfile]:
    """Select the profiles of the users who match every condition.

    An empty list matches everyone.
    """
    aliases: dict[str, KeyTransform] = {}
    combined = Q()
    for index, condition in enumerate(conditions):
        alias = f"segment_attribute_{index}"
        aliases[alias] = KeyTransform(condition["attribute"], "attributes")
        combined &= condition_q(condition, alias)
    return UserProfile.objects.alias(**aliases).filter(combined)
