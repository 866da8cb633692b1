"""Customer messages: the Jinja templates in messages/, rendered in a sandbox one block at a time.

``messages/<kind>.j2`` is the default for each kind; ``messages/<system>/<kind>.j2`` overrides it
when that system is the incident's cause (or, failing that, one of the recipient's affected
systems). Each template has the blocks ``subject`` and ``text``, and optionally ``html`` and
``sms``. Files whose name starts with ``_`` are shared parts, never a message kind.

The composer reads every template once, when it is built: a ``Composer`` is a snapshot, so a
running monitor keeps its last good templates until a new one passes ``validate()``.

Templates render in ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: reaching Python
internals (``{{ ''.__class__ }}``) or an unknown name is an error, never a silent blank. Only
the ``html`` block is autoescaped. Customer data is data: it is printed once, never rendered
again as a template.

This is the only module that imports jinja2.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import groupby
from pathlib import Path
from typing import Any, Literal, get_type_hints

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from monitor.config import Org, Problem
from monitor.durations import format_duration
from monitor.model import (
    Attempt,
    IncidentView,
    MessageKind,
    Person,
    Reason,
    Recipient,
    RenderedMessage,
    SystemInfo,
)
from monitor.text import one_line

MAX_SMS = 320
REQUIRED_BLOCKS = ("subject", "text")
CONTEXT_NAMES = ("user", "incident", "org", "kind", "reason", "next_update")
REASONS: Mapping[MessageKind, tuple[Reason, ...]] = {
    MessageKind.ACKNOWLEDGE: (Reason.FIRST,),
    MessageKind.UPDATE: (Reason.GREW, Reason.NOTE, Reason.PERIODIC),
    MessageKind.RESOLVED: (Reason.RESOLVED,),
}
"""The reasons each kind of message is sent for; ``validate()`` renders each kind with each."""

_MAX_SEQUENCE = 100_000  # longest string or list a template may build with ``*``
_MAX_EXPONENT = 1_000


class TemplateError(Exception):
    """A template could not be rendered: which file, line and block, and what went wrong."""

    def __init__(self, file: str, line: int | None, block: str, message: str) -> None:
        self.file = file
        self.line = line
        self.block = block
        self.message = message
        super().__init__(str(self.problem()))

    def problem(self) -> Problem:
        return Problem(self.file, self.line, self.block, self.message)


# What templates see. Plain frozen records: no methods worth calling, nothing mutable, and the
# sandbox refuses every ``_`` attribute, so no path leads to Python internals.


@dataclass(frozen=True, slots=True)
class SystemFacts:
    """A system as a message names it; printing one prints its title."""

    name: str
    title: str
    workaround: str

    def __str__(self) -> str:
        return self.title


@dataclass(frozen=True, slots=True)
class AttemptFacts:
    """Something the person tried and could not do. ``at`` is a formatted time."""

    system: str
    system_title: str
    action: str
    at: str


@dataclass(frozen=True, slots=True)
class UserFacts:
    """The person a message is for. ``systems`` are theirs that are affected, ``workarounds``
    those of them with a workaround; ``actions`` are the distinct things they tried, oldest
    first; ``affected_for`` is a human duration."""

    id: str
    name: str
    first_name: str
    email: str
    phone: str
    attempts: tuple[AttemptFacts, ...]
    actions: tuple[str, ...]
    systems: tuple[SystemFacts, ...]
    workarounds: tuple[SystemFacts, ...]
    affected_since: str
    affected_for: str


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """The incident. Times are formatted; ``resolved_at`` is None while it is open."""

    id: str
    started_at: str
    resolved_at: str | None
    duration: str
    cause: SystemFacts
    systems: tuple[SystemFacts, ...]
    note: str
    status: str


@dataclass(frozen=True, slots=True)
class OrgFacts:
    """Who is writing. ``contact`` is how to reach them, ready for a sentence: "call 0800 123 456
    or email help@example.com" ("" when neither is configured)."""

    name: str
    support_phone: str
    support_email: str
    contact: str


_RECORD_FIELDS: Mapping[type, frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls))
    for cls in (SystemFacts, AttemptFacts, UserFacts, IncidentFacts, OrgFacts)
}
_FIELD_TYPES: Mapping[type, Mapping[str, object]] = {
    cls: get_type_hints(cls) for cls in _RECORD_FIELDS
}

