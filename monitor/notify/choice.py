"""Who is told what, and when: the rules of customer messages, as pure functions of plain values.

The notifier reads the facts (the incident, what each person was told, how many messages each
was sent in the last 24 hours), asks these functions, and commits what they choose to the
outbox; nothing here reads, writes or waits.

When an incident's people are told (``due``, once an incident and tick):

1. A resolved incident whose fix has not been told since it was (last) resolved: the fix is
   owed. Once told, a resolved incident owes nothing more.
2. An open incident that on-call holds tells nobody anything until it is released.
   Nor does one whose systems still down all failed inside a maintenance window that, with
   its grace, has not yet ended (``in_maintenance``; the rest of the rules then read the
   incident as customers are told of it, without its systems in maintenance: see
   ``monitor.maintenance.rules``).
3. An open incident younger than ``notify_after`` tells nobody yet: a blip that ends before
   then reaches no customer.
4. The first tick past ``notify_after`` starts the telling (``notified_at``), and everyone
   affected is looked at.
5. ``update_every`` after the last update, with no round under way, a periodic round starts:
   everyone told gets an update. So does the first tick past ``goodwill_after`` since the
   incident opened, when goodwill is configured and the last update came before that moment:
   goodwill is offered when it is due, not up to ``update_every`` later; the round is the last
   update, so the rhythm goes on from it and no second update comes at the same moment.
6. On-call's note, when sent, starts a note round, but only on an open incident whose people
   have been told (``note_is_sent``); otherwise it is only recorded.
7. A round started and not yet fanned out (a restart cut it off) goes out at the next tick.
8. Otherwise people are looked at only when someone may be newly affected (the incident opened,
   grew or re-opened, a person reported a failed attempt, on-call released it).

Which message a person gets now (``choose``, once a person looked at):

1. The incident is resolved: a person acknowledged hears it is fixed, whatever their count for
   the day; a person never acknowledged hears nothing (nobody gets "fixed" for an outage they
   were never told of).
2. Never told anything about this incident: an acknowledgement (the first word). It is the only
   way to be told at first, so nobody is acknowledged twice.
3. Told, but now affected by a system they were not told about: an update (the outage grew).
4. Told about everything that affects them, and a round under way: an update, for the round's
   reason (on-call's note, or periodic).
5. Otherwise nothing: they know everything already.
6. A message of rules 2-4 is withheld from a person already sent
   ``max_messages_per_person_per_day`` messages in the last 24 hours (any incident); nothing is
   recorded, so they are looked at again at the next fan-out. A withheld message still says
   which it was: an outage that grew takes a new update number even when the person it grew
   for is over the limit.

The promise to explain (``makes_promise``, ``explanation_due``, ``reminder_due``):

1. The resolved messages carry on-call's explanation when it was given before they were first
   decided; then no promise is made. Without one, they promise it, and the promise is open until
   every explanation message is decided.
2. An open promise whose explanation has been given, on an incident resolved and its fix told,
   is kept: everyone told about the incident (so acknowledged) gets one explanation message,
   whatever their count for the day (as for the fix).
3. On-call is reminded of an open promise without its explanation ``explain_within`` after it
   was made, then again each day while it is open.

``choose`` runs once per person of a fan-out (100,000 people in the benchmarks): it returns
constants made once, never a new object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from monitor.incidents.correlation import Incident
from monitor.model import Explanation, MessageKind, Reason


@dataclass(frozen=True, slots=True)
class Message:
    """A message to decide for a person: its kind and why it is sent."""

    kind: MessageKind
    reason: Reason


@dataclass(frozen=True, slots=True)
class Withheld:
    """A message owed to a person but not sent now: they had their messages for the day."""

    kind: MessageKind
    reason: Reason


class NoMessage(StrEnum):
    """Why a person is owed no message now."""

    TOLD_ALREADY = "told everything already"
    NEVER_ACKNOWLEDGED = "never acknowledged, so not told of the fix"


ACKNOWLEDGE = Message(MessageKind.ACKNOWLEDGE, Reason.FIRST)
GREW = Message(MessageKind.UPDATE, Reason.GREW)
NOTE = Message(MessageKind.UPDATE, Reason.NOTE)
PERIODIC = Message(MessageKind.UPDATE, Reason.PERIODIC)
RESOLVED = Message(MessageKind.RESOLVED, Reason.RESOLVED)
EXPLANATION = Message(MessageKind.EXPLANATION, Reason.EXPLANATION)
REMIND_EVERY = 86400.0  # after the first reminder of an open promise
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def key_part(person_id: str) -> str:
    """A person's id as the last part of an outbox key, which is also a Message-ID's left part:
    characters a Message-ID cannot carry are written as ``=XX``, so distinct ids stay distinct.
    Each decision's key is unique: that is what makes it once."""
    return _UNSAFE.sub(lambda m: "".join(f"={b:02X}" for b in m.group().encode()), person_id)


def _owed(message: Message) -> tuple[Message, Withheld]:
    """A message as sent, and as withheld by the daily limit."""
    return message, Withheld(message.kind, message.reason)


_ACKNOWLEDGE = _owed(ACKNOWLEDGE)
_GREW = _owed(GREW)
# A round's update by the reason the incident stores ("note", "periodic"): a lookup, where
# ``Reason(value)`` would be an enum call per person.
_ROUNDS = {reason.value: _owed(Message(MessageKind.UPDATE, reason)) for reason in Reason}


