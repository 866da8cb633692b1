"""Checking the templates (``monitor validate``, and before a running monitor takes new ones):
every template rendered against sample data, and read for every undefined name, each problem
with its file, line and block."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import product
from pathlib import Path
from typing import Protocol

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

from monitor.config import Problem
from monitor.maintenance import NoticeKind, Occurrence
from monitor.model import IncidentView, MessageKind, Reason, Recipient, SystemInfo
from monitor.notify.composer.blocks import REQUIRED_BLOCKS, BlockRenderer, Blocks
from monitor.notify.composer.errors import TemplateError, explain_undefined, names_of
from monitor.notify.composer.facts import (
    CONTEXT_NAMES,
    CONTEXT_RECORDS,
    FIELD_TYPES,
    NO_RESPONSE,
    PLANNED_CONTEXT_NAMES,
    RECORD_FIELDS,
    SUBSCRIPTION_CONTEXT_NAMES,
    Response,
)
from monitor.notify.composer.message import MAX_SMS, tidy
from monitor.notify.composer.samples import (
    REASONS,
    SAMPLE_PEOPLE,
    SAMPLE_SYSTEMS,
    Sample,
    sample_context,
    sample_planned,
    sample_subscription,
)
from monitor.notify.composer.templates import (
    KINDS,
    SubscriptionKind,
    Templates,
    kind_of,
    language_folders,
)
from monitor.text import one_line, unknown_name


class ContextOf(Protocol):
    """What templates see for a message (``Composer.context``), worded in the language of
    ``template``."""

    def __call__(
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
    ) -> Mapping[str, object]: ...


class PlannedContextOf(Protocol):
    """What templates about planned work see (``Composer.planned_context``)."""

    def __call__(
        self,
        kind: NoticeKind,
        recipient: Recipient,
        occurrence: Occurrence,
        now: float,
        *,
        template: str | None = None,
    ) -> Mapping[str, object]: ...


class SubscriptionContextOf(Protocol):
    """What the confirmation of a subscription sees (``Composer.subscription_context``)."""

    def __call__(
        self,
        systems: Sequence[str],
        confirm_url: str,
        within: float,
        language: str | None = None,
        *,
        template: str | None = None,
    ) -> Mapping[str, object]: ...


NO_CONFIRM_LINK = (
    "the text does not show subscription.confirm_url, so nobody could confirm: "
    "write {{ subscription.confirm_url }} in it"
)
_NO_SMS = "never sent: a confirmation goes by email only (leave the sms block out)"
_NO_OVERRIDE = (
    "never used: one request to subscribe is for several systems, so the confirmation has no "
    "template of a system's own (change subscribe.j2, or <language>/subscribe.j2)"
)

# Names Jinja gives a template itself: its blocks, a block's parent, a loop, a macro's caller.
_JINJA_NAMES = frozenset({"self", "super", "loop", "caller", "varargs", "kwargs"})
_GUARDS = frozenset({"defined", "undefined", "default", "d"})  # tests and filters that allow it


def validate(
    templates: Templates,
    renderer: BlockRenderer,
    context: ContextOf,
    systems: Mapping[str, SystemInfo],
    planned: PlannedContextOf | None = None,
    subscription: SubscriptionContextOf | None = None,
) -> list[Problem]:
    """Every problem with ``templates``, each with file, line and block (``field``).

    Renders every message template (defaults and per-system overrides, in every language)
    against sample data: with each system as the cause and as affected, for each reason its
    kind is sent for, to a named person who tried something and to a nameless subscriber; a
    template about planned work (``planned`` words it) with each system in the work, to each;
    the confirmation of a subscription (``subscription`` words it) to each system, alone and
    with another.
    """
    languages = language_folders(templates.sources, systems)
    problems = [*templates.unreadable, *_layout_problems(templates, systems, languages)]
    for name, source in sorted(templates.sources.items()):
        try:
            renderer.text_env.parse(source, name, templates.path(name))
        except TemplateSyntaxError as exc:
            problems.append(renderer.error(exc, name, "").problem())
    known = systems or SAMPLE_SYSTEMS
    longest: dict[Problem, int] = {}  # sms too long: where -> its longest length
    for name in sorted(templates.sources):
        kind, owner = kind_of(name, languages)
        if kind is None or (owner is not None and owner not in known):
            continue
        systems_of_sample = [owner] if owner else sorted(known)
        if isinstance(kind, SubscriptionKind):
            # One of a system's own is never used (``_layout_problems`` says so).
            if owner is None and subscription is not None:
                for system, alone in product(systems_of_sample, (True, False)):
                    asked = sample_subscription(known, system, alone=alone)
                    url = asked.confirm_url
                    data = subscription(asked.systems, url, asked.confirm_within, template=name)
                    problems.extend(_rendered_problems(renderer, name, data, longest, url))
            continue
        if isinstance(kind, NoticeKind):
            for system, person in product(systems_of_sample, SAMPLE_PEOPLE):
                if planned is None:
                    continue
                told = sample_planned(known, system, kind, person=person)
                data = planned(kind, told.recipient, told.occurrence, told.now, template=name)
                problems.extend(_rendered_problems(renderer, name, data, longest))
            continue
        for system, as_cause, reason, person in product(
            systems_of_sample, (True, False), REASONS[kind], SAMPLE_PEOPLE
        ):
            sample = sample_context(known, system, kind, reason, as_cause=as_cause, person=person)
            problems.extend(_sample_problems(renderer, context, name, sample, longest))
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
        p
        for p in _undefined_names(templates, renderer.text_env)
        if (p.file, p.line, p.message) not in rendered
    )
    return sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line or 0))


def _sample_problems(
    renderer: BlockRenderer,
    context: ContextOf,
    name: str,
    sample: Sample,
    longest: dict[Problem, int],
) -> list[Problem]:
    """What rendering ``name`` for ``sample`` finds wrong; an sms too long goes in ``longest``."""
    data = context(
        sample.kind,
        sample.reason,
        sample.recipient,
        sample.incident,
        sample.now,
        template=name,
        response=sample.response,
        goodwill=sample.goodwill,
    )
    return _rendered_problems(renderer, name, data, longest)


def _rendered_problems(
    renderer: BlockRenderer,
    name: str,
    data: Mapping[str, object],
    longest: dict[Problem, int],
    confirm_url: str = "",
) -> list[Problem]:
    """What rendering ``name`` with ``data`` finds wrong; an sms too long goes in ``longest``.
    With ``confirm_url`` (a confirmation's), a text without it and an sms block are wrong."""
    errors: list[TemplateError] = []
    blocks = renderer.render(name, data, errors)
    problems = [error.problem() for error in errors]
    for block in REQUIRED_BLOCKS:
        if block in blocks.rendered and not tidy(blocks.rendered[block]):
            problems.append(_problem(renderer, blocks, block, "it is empty with sample data"))
    if confirm_url:
        text = tidy(blocks.rendered.get("text", ""))
        if text and confirm_url not in text:
            problems.append(_problem(renderer, blocks, "text", NO_CONFIRM_LINK))
        if "sms" in blocks.defined:
            problems.append(_problem(renderer, blocks, "sms", _NO_SMS))
        return problems
    sms = one_line(blocks.rendered.get("sms", ""))
    if len(sms) > MAX_SMS:
        where = _problem(renderer, blocks, "sms", "")
        longest[where] = max(len(sms), longest.get(where, 0))
    return problems


def _problem(renderer: BlockRenderer, blocks: Blocks, block: str, message: str) -> Problem:
    return Problem(*renderer.where(blocks, block), message)


def _layout_problems(
    templates: Templates, systems: Mapping[str, SystemInfo], languages: Collection[str]
) -> list[Problem]:
    """A missing folder or default, and files that would never be used (in a folder that is
    neither a system's nor a language's)."""
    problems = []
    if not templates.dir.is_dir():
        return [Problem(str(templates.dir), None, "", "no such messages directory")]
    defaults = [f"{kind.value}.j2" for kind in KINDS]
    for default in defaults:
        if default not in templates.sources:
            problems.append(
                Problem(templates.path(default), None, "", "missing: every kind needs a default")
            )
    kinds = ", ".join(defaults)
    for name in sorted(templates.sources):
        found, owner = kind_of(name, languages)
        if found is None and not Path(name).name.startswith("_"):
            problems.append(
                Problem(
                    templates.path(name),
                    None,
                    "",
                    f"not a message kind, so never used (kinds: {kinds}; "
                    "shared parts start with _)",
                )
            )
        elif owner is not None and systems and owner not in systems:
            language = "" if name.split("/", 1)[0] in languages else _NOR_A_LANGUAGE
            problems.append(
                Problem(
                    templates.path(name),
                    None,
                    "",
                    f"{unknown_name('system', owner, systems)}{language}, so never used",
                )
            )
        elif owner is not None and found is SubscriptionKind.CONFIRM:
            problems.append(Problem(templates.path(name), None, "", _NO_OVERRIDE))
        elif owner is not None and "/" in owner:
            message = "too deep: a template is messages/[<language>/][<system>/]<kind>.j2"
            problems.append(Problem(templates.path(name), None, "", message))
    return problems


_NOR_A_LANGUAGE = ", nor is it a language tag (like de or pt-BR)"


# The undefined-name analysis: what rendering would fail on, read from the syntax trees.


def _undefined_names(templates: Templates, env: Environment) -> list[Problem]:
    """Each name no message has and each field a record lacks, wherever a template uses
    it, unless guarded (``is defined``, ``|default``): what rendering would fail on."""
    trees = {}
    for name, source in sorted(templates.sources.items()):
        try:
            trees[name] = env.parse(source)
        except TemplateSyntaxError:
            continue  # reported as a syntax error
    # A name set, imported or made a macro in any template may reach another through
    # {% extends %}: only names no template gives at all are certainly undefined.
    assigned = {found for tree in trees.values() for found in _assigned_names(tree)}
    known = {
        *CONTEXT_NAMES,
        *PLANNED_CONTEXT_NAMES,
        *SUBSCRIPTION_CONTEXT_NAMES,
        *env.globals,
        *_JINJA_NAMES,
        *assigned,
    }
    found = []
    for name, tree in trees.items():
        # ``{% if nickname is defined %}{{ nickname }}``: a name asked about is allowed.
        asked = {_dotted(t.node) for t in tree.find_all(nodes.Test) if t.name in _GUARDS}
        for line, block, said in _undefined_uses(tree, "", known | asked, assigned | asked):
            message = f"undefined: {explain_undefined(said, names_of(name))}"
            found.append(Problem(templates.path(name), line, block, message))
    return found


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
        if isinstance(root, nodes.Name) and root.name in CONTEXT_RECORDS:
            chain = [root.name, *attributes]
            if not any(".".join(chain[:end]) in assigned for end in range(1, len(chain) + 1)):
                missing = _missing_field(CONTEXT_RECORDS[root.name], attributes)
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
        if attribute not in RECORD_FIELDS[here]:
            return f"'{here.__name__} object' has no attribute '{attribute}'"
        found = FIELD_TYPES[here][attribute]
        if not isinstance(found, type) or found not in RECORD_FIELDS:
            return None
        here = found
    return None
