"""A local SMTP server that keeps every message it accepts: for ``monitor demo`` and for tests.

It runs in the caller's event loop on 127.0.0.1 (a free port unless one is given) and can play
the servers a real deployment meets: one that does not know a mailbox (``reject``), one that is
temporarily unavailable (``unavailable``), a slow one (``delay``), and one that is down and
comes back on the same port (``stop()`` then ``start()``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

REJECT_REPLY = "550 5.1.1 no such user"
UNAVAILABLE_REPLY = "451 4.3.0 temporarily unavailable, try again later"


@dataclass(frozen=True, slots=True)
class CaughtMessage:
    """One accepted message: the envelope as the client gave it, and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        """The Subject as a mail client shows it ("" when there is none)."""
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """The text/plain body, decoded ("" if there is none)."""
        return _body(self.message, "plain") or ""

    @property
    def html(self) -> str | None:
        """The text/html body, decoded, if the message has one."""
        return _body(self.message, "html")


OnMessage = Callable[[CaughtMessage], Awaitable[None] | None]


class MailCatcher:
    """An SMTP server on loopback that keeps what it receives.

    Attributes a test may set at any time:

    - ``reject``: addresses (any case) answered ``550 5.1.1 no such user`` at RCPT.
    - ``unavailable``: when true, every message is answered ``451`` at the end of DATA.
    - ``delay``: seconds the server waits before answering each message's DATA.

    And read: ``messages`` (accepted, in order), ``connections`` (accepted since creation,
    across restarts) and ``open_connections``. With ``credentials`` the server offers AUTH
    (without TLS: loopback only) and refuses MAIL FROM until the client logged in.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_message: OnMessage | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.on_message = on_message
        self.credentials = credentials
        self.messages: list[CaughtMessage] = []
        self.reject: set[str] = set()
        self.unavailable = False
        self.delay = 0.0
        self.connections = 0
        self._live: set[_CatcherSMTP] = set()
        self._server: asyncio.Server | None = None
        self._arrived: asyncio.Condition | None = None

    @property
    def port(self) -> int:
        """The listening port (known once started; kept across stop and start)."""
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def open_connections(self) -> int:
        return len(self._live)

    @property
    def url(self) -> str:
        """An ``smtp://`` URL for this server, with the credentials if it has them."""
        auth = ""
        if self.credentials:
            user, password = self.credentials
            auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        return f"smtp://{auth}{self.host}:{self._port}"

    async def start(self) -> None:
        """Listen (again, on the same port after a ``stop``)."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection, self.host, self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Go down: stop listening and drop every open connection, as a crashed server would."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        handlers = []
        for connection in list(self._live):
            if connection.transport is not None:
                connection.transport.close()
            if connection.handler_task is not None:
                handlers.append(connection.handler_task)
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    def drop_connections(self) -> None:
        """Hang up on every client now but keep listening, as an idle timeout would."""
        for connection in list(self._live):
            if connection.transport is not None:
                connection.transport.close()

    async def __aenter__(self) -> MailCatcher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_for_messages(self, count: int) -> list[CaughtMessage]:
        """Wait until at least ``count`` messages arrived (bound it with ``asyncio.timeout``)."""
        arrived = self._condition()
        async with arrived:
            await arrived.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)

    def _condition(self) -> asyncio.Condition:
        if self._arrived is None:
            self._arrived = asyncio.Condition()
        return self._arrived

    def _new_connection(self) -> _CatcherSMTP:
        self.connections += 1
        return _CatcherSMTP(
            self,
            _Handler(self),
            hostname="mailcatcher.localhost",
            loop=asyncio.get_running_loop(),
            auth_require_tls=False,
            authenticator=self._authenticate if self.credentials else None,
            enable_SMTPUTF8=True,  # as real servers do: mail to a non-ASCII address arrives
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            self.credentials is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode("utf-8", "replace"), data.password.decode("utf-8", "replace"))
            == self.credentials
        )
        # handled=False: let aiosmtpd answer 535 itself on failure.
        return AuthResult(success=ok, handled=False)

    async def _accept(self, envelope: Envelope) -> str:
        if self.delay > 0:
            await asyncio.sleep(self.delay)  # playing a slow server, not waiting for anything
        if self.unavailable:
            return UNAVAILABLE_REPLY
        raw = envelope.original_content or b""
        # The wire uses CRLF; the email package reads text with plain newlines best.
        parsed = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        caught = CaughtMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
        )
        self.messages.append(caught)
        arrived = self._condition()
        async with arrived:
            arrived.notify_all()
        if self.on_message is not None:
            result = self.on_message(caught)
            if inspect.isawaitable(result):
                await result
        return "250 OK"


class _Handler:
    """aiosmtpd hooks: each returns the reply the server sends."""

    def __init__(self, catcher: MailCatcher) -> None:
        self._catcher = catcher

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._catcher.credentials and not session.authenticated:
            return "530 5.7.0 authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in {rejected.lower() for rejected in self._catcher.reject}:
            return REJECT_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self._catcher._accept(envelope)


class _CatcherSMTP(SMTP):
    """aiosmtpd's server protocol, telling the catcher which connections are open."""

    def __init__(self, catcher: MailCatcher, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._catcher = catcher

    @property
    def handler_task(self) -> asyncio.Task[None] | None:
        task: asyncio.Task[None] | None = self._handler_coroutine
        return task

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again on the same connection
        super().connection_made(transport)
        if first:
            self._catcher._live.add(self)
            if self.handler_task is not None:
                # A client hanging up mid-command ends the task with an error: expected here.
                self.handler_task.add_done_callback(_consume_result)

    def connection_lost(self, error: Exception | None) -> None:
        self._catcher._live.discard(self)
        super().connection_lost(error)


def _consume_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None
