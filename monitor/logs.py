"""Structured logs: one line per event, JSON when not on a terminal, secrets redacted.

Call ``event(logger, "name", key=value, ...)``. Any field whose name looks like a secret
(authorization, password, token, secret, cookie, api key, DKIM or private key) is replaced by
``[redacted]``, and so is any value of a known secret (``MONITOR_*TOKEN``, ``*PASSWORD``,
``MONITOR_DKIM_KEY``, SMTP URL credentials...).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

_SECRET_NAME = re.compile(
    r"(authorization|password|passwd|secret|token|cookie|api[_-]?key|dkim[_-]?key|private[_-]?key)",
    re.I,
)
_URL_CREDENTIALS = re.compile(r"(\w+://)([^/@\s:]+):([^/@\s]+)@")
REDACTED = "[redacted]"


def redact(value: Any, name: str = "") -> Any:
    """Return ``value`` with anything secret replaced by ``[redacted]``."""
    if name and _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\1\2:" + REDACTED + "@", value)
    return value


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with structured fields."""
    logger.log(level, name, extra={"fields": fields})


class _SecretValues:
    """Blanks out the values of secret environment variables wherever they appear."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        values = [v for k, v in environ.items() if _SECRET_NAME.search(k) and len(v) >= 6]
        # As JSON writes them too: a key's line breaks and backslashes are escaped in a line.
        escaped = [json.dumps(v)[1:-1] for v in values]
        self.secrets = sorted(set(values + escaped), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class JsonFormatter(logging.Formatter):
    def __init__(self, scrubber: _SecretValues) -> None:
        super().__init__()
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(redact(getattr(record, "fields", {})))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return self.scrubber.scrub(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self, scrubber: _SecretValues) -> None:
        super().__init__()
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = redact(getattr(record, "fields", {}))
        detail = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{stamp} {record.levelname.lower():7} {record.getMessage()} {detail}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return self.scrubber.scrub(text)


def configure(
    level: str = "INFO", stream: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Send the ``monitor`` loggers to ``stream``: JSON unless it is a terminal."""
    stream = stream or sys.stderr
    scrubber = _SecretValues(os.environ if environ is None else environ)
    handler = logging.StreamHandler(stream)
    tty = hasattr(stream, "isatty") and stream.isatty()
    handler.setFormatter(TextFormatter(scrubber) if tty else JsonFormatter(scrubber))
    root = logging.getLogger("monitor")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # The PostgreSQL pool's own warnings (a connection lost, a reconnection failing), in the
    # same format, rather than as bare lines among the JSON.
    driver = logging.getLogger("psycopg")
    driver.handlers[:] = [handler]
    driver.setLevel(max(logging.WARNING, root.level))
    driver.propagate = False
