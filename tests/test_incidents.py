"""Correlation: which failures are one incident, and what caused it."""

from __future__ import annotations

from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.incidents.correlation import Change, Correlator, Incident
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


def cause_by_definition(incident: Incident) -> str:
    """The rule as written: most members depending on it, then first to fail, then by name."""
    correlator = Correlator(DEPENDS, WINDOW)
    names = incident.systems

    def rank(name: str) -> tuple[int, float, str]:
        dependents = sum(1 for other in names if other != name and correlator.depends(other, name))
        member = incident.member(name)
        assert member is not None
        return (-dependents, member.down_at, name)

    return min(names, key=rank)


def test_thousands_failing_together_are_one_incident_with_the_shared_dependency_as_cause() -> None:
    """5,000 systems, half of them depending on crm, go DOWN within a minute, crm last: one
    incident with all of them, crm its cause; then all come back and it resolves once."""
    depends = {f"app-{n}": (["crm"] if n % 2 else []) for n in range(5000)} | {"crm": []}
    correlator = Correlator(depends, WINDOW)
    ids = count(1)
    names = [*(f"app-{n}" for n in range(5000)), "crm"]
    failed = correlator.fold(
        [down(name, 1000.0 + n * 0.01) for n, name in enumerate(names)], [], lambda: next(ids)
    )
    assert [i.id for i in failed.incidents] == [1]
    assert len(failed.incidents[0].members) == 5001
    assert failed.incidents[0].cause == "crm"
    assert [s.change for s in failed.steps].count(Change.JOINED) == 5000

    back = correlator.fold(
        [up(name, 2000.0) for name in names], failed.incidents, count(2).__next__
    )
    changes = [s.change for s in back.steps]
    assert changes == [Change.RECOVERED] * 5000 + [Change.RESOLVED]
    assert back.incidents[0].resolved_at == 2000.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(DEPENDS)), st.booleans(), st.floats(0.0, 400.0, width=16)),
        max_size=30,
    )
)
def test_a_batch_does_what_its_transitions_do_one_at_a_time(
    script_steps: list[tuple[str, bool, float]],
) -> None:
    """Folding any sequence of transitions at once leaves the same incidents, changes and
    causes as feeding them one at a time, and each cause follows the rule as written."""
    transitions, at = [], 1000.0
    for system, failing, gap in script_steps:
        at += gap
        transitions.append(down(system, at) if failing else up(system, at))
    one_by_one = Script()
    changes = [one_by_one.feed(t) for t in transitions]

    batch = Script().correlator.fold(transitions, [], count(1).__next__)

    assert [s.change for s in batch.steps] == [c for c in changes if c is not None]
    assert {i.id: i for i in batch.incidents} == one_by_one.incidents
    assert all(i.cause == cause_by_definition(i) for i in batch.incidents)
