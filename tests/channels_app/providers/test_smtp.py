"""SmtpProvider end to end against a real aiosmtpd server on 127.0.0.1."""

import pytest

from channels_app.providers.base import Outcome, OutgoingMessage
from channels_app.providers.smtp import SmtpProvider
from tests.fakes.smtp import RecordingSmtpServer

FROM_EMAIL = "noreply@push.example.com"


def build_provider(
    server: RecordingSmtpServer, credentials=None, **config
) -> SmtpProvider:
    config = {
        "host": server.host,
        "port": server.port,
        "from_email": FROM_EMAIL,
        **config,
    }
    return SmtpProvider(config, credentials or {}, timeout=5)


def message(
    record_id: int = 1, address: str = "ada@example.com", **data
) -> OutgoingMessage:
    return OutgoingMessage(
        record_id, address, "Deploy finished", "Build 42 is live.", data
    )


def send_one(provider: SmtpProvider, address: str = "ada@example.com", **data):
    [result] = provider.send([message(address=address, **data)])
    return result


@pytest.fixture
def auth_server():
    with RecordingSmtpServer(username="push", password="correct-password") as server:
        yield server


# Delivered content


def test_delivers_subject_and_body(smtp_server):
    result = send_one(build_provider(smtp_server))

    assert result.outcome == Outcome.SENT
    [mail] = smtp_server.mails
    assert mail.mail_from == FROM_EMAIL
    assert mail.rcpt_tos == ["ada@example.com"]
    assert mail.message["Subject"] == "Deploy finished"
    assert mail.message["To"] == "ada@example.com"
    assert mail.message.get_content_type() == "text/plain"
    assert mail.message.get_content().strip() == "Build 42 is live."


def test_message_id_matches_result(smtp_server):
    result = send_one(build_provider(smtp_server))

    [mail] = smtp_server.mails
    assert result.provider_message_id
    assert mail.message["Message-ID"] == result.provider_message_id
    assert result.provider_message_id.endswith("@push.example.com>")


def test_message_id_with_display_name_sender(smtp_server):
    provider = build_provider(
        smtp_server, from_email="ShareStack <noreply@push.example.com>"
    )

    result = send_one(provider)

    [mail] = smtp_server.mails
    assert result.provider_message_id.endswith("@push.example.com>")
    assert mail.message["Message-ID"] == result.provider_message_id
    assert mail.mail_from == "noreply@push.example.com"


def test_html_adds_alternative_part(smtp_server):
    outgoing = OutgoingMessage(
        1, "ada@example.com", "Deploy finished", "Build 42 is live.",
        html="<p>Build <b>42</b> is live.</p>",
    )

    [result] = build_provider(smtp_server).send([outgoing])

    assert result.outcome == Outcome.SENT
    [mail] = smtp_server.mails
    assert mail.message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in mail.message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html = mail.message.get_body(preferencelist=("html",))
    plain = mail.message.get_body(preferencelist=("plain",))
    assert "<p>Build <b>42</b> is live.</p>" in html.get_content()
    assert plain.get_content().strip() == "Build 42 is live."


def test_empty_html_sends_plain_text(smtp_server):
    outgoing = OutgoingMessage(1, "ada@example.com", "Deploy", "Body", html="")

    build_provider(smtp_server).send([outgoing])

    [mail] = smtp_server.mails
    assert mail.message.get_content_type() == "text/plain"


