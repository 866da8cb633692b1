"""Customer messages: the Jinja templates in messages/, rendered in a sandbox one block at a time.

``messages/<kind>.j2`` is the default for each kind (about an incident, about planned work,
or ``subscribe.j2``: the confirmation of a subscription); ``messages/<system>/<kind>.j2``
overrides it when that system is the incident's cause (or, failing that, one of the
recipient's affected systems; the confirmation, for several systems at once, has none).
``messages/<language>/`` holds the same for a language (the top level is the default
language's), each falling back to the default language's; times and durations are worded in
the template's language at the person's clock (``wording``). Each template has the blocks
``subject`` and ``text``, and optionally ``html`` and ``sms``. Files whose name starts with
``_`` are shared parts, never a message kind.

The composer reads every template once, when it is built: a ``Composer`` is a snapshot, so a
running monitor keeps its last good templates until a new one passes ``validate()``.

Templates render in ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: reaching Python
internals (``{{ ''.__class__ }}``) or an unknown name is an error, never a silent blank. Only
the ``html`` block is autoescaped. Customer data is data: it is printed once, never rendered
again as a template.

This package is the only code rendering customer messages, and the only one rendering in a
sandbox. The status page (``monitor.web.statuspage``) and the demo's page of messages
(``monitor.demo.pages``) import jinja2 too, for autoescaped Jinja2 environments of their own that
render our HTML pages from our own templates; no other module imports jinja2 (an import-linter
contract in pyproject.toml keeps it so).

Its modules, each over the ones below it: ``render`` (the ``Composer``: which template, what it
sees, the message), ``check`` (``validate``), ``blocks`` (rendering a template one block at a
time), ``html`` (the html part from the text part), ``sandbox``, ``errors``, ``samples``,
``templates`` (reading messages/), ``facts`` (the records templates see), ``wording`` (times
and durations in a zone and language), ``filters`` and ``message`` (a rendered message made fit
to send).
"""

from monitor.notify.composer.errors import TemplateError
from monitor.notify.composer.facts import NO_RESPONSE, IncidentFacts, Response
from monitor.notify.composer.filters import human_join, paragraphs, sentence
from monitor.notify.composer.message import MAX_SMS
from monitor.notify.composer.render import Composer
from monitor.notify.composer.samples import (
    REASONS,
    SamplePerson,
    sample_action,
    sample_context,
    sample_subscription,
)
from monitor.notify.composer.templates import SubscriptionKind

__all__ = [
    "MAX_SMS",
    "NO_RESPONSE",
    "REASONS",
    "Composer",
    "IncidentFacts",
    "Response",
    "SamplePerson",
    "SubscriptionKind",
    "TemplateError",
    "human_join",
    "paragraphs",
    "sample_action",
    "sample_context",
    "sample_subscription",
    "sentence",
]
