"""After a restart, the transitions a crash cut off are found from the saved states and the
incidents (monitor/notify/resume.py); stale states are left alone."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from monitor.incidents.correlation import Incident, Member
from monitor.model import Health, SystemState, Transition
from monitor.notify.resume import missed_transitions


def open_incident(*members: Member) -> Incident:
    return Incident(id=1, opened_at=100.0, members=members, cause=members[0].name)


def down(name: str, since: float) -> SystemState:
    return SystemState(name, Health.DOWN, since, fail_streak=3, last_reason="status 503")


def up(name: str, since: float) -> SystemState:
    return SystemState(name, Health.UP, since, pass_streak=2, last_reason="status 200")


CASES = [
    pytest.param(
        [down("payment", 100.0)],
        [],
        [Transition("payment", 100.0, Health.UP, Health.DOWN, "status 503", 3)],
        id="down-with-no-incident-is-missed",
    ),
    pytest.param(
        [up("payment", 200.0)],
        [open_incident(Member("payment", 100.0))],
        [Transition("payment", 200.0, Health.DOWN, Health.UP, "status 200", 2)],
        id="up-while-an-open-incident-counts-it-down-is-missed",
    ),
    pytest.param(
        [down("payment", 100.0)],
        [open_incident(Member("payment", 100.0))],
        [],
        id="down-in-an-open-incident-is-applied",
    ),
    pytest.param(
        [down("payment", 100.0)],
        [open_incident(Member("login", 90.0), Member("payment", 50.0, up_at=150.0))],
        [],
        id="down-older-than-a-recorded-recovery-is-stale",
    ),
    pytest.param(
        [up("payment", 90.0)],
        [open_incident(Member("payment", 100.0))],
        [],
        id="up-older-than-the-incidents-failure-is-stale",
    ),
    pytest.param(
        [SystemState("payment", Health.UNKNOWN, 100.0), SystemState("login", Health.DOWN)],
        [],
        [],
        id="unknown-or-undated-states-are-not-transitions",
    ),
]


@pytest.mark.parametrize(("states", "incidents", "expected"), CASES)
async def test_a_crash_between_state_and_incident_is_resumed(
    states: Sequence[SystemState], incidents: Sequence[Incident], expected: list[Transition]
) -> None:
    """Each row: the saved states against the incidents give these transitions to correlate."""

    async def incidents_since(_since: float) -> Sequence[Incident]:
        return incidents

    assert await missed_transitions(states, incidents_since) == expected


async def test_incidents_are_read_from_the_earliest_decided_state_and_only_if_needed() -> None:
    """The incidents are read once, from the oldest decided state's time, and not at all when
    no state was decided."""
    asked: list[float] = []

    async def incidents_since(since: float) -> list[Incident]:
        asked.append(since)
        return []

    await missed_transitions([down("payment", 300.0), up("login", 200.0)], incidents_since)
    await missed_transitions([SystemState("payment")], incidents_since)
    assert asked == [200.0]
