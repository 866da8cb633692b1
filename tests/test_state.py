"""UP/DOWN thresholds, fed one result at a time like a script."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.model import Health, ProbeResult, SystemState
from monitor.probing.state import observe


def result(ok: bool, at: float, reason: str = "") -> ProbeResult:
    return ProbeResult("payment", ok, reason or ("status 200" if ok else "status 503"), at, 0.01)


def test_system_is_unknown_until_a_threshold_is_reached() -> None:
    """One failure below fail_after leaves a new system UNKNOWN, with the streak counted."""
    state, transition = observe(SystemState("payment"), result(False, 1.0), 3, 2)
    assert transition is None
    assert state.health is Health.UNKNOWN
    assert state.fail_streak == 1


def test_system_goes_down_after_fail_after_consecutive_failures() -> None:
    """The third failure in a row makes the system DOWN, with its time, reason and streak."""
    state = SystemState("payment", Health.UP, since=0.0)
    transitions = []
    for at in (10.0, 20.0, 30.0):
        state, transition = observe(state, result(False, at, "status 503, expected 200"), 3, 2)
        transitions.append(transition)
    assert transitions[:2] == [None, None]
    down = transitions[2]
    assert down is not None
    assert (down.previous, down.current, down.at, down.streak) == (Health.UP, Health.DOWN, 30.0, 3)
    assert down.reason == "status 503, expected 200"
    assert state.health is Health.DOWN
    assert state.since == 30.0


def test_a_pass_between_failures_resets_the_streak() -> None:
    """Fail, fail, pass, fail, fail never reaches fail_after=3."""
    state = SystemState("payment", Health.UP, since=0.0)
    for at, ok in enumerate([False, False, True, False, False]):
        state, transition = observe(state, result(ok, float(at)), 3, 2)
        assert transition is None
    assert state.health is Health.UP


def test_system_comes_back_up_after_recover_after_passes() -> None:
    """A DOWN system needs recover_after passes in a row to be UP again."""
    state = SystemState("payment", Health.DOWN, since=0.0, fail_streak=5)
    state, first = observe(state, result(True, 1.0), 3, 2)
    state, second = observe(state, result(True, 2.0), 3, 2)
    assert first is None
    assert second is not None
    assert (second.previous, second.current, second.streak) == (Health.DOWN, Health.UP, 2)


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5))
def test_nothing_goes_down_below_the_threshold(
    outcomes: list[bool], fail_after: int, recover_after: int
) -> None:
    """A system goes DOWN only at the end of fail_after consecutive failures, and UP only at
    the end of recover_after consecutive passes; transitions alternate."""
    state = SystemState("payment")
    run_ok: bool | None = None
    run = 0
    last = Health.UNKNOWN
    for at, ok in enumerate(outcomes):
        run = run + 1 if ok == run_ok else 1
        run_ok = ok
        state, transition = observe(state, result(ok, float(at)), fail_after, recover_after)
        if transition is not None:
            assert transition.previous is last
            assert transition.current is (Health.UP if ok else Health.DOWN)
            assert run >= (recover_after if ok else fail_after)
            last = transition.current
    assert state.health is last
