"""The signed links in customer mail: a confirm link (in the confirmation mail: the address,
its systems and the language the mail was written in, expiring) and a personal
manage/unsubscribe link (in every message: the person's id, never expiring). Signed by
itsdangerous with ``MONITOR_LINK_SECRET``; each kind has its own salt, so a confirm token is
never taken as an unsubscribe token, or the reverse.

Several secrets, comma-separated, rotate: the first signs, every one verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    Signer,
    TimestampSigner,
    URLSafeTimedSerializer,
    base64_decode,
    base64_encode,
)
from itsdangerous.encoding import want_bytes

from monitor.model import Clock
from monitor.store import OutboxItem

SECRET_VARIABLE = "MONITOR_LINK_SECRET"
CONFIRM_KIND = "subscribe"  # the outbox kind of a confirmation mail
MIN_SECRET = 32
_CONFIRM, _UNSUBSCRIBE = "monitor.subscribe.confirm", "monitor.subscribe.unsubscribe"
_SIGNING = {"digest_method": hashlib.sha256}


def link_secrets(environ: Mapping[str, str]) -> tuple[tuple[str, ...], str | None]:
    """The secrets ``MONITOR_LINK_SECRET`` lists, first the one that signs; else () and why
    not (never quoting it)."""
    given = environ.get(SECRET_VARIABLE, "")
    secrets = tuple(part.strip() for part in given.split(",") if part.strip())
    if not secrets:
        return (), f"{SECRET_VARIABLE} is not set"
    short = [n for n, secret in enumerate(secrets, start=1) if len(secret) < MIN_SECRET]
    if short:
        which = ", ".join(str(n) for n in short)
        return (), f"{SECRET_VARIABLE}: secret {which} is shorter than {MIN_SECRET} characters"
    return secrets, None


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What a valid confirm link says: the address and the systems asked for, and the
    language its mail was written in (None in a link made before links carried it)."""

    email: str
    systems: tuple[str, ...]
    language: str | None = None


class Expired(Exception):
    """A confirm link older than its time: the page says to subscribe again."""


class _KeptKeySigner(Signer):
    """A signer that derives each key once: itsdangerous derives it at every signature, a
    third of the time of a link in a fan-out of 20,000 messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = secret_key if secret_key is None else want_bytes(secret_key)
        found = self._derived.get(key)
        if found is None:
            found = self._derived[key] = super().derive_key(secret_key)
        return found


class Links:
    """Makes and reads the links; ``public_url`` is the status page's address (no slash at
    the end)."""

    def __init__(self, secrets: Sequence[str], public_url: str, clock: Clock) -> None:
        if not secrets:
            raise ValueError("a link secret is needed")
        # itsdangerous signs with the last key and verifies with every one.
        keys = list(reversed(secrets))
        self.public_url = public_url.rstrip("/")
        self._clock = clock
        signer = type(
            "ClockSigner",
            (TimestampSigner,),
            {"get_timestamp": lambda _self: int(clock.now())},
        )
        self._confirm = URLSafeTimedSerializer(
            keys, salt=_CONFIRM, signer=signer, signer_kwargs=_SIGNING
        )
        self._unsubscribe = _KeptKeySigner(keys, salt=_UNSUBSCRIBE, **_SIGNING)
        # A fan-out renders a person's link into their message, and the sender writes it into
        # the List-Unsubscribe header moments later: signed once for both.
        self.manage_url = lru_cache(maxsize=8192)(self._manage_url)

    def _manage_url(self, person_id: str) -> str:
        token = self._unsubscribe.sign(base64_encode(person_id)).decode()
        return f"{self.public_url}/unsubscribe/{token}"

    def confirm_url(self, email: str, systems: Sequence[str], language: str | None = None) -> str:
        said: dict[str, object] = {"e": email, "s": list(systems)}
        if language is not None:
            said["l"] = language
        token = self._confirm.dumps(said)
        return f"{self.public_url}/subscribe/confirm/{token}"

    def read_unsubscribe(self, token: str) -> str | None:
        """The person id an unsubscribe token names; None for one forged, altered, or of
        another kind."""
        try:
            found = base64_decode(self._unsubscribe.unsign(token)).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        return found or None

    def read_confirm(self, token: str, max_age: float) -> Confirmed | None:
        """What a confirm token says; None for one forged, altered or of another kind; raises
        Expired for one older than ``max_age`` seconds."""
        try:
            found: Any = self._confirm.loads(token, max_age=int(max_age))
        except SignatureExpired:
            raise Expired from None
        except BadSignature:
            return None
        if not isinstance(found, dict):
            return None
        email, systems, language = found.get("e"), found.get("s"), found.get("l")
        if not isinstance(email, str) or not isinstance(systems, list):
            return None
        if not all(isinstance(s, str) for s in systems):
            return None
        if language is not None and not isinstance(language, str):
            return None
        return Confirmed(email, tuple(systems), language)


class LinkState:
    """The links as the environment (``MONITOR_LINK_SECRET``) and the running configuration
    (``public_url``) allow: ``links`` is None, and ``why_not`` says why, while either is
    missing. ``configure`` again after a reload."""

    def __init__(self, environ: Mapping[str, str], clock: Clock) -> None:
        self._secrets, self._secret_problem = link_secrets(environ)
        self._clock = clock
        self.links: Links | None = None
        self.why_not: str | None = None

    def configure(self, public_url: str | None) -> None:
        if self.links is not None and self.links.public_url == (public_url or "").rstrip("/"):
            return
        self.links = None
        if public_url is None:
            self.why_not = "public_url is not set in monitor.yaml"
        elif self._secret_problem:
            self.why_not = self._secret_problem
        else:
            self.why_not = None
            self.links = Links(self._secrets, public_url, self._clock)

    def manage_link(self) -> Callable[[str], str] | None:
        """What the composer writes each person's link with; None without links."""
        return self.links.manage_url if self.links is not None else None

    def list_unsubscribe(self, item: OutboxItem) -> str | None:
        """The one-click link of a message's ``List-Unsubscribe`` (none for a confirmation
        mail: its reader has not subscribed)."""
        if self.links is None or item.kind == CONFIRM_KIND:
            return None
        return self.links.manage_url(item.person_id)
