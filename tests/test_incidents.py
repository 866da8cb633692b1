"""Correlation: which failures are one incident, and what caused it."""

from __future__ import annotations

from itertools import count

from monitor.incidents import Change, Correlator, Incident
from monitor.model import Health, Transition

DEPENDS = {"payment": ["crm"], "login": ["crm"], "crm": [], "search": []}
WINDOW = 300.0


def down(system: str, at: float) -> Transition:
    return Transition(system, at, Health.UP, Health.DOWN, "status 503, expected 200", 3)


def up(system: str, at: float) -> Transition:
    return Transition(system, at, Health.DOWN, Health.UP, "status 200", 2)


class Script:
    """Feeds transitions through a Correlator, keeping incidents the way the store would."""

    def __init__(self) -> None:
        self.correlator = Correlator(DEPENDS, WINDOW)
        self.incidents: dict[int, Incident] = {}
        self.ids = count(1)

    def feed(self, transition: Transition) -> Change | None:
        outcome = self.correlator.apply(
            transition, list(self.incidents.values()), lambda: next(self.ids)
        )
        if outcome is None:
            return None
        self.incidents[outcome.incident.id] = outcome.incident
        return outcome.change


def test_payment_and_login_failing_together_is_one_incident() -> None:
    """Two systems going DOWN a minute apart make one incident with both in it."""
    script = Script()
    assert script.feed(down("payment", 1000.0)) is Change.OPENED
    assert script.feed(down("login", 1060.0)) is Change.JOINED
    assert len(script.incidents) == 1
    assert script.incidents[1].systems == ("payment", "login")
    assert script.incidents[1].cause == "payment"


def test_failures_far_apart_and_unrelated_are_separate_incidents() -> None:
    """A system with no dependency link failing an hour later opens its own incident."""
    script = Script()
    script.feed(down("payment", 1000.0))
    assert script.feed(down("search", 4600.0)) is Change.OPENED
    assert len(script.incidents) == 2


def test_a_dependency_joins_however_late_and_becomes_the_cause() -> None:
    """crm failing long after payment joins payment's incident, as the likely cause."""
    script = Script()
    script.feed(down("payment", 1000.0))
    assert script.feed(down("crm", 5000.0)) is Change.JOINED
    assert script.incidents[1].cause == "crm"


def test_cause_is_what_others_depend_on_even_if_it_failed_last() -> None:
    """With payment, login and crm down together, crm is named the cause."""
    script = Script()
    for at, system in ((1000.0, "login"), (1010.0, "payment"), (1020.0, "crm")):
        script.feed(down(system, at))
    assert script.incidents[1].cause == "crm"


def test_incident_resolves_only_when_every_system_is_up() -> None:
    """One system back is a recovery; the last one back resolves the incident."""
    script = Script()
    script.feed(down("payment", 1000.0))
    script.feed(down("login", 1010.0))
    assert script.feed(up("payment", 2000.0)) is Change.RECOVERED
    assert script.incidents[1].is_open
    assert script.feed(up("login", 2100.0)) is Change.RESOLVED
    assert script.incidents[1].resolved_at == 2100.0


def test_flapping_within_the_window_reopens_the_same_incident() -> None:
    """DOWN again two minutes after resolving re-opens incident 1 rather than opening 2."""
    script = Script()
    script.feed(down("payment", 1000.0))
    script.feed(up("payment", 1100.0))
    assert script.feed(down("payment", 1220.0)) is Change.REOPENED
    assert list(script.incidents) == [1]
    assert script.incidents[1].is_open


def test_down_again_after_the_window_is_a_new_incident() -> None:
    """DOWN an hour after the last incident resolved is a new incident."""
    script = Script()
    script.feed(down("payment", 1000.0))
    script.feed(up("payment", 1100.0))
    assert script.feed(down("payment", 5000.0)) is Change.OPENED
    assert sorted(script.incidents) == [1, 2]


def test_up_of_a_system_in_no_incident_changes_nothing() -> None:
    """UNKNOWN -> UP at start concerns no incident."""
    script = Script()
    first_up = Transition("payment", 10.0, Health.UNKNOWN, Health.UP, "status 200", 2)
    assert script.feed(first_up) is None
    assert script.incidents == {}