def test_headers_arrive_with_html(smtp_server):
    unsubscribe = "<https://push.example.com/u/abc>, <mailto:unsub@push.example.com>"
    outgoing = OutgoingMessage(
        1, "ada@example.com", "Spring sale", "20% off.", marketing=True,
        html="<p>20% off.</p>",
        headers={
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )

    [result] = build_provider(smtp_server).send([outgoing])

    [mail] = smtp_server.mails
    assert mail.message["List-Unsubscribe"] == unsubscribe
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.message["Message-ID"] == result.provider_message_id


def test_header_cannot_replace_message_id(smtp_server):
    outgoing = OutgoingMessage(
        1, "ada@example.com", "Deploy", "Body", headers={"Message-ID": "<x@evil.test>"}
    )

    [result] = build_provider(smtp_server).send([outgoing])

    [mail] = smtp_server.mails
    assert mail.message["Message-ID"] == result.provider_message_id
    assert result.provider_message_id != "<x@evil.test>"


def test_batch_uses_one_message_per_address(smtp_server):
    batch = [
        message(record_id, f"user{record_id}@example.com") for record_id in range(1, 6)
    ]

    results = build_provider(smtp_server).send(batch)

    assert [r.outcome for r in results] == [Outcome.SENT] * 5
    assert [mail.rcpt_tos for mail in smtp_server.mails] == [
        [f"user{record_id}@example.com"] for record_id in range(1, 6)
    ]
    assert len({r.provider_message_id for r in results}) == 5


# Rejections


def test_recipient_550_is_invalid_address(smtp_server):
    smtp_server.reject_recipient("ada@example.com", "550 5.1.1 User unknown")

    result = send_one(build_provider(smtp_server))

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "550"
    assert "User unknown" in result.error_message
    assert smtp_server.mails == []


def test_recipient_451_is_retryable(smtp_server):
    smtp_server.reject_recipient(
        "ada@example.com", "451 4.7.1 Greylisted, try again later"
    )

    result = send_one(build_provider(smtp_server))

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "451"


def test_data_554_is_permanent(smtp_server):
    smtp_server.reject_data("ada@example.com", "554 5.6.0 Message rejected as spam")

    result = send_one(build_provider(smtp_server))

    assert result.outcome == Outcome.PERMANENT
    assert result.error_code == "554"
    assert smtp_server.mails == []


def test_sender_5xx_is_configuration(smtp_server):
    smtp_server.reject_sender("553 5.7.1 Sender address rejected")

    result = send_one(build_provider(smtp_server))

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "553"


def test_sender_4xx_is_retryable(smtp_server):
    smtp_server.reject_sender("451 4.3.2 Too many messages, slow down")

    result = send_one(build_provider(smtp_server))

    assert result.outcome == Outcome.RETRYABLE
    assert result.error_code == "451"


def test_batch_continues_after_rejection(smtp_server):
    smtp_server.reject_recipient("gone@example.com")
    smtp_server.reject_data("spam@example.com")
    batch = [
        message(1, "ada@example.com"),
        message(2, "gone@example.com"),
        message(3, "spam@example.com"),
        message(4, "grace@example.com"),
    ]

    results = build_provider(smtp_server).send(batch)

    assert [r.record_id for r in results] == [1, 2, 3, 4]
    assert [r.outcome for r in results] == [
        Outcome.SENT,
        Outcome.INVALID_ADDRESS,
        Outcome.PERMANENT,
        Outcome.SENT,
    ]
    assert [mail.rcpt_tos for mail in smtp_server.mails] == [
        ["ada@example.com"],
        ["grace@example.com"],
    ]


def test_empty_address_is_invalid_address(smtp_server):
    result = send_one(build_provider(smtp_server), address="")

    assert result.outcome == Outcome.INVALID_ADDRESS
    assert result.error_code == "no_recipient"
    assert smtp_server.mails == []


def test_newline_in_subject_is_permanent(smtp_server):
    broken = OutgoingMessage(1, "ada@example.com", "Deploy\nfinished", "Body", {})

    results = build_provider(smtp_server).send([broken, message(2)])

    assert results[0].outcome == Outcome.PERMANENT
    assert results[0].error_code == "invalid_message"
    assert results[1].outcome == Outcome.SENT
    assert len(smtp_server.mails) == 1


# Connection and authentication


def test_server_down_is_retryable(smtp_server):
    provider = build_provider(smtp_server)
    smtp_server.stop()

    results = provider.send([message(1), message(2)])

    assert [r.outcome for r in results] == [Outcome.RETRYABLE, Outcome.RETRYABLE]
    assert results[0].error_code == "connect_failed"


def test_wrong_password_is_configuration(auth_server):
    credentials = {"username": "push", "password": "wrong-password"}

    results = build_provider(auth_server, credentials).send([message(1), message(2)])

    assert [r.outcome for r in results] == [
        Outcome.CONFIGURATION,
        Outcome.CONFIGURATION,
    ]
    assert results[0].error_code == "auth_failed"
    assert "wrong-password" not in results[0].error_message
    assert auth_server.mails == []


def test_starttls_unsupported_is_configuration(smtp_server):
    provider = build_provider(smtp_server, use_tls=True)

    result = send_one(provider)

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "not_supported"
    assert "STARTTLS" in result.error_message


def test_auth_unsupported_is_configuration(smtp_server):
    credentials = {"username": "push", "password": "any-password"}

    result = send_one(build_provider(smtp_server, credentials))

    assert result.outcome == Outcome.CONFIGURATION
    assert result.error_code == "not_supported"
    assert smtp_server.mails == []


def test_correct_password_delivers(auth_server):
    credentials = {"username": "push", "password": "correct-password"}

    result = send_one(build_provider(auth_server, credentials))

    assert result.outcome == Outcome.SENT
    [mail] = auth_server.mails
    assert mail.login == "push"


# Configuration checks


def test_validate_accepts_complete_config():
    config = {
        "host": "smtp.example.com",
        "port": 587,
        "from_email": FROM_EMAIL,
        "use_tls": True,
    }

    assert SmtpProvider.validate(config, {}) == {}


def test_validate_names_missing_fields():
    errors = SmtpProvider.validate({}, {})

    assert set(errors) == {"config.host", "config.port", "config.from_email"}


@pytest.mark.parametrize("port", [0, 65536, "25", 25.0])
def test_validate_rejects_bad_port(port):
    config = {"host": "smtp.example.com", "port": port, "from_email": FROM_EMAIL}

    errors = SmtpProvider.validate(config, {})

    assert set(errors) == {"config.port"}


def test_validate_rejects_tls_with_ssl():
    config = {
        "host": "smtp.example.com",
        "port": 465,
        "from_email": FROM_EMAIL,
        "use_tls": True,
        "use_ssl": True,
    }

    assert set(SmtpProvider.validate(config, {})) == {"config.use_ssl"}
