"""Logs: one JSON line per event when not on a terminal, and never a secret."""

from __future__ import annotations

import io
import json
import logging

from monitor.logs import configure, event


def test_events_are_json_lines_with_their_fields() -> None:
    """An event is one JSON object on one line, with its name and fields."""
    out = io.StringIO()
    configure("INFO", out, environ={})
    event(logging.getLogger("monitor.test"), "transition", system="payment", current="DOWN")
    line = json.loads(out.getvalue().strip())
    assert (line["event"], line["system"], line["current"]) == ("transition", "payment", "DOWN")


def test_secret_fields_and_values_never_reach_the_log() -> None:
    """Authorization headers, passwords in URLs and secret environment values (the API token,
    the DKIM key) are redacted."""
    out = io.StringIO()
    key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPrivateSeed\n-----END PRIVATE KEY-----"
    configure(
        "INFO", out, environ={"MONITOR_API_TOKEN": "s3cret-token-value", "MONITOR_DKIM_KEY": key}
    )
    event(
        logging.getLogger("monitor.test"),
        "probe",
        headers={"Authorization": "Bearer abc.def", "Accept": "text/plain"},
        smtp="smtp://user:hunter2@mail.example.com:587",
        note="token was s3cret-token-value",
        signing=f"read {key} from the environment",
    )
    text = out.getvalue()
    assert "PrivateSeed" not in text
    assert "abc.def" not in text
    assert "hunter2" not in text
    assert "s3cret-token-value" not in text
    line = json.loads(text)
    assert line["headers"] == {"Authorization": "[redacted]", "Accept": "text/plain"}
