"""WeComRobotProvider end to end against the fake WeCom group robot webhook."""

import logging
import uuid

import pytest

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.wecom_robot import ERROR_CODES, WeComRobotProvider
from tests.fakes.wechat import FakeWeChat

SEND_PATH = "/cgi-bin/webhook/send"

# Written from WeCom's group robot guide and global return codes, independently of
# the adapter's table.
EXPECTED_OUTCOMES = {
    -1: Outcome.RETRYABLE,
    93000: Outcome.CONFIGURATION,
    45009: Outcome.RETRYABLE,
    45033: Outcome.RETRYABLE,
    40008: Outcome.PERMANENT,
    44004: Outcome.PERMANENT,
    40058: Outcome.PERMANENT,
}


@pytest.fixture
def robot_key():
    return str(uuid.uuid4())


@pytest.fixture
def fake(robot_key):
    with FakeWeChat() as server:
        server.add_robot(robot_key)
        yield server


def build(fake: FakeWeChat, key: str, **config) -> WeComRobotProvider:
    return WeComRobotProvider({"base_url": fake.base_url, **config}, {"key": key}, timeout=5)


@pytest.fixture
def provider(fake, robot_key):
    adapter = build(fake, robot_key)
    yield adapter
    adapter.close()


def message(record_id: int = 1, **fields) -> OutgoingMessage:
    return OutgoingMessage(record_id, "", "Deploy finished", "Build 42 is live", **fields)


def test_text_message_on_the_wire(provider, fake, robot_key):
    [result] = provider.send([message()])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == "wecom-robot-1"
    [request] = fake.requests_to(SEND_PATH)
    assert request.params == {"key": robot_key}
    assert request.body == {
        "msgtype": "text",
        "text": {"content": "Deploy finished\nBuild 42 is live"},
    }


def test_text_mentions_from_options(provider, fake):
    options = {"mentioned_list": ["wangwu", "@all"], "mentioned_mobile_list": ["13800001111"]}

    [result] = provider.send([message(options=options)])

    assert result.outcome == Outcome.SENT
    [request] = fake.requests_to(SEND_PATH)
    assert request.body["text"]["mentioned_list"] == ["wangwu", "@all"]
    assert request.body["text"]["mentioned_mobile_list"] == ["13800001111"]


def test_markdown_writes_user_mentions_into_text(provider, fake):
    options = {"msgtype": "markdown", "mentioned_list": ["wangwu", "@all"]}

    [result] = provider.send([message(options=options)])

    assert result.outcome == Outcome.SENT
    [request] = fake.requests_to(SEND_PATH)
    assert request.body == {
        "msgtype": "markdown",
        "markdown": {"content": "**Deploy finished**\nBuild 42 is live\n<@wangwu>"},
    }


def test_markdown_from_config(fake, robot_key):
    adapter = build(fake, robot_key, msgtype="markdown")

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.SENT
    assert fake.requests_to(SEND_PATH)[0].body["msgtype"] == "markdown"


def test_batch_sends_one_request_per_message(provider, fake):
    results = provider.send([message(record_id) for record_id in range(1, 6)])

    assert [r.outcome for r in results] == [Outcome.SENT] * 5
    assert len(fake.requests_to(SEND_PATH)) == 5


def test_oversized_text_is_permanent_without_request(provider, fake):
    long_message = OutgoingMessage(1, "", "", "字" * 700)  # 2100 bytes in UTF-8

    [result] = provider.send([long_message])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "content_too_long"
    assert fake.requests_to(SEND_PATH) == []


def test_unknown_msgtype_is_permanent(provider, fake):
    [result] = provider.send([message(options={"msgtype": "news"})])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "msgtype_invalid"


# Error classification


def test_expected_table_covers_adapter_codes():
    assert set(EXPECTED_OUTCOMES) == set(ERROR_CODES)


@pytest.mark.parametrize("errcode", sorted(EXPECTED_OUTCOMES))
def test_errcode_outcome(provider, fake, robot_key, errcode):
    fake.script(robot_key, errcode)

    [result] = provider.send([message()])

    assert result.outcome == EXPECTED_OUTCOMES[errcode]
    assert result.error_code == str(errcode)
    assert robot_key not in result.error_message


def test_rate_limit_waits_a_minute(provider, fake, robot_key):
    fake.script(robot_key, 45009)

    [result] = provider.send([message()])

    assert result.retry_after == 60.0


def test_unknown_key_is_configuration(fake):
    other_key = str(uuid.uuid4())
    adapter = build(fake, other_key)

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "93000"
    assert other_key not in result.error_message


def test_http_404_is_permanent(provider, fake):
    fake.script_raw(SEND_PATH, 404, b"not found")

    [result] = provider.send([message()])

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "http_404"


# The key is a secret


def test_key_absent_from_network_error(fake, robot_key):
    adapter = build(fake, robot_key)
    fake.stop()

    [result] = adapter.send([message()])
    adapter.close()

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "network"
    assert robot_key not in result.error_message


def test_key_absent_from_debug_logs(provider, robot_key, caplog):
    caplog.set_level(logging.DEBUG)

    provider.send([message()])

    assert "/cgi-bin/webhook/send?key=***" in caplog.text
    assert robot_key not in caplog.text


def test_validate_requires_key():
    assert set(WeComRobotProvider.validate({}, {})) == {"credentials.key"}


def test_validate_rejects_whole_webhook_url():
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"

    errors = WeComRobotProvider.validate({"msgtype": "image"}, {"key": url})

    assert set(errors) == {"credentials.key", "config.msgtype"}


def test_robot_addresses_its_channel():
    assert WeComRobotProvider.addresses_channel is True
    assert WeComRobotProvider.address_kinds == ()


@pytest.mark.parametrize("options", [
    {"mentioned_list": "zhangsan"},
    {"mentioned_mobile_list": 5},
    {"mentioned_list": ["a", 1]},
])
def test_mention_options_must_be_string_lists(provider, fake, options):
    [result] = provider.send([message(options=options)])

    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "invalid_options")
    assert fake.requests_to(SEND_PATH) == []
