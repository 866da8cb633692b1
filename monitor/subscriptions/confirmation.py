"""The confirmation mail (double opt-in): one short text, in the status page's language, with
the confirm link; it goes through the outbox like every message (kept until sent, retried,
sent by whichever replica holds its shard), under the outbox's ``incident_id`` 0: it is about
no incident."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.model import Address
from monitor.store import OutboxItem
from monitor.subscriptions.tokens import CONFIRM_KIND

_WORDS = {
    "en": (
        "Please confirm your subscription to {org} status updates",
        "Hello,\n\nsomeone, hopefully you, asked to be told by email when there is a problem "
        "with {systems} at {org}, and when it is fixed.\n\n"
        "To confirm, open this link within {within}:\n{url}\n\n"
        "If it was not you, ignore this mail: you will not hear from us again.\n\n"
        "{org}\n",
    ),
    "de": (
        "Bitte bestätigen Sie Ihr Abonnement der Statusmeldungen von {org}",
        "Hallo,\n\njemand, hoffentlich Sie, möchte per E-Mail erfahren, wenn es bei {org} eine "
        "Störung bei {systems} gibt und wenn sie behoben ist.\n\n"
        "Zum Bestätigen öffnen Sie innerhalb von {within} diesen Link:\n{url}\n\n"
        "Waren Sie das nicht, ignorieren Sie diese E-Mail: "
        "Sie hören dann nicht wieder von uns.\n\n{org}\n",
    ),
}
_AND = {"en": "and", "de": "und"}
_HOURS = {"en": "hours", "de": "Stunden"}


def confirmation_mail(
    person_id: str,
    email: str,
    titles: Sequence[str],
    url: str,
    within: float,
    org: str,
    language: str,
    now: float,
) -> OutboxItem:
    """The confirmation mail to ``email`` for the systems ``titles``, as an outbox item."""
    words = language.split("-", 1)[0].lower()
    subject, text = _WORDS.get(words, _WORDS["en"])
    joined = _join(titles, _AND.get(words, "and"))
    filled = {
        "org": org,
        "systems": joined,
        "url": url,
        "within": f"{round(within / 3600)} {_HOURS.get(words, 'hours')}",
    }
    return OutboxItem(
        # The id is sub- and a hash (``limits.address_key``): a Message-ID may carry it as it is.
        key=f"subscribe-{person_id}.{int(now * 1000)}",
        incident_id=0,
        person_id=person_id,
        kind=CONFIRM_KIND,
        reason="confirm",
        created_at=now,
        subject=subject.format(**filled),
        text=text.format(**filled),
        html=None,
        sms="",
        channels=(Address("email", email),),
        next_try_at=now,
    )


def _join(titles: Sequence[str], word: str) -> str:
    if len(titles) <= 1:
        return "".join(titles)
    return ", ".join(titles[:-1]) + f" {word} " + titles[-1]
