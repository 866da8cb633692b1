"""The shapes of the JSON API: request bodies (checked: strict, unknown fields refused) and
responses. ``monitor.web.openapi`` publishes its schemas from these same models, so the document
and the checks cannot drift apart; the command line reads answers with them too."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from monitor.model import Health
from monitor.people.rules import TRIMMED, KnownSystem, Strict, Subscriber, User

UNDELIVERABLE_LISTED = 100  # people an incident's detail names as not told; the count has all

# request bodies ------------------------------------------------------------------------------

_Body = Strict  # strict, and unknown fields refused: see monitor.people


class AttemptIn(_Body):
    """An app reports that ``user`` just failed to do ``action`` on ``system`` (one that a
    check file declares)."""

    system: KnownSystem
    user: User
    action: Annotated[str, Field(min_length=1, max_length=500, pattern=TRIMMED)]


class UsersIn(_Body):
    """Subscribers to add or replace, by id. A bare JSON list of subscribers is accepted too.
    Each needs an email, a phone or a webhook, and may only name systems a check file declares.
    """

    users: list[Subscriber] = Field(max_length=100_000)


class NoteIn(_Body):
    """On-call's public note on an incident; with ``send``, everyone told gets it as an update."""

    text: Annotated[str, Field(min_length=1, max_length=5000)]
    send: bool = False


class ExplanationIn(_Body):
    """On-call's explanation of an incident, as customers will read it: what happened, and what
    changes so it does not happen again. One text (see README, "The promise")."""

    text: Annotated[str, Field(max_length=20_000)]


# responses -----------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str | None
    error: str


class ErrorOut(BaseModel):
    """What went wrong; ``field`` names the part of the request at fault, when there is one."""

    error: str
    field: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class SystemOut(BaseModel):
    name: str
    title: str
    state: Health
    since: datetime | None = Field(description="When the current state began.")
    last_checked: datetime | None
    last_reason: str = Field(description="What the last probe found, for on-call.")
    depends_on: list[str]
    every: float = Field(description="Probe interval in seconds.")
    uptime_7d: float | None = Field(
        description="Share of the time since uptime_since spent UP, of the time UP or DOWN "
        "(0..1); null before the first decided state."
    )
    uptime_since: datetime | None = Field(
        description="Where uptime_7d starts: when the monitor first decided this system's "
        "state, or 7 days ago if that was earlier (then uptime_7d covers the whole 7 days); "
        "null with uptime_7d."
    )


class SystemList(BaseModel):
    systems: list[SystemOut]


class SystemRef(BaseModel):
    name: str
    title: str


class IncidentSystem(SystemRef):
    down_at: datetime
    up_at: datetime | None


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    text: str


class Counts(BaseModel):
    """Messages of this incident: ``acknowledged``, ``updated`` and ``resolved`` count those
    sent (one acknowledgement and one resolved message per person); ``undeliverable`` and
    ``pending`` count every kind. Explanations sent are ``messages.explanation.sent``."""

    acknowledged: int
    updated: int
    resolved: int
    undeliverable: int
    pending: int


class ExplanationOut(BaseModel):
    """On-call's explanation and the promise to give one."""

    text: str = Field(default="", description='What happened, and what changes; "" until given.')
    explained_at: datetime | None = Field(default=None, description="When it was last given.")
    final: bool = Field(
        default=False,
        description="Messages carrying it have been decided: it can no longer be replaced.",
    )
    promise: Literal["none", "open", "kept"] = Field(
        default="none",
        description="open: the resolved messages promised an explanation that has not yet "
        "been sent; kept: it has; none: no promise was made (the explanation came before the "
        "fix, or nobody was told).",
    )
    promised_at: datetime | None = Field(
        default=None, description="When the promise was made: open since then."
    )
    kept_at: datetime | None = Field(
        default=None, description="When every explanation message was decided."
    )
    reminded_at: datetime | None = Field(
        default=None, description="On-call's last reminder of the open promise."
    )


class IncidentOut(BaseModel):
    id: int
    status: Literal["open", "resolved"]
    opened_at: datetime
    resolved_at: datetime | None
    duration: float = Field(description="Seconds from opening to resolution, or to now.")
    cause: SystemRef
    systems: list[IncidentSystem]
    note: str
    held: bool = Field(description="Customer messages are held back until released.")
    notified_at: datetime | None = Field(description="When customers started to be told.")
    counts: Counts
    explanation: ExplanationOut = Field(default_factory=ExplanationOut)
    messages: dict[str, dict[str, int]] = Field(
        description="Outbox items by kind, then by status (pending, sent, undeliverable)."
    )


class Undeliverable(BaseModel):
    person: str = Field(description="The person's id.")
    kind: str
    error: str = Field(description="Why no channel could deliver it (each channel's last try).")


class IncidentDetail(IncidentOut):
    timeline: list[TimelineOut]
    undeliverable: list[Undeliverable] = Field(
        description=f"Who could not be told, and why: the first {UNDELIVERABLE_LISTED} by id "
        "(``counts.undeliverable`` has them all)."
    )


class IncidentList(BaseModel):
    incidents: list[IncidentOut]


class ReportSystem(IncidentSystem):
    down_for: float = Field(description="Seconds from down_at to up_at, or to made_at.")
    cause: bool = Field(description="Whether it is the incident's likely cause.")