_LABELS: Mapping[str, tuple[str, type]] = {
    cls.__name__: (label, cls)
    for label, cls in (
        ("user", UserFacts),
        ("incident", IncidentFacts),
        ("a system", SystemFacts),
        ("an attempt", AttemptFacts),
        ("org", OrgFacts),
    )
}


# Sample data for `monitor validate` and `monitor preview`.


@dataclass(frozen=True, slots=True)
class Sample:
    """Everything ``Composer.render`` needs for one realistic message."""

    kind: MessageKind
    reason: Reason
    recipient: Recipient
    incident: IncidentView
    now: float


SamplePerson = Literal["alice", "subscriber"]
SAMPLE_PEOPLE: tuple[SamplePerson, ...] = ("alice", "subscriber")
_SAMPLE_START = datetime(2025, 3, 4, 14, 3, tzinfo=UTC).timestamp()  # a Tuesday afternoon
_SAMPLE_NOW: Mapping[Reason, float] = {
    Reason.FIRST: _SAMPLE_START + 4 * 60,
    Reason.GREW: _SAMPLE_START + 27 * 60,
    Reason.NOTE: _SAMPLE_START + 37 * 60,
    Reason.PERIODIC: _SAMPLE_START + 86400 + 7 * 60,
    Reason.RESOLVED: _SAMPLE_START + 82 * 60,
}
_SAMPLE_NOTE = {
    "open": "An update we made this afternoon did not apply properly; we are rolling it back.",
    "resolved": (
        "An update we made this afternoon did not apply properly. We rolled it back, and from "
        "now on every update is tried on a test copy before it goes live."
    ),
}
_SAMPLE_SYSTEMS = {
    "payment": SystemInfo(
        "payment", "Online payments", "Pay by phone on 0800 123 456 and we will process it by hand."
    )
}
# Between them the two people cover a note and no note for every reason but NOTE (which has one).
_NOTE_FOR: Mapping[SamplePerson, frozenset[Reason]] = {
    "alice": frozenset({Reason.NOTE, Reason.RESOLVED}),
    "subscriber": frozenset({Reason.FIRST, Reason.GREW, Reason.NOTE}),
}
# What people do on the usual kinds of system, found in its name or title; any other system's
# sample person tried to use it, so a CRM's acknowledgement does not speak of a payment.
_SAMPLE_ACTIONS = (
    (re.compile(r"\b(pay|checkout|billing|card)", re.IGNORECASE), "make a payment"),
    (
        re.compile(r"\b(log ?in|sign(ing)? ?(in|on)|sso|auth(entication)?\b)", re.IGNORECASE),
        "sign in",
    ),
)


def sample_action(system: SystemInfo) -> str:
    """What the sample person tried to do on ``system``: ``make a payment`` or ``sign in`` when
    its name or title says it is for that, else ``use`` and its title as a sentence says it
    (``use your order history``; a first word such as ``CRM`` keeps its capitals)."""
    for pattern, action in _SAMPLE_ACTIONS:
        if pattern.search(f"{system.name} {system.title}"):
            return action
    title = one_line(system.title) or system.name
    first = title.split(" ", 1)[0]
    if first[1:].islower():
        title = title[0].lower() + title[1:]
    return f"use {title}"


