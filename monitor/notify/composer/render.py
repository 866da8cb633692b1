"""The composer: which template a message uses, what the template sees, and the message.

This is the path of every message of a fan-out (rendering is about a third of its CPU; see
benchmarks/README.md): work done once per composer happens in ``__init__``, and what one pass
writes into every message (the incident, the moments) is worded once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from pathlib import Path

from monitor.config import Org, Problem
from monitor.durations import format_duration
from monitor.model import IncidentView, MessageKind, Reason, Recipient, RenderedMessage, SystemInfo
from monitor.notify.composer.blocks import REQUIRED_BLOCKS, BlockRenderer
from monitor.notify.composer.check import validate
from monitor.notify.composer.errors import TemplateError
from monitor.notify.composer.facts import (
    AttemptFacts,
    IncidentFacts,
    UserFacts,
    org_facts,
    say_when,
    system_facts,
    within,
)
from monitor.notify.composer.message import finish
from monitor.notify.composer.templates import read_templates
from monitor.text import one_line


class Composer:
    """Renders customer messages from the templates in ``messages_dir`` (read once, here)."""

    def __init__(
        self,
        messages_dir: Path,
        org: Org,
        systems: Mapping[str, SystemInfo],
        *,
        update_every: float = 86400.0,
        timezone: tzinfo = UTC,
    ) -> None:
        self._templates = read_templates(Path(messages_dir))
        self._sources = self._templates.sources
        self._org = org_facts(org)
        self._org_name = org.name
        self._systems = dict(systems)
        self._tz = timezone
        self._next_update = within(update_every)
        self._said_when: dict[tuple[float, float], str] = {}
        self._last_incident: tuple[IncidentView, float, IncidentFacts] | None = None
        self._blocks = BlockRenderer(self._templates)
        # Bound once: each message calls it.
        self._render_blocks = self._blocks.render

    def template_for(self, kind: MessageKind, recipient: Recipient, incident: IncidentView) -> str:
        """The template used, relative to ``messages_dir``: the cause's override, else one for
        the recipient's affected systems (by name), else the default."""
        owners = [incident.cause.name, *sorted(info.name for info in recipient.affected)]
        for owner in owners:
            name = f"{owner}/{kind.value}.j2"
            if name in self._sources:
                return name
        return f"{kind.value}.j2"

    def render(
        self,
        kind: MessageKind,
        reason: Reason,
        recipient: Recipient,
        incident: IncidentView,
        now: float,
    ) -> RenderedMessage:
        """Render the message; raise TemplateError naming the file, line and block if it fails."""
        name = self.template_for(kind, recipient, incident)
        errors: list[TemplateError] = []
        blocks = self._render_blocks(
            name, self.context(kind, reason, recipient, incident, now), errors
        )
        if errors:
            raise errors[0]
        message = finish(blocks.rendered, self._org_name)
        for block in REQUIRED_BLOCKS:
            if not getattr(message, block):
                raise TemplateError(*self._blocks.where(blocks, block), "it is empty")
        return message

    def validate(self) -> list[Problem]:
        """Every problem with the templates, each with file, line and block (``field``).

        Renders every message template (defaults and per-system overrides) against sample data:
        with each system as the cause and as affected, for each reason its kind is sent for, to
        a named person who tried something and to a nameless subscriber; and reads each for
        every undefined name.
        """
        return validate(self._templates, self._blocks, self.context, self._systems)

    def context(
        self,
        kind: MessageKind,
        reason: Reason,
        recipient: Recipient,
        incident: IncidentView,
        now: float,
    ) -> dict[str, object]:
        """What templates see: ``user``, ``incident``, ``org``, ``kind``, ``reason``,
        ``next_update``. Every value is a str, None, a tuple or a frozen record of those."""
        end = incident.resolved_at if incident.resolved_at is not None else now
        affected = recipient.affected or incident.systems
        attempts = sorted(recipient.attempts, key=lambda attempt: attempt.at)
        person = recipient.person
        systems = tuple(system_facts(info) for info in affected)
        # A name or an action is one line, whatever was stored: a line break in one would
        # otherwise start a line of its own in the text ("Bcc: x@evil.example").
        user = UserFacts(
            id=person.id,
            name=one_line(person.name),
            first_name=one_line(person.first_name),
            email=person.email or "",
            phone=person.phone or "",
            attempts=tuple(
                AttemptFacts(
                    a.system,
                    self._title(a.system, incident),
                    one_line(a.action),
                    self._when(a.at, now),
                )
                for a in attempts
            ),
            actions=tuple(dict.fromkeys(filter(None, (one_line(a.action) for a in attempts)))),
            systems=systems,
            workarounds=tuple(system for system in systems if system.workaround),
            affected_since=self._when(recipient.affected_since, now),
            affected_for=format_duration(end - recipient.affected_since),
        )
        return {
            "user": user,
            "incident": self._incident_facts(incident, now),
            "org": self._org,
            "kind": kind.value,
            "reason": reason.value,
            "next_update": self._next_update,
        }

    def _incident_facts(self, incident: IncidentView, now: float) -> IncidentFacts:
        # A fan-out renders every message of a pass with the same incident and moment.
        if self._last_incident is not None and self._last_incident[:2] == (incident, now):
            return self._last_incident[2]
        end = incident.resolved_at if incident.resolved_at is not None else now
        facts = IncidentFacts(
            id=incident.id,
            started_at=self._when(incident.started_at, now),
            resolved_at=None
            if incident.resolved_at is None
            else self._when(incident.resolved_at, now),
            duration=format_duration(end - incident.started_at),
            cause=system_facts(incident.cause),
            systems=tuple(system_facts(info) for info in incident.systems),
            note=incident.note.strip(),
            status=incident.status,
        )
        self._last_incident = (incident, now, facts)
        return facts

    def _title(self, system: str, incident: IncidentView) -> str:
        for info in (*incident.systems, incident.cause):
            if info.name == system:
                return info.title
        known = self._systems.get(system)
        return known.title if known else system

    def _when(self, at: float, now: float) -> str:
        """``14:05 UTC today``, ``09:30 UTC yesterday``, ``14:05 UTC on Monday 3 March``."""
        # A fan-out writes the same few moments into every message. What ``now`` adds is its
        # date, the same all through one UTC minute (time zones are whole minutes apart).
        key = (at, now // 60)
        said = self._said_when.get(key)
        if said is None:
            if len(self._said_when) >= 1024:
                self._said_when.clear()
            said = self._said_when[key] = say_when(at, now, self._tz)
        return said
