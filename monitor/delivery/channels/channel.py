"""The one interface every channel speaks: delivery knows no channel but through it.

A channel takes one message (an outbox item, rendered when it was decided) to one address of
its kind. ``deliver`` returns when the far end accepted the message and raises
:class:`DeliveryError` when it did not, rather than returning an outcome: nearly every send
works, and then there is nothing to build or inspect; each channel turns its library's errors
(aiosmtplib, aiohttp) into the one exception at the place that understands them; and the
sender has to catch exceptions anyway, since a bug in a channel must not lose the message.
"""

from __future__ import annotations

from typing import Protocol

from monitor.model import ChannelKind
from monitor.store import OutboxItem


class Channel(Protocol):
    """One way to reach people: email, SMS or webhook."""

    @property
    def kind(self) -> ChannelKind:
        """The kind of address this channel serves (``Address.kind``)."""
        ...

    async def deliver(self, to: str, item: OutboxItem) -> None:
        """Send ``item`` to ``to`` (``Address.to``: "alice@example.com", "+447700900001",
        "https://..."); return once the far end accepted it.

        Raises DeliveryError: ``permanent`` when trying this channel again cannot help (an
        unknown mailbox, an invalid number: the person's next channel is tried), transient
        otherwise (retried with backoff). Its message never contains a secret.
        """
        ...

    async def close(self) -> None:
        """Let go of held connections; a send after it fails (transient)."""
        ...
