"""Segments: conditions over profile attributes, their validation and their audiences.

The suite runs on PostgreSQL. Django compiles the JSON lookups differently per
database, so this file also passes with DATABASE_URL=sqlite:////tmp/segments.sqlite3.
"""
import pytest
from django.core.exceptions import ValidationError

from preferences.models import UserProfile
from sharestack_push.notifications.audience import keyset_chunks, segment_chunks
from sharestack_push.notifications.segments import (
    matching_profiles,
    validate_segment_conditions,
)

pytestmark = pytest.mark.django_db

CAST = {
    "ada": {"plan": "pro", "age": 36, "city": "Shanghai", "beta": True},
    "bo": {"plan": "free", "age": 19, "city": "Beijing"},
    "chen": {"plan": "pro", "age": 52.5},
    "dina": {},
    "emil": {"plan": "team", "age": 30, "city": "Shanghai", "beta": False},
}


@pytest.fixture
def cast():
    for user_id, attributes in CAST.items():
        UserProfile.objects.create(user_id=user_id, attributes=attributes)


def matched(*conditions: dict) -> list[str]:
    profiles = matching_profiles(list(conditions)).order_by("user_id")
    return list(profiles.values_list("user_id", flat=True))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"attribute": "plan", "operator": "equals", "value": "pro"}, ["ada", "chen"]),
        ({"attribute": "beta", "operator": "equals", "value": True}, ["ada"]),
        ({"attribute": "age", "operator": "equals", "value": 30}, ["emil"]),
        ({"attribute": "plan", "operator": "not_equals", "value": "pro"},
         ["bo", "dina", "emil"]),
        ({"attribute": "plan", "operator": "one_of", "value": ["free", "team"]},
         ["bo", "emil"]),
        ({"attribute": "age", "operator": "greater_than", "value": 30}, ["ada", "chen"]),
        ({"attribute": "age", "operator": "less_than", "value": 30}, ["bo"]),
        ({"attribute": "city", "operator": "exists"}, ["ada", "bo", "emil"]),
        ({"attribute": "city", "operator": "not_exists"}, ["chen", "dina"]),
    ],
)
def test_segment_operator_matches(cast, condition, expected):
    assert matched(condition) == expected


def test_segment_conditions_all_apply(cast):
    assert matched(
        {"attribute": "city", "operator": "equals", "value": "Shanghai"},
        {"attribute": "age", "operator": "greater_than", "value": 31},
    ) == ["ada"]


def test_segment_without_conditions_matches_everyone(cast):
    assert matched() == sorted(CAST)


# Attribute names that Django reads as lookups or transforms after "attributes__".
LOOKUP_NAMED = {
    "fay": {"contains": "x", "in": 3, "a__b": "flat", "exact": True},
    "gus": {"a": {"b": "nested"}, "contains": "y"},
}


@pytest.fixture
def lookup_named_cast(cast):
    for user_id, attributes in LOOKUP_NAMED.items():
        UserProfile.objects.create(user_id=user_id, attributes=attributes)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"attribute": "regex", "operator": "equals", "value": "."}, []),
        ({"attribute": "isnull", "operator": "equals", "value": False}, []),
        ({"attribute": "startswith", "operator": "equals", "value": "{"}, []),
        ({"attribute": "gt", "operator": "equals", "value": 1}, []),
        ({"attribute": "in", "operator": "equals", "value": "x"}, []),
        ({"attribute": "regex", "operator": "exists"}, []),
        ({"attribute": "regex", "operator": "not_equals", "value": "."},
         sorted([*CAST, *LOOKUP_NAMED])),
        ({"attribute": "contains", "operator": "equals", "value": "x"}, ["fay"]),
        ({"attribute": "contains", "operator": "one_of", "value": ["x", "y"]},
         ["fay", "gus"]),
        ({"attribute": "contains", "operator": "not_equals", "value": "x"},
         sorted([*CAST, "gus"])),
        ({"attribute": "in", "operator": "greater_than", "value": 2}, ["fay"]),
        ({"attribute": "exact", "operator": "equals", "value": True}, ["fay"]),
        ({"attribute": "a__b", "operator": "equals", "value": "flat"}, ["fay"]),
        ({"attribute": "a__b", "operator": "equals", "value": "nested"}, []),
        ({"attribute": "a__b", "operator": "exists"}, ["fay"]),
    ],
)
def test_segment_lookup_names_are_keys(lookup_named_cast, condition, expected):
    assert matched(condition) == expected


def test_segment_lookup_names_combine(lookup_named_cast):
    assert matched(
        {"attribute": "contains", "operator": "equals", "value": "x"},
        {"attribute": "in", "operator": "less_than", "value": 4},
        {"attribute": "regex", "operator": "not_exists"},
    ) == ["fay"]


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"attribute": "plan"}, "Enter a JSON list of conditions."),
        (["plan"], "Condition 0: must be an object with attribute, operator and value."),
        ([{"attribute": "plan", "operator": "like", "value": "p"}],
         ("Condition 0: operator must be one of equals, not_equals, one_of, greater_than, "
          "less_than, exists, not_exists.")),
        ([{"attribute": "a b", "operator": "exists"}],
         "Condition 0: attribute must be a name of letters, digits and _ (at most 64)."),
        ([{"attribute": "age", "operator": "greater_than", "value": "30"}],
         "Condition 0: greater_than needs a number."),
        ([{"attribute": "plan", "operator": "one_of", "value": []}],
         "Condition 0: one_of needs a non-empty list of values."),
        ([{"attribute": "plan", "operator": "exists", "value": 1}],
         "Condition 0: exists takes no value."),
        ([{"attribute": "plan", "operator": "equals"}], "Condition 0: equals needs a value."),
        ([{"attribute": "plan", "operator": "equals", "value": {"a": 1}}],
         "Condition 0: equals needs a string, number or boolean."),
        ([{"attribute": "plan", "operator": "equals", "value": "x", "unit": "s"}],
         "Condition 0: unknown keys unit."),
        ([{"attribute": "plan", "operator": "one_of", "value": ["ok", "g\x00"]}],
         "Condition 0: value: text must not contain NUL characters."),
    ],
)
def test_segment_validation_names_problem(conditions, message):
    with pytest.raises(ValidationError) as raised:
        validate_segment_conditions(conditions)
    assert raised.value.messages == [message]


def test_segment_chunks_stream_by_keyset(cast):
    conditions = [{"attribute": "age", "operator": "greater_than", "value": 18}]

    chunks = list(segment_chunks(conditions, chunk_size=2))

    assert chunks == [["ada", "bo"], ["chen", "emil"]]


def test_keyset_chunk_costs_one_query(cast, django_assert_num_queries):
    chunks = keyset_chunks(UserProfile.objects.all(), "id", chunk_size=2)
    with django_assert_num_queries(1):
        first = next(chunks)
    with django_assert_num_queries(1):
        second = next(chunks)
    assert first == ["ada", "bo"]
    assert second == ["chen", "dina"]
