"""Email over SMTP through a small pool of reused connections.

(Over 400 lines: the message is written by hand, the bytes the email package would write in a
fraction of its time for the fan-out, and its quoting belongs next to the sending.)

``MONITOR_SMTP_URL`` chooses the server and how the connection is secured:

- ``smtp://user:pass@host:port`` (port 587 if omitted) upgrades with STARTTLS when the server
  offers it and stays plain otherwise (``?starttls=auto``, the default). Add
  ``?starttls=always`` to refuse a server that does not offer it, or ``?starttls=never`` for a
  local relay that offers a certificate nobody can verify.
- ``smtps://user:pass@host:port`` (port 465 if omitted) is TLS from the first byte.

``?pool=N`` sets how many connections are kept open at once (default 8; a server that limits
connections per client may want fewer).

User and password are percent-decoded, so ``p%40ss`` is ``p@ss``. Neither ever appears in an
error message or a repr.

Every message carries the channel's :class:`Letterhead`: the org's name on ``From`` (unless
``MONITOR_SMTP_FROM`` names one itself), ``Reply-To`` the support address, ``Auto-Submitted:
auto-generated`` (RFC 3834: auto-responders do not answer it) and, with a signer, a
``DKIM-Signature`` over the headers and the body. An :class:`Email` may add header fields of
its own (``headers``), written and signed like the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy, quoprimime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from typing import ClassVar, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import dkim
from aiosmtplib.email import flatten_message

from monitor.delivery.channels.dkim_signing import DkimSigner
from monitor.delivery.channels.errors import DeliveryError
from monitor.model import Clock, SystemClock
from monitor.store import OutboxItem
from monitor.text import one_line

Security = Literal["tls", "starttls", "auto", "none"]

_DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
_STARTTLS = {"always": "starttls", "never": "none", "auto": "auto"}
# RFC 5322 msg-id as dot-atom-text on both sides of the "@": anything else is rewritten or cut
# short by mail software, and a Message-ID that changes on the way is no use for recognising
# a resend.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_MESSAGE_ID = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*$")
# An address we hand to the server: no whitespace or control characters anywhere in it.
_ADDR_SPEC = re.compile(r"^[^\s@\x00-\x1f\x7f<>]+@[^\s@\x00-\x1f\x7f<>]+$")
# A bare address of dot-atoms (``alice.smith@example.com``), which ``parseaddr`` returns as it
# is: most addresses, and they need no parsing.
_PLAIN_ADDR = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_QUIT_TIMEOUT = 5.0
# A header value the policy writes back unchanged: an addr-spec or a msg-id of dot-atoms, with
# no "=?" that could be read as an encoded word. Anything else goes through the policy.
_VERBATIM = re.compile(rf"<?{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*>?")
_MAX_LINE = 78  # policy.SMTP.max_line_length: how headers are folded
# RFC 2045 limits a quoted-printable line to 76 characters (the email package writes up to its
# policy's 78, which SpamAssassin's MIME_QP_LONG_LINE counts against a message).
_QP_LINE = 76
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))  # as email.generator makes them
# Characters quoted-printable writes as they are in a body (``email.quoprimime``): printable
# ASCII but "=", space, tab and line ends. Any other run is written "=XX" byte by byte.
_QP_QUOTED = re.compile(r"[^\t\n\r !-<>-~]+")
_TEXT_HEAD = (
    'Content-Type: text/{subtype}; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n"
)

# A header field name (RFC 5322: printable ASCII but ":"), as we write them.
_FIELD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# The fields every message has, in the order written (then its own ``headers``, then MIME's).
_OWN_FIELDS = ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "Auto-Submitted")
_MIME_FIELDS = ("MIME-Version", "Content-Type", "Content-Transfer-Encoding")
# Fields a message may not add of its own: the ones above, and the signature.
_RESERVED = {name.lower() for name in (*_OWN_FIELDS, *_MIME_FIELDS, "DKIM-Signature")}
# Fields whose value is written exactly as given, never folded or encoded: a mail client reads
# List-Unsubscribe's <URL> as it stands (RFC 2369), and a signed link is longer than a line.
_AS_GIVEN = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_PRINTABLE = re.compile(r"[!-~]+")
_MAX_FIELD = 998  # RFC 5322's longest line
AUTO_SUBMITTED = "auto-generated"


class _ValueBesideName(BaseHeader):
    """A header field that never leaves its name alone on a line.

    The email package moves a value that does not fit beside its name, but would fit on a line
    of its own, whole onto the next line ("Subject:" CRLF " Online payments ..."); read back
    (by the email package itself among others) that value starts with a space. Here the value
    starts beside the name, folded at its last space that fits (or not at all: a line may be
    998 characters, 78 is a should). Unfolded, both are the same field."""

    def fold(self, *, policy: Policy) -> str:
        folded = super().fold(policy=policy)
        return _beside_name(folded, self.name, policy.linesep, policy.max_line_length or 78)


def _beside_name(folded: str, name: str, linesep: str, width: int) -> str:
    alone = f"{name}:{linesep}"
    if not folded.startswith(alone):
        return folded
    first, sep, rest = folded[len(alone) :].partition(linesep)
    if not first.strip() or first[0] not in " \t":
        return folded  # an empty value: nothing was moved
    line = f"{name}:{first}"  # ``first`` starts with the folding space
    if len(line) > width:
        cut = line.rfind(" ", len(name) + 2, width + 1)
        if cut > 0 and line[cut:].strip():
            line = f"{line[:cut]}{linesep}{line[cut:]}"
    return f"{line}{sep}{rest}"


class _AsGiven(UnstructuredHeader, BaseHeader):
    """A field written exactly as given, on one line (``_AS_GIVEN``; ``_own_header``)."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def _registry() -> HeaderRegistry:
    registry = HeaderRegistry(base_class=_ValueBesideName)
    for name in _AS_GIVEN:
        registry.map_to_type(name, _AsGiven)
    return registry


