"""WeComAppProvider end to end against the fake WeCom API."""

import uuid

import pytest

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.wecom_app import ERROR_CODES, WeComAppProvider, split_ids
from tests.fakes.wechat import FakeWeChat

CORP_ID = "ww0123456789abcdef"
SECRET = "corp-secret-" + uuid.uuid4().hex
AGENT_ID = 1000002
SEND_PATH = "/cgi-bin/message/send"

# Written from WeCom's global return codes, independently of the adapter's table.
EXPECTED_OUTCOMES = {
    -1: Outcome.RETRYABLE,
    40001: Outcome.CONFIGURATION,
    40014: Outcome.RETRYABLE,
    42001: Outcome.RETRYABLE,
    40013: Outcome.CONFIGURATION,
    40056: Outcome.CONFIGURATION,
    48002: Outcome.CONFIGURATION,
    60020: Outcome.CONFIGURATION,
    81013: Outcome.INVALID_ADDRESS,
    40003: Outcome.PERMANENT,
    40008: Outcome.PERMANENT,
    44004: Outcome.PERMANENT,
    45002: Outcome.PERMANENT,
    45009: Outcome.RETRYABLE,
    45033: Outcome.RETRYABLE,
}
TOKEN_CODES = (40001, 40014, 42001)


@pytest.fixture
def fake():
    with FakeWeChat() as server:
        server.add_corp_app(CORP_ID, SECRET, AGENT_ID, invalid_users={"LeftCompany", "ghost"})
        yield server


def build(fake: FakeWeChat, channel_key: str = "", **config) -> WeComAppProvider:
    config = {"corp_id": CORP_ID, "agent_id": AGENT_ID, "base_url": fake.base_url, **config}
    return WeComAppProvider(config, {"secret": SECRET}, timeout=5,
                            channel_key=channel_key or f"test-{uuid.uuid4().hex}")


@pytest.fixture
def provider(fake):
    adapter = build(fake)
    yield adapter
    adapter.close()


def message(record_id: int = 1, user: str = "zhangsan", **fields) -> OutgoingMessage:
    return OutgoingMessage(record_id, user, "Deploy finished", "Build 42 is live", **fields)


def test_text_message_on_the_wire(provider, fake):
    [result] = provider.send([message()])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id
    [request] = fake.requests_to(SEND_PATH)
    assert request.body == {
        "touser": "zhangsan",
        "toparty": "",
        "totag": "",
        "agentid": AGENT_ID,
        "msgtype": "text",
        "text": {"content": "Deploy finished\nBuild 42 is live"},
    }


def test_markdown_from_config(fake):
    adapter = build(fake, msgtype="markdown")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.SENT
    [request] = fake.requests_to(SEND_PATH)
    assert request.body["msgtype"] == "markdown"
    assert request.body["markdown"] == {"content": "**Deploy finished**\nBuild 42 is live"}


def test_textcard_from_options(provider, fake):
    options = {"msgtype": "textcard", "click_action": "https://ci.example/42", "btntxt": "Open"}

    [result] = provider.send([message(options=options)])

    assert result.outcome == Outcome.SENT
    [request] = fake.requests_to(SEND_PATH)
    assert request.body["textcard"] == {
        "title": "Deploy finished",
        "description": "Build 42 is live",
        "url": "https://ci.example/42",
        "btntxt": "Open",
    }


def test_textcard_without_url_is_permanent(provider, fake):
    [result] = provider.send([message(options={"msgtype": "textcard"})])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "url_missing"
    assert fake.requests_to(SEND_PATH) == []


def test_unknown_msgtype_is_permanent(provider, fake):
    [result] = provider.send([message(options={"msgtype": "news"})])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "msgtype_invalid"


# Batching


def test_batch_over_1000_users_split(provider, fake):
    batch = [message(record_id, f"user{record_id}") for record_id in range(1, 2502)]

    results = provider.send(batch)

    assert len(results) == 2501
    assert {r.outcome for r in results} == {Outcome.SENT}
    requests = fake.requests_to(SEND_PATH)
    sizes = sorted(len(request.body["touser"].split("|")) for request in requests)
    assert sizes == [501, 1000, 1000]
    assert fake.token_requests(CORP_ID) == 1
    by_record = {r.record_id: r.provider_message_id for r in results}
    assert by_record[1] == by_record[1000]
    assert by_record[1] != by_record[1001]


def test_different_content_sent_separately(provider, fake):
    batch = [message(1, "a"), message(2, "b"), message(3, "c", options={"msgtype": "markdown"})]

    results = provider.send(batch)

    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    tousers = sorted(request.body["touser"] for request in fake.requests_to(SEND_PATH))
    assert tousers == ["a|b", "c"]


