"""Log output: human-readable by default, one JSON object a line with ONEMAP_LOG_FORMAT=json
(timestamp, level, logger, message, request_id when the line is written while a request is
being answered, exception when there is one).

Secrets never reach a JSON line: API tokens (om_...), device tokens (dev_...) and signed tile
tokens (t=...) are masked in the message and the exception text, whoever logged them."""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

# Set by config.observe for the request being answered (uvicorn runs each request in its own task).
REQUEST_ID: ContextVar[str | None] = ContextVar("onemap_request_id", default=None)

_SECRETS = [
    (re.compile(r"\b(om|dev)_[A-Za-z0-9_\-]{4,}"), r"\1_***"),
    (re.compile(r"([?&;](?:t|token)=)[^&\s\"']+"), r"\1***"),
    (re.compile(r"(?i)(authorization:?\s*bearer\s+)\S+"), r"\1***"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False)


def logging_config(log_format: str, level: str) -> dict[str, object]:
    """Django's LOGGING: `text` (the default) or `json`; uvicorn's own loggers too in json, so
    every line of a server's output parses."""
    if log_format not in ("text", "json"):
        raise ValueError(f"ONEMAP_LOG_FORMAT must be text or json, not {log_format!r}")
    config: dict[str, object] = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "INFO"}},
    }
    if log_format == "json":
        config["formatters"] = {"json": {"()": "config.logs.JsonFormatter"}}
        config["handlers"] = {"console": {"class": "logging.StreamHandler", "formatter": "json"}}
        config["loggers"] = {
            "django.db.backends": {"level": "INFO"},
            **{name: {"handlers": ["console"], "level": level, "propagate": False}
               for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
        }
    return config
