"""Request lines are logged without query strings, where callback tokens travel."""
import logging

from sharestack_push.logfilters import RedactQueryStrings


def record(msg, args):
    return logging.LogRecord("django.server", logging.INFO, __file__, 1, msg, args, None)


def test_request_line_loses_its_query():
    entry = record('"%s" %s %s', ("POST /api/v1/callbacks/7?token=SECRET HTTP/1.1", "200", "2"))
    RedactQueryStrings().filter(entry)
    assert entry.getMessage() == '"POST /api/v1/callbacks/7?… HTTP/1.1" 200 2'


def test_message_without_arguments_is_redacted():
    entry = record("GET /x?secret=abc done", None)
    RedactQueryStrings().filter(entry)
    assert "abc" not in entry.getMessage()


def test_runserver_logger_uses_the_filter():
    handlers = logging.getLogger("django.server").handlers
    assert any(isinstance(f, RedactQueryStrings) for handler in handlers for f in handler.filters)
