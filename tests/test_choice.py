"""The rules of who is told what, and when (monitor/notify/choice.py): one table row per rule,
and the promises that hold whatever happens in between."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.incidents.correlation import Incident, Member
from monitor.model import MessageKind, Reason
from monitor.notify.choice import (
    ACKNOWLEDGE,
    FAN_OUT,
    GREW,
    NOTE,
    PERIODIC,
    RESOLVED,
    Due,
    Message,
    NoMessage,
    Withheld,
    begin_telling,
    choose,
    due,
    goodwill_owed,
    note_is_sent,
    start_round,
    told_after,
)

LIMIT = 6  # max_messages_per_person_per_day
NOTIFY_AFTER = 60.0
UPDATE_EVERY = 3600.0
OPENED = 1000.0
PAYMENT = frozenset({"payment"})
BOTH = frozenset({"payment", "login"})


# Which message a person gets --------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A person at a fan-out, as ``choose`` sees them."""

    told: frozenset[str] | None = None
    affected: frozenset[str] = PAYMENT
    pending_round: str | None = None
    sent_today: int = 0
    resolved: bool = False

    def choice(self) -> Message | Withheld | NoMessage:
        return choose(
            self.resolved, self.pending_round, self.told, self.affected, self.sent_today, LIMIT
        )


PEOPLE = [
    pytest.param(Person(resolved=True, told=PAYMENT), RESOLVED, id="fix-told-to-the-acknowledged"),
    pytest.param(
        Person(resolved=True, told=PAYMENT, sent_today=LIMIT),
        RESOLVED,
        id="fix-told-whatever-the-days-count",
    ),
    pytest.param(
        Person(resolved=True, told=None),
        NoMessage.NEVER_ACKNOWLEDGED,
        id="no-fix-for-someone-never-acknowledged",
    ),
    pytest.param(Person(told=None), ACKNOWLEDGE, id="acknowledgement-first"),
    pytest.param(
        Person(told=None, pending_round="note"), ACKNOWLEDGE, id="acknowledgement-even-in-a-round"
    ),
    pytest.param(Person(told=PAYMENT, affected=BOTH), GREW, id="update-when-the-outage-grew"),
    pytest.param(
        Person(told=PAYMENT, affected=BOTH, pending_round="periodic"),
        GREW,
        id="update-for-growth-before-the-round",
    ),
    pytest.param(Person(told=PAYMENT, pending_round="note"), NOTE, id="update-for-a-note"),
    pytest.param(
        Person(told=PAYMENT, pending_round="periodic"), PERIODIC, id="update-for-a-periodic-round"
    ),
    pytest.param(
        Person(told=BOTH, affected=PAYMENT), NoMessage.TOLD_ALREADY, id="nothing-when-told-all"
    ),
    pytest.param(
        Person(told=None, sent_today=LIMIT),
        Withheld(MessageKind.ACKNOWLEDGE, Reason.FIRST),
        id="acknowledgement-withheld-at-the-daily-limit",
    ),
    pytest.param(
        Person(told=PAYMENT, affected=BOTH, sent_today=LIMIT + 1),
        Withheld(MessageKind.UPDATE, Reason.GREW),
        id="update-withheld-over-the-daily-limit",
    ),
    pytest.param(
        Person(told=None, sent_today=LIMIT - 1), ACKNOWLEDGE, id="last-message-of-the-day-goes"
    ),
    pytest.param(
        Person(told=PAYMENT, sent_today=LIMIT),
        NoMessage.TOLD_ALREADY,
        id="nothing-owed-is-not-counted-as-withheld",
    ),
]


@pytest.mark.parametrize(("person", "expected"), PEOPLE)
def test_each_rule_chooses_its_message(
    person: Person, expected: Message | Withheld | NoMessage
) -> None:
    """Each row is one rule of ``choose``: the person's situation gives that message, or none."""
    assert person.choice() == expected


# When an incident's people are told -------------------------------------------------------------


