"""Personalised and per-locale templates, and A/B variants, end to end through FCM."""

from collections import Counter
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app.models import Channel
from preferences.models import UserProfile
from sharestack_push.notifications.content import RenderCache
from sharestack_push.notifications.models import PushRecord, PushTask
from sharestack_push.notifications.variants import assign_variant
from templates.models import PushTemplate
from tests.notifications.conftest import add_app_user

NOW = datetime(2026, 6, 10, 4, tzinfo=UTC)
GREETING = {
    "name": "greeting",
    "channel": "app",
    "title_template": "{{ user.name }}",
    "content_template": (
        "Hi {{ user.name }}, your {{ user.tier }} order {{ order_id }} shipped"
    ),
    "variables": [
        "order_id",
        {"name": "user.name", "default": "there"},
        "user.tier",
    ],
}


def sent_bodies(fcm) -> dict[str, str]:
    return {
        request.token: request.message["notification"]["body"]
        for request in fcm.requests
    }


@pytest.fixture
def now(frozen_clock):
    frozen_clock.set(NOW)


def test_template_reads_profile_attributes(fcm, now, post_push, push_client):
    PushTemplate.objects.create(**GREETING)
    add_app_user("ann", "token-ann")
    add_app_user("bob", "token-bob")
    push_client.put(
        "/api/v1/users/ann/attributes",
        {"attributes": {"name": "Ann", "tier": "gold"}},
        format="json",
    )
    push_client.put(
        "/api/v1/users/bob/attributes",
        {"attributes": {"tier": "silver"}},
        format="json",
    )

    response = post_push(
        notification_id="n-1",
        user_ids=["ann", "bob"],
        content=None,
        template="greeting",
        variables={"order_id": "A-7"},
    )

    assert response.status_code == 202
    bodies = sent_bodies(fcm)
    assert bodies["token-ann"] == "Hi Ann, your gold order A-7 shipped"
    assert bodies["token-bob"] == "Hi there, your silver order A-7 shipped"


def test_missing_required_attribute_fails_record(fcm, now, post_push):
    PushTemplate.objects.create(**GREETING)
    add_app_user("ann", "token-ann")

    post_push(
        notification_id="n-1",
        user_id="ann",
        content=None,
        template="greeting",
        variables={"order_id": "A-7"},
    )

    record = PushRecord.objects.get()
    assert (record.status, record.reason) == (
        "failed",
        "template_variable_missing:user.tier",
    )
    assert fcm.requests == []


def test_template_reads_profile_locale(fcm, now, post_push):
    PushTemplate.objects.create(
        name="hello",
        channel="app",
        content_template="locale {{ user.locale }}",
        variables=["user.locale"],
    )
    add_app_user("ann", "token-ann", locale="en")

    post_push(notification_id="n-1", user_id="ann", content=None, template="hello")

    assert sent_bodies(fcm) == {"token-ann": "locale en"}


def profile_queries(queries) -> list[str]:
    return [
        query["sql"] for query in queries if "preferences_userprofile" in query["sql"]
    ]


def test_shared_template_renders_once(db):
    PushTemplate.objects.create(
        name="plain", channel="app", content_template="Sale today"
    )
    task = PushTask.objects.create(
        notification_id="n-1",
        template_name="plain",
        channels=["app"],
        target="broadcast",
    )
    users = [f"user-{index}" for index in range(30)]
    renders = RenderCache(users)

    with CaptureQueriesContext(connection) as queries:
        outcomes = {id(renders.get(task, "app", "en", user_id)) for user_id in users}

    assert len(outcomes) == 1
    assert profile_queries(queries.captured_queries) == []