def sample_context(
    systems: Mapping[str, SystemInfo],
    system: str,
    kind: MessageKind = MessageKind.ACKNOWLEDGE,
    reason: Reason | None = None,
    *,
    as_cause: bool = True,
    person: SamplePerson = "alice",
) -> Sample:
    """A realistic message about ``system``: it is the incident's cause, or (``as_cause=False``)
    affected by another system's failure.

    ``person="alice"`` is Alice Martin, who just failed to do what ``system`` is for (see
    ``sample_action``; and, when the problem grew, is affected by every system of the incident);
    ``"subscriber"`` has no name and no attempts and follows every system of the incident.
    ``reason`` defaults to the kind's usual one (an update defaults to on-call's note).
    """
    known = dict(systems) or dict(_SAMPLE_SYSTEMS)
    if reason is None:
        reason = Reason.NOTE if kind is MessageKind.UPDATE else REASONS[kind][0]
    focus = known.get(system) or SystemInfo(system, system)
    others = [info for name, info in sorted(known.items()) if name != system]
    other = others[0] if others else SystemInfo("database", "Our database")
    cause = focus if as_cause else other
    involved = (focus, other) if as_cause else (other, focus)

    now = _SAMPLE_NOW[reason]
    resolved = reason is Reason.RESOLVED
    status = "resolved" if resolved else "open"
    incident = IncidentView(
        id="42",
        started_at=_SAMPLE_START,
        resolved_at=now if resolved else None,
        cause=cause,
        systems=involved,
        note=_SAMPLE_NOTE[status] if reason in _NOTE_FOR[person] else "",
        status=status,
    )
    if person == "alice":
        alice = Person(
            id="u-1042",
            name="Alice Martin",
            email="alice.martin@example.com",
            phone="+44 7700 900123",
        )
        tried = Attempt(focus.name, alice.id, sample_action(focus), _SAMPLE_START + 120)
        grown = involved if reason is Reason.GREW else (focus,)
        recipient = Recipient(alice, grown, (tried,), tried.at)
    else:
        names = tuple(info.name for info in involved)
        subscriber = Person(id="u-2208", name="", email="orders@northwind.example", systems=names)
        recipient = Recipient(subscriber, involved, (), _SAMPLE_START)
    return Sample(kind, reason, recipient, incident, now)


