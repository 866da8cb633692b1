"""Team notices: what on-call reads when an incident opens, grows and resolves."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fake_twilio import WebhookReceiver

from monitor.incidents.correlation import Change, Incident, Member
from monitor.notify.oncall import OnCall, describe

TITLES = {"payment": "Online payments", "login": "Signing in"}
INCIDENT = Incident(
    id=7,
    opened_at=1000.0,
    members=(Member("payment", 1000.0), Member("login", 1010.0)),
    cause="payment",
)


def test_an_opened_incident_says_cause_systems_audience_and_how_to_hold() -> None:
    """The opening notice names the cause, the systems, how many people will be told and
    when, and the request that holds the messages."""
    notice = describe(INCIDENT, Change.OPENED, ["payment"], TITLES, 1234, 60.0, held=False)
    assert notice is not None
    assert notice.title == "Incident 7 opened: Online payments is down"
    assert "Systems: Online payments, Signing in" in notice.body
    assert "1234 people will be told in 1 minute" in notice.body
    assert "POST /api/v1/incidents/7/hold" in notice.body


def test_a_held_incident_says_how_to_release() -> None:
    """In confirm mode the notice says messages are held and how to release them."""
    notice = describe(INCIDENT, Change.OPENED, ["payment"], TITLES, 3, 60.0, held=True)
    assert notice is not None
    assert "POST /api/v1/incidents/7/release" in notice.body


async def test_notices_reach_an_apprise_url() -> None:
    """A notice goes through apprise (here its json:// service) to the team's endpoint."""
    async with WebhookReceiver() as receiver:
        oncall = OnCall([receiver.url("/team").replace("http://", "json://")])
        runner = asyncio.create_task(oncall.run())
        resolved = Incident(7, 1000.0, INCIDENT.members, "payment", resolved_at=4600.0)
        notice = describe(resolved, Change.RESOLVED, ["login"], TITLES, None, 60.0, False)
        assert notice is not None
        oncall.tell(notice)
        try:
            async with asyncio.timeout(30):
                await oncall.queue.join()
        finally:
            runner.cancel()
        assert oncall.sent == 1
        body = json.loads(receiver.received[0].body)
        assert body["title"] == "Incident 7 resolved after 1 hour"
        assert "Online payments, Signing in" in body["message"]


def test_a_refused_on_call_url_is_logged_by_its_scheme_never_its_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An on-call URL apprise cannot use is reported with its scheme only: the rest of it
    (tokens, passwords) never reaches the log."""
    with caplog.at_level(logging.ERROR, logger="monitor.oncall"):
        OnCall(["nosuchservice://team:s3cret-token@example.com/room"])
    assert "on-call URL refused by apprise" in caplog.text
    assert "nosuchservice" in caplog.text
    assert "s3cret-token" not in caplog.text
