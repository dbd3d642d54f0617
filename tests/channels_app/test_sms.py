"""SMS length counting, opt-out lines, and the helpers the SMS adapters share."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import RequestFactory

from channels_app.providers.base import CallbackRejected, OutgoingMessage
from channels_app.providers.sms_common import (
    as_string,
    check_callback_token,
    check_concurrency,
    china_time,
    chunks_with_unique_addresses,
    run_concurrently,
    template_for,
)
from channels_app.sms import opt_out_line, sms_length, text_with_opt_out

# sms_length


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("Hello", "GSM-7", 5, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),
        ("[" * 81, "GSM-7", 162, 2),
        ("您好", "UCS-2", 2, 1),
        ("您" * 70, "UCS-2", 70, 1),
        ("您" * 71, "UCS-2", 71, 2),
        ("您" * 134, "UCS-2", 134, 2),
        ("您" * 135, "UCS-2", 135, 3),
        ("a" * 69 + "😀", "UCS-2", 71, 2),
        ("Café ç", "UCS-2", 6, 1),
    ],
)
def test_sms_length(text, encoding, units, segments):
    length = sms_length(text)

    assert length.encoding == encoding
    assert length.units == units
    assert length.segments == segments


# Opt-out lines


def test_opt_out_line_by_language():
    assert opt_out_line("zh-Hans") == "拒收请回复R"
    assert opt_out_line("zh_CN") == "拒收请回复R"
    assert opt_out_line("en-GB") == "Reply STOP to opt out"


def test_opt_out_line_defaults_to_english():
    assert opt_out_line("") == "Reply STOP to opt out"
    assert opt_out_line("fr") == "Reply STOP to opt out"


def test_text_with_opt_out_only_for_marketing():
    assert text_with_opt_out("Code 1234", False, "zh") == "Code 1234"
    assert text_with_opt_out("大促", True, "zh") == "大促\n拒收请回复R"


# Shared helpers


def message(**fields):
    return OutgoingMessage(1, "+8613800000001", "", "body", **fields)


def test_template_for_prefers_option():
    config = {"template_codes": {"order": "T_ORDER"}, "template_code": "T_DEFAULT"}

    chosen = template_for(
        message(options={"template_code": "T_OPT"}, notification_type="order"),
        config,
        "template_code",
        "template_codes",
        "template_code",
    )

    assert chosen == "T_OPT"


def test_template_for_by_type_then_default():
    config = {"template_codes": {"order": "T_ORDER"}, "template_code": "T_DEFAULT"}
    args = (config, "template_code", "template_codes", "template_code")

    assert template_for(message(notification_type="order"), *args) == "T_ORDER"
    assert template_for(message(notification_type="other"), *args) == "T_DEFAULT"
    assert (
        template_for(message(), {}, "template_code", "template_codes", "template_code")
        == ""
    )


def test_as_string():
    assert as_string(5) == "5"
    assert as_string(True) == "true"
    assert as_string(None) == ""
    assert as_string("x") == "x"


def test_chunks_keep_addresses_unique():
    items = ["a", "b", "a", "c", "a"]

    chunks = list(chunks_with_unique_addresses(items, 2, lambda item: item))

    assert chunks == [["a", "b"], ["a", "c"], ["a"]]


def test_run_concurrently_keeps_order():
    assert run_concurrently(lambda n: n * 2, list(range(20)), 4) == list(
        range(0, 40, 2)
    )
    assert run_concurrently(lambda n: n, [7], 4) == [7]


def test_check_callback_token():
    factory = RequestFactory()

    check_callback_token(factory.post("/cb?token=s3cret"), {"callback_token": "s3cret"})
    with pytest.raises(CallbackRejected):
        check_callback_token(
            factory.post("/cb?token=wrong"), {"callback_token": "s3cret"}
        )
    with pytest.raises(CallbackRejected):
        check_callback_token(factory.post("/cb"), {"callback_token": "s3cret"})
    with pytest.raises(CallbackRejected):
        check_callback_token(factory.post("/cb?token="), {})


def test_china_time():
    parsed = china_time("2026-06-10 12:00:05")

    assert parsed == datetime(2026, 6, 10, 4, 0, 5, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(hours=8)
    assert china_time("yesterday") is None
    assert china_time(None) is None


@pytest.mark.parametrize("value", [0, -1, "8", 2.5, True])
def test_check_concurrency_rejects(value):
    errors = {}

    check_concurrency({"concurrency": value}, errors)

    assert "config.concurrency" in errors


def test_check_concurrency_accepts():
    errors = {}

    check_concurrency({"concurrency": 4}, errors)
    check_concurrency({}, errors)

    assert errors == {}
