"""The confirmation mail (double opt-in): written by the ``subscribe.j2`` templates in the
visitor's language, with the confirm link; it goes through the outbox like every message (kept
until sent, retried, sent by whichever replica holds its shard), under the outbox's
``incident_id`` 0: it is about no incident.

The templates are the composer's (``monitor.notify``, a package beside this one): the desk is
handed a ``ConfirmationWriter``, the running composer, and never imports it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.model import Address, RenderedMessage
from monitor.store import OutboxItem
from monitor.subscriptions.tokens import CONFIRM_KIND


class ConfirmationWriter(Protocol):
    """Who writes the confirmation mail (the composer of the running configuration)."""

    def language_for(self, preferred: Sequence[str]) -> str | None:
        """The first of a visitor's languages (best first) there are templates for, else
        None (the default language)."""
        ...

    def render_confirmation(
        self, systems: Sequence[str], confirm_url: str, within: float, language: str | None
    ) -> RenderedMessage:
        """The mail for a request to subscribe to ``systems``; raises when its template
        cannot be rendered (the exception names the file and line)."""
        ...


def confirmation_mail(person_id: str, email: str, mail: RenderedMessage, now: float) -> OutboxItem:
    """The confirmation ``mail`` to ``email``, as an outbox item: by email only."""
    return OutboxItem(
        # The id is sub- and a hash (``limits.address_key``): a Message-ID may carry it as it is.
        key=f"subscribe-{person_id}.{int(now * 1000)}",
        incident_id=0,
        person_id=person_id,
        kind=CONFIRM_KIND,
        reason="confirm",
        created_at=now,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        sms="",
        channels=(Address("email", email),),
        next_try_at=now,
    )


def without(text: str, secrets: Sequence[str]) -> str:
    """``text`` (an error's) with each of ``secrets`` (the address, the confirm link and its
    token) taken out: a log line must not show whom a request was for, nor let anyone
    confirm it."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "[withheld]")
    return text