# ``policy.SMTP`` with the header fields above. The generator (ours and aiosmtplib's, whatever
# its policy) folds each field by the field's own class, so both paths below write the same.
_POLICY = policy.SMTP.clone(header_factory=_registry())
# The message's own policy: its parts' quoted-printable lines at most 76 characters (headers are
# folded by the generator's policy, at 78, whatever the message's says).
_BODY_POLICY = _POLICY.clone(max_line_length=_QP_LINE)

Outgoing = tuple[bytes, bool]
"""A message ready to send: its bytes, and whether they need SMTPUTF8 (a non-ASCII address)."""


@dataclass(frozen=True, slots=True)
class Email:
    """One email to one person.

    ``message_id`` has no angle brackets (``incident-7.acknowledge.u123@example.com``); it is
    sent as ``Message-ID: <...>`` unchanged, so a resend after a crash is the same message.
    Both sides of its one "@" are dot-atoms (letters, digits, dots and ``!#$%&'*+/=?^_`{|}~-``);
    anything else (a second "@", a space) is refused rather than sent altered.

    ``headers`` are this message's own header fields (``List-Unsubscribe``, ...), written after
    the ones every message has, and signed with them.
    """

    message_id: str
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Letterhead:
    """What every message from this monitor carries besides its own content.

    ``name`` is shown on ``From`` when the sender address has no name of its own (the org's
    name); ``reply_to`` is where a customer's answer goes (the support address), None for
    none; ``signer`` signs each message with DKIM, None for unsigned mail.
    """

    name: str = ""
    reply_to: str | None = None
    signer: DkimSigner | None = None


