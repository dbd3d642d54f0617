"""Logging filters that keep secrets carried in URLs out of the logs.

Some providers can only authenticate their callbacks with a token in the query string
(Aliyun and Tencent SMS reports, Xiaomi receipts), so request lines are logged
without their query strings.
"""
import logging
import re

QUERY = re.compile(r"\?[^\s\"]*")


class RedactQueryStrings(logging.Filter):
    """Replace the query string of each request line in a log record with `?…`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                QUERY.sub("?…", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = QUERY.sub("?…", record.msg)
        return True
