"""Who an incident affects. Pure: incidents, people and attempts in, recipients out.

The rules:

- A subscriber of any system in the incident is affected, for the systems of theirs in it.
- A person whom an app reported as having failed on a system in the incident is affected, for
  that system, if the attempt came at most ``lookback`` before the incident opened, or while it
  is open. Subscriber or not, their attempted actions reach the message.
- One person is one id: someone who is both a subscriber and reported is one recipient.
- Someone who unsubscribed has no subscriptions left; known from attempts, they are left out
  (``excluded``) unless monitor.yaml's ``subscriptions.unsubscribed`` is ``affected_only``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence

from monitor.incidents.correlation import Incident
from monitor.model import Attempt, Person, Recipient, SystemInfo


def attempts_window(incident: Incident, lookback: float) -> float:
    """The earliest time an attempt may have been reported and still count for ``incident``."""
    return incident.opened_at - lookback


def attempts_span(incident: Incident, lookback: float) -> tuple[float, float]:
    """From when to when an attempt counts for ``incident`` (``People.audience_count``'s
    moments): from ``attempts_window`` to its fix, or for good while it is open."""
    until = incident.resolved_at if incident.resolved_at is not None else float("inf")
    return attempts_window(incident, lookback), until


class Audience:
    """Everyone ``incident`` affects, each once, as the subscribers come in pages: first each
    page of subscribers (``subscribed``), then the people known only from attempts
    (``reported_only``), once every page has been through.

    ``attempts`` may include attempts on other systems or from other times; only those that
    count are used. ``attempt_people`` looks up the people the attempts name.
    """

    def __init__(
        self,
        incident: Incident,
        systems: Mapping[str, SystemInfo],
        attempts: Sequence[Attempt],
        attempt_people: Mapping[str, Person],
        lookback: float,
        excluded: Collection[str] = (),
    ) -> None:
        self._members = {m.name: m for m in incident.members}
        self._systems = systems
        self._attempt_people = attempt_people
        earliest = attempts_window(incident, lookback)
        latest = incident.resolved_at if incident.resolved_at is not None else float("inf")
        self._by_person: dict[str, list[Attempt]] = defaultdict(list)
        for attempt in attempts:
            if attempt.person_id in excluded:
                continue
            if attempt.system in self._members and earliest <= attempt.at <= latest:
                self._by_person[attempt.person_id].append(attempt)
        # Only subscribers who made attempts are remembered: the set of all of them would be
        # 100,000 ids held through a fan-out.
        self._subscribed_attempters: set[str] = set()

    def subscribed(self, subscribers: Iterable[Person]) -> Iterator[Recipient]:
        """The recipients among ``subscribers`` (in the order given), who hold each person
        once over all the pages, as ``Store.subscriber_pages`` gives them."""
        for person in subscribers:
            own = self._by_person.get(person.id, ())
            if own:
                self._subscribed_attempters.add(person.id)
            found = self._recipient(person, own)
            if found is not None:
                yield found

    def reported_only(self) -> Iterator[Recipient]:
        """The people an app reported who were not among the subscribers, by id."""
        for person_id in sorted(self._by_person.keys() - self._subscribed_attempters):
            person = self._attempt_people.get(person_id, Person(id=person_id))
            found = self._recipient(person, self._by_person[person_id])
            if found is not None:
                yield found

    def _recipient(self, person: Person, own: Sequence[Attempt]) -> Recipient | None:
        members = self._members
        names = {s for s in person.systems if s in members} | {a.system for a in own}
        if not names:
            return None
        ordered = sorted(names, key=lambda n: (members[n].down_at, n))
        return Recipient(
            person=person,
            affected=tuple(_info(self._systems, n) for n in ordered),
            attempts=tuple(own),
            affected_since=min(members[n].down_at for n in ordered),
        )


def _info(systems: Mapping[str, SystemInfo], name: str) -> SystemInfo:
    return systems.get(name, SystemInfo(name=name, title=name))