# The composer.


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
        self._dir = Path(messages_dir)
        ways = [f"call {org.support_phone}"] if org.support_phone else []
        ways += [f"email {org.support_email}"] if org.support_email else []
        self._org = OrgFacts(
            org.name, org.support_phone or "", org.support_email or "", " or ".join(ways)
        )
        self._systems = dict(systems)
        self._tz = timezone
        self._next_update = _within(update_every)
        self._said_when: dict[tuple[float, float], str] = {}
        self._last_incident: tuple[IncidentView, float, IncidentFacts] | None = None
        self._sources: dict[str, str] = {}
        self._read_problems: list[Problem] = []
        self._read_templates()
        self._names_by_filename = {self._path(name): name for name in self._sources}
        loader = _SnapshotLoader(self._sources, self._path)
        self._text_env = _sandbox(loader, autoescape=False)
        self._html_env = _sandbox(loader, autoescape=True)
        self._html_from_text = {
            self._path(name): frame
            for name, source in self._sources.items()
            if (frame := _html_from_text(self._html_env, source)) is not None
        }

    # rendering -------------------------------------------------------------------------------

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
        errors.extend(self._missing_blocks(name, blocks))
        if errors:
            raise errors[0]
        message = self._finish(blocks.rendered)
        for block in REQUIRED_BLOCKS:
            if not getattr(message, block):
                raise TemplateError(*self._where(blocks, block), "it is empty")
        return message

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
        systems = tuple(_facts(info) for info in affected)
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
            cause=_facts(incident.cause),
            systems=tuple(_facts(info) for info in incident.systems),
            note=incident.note.strip(),
            status=incident.status,
        )
        self._last_incident = (incident, now, facts)
        return facts

    # validation ------------------------------------------------------------------------------

    def validate(self) -> list[Problem]:
        """Every problem with the templates, each with file, line and block (``field``).

        Renders every message template (defaults and per-system overrides) against sample data:
        with each system as the cause and as affected, for each reason its kind is sent for, to
        a named person who tried something and to a nameless subscriber.
        """
        problems = [*self._read_problems, *self._layout_problems()]
        for name, source in sorted(self._sources.items()):
            try:
                self._text_env.parse(source, name, self._path(name))
            except TemplateSyntaxError as exc:
                problems.append(self._error(exc, name, "").problem())
        systems = self._systems or _SAMPLE_SYSTEMS
        longest: dict[Problem, int] = {}  # sms too long: where -> its longest length
        for name in sorted(self._sources):
            kind, owner = _kind_of(name)
            if kind is None or (owner is not None and owner not in systems):
                continue
            for system in [owner] if owner else sorted(systems):
                for as_cause in (True, False):
                    for reason in REASONS[kind]:
                        for person in SAMPLE_PEOPLE:
                            sample = sample_context(
                                systems, system, kind, reason, as_cause=as_cause, person=person
                            )
                            problems.extend(self._check(name, sample, longest))
        for where, length in longest.items():
            message = (
                f"the sms is up to {length} characters with sample data; at most {MAX_SMS} are "
                "sent, so it would be cut"
            )
            problems.append(Problem(where.file, where.line, where.field, message))
        # Rendering stops a block at its first undefined name; reading the templates finds
        # the others too (and those in branches no sample takes).
        rendered = {(p.file, p.line, p.message) for p in problems}
        problems.extend(
            p for p in self._undefined_names() if (p.file, p.line, p.message) not in rendered
        )
        return sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line or 0))

    def _undefined_names(self) -> list[Problem]:
        """Each name no message has and each field a record lacks, wherever a template uses
        it, unless guarded (``is defined``, ``|default``): what rendering would fail on."""
        trees = {}
        for name, source in sorted(self._sources.items()):
            try:
                trees[name] = self._text_env.parse(source)
            except TemplateSyntaxError:
                continue  # reported as a syntax error
        # A name set, imported or made a macro in any template may reach another through
        # {% extends %}: only names no template gives at all are certainly undefined.
        assigned = {found for tree in trees.values() for found in _assigned_names(tree)}
        known = {*CONTEXT_NAMES, *self._text_env.globals, *_JINJA_NAMES, *assigned}
        found = []
        for name, tree in trees.items():
            # ``{% if nickname is defined %}{{ nickname }}``: a name asked about is allowed.
            asked = {_dotted(t.node) for t in tree.find_all(nodes.Test) if t.name in _GUARDS}
            for line, block, said in _undefined_uses(tree, "", known | asked, assigned | asked):
                message = f"undefined: {_explain_undefined(said)}"
                found.append(Problem(self._path(name), line, block, message))
        return found

    def _check(self, name: str, sample: Sample, longest: dict[Problem, int]) -> list[Problem]:
        context = self.context(
            sample.kind, sample.reason, sample.recipient, sample.incident, sample.now
        )
        errors: list[TemplateError] = []
        blocks = self._render_blocks(name, context, errors)
        errors.extend(self._missing_blocks(name, blocks))
        problems = [error.problem() for error in errors]
        for block in REQUIRED_BLOCKS:
            if block in blocks.rendered and not _tidy(blocks.rendered[block]):
                problems.append(self._problem(blocks, block, "it is empty with sample data"))
        sms = one_line(blocks.rendered.get("sms", ""))
        if len(sms) > MAX_SMS:
            where = self._problem(blocks, "sms", "")
            longest[where] = max(len(sms), longest.get(where, 0))
        return problems

    def _problem(self, blocks: _Blocks, block: str, message: str) -> Problem:
        return Problem(*self._where(blocks, block), message)

    def _where(self, blocks: _Blocks, block: str) -> tuple[str, int | None, str]:
        """The file and line of the version of ``block`` that was rendered, and the block."""
        origin = blocks.origins.get(block, "")
        return self._path(origin), self._block_line(origin, block), block

    def _layout_problems(self) -> list[Problem]:
        problems = []
        if not self._dir.is_dir():
            return [Problem(str(self._dir), None, "", "no such messages directory")]
        defaults = [f"{kind.value}.j2" for kind in MessageKind]
        for default in defaults:
            if default not in self._sources:
                problems.append(
                    Problem(self._path(default), None, "", "missing: every kind needs a default")
                )
        kinds = ", ".join(defaults)
        for name in sorted(self._sources):
            found, owner = _kind_of(name)
            if found is None and not Path(name).name.startswith("_"):
                problems.append(
                    Problem(
                        self._path(name),
                        None,
                        "",
                        f"not a message kind, so never used (kinds: {kinds}; "
                        "shared parts start with _)",
                    )
                )
            elif owner is not None and self._systems and owner not in self._systems:
                known = ", ".join(sorted(self._systems))
                problems.append(
                    Problem(
                        self._path(name),
                        None,
                        "",
                        f"no system is named {owner!r}, so never used (systems: {known})",
                    )
                )
        return problems

    # the machinery ---------------------------------------------------------------------------

    def _render_blocks(
        self, name: str, data: Mapping[str, object], errors: list[TemplateError]
    ) -> _Blocks:
        """Render each block of ``name`` on its own; collect every failure in ``errors``."""
        result = _Blocks()
        plans: tuple[tuple[Environment, tuple[str, ...]], ...] = (
            (self._text_env, ("subject", "text", "sms")),
            (self._html_env, ("html",)),
        )
        for env, wanted in plans:
            if env is self._html_env and self._derive_html(result):
                break
            try:
                if name not in self._sources:
                    raise TemplateNotFound(name)
                template = env.get_template(name)
                context = template.new_context(dict(data))
                chains = _prepare(context, template.root_render_func)
            except Exception:
                errors.append(self._caught(env, name, ""))
                return result
            result.defined.update(chains)
            result.chains = chains
            # The blocks of one environment render in the context its top level ran in, as
            # Jinja renders a template's blocks: they only read it (a ``{% set %}`` in a block
            # stays in that block).
            context.blocks = chains
            if env is self._html_env and "text" in result.rendered:
                # ``self.text()`` in the html block is the text part as sent, escaped whole:
                # rendering it again, autoescaped, cost ~20 us of a message's ~165 and left
                # markup-like literals ("<https://...>") raw in the html.
                context.blocks["text"] = [_rendered_block(result.rendered["text"])]
            for block in wanted:
                if block not in chains:
                    continue
                first = chains[block][0]
                origin = self._names_by_filename.get(first.__code__.co_filename, name)
                result.origins[block] = origin
                try:
                    result.rendered[block] = "".join(first(context))
                except Exception:
                    errors.append(self._caught(env, name, block))
        return result

    def _derive_html(self, result: _Blocks) -> bool:
        """Write the html part without a second environment when the html block in use is
        the text as paragraphs in a fixed frame, as ``_base.j2``'s is: running the template's
        top level again, autoescaped, was a fifth of the cost of rendering a message."""
        chain = result.chains.get("html")
        if not chain or "text" not in result.rendered:
            return False
        filename = chain[0].__code__.co_filename
        frame = self._html_from_text.get(filename)
        if frame is None:
            return False
        before, after = frame
        html = paragraphs(escape(result.rendered["text"]))
        result.rendered["html"] = f"{before}{html}{after}"
        result.origins["html"] = self._names_by_filename.get(filename, filename)
        return True

    def _missing_blocks(self, name: str, blocks: _Blocks) -> list[TemplateError]:
        if not blocks.defined:  # it failed before its blocks were known
            return []
        return [
            TemplateError(
                self._path(name),
                None,
                block,
                f"no {block} block: every message needs {{% block {block} %}}...{{% endblock %}}",
            )
            for block in REQUIRED_BLOCKS
            if block not in blocks.defined
        ]

    def _finish(self, rendered: Mapping[str, str]) -> RenderedMessage:
        subject = one_line(rendered["subject"])
        text = _tidy(rendered["text"])
        html = _strip_controls(rendered.get("html", "")).strip() or None
        sms = one_line(rendered.get("sms", "")) or self._derive_sms(subject, text)
        return RenderedMessage(subject=subject, text=text, html=html, sms=_fit(sms, MAX_SMS))

    def _derive_sms(self, subject: str, text: str) -> str:
        """The subject and the text's first sentence, signed with the org's name."""
        first = _first_sentence(one_line(text))
        if not subject or not first or subject in first:
            sms = first or subject
        else:
            sms = subject + (" " if re.search(r"[.!?…]$", subject) else ". ") + first
        return sms if self._org.name in sms else f"{self._org.name}: {sms}"

    def _caught(self, env: Environment, name: str, block: str) -> TemplateError:
        """The exception being handled, rewritten by Jinja to point into the template."""
        try:
            env.handle_exception()
        except Exception as exc:
            return self._error(exc, name, block)

    def _error(self, exc: BaseException, name: str, block: str) -> TemplateError:
        file, line = name, None
        if isinstance(exc, TemplateSyntaxError):
            file, line = exc.name or name, exc.lineno
        tb = exc.__traceback__
        while tb is not None:  # the innermost template frame is where it went wrong
            code = tb.tb_frame.f_code
            if code.co_filename in self._names_by_filename:
                file, line = self._names_by_filename[code.co_filename], tb.tb_lineno
                found = re.fullmatch(r"block '(\w+)'", code.co_name)
                block = found.group(1) if found else block
            tb = tb.tb_next
        return TemplateError(self._path(file), line, block, _explain(exc, self._dir))

    def _block_line(self, name: str, block: str) -> int | None:
        try:
            tree = self._text_env.parse(self._sources[name])
        except (KeyError, TemplateSyntaxError):
            return None
        found = [node.lineno for node in tree.find_all(nodes.Block) if node.name == block]
        return found[0] if found else None

    def _read_templates(self) -> None:
        if not self._dir.is_dir():
            return
        for path in sorted([*self._dir.glob("*.j2"), *self._dir.glob("*/*.j2")]):
            name = path.relative_to(self._dir).as_posix()
            try:
                self._sources[name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self._read_problems.append(Problem(str(path), None, "", f"cannot read it: {exc}"))

    def _path(self, name: str) -> str:
        return str(self._dir / name) if name else str(self._dir)

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
            said = self._said_when[key] = self._format_when(at, now)
        return said

    def _format_when(self, at: float, now: float) -> str:
        moment = datetime.fromtimestamp(at, self._tz)
        today = datetime.fromtimestamp(now, self._tz).date()
        clock = f"{moment:%H:%M} {moment.tzname()}"
        if moment.date() == today:
            return f"{clock} today"
        if moment.date() == today - timedelta(days=1):
            return f"{clock} yesterday"
        year = f" {moment.year}" if moment.year != today.year else ""
        return f"{clock} on {moment:%A} {moment.day} {moment:%B}{year}"


@dataclass
class _Blocks:
    rendered: dict[str, str] = field(default_factory=dict)
    defined: set[str] = field(default_factory=set)
    origins: dict[str, str] = field(default_factory=dict)  # block -> file whose version is used
    chains: dict[str, list[BlockFunction]] = field(default_factory=dict)  # the text environment's


# Jinja plumbing.

BlockFunction = Callable[[Context], Iterator[str]]


class _MutedBlocks(dict[str, list[BlockFunction]]):
    """Block chains while a template's top level runs: the chains fill in as ``{% extends %}``
    links each parent, but a block called meanwhile renders nothing."""

    def __getitem__(self, name: str) -> list[BlockFunction]:
        return [_render_nothing]


def _html_from_text(env: Environment, source: str) -> tuple[str, str] | None:
    """For a template whose html block is only ``{{ self.text()|paragraphs }}`` between fixed
    markup, that markup; else None."""
    try:
        tree = env.parse(source)
    except TemplateSyntaxError:
        return None
    blocks = [block for block in tree.find_all(nodes.Block) if block.name == "html"]
    if len(blocks) != 1 or len(blocks[0].body) != 1:
        return None
    output = blocks[0].body[0]
    if not isinstance(output, nodes.Output):
        return None
    parts: list[nodes.Node] = list(output.nodes)
    frame = ["", ""]
    for end, at in ((0, 0), (1, -1)):
        if parts and isinstance(data := parts[at], nodes.TemplateData):
            frame[end] = data.data
            del parts[at]
    if len(parts) != 1 or not _is_text_as_paragraphs(parts[0]):
        return None
    return frame[0], frame[1]


def _is_text_as_paragraphs(node: nodes.Node) -> bool:
    """Whether ``node`` is ``self.text()|paragraphs``, nothing more."""
    if not (isinstance(node, nodes.Filter) and node.name == "paragraphs"):
        return False
    if node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
        return False
    call = node.node
    return (
        isinstance(call, nodes.Call)
        and not (call.args or call.kwargs or call.dyn_args or call.dyn_kwargs)
        and isinstance(call.node, nodes.Getattr)
        and call.node.attr == "text"
        and isinstance(call.node.node, nodes.Name)
        and call.node.node.name == "self"
    )


def _rendered_block(text: str) -> BlockFunction:
    """A block that yields ``text``, rendered already, escaped for html."""
    escaped = str(escape(text))

    def block(context: Context) -> Iterator[str]:
        yield escaped

    return block


def _render_nothing(context: Context) -> Iterator[str]:
    return iter(())


def _prepare(context: Context, root: BlockFunction) -> dict[str, list[BlockFunction]]:
    """Run the template's top level in ``context`` as Jinja would (the ``{% extends %}`` chain,
    top-level ``{% set %}``, ``{% import %}`` and macros) without rendering any block. Returns
    each block's chain, most derived first (what ``super()`` walks)."""
    muted = _MutedBlocks(context.blocks)
    context.blocks = muted
    for _ in root(context):
        pass
    return {name: list(chain) for name, chain in muted.items()}


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, also refusing ``*`` and ``**`` results big enough to exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A field of one of our records is what templates read most, and always safe (a str,
        # None, a tuple or another record): skip the sandbox's checks, which cost a third of
        # the time of rendering a message. Anything else is checked as usual.
        if attribute in _RECORD_FIELDS.get(type(obj), ()):
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"an exponent above {_MAX_EXPONENT} is not allowed")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * count > _MAX_SEQUENCE
                ):
                    raise SecurityError(f"a result longer than {_MAX_SEQUENCE} is not allowed")
        return super().call_binop(context, operator, left, right)


