"""The composer: which template a message uses, what the template sees, and the message.

This is the path of every message of a fan-out (rendering is about a third of its CPU; see
benchmarks/README.md): work done once per composer happens in ``__init__``, and what one pass
writes into every message (the incident, the moments) is worded once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.config import MonitorSettings, Org, Problem
from monitor.locales import check_language, same_language
from monitor.maintenance import NoticeKind, Occurrence
from monitor.model import IncidentView, MessageKind, Reason, Recipient, RenderedMessage, SystemInfo
from monitor.notify.composer.blocks import REQUIRED_BLOCKS, BlockRenderer
from monitor.notify.composer.check import NO_CONFIRM_LINK, validate
from monitor.notify.composer.errors import TemplateError
from monitor.notify.composer.facts import (
    NO_RESPONSE,
    AttemptFacts,
    IncidentFacts,
    MaintenanceFacts,
    Response,
    SubscriptionFacts,
    UserFacts,
    org_facts,
    system_facts,
)
from monitor.notify.composer.goodwill import goodwill_by_language, goodwill_problems
from monitor.notify.composer.message import finish
from monitor.notify.composer.templates import (
    SubscriptionKind,
    language_folders,
    read_templates,
)
from monitor.notify.composer.wording import Speaker
from monitor.text import one_line, unknown_name


class Composer:
    """Renders customer messages from the templates in ``messages_dir`` (read once, here)."""

    def __init__(
        self,
        messages_dir: Path,
        org: Org,
        systems: Mapping[str, SystemInfo],
        *,
        update_every: float = 86400.0,
        default_timezone: str = "UTC",
        default_language: str = "en",
        goodwill: Mapping[str, str] | None = None,
        manage_link: Callable[[str], str] | None = None,
    ) -> None:
        self._templates = read_templates(Path(messages_dir))
        # A person's id -> their link to manage or cancel what they hear (None: no links:
        # no public_url or MONITOR_LINK_SECRET); signed per person, so one call a message.
        self.manage_link = manage_link
        self._sources = self._templates.sources
        self._org = org_facts(org)
        self._org_name = org.name
        self._systems = dict(systems)
        self._update_every = update_every
        self._default_zone = default_timezone
        self._default_language = default_language
        # messages/<language>/: each such folder's language; a system's name wins.
        self._languages = language_folders(self._sources, self._systems)
        self._language_of = {
            name: self._languages.get(name.split("/", 1)[0], default_language)
            for name in self._sources
        }
        # Per person's (language, zone) and template language: one lookup a message.
        self._speakers: dict[tuple[str | None, str | None, str], Speaker] = {}
        self._speaker_by_wording: dict[tuple[str, str, bool], Speaker] = {}
        self._folders: dict[str | None, tuple[str, ...]] = {}
        # What we offer for a long outage: a system's own text, else the "default" one.
        self._goodwill_texts = dict(goodwill or {})
        self._goodwill, self._goodwill_by_language = goodwill_by_language(
            goodwill or {}, self._systems
        )
        self._last_incident: tuple[IncidentView, Response, float] | None = None
        self._incident_by_speaker: dict[Speaker, IncidentFacts] = {}
        self._last_planned: tuple[str, float] | None = None
        self._planned_by_speaker: dict[Speaker, MaintenanceFacts] = {}
        self._blocks = BlockRenderer(self._templates)
        # Bound once: each message calls it.
        self._render_blocks = self._blocks.render

    @classmethod
    def from_settings(
        cls,
        messages_dir: Path,
        settings: MonitorSettings,
        systems: Mapping[str, SystemInfo],
        manage_link: Callable[[str], str] | None = None,
    ) -> Composer:
        """The composer monitor.yaml's settings ask for: its org, update_every and the default
        time zone and language."""
        return cls(
            messages_dir,
            settings.org,
            systems,
            update_every=settings.update_every,
            default_timezone=settings.default_timezone,
            default_language=settings.default_language,
            goodwill=settings.goodwill,
            manage_link=manage_link,
        )

    def template_for(self, kind: MessageKind, recipient: Recipient, incident: IncidentView) -> str:
        """The template used, relative to ``messages_dir``: the cause's override, else one for
        the recipient's affected systems (by name), else the default; each in the person's
        language (``de/payment/acknowledge.j2``) before the default language's."""
        owners = [incident.cause.name, *sorted(info.name for info in recipient.affected)]
        return self._template(kind.value, owners, recipient.person.language)

    def planned_template_for(self, kind: NoticeKind, recipient: Recipient) -> str:
        """The template of a message about planned work: one for the recipient's systems of it
        (by name), else the default; each in the person's language first."""
        owners = sorted(info.name for info in recipient.affected)
        return self._template(kind.value, owners, recipient.person.language)

    def confirmation_template_for(self, language: str | None) -> str:
        """The template of the confirmation of a subscription: the one of ``language``'s
        folder, else the default language's (no system has one of its own)."""
        return self._template(SubscriptionKind.CONFIRM.value, (), language)

    def language_for(self, preferred: Sequence[str]) -> str | None:
        """The first of ``preferred`` (a visitor's languages, best first, as their browser's
        Accept-Language lists them) that there are templates for, as a person's language is
        matched (its own folder, its language's, or the default language's templates at the
        top); else None: the default language, as for a person without one (who follows a
        later change of ``default_language``). A tag Babel does not know is passed over."""
        written = set(self._languages.values())
        for tag in preferred:
            try:
                found = check_language(tag)
            except ValueError:
                continue
            if (
                same_language(found, self._default_language)
                or found in written
                or found.split("-", 1)[0] in written
            ):
                return found
        return None

    def _template(self, kind: str, owners: Sequence[str], language: str | None) -> str:
        folders = self._folders.get(language)
        if folders is None:
            folders = self._folders_for(language)
        for owner in owners:
            for folder in folders:
                name = f"{folder}{owner}/{kind}.j2"
                if name in self._sources:
                    return name
        for folder in folders:
            name = f"{folder}{kind}.j2"
            if name in self._sources:
                return name
        return f"{kind}.j2"

    def _folders_for(self, language: str | None) -> tuple[str, ...]:
        """Where a person's templates are looked for, best first: their language's folder
        (``de-AT/``), its language's (``de/``), the top level (the default language's). A
        person without a language reads the default language."""
        own = language or self._default_language
        wanted = [own, own.split("-", 1)[0]]
        by_tag = {tag: folder for folder, tag in self._languages.items()}
        found = [f"{by_tag[tag]}/" for tag in dict.fromkeys(wanted) if tag in by_tag]
        folders = self._folders[language] = (*found, "")
        return folders

    def render(
        self,
        kind: MessageKind,
        reason: Reason,
        recipient: Recipient,
        incident: IncidentView,
        now: float,
        *,
        response: Response = NO_RESPONSE,
        goodwill: bool = False,
    ) -> RenderedMessage:
        """Render the message; raise TemplateError naming the file, line and block if it fails.
        ``response`` is what the team is doing; with ``goodwill``, the message offers it."""
        name = self.template_for(kind, recipient, incident)
        errors: list[TemplateError] = []
        data = self.context(
            kind,
            reason,
            recipient,
            incident,
            now,
            template=name,
            response=response,
            goodwill=self.goodwill_for(recipient, incident, name) if goodwill else "",
        )
        return self._message(name, data, errors)

    def render_planned(
        self, kind: NoticeKind, recipient: Recipient, occurrence: Occurrence, now: float
    ) -> RenderedMessage:
        """The notice of planned work, or the note that it is over, to ``recipient`` (their
        systems of it as ``affected``); raise TemplateError as ``render`` does."""
        name = self.planned_template_for(kind, recipient)
        errors: list[TemplateError] = []
        data = self.planned_context(kind, recipient, occurrence, now, template=name)
        return self._message(name, data, errors)

    def render_confirmation(
        self, systems: Sequence[str], confirm_url: str, within: float, language: str | None
    ) -> RenderedMessage:
        """The confirmation of a request to subscribe to ``systems`` (by name), with the link
        that confirms it, working for ``within`` seconds, in ``language`` (``language_for``);
        an email only (no sms). Raises TemplateError as ``render`` does, and when the text
        does not show the link."""
        name = self.confirmation_template_for(language)
        data = self.subscription_context(systems, confirm_url, within, language, template=name)
        message = self._message(name, data, [], shows=confirm_url)
        return replace(message, sms="")

    def _message(
        self, name: str, data: Mapping[str, object], errors: list[TemplateError], shows: str = ""
    ) -> RenderedMessage:
        blocks = self._render_blocks(name, data, errors)
        if errors:
            raise errors[0]
        message = finish(blocks.rendered, self._org_name)
        for block in REQUIRED_BLOCKS:
            if not getattr(message, block):
                raise TemplateError(*self._blocks.where(blocks, block), "it is empty")
        if shows and shows not in message.text:
            raise TemplateError(*self._blocks.where(blocks, "text"), NO_CONFIRM_LINK)
        return message

    def validate(self) -> list[Problem]:
        """Every problem with the templates, each with file, line and block (``field``).

        Renders every message template (defaults and per-system overrides) against sample data:
        with each system as the cause and as affected, for each reason its kind is sent for, to
        a named person who tried something and to a nameless subscriber; and reads each for
        every undefined name.
        """
        problems = validate(
            self._templates,
            self._blocks,
            self.context,
            self._systems,
            self.planned_context,
            self.subscription_context,
        )
        languages = set(self._languages.values())
        for key, wrong, known in goodwill_problems(
            self._goodwill_texts, self._systems, languages, self._default_language
        ):
            message = (
                unknown_name("system", wrong, known)
                if wrong
                else f"there is no messages/{key.split('/', 1)[0]}/ folder, so no message is "
                f"written in that language: add its templates or leave this text out"
            )
            problems.append(Problem("monitor.yaml", None, f"goodwill.{key}", message))
        return problems

    def goodwill_for(
        self, recipient: Recipient, incident: IncidentView, template: str | None = None
    ) -> str:
        """What ``recipient`` is offered for a long outage of ``incident``, in the language of
        its update's ``template`` (by default the one ``template_for`` picks): that language's
        text for the first of their affected systems with one (``de/payment``), else that
        language's (``de``), else the first such system's (``payment``), else the default;
        "" when none is configured."""
        if not self._goodwill:
            return ""
        if template is None:
            template = self.template_for(MessageKind.UPDATE, recipient, incident)
        language = self._language_of.get(template, self._default_language)
        owners = [*(info.name for info in recipient.affected), "default"]
        for texts in (self._goodwill_by_language.get(language, {}), self._goodwill):
            for owner in owners:
                if texts.get(owner):
                    return texts[owner]
        return ""

    def context(
        self,
        kind: MessageKind,
        reason: Reason,
        recipient: Recipient,
        incident: IncidentView,
        now: float,
        *,
        template: str | None = None,
        response: Response = NO_RESPONSE,
        goodwill: str = "",
    ) -> dict[str, object]:
        """What templates see: ``user``, ``incident``, ``org``, ``kind``, ``reason``,
        ``next_update``, ``language`` (the template's: ``de``), ``manage_url`` and
        ``unsubscribe_url`` (the person's own link, "" without links). Every value is a str, None, a
        tuple or a frozen record of those.

        Times and durations are in the person's zone, in the language of ``template`` (by
        default the one ``template_for`` picks). ``response`` is what the team is doing;
        ``goodwill`` the text this message offers ("" when it offers none)."""
        if template is None:
            template = self.template_for(kind, recipient, incident)
        person = recipient.person
        speaker = self._speakers.get((person.language, person.timezone, template))
        if speaker is None:
            speaker = self._speaker(person.language, person.timezone, template)
        when = speaker.when
        end = incident.resolved_at if incident.resolved_at is not None else now
        affected = recipient.affected or incident.systems
        attempts = sorted(recipient.attempts, key=lambda attempt: attempt.at)
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
                    when(a.at, now),
                )
                for a in attempts
            ),
            actions=tuple(dict.fromkeys(filter(None, (one_line(a.action) for a in attempts)))),
            systems=systems,
            workarounds=tuple(system for system in systems if system.workaround),
            affected_since=when(recipient.affected_since, now),
            affected_for=speaker.duration(end - recipient.affected_since),
            goodwill=goodwill,
        )
        link = self.manage_link(person.id) if self.manage_link else ""
        return {
            "user": user,
            "manage_url": link,
            "unsubscribe_url": link,
            "incident": self._incident_facts(incident, response, now, speaker),
            "org": self._org,
            "kind": kind.value,
            "reason": reason.value,
            "next_update": speaker.next_update,
            "language": self._language_of.get(template, self._default_language),
        }

    def planned_context(
        self,
        kind: NoticeKind,
        recipient: Recipient,
        occurrence: Occurrence,
        now: float,
        *,
        template: str | None = None,
    ) -> dict[str, object]:
        """What the messages about planned work see: ``user`` (their systems of it; no
        attempts), ``maintenance``, ``org``, ``kind``, ``language``; worded as ``context``
        words an incident's."""
        if template is None:
            template = self.planned_template_for(kind, recipient)
        person = recipient.person
        speaker = self._speakers.get((person.language, person.timezone, template))
        if speaker is None:
            speaker = self._speaker(person.language, person.timezone, template)
        systems = tuple(system_facts(info) for info in recipient.affected)
        start, end = occurrence.start, occurrence.end
        user = UserFacts(
            id=person.id,
            name=one_line(person.name),
            first_name=one_line(person.first_name),
            email=person.email or "",
            phone=person.phone or "",
            attempts=(),
            actions=(),
            systems=systems,
            workarounds=tuple(system for system in systems if system.workaround),
            affected_since=speaker.when(start, now),
            affected_for=speaker.duration(end - start),
            goodwill="",
        )
        link = self.manage_link(person.id) if self.manage_link else ""
        return {
            "user": user,
            "manage_url": link,
            "unsubscribe_url": link,
            "maintenance": self._planned_facts(occurrence, now, speaker),
            "org": self._org,
            "kind": kind.value,
            "language": self._language_of.get(template, self._default_language),
        }

    def subscription_context(
        self,
        systems: Sequence[str],
        confirm_url: str,
        within: float,
        language: str | None = None,
        *,
        template: str | None = None,
    ) -> dict[str, object]:
        """What the confirmation of a subscription sees: ``subscription`` (the systems asked
        for, the confirm link, how long it works, in the template's language), ``org``,
        ``kind``, ``language``; ``manage_url`` and ``unsubscribe_url`` are "" (nobody is
        subscribed yet)."""
        if template is None:
            template = self.confirmation_template_for(language)
        speaker = self._speaker(language, None, template)
        subscription = SubscriptionFacts(
            systems=tuple(
                system_facts(self._systems.get(name) or SystemInfo(name, name)) for name in systems
            ),
            confirm_url=confirm_url,
            confirm_within=speaker.period(within),
        )
        return {
            "subscription": subscription,
            "manage_url": "",
            "unsubscribe_url": "",
            "org": self._org,
            "kind": SubscriptionKind.CONFIRM.value,
            "language": self._language_of.get(template, self._default_language),
        }

    def _planned_facts(
        self, occurrence: Occurrence, now: float, speaker: Speaker
    ) -> MaintenanceFacts:
        # A fan-out of notices words the same occurrence at the same moment for every person,
        # in a few zones and languages.
        if self._last_planned != (occurrence.ref, now):
            self._last_planned = (occurrence.ref, now)
            self._planned_by_speaker = {}
        facts = self._planned_by_speaker.get(speaker)
        if facts is None:
            start, end = occurrence.start, occurrence.end
            facts = MaintenanceFacts(
                id=occurrence.ref,
                note=occurrence.window.note,
                systems=tuple(
                    system_facts(self._systems.get(name) or SystemInfo(name, name))
                    for name in occurrence.systems
                ),
                when=speaker.span(start, end, now),
                starts_at=speaker.when(start, now),
                ends_at=speaker.when(end, now),
                duration=speaker.duration(end - start),
            )
            self._planned_by_speaker[speaker] = facts
        return facts

    def _speaker(self, language: str | None, zone: str | None, template: str) -> Speaker:
        """Who words the times of ``template`` for a person of ``language`` in ``zone``: in
        the template's language (the person's own variant of it: en-GB's clock for an en-GB
        reader of English templates), at the clock of their zone, else the default's."""
        written_in = self._language_of.get(template, self._default_language)
        wording = language if language and same_language(language, written_in) else written_in
        # Without a zone of their own, a time in UTC says so: it is not their clock.
        say_zone = zone is None and self._default_zone == "UTC"
        key = (wording, zone or self._default_zone, say_zone)
        speaker = self._speaker_by_wording.get(key)
        if speaker is None:
            speaker = Speaker(
                wording, ZoneInfo(key[1]), say_zone=say_zone, update_every=self._update_every
            )
            self._speaker_by_wording[key] = speaker
        self._speakers[(language, zone, template)] = speaker
        return speaker

    def _incident_facts(
        self, incident: IncidentView, response: Response, now: float, speaker: Speaker
    ) -> IncidentFacts:
        # A fan-out renders every message of a pass with the same incident and moment, for
        # people in a few zones and languages.
        if self._last_incident != (incident, response, now):
            self._last_incident = (incident, response, now)
            self._incident_by_speaker = {}
        facts = self._incident_by_speaker.get(speaker)
        if facts is not None:
            return facts
        end = incident.resolved_at if incident.resolved_at is not None else now
        facts = IncidentFacts(
            id=incident.id,
            started_at=speaker.when(incident.started_at, now),
            resolved_at=None
            if incident.resolved_at is None
            else speaker.when(incident.resolved_at, now),
            duration=speaker.duration(end - incident.started_at),
            cause=system_facts(incident.cause),
            systems=tuple(system_facts(info) for info in incident.systems),
            note=incident.note.strip(),
            status=incident.status,
            explanation=incident.explanation.strip(),
            alerted_at=""
            if response.alerted_at is None
            else speaker.when(response.alerted_at, now),
            alerted_by=speaker.routes(response.alerted_by),
            doing=response.doing.strip(),
        )
        self._incident_by_speaker[speaker] = facts
        return facts

    def _title(self, system: str, incident: IncidentView) -> str:
        for info in (*incident.systems, incident.cause):
            if info.name == system:
                return info.title
        known = self._systems.get(system)
        return known.title if known else system