class Due(StrEnum):
    """What an incident owes its people at a tick."""

    RESOLUTION = "the fix is owed to everyone told"
    FIX_TOLD = "resolved, and the fix told"
    HELD = "on-call holds its customer messages"
    IN_MAINTENANCE = "every system of it still down failed inside a maintenance window"
    TOO_EARLY = "younger than notify_after"
    FIRST_WORD = "the telling starts"
    PERIODIC_ROUND = "update_every has passed since the last update: a periodic round starts"
    ROUND = "a round started and not yet fanned out goes out"
    NEWCOMERS = "someone may be newly affected"
    NOTHING_NEW = "nothing new"


# What of ``Due`` makes the notifier look through an open incident's people.
FAN_OUT = frozenset({Due.PERIODIC_ROUND, Due.ROUND, Due.NEWCOMERS})


def due(
    incident: Incident,
    now: float,
    notify_after: float,
    update_every: float,
    may_have_newcomers: bool,
    goodwill_after: float | None = None,
    in_maintenance: bool = False,
) -> Due:
    """What ``incident`` owes its people at ``now`` (the module's first list of rules).

    ``may_have_newcomers``: something since the last look may have made more people affected.
    ``goodwill_after``: when goodwill is configured, how long an incident lasts before it is
    offered (None: no goodwill). ``in_maintenance``: the systems of it still down all failed
    inside a maintenance window that has not yet ended (with its grace).
    """
    if not incident.is_open:
        told_at = incident.resolution_told_at
        if told_at is None or (incident.resolved_at is not None and told_at < incident.resolved_at):
            return Due.RESOLUTION
        return Due.FIX_TOLD
    if incident.held:
        return Due.HELD
    if in_maintenance:
        return Due.IN_MAINTENANCE
    if now - incident.opened_at < notify_after:
        return Due.TOO_EARLY
    if incident.notified_at is None:
        return Due.FIRST_WORD
    if incident.pending_round is not None:
        return Due.ROUND
    last = incident.last_update_at or incident.notified_at or now
    if now - last >= update_every:
        return Due.PERIODIC_ROUND
    if goodwill_after is not None and last < incident.opened_at + goodwill_after <= now:
        return Due.PERIODIC_ROUND
    return Due.NEWCOMERS if may_have_newcomers else Due.NOTHING_NEW


def note_is_sent(incident: Incident) -> bool:
    """Whether on-call's note, sent now, goes to people as an update (rule 6)."""
    return incident.is_open and incident.notified_at is not None


def choose(
    resolved: bool,
    pending_round: str | None,
    told: frozenset[str] | None,
    affected: frozenset[str],
    sent_today: int,
    daily_limit: int,
) -> Message | Withheld | NoMessage:
    """The message a person gets now (the module's second list of rules).

    ``pending_round``: the reason of the round under way (``Incident.pending_round``), if any.
    ``told``: the systems this person was told about in this incident; None if never told.
    ``affected``: the systems of this incident that affect them now.
    ``sent_today``: messages sent to them in the last 24 hours, of any incident (not read for
    a resolved incident).
    """
    if resolved:
        return RESOLVED if told is not None else NoMessage.NEVER_ACKNOWLEDGED
    if told is None:
        owed = _ACKNOWLEDGE
    elif not affected <= told:
        owed = _GREW
    elif pending_round is not None:
        owed = _ROUNDS[pending_round]
    else:
        return NoMessage.TOLD_ALREADY
    return owed[1] if sent_today >= daily_limit else owed[0]


def resolved_carries(explanation: Explanation) -> str:
    """The explanation the resolved messages carry (rule 1 of the promise): its text when it
    was settled into them, else "" (they promise it)."""
    return explanation.text if explanation.promised_at is None else ""


def explanation_due(incident: Incident, explanation: Explanation) -> bool:
    """Whether the explanation messages are owed now (rule 2 of the promise)."""
    return (
        explanation.promise_open
        and explanation.text != ""
        and not incident.is_open
        and incident.resolution_told_at is not None
        and incident.resolved_at is not None
        and incident.resolution_told_at >= incident.resolved_at
    )


def reminder_due(explanation: Explanation, now: float, explain_within: float) -> float | None:
    """When on-call's last reminder must have been for one to be due now (rule 3 of the
    promise), or None when none is: the moment is what makes two replicas take one reminder
    between them (``IncidentLog.take_reminder``)."""
    made = explanation.promised_at
    if not explanation.promise_open or explanation.text or made is None:
        return None
    if now - made < explain_within:
        return None
    last = explanation.reminded_at
    if last is not None and now - last < REMIND_EVERY:
        return None
    return now - REMIND_EVERY


def goodwill_owed(
    message: Message, affected_since: float, now: float, goodwill_after: float | None
) -> bool:
    """Whether ``message`` offers goodwill to a person affected since ``affected_since``
    (unless they were offered it already: the store keeps that, once per person): a round's
    update, once the incident has lasted ``goodwill_after`` for them. Not an update for an
    outage that grew: a crash re-runs it under a new number, and the offer, kept with the
    first number, would go with neither; a round keeps its number."""
    return (
        goodwill_after is not None
        and message.kind is MessageKind.UPDATE
        and message.reason is not Reason.GREW
        and now - affected_since >= goodwill_after
    )


def told_after(told: frozenset[str] | None, affected: frozenset[str]) -> frozenset[str]:
    """What a person has been told about once a message for ``affected`` is decided."""
    return affected | told if told else affected


# The incident's record as the rules move it ---------------------------------------------------


def begin_telling(incident: Incident, now: float) -> Incident:
    """The incident once its telling starts (rule 4): the last update is now."""
    return replace(incident, notified_at=now, last_update_at=now)


def start_round(incident: Incident, reason: Reason, now: float) -> Incident:
    """The incident with a round under way: a new update number, the last update now."""
    return replace(
        incident,
        pending_round=reason.value,
        update_seq=incident.update_seq + 1,
        last_update_at=now,
    )
