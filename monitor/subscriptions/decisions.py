"""What each step of a self-service subscription decides: a request (a confirmation mail,
within the limits), a confirm link followed (a subscriber), a manage or unsubscribe link
followed (their systems, or nothing further from this monitor).

A request answers the same whoever asks: nothing about the address is read before the answer
(whether it is subscribed, or known), so neither the page nor its timing can tell.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from monitor.config import MonitorSettings
from monitor.logs import event
from monitor.model import Clock, Person, SystemInfo
from monitor.people.rules import EMAIL
from monitor.store import Outbox, People, Subscriptions
from monitor.subscriptions.confirmation import (
    ConfirmationWriter,
    confirmation_mail,
    without,
)
from monitor.subscriptions.limits import address_key, claims
from monitor.subscriptions.tokens import Expired, Links

log = logging.getLogger("monitor.subscriptions")
_EMAIL = re.compile(EMAIL)
MAX_EMAIL = 254  # RFC 5321's longest path


class SubscriptionStore(Subscriptions, People, Outbox, Protocol):
    """What subscriptions read and write."""


class Confirmation(Enum):
    SUBSCRIBED = "subscribed"
    EXPIRED = "expired"
    REFUSED = "refused"


def subscriber_id(email: str) -> str:
    """The id of a subscriber the apps do not know: ``sub-`` and a hash of the address."""
    return f"sub-{address_key(email)}"


def usable_email(email: str) -> str | None:
    """The address as typed, trimmed, if it can be written to; else None."""
    found = email.strip()
    return found if len(found) <= MAX_EMAIL and _EMAIL.fullmatch(found) else None


async def _nothing_to_tell(person: Person) -> None:
    """``Desk.subscribed`` when nothing is to be told of a new subscription."""


@dataclass
class Desk:
    """Decides each step, on the running configuration (``settings``, ``systems``)."""

    store: SubscriptionStore
    links: Callable[[], Links | None]  # as the running configuration allows
    clock: Clock
    settings: Callable[[], MonitorSettings]
    systems: Callable[[], Mapping[str, SystemInfo]]
    # Who writes the confirmation mail: the running composer (its templates, as reloaded).
    writer: Callable[[], ConfirmationWriter]
    wake: Callable[[], None] = lambda: None  # the sender: a mail was decided
    counted: Callable[[str], None] = lambda what: None  # requested, confirmed, unsubscribed
    # Someone was just subscribed (confirmed) or kept more systems (manage), as stored: planned
    # work already announced to those systems is told to them (the notifier's; none here).
    subscribed: Callable[[Person], Awaitable[None]] = field(default=_nothing_to_tell)

    def _links(self) -> Links:
        links = self.links()
        if links is None:  # the web offers nothing without links: never asked then
            raise RuntimeError("subscriptions are off: no public_url or MONITOR_LINK_SECRET")
        return links

    async def request(
        self, email: str, names: Sequence[str], client: str, languages: Sequence[str] = ()
    ) -> None:
        """Someone asks to subscribe ``email`` (usable: ``usable_email``) to ``names``: a
        confirmation mail in the first of ``languages`` (theirs, best first) there are
        templates for, unless the address or the client is over its limit (then only a
        warning, without the address). A template that fails is logged (its file and line,
        without the address or the link); the visitor's answer is the same."""
        settings = self.settings()
        now = self.clock.now()
        keys, limits = claims(email, client, settings.subscriptions)
        if not await self.store.claim_request(keys, now, limits):
            event(log, "subscribe request over the limit: no mail sent", logging.WARNING)
            return
        writer = self.writer()
        language = writer.language_for(languages)
        url = self._links().confirm_url(email, names, language)
        within = settings.subscriptions.confirm_within
        try:
            written = writer.render_confirmation(names, url, within, language)
        except Exception as exc:  # the template's fault: the visitor must not learn of it
            token = url.rsplit("/", 1)[-1]
            event(
                log,
                "confirmation mail not sent: its template failed",
                logging.ERROR,
                problem=without(str(exc), (email, url, token)),
            )
        else:
            await self.store.decide(
                [confirmation_mail(subscriber_id(email), email, written, now)], {}, 0
            )
            self.wake()
        self.counted("requested")

    def unusable(self, token: str) -> Confirmation | None:
        """Why a confirm link cannot be followed (``EXPIRED``, ``REFUSED``); None when it can:
        its page then offers the button."""
        try:
            found = self._links().read_confirm(token, self.settings().subscriptions.confirm_within)
        except Expired:
            return Confirmation.EXPIRED
        return Confirmation.REFUSED if found is None else None

    async def confirm(self, token: str) -> tuple[Confirmation, Person | None]:
        """A confirm link is followed: its address subscribes (``SUBSCRIBED``, the person as
        kept), or the link is too old (``EXPIRED``) or not ours (``REFUSED``)."""
        try:
            within = self.settings().subscriptions.confirm_within
            found = self._links().read_confirm(token, within)
        except Expired:
            return Confirmation.EXPIRED, None
        if found is None:
            return Confirmation.REFUSED, None
        systems = self.systems()
        names = tuple(n for n in found.systems if n in systems) or tuple(sorted(systems))
        known = await self.store.people_with_email(found.email)
        if known:
            # One person is one id: the apps' person of this address gets the systems, so
            # nobody is told twice of one incident; they keep the language the apps gave.
            person = known[0]
            person = replace(person, systems=tuple(sorted({*person.systems, *names})))
        else:
            # They read the confirmation in this language: their messages come in it too.
            person = Person(
                id=subscriber_id(found.email),
                email=found.email,
                systems=names,
                language=found.language,
            )
        await self.store.subscribe(person)
        await self.subscribed(person)
        self.counted("confirmed")
        event(log, "subscription confirmed", person=person.id, systems=len(person.systems))
        return Confirmation.SUBSCRIBED, person

    async def holder(self, token: str) -> tuple[str, Person | None] | None:
        """Whose manage link ``token`` is (their id, and the person if still kept); None for
        one not ours."""
        person_id = self._links().read_unsubscribe(token)
        if person_id is None:
            return None
        return person_id, await self.store.person(person_id)

    async def unsubscribe(self, token: str) -> bool:
        """The link's person cancels: nothing further from this monitor (README,
        "Subscriptions"); False for a link not ours."""
        person_id = self._links().read_unsubscribe(token)
        if person_id is None:
            return False
        person = await self.store.person(person_id)
        await self.store.unsubscribe(person_id, person.email if person else None, self.clock.now())
        self.counted("unsubscribed")
        event(log, "unsubscribed", person=person_id)
        return True

    async def manage(self, token: str, names: Sequence[str]) -> Person | None:
        """The link's person keeps only ``names`` (none: unsubscribes); the person as kept,
        None for a link not ours or a person no longer kept."""
        held = await self.holder(token)
        if held is None or held[1] is None:
            return None
        if not names:
            await self.unsubscribe(token)
            return replace(held[1], systems=())
        person = replace(held[1], systems=tuple(sorted(set(names))))
        await self.store.subscribe(person)
        await self.subscribed(person)
        return person