class EmailChannel:
    """Sends :class:`Email` through at most ``pool_size`` SMTP connections.

    Connections are opened on first use and kept for later sends; each carries one send at a
    time, so concurrent ``send`` calls are safe and wait for a free connection. A connection
    that was dropped (server restarted, idle timeout) is reopened on the next send. Each send
    (connecting included, waiting for a free connection not) gives up after ``timeout`` seconds.
    """

    kind: ClassVar[Literal["email"]] = "email"
    # The right side of each outbox message's Message-ID, ``<item.key@message_domain>``: the
    # org's domain (monitor.yaml), which the Channels holding this channel sets.
    message_domain: str = "monitor.invalid"
    # The outbox item's one-click unsubscribe link (RFC 8058), or None for none (a
    # confirmation mail, or no links configured): set by the wiring, signed per person.
    list_unsubscribe: Callable[[OutboxItem], str | None] | None = None

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        security: Security = "auto",
        pool_size: int = 4,
        timeout: float = 30.0,
        clock: Clock | None = None,
        letterhead: Letterhead | None = None,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        envelope_from = _addr_spec(sender)
        if envelope_from is None:
            raise ValueError(f"{sender!r} is not a usable sender address")
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self.pool_size = pool_size
        self._sender = sender
        self._envelope_from = envelope_from
        self._password = password
        self._timeout = timeout
        self._clock: Clock = clock or SystemClock()
        self._date: tuple[int, str] = (-1, "")  # the Date header's value for this second
        self._from = sender
        self._reply_to: str | None = None
        self._signer: DkimSigner | None = None
        self.letterhead = letterhead or Letterhead()
        self._closed = False
        # Last in, first out: a quiet period reuses the connection just used instead of
        # opening the others.
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        for _ in range(pool_size):
            self._idle.put_nowait(self._new_client())

    @classmethod
    def from_url(
        cls,
        url: str,
        sender: str,
        pool_size: int = 8,
        timeout: float = 30,
        *,
        clock: Clock | None = None,
        letterhead: Letterhead | None = None,
    ) -> EmailChannel:
        """Build a channel from ``MONITOR_SMTP_URL`` (see the module docstring).

        Raises ValueError naming what is wrong; the message never repeats the URL, which may
        hold a password.
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"SMTP URL scheme must be smtp:// or smtps://, not {scheme!r}")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("SMTP URL has an invalid port") from None
        security: Security = "tls" if scheme == "smtps" else "auto"
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if key == "pool":
                if not values[-1].isdigit() or not 1 <= int(values[-1]) <= 100:
                    raise ValueError("SMTP URL option pool must be a whole number from 1 to 100")
                pool_size = int(values[-1])
                continue
            if key != "starttls":
                raise ValueError(f"SMTP URL has an unknown option {key!r}; only starttls, pool")
            choice = values[-1].lower()
            if choice not in _STARTTLS:
                raise ValueError("SMTP URL option starttls must be always, never or auto")
            if scheme == "smtps":
                raise ValueError("smtps:// is TLS already; starttls applies to smtp:// only")
            security = _STARTTLS[choice]  # type: ignore[assignment]
        return cls(
            host=parts.hostname,
            port=port,
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            security=security,
            pool_size=pool_size,
            timeout=timeout,
            clock=clock,
            letterhead=letterhead,
        )

    @property
    def sender(self) -> str:
        """The sender as configured (``MONITOR_SMTP_FROM``), before the letterhead's name."""
        return self._sender

    @property
    def letterhead(self) -> Letterhead:
        return self._letterhead

    @letterhead.setter
    def letterhead(self, letterhead: Letterhead) -> None:
        """Carry ``letterhead`` from the next message on (a reload may change it). Raises
        ValueError when its name or reply address cannot be written (``check_letterhead``)."""
        wrong = check_letterhead(letterhead, self._sender)
        if wrong:
            raise ValueError("; ".join(f"{field}: {message}" for field, message in wrong))
        self._letterhead = letterhead
        self._from = _from_field(letterhead.name, self._sender)
        self._reply_to = letterhead.reply_to
        self._signer = letterhead.signer

    def __repr__(self) -> str:
        user = f", username={self.username!r}" if self.username else ""
        return (
            f"EmailChannel(host={self.host!r}, port={self.port}, "
            f"security={self.security!r}{user}, pool_size={self.pool_size})"
        )

    async def send(self, email: Email) -> None:
        """Hand ``email`` to the SMTP server; return once it answered 250.

        Raises DeliveryError: permanent when the message or its recipient is refused for good
        (5xx on RCPT or DATA, an address or Message-ID that cannot be sent), transient for
        everything else (4xx, refused connection, timeout, disconnect, authentication failed).
        """
        message, recipient = self._build(email)
        if self._closed:
            raise DeliveryError("email channel is closed", permanent=False)
        client = await self._idle.get()
        try:
            async with asyncio.timeout(self._timeout):
                await self._deliver(client, message, recipient)
        except TimeoutError:
            client.close()  # the conversation is in an unknown state: start afresh next time
            raise DeliveryError(
                f"{self._where}: no answer within {self._timeout:g}s", permanent=False
            ) from None
        except BaseException as exc:
            if not isinstance(exc, DeliveryError):
                client.close()  # cancelled mid-conversation: its state is unknown
            raise
        finally:
            if self._closed:
                client.close()
            self._idle.put_nowait(client)

    async def deliver(self, to: str, item: OutboxItem) -> None:
        """Send the outbox item as an :class:`Email` to ``to`` (see :meth:`send`). Headers
        of the person's own (a List-Unsubscribe link) go in its ``headers``: signed, and
        written by both paths alike."""
        link = self.list_unsubscribe(item) if self.list_unsubscribe else None
        await self.send(
            Email(
                message_id=f"{item.key}@{self.message_domain}",
                to=to,
                subject=item.subject,
                text=item.text,
                html=item.html,
                headers=unsubscribe_headers(link) if link else (),
            )
        )

    async def close(self) -> None:
        """Say QUIT on idle connections and close them; later sends fail (transient)."""
        self._closed = True
        clients: list[aiosmtplib.SMTP] = []
        while not self._idle.empty():
            clients.append(self._idle.get_nowait())
        for client in clients:
            if client.is_connected:
                try:
                    async with asyncio.timeout(_QUIT_TIMEOUT):
                        await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    pass
            client.close()
            self._idle.put_nowait(client)

    @property
    def _where(self) -> str:
        return f"SMTP {self.host}:{self.port}"

    def _new_client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            use_tls=self.security == "tls",
            start_tls={"starttls": True, "none": False, "tls": False}.get(self.security),
            timeout=self._timeout,
        )

    async def _deliver(self, client: aiosmtplib.SMTP, message: Outgoing, recipient: str) -> None:
        reused = client.is_connected
        if not reused:
            await self._connect(client)
        try:
            await self._transact(client, message, recipient)
        except DeliveryError as error:
            if not (reused and isinstance(error.__cause__, ConnectionError)):
                raise
            # A kept connection can die unnoticed (server restarted, idle timeout): one more
            # try on a fresh connection. Should the server have taken the message before the
            # drop, the same Message-ID makes the copy recognisable.
            client.close()
            await self._connect(client)
            await self._transact(client, message, recipient)

    async def _connect(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Our credentials are wrong: a configuration problem, not the recipient's, so keep
            # the message for a retry once someone fixes the settings.
            raise DeliveryError(
                f"{self._where}: authentication failed ({exc.code})", permanent=False
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{self._where}: connection refused by the server: {_reply(exc)}",
                permanent=False,
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"{self._where}: cannot connect: {_describe(exc)}", permanent=False
            ) from exc

    async def _transact(self, client: aiosmtplib.SMTP, message: Outgoing, recipient: str) -> None:
        try:
            await _send_bytes(client, self._envelope_from, recipient, *message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            replies = "; ".join(_reply(refused) for refused in exc.recipients)
            raise DeliveryError(
                f"{self._where}: recipient {recipient} refused: {replies}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            # Our From address is refused: configuration again, so retry rather than give up.
            raise DeliveryError(
                f"{self._where}: sender {self._envelope_from} refused: {_reply(exc)}",
                permanent=False,
            ) from exc
        except aiosmtplib.SMTPDataError as exc:
            raise DeliveryError(
                f"{self._where}: message refused: {_reply(exc)}", permanent=exc.code >= 500
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # Refusals of the connection rather than of this message (e.g. 421 closing).
            client.close()
            raise DeliveryError(f"{self._where}: {_reply(exc)}", permanent=False) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            # e.g. a non-ASCII address and a server without SMTPUTF8: this message cannot go.
            raise DeliveryError(f"{self._where}: {exc.message}", permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()  # whatever happened, this conversation cannot go on
            raise DeliveryError(
                f"{self._where}: connection lost: {_describe(exc)}", permanent=False
            ) from exc

    def _build(self, email: Email) -> tuple[Outgoing, str]:
        """The message and the envelope recipient; DeliveryError(permanent) if unsendable."""
        recipient = _addr_spec(email.to)
        if recipient is None:
            raise DeliveryError(f"{email.to!r} is not a usable email address", permanent=True)
        if not _MESSAGE_ID.fullmatch(email.message_id):
            raise DeliveryError(f"{email.message_id!r} is not a usable Message-ID", permanent=True)
        for name, _ in email.headers:
            if not _FIELD_NAME.fullmatch(name) or name.lower() in _RESERVED:
                raise DeliveryError(f"{name!r} is not a header a message may add", permanent=True)
        utf8 = not (recipient.isascii() and self._envelope_from.isascii())
        # A non-ASCII address needs the email package's SMTPUTF8 writing (rare: its cost is
        # no matter); everything else is written directly.
        data = flatten_message(self._message(email), utf8=True) if utf8 else self._bytes(email)
        if self._signer is not None:
            fields = [*_OWN_FIELDS, *(name for name, _ in email.headers), *_MIME_FIELDS]
            try:
                data = self._signer.sign(data, fields)
            except dkim.DKIMException as exc:
                # Never sent unsigned: kept for a retry, and the error says why.
                raise DeliveryError(f"cannot DKIM-sign the email: {exc}", permanent=False) from exc
        return (data, utf8), recipient

    def _bytes(self, email: Email) -> bytes:
        """The bytes ``send_message`` would send for ``_message(email)`` (but for the random
        MIME boundary), written directly: the email package's header objects and generator
        cost milliseconds per message, which a fan-out to 100,000 people cannot afford."""
        now = self._clock.now()
        if int(now) != self._date[0]:  # the header says seconds: one format per second
            self._date = (int(now), format_datetime(datetime.fromtimestamp(now, UTC)))
        date = self._date[1]
        try:
            head = [
                _header("From", self._from)[1],
                _header("To", email.to)[1],
                _header("Subject", one_line(email.subject))[1],
                _header("Date", date)[1],
            ]
            message_id, line = _header("Message-ID", f"<{email.message_id}>")
            head.append(line)
            if self._reply_to is not None:
                head.append(_header("Reply-To", self._reply_to)[1])
            head.append(_header("Auto-Submitted", AUTO_SUBMITTED)[1])
            head.extend(_own_header(name, value) for name, value in email.headers)
        except ValueError as exc:
            raise DeliveryError(f"cannot build the email: {exc}", permanent=True) from exc
        if message_id != f"<{email.message_id}>":
            raise DeliveryError(f"{email.message_id!r} is not a usable Message-ID", permanent=True)
        if email.html is None:
            return b"".join((*head, _text_part(email.text, "plain", mime_version=True)))
        boundary = f"{'=' * 15}{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}=="
        # Quoted-printable writes every "=" as "=3D", so the boundary cannot occur in a part.
        return b"".join(
            (
                *head,
                b"MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
                f"\r\n--{boundary}\r\n".encode(),
                _text_part(email.text, "plain", mime_version=False),
                f"\r\n--{boundary}\r\n".encode(),
                _text_part(email.html, "html", mime_version=True),
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )

    def _message(self, email: Email) -> EmailMessage:
        """The message as an ``EmailMessage``, for the email package to flatten (with SMTPUTF8
        when an address needs it)."""
        message = EmailMessage(policy=_BODY_POLICY)
        try:
            message["From"] = self._from
            message["To"] = email.to
            # Subjects come from templates: fold any line break (or other control character)
            # into a space rather than let it start a header of its own.
            message["Subject"] = one_line(email.subject)
            message["Date"] = format_datetime(datetime.fromtimestamp(self._clock.now(), UTC))
            message["Message-ID"] = f"<{email.message_id}>"
            if self._reply_to is not None:
                message["Reply-To"] = self._reply_to
            message["Auto-Submitted"] = AUTO_SUBMITTED
            for name, value in email.headers:
                _own_header(name, value)  # refused here as on the other path
                message[name] = value
        except ValueError as exc:
            raise DeliveryError(f"cannot build the email: {exc}", permanent=True) from exc
        if str(message["Message-ID"]) != f"<{email.message_id}>":
            raise DeliveryError(f"{email.message_id!r} is not a usable Message-ID", permanent=True)
        # Quoted-printable keeps UTF-8 text intact through servers without 8BITMIME.
        message.set_content(email.text, charset="utf-8", cte="quoted-printable")
        if email.html is not None:
            message.add_alternative(
                email.html, subtype="html", charset="utf-8", cte="quoted-printable"
            )
        return message


def unsubscribe_headers(url: str) -> tuple[tuple[str, str], ...]:
    """RFC 8058's two fields: the link, and that one POST to it unsubscribes (mail clients
    show an unsubscribe button; the DKIM signature covers both)."""
    return (
        ("List-Unsubscribe", f"<{url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


def envelope_sender(sender: str) -> str | None:
    """The bare address mail from ``sender`` (``Name <a@b>`` or ``a@b``) is sent from, or None
    when it is not one a server would take."""
    return _addr_spec(sender)


def check_letterhead(letterhead: Letterhead, sender: str) -> list[tuple[str, str]]:
    """What cannot be written of ``letterhead`` on mail from ``sender``: (field, why) for
    ``name`` (on From) and ``reply_to``; empty when all can."""
    wrong: list[tuple[str, str]] = []
    try:
        _header("From", _from_field(letterhead.name, sender))
    except ValueError as exc:
        wrong.append(("name", f"cannot be written as the name on From: {exc}"))
    reply_to = letterhead.reply_to
    if reply_to is not None:
        if _addr_spec(reply_to) is None:
            wrong.append(("reply_to", f"{reply_to!r} is not an email address Reply-To can use"))
        else:
            try:
                _header("Reply-To", reply_to)
            except ValueError as exc:
                wrong.append(("reply_to", f"cannot be written as Reply-To: {exc}"))
    return wrong


def _from_field(name: str, sender: str) -> str:
    """``sender``, with ``name`` shown on it unless it names itself (``Name <a@b>``)."""
    shown = one_line(name)
    own, address = parseaddr(sender)
    if own or not shown:
        return sender
    try:
        return str(Address(display_name=shown, addr_spec=address))
    except (ValueError, IndexError) as exc:
        raise ValueError(str(exc)) from None


async def _send_bytes(
    client: aiosmtplib.SMTP, sender: str, recipient: str, data: bytes, utf8: bool
) -> None:
    """What ``sendmail`` does for one recipient, given the flattened message (``utf8``: with
    SMTPUTF8, which a non-ASCII address needs; raises SMTPNotSupported, as ``send_message``
    does, when the server does not offer it).

    The envelope commands go through ``execute_command`` rather than ``sendmail``: both
    addresses are plain addr-specs already (``_addr_spec``), and ``sendmail`` parses each twice
    more with ``email.utils.parseaddr``, about a tenth of the monitor's CPU in a fan-out. The
    errors raised are ``sendmail``'s, and a refused envelope is reset as it resets it.

    The caller's ``asyncio.timeout`` bounds the whole send, so the commands go without one of
    their own (a timer per reply, for every message of a fan-out).
    """
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            if not client.is_connected:
                raise
            await client.helo()
    if utf8 and not client.supports_extension("smtputf8"):
        raise aiosmtplib.SMTPNotSupported(
            "An address containing non-ASCII characters was provided, but "
            "SMTPUTF8 is not supported by this server"
        )
    options = [b"BODY=8BITMIME"] if client.supports_extension("8bitmime") else []
    if utf8:
        options.append(b"SMTPUTF8")
    if client.supports_extension("size"):
        options.insert(0, b"SIZE=%d" % len(data))  # RFC 1870: CRLF line ends, as ``data`` has
    try:
        reply = await client.execute_command(
            b"MAIL", b"FROM:<%s>" % sender.encode(), *options, timeout=None
        )
        if reply.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
        reply = await client.execute_command(b"RCPT", b"TO:<%s>" % recipient.encode(), timeout=None)
        if reply.code not in (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward):
            refused = aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
            raise aiosmtplib.SMTPRecipientsRefused([refused])
        await client.data(data, timeout=None)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        # The next message on this connection starts a fresh envelope.
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()
        raise


def _own_header(name: str, value: str) -> bytes:
    """A message's own header line: as given for ``_AS_GIVEN``'s fields (ValueError for a
    value that cannot be), else as ``_header`` writes it."""
    if name.lower() not in _AS_GIVEN:
        return _header(name, value)[1]
    if not _PRINTABLE.fullmatch(value.replace(" ", "")) or len(name) + 2 + len(value) > _MAX_FIELD:
        raise ValueError(f"{name} must be printable ASCII on one line")
    return f"{name}: {value}\r\n".encode("ascii")


def _header(name: str, value: str) -> tuple[str, bytes]:
    """The value as the policy reads it, and the header line as ``policy.SMTP`` writes it.
    Raises ValueError as ``EmailMessage`` does (a line break in the value)."""
    if len(name) + 2 + len(value) <= _MAX_LINE and "=?" not in value and _VERBATIM.fullmatch(value):
        return value, f"{name}: {value}\r\n".encode("ascii")
    return _policy_header(name, value)


@lru_cache(maxsize=1024)  # the same From, Subject and Date for many messages in a row
def _policy_header(name: str, value: str) -> tuple[str, bytes]:
    header = _POLICY.header_store_parse(name, value)[1]
    return str(header), _POLICY.fold_binary(name, header)


def _text_part(text: str, subtype: str, *, mime_version: bool) -> bytes:
    """A UTF-8 quoted-printable part as ``set_content``/``add_alternative`` and the generator
    write it: lines ending in CRLF, the body ending in one."""
    lines = text.encode("utf-8").splitlines()
    body = _qp_body((b"\n".join(lines) + b"\n").decode("latin-1"), _QP_LINE)
    head = _TEXT_HEAD.format(subtype=subtype) + ("MIME-Version: 1.0\r\n" if mime_version else "")
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode("ascii")


def _qp_body(body: str, maxlinelen: int) -> str:
    """``email.quoprimime.body_encode(body, maxlinelen)``, the same text in a third of the
    time: it maps every character through a dict, this quotes only the runs that need it.
    The line breaking below is the standard library's, unchanged."""
    if not body:
        return body
    body = _QP_QUOTED.sub(lambda m: "=" + m.group().encode("latin-1").hex("=").upper(), body)
    eol = "\n"
    soft_break = "=" + eol
    maxlinelen1 = maxlinelen - 1
    encoded_body: list[str] = []
    append = encoded_body.append
    for line in body.splitlines():
        start = 0
        laststart = len(line) - 1 - maxlinelen
        while start <= laststart:
            stop = start + maxlinelen1
            # make sure we don't break up an escape sequence
            if line[stop - 2] == "=":
                append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":
            room = start - laststart
            if room >= 3:
                q = quoprimime.quote(line[-1])
            elif room == 2:
                q = line[-1] + soft_break
            else:
                q = soft_break + quoprimime.quote(line[-1])
            append(line[start:-1] + q)
        else:
            append(line[start:])
    if body[-1] in "\r\n":
        append("")
    return eol.join(encoded_body)


def _addr_spec(address: str) -> str | None:
    """The bare address of ``Name <a@b>`` or ``a@b``; None if it could smuggle anything."""
    if _PLAIN_ADDR.fullmatch(address):
        return address
    if any(ch in address for ch in "\r\n\x00"):
        return None
    _, addr = parseaddr(address)
    return addr if _ADDR_SPEC.fullmatch(addr) else None


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