def test_personal_template_loads_profiles_once(db):
    PushTemplate.objects.create(**GREETING)
    users = [f"user-{index}" for index in range(30)]
    for user_id in users:
        UserProfile.objects.create(user_id=user_id, attributes={"tier": user_id})
    task = PushTask.objects.create(
        notification_id="n-1",
        template_name="greeting",
        variables={"order_id": "A-7"},
        channels=["app"],
        target="broadcast",
    )
    renders = RenderCache(users)

    with CaptureQueriesContext(connection) as queries:
        bodies = {
            renders.get(task, "app", "en", user_id).message.body for user_id in users
        }

    assert len(bodies) == 30
    assert len(profile_queries(queries.captured_queries)) == 1


def test_locale_picks_template_with_default_fallback(fcm, now, post_push, settings):
    settings.PUSH_DEFAULT_LOCALE = "zh-hans"
    PushTemplate.objects.create(
        name="ship", channel="app", locale="en", content_template="Your order shipped"
    )
    PushTemplate.objects.create(
        name="ship", channel="app", locale="zh-hans", content_template="您的订单已发货"
    )
    add_app_user("ann", "token-ann", locale="en")
    add_app_user("li", "token-li", locale="zh-hans")
    add_app_user("kenji", "token-kenji", locale="ja")

    post_push(
        notification_id="n-1",
        user_ids=["ann", "li", "kenji"],
        content=None,
        template="ship",
    )

    assert sent_bodies(fcm) == {
        "token-ann": "Your order shipped",
        "token-li": "您的订单已发货",
        "token-kenji": "您的订单已发货",
    }


VARIANTS = [
    {"name": "a", "weight": 70, "content": {"title": "A", "body": "Variant A"}},
    {"name": "b", "weight": 30, "template": "variant-b"},
]


def test_variants_split_users_and_report_counts(fcm, now, post_push, push_client):
    PushTemplate.objects.create(
        name="variant-b", channel="app", content_template="Variant B"
    )
    users = [f"user-{index}" for index in range(40)]
    for user_id in users:
        add_app_user(user_id, f"token-{user_id}")

    response = post_push(
        notification_id="ab-1", user_ids=users, content=None, variants=VARIANTS
    )

    task = PushTask.objects.get()
    records = {record.user_id: record for record in PushRecord.objects.all()}
    bodies = sent_bodies(fcm)
    for user_id, record in records.items():
        expected = {"a": "Variant A", "b": "Variant B"}[record.variant]
        assert bodies[f"token-{user_id}"] == expected
        assert record.variant == assign_variant(task, user_id)
    per_variant = Counter(record.variant for record in records.values())
    status = push_client.get(
        f"/api/v1/notifications/push/{response.json()['id']}"
    ).json()
    assert status["variants"]["a"]["sent"] == per_variant["a"]
    assert status["variants"]["b"]["records"] == per_variant["b"]
    stats = push_client.get(f"/api/v1/notifications/stats?variant_of={task.pk}").json()
    assert stats["variants"] == status["variants"]
    assert stats["variants"]["a"]["delivered"] == 0


def test_variant_assignment_is_stable_and_weighted(db):
    task = PushTask(notification_id="ab-1", variants=VARIANTS)
    users = [f"user-{index}" for index in range(1000)]

    first = [assign_variant(task, user_id) for user_id in users]
    again = [assign_variant(task, user_id) for user_id in users]

    assert first == again
    share = Counter(first)["a"] / len(users)
    # 70% of 1000 has a binomial standard deviation of about 1.4 points.
    assert 0.65 < share < 0.75


def test_variant_assignment_depends_on_notification(db):
    users = [f"user-{index}" for index in range(200)]
    one = PushTask(notification_id="ab-1", variants=VARIANTS)
    two = PushTask(notification_id="ab-2", variants=VARIANTS)

    assert [assign_variant(one, u) for u in users] != [
        assign_variant(two, u) for u in users
    ]


def test_status_without_variants_reports_none(fcm, now, post_push, push_client):
    add_app_user("ann", "token-ann")
    response = post_push(notification_id="n-1", user_id="ann")

    status = push_client.get(
        f"/api/v1/notifications/push/{response.json()['id']}"
    ).json()

    assert status["variants"] == {}
    assert status["records"]["results"][0]["variant"] == ""


