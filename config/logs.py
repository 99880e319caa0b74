"""Log output: human-readable by default, one JSON object a line with ONEMAP_LOG_FORMAT=json
(timestamp, level, logger, message, request_id when the line is written while a request is
being answered, exception when there is one).

Secrets never reach a JSON line: API tokens (om_...), device tokens (dev_...) and signed tile
tokens (t=...) are masked (config/logredact.py) in the message and in the exception text, whoever
logged them."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

from config.logredact import redact

# Set by config.observe for the request being answered (uvicorn runs each request in its own task).
REQUEST_ID: ContextVar[str | None] = ContextVar("onemap_request_id", default=None)


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
    """Django's LOGGING: `text` (the default) or `json`; in json uvicorn's own loggers write
    through the same handler, so every line of a server's output parses."""
    if log_format not in ("text", "json"):
        raise ValueError(f"ONEMAP_LOG_FORMAT must be text or json, not {log_format!r}")
    console: dict[str, object] = {"class": "logging.StreamHandler", "filters": ["redact_tokens"]}
    loggers: dict[str, object] = {
        "django.db.backends": {"level": "INFO"},
        # procrastinate announces every task registration at INFO on each start: keep its warnings only.
        "procrastinate": {"level": "WARNING"},
    }
    config: dict[str, object] = {
        "version": 1,
        "disable_existing_loggers": False,
        # Tokens never reach a log (config/logredact.py; config/asgi.py adds it to uvicorn's handlers).
        "filters": {"redact_tokens": {"()": "config.logredact.RedactTokens"}},
        "handlers": {"console": console},
        "root": {"handlers": ["console"], "level": level},
        "loggers": loggers,
    }
    if log_format == "json":
        config["formatters"] = {"json": {"()": "config.logs.JsonFormatter"}}
        console["formatter"] = "json"
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            loggers[name] = {"handlers": ["console"], "level": level, "propagate": False}
    return config
