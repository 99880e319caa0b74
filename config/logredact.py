"""Tokens never reach a log (issue 14). uvicorn logs a WebSocket's path with its query string
(`"WebSocket /ws/map?token=om_…" [accepted]`) even with --no-access-log, and an access log, when
turned on, logs every tile URL with its signed `t=`. This filter rewrites such values in every
record, keeping the record's shape (uvicorn's access formatter reads its args).

Installed on the console handler by settings.LOGGING and, by config/asgi.py once uvicorn and
Django have both configured logging, on every handler of the root and uvicorn loggers."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
PATTERNS = [
    # Query parameters that carry credentials: API/device tokens and signed tile tokens.
    (re.compile(r"(?i)([?&;](?:token|access_token|t)=)[^&\s\"'#]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(\bbearer\s+)[^\s\"',]+"), rf"\1{REDACTED}"),
    # A raw API (om_) or device (dev_) token anywhere else in a message.
    (re.compile(r"\b(om|dev)_[A-Za-z0-9_\-]{16,}"), rf"\1_{REDACTED}"),
]
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "django", "django.request", "django.server")


def redact(text: str) -> str:
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact_value(value) for key, value in record.args.items()}
        return True


def install() -> None:
    """Put the filter on every handler the loggers that may carry a URL write through."""
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactTokens) for f in handler.filters):
                handler.addFilter(RedactTokens())