def test_invaliduser_marks_only_those_users(provider, fake):
    batch = [message(1, "zhangsan"), message(2, "LeftCompany"), message(3, "lisi")]

    results = {r.record_id: r for r in provider.send(batch)}

    assert results[1].outcome == Outcome.SENT
    assert results[3].outcome == Outcome.SENT
    # WeCom lists invalid user ids in lower case.
    assert results[2].outcome == Outcome.INVALID_ADDRESS
    assert results[2].error_code == "invaliduser"
    assert results[1].provider_message_id == results[3].provider_message_id
    assert results[2].provider_message_id == ""


def test_all_users_invalid_is_invalid_address(provider, fake):
    results = provider.send([message(1, "ghost"), message(2, "LeftCompany")])

    assert [r.outcome for r in results] == [Outcome.INVALID_ADDRESS] * 2
    assert {r.error_code for r in results} == {"81013"}


def test_repeated_user_sent_once(provider, fake):
    results = provider.send([message(1, "zhangsan"), message(2, "zhangsan")])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    [request] = fake.requests_to(SEND_PATH)
    assert request.body["touser"] == "zhangsan"


def test_split_ids_accepts_list_and_string():
    assert split_ids("A|b|") == {"a", "b"}
    assert split_ids(["A"]) == {"a"}
    assert split_ids(None) == set()


def test_unlicensed_user_is_permanent():
    result = WeComAppProvider.user_result(message(5, "NoLicence"), "m1", set(), {"nolicence"})

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "unlicenseduser"


def test_non_json_reply_is_retryable(provider, fake):
    fake.script_raw(SEND_PATH, 200, b"<html>busy</html>")

    results = provider.send([message(1, "a"), message(2, "b")])

    assert [r.outcome for r in results] == [Outcome.RETRYABLE] * 2
    assert {r.error_code for r in results} == {"invalid_response"}


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("errcode", sorted(EXPECTED_OUTCOMES))
def test_errcode_outcome(provider, fake, errcode):
    repeats = 2 if errcode in TOKEN_CODES else 1
    fake.script("zhangsan", *[errcode] * repeats)

    results = provider.send([message(1, "zhangsan"), message(2, "lisi")])

    assert [r.outcome for r in results] == [EXPECTED_OUTCOMES[errcode]] * 2
    assert {r.error_code for r in results} == {str(errcode)}
    assert "more info at" in results[0].error_message


# Access token


def test_invalid_secret_resent_once_then_configuration(provider, fake):
    fake.script("zhangsan", 40001, 40001, 40001)

    [result] = provider.send([message()])

    assert result.outcome == Outcome.CONFIGURATION
    assert len(fake.requests_to(SEND_PATH)) == 2
    assert fake.token_requests(CORP_ID) == 2


def test_expired_token_refetched_and_resent_once(provider, fake):
    provider.send([message(1)])
    fake.expire_tokens()

    [result] = provider.send([message(2)])

    assert result.outcome == Outcome.SENT
    assert fake.token_requests(CORP_ID) == 2
    assert len(fake.requests_to(SEND_PATH)) == 3


def test_token_shared_by_two_instances(fake):
    key = f"test-{uuid.uuid4().hex}"
    first, second = build(fake, key), build(fake, key)

    results = first.send([message(1)]) + second.send([message(2)])
    first.close()
    second.close()

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert fake.token_requests(CORP_ID) == 1


def test_wrong_secret_on_gettoken_is_configuration(fake):
    adapter = WeComAppProvider(
        {"corp_id": CORP_ID, "agent_id": AGENT_ID, "base_url": fake.base_url},
        {"secret": "wrong"}, timeout=5, channel_key=f"test-{uuid.uuid4().hex}",
    )

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "40001"
    assert "wrong" not in result.error_message


def test_wrong_agent_id_is_configuration(fake):
    adapter = build(fake, agent_id=7)

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "40056"


def test_validate_checks_agent_id_and_msgtype():
    errors = WeComAppProvider.validate(
        {"corp_id": CORP_ID, "agent_id": "1000002", "msgtype": "news"}, {"secret": "s"}
    )

    assert set(errors) == {"config.agent_id", "config.msgtype"}


def test_validate_accepts_complete_settings():
    errors = WeComAppProvider.validate(
        {"corp_id": CORP_ID, "agent_id": AGENT_ID, "msgtype": "textcard"}, {"secret": "s"}
    )

    assert errors == {}