@pytest.mark.parametrize(
    ("variants", "extra", "field"),
    [
        ([VARIANTS[0]], {}, "variants"),
        ([VARIANTS[0], {**VARIANTS[0], "weight": 5}], {}, "variants"),
        (
            [VARIANTS[0], {"name": "b", "weight": 0, "content": {"body": "x"}}],
            {},
            "variants[1].weight",
        ),
        ([VARIANTS[0], {"name": "b", "weight": 1}], {}, "variants[1].content"),
        (
            [VARIANTS[0], {"name": "b", "weight": 1, "template": "none"}],
            {},
            "variants[1].template",
        ),
        (
            [VARIANTS[0], {"name": "b c", "weight": 1, "content": {"body": "x"}}],
            {},
            "variants[1].name",
        ),
        (VARIANTS, {"content": {"body": "x"}}, "variants"),
    ],
)
def test_invalid_variants_are_rejected(push_client, variants, extra, field):
    body = {
        "notification_id": "n-1",
        "notification_type": "order",
        "user_id": "ann",
        "channels": ["app"],
        "variants": variants,
        **extra,
    }
    response = push_client.post("/api/v1/notifications/push", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_stats_of_unknown_task_is_not_found(push_client):
    response = push_client.get(
        "/api/v1/notifications/stats?variant_of=4b0c3c56-8ad3-4bb8-8d6b-6ea4aa2c9e0e"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"locale": "en"}, "reserved"),
        ({"first name": "Ann"}, "not a valid attribute name"),
        ({"bio": "x" * 9000}, "at most 8192 bytes"),
    ],
)
def test_invalid_attributes_are_rejected(push_client, attributes, message):
    response = push_client.put(
        "/api/v1/users/ann/attributes", {"attributes": attributes}, format="json"
    )
    assert response.status_code == 400
    assert message in response.json()["error"]["fields"]["attributes"][0]


def test_attributes_round_trip(push_client):
    UserProfile.objects.create(user_id="ann", timezone="UTC", daily_limit=3)
    put = push_client.put(
        "/api/v1/users/ann/attributes", {"attributes": {"name": "Ann"}}, format="json"
    )
    get = push_client.get("/api/v1/users/ann/attributes")
    unknown = push_client.get("/api/v1/users/nobody/attributes")

    assert put.status_code == 200
    assert get.json() == {"attributes": {"name": "Ann"}}
    assert unknown.json() == {"attributes": {}}
    assert UserProfile.objects.get(user_id="ann").daily_limit == 3


def test_robot_record_gets_a_variant(post_push):
    from tests.fakes.wechat import FakeWeChat

    with FakeWeChat() as fake:
        fake.add_robot("robot-key")
        Channel.objects.create(
            name="ops-robot", kind="wechat", provider="wecom_robot",
            config={"base_url": fake.base_url}, credentials={"key": "robot-key"},
        )
        post_push(notification_id="ab-robot", user_id=None, channels=["ops-robot"],
                  content=None, variants=[VARIANTS[0], {**VARIANTS[0], "name": "c"}])
        [request] = fake.requests_to("/cgi-bin/webhook/send")

    record = PushRecord.objects.get()
    assert record.variant in ("a", "c")
    assert "Variant A" in request.body["text"]["content"]


@pytest.mark.parametrize("user_id", ["u" * 65, "ann%00"])
def test_attributes_reject_invalid_user_id(push_client, user_id):
    put = push_client.put(
        f"/api/v1/users/{user_id}/attributes", {"attributes": {}}, format="json"
    )
    get = push_client.get(f"/api/v1/users/{user_id}/attributes")

    assert put.status_code == 400
    assert get.status_code == 400
    assert list(put.json()["error"]["fields"]) == ["user_id"]