def incident(**changes: object) -> Incident:
    """Payment down since OPENED, telling started at OPENED + NOTIFY_AFTER, no round under way."""
    base = Incident(
        id=7,
        opened_at=OPENED,
        members=(Member("payment", OPENED),),
        cause="payment",
        notified_at=OPENED + NOTIFY_AFTER,
        last_update_at=OPENED + NOTIFY_AFTER,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


LATER = OPENED + NOTIFY_AFTER + 10  # after the first word, before update_every
FIXED = OPENED + 600

INCIDENTS = [
    pytest.param(
        incident(resolved_at=FIXED), LATER, False, Due.RESOLUTION, id="fix-owed-once-resolved"
    ),
    pytest.param(
        incident(resolved_at=FIXED + 900, resolution_told_at=FIXED),
        LATER,
        False,
        Due.RESOLUTION,
        id="fix-owed-again-after-a-reopening",
    ),
    pytest.param(
        incident(resolved_at=FIXED, resolution_told_at=FIXED),
        LATER,
        True,
        Due.FIX_TOLD,
        id="nothing-once-the-fix-is-told",
    ),
    pytest.param(
        incident(held=True, notified_at=None, last_update_at=None),
        LATER,
        True,
        Due.HELD,
        id="nobody-told-while-held",
    ),
    pytest.param(
        incident(held=True, pending_round="note"),
        LATER,
        True,
        Due.HELD,
        id="a-held-incidents-round-waits",
    ),
    pytest.param(
        incident(notified_at=None, last_update_at=None),
        OPENED + NOTIFY_AFTER - 1,
        True,
        Due.TOO_EARLY,
        id="nobody-told-before-notify-after",
    ),
    pytest.param(
        incident(notified_at=None, last_update_at=None),
        OPENED + NOTIFY_AFTER,
        False,
        Due.FIRST_WORD,
        id="telling-starts-at-notify-after",
    ),
    pytest.param(
        incident(pending_round="note"), LATER, False, Due.ROUND, id="a-started-round-goes-out"
    ),
    pytest.param(
        incident(pending_round="note"),
        OPENED + NOTIFY_AFTER + UPDATE_EVERY,
        False,
        Due.ROUND,
        id="no-periodic-round-while-one-is-under-way",
    ),
    pytest.param(
        incident(),
        OPENED + NOTIFY_AFTER + UPDATE_EVERY,
        False,
        Due.PERIODIC_ROUND,
        id="periodic-round-update-every-after-the-last",
    ),
    pytest.param(incident(), LATER, True, Due.NEWCOMERS, id="newcomers-looked-for-on-a-change"),
    pytest.param(incident(), LATER, False, Due.NOTHING_NEW, id="nothing-new-nobody-looked-at"),
]


@pytest.mark.parametrize(("situation", "now", "may_have_newcomers", "expected"), INCIDENTS)
def test_each_rule_says_what_an_incident_owes(
    situation: Incident, now: float, may_have_newcomers: bool, expected: Due
) -> None:
    """Each row is one rule of ``due``: the incident's state at ``now`` owes that, or nothing."""
    assert due(situation, now, NOTIFY_AFTER, UPDATE_EVERY, may_have_newcomers) is expected


def test_the_first_word_makes_everyone_looked_at_and_starts_the_update_clock() -> None:
    """Once telling begins, the incident asks for a look at its people, and the next periodic
    round is update_every from then."""
    start = OPENED + NOTIFY_AFTER
    begun = begin_telling(incident(notified_at=None, last_update_at=None), start)
    assert (begun.notified_at, begun.last_update_at) == (start, start)
    assert due(begun, start, NOTIFY_AFTER, UPDATE_EVERY, True) in FAN_OUT
    assert due(begun, start + UPDATE_EVERY - 1, NOTIFY_AFTER, UPDATE_EVERY, False) is not (
        Due.PERIODIC_ROUND
    )
    assert due(begun, start + UPDATE_EVERY, NOTIFY_AFTER, UPDATE_EVERY, False) is (
        Due.PERIODIC_ROUND
    )


def test_a_round_takes_a_new_update_number_and_resets_the_update_clock() -> None:
    """Starting a round records its reason, the next update number and now as the last update."""
    started = start_round(incident(update_seq=2), Reason.NOTE, LATER)
    assert (started.pending_round, started.update_seq, started.last_update_at) == (
        "note",
        3,
        LATER,
    )


@pytest.mark.parametrize(
    ("situation", "sent"),
    [
        pytest.param(incident(), True, id="sent-once-people-are-told"),
        pytest.param(
            incident(notified_at=None, last_update_at=None), False, id="kept-before-the-first-word"
        ),
        pytest.param(incident(resolved_at=FIXED), False, id="kept-after-the-fix"),
    ],
)
def test_a_note_goes_out_only_to_an_open_incident_whose_people_were_told(
    situation: Incident, sent: bool
) -> None:
    """On-call's note is sent as an update only while the incident is open and told."""
    assert note_is_sent(situation) is sent


# The promises, whatever happens in between ------------------------------------------------------

SYSTEMS = ["payment", "login", "crm"]
affected_sets = st.frozensets(st.sampled_from(SYSTEMS), min_size=1)
rounds = st.sampled_from([None, Reason.NOTE.value, Reason.PERIODIC.value])
fan_outs = st.lists(
    st.tuples(affected_sets, rounds, st.integers(0, LIMIT + 2)), min_size=0, max_size=12
)


def life_of_a_person(steps: list[tuple[frozenset[str], str | None, int]]) -> list[Message]:
    """The messages one person gets through fan-outs of an open incident, then its fix, with
    what they were told recorded after each message as the notifier records it."""
    told: frozenset[str] | None = None
    got: list[Message] = []
    for affected, pending_round, sent_today in steps:
        choice = choose(False, pending_round, told, affected, sent_today, LIMIT)
        if isinstance(choice, Message):
            got.append(choice)
            told = told_after(told, affected)
    fix = choose(True, None, told, told or frozenset(), 0, LIMIT)
    if isinstance(fix, Message):
        got.append(fix)
    return got


@given(fan_outs)
def test_nobody_gets_the_fix_without_an_acknowledgement(
    steps: list[tuple[frozenset[str], str | None, int]],
) -> None:
    """Whatever fan-outs came before, a "resolved" goes only to someone acknowledged first."""
    kinds = [m.kind for m in life_of_a_person(steps)]
    if MessageKind.RESOLVED in kinds:
        assert kinds[0] is MessageKind.ACKNOWLEDGE


@given(fan_outs)
def test_nobody_is_acknowledged_twice_and_the_acknowledgement_comes_first(
    steps: list[tuple[frozenset[str], str | None, int]],
) -> None:
    """A person hears one acknowledgement at most, before any update or fix, and one fix at the
    end at most."""
    kinds = [m.kind for m in life_of_a_person(steps)]
    assert kinds.count(MessageKind.ACKNOWLEDGE) <= 1
    if kinds:
        assert kinds[0] is MessageKind.ACKNOWLEDGE
    assert MessageKind.RESOLVED not in kinds[:-1]


@given(
    st.booleans(),
    rounds,
    st.one_of(st.none(), affected_sets),
    affected_sets,
    st.integers(0, LIMIT + 2),
)
def test_a_choice_is_a_constant_and_respects_the_daily_limit(
    resolved: bool,
    pending_round: str | None,
    told: frozenset[str] | None,
    affected: frozenset[str],
    sent_today: int,
) -> None:
    """``choose`` answers with the same object for the same facts (it builds nothing per
    person), never sends an acknowledgement or update past the daily limit, and never
    acknowledges someone already told."""
    choice = choose(resolved, pending_round, told, affected, sent_today, LIMIT)
    assert choice is choose(resolved, pending_round, told, affected, sent_today, LIMIT)
    if isinstance(choice, Message) and choice.kind is not MessageKind.RESOLVED:
        assert sent_today < LIMIT
    if told is not None:
        assert choice != ACKNOWLEDGE


# Goodwill ---------------------------------------------------------------------------------------

GOODWILL_AFTER = 1800.0  # inside UPDATE_EVERY: off the periodic rhythm


def test_an_update_round_starts_when_the_incident_reaches_goodwill_after() -> None:
    """With goodwill configured, the first tick at goodwill_after starts a periodic round (off
    update_every's rhythm); once it is the last update, none comes again until update_every
    after it; without goodwill nothing changes."""
    reached = OPENED + GOODWILL_AFTER
    args = (NOTIFY_AFTER, UPDATE_EVERY, False)
    assert due(incident(), reached - 1, *args, GOODWILL_AFTER) is Due.NOTHING_NEW
    assert due(incident(), reached, *args, GOODWILL_AFTER) is Due.PERIODIC_ROUND
    assert due(incident(), reached, *args, None) is Due.NOTHING_NEW
    after = start_round(incident(), Reason.PERIODIC, reached)
    assert due(replace(after, pending_round=None), reached + 1, *args, GOODWILL_AFTER) is (
        Due.NOTHING_NEW
    )
    assert due(
        replace(after, pending_round=None), reached + UPDATE_EVERY, *args, GOODWILL_AFTER
    ) is (Due.PERIODIC_ROUND)


def test_goodwill_goes_in_a_rounds_update_once_it_has_lasted_that_long_for_the_person() -> None:
    """A note's or a periodic update offers goodwill to someone affected goodwill_after ago;
    not to someone affected since later, not in an acknowledgement, not in an update for an
    outage that grew (a crash would renumber it), and never without goodwill configured."""
    now = OPENED + GOODWILL_AFTER
    assert goodwill_owed(PERIODIC, OPENED, now, GOODWILL_AFTER)
    assert goodwill_owed(NOTE, OPENED, now, GOODWILL_AFTER)
    assert not goodwill_owed(PERIODIC, OPENED + 1, now, GOODWILL_AFTER)
    assert not goodwill_owed(ACKNOWLEDGE, OPENED, now, GOODWILL_AFTER)
    assert not goodwill_owed(GREW, OPENED, now, GOODWILL_AFTER)
    assert not goodwill_owed(PERIODIC, OPENED, now, None)