class ReportPeople(BaseModel):
    affected: int = Field(
        description="Subscribers of the incident's systems and people who reported a failed "
        "attempt, each once, as the notifier counts them, when affected_counted says."
    )
    affected_unsubscribed: int = Field(
        description="Of those affected, the people who had unsubscribed: told nothing, or only "
        "of the failure they reported (subscriptions.unsubscribed)."
    )
    affected_counted: Literal["at the fix", "now"] = Field(
        description="When affected was counted: as the fix was told, or (open, or resolved "
        "before the monitor kept the count) as the report was made."
    )
    acknowledged: int = Field(description="People sent an acknowledgement.")
    undeliverable: int = Field(description="People with a message no channel could deliver.")


class ReportMessages(BaseModel):
    """The messages of one kind."""

    kind: str
    sent: dict[str, int] = Field(description="Sent, by the channel that delivered them.")
    pending: int
    undeliverable: int


class ReportFirstFailure(BaseModel):
    at: datetime
    system: str = Field(description="The system found DOWN then.")
    before_opening: bool = Field(
        description="True when that failure reached the incident after the one that opened "
        "it (another replica's, saved late): then it is earlier than opened_at."
    )


class ReportAcknowledgements(BaseModel):
    """Seconds from the first failure to each acknowledgement sent; null with none sent."""

    first_failure: ReportFirstFailure
    people: int = Field(description="People acknowledged.")
    first: float | None
    p50: float | None = Field(description="By the nearest rank.")
    p99: float | None = Field(description="By the nearest rank.")
    last: float | None


class ReportUndeliverable(BaseModel):
    person: str = Field(description="The person's id.")
    kinds: list[str] = Field(description="The kinds of message that could not reach them.")
    error: str = Field(description="Why the last of them could not be delivered.")


class ReportAlert(BaseModel):
    at: datetime = Field(description="When on-call was first alerted.")
    routes: list[str] = Field(description='The services alerted, such as "Slack".')


class ReportOut(BaseModel):
    """An incident's post-incident report (``?format=markdown`` or ``html`` words it)."""

    id: int
    status: Literal["open", "resolved"]
    opened_at: datetime
    resolved_at: datetime | None
    duration: float = Field(description="Seconds from opening to resolution, or to made_at.")
    made_at: datetime = Field(description="The moment the figures are of.")
    cause: SystemRef
    systems: list[ReportSystem]
    people: ReportPeople
    messages: list[ReportMessages]
    acknowledgements: ReportAcknowledgements
    undeliverable: list[ReportUndeliverable] = Field(
        description=f"Who could not be told, and why: the people of the first "
        f"{UNDELIVERABLE_LISTED} such messages, by id (people.undeliverable counts them all)."
    )
    oncall_alert: ReportAlert | None
    notes: list[TimelineOut] = Field(description="On-call's notes, as the timeline has them.")
    explanation: ExplanationOut
    promise: Literal["explained before the fix", "kept", "open", "none"] = Field(
        description="explained before the fix: the resolved messages carried it; kept: every "
        "explanation message was decided; open: owed since explanation.promised_at; none."
    )
    timeline: list[TimelineOut] = Field(
        description="The incident's timeline, with on-call's first alert (kind alerted) in its "
        "place."
    )


class AttemptAccepted(BaseModel):
    accepted: Literal[True]
    system: str
    open_incidents: list[int] = Field(
        description="Open incidents on this system: the person will be told about these."
    )


class UsersSaved(BaseModel):
    upserted: int = Field(description="How many people were added or replaced.")


class Reloaded(BaseModel):
    reloaded: Literal[True]


class ProblemOut(BaseModel):
    file: str
    line: int | None
    field: str
    message: str


class ReloadRefused(BaseModel):
    reloaded: Literal[False]
    error: str
    problems: list[ProblemOut]


class ConfigStatus(BaseModel):
    last_reload_successful: bool = Field(
        description="False when the last reload was refused: the previous configuration runs."
    )
    loaded_at: datetime = Field(description="When the running configuration was loaded.")
    refused_at: datetime | None = Field(description="When the last reload was refused, if it was.")
    problems: list[ProblemOut] = Field(description="Why the last reload was refused.")
    systems: int


class StoreStatus(BaseModel):
    writable: bool
    error: str | None = Field(description="Why it does not take writes, if it does not.")


class ReplicaOut(BaseModel):
    name: str
    started_at: datetime
    last_seen: datetime = Field(description="Its last heartbeat, on its own clock.")
    checks: int = Field(description="How many checks it probes.")
    outbox_shards: int = Field(
        description="How many of the outbox's 64 shards it sends from (a person's messages "
        "are all in one)."
    )
    leads: bool = Field(
        description="Whether it leads: folds failures into incidents, decides who is told."
    )
    this_one: bool = Field(description="Whether it is the replica answering this request.")


class ReplicaList(BaseModel):
    """The live replicas sharing the database (a monitor alone is one)."""

    takeover_seconds: float = Field(
        description="A replica not heard from for this long is dead; the others take over."
    )
    replicas: list[ReplicaOut]


class StatusOut(BaseModel):
    """The monitor's own health, for on-call: everything /readyz only summarises."""

    ready: bool = Field(description="As /readyz: false only while starting or stopping.")
    not_ready: str | None = Field(description="Why it is not ready, if it is not.")
    warnings: list[str] = Field(
        description="What is wrong that does not stop it working, one line each."
    )
    config: ConfigStatus
    store: StoreStatus
    channels: list[str] = Field(
        description="The channels configured (email, sms, webhook), best first; empty: "
        "customers cannot be told."
    )
