"""The store's interface: what the monitor needs remembered, as a few small roles.

Every method is a coroutine (or, for what is read a page at a time, an async iterator): on a
database server each call is a round trip, and none may hold the event loop meanwhile. What
every backend guarantees (docs/store.md): each method has committed before it returns; an
outbox key is unique by the database's own constraint; incident ids come from the database,
never reused; a database that cannot answer raises ``StoreUnavailable``.

Each part of the monitor may ask for only the roles it uses; the wiring holds a ``Store``,
which is all of them. ``SQLiteStore`` (``monitor.store.sqlite``) is the embedded backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Protocol

from monitor.incidents.correlation import Incident
from monitor.model import (
    Attempt,
    Explanation,
    Health,
    Person,
    ProbeResult,
    SystemState,
    Transition,
)
from monitor.store.types import (
    AffectedCount,
    Alert,
    MessageTally,
    NoticeRecord,
    OutboxItem,
    ReplicaRecord,
    StoredWindow,
    TimelineEntry,
)

# The kinds of timeline entry customers may see: on-call's notes and explanation, kept with the
# incident for the status page's history. The others carry probe results, counts of people and
# on-call's holds: they go with the incident's messages.
PUBLIC_TIMELINE = ("note", "explanation")


class StateLog(Protocol):
    """What the probes found: each system's state (health and streaks, so a restart carries
    on), its transitions (the uptime and the status page's history read them), the probe
    results, and the pruning of all three."""

    async def load_states(self) -> dict[str, SystemState]: ...
    async def states_changed(self, since: int | None) -> tuple[dict[str, SystemState], int | None]:
        """The states written since the read that gave the mark ``since`` (every state when
        it is None), and the mark for the next read. A backend that cannot tell gives every
        state and None. A state may come again in the next read; none written is missed."""

    async def save_transition(self, transition: Transition, state: SystemState) -> None: ...
    async def save_transitions(
        self, saved: Sequence[tuple[Transition, SystemState]], holder: str | None = None
    ) -> None:
        """Each transition with its system's state after it, in one commit. The transitions
        are saved unapplied: ``unapplied_transitions`` gives them to the notifier (of any
        process on the database) until ``IncidentLog.save_incidents`` marks them applied.
        With ``holder`` (a replica's name), only those of the systems it holds now: a replica
        that took a system over carries on from the state it saved, never written over."""

    async def unapplied_transitions(self, limit: int) -> list[tuple[int, Transition]]:
        """Up to ``limit`` transitions not yet applied to the incidents, whoever saved them,
        with their ids, oldest first by (at, id)."""

    async def save_states(self, states: Iterable[SystemState], holder: str | None = None) -> None:
        """Each state, in one commit; with ``holder``, as ``save_transitions`` does."""

    async def record_results(self, results: Sequence[ProbeResult]) -> None: ...
    async def recent_results(self, system: str, limit: int = 100) -> list[ProbeResult]: ...
    async def transitions(
        self, system: str | None = None, limit: int = 100
    ) -> list[Transition]: ...
    async def health_history(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]:
        """Each system's health from ``since`` on (to ``until``, when given), ``[(at, health),
        ...]`` in time order: first ``(since, health then)`` when a transition before ``since``
        says it, then every transition after (up to ``until``). Systems with no transitions
        are absent."""

    async def health_changes(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]:
        """Each system's transitions after ``since`` (up to ``until``), ``[(at, health), ...]``
        in time order: ``health_history`` without the health at ``since``, read off an index of
        their times (the status page's history knows how each system was then)."""

    async def prune_results(self, older_than: float, keep_per_system: int) -> int:
        """Delete results older than ``older_than`` and all but each system's newest
        ``keep_per_system``, all at once; how many went."""

    async def prune_aged(self, older_than: float, batch: int = 5000) -> int:
        """Delete up to ``batch`` results older than ``older_than``; how many went."""

    async def result_systems(self) -> list[str]: ...
    async def prune_systems(self, systems: Sequence[str], keep: int) -> int:
        """Keep the newest ``keep`` results of each of ``systems``: a quick delete, so a
        caller can prune thousands of systems a batch at a time, yielding between them."""

    async def transition_systems(self) -> list[str]: ...
    async def prune_transitions(self, systems: Sequence[str], older_than: float) -> int:
        """Delete each of ``systems``' transitions older than ``older_than`` but the newest of them,
        which says what its health was at that moment. An unapplied one is never deleted."""


class IncidentLog(Protocol):
    """The incidents: their ids, their state as the notifier leaves it, their timeline, their
    explanation and the promise to give one, and the pruning of resolved ones."""

    async def new_incident_id(self) -> int:
        """Reserve the next incident id in the database itself, so that two processes never
        take the same one; an id is never handed out twice, even after its incident is pruned
        (it is in every Message-ID sent about it)."""

    async def save_incident(self, incident: Incident) -> None: ...
    async def save_incidents(
        self,
        incidents: Sequence[Incident],
        timeline: Sequence[tuple[int, TimelineEntry]],
        applied: Sequence[int] = (),
    ) -> None:
        """The incidents and timeline entries (by incident id) a batch of transitions made,
        and those transitions (``applied``, their ids) marked applied, in one commit: a crash
        leaves the batch applied with its incident changes, or neither."""

    async def incident(self, incident_id: int) -> Incident | None: ...
    async def incidents(
        self,
        open_only: bool = False,
        resolved_since: float | None = None,
        opened_before: float | None = None,
    ) -> list[Incident]:
        """By id; all, the open ones, or the open ones and those resolved since a moment; with
        ``opened_before``, only those opened before another (those of a day, say)."""

    async def latest_incidents(
        self, limit: int, status: str | None = None, before: int | None = None
    ) -> list[Incident]:
        """The newest ``limit``, newest first; ``status`` "open" or "resolved" filters, and
        ``before`` keeps those with a lower id (the next page of the status page's history)."""

    async def open_incident_count(self) -> int: ...
    async def add_timeline(self, incident_id: int, at: float, kind: str, text: str) -> None: ...
    async def timeline(self, incident_id: int) -> list[TimelineEntry]: ...
    async def public_timeline(self, incident_id: int) -> list[TimelineEntry]:
        """The entries of the incident's timeline customers may see (``PUBLIC_TIMELINE``:
        on-call's notes and explanation), in order. They stay as long as the incident does;
        the others go with its messages (``prune_private``)."""

    async def explanation(self, incident_id: int) -> Explanation | None:
        """The incident's explanation and promise; None when it has neither."""

    async def explain(self, incident_id: int, text: str, now: float) -> Explanation:
        """Set the incident's explanation to ``text``, replacing one given before, unless
        messages carrying it have been decided: then ``ExplanationFinal``, and nothing changes
        (one statement: of a replacement and a fan-out starting together, one wins)."""

    async def settle_for_resolution(self, incident_id: int, now: float) -> Explanation:
        """As the resolved messages are decided: an explanation given before any promise is
        final from now, the messages carrying it; without one a promise is made (kept if made
        before: a re-run after a crash, or a flap resolving again, promises nothing new)."""

    async def start_explaining(self, incident_id: int, now: float) -> Explanation:
        """As the explanation messages are decided: the text is final from now (once)."""

    async def keep_promise(self, incident_id: int, now: float) -> None:
        """Every explanation message is decided: the promise is kept."""

    async def open_promises(self) -> list[Explanation]:
        """The promises made and not yet kept, by incident id."""

    async def take_reminder(self, incident_id: int, now: float, last_before: float) -> bool:
        """Record a reminder of the incident's open promise at ``now``, only if the last one
        was at or before ``last_before`` (or none was): whether this caller took it. Of two
        replicas taking one at once, one does."""

    async def record_alert(self, incident_id: int, at: float, routes: Sequence[str]) -> None:
        """On-call was alerted of the incident at ``at`` by ``routes``; only the first alert
        is kept (a re-opened incident was alerted when it first opened)."""

    async def alert(self, incident_id: int) -> Alert | None:
        """When and how on-call was first alerted of the incident; None when never."""

    async def record_audience(self, incident_id: int, audience: AffectedCount) -> None:
        """Keep how many people the incident affected, counted as its fix is told (a later
        count would use later subscriptions); the last one recorded is kept."""

    async def audience(self, incident_id: int) -> AffectedCount | None:
        """What ``record_audience`` kept; None when nothing was (still open, say)."""

    async def private_prunable_incidents(
        self, resolved_before: float, limit: int = 100
    ) -> list[int]:
        """Incidents resolved, and their resolution decided, before ``resolved_before``, with
        no message still pending, that still keep their private part: oldest first."""

    async def prune_private(
        self, incident_id: int, resolved_before: float, batch: int = 2000
    ) -> int:
        """Delete up to ``batch`` rows of the private part of an incident resolved before
        ``resolved_before`` (its settled messages, what each person was told, on-call's alert,
        the goodwill offered, a promise with no explanation given, the timeline entries
        customers may not see), then mark it pruned (1 row); 0 once it is. What customers may
        see stays (the incident, ``public_timeline``, the explanation) until
        ``prune_incident``. A pending message is never deleted, and while one is left nothing
        else of its incident is. (A promise still open goes: its customers can no longer be
        told, and on-call was reminded daily until then.)"""

    async def prunable_incidents(self, resolved_before: float, limit: int = 100) -> list[int]:
        """Incidents resolved, and their resolution decided, before ``resolved_before``, with
        no message still pending: oldest first."""

    async def prune_incident(
        self, incident_id: int, resolved_before: float, batch: int = 2000
    ) -> int:
        """Delete up to ``batch`` rows of a prunable incident (its settled messages, what each
        person was told, its timeline, then itself); 0 once it is gone. A pending message is
        never deleted, and while one is left nothing else of its incident is."""


class People(Protocol):
    """Who may be told: people with their contacts and subscriptions, the attempts apps
    report, and who an incident's systems reach."""

    async def upsert_people(self, people: Iterable[Person]) -> int:
        """Add or replace each person with their subscriptions, all in one commit; how many."""

    async def person(self, person_id: str) -> Person | None: ...
    async def people_by_ids(self, ids: Sequence[str]) -> dict[str, Person]:
        """The people of ``ids`` that exist, by id."""

    def subscriber_pages(self, systems: Iterable[str]) -> AsyncIterator[list[Person]]:
        """Subscribers of any of ``systems``, each once, by id, a page at a time: each page is
        read whole, so the caller may write between pages."""

    async def audience_count(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int:
        """How many people ``subscriber_pages`` gives, together with those who reported an
        attempt on one of ``systems`` between the two moments, each person once."""

    async def add_attempt(self, attempt: Attempt, person: Person) -> None:
        """Remember an attempt; a person not known yet is kept, with no subscriptions, and a
        known one's missing contact details are filled in from ``person``."""

    async def attempts(self, systems: Iterable[str], since: float) -> list[Attempt]: ...
    async def attempt_count(self, systems: Iterable[str], since: float) -> int:
        """How many attempts ``attempts`` would give: the notifier asks at each tick whether
        any came in (to whichever process on the database) for an open incident."""

    async def prune_attempts(self, older_than: float) -> int:
        """Forget attempts older than ``older_than``: they can no longer count."""


class Outbox(Protocol):
    """Decisions to send, committed before anything is sent: what each person has been told
    about each incident, the messages with their outcomes, and the counts read from them."""

    async def told_about(
        self, incident_id: int, person_ids: Sequence[str]
    ) -> dict[str, frozenset[str]]:
        """The systems each of ``person_ids`` was told of for the incident; nothing for the
        rest."""

    def told_pages(
        self, incident_id: int, size: int = 1000
    ) -> AsyncIterator[dict[str, frozenset[str]]]:
        """What each person was told about the incident, ``size`` people at a time by id; each
        page is read whole, so the caller may write between pages."""

    async def decide(
        self, items: Sequence[OutboxItem], told: Mapping[str, frozenset[str]], incident_id: int
    ) -> int:
        """Commit decisions and what each person has now been told, in one transaction; how
        many items were new (an item whose key exists already is left as it is: the key's
        uniqueness is the database's to enforce)."""

    async def offer_goodwill(self, incident_id: int, offers: Mapping[str, str]) -> dict[str, str]:
        """Record goodwill offered to each person of ``offers`` in the message of the outbox
        key given, unless one was recorded for them already; the key each of them now has
        goodwill in (a person missing from the answer: not this time). Once per person and
        incident, by the database's own key."""

    async def due(
        self, now: float, limit: int, shards: Collection[int] | None = None
    ) -> list[OutboxItem]:
        """Pending messages due by ``now``, oldest due first, but none while an earlier message
        of the same person about the same incident is still pending; of the given ``shards``
        only (``types.outbox_shard``: a replica's), or of all of them."""

    async def update_item(self, item: OutboxItem) -> None: ...
    async def update_items(self, items: Sequence[OutboxItem]) -> None:
        """Record the outcomes of several sends in one commit: all of them, or (raising
        ``StoreUnavailable``) none. A settled message (sent, undeliverable) is final: its
        text, html and sms are dropped, and it is never changed again."""

    async def message_counts(self, person_ids: Sequence[str], since: float) -> dict[str, int]:
        """How many messages each of ``person_ids`` was sent, or is about to be, since
        ``since``; people with none are left out."""

    async def outbox_counts(self, incident_id: int | None = None) -> dict[str, dict[str, int]]:
        """``{kind: {status: count}}``, for one incident or all."""

    async def outbox_items(self, incident_id: int) -> list[OutboxItem]: ...
    async def undeliverable(self, incident_id: int, limit: int) -> list[tuple[str, str, str]]:
        """``(person_id, kind, why)`` of the incident's messages nobody could deliver, by
        person, at most ``limit``."""

    async def message_tally(self, incident_id: int) -> MessageTally:
        """The incident's messages counted by kind, status and channel, the people who could
        not be told, and when each acknowledgement was sent: counted by the database, a part
        at a time where a call would otherwise hold the event loop (100,000 people's
        messages)."""

    async def pending_count(self) -> int: ...


class Housekeeping(Protocol):
    """The store itself: whether it takes writes, keeping its storage in order, closing."""

    async def check_writable(self) -> None:
        """Raise ``StoreUnavailable`` unless a write commits now."""

    async def maintain(self) -> Mapping[str, int]:
        """Tidy the storage after a prune has deleted rows, as this backend needs (SQLite gives
        free pages back to the filesystem and empties its write-ahead log; a server that
        vacuums by itself may do nothing), yielding to the event loop between steps. Returns
        what it did, for the log line of the prune."""

    async def close(self) -> None: ...


class Replicas(Protocol):
    """The replicas sharing the database: each says it is alive (its heartbeat, on its own
    clock), which checks its files declare, which checks it probes (one replica a check, the
    database's to enforce) and which one leads. A replica is dead to the others once it has not
    been seen since the moment they pass as ``alive_since``."""

    async def beat(
        self,
        replica: str,
        started_at: float,
        now: float,
        digest: str,
        systems: Sequence[str],
        host: str = "",
        pid: int = 0,
    ) -> None:
        """``replica`` (process ``pid`` on ``host``) is alive at ``now``, declaring the checks
        ``systems`` (named by ``digest``: they are written only when it changes)."""

    async def live_replicas(self, alive_since: float) -> list[ReplicaRecord]:
        """The replicas seen since ``alive_since``, by name."""

    async def declared_checks(self, replica: str) -> list[str]:
        """The checks ``replica`` declared at its last beat ([] for one not known)."""

    async def held_checks(self, replica: str) -> set[str]:
        """The checks ``replica`` holds now (taken, or handed to it)."""

    async def take_checks(
        self, replica: str, systems: Collection[str], now: float, alive_since: float
    ) -> set[str]:
        """Take each of ``systems`` that nobody holds, that ``replica`` holds already, or that
        a replica not seen since ``alive_since`` holds, in one commit; the ones taken (of two
        replicas taking one check at once, one gets it)."""

    async def hand_over_checks(
        self, replica: str, to: Mapping[str, str | None], now: float
    ) -> None:
        """Give each check ``replica`` still holds to the replica ``to`` names (None: to
        nobody, for whoever takes it)."""

    async def lead(self, replica: str, now: float, until: float) -> str | None:
        """Take the lead, or keep it, until ``until``, unless another replica holds it past
        ``now``; the leader after (None: nobody, as after ``leave``)."""

    async def leave(self, replica: str) -> None:
        """``replica`` stops: its lead ends, the checks it still holds are free, and it is no
        longer listed."""

    async def replica_overview(self, alive_since: float) -> list[ReplicaRecord]:
        """The live replicas (as ``live_replicas``) with how many checks each holds and which
        one leads: ``GET /api/v1/replicas``."""


class Maintenance(Protocol):
    """Planned work: the windows posted to the API (every replica reads them), and the
    occurrences of windows whose customers are being or were told, each under an id its
    messages are kept under (the outbox's and told's ``incident_id`` is minus it: see
    ``Outbox.decide``, ``told_pages``), so exactly-once holds for them as for incidents."""

    async def add_maintenance_window(self, spec: str, now: float) -> StoredWindow:
        """Keep a window (its settings as JSON) under a new id, never handed out again."""

    async def maintenance_windows(self) -> list[StoredWindow]:
        """Every window posted to the API and not removed, by id."""

    async def remove_maintenance_window(self, window_id: int) -> bool:
        """Forget a window; whether there was one of that id."""

    async def begin_maintenance_notice(
        self, ref: str, systems: Sequence[str], starts_at: float, ends_at: float
    ) -> NoticeRecord:
        """The record of the occurrence ``ref``, made now unless there is one (of two replicas
        making it at once, one does, and both get it)."""

    async def maintenance_notices(self) -> list[NoticeRecord]:
        """The occurrences not yet told as over, by id (an index holds only them)."""

    async def mark_maintenance_notice(
        self,
        notice_id: int,
        *,
        announced_at: float | None = None,
        over_at: float | None = None,
        cancelled_at: float | None = None,
    ) -> None:
        """Every notice of the occurrence is decided (``announced_at``), telling it cancelled
        began (``cancelled_at``), or it is told as over (``over_at``: done with); a moment
        recorded before stays."""

    async def prunable_maintenance_notices(self, over_before: float, limit: int = 100) -> list[int]:
        """Occurrences told as over before ``over_before`` with no message still pending."""

    async def prune_maintenance_notice(
        self, notice_id: int, over_before: float, batch: int = 2000
    ) -> int:
        """Delete up to ``batch`` rows of an occurrence told as over before ``over_before``
        (its settled messages, what each person was told, then its record); 0 once it is gone.
        A pending message is never deleted, and while one is left nothing else of it is."""


class Subscriptions(Protocol):
    """Self-service subscriptions: who cancelled (kept by id and by address, so no import
    subscribes them again unasked), a confirmed subscription, and the subscribe requests
    counted per address and per client IP (every replica shares the limits)."""

    async def unsubscribe(self, person_id: str, email: str | None, now: float) -> None:
        """The person cancels: kept as unsubscribed (with every person of the same address,
        lower case), their subscriptions dropped, in one commit."""

    async def unsubscribed_attempters(
        self, systems: Iterable[str], attempts_from: float, until: float
    ) -> int:
        """How many of the people who reported an attempt on one of ``systems`` between the
        two moments have unsubscribed (``People.audience_count`` counts them too)."""

    async def unsubscribed_among(self, person_ids: Sequence[str]) -> set[str]:
        """Those of ``person_ids`` who cancelled."""

    async def people_with_email(self, email: str) -> list[Person]:
        """The people of this address (lower case), by id."""

    async def subscribe(self, person: Person) -> None:
        """A confirmed subscription: the person kept with their systems (added or replaced)
        and no longer unsubscribed, by id or by their address, in one commit."""

    async def claim_request(
        self, keys: Sequence[str], now: float, limits: Sequence[tuple[float, int]]
    ) -> bool:
        """Count a subscribe request under each of ``keys`` unless one of them already has its
        limit (``limits[i]``: at most that many claims in the last that many seconds); whether
        it was counted. Claims older than every window are pruned on the way. Of two replicas
        claiming the last one at once, one gets it."""

    async def prune_subscription_mails(self, before: float, batch: int = 2000) -> int:
        """Delete up to ``batch`` settled confirmation mails (the outbox's ``incident_id`` 0)
        decided before ``before``; how many."""


class Store(
    StateLog,
    IncidentLog,
    People,
    Outbox,
    Replicas,
    Maintenance,
    Subscriptions,
    Housekeeping,
    Protocol,
):
    """All of it: what the wiring (``monitor.app``) holds and hands each part."""