class _SnapshotLoader(BaseLoader):
    """Templates as read when the composer was built."""

    def __init__(self, sources: Mapping[str, str], path: Callable[[str], str]) -> None:
        self._sources = sources
        self._path = path

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in self._sources:
            raise TemplateNotFound(template)
        return self._sources[template], self._path(template), lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self._sources)


def _sandbox(loader: BaseLoader, *, autoescape: bool) -> Environment:
    env = _Sandbox(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["human_join"] = human_join
    env.filters["sentence"] = sentence
    env.filters["paragraphs"] = paragraphs
    return env


def _kind_of(name: str) -> tuple[MessageKind | None, str | None]:
    """``acknowledge.j2`` -> (ACKNOWLEDGE, None); ``payment/update.j2`` -> (UPDATE, "payment")."""
    *owner, file = name.split("/")
    stem = file.removesuffix(".j2")
    kind = next((k for k in MessageKind if k.value == stem), None)
    return kind, (owner[0] if owner else None)


def _explain(exc: BaseException, messages_dir: Path) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"blocked by the sandbox (security): {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined: {_explain_undefined(str(exc))}"
    if isinstance(exc, TemplateNotFound):
        return f"no template named {exc.name!r} in {messages_dir}"
    return f"{type(exc).__name__}: {exc}"


def _explain_undefined(message: str) -> str:
    if re.fullmatch(r"'\w+' is undefined", message):
        return f"{message} (a message can use {', '.join(CONTEXT_NAMES)})"
    found = re.fullmatch(r"'(?:[\w.]+\.)?(\w+) object' has no attribute '(\w+)'", message)
    if found and found.group(1) in _LABELS:
        label, cls = _LABELS[found.group(1)]
        has = ", ".join(f.name for f in fields(cls))
        return f"{label} has no {found.group(2)!r} (it has {has})"
    return message


# Names Jinja gives a template itself: its blocks, a block's parent, a loop, a macro's caller.
_JINJA_NAMES = frozenset({"self", "super", "loop", "caller", "varargs", "kwargs"})
_CONTEXT_RECORDS: Mapping[str, type] = {
    "user": UserFacts,
    "incident": IncidentFacts,
    "org": OrgFacts,
}
_GUARDS = frozenset({"defined", "undefined", "default", "d"})  # tests and filters that allow it


def _assigned_names(tree: nodes.Template) -> Iterator[str]:
    """Every name ``tree`` gives a value: set, for, with, macro and call arguments, imports."""
    for node in tree.find_all((nodes.Name, nodes.Macro, nodes.Import, nodes.FromImport)):
        if isinstance(node, nodes.Macro):
            yield node.name
        elif isinstance(node, nodes.Name):
            if node.ctx in ("store", "param"):
                yield node.name
        elif isinstance(node, nodes.Import):
            yield node.target
        elif isinstance(node, nodes.FromImport):
            yield from (item if isinstance(item, str) else item[1] for item in node.names)


def _undefined_uses(
    node: nodes.Node, block: str, known: set[str], assigned: set[str]
) -> Iterator[tuple[int, str, str]]:
    """(line, block, what Jinja would say) for each use under ``node`` of a name not ``known``,
    or of a field ``user``, ``incident`` or ``org`` (or a record in them) does not have."""
    if isinstance(node, nodes.Block):
        block = node.name
    children: Iterable[nodes.Node] = node.iter_child_nodes()
    if isinstance(node, nodes.Test | nodes.Filter) and node.name in _GUARDS:
        children = [*node.args, *(keyword.value for keyword in node.kwargs)]
    elif isinstance(node, nodes.Getattr):
        attributes = [node.attr]
        root = node.node
        while isinstance(root, nodes.Getattr):
            attributes.insert(0, root.attr)
            root = root.node
        if isinstance(root, nodes.Name) and root.name in _CONTEXT_RECORDS:
            chain = [root.name, *attributes]
            if not any(".".join(chain[:end]) in assigned for end in range(1, len(chain) + 1)):
                missing = _missing_field(_CONTEXT_RECORDS[root.name], attributes)
                if missing is not None:
                    yield node.lineno, block, missing
            return
    elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in known:
        yield node.lineno, block, f"'{node.name}' is undefined"
    for child in children:
        yield from _undefined_uses(child, block, known, assigned)


def _dotted(node: nodes.Node) -> str:
    """``user.nickname`` for a name or a chain of attributes on one; "" for anything else."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        under = _dotted(node.node)
        return f"{under}.{node.attr}" if under else ""
    return ""


def _missing_field(record: type, attributes: Iterable[str]) -> str | None:
    """What Jinja says of the first of ``attributes`` (a chain: ``cause.title``) the record
    lacks; None when each is there, or the chain leaves our records (Jinja's own then)."""
    here = record
    for attribute in attributes:
        if attribute.startswith("_"):
            return None  # refused by the sandbox, which says so itself
        if attribute not in _RECORD_FIELDS[here]:
            return f"'{here.__name__} object' has no attribute '{attribute}'"
        found = _FIELD_TYPES[here][attribute]
        if not isinstance(found, type) or found not in _RECORD_FIELDS:
            return None
        here = found
    return None


def _facts(info: SystemInfo) -> SystemFacts:
    return SystemFacts(info.name, info.title, info.workaround.strip())


def _within(seconds: float) -> str:
    """``within 24 hours``, ``within 30 minutes``, ``within 3 days``."""
    hours = seconds / 3600
    if 1 <= hours <= 48 and hours == int(hours):
        return f"within {int(hours)} hour{'s' if hours != 1 else ''}"
    return f"within {format_duration(seconds)}"


# Filters templates may use.


def human_join(items: Iterable[object], word: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``; a system joins as its title. When an item holds the
    word itself ("Account and orders"), a comma marks the last join: "Account and orders, and
    Payments"."""
    words = [str(item) for item in items]
    if len(words) <= 1:
        return "".join(words)
    last = f", {word} " if any(f" {word} " in w for w in words) else f" {word} "
    return ", ".join(words[:-1]) + last + words[-1]


def sentence(value: object) -> str:
    """The text, trimmed, ending in a full stop unless it already ends a sentence."""
    text = str(value).strip()
    return text if not text or re.search(r"[.!?…][\"')\]]*$", text) else f"{text}."


def paragraphs(value: object) -> Markup:
    """Plain text as simple HTML: blank lines part paragraphs, ``- `` lines make a list.

    Text that is not already markup is escaped first; in the html block, ``self.text()`` is
    markup whose data the autoescape has already escaped.
    """
    # Escaped once, up front; the rest only cuts and joins that text, so plain strings will do
    # (Markup's own format and join would check every piece again, for every message).
    text = str(escape(value))
    out: list[str] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        for is_list, run in groupby(lines, key=lambda line: line.startswith("- ")):
            group = list(run)
            if is_list:
                out.append("<ul>" + "".join(f"<li>{line[2:]}</li>" for line in group) + "</ul>")
            else:
                out.append("<p>" + "<br>\n".join(group) + "</p>")
    return Markup("\n".join(out))


# Output hygiene.

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _strip_controls(text: str) -> str:
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _tidy(text: str) -> str:
    """Trimmed lines, at most one blank line in a row, no control characters but newlines."""
    lines = [line.rstrip() for line in _strip_controls(text).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _first_sentence(text: str) -> str:
    found = re.match(r"(.+?[.!?…])(?=\s|$)", text)
    return found.group(1) if found else text


def _fit(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary with "…" when it is longer."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-—") + "…"
